//! [`DisplaySafeUrl`]: a URL that can be printed. Its `Display` and `Debug` hide what a URL may carry
//! that is not for logs — the password of `user:password@` (and a lone `token@`), and query values that
//! hold state or signatures (distribution's `_state`, a storage redirect's `X-Amz-Signature`, a
//! `token=`) — while keeping what a reader needs to follow a request: scheme, host, port, path, and
//! the query parameters the registry protocol defines (`digest`, `mount`, `from`, `scope`, `service`,
//! `n`, `last`). The real URL stays available for the wire through [`DisplaySafeUrl::expose`].

use std::fmt;

use url::Url;

/// Query parameters whose values are printed; every other value shows as `…`.
const SHOWN_PARAMS: &[&str] = &["digest", "mount", "from", "scope", "service", "n", "last", "tag", "artifactType"];

/// A URL whose `Display`/`Debug` redact credentials and secret-bearing query values.
#[derive(Clone, PartialEq, Eq)]
pub struct DisplaySafeUrl(Url);

impl DisplaySafeUrl {
    pub fn new(url: Url) -> DisplaySafeUrl {
        DisplaySafeUrl(url)
    }
    /// Parses `s`; `None` when it is not an absolute URL.
    pub fn parse(s: &str) -> Option<DisplaySafeUrl> {
        Url::parse(s).ok().map(DisplaySafeUrl)
    }
    /// The URL itself, for putting on the wire.
    pub fn expose(&self) -> &Url {
        &self.0
    }
}

impl From<Url> for DisplaySafeUrl {
    fn from(u: Url) -> Self {
        DisplaySafeUrl(u)
    }
}

impl fmt::Display for DisplaySafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.0;
        write!(f, "{}://", u.scheme())?;
        match (u.username(), u.password()) {
            ("", None) => {}
            (user, Some(_)) => write!(f, "{user}:****@")?,
            (_, None) => f.write_str("****@")?,
        }
        if let Some(host) = u.host_str() {
            f.write_str(host)?;
        }
        if let Some(port) = u.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(u.path())?;
        if u.query().is_some() {
            let mut sep = '?';
            for (k, v) in u.query_pairs() {
                let shown = if SHOWN_PARAMS.contains(&k.as_ref()) { v.as_ref() } else { "…" };
                write!(f, "{sep}{k}={shown}")?;
                sep = '&';
            }
        }
        Ok(())
    }
}

impl fmt::Debug for DisplaySafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DisplaySafeUrl({self})")
    }
}

/// `s` shown safely when it is a URL; otherwise as it is, with anything before an `@` in its first
/// segment hidden (a `user:pass@host/…` without a scheme).
pub fn display_safe(s: &str) -> String {
    match DisplaySafeUrl::parse(s) {
        Some(u) if u.0.has_host() => u.to_string(),
        _ => {
            let (head, tail) = s.split_once('/').map_or((s, ""), |(h, t)| (h, t));
            match head.rsplit_once('@') {
                Some((_, host)) if tail.is_empty() && !s.contains('/') => format!("****@{host}"),
                Some((_, host)) => format!("****@{host}/{tail}"),
                None => s.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_tokens_and_state() {
        let u = DisplaySafeUrl::parse(
            "https://robot$p+ci:s3cret@h.io:8443/v2/a/blobs/uploads/u?_state=QUJD&digest=sha256:ab",
        )
        .unwrap();
        let s = u.to_string();
        assert_eq!(s, "https://robot$p+ci:****@h.io:8443/v2/a/blobs/uploads/u?_state=…&digest=sha256:ab");
        assert!(!format!("{u:?}").contains("s3cret"));
        let u = DisplaySafeUrl::parse("https://glpat-TOKEN@h.io/x?X-Amz-Signature=abc&token=t&scope=repository:a:pull")
            .unwrap();
        assert_eq!(u.to_string(), "https://****@h.io/x?X-Amz-Signature=…&token=…&scope=repository:a:pull");
        assert_eq!(u.expose().password(), None);
        assert_eq!(u.expose().username(), "glpat-TOKEN");
    }

    #[test]
    fn non_urls() {
        assert_eq!(display_safe("user:pw@h.io/v2/"), "****@h.io/v2/");
        assert_eq!(display_safe("h.io:5000"), "h.io:5000");
        assert_eq!(display_safe("https://h.io/"), "https://h.io/");
    }
}
