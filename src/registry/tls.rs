//! TLS configuration for one registry host: which roots to trust, an optional client certificate, and
//! `--insecure`.
//!
//! Roots: the system's (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured, through rustls-native-certs); when the
//! system has none (a `FROM scratch` image without a bundle), Mozilla's roots compiled into hoist — so
//! the bare binary still works. Added to those: `--ca-file`, `CI_SERVER_TLS_CA_FILE`, and docker's
//! per-registry directory `/etc/docker/certs.d/<host[:port]>/` (`*.crt` as CAs, `client.cert` +
//! `client.key` as the client identity).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// What the user asked for about TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra CA bundles (`--ca-file`, `CI_SERVER_TLS_CA_FILE`).
    pub ca_files: Vec<PathBuf>,
    /// Skip certificate verification (`--insecure`).
    pub insecure: bool,
    /// Docker's per-host certificate directory root (default `/etc/docker/certs.d`).
    pub certs_d: Option<PathBuf>,
}

/// Docker's per-registry certificate directory.
pub const DEFAULT_CERTS_D: &str = "/etc/docker/certs.d";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// System roots, loaded once per process.
fn system_roots() -> &'static Vec<CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// Builds the rustls client config for `host` (`host[:port]`).
pub fn client_config(host: &str, opts: &TlsOptions) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::other(format!("TLS setup: {e}")))?;
    let certs_dir = opts.certs_d.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CERTS_D)).join(host);
    let builder = if opts.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    } else {
        let mut roots = RootCertStore::empty();
        let (_added, _ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for file in &opts.ca_files {
            add_pem_file(&mut roots, file)?;
        }
        if let Ok(entries) = std::fs::read_dir(&certs_dir) {
            let mut crts: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                .collect();
            crts.sort();
            for file in crts {
                add_pem_file(&mut roots, &file)?;
            }
        }
        builder.with_root_certificates(roots)
    };
    let cert = certs_dir.join("client.cert");
    let key = certs_dir.join("client.key");
    let mut config = if cert.is_file() && key.is_file() {
        let chain = read_certs(&cert)?;
        let key = PrivateKeyDer::from_pem_file(&key)
            .map_err(|e| Error::other(format!("reading client key {}: {e}", key.display())))?;
        builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| Error::other(format!("client certificate {}: {e}", cert.display())))?
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(file)
        .map_err(|e| Error::other(format!("reading CA file {}: {e}", file.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::other(format!("reading CA file {}: {e}", file.display())))?;
    if certs.is_empty() {
        return Err(Error::other(format!("CA file {} holds no PEM certificate", file.display())));
    }
    Ok(certs)
}

fn add_pem_file(roots: &mut RootCertStore, file: &Path) -> Result<()> {
    for cert in read_certs(file)? {
        roots.add(cert).map_err(|e| Error::other(format!("CA file {}: unusable certificate: {e}", file.display())))?;
    }
    Ok(())
}

/// `--insecure`: accepts any certificate, but still checks handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
