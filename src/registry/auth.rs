//! The auth handshake, in the order it happens:
//!
//! 1. A request goes out with whatever we know: nothing at first, Basic credentials once the registry
//!    asked for Basic, or a cached Bearer token for the request's scope set.
//! 2. A 401 carries `WWW-Authenticate`. `Basic` → resend with the credential. `Bearer realm,service`
//!    → `GET <realm>?service=…&scope=…` (one `scope` parameter each) with Basic credentials, and resend
//!    with the token.
//! 3. Tokens are cached per scope set until shortly before they expire, and shared by every concurrent
//!    request: one token request per scope set, not one per blob (a per-scope async mutex makes the
//!    first caller fetch while the others wait).
//! 4. A 401 with a token that was valid (expired early, revoked, GitLab's 5-minute tokens) fetches a
//!    new token once and resends; a second 401 is an auth failure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::Mutex;

use super::credentials::Secret;

/// What a registry's `WWW-Authenticate` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

/// Parses a `WWW-Authenticate` header value. Unknown schemes give `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            Some(Challenge::Bearer { realm: params.get("realm")?.clone(), service: params.get("service").cloned() })
        }
        _ => None,
    }
}

/// `k="v", k2=v2` → map; quoted values may hold commas and `\"`.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
    out
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub struct Token {
    pub value: Secret,
    pub refresh_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The token server's answer.
#[derive(serde::Deserialize)]
pub struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token, valid until a margin before its announced expiry (60 s when the server is silent).
    pub fn into_token(self, fetched_at: Instant) -> Option<Token> {
        let value = self.token.filter(|t| !t.is_empty()).or(self.access_token)?;
        let life = Duration::from_secs(self.expires_in.unwrap_or(60).max(1));
        // Refresh a little early: a tenth of the lifetime, at most 30 s.
        let margin = (life / 10).min(Duration::from_secs(30));
        Some(Token { value: Secret::new(value), refresh_at: fetched_at + life - margin })
    }
}

/// Cached tokens keyed by scope set, with one async lock per key so concurrent callers share a fetch.
#[derive(Default)]
pub struct TokenCache {
    slots: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<Token>>>>>,
}

impl TokenCache {
    pub fn slot(&self, key: &str) -> Arc<Mutex<Option<Token>>> {
        self.slots.lock().expect("token cache lock").entry(key.to_string()).or_default().clone()
    }
}

/// The cache key of a scope set (order-insensitive).
pub fn scope_key(scopes: &[String]) -> String {
    let mut s = scopes.to_vec();
    s.sort();
    s.dedup();
    s.join(" ")
}

/// A repository scope: `repository:<name>:<actions>`.
pub fn repo_scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

/// One entry of a JWT's `access` claim (docker's token spec).
#[derive(serde::Deserialize)]
struct Access {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    actions: Vec<String>,
}

/// The `access` claim of a JWT, or `None` when the token is not a readable JWT (opaque tokens are
/// fine; we just cannot look inside). The signature is not checked: this only reads what the token
/// server says it granted, to explain a refusal early.
fn jwt_access(token: &str) -> Option<Vec<Access>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    #[derive(serde::Deserialize)]
    struct Claims {
        #[serde(default)]
        access: Vec<Access>,
    }
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    Some(claims.access)
}

/// The actions a JWT grants on `repository`, or `None` when the token is not a readable JWT.
pub fn jwt_actions(token: &str, repository: &str) -> Option<Vec<String>> {
    Some(
        jwt_access(token)?
            .into_iter()
            .filter(|a| a.kind == "repository" && a.name == repository)
            .flat_map(|a| a.actions)
            .collect(),
    )
}

/// What a JWT grants, as scopes (`repository:p/a:pull,push`), for verbose mode; `None` when opaque.
pub fn jwt_scopes(token: &str) -> Option<Vec<String>> {
    Some(jwt_access(token)?.into_iter().map(|a| format!("{}:{}:{}", a.kind, a.name, a.actions.join(","))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_with_commas_in_scope() {
        let c = parse_challenge(
            r#"Bearer realm="https://h.io/service/token",service="harbor-registry",scope="repository:p/a:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://h.io/service/token".into(),
                service: Some("harbor-registry".into())
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None, "a Bearer challenge needs a realm");
    }

    #[test]
    fn params_unquoted_and_escaped() {
        let p = parse_params(r#"realm=http://x/t, service="a \"b\"""#);
        assert_eq!(p["realm"], "http://x/t");
        assert_eq!(p["service"], "a \"b\"");
    }

    #[test]
    fn token_lifetime_and_fallbacks() {
        let now = Instant::now();
        let t =
            TokenResponse { token: None, access_token: Some("a".into()), expires_in: None }.into_token(now).unwrap();
        assert_eq!(t.value.expose(), "a");
        assert_eq!(t.refresh_at, now + Duration::from_secs(54));
        let t =
            TokenResponse { token: Some("t".into()), access_token: None, expires_in: Some(2) }.into_token(now).unwrap();
        assert_eq!(t.refresh_at, now + Duration::from_millis(1800));
        assert!(TokenResponse { token: None, access_token: None, expires_in: None }.into_token(now).is_none());
    }

    #[test]
    fn reads_jwt_access() {
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let tok = format!(
            "{}.{}.sig",
            enc("{}"),
            enc(
                r#"{"access":[{"type":"repository","name":"p/a","actions":["pull","push"]},{"type":"repository","name":"p/b","actions":["pull"]}]}"#
            )
        );
        assert_eq!(jwt_actions(&tok, "p/a").unwrap(), ["pull", "push"]);
        assert_eq!(jwt_actions(&tok, "p/c").unwrap(), Vec::<String>::new());
        assert!(jwt_actions("opaque-token", "p/a").is_none());
        assert_eq!(jwt_scopes(&tok).unwrap(), ["repository:p/a:pull,push", "repository:p/b:pull"]);
        assert!(jwt_scopes("opaque-token").is_none());
    }

    #[test]
    fn scope_keys_ignore_order() {
        assert_eq!(scope_key(&["b".into(), "a".into(), "a".into()]), scope_key(&["a".into(), "b".into()]));
    }
}
