//! An in-process Docker-style token issuer for the test registry: axum on `127.0.0.1:0` in a background thread
//! with its own tokio runtime (so sync tests can use it), answering `GET /token?service=…&scope=…&scope=…` with
//! Basic credentials. It signs ES256 JWTs that distribution 2.8 verifies: the signing key's self-signed
//! certificate is the registry's `rootcertbundle`, the header's `kid` is the libtrust key ID of the public key.
//! It records every request (user, scopes, what it granted) for the tests, supports per-user grants, short
//! lifetimes, injected failures and Harbor's quirk of answering bad credentials with 200 and an anonymous token.
//!
//! distribution accepts a token until `exp` **plus 60 s of leeway**; so that a token really stops working at
//! the registry after [`TokenIssuerOpts::lifetime`], the issuer by default writes `exp = iat + lifetime - 60`
//! (see [`TokenIssuerOpts::compensate_registry_leeway`]) while `expires_in` says `lifetime`.

use super::http::{self, HttpAuth, HttpResponse};
use super::server::ServerThread;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// distribution's clock-skew allowance on `exp` and `nbf` (registry/auth/token: `Leeway = 60 * time.Second`).
pub const DISTRIBUTION_LEEWAY_SECS: u64 = 60;

/// What a user may get on repositories matching `repository` (exact name, or a prefix ending in `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub repository: String,
    /// Allowed actions (`pull`, `push`, `delete`, `*`); `*` allows whatever is requested.
    pub actions: Vec<String>,
}

impl Grant {
    pub fn new(repository: &str, actions: &[&str]) -> Grant {
        Grant { repository: repository.to_string(), actions: actions.iter().map(|s| s.to_string()).collect() }
    }

    fn matches(&self, name: &str) -> bool {
        match self.repository.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => self.repository == name,
        }
    }
}

/// Token issuer behaviour. Can be changed while running with [`TokenIssuer::update_opts`].
#[derive(Debug, Clone)]
pub struct TokenIssuerOpts {
    /// user → password.
    pub users: BTreeMap<String, String>,
    /// user → grants. A user absent here gets every scope it asks for.
    pub grants: BTreeMap<String, Vec<Grant>>,
    /// How long a token works at the registry (and the `expires_in` sent). Whole seconds.
    pub lifetime: Duration,
    /// Harbor: wrong credentials get 200 and an anonymous token with no access (instead of 401).
    pub bad_credentials_get_anonymous_token: bool,
    /// Requests without credentials get an anonymous token with no access (instead of 401).
    pub anonymous_allowed: bool,
    /// Write `exp = iat + lifetime - 60` so distribution's 60 s leeway does not stretch the lifetime.
    pub compensate_registry_leeway: bool,
    /// Leave `expires_in` out of the response (clients must then assume 60 s).
    pub omit_expires_in: bool,
    /// Answer only `access_token` (no `token` field), like some OAuth-ish servers.
    pub only_access_token: bool,
    /// The `service` the registry is configured with (`aud` claim).
    pub service: String,
    /// The `iss` claim the registry trusts.
    pub issuer: String,
    /// The realm's host name (default `127.0.0.1`). go-containerregistry (crane) refuses a realm on a private
    /// IP literal other than the registry's own host:port (its SSRF guard), so tests that let crane judge a
    /// token registry use `localhost`.
    pub realm_host: String,
}

impl Default for TokenIssuerOpts {
    fn default() -> Self {
        let mut users = BTreeMap::new();
        users.insert("hoist".to_string(), "hoist-secret".to_string());
        TokenIssuerOpts {
            users,
            grants: BTreeMap::new(),
            lifetime: Duration::from_secs(300),
            bad_credentials_get_anonymous_token: false,
            anonymous_allowed: false,
            compensate_registry_leeway: true,
            omit_expires_in: false,
            only_access_token: false,
            service: "hoist-test-registry".to_string(),
            issuer: "hoist-test-token-issuer".to_string(),
            realm_host: "127.0.0.1".to_string(),
        }
    }
}

impl TokenIssuerOpts {
    /// Default options with exactly one user.
    pub fn with_user(user: &str, pass: &str) -> Self {
        let mut o = TokenIssuerOpts::default();
        o.users.clear();
        o.users.insert(user.to_string(), pass.to_string());
        o
    }

    pub fn user(mut self, user: &str, pass: &str) -> Self {
        self.users.insert(user.to_string(), pass.to_string());
        self
    }

    pub fn grant(mut self, user: &str, grant: Grant) -> Self {
        self.grants.entry(user.to_string()).or_default().push(grant);
        self
    }

    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    pub fn harbor_bad_credentials_quirk(mut self) -> Self {
        self.bad_credentials_get_anonymous_token = true;
        self
    }

    /// The first user (by name) and its password: the credentials helpers use by default.
    pub fn default_credentials(&self) -> Option<(String, String)> {
        self.users.iter().next().map(|(u, p)| (u.clone(), p.clone()))
    }
}

/// One request the issuer answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The Basic user name sent, if any.
    pub user: Option<String>,
    /// Whether the credentials were right.
    pub authenticated: bool,
    pub service: Option<String>,
    /// Every `scope` parameter, as sent (one scope per parameter).
    pub scopes: Vec<String>,
    /// What the token allows: (type, name, actions).
    pub granted: Vec<(String, String, Vec<String>)>,
    /// The HTTP status answered.
    pub status: u16,
    /// The token handed out (200 answers only), so tests can look for it where it must not be.
    pub token: Option<String>,
}

struct Signer {
    key: EcdsaKeyPair,
    kid: String,
    rng: ring::rand::SystemRandom,
}

struct Shared {
    opts: Mutex<TokenIssuerOpts>,
    requests: Mutex<Vec<TokenRequest>>,
    /// Injected failures: answer this status to the next N requests.
    fail_next: Mutex<(usize, u16)>,
    signer: Signer,
}

/// A running token issuer; stops on drop.
pub struct TokenIssuer {
    port: u16,
    shared: Arc<Shared>,
    cert_path: PathBuf,
    _dir: tempfile::TempDir,
    _server: ServerThread,
}

impl TokenIssuer {
    /// Generates a signing key and certificate, and starts serving on `127.0.0.1:<free port>`.
    pub fn start(opts: TokenIssuerOpts) -> TokenIssuer {
        let dir = tempfile::Builder::new().prefix("hoist-token-issuer").tempdir().expect("tempdir for token issuer");
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("cert params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "hoist test token issuer");
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).expect("self-signed token cert");
        let cert_path = dir.path().join("token-signing.crt");
        std::fs::write(&cert_path, cert.pem()).expect("write token cert");

        let kid = libtrust_key_id(&key.subject_public_key_info());
        let signing = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            key.serialized_der(),
            &ring::rand::SystemRandom::new(),
        )
        .expect("ring key from PKCS#8");
        let shared = Arc::new(Shared {
            opts: Mutex::new(opts),
            requests: Mutex::new(Vec::new()),
            fail_next: Mutex::new((0, 503)),
            signer: Signer { key: signing, kid, rng: ring::rand::SystemRandom::new() },
        });

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind token issuer");
        let port = listener.local_addr().expect("local addr").port();
        let app = axum::Router::new().route("/token", axum::routing::get(token_handler)).with_state(shared.clone());
        let server = ServerThread::axum("token-issuer", 0, listener, app);
        TokenIssuer { port, shared, cert_path, _dir: dir, _server: server }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The realm for the registry config: `http://127.0.0.1:PORT/token` (the host is `realm_host`).
    pub fn realm(&self) -> String {
        format!("http://{}:{}/token", self.shared.opts.lock().unwrap().realm_host, self.port)
    }

    /// PEM certificate of the signing key (the registry's `rootcertbundle`).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The libtrust key ID put in every token's `kid`.
    pub fn kid(&self) -> String {
        self.shared.signer.kid.clone()
    }

    pub fn service(&self) -> String {
        self.shared.opts.lock().unwrap().service.clone()
    }

    pub fn issuer(&self) -> String {
        self.shared.opts.lock().unwrap().issuer.clone()
    }

    pub fn opts(&self) -> TokenIssuerOpts {
        self.shared.opts.lock().unwrap().clone()
    }

    /// Changes the issuer's behaviour from now on (users, grants, lifetime, quirks).
    pub fn update_opts(&self, f: impl FnOnce(&mut TokenIssuerOpts)) {
        f(&mut self.shared.opts.lock().unwrap());
    }

    /// Answers `status` (e.g. 503) to the next `n` token requests, before looking at credentials.
    pub fn fail_next(&self, n: usize, status: u16) {
        *self.shared.fail_next.lock().unwrap() = (n, status);
    }

    /// Number of token requests answered (any outcome).
    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Every scope requested, over all requests, in order.
    pub fn requested_scopes(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().iter().flat_map(|r| r.scopes.clone()).collect()
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn reset_counters(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// Signs a token directly (no HTTP, not counted): `access` = (type, name, actions).
    pub fn mint(&self, subject: &str, access: &[(&str, &str, &[&str])], lifetime: Duration) -> String {
        let access: Vec<(String, String, Vec<String>)> = access
            .iter()
            .map(|(t, n, a)| (t.to_string(), n.to_string(), a.iter().map(|s| s.to_string()).collect()))
            .collect();
        let opts = self.opts();
        sign_token(&self.shared.signer, &opts, subject, &access, lifetime.as_secs(), now_secs())
    }

    /// Asks for a token over HTTP like a client would (counted like any request).
    pub fn fetch(&self, creds: Option<(&str, &str)>, scopes: &[&str]) -> HttpResponse {
        let service = self.service();
        let mut path = format!("/token?service={}", enc(&service));
        for s in scopes {
            path.push_str(&format!("&scope={}", enc(s)));
        }
        let auth = match creds {
            Some((u, p)) => HttpAuth::Basic(u.to_string(), p.to_string()),
            None => HttpAuth::None,
        };
        http::request("GET", &self.host(), &path, None, &auth, &[], b"").expect("token request to the test issuer")
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// libtrust's key ID: SHA-256 of the DER SubjectPublicKeyInfo, first 30 bytes, base32 (standard alphabet),
/// 48 characters in 12 groups of 4 joined by `:`.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let hash = sha2::Sha256::digest(spki_der);
    let b32 = data_encoding::BASE32.encode(&hash[..30]);
    debug_assert_eq!(b32.len(), 48);
    b32.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(":")
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sign_token(
    signer: &Signer,
    opts: &TokenIssuerOpts,
    subject: &str,
    access: &[(String, String, Vec<String>)],
    lifetime_secs: u64,
    iat: u64,
) -> String {
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "kid": signer.kid});
    let exp = if opts.compensate_registry_leeway {
        (iat + lifetime_secs).saturating_sub(DISTRIBUTION_LEEWAY_SECS)
    } else {
        iat + lifetime_secs
    };
    let jti = {
        let mut b = [0u8; 12];
        ring::rand::SecureRandom::fill(&signer.rng, &mut b).expect("random jti");
        hex::encode(b)
    };
    let access_json: Vec<serde_json::Value> =
        access.iter().map(|(t, n, a)| serde_json::json!({"type": t, "name": n, "actions": a})).collect();
    let claims = serde_json::json!({
        "iss": opts.issuer,
        "sub": subject,
        "aud": opts.service,
        "exp": exp,
        "nbf": iat,
        "iat": iat,
        "jti": jti,
        "access": access_json,
    });
    let signing_input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let sig = signer.key.sign(&signer.rng, signing_input.as_bytes()).expect("ES256 sign");
    format!("{signing_input}.{}", b64url(sig.as_ref()))
}

/// `type:name:actions` → (type, name, actions). The name may itself contain `:` only in exotic scopes.
fn parse_scope(scope: &str) -> Option<(String, String, Vec<String>)> {
    let (typ, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((
        typ.to_string(),
        name.to_string(),
        actions.split(',').filter(|a| !a.is_empty()).map(|s| s.to_string()).collect(),
    ))
}

/// RFC 3339 UTC for a Unix time (no external time crate).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn token_handler(State(shared): State<Arc<Shared>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let mut service = None;
    let mut scopes = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "service" => service = Some(v.into_owned()),
            "scope" => scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(String::from)),
            _ => {}
        }
    }
    let creds = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())));
    let opts = shared.opts.lock().unwrap().clone();

    let mut record = TokenRequest {
        user: creds.as_ref().map(|(u, _)| u.clone()),
        authenticated: false,
        service: service.clone(),
        scopes: scopes.clone(),
        granted: Vec::new(),
        status: 200,
        token: None,
    };

    {
        let mut fail = shared.fail_next.lock().unwrap();
        if fail.0 > 0 {
            fail.0 -= 1;
            record.status = fail.1;
            shared.requests.lock().unwrap().push(record);
            let status = StatusCode::from_u16(fail.1).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return json_response(
                status,
                serde_json::json!({"errors":[{"code":"UNAVAILABLE","message":"injected failure"}]}),
            );
        }
    }

    let unauthorized = |mut record: TokenRequest, msg: &str| {
        record.status = 401;
        shared.requests.lock().unwrap().push(record);
        let mut r = json_response(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"errors":[{"code":"UNAUTHORIZED","message":msg}]}),
        );
        r.headers_mut().insert(header::WWW_AUTHENTICATE, "Basic realm=\"hoist-test-token-issuer\"".parse().unwrap());
        r
    };

    if service.as_deref() != Some(opts.service.as_str()) {
        record.status = 400;
        shared.requests.lock().unwrap().push(record);
        return json_response(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"errors":[{"code":"UNSUPPORTED","message":"unknown service"}]}),
        );
    }

    let subject = match &creds {
        Some((u, p)) if opts.users.get(u) == Some(p) => {
            record.authenticated = true;
            Some(u.clone())
        }
        Some(_) if opts.bad_credentials_get_anonymous_token => None,
        Some(_) => return unauthorized(record, "invalid username or password"),
        None if opts.anonymous_allowed || opts.bad_credentials_get_anonymous_token => None,
        None => return unauthorized(record, "authentication required"),
    };

    let mut granted = Vec::new();
    if let Some(user) = &subject {
        for scope in &scopes {
            let Some((typ, name, actions)) = parse_scope(scope) else {
                continue;
            };
            let allowed: Vec<String> = match opts.grants.get(user) {
                None => actions.clone(),
                Some(grants) => actions
                    .iter()
                    .filter(|a| {
                        typ == "repository"
                            && grants
                                .iter()
                                .any(|g| g.matches(&name) && g.actions.iter().any(|ga| ga == "*" || ga == *a))
                    })
                    .cloned()
                    .collect(),
            };
            if !allowed.is_empty() {
                granted.push((typ, name, allowed));
            }
        }
    }
    record.granted = granted.clone();

    let iat = now_secs();
    let lifetime = opts.lifetime.as_secs().max(1);
    let token = sign_token(&shared.signer, &opts, subject.as_deref().unwrap_or(""), &granted, lifetime, iat);
    record.token = Some(token.clone());
    shared.requests.lock().unwrap().push(record);

    let mut body = serde_json::Map::new();
    if !opts.only_access_token {
        body.insert("token".into(), token.clone().into());
    }
    body.insert("access_token".into(), token.into());
    if !opts.omit_expires_in {
        body.insert("expires_in".into(), lifetime.into());
    }
    body.insert("issued_at".into(), rfc3339(iat).into());
    json_response(StatusCode::OK, serde_json::Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
