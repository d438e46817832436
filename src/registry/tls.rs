//! TLS configuration for one registry host: which roots to trust, an optional client certificate, and
//! `--insecure`.
//!
//! Roots: the system's (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured, through rustls-native-certs); when the
//! system has none (a `FROM scratch` image without a bundle), Mozilla's roots compiled into hoist — so
//! the bare binary still works. Added to those: `--ca-file`, `CI_SERVER_TLS_CA_FILE`, and docker's
//! per-registry directory `/etc/docker/certs.d/<host[:port]>/` (`*.crt` as CAs, `client.cert` +
//! `client.key` as the client identity).
//!
//! [`trust_roots`] keeps each root's source ([`TrustSource`]) so that [`probe`] (used by `hoist doctor`) can
//! say which of them verified a registry's certificate, or why none did.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
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

/// Where a trusted root certificate came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "kebab-case")]
pub enum TrustSource {
    /// A CA bundle given with `--ca-file` or `CI_SERVER_TLS_CA_FILE`.
    CaFile(PathBuf),
    /// A `*.crt` in docker's per-registry directory (`certs.d/<host:port>/`).
    CertsD(PathBuf),
    /// The system's roots (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured).
    System,
    /// Mozilla's roots compiled into hoist (used when the system has none).
    Bundled,
}

impl std::fmt::Display for TrustSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustSource::CaFile(p) => write!(f, "CA file {}", p.display()),
            TrustSource::CertsD(p) => write!(f, "docker certs.d file {}", p.display()),
            TrustSource::System => f.write_str("the system's CA roots"),
            TrustSource::Bundled => f.write_str("hoist's bundled Mozilla roots (the system has none)"),
        }
    }
}

/// The roots trusted for `host` (`host[:port]`), grouped by source, in the order they are added.
pub fn trust_roots(host: &str, opts: &TlsOptions) -> Result<Vec<(TrustSource, Vec<CertificateDer<'static>>)>> {
    let mut out = Vec::new();
    if system_roots().is_empty() {
        out.push((TrustSource::Bundled, Vec::new()));
    } else {
        out.push((TrustSource::System, system_roots().clone()));
    }
    for file in &opts.ca_files {
        out.push((TrustSource::CaFile(file.clone()), read_certs(file)?));
    }
    if let Ok(entries) = std::fs::read_dir(certs_dir(host, opts)) {
        let mut crts: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        crts.sort();
        for file in crts {
            let certs = read_certs(&file)?;
            out.push((TrustSource::CertsD(file), certs));
        }
    }
    Ok(out)
}

fn certs_dir(host: &str, opts: &TlsOptions) -> PathBuf {
    opts.certs_d.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CERTS_D)).join(host)
}

/// A root store from `certs` (`Bundled` means webpki-roots).
fn store(sources: &[(TrustSource, Vec<CertificateDer<'static>>)]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for (source, certs) in sources {
        match source {
            TrustSource::Bundled => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            TrustSource::System => {
                let (_added, _ignored) = roots.add_parsable_certificates(certs.iter().cloned());
            }
            TrustSource::CaFile(p) | TrustSource::CertsD(p) => {
                for cert in certs {
                    roots
                        .add(cert.clone())
                        .map_err(|e| Error::other(format!("CA file {}: unusable certificate: {e}", p.display())))?;
                }
            }
        }
    }
    Ok(roots)
}

fn webpki_verifier(roots: RootCertStore) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| Error::other(format!("TLS setup: {e}")))
}

/// The verifier `opts` asks for: every trusted root, or none at all with `--insecure`.
fn verifier(host: &str, opts: &TlsOptions) -> Result<Arc<Verifier>> {
    if opts.insecure {
        return Ok(Arc::new(Verifier::new(None)));
    }
    Ok(Arc::new(Verifier::new(Some(webpki_verifier(store(&trust_roots(host, opts)?)?)?))))
}

/// Builds the rustls client config for `host` (`host[:port]`).
pub fn client_config(host: &str, opts: &TlsOptions) -> Result<ClientConfig> {
    config_with_verifier(host, opts, verifier(host, opts)?)
}

fn config_with_verifier(host: &str, opts: &TlsOptions, verifier: Arc<Verifier>) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::other(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let certs_dir = certs_dir(host, opts);
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

/// What a TLS handshake with a registry showed (for `hoist doctor`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsProbe {
    /// The handshake completed (with verification, unless `--insecure`).
    pub ok: bool,
    /// The source whose roots verify the server's chain.
    pub verified_by: Option<TrustSource>,
    /// Why the handshake or the verification failed.
    pub error: Option<String>,
    /// The server answered, but not with TLS (a plain-HTTP registry).
    pub not_tls: bool,
    /// Every source consulted, in order.
    pub sources: Vec<TrustSource>,
    /// docker's `certs.d/<host>/client.cert`, when one was presented.
    pub client_cert: Option<PathBuf>,
    pub insecure: bool,
}

/// Handshakes with `host` at `addr` using exactly the trust `opts` gives the transport, and finds which
/// source verified the certificate (each source's roots alone are tried on the chain the server sent).
pub fn probe(host: &str, addr: SocketAddr, opts: &TlsOptions, timeout: Duration) -> Result<TlsProbe> {
    let sources = if opts.insecure { Vec::new() } else { trust_roots(host, opts)? };
    let recorder = verifier(host, opts)?;
    let config = config_with_verifier(host, opts, recorder.clone())?;
    let client_cert = Some(certs_dir(host, opts).join("client.cert")).filter(|c| c.is_file());
    let mut report = TlsProbe {
        ok: false,
        verified_by: None,
        error: None,
        not_tls: false,
        sources: sources.iter().map(|(s, _)| s.clone()).collect(),
        client_cert,
        insecure: opts.insecure,
    };
    let name = server_name(host)?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name.clone())
        .map_err(|e| Error::other(format!("TLS setup: {e}")))?;
    let mut sock = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| Error::network(format!("connecting to {addr}: {e}")))?;
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    let mut outcome = Ok(());
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            outcome = Err(e);
            break;
        }
    }
    match outcome {
        Ok(()) => report.ok = true,
        Err(e) => {
            let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()).cloned();
            report.not_tls = matches!(inner, Some(rustls::Error::InvalidMessage(_)));
            report.error = Some(match inner {
                Some(rustls::Error::InvalidMessage(_)) => {
                    "the server does not speak TLS (a plain-HTTP registry?)".into()
                }
                Some(other) => other.to_string(),
                None => e.to_string(),
            });
        }
    }
    if let Some((end_entity, intermediates)) = recorder.chain.lock().expect("chain lock").clone() {
        for (source, certs) in &sources {
            let alone = webpki_verifier(store(&[(source.clone(), certs.clone())])?)?;
            if alone.verify_server_cert(&end_entity, &intermediates, &name, &[], UnixTime::now()).is_ok() {
                report.verified_by = Some(source.clone());
                break;
            }
        }
    }
    Ok(report)
}

/// `host[:port]` → the name the certificate must carry (an IP address or a DNS name).
fn server_name(host: &str) -> Result<ServerName<'static>> {
    let bare = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|e| Error::usage(format!("invalid host name {bare:?}: {e}")))
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

/// The one certificate verifier: webpki against the trusted roots, or nothing at all with `--insecure` (handshake
/// signatures are checked either way). It remembers the last chain it was shown, for [`probe`].
#[derive(Debug)]
struct Verifier {
    /// `None` with `--insecure`.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    #[allow(clippy::type_complexity)]
    chain: Mutex<Option<(CertificateDer<'static>, Vec<CertificateDer<'static>>)>>,
}

impl Verifier {
    fn new(webpki: Option<Arc<WebPkiServerVerifier>>) -> Verifier {
        Verifier { webpki, provider: provider(), chain: Mutex::new(None) }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        *self.chain.lock().expect("chain lock") =
            Some((end_entity.clone().into_owned(), intermediates.iter().map(|c| c.clone().into_owned()).collect()));
        match &self.webpki {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            None => Ok(ServerCertVerified::assertion()),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
