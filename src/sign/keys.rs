//! Signing keys, as cosign writes and reads them: the private key (cosign's encrypted
//! `ENCRYPTED SIGSTORE PRIVATE KEY`, or a plain PKCS#8 / SEC1 ECDSA P-256 PEM) and the public key
//! (PKIX `PUBLIC KEY` PEM). Pure: no files, no environment — [`super::source`] finds the key.
//!
//! cosign's encrypted key (sigstore's `pkg/encrypted`, after go-securesystemslib): the PEM body is a
//! JSON envelope `{"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":
//! "nacl/secretbox","nonce"},"ciphertext"}` (byte fields in standard base64). The secretbox key is
//! scrypt(password, salt, N, r, p) → 32 bytes; the plaintext is the PKCS#8 DER of the EC key.
//!
//! Neither the key nor its password is ever formatted: [`SigningKey`]'s `Debug` is redacted.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::registry::Secret;

/// The PEM label cosign writes for its encrypted private key.
pub const ENCRYPTED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label cosign wrote before it became sigstore's (still read by cosign).
const LEGACY_ENCRYPTED_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// cosign's scrypt parameters (N = 2^15, r = 8, p = 1): what `hoist generate-key-pair` writes.
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// The most work a key file may ask of scrypt (N ≤ 2^20, r ≤ 32, p ≤ 16): a hostile file must not make
/// hoist spend minutes or gigabytes deriving a key.
const MAX_LOG_N: u8 = 20;

/// An ECDSA P-256 private key. Formatting it prints `<redacted>`.
#[derive(Clone)]
pub struct SigningKey(p256::ecdsa::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// An ECDSA P-256 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(p256::ecdsa::VerifyingKey);

impl SigningKey {
    /// A new random key.
    pub fn generate() -> SigningKey {
        let mut rng = rand::rng();
        loop {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            // Fails only for 0 or a value ≥ the group order (probability ~2^-32).
            if let Ok(k) = p256::ecdsa::SigningKey::from_bytes(&bytes.into()) {
                return SigningKey(k);
            }
        }
    }

    /// Reads a private key PEM: cosign's encrypted key (needs `password`; an empty one is a valid
    /// password, as in cosign), PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`.
    pub fn from_pem(pem: &str, password: impl FnOnce() -> Result<Secret>) -> Result<SigningKey> {
        let (label, body) = pem_block(pem)?;
        match label.as_str() {
            ENCRYPTED_LABEL | LEGACY_ENCRYPTED_LABEL => {
                let der = decrypt(&body, password()?.expose().as_bytes())?;
                Self::from_pkcs8_der(&der)
            }
            "PRIVATE KEY" => Self::from_pkcs8_der(&body),
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&body)
                .map(|k| SigningKey(k.into()))
                .map_err(|_| Error::usage("the EC PRIVATE KEY is not an ECDSA P-256 key")),
            "PUBLIC KEY" => Err(Error::usage("this is a public key; signing needs the private key (cosign.key)")),
            other => Err(Error::usage(format!(
                "a {other:?} PEM block is not a signing key (expected {ENCRYPTED_LABEL}, PRIVATE KEY or EC PRIVATE KEY)"
            ))),
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey> {
        p256::ecdsa::SigningKey::from_pkcs8_der(der).map(SigningKey).map_err(|_| {
            Error::usage("the private key is not an ECDSA P-256 key (hoist signs with P-256, as cosign's own keys are)")
        })
    }

    /// cosign's encrypted PEM of this key, sealed with `password` (fresh salt and nonce each call).
    pub fn to_encrypted_pem(&self, password: &Secret) -> Result<String> {
        let der = self.0.to_pkcs8_der().map_err(|e| Error::other(format!("encoding the private key: {e}")))?;
        let envelope = encrypt(der.as_bytes(), password.expose().as_bytes())?;
        Ok(pem_encode(ENCRYPTED_LABEL, &envelope))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// The ASN.1 DER ECDSA signature of SHA-256(`message`) (deterministic, RFC 6979).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: DerSignature = self.0.sign(message);
        sig.as_bytes().to_vec()
    }
}

impl PublicKey {
    /// Reads a PKIX `PUBLIC KEY` PEM (cosign.pub).
    pub fn from_pem(pem: &str) -> Result<PublicKey> {
        let (label, body) = pem_block(pem)?;
        if label != "PUBLIC KEY" {
            return Err(Error::usage(format!(
                "a {label:?} PEM block is not a public key (expected PUBLIC KEY, as in cosign.pub)"
            )));
        }
        p256::ecdsa::VerifyingKey::from_public_key_der(&body)
            .map(PublicKey)
            .map_err(|_| Error::usage("the public key is not an ECDSA P-256 key"))
    }

    /// The PKIX PEM cosign writes as cosign.pub.
    pub fn to_pem(&self) -> Result<String> {
        self.0.to_public_key_pem(LineEnding::LF).map_err(|e| Error::other(format!("encoding the public key: {e}")))
    }

    /// Whether `der` is this key's ASN.1 DER signature of SHA-256(`message`).
    pub fn verify(&self, message: &[u8], der: &[u8]) -> bool {
        match Signature::from_der(der) {
            Ok(sig) => self.0.verify(message, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// The first PEM block of `text`: its label and decoded body.
fn pem_block(text: &str) -> Result<(String, Vec<u8>)> {
    let bad = || Error::usage("the key is not PEM (expected -----BEGIN ...----- lines, as cosign writes)");
    let start = text.find("-----BEGIN ").ok_or_else(bad)?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----").ok_or_else(bad)?;
    let end_marker = format!("-----END {label}-----");
    let body = &rest[..rest.find(&end_marker).ok_or_else(bad)?];
    let b64: String = body.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains(':')).collect();
    let bytes =
        B64.decode(b64.as_bytes()).map_err(|_| Error::usage(format!("the {label} PEM block is not valid base64")))?;
    Ok((label.to_string(), bytes))
}

/// PEM with 64-column lines.
fn pem_encode(label: &str, body: &[u8]) -> String {
    let b64 = B64.encode(body);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::B64.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        super::B64.decode(s).map_err(serde::de::Error::custom)
    }
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32]> {
    let params =
        scrypt::Params::new(log_n, r, p, 32).map_err(|e| Error::usage(format!("the key's scrypt parameters: {e}")))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key).map_err(|e| Error::other(format!("scrypt: {e}")))?;
    Ok(key)
}

fn encrypt(plaintext: &[u8], password: &[u8]) -> Result<Vec<u8>> {
    let mut rng = rand::rng();
    let mut salt = vec![0u8; 32];
    rng.fill_bytes(&mut salt);
    let mut nonce = vec![0u8; 24];
    rng.fill_bytes(&mut nonce);
    let key = derive(password, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)?;
    let ciphertext = XSalsa20Poly1305::new(&key.into())
        .encrypt(nonce.as_slice().into(), plaintext)
        .map_err(|_| Error::other("sealing the private key failed"))?;
    let envelope = Envelope {
        kdf: Kdf { name: "scrypt".into(), params: KdfParams { n: 1 << SCRYPT_LOG_N, r: SCRYPT_R, p: SCRYPT_P }, salt },
        cipher: Cipher { name: "nacl/secretbox".into(), nonce },
        ciphertext,
    };
    serde_json::to_vec(&envelope).map_err(|e| Error::other(format!("encoding the key envelope: {e}")))
}

fn decrypt(envelope: &[u8], password: &[u8]) -> Result<Vec<u8>> {
    let e: Envelope = serde_json::from_slice(envelope)
        .map_err(|e| Error::usage(format!("the encrypted key's envelope is not cosign's JSON: {e}")))?;
    if e.kdf.name != "scrypt" || e.cipher.name != "nacl/secretbox" {
        return Err(Error::usage(format!(
            "the encrypted key uses {}/{}; hoist reads cosign's scrypt/nacl/secretbox keys",
            e.kdf.name, e.cipher.name
        )));
    }
    let n = e.kdf.params.n;
    let log_n = n.trailing_zeros() as u8;
    if !n.is_power_of_two() || log_n == 0 || log_n > MAX_LOG_N || e.kdf.params.r > 32 || e.kdf.params.p > 16 {
        return Err(Error::usage(format!(
            "the encrypted key's scrypt parameters (N={n}, r={}, p={}) are out of range",
            e.kdf.params.r, e.kdf.params.p
        )));
    }
    if e.cipher.nonce.len() != 24 {
        return Err(Error::usage("the encrypted key's nonce is not 24 bytes"));
    }
    let key = derive(password, &e.kdf.salt, log_n, e.kdf.params.r, e.kdf.params.p)?;
    XSalsa20Poly1305::new(&key.into()).decrypt(e.cipher.nonce.as_slice().into(), e.ciphertext.as_slice()).map_err(
        |_| {
            Error::usage("decrypting the private key failed: wrong password").with_hint(
            "set the key's password in HOIST_SIGNING_PASSWORD or COSIGN_PASSWORD (empty when it was made without one)",
        )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> impl FnOnce() -> Result<Secret> + '_ {
        move || Ok(Secret::new(s))
    }

    #[test]
    fn encrypted_key_round_trips_and_refuses_a_wrong_password() {
        let key = SigningKey::generate();
        let pem = key.to_encrypted_pem(&Secret::new("s3cret")).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let back = SigningKey::from_pem(&pem, pw("s3cret")).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let e = SigningKey::from_pem(&pem, pw("wrong")).unwrap_err();
        assert!(e.message().contains("wrong password"), "{e}");
        // The envelope is cosign's JSON.
        let (_, body) = pem_block(&pem).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kdf"]["params"], serde_json::json!({"N": 32768, "r": 8, "p": 1}));
        assert_eq!(v["cipher"]["name"], "nacl/secretbox");
    }

    #[test]
    fn signatures_verify_only_with_the_right_key_and_message() {
        let key = SigningKey::generate();
        let sig = key.sign(b"payload");
        assert!(key.public_key().verify(b"payload", &sig));
        assert!(!key.public_key().verify(b"payloaD", &sig));
        assert!(!SigningKey::generate().public_key().verify(b"payload", &sig));
        assert!(!key.public_key().verify(b"payload", b"not der"));
    }

    #[test]
    fn plain_pkcs8_and_public_pem_read_back() {
        let key = SigningKey::generate();
        let pkcs8 = key.0.to_pkcs8_pem(LineEnding::LF).unwrap();
        let back = SigningKey::from_pem(&pkcs8, || panic!("a plain key needs no password")).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let pub_pem = key.public_key().to_pem().unwrap();
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(PublicKey::from_pem(&pub_pem).unwrap(), key.public_key());
        assert!(SigningKey::from_pem(&pub_pem, pw("")).unwrap_err().message().contains("public key"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = SigningKey::generate();
        let der = key.0.to_bytes();
        let shown = format!("{key:?}");
        assert_eq!(shown, "SigningKey(<redacted>)");
        assert!(!shown.contains(&hex::encode(der)));
    }

    #[test]
    fn hostile_scrypt_parameters_are_refused_before_any_work() {
        let env = serde_json::json!({"kdf": {"name": "scrypt", "params": {"N": 1u64 << 30, "r": 8, "p": 1}, "salt": ""},
            "cipher": {"name": "nacl/secretbox", "nonce": B64.encode([0u8; 24])}, "ciphertext": ""});
        let pem = pem_encode(ENCRYPTED_LABEL, env.to_string().as_bytes());
        assert!(SigningKey::from_pem(&pem, pw("x")).unwrap_err().message().contains("out of range"));
    }
}
