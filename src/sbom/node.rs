//! JavaScript: `package-lock.json`, `yarn.lock` (v1 and berry), `pnpm-lock.yaml` (v5 to v9) and
//! `package.json` (every one with a name and a version: in an image that is the app and each
//! installed `node_modules/*/package.json`, which is what syft lists there).

use std::collections::BTreeMap;

use serde_json::Value;

use super::Package;

fn npm(name: &str, version: &str, at: &str) -> Option<Package> {
    (!name.is_empty() && !version.is_empty()).then(|| Package::new("npm", name, version, at))
}

/// `package-lock.json` v2/v3 (`packages`, keyed `node_modules/…`) and v1 (`dependencies`).
pub fn npm_lock(bytes: &[u8], at: &str) -> Vec<Package> {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(packages) = v["packages"].as_object() {
        for (key, p) in packages {
            let Some(idx) = key.rfind("node_modules/") else { continue };
            if p["link"].as_bool() == Some(true) {
                continue;
            }
            let name = p["name"].as_str().unwrap_or(&key[idx + "node_modules/".len()..]);
            out.extend(npm(name, p["version"].as_str().unwrap_or_default(), at));
        }
    } else if let Some(deps) = v["dependencies"].as_object() {
        for (name, p) in deps {
            out.extend(npm(name, p["version"].as_str().unwrap_or_default(), at));
        }
    }
    out
}

/// `package.json`: the package it describes, when it has a name. Without a version it is listed
/// as syft lists it: version `UNKNOWN`, a purl without one.
pub fn package_json(bytes: &[u8], at: &str) -> Vec<Package> {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else { return Vec::new() };
    let name = v["name"].as_str().unwrap_or_default();
    match v["version"].as_str().unwrap_or_default() {
        _ if name.is_empty() => Vec::new(),
        "" => vec![Package::with_purl("npm", super::purl("npm", name, ""), name, super::UNKNOWN, at)],
        version => vec![Package::new("npm", name, version, at)],
    }
}

/// The package name in a lockfile key such as `"@scope/pkg@^1.0.0, @scope/pkg@^1.1.0"` (yarn v1)
/// or `"pkg@npm:^1.0.0"` (berry): the first specifier, up to its last `@` that is not a scope's.
fn name_of_key(key: &str) -> &str {
    let first = key.split(',').next().unwrap_or_default().trim().trim_matches('"');
    match first.char_indices().skip(1).find(|&(_, c)| c == '@') {
        Some((i, _)) => &first[..i],
        None => first,
    }
}

/// `yarn.lock`: v1 (its own format: an unindented key line, then `  version "1.2.3"`) and berry
/// (YAML, `__metadata` first). Each name@version once.
pub fn yarn_lock(bytes: &[u8], at: &str) -> Vec<Package> {
    let text = String::from_utf8_lossy(bytes);
    let mut seen = BTreeMap::new();
    if text.lines().any(|l| l.starts_with("__metadata:")) {
        let Ok(doc) = serde_norway::from_str::<BTreeMap<String, serde_norway::Value>>(&text) else {
            return Vec::new();
        };
        for (key, entry) in &doc {
            if key == "__metadata" {
                continue;
            }
            let version = match &entry["version"] {
                serde_norway::Value::String(s) => s.clone(),
                serde_norway::Value::Number(n) => n.to_string(),
                _ => continue,
            };
            seen.insert((name_of_key(key).to_string(), version), ());
        }
    } else {
        let mut name: Option<String> = None;
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if !line.starts_with(' ') {
                name = Some(name_of_key(line.trim_end_matches(':')).to_string());
            } else if let (Some(n), Some(v)) = (&name, line.strip_prefix("  version ")) {
                seen.insert((n.clone(), v.trim().trim_matches('"').to_string()), ());
            }
        }
    }
    seen.into_keys().filter_map(|(n, v)| npm(&n, &v, at)).collect()
}

/// `pnpm-lock.yaml`: every key of `packages` (`/name@1.0.0(peer@2)` in v6, `name@1.0.0` in v9,
/// `/name/1.0.0_peer` in v5) but those marked `dev: true`, as syft leaves dev dependencies out.
pub fn pnpm_lock(bytes: &[u8], at: &str) -> Vec<Package> {
    let Ok(doc) = serde_norway::from_slice::<serde_norway::Value>(bytes) else { return Vec::new() };
    let lock_version = match &doc["lockfileVersion"] {
        serde_norway::Value::String(s) => s.parse::<f64>().unwrap_or(9.0),
        serde_norway::Value::Number(n) => n.as_f64().unwrap_or(9.0),
        _ => 9.0,
    };
    let Some(packages) = doc["packages"].as_mapping() else { return Vec::new() };
    let sep = if lock_version < 6.0 { '/' } else { '@' };
    let mut seen = BTreeMap::new();
    for (key, entry) in packages {
        let Some(key) = key.as_str() else { continue };
        if entry["dev"].as_bool() == Some(true) {
            continue;
        }
        let key = key.split('(').next().unwrap_or_default().trim_start_matches('/');
        let Some(i) = key.rfind(sep).filter(|&i| i > 0) else { continue };
        let (name, mut version) = (&key[..i], &key[i + 1..]);
        if lock_version < 6.0 && version.starts_with(|c: char| c.is_ascii_digit()) {
            version = version.split('_').next().unwrap_or(version);
        }
        seen.insert((name.to_string(), version.to_string()), ());
    }
    seen.into_keys().filter_map(|(n, v)| npm(&n, &v, at)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purls(p: Vec<Package>) -> Vec<String> {
        p.into_iter().map(|p| p.purl).collect()
    }

    #[test]
    fn lockfiles_and_package_json() {
        let lock = br#"{"lockfileVersion":3,"packages":{"":{"name":"app","version":"1.0.0"},
            "node_modules/left-pad":{"version":"1.3.0"},"node_modules/a/node_modules/b":{"version":"2.0.0"}}}"#;
        assert_eq!(purls(npm_lock(lock, "/app/package-lock.json")), vec!["pkg:npm/b@2.0.0", "pkg:npm/left-pad@1.3.0"]);

        let v1 = b"# yarn lockfile v1\n\n\"@babel/code-frame@^7.0.0\", \"@babel/code-frame@^7.10.4\":\n  \
                   version \"7.12.13\"\n  resolved \"https://r/x.tgz\"\n\nleft-pad@^1.3.0:\n  version \"1.3.0\"\n";
        assert_eq!(
            purls(yarn_lock(v1, "/yarn.lock")),
            vec!["pkg:npm/%40babel/code-frame@7.12.13", "pkg:npm/left-pad@1.3.0"]
        );
        let berry = b"__metadata:\n  version: 8\n  cacheKey: 10c0\n\n\"left-pad@npm:^1.3.0\":\n  version: 1.3.0\n  \
                      resolution: \"left-pad@npm:1.3.0\"\n\n\"@types/node@npm:^20, @types/node@npm:^20.1\":\n  version: 20.1.0\n";
        assert_eq!(
            purls(yarn_lock(berry, "/yarn.lock")),
            vec!["pkg:npm/%40types/node@20.1.0", "pkg:npm/left-pad@1.3.0"]
        );

        let v9 = b"lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      ms:\n        specifier: ^2.1.3\n        \
                   version: 2.1.3\npackages:\n  ms@2.1.3:\n    resolution: {integrity: sha512-x}\n  \
                   '@types/node@20.1.0':\n    resolution: {integrity: sha512-y}\n";
        assert_eq!(purls(pnpm_lock(v9, "/pnpm-lock.yaml")), vec!["pkg:npm/%40types/node@20.1.0", "pkg:npm/ms@2.1.3"]);
        let v6 = b"lockfileVersion: '6.0'\npackages:\n  /react-dom@18.2.0(react@18.2.0):\n    dev: false\n  \
                   /typescript@5.0.0:\n    dev: true\n";
        assert_eq!(purls(pnpm_lock(v6, "/pnpm-lock.yaml")), vec!["pkg:npm/react-dom@18.2.0"]);
        let v5 = b"lockfileVersion: 5.4\npackages:\n  /@babel/core/7.16.7_acorn@8.8.0:\n    dev: false\n";
        assert_eq!(purls(pnpm_lock(v5, "/pnpm-lock.yaml")), vec!["pkg:npm/%40babel/core@7.16.7"]);

        assert_eq!(purls(package_json(br#"{"name":"@s/x","version":"1.0.0"}"#, "/p")), vec!["pkg:npm/%40s/x@1.0.0"]);
        assert_eq!(purls(package_json(br#"{"name":"x"}"#, "/p")), vec!["pkg:npm/x"]);
        assert!(package_json(br#"{"version":"1.0.0"}"#, "/p").is_empty());
    }
}
