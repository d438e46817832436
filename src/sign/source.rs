//! Where the signing key and its password come from: `--key FILE`, else `HOIST_SIGNING_KEY`, else
//! cosign's `COSIGN_PRIVATE_KEY` (each the PEM itself or a path to it — a GitLab CI/CD variable of type
//! File gives a path); the password from `HOIST_SIGNING_PASSWORD`, else `COSIGN_PASSWORD` (set but empty
//! is the empty password, as in cosign), else a prompt when standard input is a terminal.
//!
//! Keys are local files or PEM text only. `--key` is where a KMS URI (`awskms://`, `hashivault://`) or
//! keyless signing (no key: a CI ID token, Fulcio, Rekor) would come later; both are refused clearly now.

use std::io::IsTerminal;
use std::path::Path;

use super::keys::{PublicKey, SigningKey};
use crate::ci::{vars, Env};
use crate::error::{Error, Result};
use crate::registry::Secret;

/// Key files larger than this are not keys (a PEM key is a few hundred bytes).
const MAX_KEY_BYTES: u64 = 64 << 10;

/// The signing key from `--key` or the environment.
pub fn signing_key(flag: Option<&Path>, env: &dyn Env) -> Result<SigningKey> {
    let (text, from) = match flag {
        Some(path) => (read_key_file(path)?, format!("--key {}", path.display())),
        None => {
            let (var, value) = [vars::HOIST_SIGNING_KEY, vars::COSIGN_PRIVATE_KEY]
                .into_iter()
                .find_map(|v| env.non_empty(v).map(|x| (v, x)))
                .ok_or_else(|| {
                    Error::usage("no signing key: pass --key cosign.key, or set HOIST_SIGNING_KEY (the PEM or its path)")
                        .with_hint("in GitLab CI, store the key as a CI/CD variable of type File named HOIST_SIGNING_KEY; keyless signing is not supported yet")
                })?;
            (pem_or_path(&value, var)?, var.to_string())
        }
    };
    SigningKey::from_pem(&text, || password(env)).map_err(|e| e.context(format!("reading the signing key from {from}")))
}

/// The public key from `--key` or `HOIST_VERIFY_KEY` (the PEM or its path).
pub fn public_key(flag: Option<&Path>, env: &dyn Env) -> Result<PublicKey> {
    let (text, from) = match flag {
        Some(path) => (read_key_file(path)?, format!("--key {}", path.display())),
        None => {
            let value = env.non_empty(vars::HOIST_VERIFY_KEY).ok_or_else(|| {
                Error::usage("no public key: pass --key cosign.pub, or set HOIST_VERIFY_KEY (the PEM or its path)")
            })?;
            (pem_or_path(&value, vars::HOIST_VERIFY_KEY)?, vars::HOIST_VERIFY_KEY.to_string())
        }
    };
    PublicKey::from_pem(&text).map_err(|e| e.context(format!("reading the public key from {from}")))
}

/// The key password: the variables, else a prompt on a terminal.
pub fn password(env: &dyn Env) -> Result<Secret> {
    if let Some(pw) = [vars::HOIST_SIGNING_PASSWORD, vars::COSIGN_PASSWORD].into_iter().find_map(|v| env.var(v)) {
        return Ok(Secret::new(pw));
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Password for the private key: ")
            .map(Secret::new)
            .map_err(|e| Error::usage(format!("reading the password from the terminal: {e}")));
    }
    Err(Error::usage("the signing key is encrypted and no password was given")
        .with_hint("set HOIST_SIGNING_PASSWORD (or COSIGN_PASSWORD; empty for a key made without a password)"))
}

/// A new key's password: the variables, else asked twice on a terminal.
pub fn new_password(env: &dyn Env) -> Result<Secret> {
    if let Some(pw) = [vars::HOIST_SIGNING_PASSWORD, vars::COSIGN_PASSWORD].into_iter().find_map(|v| env.var(v)) {
        return Ok(Secret::new(pw));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage("no password for the new key").with_hint(
            "set HOIST_SIGNING_PASSWORD (or COSIGN_PASSWORD; empty for no password), or run on a terminal",
        ));
    }
    let tty = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map_err(|e| Error::usage(format!("reading the password from the terminal: {e}")))
    };
    let first = tty("Enter password for private key: ")?;
    if tty("Enter password for private key again: ")? != first {
        return Err(Error::usage("the passwords do not match"));
    }
    Ok(Secret::new(first))
}

/// A variable's value as PEM text: itself when it holds PEM, else the file it names.
fn pem_or_path(value: &str, var: &str) -> Result<String> {
    if value.contains("-----BEGIN ") {
        return Ok(value.to_string());
    }
    refuse_uri(value)?;
    read_key_file(Path::new(value.trim())).map_err(|e| e.context(format!("{var} is neither PEM nor a readable file")))
}

fn read_key_file(path: &Path) -> Result<String> {
    refuse_uri(&path.to_string_lossy())?;
    let meta = std::fs::metadata(path).map_err(|e| Error::usage(format!("reading key {}: {e}", path.display())))?;
    if meta.len() > MAX_KEY_BYTES {
        return Err(Error::usage(format!("{} is {} bytes: not a PEM key", path.display(), meta.len())));
    }
    std::fs::read_to_string(path).map_err(|e| Error::usage(format!("reading key {}: {e}", path.display())))
}

/// KMS and other URIs cosign accepts as keys are not read yet.
fn refuse_uri(value: &str) -> Result<()> {
    match value.split_once("://") {
        Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Err(Error::usage(format!("{scheme}:// keys (KMS, Vault, Kubernetes secrets) are not supported yet"))
                .with_hint("export the key to a PEM file (cosign.key) and pass its path"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::MapEnv;

    #[test]
    fn key_from_variable_pem_or_path_with_cosigns_password_variable() {
        let key = SigningKey::generate();
        let pem = key.to_encrypted_pem(&Secret::new("pw")).unwrap();
        let env = MapEnv::new([(vars::COSIGN_PRIVATE_KEY, pem.as_str()), (vars::COSIGN_PASSWORD, "pw")]);
        assert_eq!(signing_key(None, &env).unwrap().public_key(), key.public_key());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cosign.key");
        std::fs::write(&path, &pem).unwrap();
        let env = MapEnv::new([
            (vars::HOIST_SIGNING_KEY, path.to_str().unwrap()),
            (vars::HOIST_SIGNING_PASSWORD, "pw"),
            (vars::COSIGN_PASSWORD, "not this one"),
        ]);
        assert_eq!(signing_key(None, &env).unwrap().public_key(), key.public_key());
    }

    #[test]
    fn an_empty_password_variable_is_the_empty_password() {
        let key = SigningKey::generate();
        let pem = key.to_encrypted_pem(&Secret::new("")).unwrap();
        let env = MapEnv::new([(vars::HOIST_SIGNING_KEY, pem.as_str()), (vars::COSIGN_PASSWORD, "")]);
        assert_eq!(signing_key(None, &env).unwrap().public_key(), key.public_key());
    }

    #[test]
    fn missing_keys_and_kms_uris_say_what_to_do() {
        let e = signing_key(None, &MapEnv::default()).unwrap_err();
        assert!(e.message().contains("--key") && e.hint().unwrap().contains("type File"), "{e}");
        let env = MapEnv::new([(vars::HOIST_SIGNING_KEY, "awskms:///alias/x")]);
        assert!(signing_key(None, &env).unwrap_err().message().contains("awskms:// keys"));
    }
}
