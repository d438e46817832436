//! Throwaway TLS material made with rcgen: a test CA and a server certificate for `127.0.0.1`, `localhost` and
//! `::1`, written as PEM files into a directory. The CA sits alone in its own `ca/` folder as `ca.crt`, so that
//! folder can be handed to skopeo's `--cert-dir` (which would take a `*.cert`/`*.key` pair there for a client
//! certificate) and its file to hoist's `--ca-file`.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// A CA and one server certificate signed by it, as files under one directory.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// `<dir>/ca/ca.crt`: the CA certificate (PEM).
    pub ca_pem_path: PathBuf,
    /// `<dir>/ca`: a folder holding only `ca.crt` (skopeo `--cert-dir`).
    pub ca_dir: PathBuf,
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// `<dir>/server/server.crt`: the server certificate (PEM).
    pub server_cert_path: PathBuf,
    /// `<dir>/server/server.key`: the server's PKCS#8 private key (PEM).
    pub server_key_path: PathBuf,
}

impl TestCa {
    /// Makes a fresh CA and server certificate under `dir` (created if needed).
    pub fn generate(dir: &Path) -> TestCa {
        let ca_dir = dir.join("ca");
        let server_dir = dir.join("server");
        std::fs::create_dir_all(&ca_dir).expect("create ca dir");
        std::fs::create_dir_all(&server_dir).expect("create server cert dir");

        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "hoist test CA");
        ca_params.distinguished_name = dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string(), "::1".to_string()])
                .expect("server params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "127.0.0.1");
        server_params.distinguished_name = dn;
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        let server_cert = server_params.signed_by(&server_key, &issuer).expect("sign server cert");

        let ca_pem_path = ca_dir.join("ca.crt");
        let server_cert_path = server_dir.join("server.crt");
        let server_key_path = server_dir.join("server.key");
        std::fs::write(&ca_pem_path, ca_cert.pem()).expect("write ca.crt");
        std::fs::write(&server_cert_path, server_cert.pem()).expect("write server.crt");
        std::fs::write(&server_key_path, server_key.serialize_pem()).expect("write server.key");
        TestCa { ca_pem_path, ca_dir, ca_der: ca_cert.der().to_vec(), server_cert_path, server_key_path }
    }
}
