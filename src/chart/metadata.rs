//! The Chart.yaml and Chart.lock model as Helm reads and writes it (`pkg/chart/v2/metadata.go`,
//! `dependency.go`): the known fields only (unknown keys are dropped, as Helm's YAML → JSON → struct
//! round trip drops them), Helm's validation (which also sanitizes strings: every Unicode space → ' ',
//! non-printable characters removed), the JSON Helm puts in an OCI config (Go's field order, `<>&`
//! escaped), and the YAML written into the package (through [`super::yaml`]).

use serde::Serialize;
use serde_json::Value;

use super::version::Version;
use crate::error::{Error, Result};

pub const API_V1: &str = "v1";
pub const API_V2: &str = "v2";

/// Chart.yaml, as Helm's `chart.Metadata` (JSON field order = Go's struct order).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub home: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Maintainer>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tags: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    #[serde(skip_serializing_if = "is_false")]
    pub deprecated: bool,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kube_version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub chart_type: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Maintainer {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// A dependency (Chart.yaml `dependencies`, requirements.yaml, and Chart.lock entries).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dependency {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Always written, `""` when absent (Go has no omitempty on it).
    pub repository: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub enabled: bool,
    #[serde(rename = "import-values", skip_serializing_if = "Vec::is_empty")]
    pub import_values: Vec<Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub alias: String,
}

impl Dependency {
    /// The name it is known by in the parent: the alias, else the name.
    pub fn local_name(&self) -> &str {
        if self.alias.is_empty() {
            &self.name
        } else {
            &self.alias
        }
    }
}

/// Chart.lock / requirements.lock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lock {
    /// As written (RFC 3339); re-emitted as is.
    pub generated: String,
    pub digest: String,
    pub dependencies: Vec<Dependency>,
}

/// Go's `json.Marshal` of a value: compact, map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped.
pub fn go_json<T: Serialize>(v: &T) -> Vec<u8> {
    let s = serde_json::to_string(v).expect("chart metadata serializes");
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

// ---- reading --------------------------------------------------------------------------------------

fn parse_yaml(what: &str, data: &[u8]) -> Result<serde_norway::Value> {
    let text = std::str::from_utf8(data).map_err(|_| Error::other(format!("{what} is not UTF-8")))?;
    if text.trim().is_empty() {
        return Ok(serde_norway::Value::Null);
    }
    serde_norway::from_str(text).map_err(|e| Error::other(format!("{what} is not valid YAML: {e}")))
}

/// A scalar as the string Go would put in a string field (numbers and booleans converted).
fn scalar(what: &str, key: &str, v: &serde_norway::Value) -> Result<String> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => String::new(),
        Y::String(s) => s.clone(),
        Y::Bool(b) => b.to_string(),
        // sigs.k8s.io/yaml turns a YAML float bound for a string field into Go's
        // FormatFloat(f, 'g', -1, 32): `appVersion: 1.10` is "1.1", `version: 1.0` is "1" (quote them).
        Y::Number(n) if n.is_f64() => format!("{}", n.as_f64().unwrap_or_default() as f32),
        Y::Number(n) => n.to_string(),
        Y::Tagged(t) => return scalar(what, key, &t.value),
        _ => return Err(Error::other(format!("{what}: {key} must be a string"))),
    })
}

fn string_list(what: &str, key: &str, v: &serde_norway::Value) -> Result<Vec<String>> {
    match v {
        serde_norway::Value::Null => Ok(Vec::new()),
        serde_norway::Value::Sequence(items) => items.iter().map(|i| scalar(what, key, i)).collect(),
        _ => Err(Error::other(format!("{what}: {key} must be a list of strings"))),
    }
}

fn boolean(what: &str, key: &str, v: &serde_norway::Value) -> Result<bool> {
    match v {
        serde_norway::Value::Null => Ok(false),
        serde_norway::Value::Bool(b) => Ok(*b),
        _ => Err(Error::other(format!("{what}: {key} must be true or false"))),
    }
}

fn mapping<'a>(what: &str, v: &'a serde_norway::Value) -> Result<Vec<(String, &'a serde_norway::Value)>> {
    match v {
        serde_norway::Value::Null => Ok(Vec::new()),
        serde_norway::Value::Mapping(m) => {
            m.iter().map(|(k, v)| Ok((scalar(what, "a key", k)?, v))).collect::<Result<Vec<_>>>()
        }
        _ => Err(Error::other(format!("{what} must be a mapping"))),
    }
}

fn to_json(v: &serde_norway::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn dependency(what: &str, v: &serde_norway::Value) -> Result<Dependency> {
    if v.is_null() {
        return Err(Error::other(format!("{what}: dependencies must not contain empty or null entries")));
    }
    let mut d = Dependency::default();
    for (k, v) in mapping(what, v)? {
        match k.as_str() {
            "name" => d.name = scalar(what, "name", v)?,
            "version" => d.version = scalar(what, "version", v)?,
            "repository" => d.repository = scalar(what, "repository", v)?,
            "condition" => d.condition = scalar(what, "condition", v)?,
            "tags" => d.tags = string_list(what, "tags", v)?,
            "enabled" => d.enabled = boolean(what, "enabled", v)?,
            "import-values" => match v {
                serde_norway::Value::Sequence(items) => d.import_values = items.iter().map(to_json).collect(),
                serde_norway::Value::Null => {}
                _ => return Err(Error::other(format!("{what}: import-values must be a list"))),
            },
            "alias" => d.alias = scalar(what, "alias", v)?,
            _ => {}
        }
    }
    Ok(d)
}

fn dependencies(what: &str, v: &serde_norway::Value) -> Result<Vec<Dependency>> {
    match v {
        serde_norway::Value::Null => Ok(Vec::new()),
        serde_norway::Value::Sequence(items) => items.iter().map(|i| dependency(what, i)).collect(),
        _ => Err(Error::other(format!("{what}: dependencies must be a list"))),
    }
}

impl Metadata {
    /// Parses Chart.yaml (unknown keys dropped; an empty `apiVersion` becomes `v1`, as Helm's loader does).
    pub fn parse(data: &[u8]) -> Result<Metadata> {
        const W: &str = "Chart.yaml";
        let doc = parse_yaml(W, data)?;
        let mut m = Metadata::default();
        m.merge(W, &doc)?;
        if m.api_version.is_empty() {
            m.api_version = API_V1.into();
        }
        Ok(m)
    }

    /// Reads the `dependencies` of a v1 chart's requirements.yaml into this metadata.
    pub fn merge_requirements(&mut self, data: &[u8]) -> Result<()> {
        const W: &str = "requirements.yaml";
        let doc = parse_yaml(W, data)?;
        for (k, v) in mapping(W, &doc)? {
            if k == "dependencies" {
                self.dependencies = dependencies(W, v)?;
            }
        }
        Ok(())
    }

    fn merge(&mut self, w: &str, doc: &serde_norway::Value) -> Result<()> {
        for (k, v) in mapping(w, doc)? {
            match k.as_str() {
                "name" => self.name = scalar(w, "name", v)?,
                "home" => self.home = scalar(w, "home", v)?,
                "sources" => self.sources = string_list(w, "sources", v)?,
                "version" => self.version = scalar(w, "version", v)?,
                "description" => self.description = scalar(w, "description", v)?,
                "keywords" => self.keywords = string_list(w, "keywords", v)?,
                "maintainers" => {
                    let serde_norway::Value::Sequence(items) = v else {
                        if v.is_null() {
                            continue;
                        }
                        return Err(Error::other(format!("{w}: maintainers must be a list")));
                    };
                    self.maintainers = items
                        .iter()
                        .map(|i| {
                            if i.is_null() {
                                return Err(Error::other(format!(
                                    "{w}: maintainers must not contain empty or null entries"
                                )));
                            }
                            let mut mt = Maintainer::default();
                            for (k, v) in mapping(w, i)? {
                                match k.as_str() {
                                    "name" => mt.name = scalar(w, "maintainer name", v)?,
                                    "email" => mt.email = scalar(w, "maintainer email", v)?,
                                    "url" => mt.url = scalar(w, "maintainer url", v)?,
                                    _ => {}
                                }
                            }
                            Ok(mt)
                        })
                        .collect::<Result<_>>()?;
                }
                "icon" => self.icon = scalar(w, "icon", v)?,
                "apiVersion" => self.api_version = scalar(w, "apiVersion", v)?,
                "condition" => self.condition = scalar(w, "condition", v)?,
                "tags" => self.tags = scalar(w, "tags", v)?,
                "appVersion" => self.app_version = scalar(w, "appVersion", v)?,
                "deprecated" => self.deprecated = boolean(w, "deprecated", v)?,
                "annotations" => {
                    self.annotations = mapping(&format!("{w}: annotations"), v)?
                        .into_iter()
                        .map(|(k, v)| Ok((k.clone(), scalar(w, &format!("annotation {k}"), v)?)))
                        .collect::<Result<_>>()?;
                }
                "kubeVersion" => self.kube_version = scalar(w, "kubeVersion", v)?,
                "dependencies" => self.dependencies = dependencies(w, v)?,
                "type" => self.chart_type = scalar(w, "type", v)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Helm's `Metadata.Validate`: sanitizes the strings it names, then checks the chart's identity.
    pub fn validate(&mut self) -> Result<()> {
        let invalid = |msg: String| Error::other(format!("Chart.yaml: {msg}"));
        for s in [
            &mut self.name,
            &mut self.description,
            &mut self.home,
            &mut self.icon,
            &mut self.condition,
            &mut self.tags,
            &mut self.app_version,
            &mut self.kube_version,
        ] {
            *s = sanitize(s);
        }
        for s in self.sources.iter_mut().chain(self.keywords.iter_mut()) {
            *s = sanitize(s);
        }
        for m in &mut self.maintainers {
            for s in [&mut m.name, &mut m.email, &mut m.url] {
                *s = sanitize(s);
            }
        }
        for d in &mut self.dependencies {
            for s in [&mut d.name, &mut d.version, &mut d.repository, &mut d.condition] {
                *s = sanitize(s);
            }
            for t in &mut d.tags {
                *t = sanitize(t);
            }
        }
        if self.api_version != API_V1 && self.api_version != API_V2 {
            return Err(invalid(format!("apiVersion {:?} is not supported (v1 or v2)", self.api_version))
                .with_hint("apiVersion: v2 is the current chart format"));
        }
        if self.name.is_empty() {
            return Err(invalid("name is required".into()));
        }
        if self.name == "." || self.name == ".." || self.name.contains('/') || self.name.contains('\\') {
            return Err(invalid(format!("name {:?} is invalid (it names the archive's top directory)", self.name)));
        }
        if self.version.is_empty() {
            return Err(invalid("version is required".into()).with_hint("set version: 1.0.0, or pass --version"));
        }
        if Version::parse(&self.version).is_none() {
            return Err(invalid(format!("version {:?} is not a SemVer 2 version", self.version))
                .with_hint("versions look like 1.2.3, 1.2.3-rc.1 or 1.2.3+build.5"));
        }
        if !matches!(self.chart_type.as_str(), "" | "application" | "library") {
            return Err(invalid(format!("type {:?} must be application or library", self.chart_type)));
        }
        let mut seen = std::collections::HashSet::new();
        for d in &self.dependencies {
            if d.name.is_empty() {
                return Err(invalid("a dependency has no name".into()));
            }
            if !d.alias.is_empty() && !d.alias.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err(invalid(format!(
                    "dependency {:?} has disallowed characters in its alias {:?} (allowed: [a-zA-Z0-9_-])",
                    d.name, d.alias
                )));
            }
            if !seen.insert(d.local_name().to_string()) {
                return Err(invalid(format!("more than one dependency with name or alias {:?}", d.local_name())));
            }
        }
        Ok(())
    }

    /// The config JSON Helm pushes (`json.Marshal(Metadata)`).
    pub fn config_json(&self) -> Vec<u8> {
        go_json(self)
    }

    /// Chart.yaml as Helm writes it into a package (v1 charts keep their dependencies in requirements.yaml).
    pub fn to_yaml(&self) -> String {
        let mut v = serde_json::to_value(self).expect("metadata serializes");
        if self.api_version == API_V1 {
            if let Some(o) = v.as_object_mut() {
                o.remove("dependencies");
            }
        }
        super::yaml::emit(&v)
    }
}

impl Lock {
    pub fn parse(what: &str, data: &[u8]) -> Result<Lock> {
        let doc = parse_yaml(what, data)?;
        let mut lock = Lock::default();
        for (k, v) in mapping(what, &doc)? {
            match k.as_str() {
                "generated" => {
                    lock.generated = match v {
                        // A plain timestamp may come back tagged or as a string: keep its text.
                        serde_norway::Value::Tagged(t) => scalar(what, "generated", &t.value)?,
                        _ => scalar(what, "generated", v)?,
                    }
                }
                "digest" => lock.digest = scalar(what, "digest", v)?,
                "dependencies" => lock.dependencies = dependencies(what, v)?,
                _ => {}
            }
        }
        Ok(lock)
    }

    /// Chart.lock as Helm writes it (`generated`, `digest` and `dependencies` always present).
    pub fn to_yaml(&self) -> String {
        let deps = if self.dependencies.is_empty() {
            Value::Null
        } else {
            serde_json::to_value(&self.dependencies).expect("lock serializes")
        };
        let v = serde_json::json!({
            "generated": self.generated,
            "digest": self.digest,
            "dependencies": deps,
        });
        super::yaml::emit(&v)
    }
}

/// Helm's lock digest: sha256 of the JSON `[requested, locked]` dependency lists (`HashReq`).
pub fn lock_digest(requested: &[Dependency], locked: &[Dependency]) -> String {
    let data = go_json(&(requested, locked));
    format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data)))
}

/// Helm's `sanitizeString`: every Unicode space → ' ', non-printable characters dropped.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if c.is_control() || is_format_char(c) {
                None
            } else {
                Some(c)
            }
        })
        .collect()
}

/// Invisible format characters Go's `unicode.IsPrint` refuses (soft hyphen, zero-width and bidi marks, BOM).
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_drops_unknown_and_defaults_api_version() {
        let mut m = Metadata::parse(b"name: x\nversion: 1.0.0\nengine: gotpl\ndescription: |\n  a\n  b\n").unwrap();
        assert_eq!(m.api_version, "v1");
        m.validate().unwrap();
        assert_eq!(m.description, "a b ");
        assert_eq!(
            String::from_utf8(m.config_json()).unwrap(),
            r#"{"name":"x","version":"1.0.0","description":"a b ","apiVersion":"v1"}"#
        );
    }

    #[test]
    fn unquoted_numbers_read_as_helm_reads_them() {
        let m = Metadata::parse(b"name: x\nversion: 1.0\nappVersion: 1.10\nkubeVersion: 12\n").unwrap();
        assert_eq!((m.version.as_str(), m.app_version.as_str(), m.kube_version.as_str()), ("1", "1.1", "12"));
    }

    #[test]
    fn validation_errors_name_the_field() {
        for (doc, needle) in [
            ("apiVersion: v2\nversion: 1.0.0\n", "name is required"),
            ("apiVersion: v2\nname: a\nversion: one\n", "not a SemVer"),
            ("apiVersion: v2\nname: a\nversion: 1.0.0\ntype: lib\n", "application or library"),
            ("apiVersion: v3\nname: a\nversion: 1.0.0\n", "not supported"),
            ("apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies:\n- name: b\n- name: b\n", "more than one"),
            ("apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies:\n- name: b\n  alias: a.b\n", "alias"),
        ] {
            let e = Metadata::parse(doc.as_bytes()).unwrap().validate().unwrap_err();
            assert!(e.to_string().contains(needle), "{doc}: {e}");
        }
    }

    #[test]
    fn json_escapes_like_go() {
        let m = Metadata { kube_version: ">=1.16.0-0".into(), ..Default::default() };
        assert_eq!(String::from_utf8(m.config_json()).unwrap(), r#"{"kubeVersion":"\u003e=1.16.0-0"}"#);
    }

    #[test]
    fn lock_digest_matches_helm() {
        // bitnami nginx 22.1.1's Chart.yaml dependencies and Chart.lock (digest written by helm).
        let req = Dependency {
            name: "common".into(),
            version: "2.x.x".into(),
            repository: "oci://registry-1.docker.io/bitnamicharts".into(),
            tags: vec!["bitnami-common".into()],
            ..Default::default()
        };
        let lock = Dependency { version: "2.31.4".into(), tags: vec![], ..req.clone() };
        assert_eq!(
            lock_digest(&[req], &[lock]),
            "sha256:fc442e77200e1914dd46fe26490dcf62f44caa51db673c2f8e67d5319cd4c163"
        );
    }
}
