//! Writing credentials for the tools that run after hoist in a job (`hoist login` / `hoist logout`): docker's
//! `config.json` (read by docker, skopeo `--authfile`, buildah, crane, hoist itself) and Helm's
//! `registry/config.json` (same format). Entries are `auths[host] = {"auth": base64(user:password)}`; every
//! other key and entry of an existing file is kept. Files are replaced atomically (a temporary file in the same
//! directory, renamed over the old one) with mode 0600, directories created 0700.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::credentials::{registry_key_matches, Credential};
use crate::ci::{vars, Env};
use crate::error::{Error, Result};

/// Helm's registry credentials file, as Helm finds it: `$HELM_REGISTRY_CONFIG`, else
/// `$HELM_CONFIG_HOME/registry/config.json`, else `$XDG_CONFIG_HOME/helm/registry/config.json`, else
/// `~/.config/helm/registry/config.json`.
pub fn helm_config_path(env: &dyn Env) -> Option<PathBuf> {
    if let Some(f) = env.non_empty(vars::HELM_REGISTRY_CONFIG) {
        return Some(f.into());
    }
    let config_home = env
        .non_empty(vars::HELM_CONFIG_HOME)
        .map(PathBuf::from)
        .or_else(|| env.non_empty(vars::XDG_CONFIG_HOME).map(|x| Path::new(&x).join("helm")))
        .or_else(|| env.non_empty(vars::HOME).map(|h| Path::new(&h).join(".config").join("helm")))?;
    Some(config_home.join("registry").join("config.json"))
}

/// What is in a config file besides our entry that decides which credential tools use.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// A `credsStore` or `credHelpers[host]` that docker (and hoist) ask before `auths`.
    pub helper_first: Option<String>,
}

fn read(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let shown = path.display();
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Default::default()),
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            // serde_json's message names a line and column, never the content.
            Ok(_) => Err(Error::usage(format!("{shown} is not a JSON object"))),
            Err(e) => Err(Error::usage(format!("{shown} is not a docker config.json document: {e}"))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(Error::io(format!("reading {shown}"), e)),
    }
}

fn write(path: &Path, doc: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut bytes = serde_json::to_vec_pretty(doc).expect("JSON map serializes");
    bytes.push(b'\n');
    crate::fsutil::write_atomic_with_mode(path, &bytes, 0o600)
}

/// Removes every `auths` key naming `host` (`host`, `https://host/`, …); true when one was there.
fn drop_host(doc: &mut serde_json::Map<String, serde_json::Value>, host: &str) -> bool {
    let Some(serde_json::Value::Object(auths)) = doc.get_mut("auths") else {
        return false;
    };
    let before = auths.len();
    auths.retain(|k, _| !registry_key_matches(k, host));
    auths.len() != before
}

/// Stores `cred` for `host` in the config file at `path` (created if missing).
pub fn store(path: &Path, host: &str, cred: &Credential) -> Result<Stored> {
    let mut doc = read(path)?;
    drop_host(&mut doc, host);
    let raw = format!("{}:{}", cred.username, cred.password.expose());
    let entry = serde_json::json!({ "auth": base64::engine::general_purpose::STANDARD.encode(raw) });
    let auths = doc.entry("auths").or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    auths.as_object_mut().expect("auths is an object").insert(host.to_string(), entry);
    let helper = doc
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| h.iter().find(|(k, _)| registry_key_matches(k, host)).map(|(_, v)| v.clone()))
        .or_else(|| doc.get("credsStore").cloned())
        .and_then(|v| v.as_str().map(|s| format!("docker-credential-{s}")));
    write(path, &doc)?;
    Ok(Stored { helper_first: helper })
}

/// Removes `host`'s entry from the config file at `path`; false when there was none (the file is then untouched).
pub fn remove(path: &Path, host: &str) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let mut doc = read(path)?;
    if !drop_host(&mut doc, host) {
        return Ok(false);
    }
    write(path, &doc)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::MapEnv;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn store_keeps_other_entries_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"other.io":{"auth":"eDp5"},"https://h.io/":{"auth":"old"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let stored = store(&path, "h.io", &Credential::new("robot$p+ci", "pw")).unwrap();
        assert_eq!(stored, Stored::default());
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["psFormat"], "x");
        assert_eq!(doc["auths"]["other.io"]["auth"], "eDp5");
        assert!(doc["auths"].get("https://h.io/").is_none(), "{doc}");
        let auth = base64::engine::general_purpose::STANDARD.decode(doc["auths"]["h.io"]["auth"].as_str().unwrap());
        assert_eq!(auth.unwrap(), b"robot$p+ci:pw");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(remove(&path, "h.io").unwrap());
        assert!(!remove(&path, "h.io").unwrap());
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["auths"].as_object().unwrap().len(), 1);
    }

    #[test]
    fn store_reports_a_helper_that_wins_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credsStore":"desktop"}"#).unwrap();
        let s = store(&path, "h.io", &Credential::new("u", "p")).unwrap();
        assert_eq!(s.helper_first.as_deref(), Some("docker-credential-desktop"));
        std::fs::write(&path, "{\"auths\": secret").unwrap();
        let e = store(&path, "h.io", &Credential::new("u", "p")).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"auths\": secret", "a bad file is left alone");
    }

    #[test]
    fn helm_paths() {
        let env = MapEnv::new([("HOME", "/home/u")]);
        assert_eq!(helm_config_path(&env).unwrap(), Path::new("/home/u/.config/helm/registry/config.json"));
        let env = MapEnv::new([("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/x")]);
        assert_eq!(helm_config_path(&env).unwrap(), Path::new("/x/helm/registry/config.json"));
        let env = MapEnv::new([("HOME", "/home/u"), ("HELM_REGISTRY_CONFIG", "/r.json")]);
        assert_eq!(helm_config_path(&env).unwrap(), Path::new("/r.json"));
    }
}
