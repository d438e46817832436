//! hoist's error type: what went wrong, on what, why, and what the user can do — plus the exit code.
//!
//! Every error carries a [`ErrorKind`] that decides the process exit code (documented in the README),
//! a message that names the operation and the object before the cause, and an optional hint. Context
//! is added from the inside out with [`Error::context`], so the outermost operation reads first.

use std::fmt;

/// The class of a failure; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Anything not listed below: a registry refused the request, an input was malformed, I/O failed.
    Other,
    /// The command line was wrong (clap's own errors also exit with 2).
    Usage,
    /// Authentication or authorization failed: 401, 403 DENIED, no push permission in the token.
    Auth,
    /// The registry could not be reached or talked to: DNS, connect, TLS, timeouts, 5xx after retries.
    Network,
    /// A check found what it looks for missing or wrong: `hoist verify` found no valid signature.
    Verification,
    /// `hoist scan --fail-on SEVERITY`: a finding at or above it remains (the scan itself worked).
    Findings,
}

impl ErrorKind {
    /// The documented process exit code for this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Other => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Auth => 3,
            ErrorKind::Network => 4,
            ErrorKind::Verification => 5,
            ErrorKind::Findings => 6,
        }
    }
}

/// An error with its kind, a message chain (outermost first) and an optional hint.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    /// `Some` when trying again may succeed (a network error, a 5xx, a 429), with the server's
    /// `Retry-After` when it sent one.
    retry: Option<Option<std::time::Duration>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), hint: None, retry: None }
    }
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth, message)
    }
    pub fn network(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Network, message)
    }
    pub fn verification(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Verification, message)
    }
    /// An I/O error on a path, as "reading PATH: cause".
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        Self::other(format!("{what}: {err}"))
    }

    /// Prefixes the message with the operation that failed ("pushing X: ...").
    pub fn context(mut self, operation: impl fmt::Display) -> Self {
        self.message = format!("{operation}: {}", self.message);
        self
    }
    /// Sets a hint, keeping an existing one (the innermost hint is usually the most specific).
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        if self.hint.is_none() {
            self.hint = Some(hint.into());
        }
        self
    }
    /// Marks the error as worth retrying, after `after` if the server said so.
    pub fn retryable(mut self, after: Option<std::time::Duration>) -> Self {
        self.retry = Some(after);
        self
    }
    /// `Some(retry_after)` when the failed operation is worth retrying.
    pub fn retry(&self) -> Option<Option<std::time::Duration>> {
        self.retry
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Adds context to any `Result<_, Error>`.
pub trait Context<T> {
    fn context(self, operation: impl fmt::Display) -> Result<T>;
    fn with_context<D: fmt::Display>(self, operation: impl FnOnce() -> D) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, operation: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.context(operation))
    }
    fn with_context<D: fmt::Display>(self, operation: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.context(operation()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_documented() {
        let codes = [
            ErrorKind::Other,
            ErrorKind::Usage,
            ErrorKind::Auth,
            ErrorKind::Network,
            ErrorKind::Verification,
            ErrorKind::Findings,
        ]
        .map(ErrorKind::exit_code);
        assert_eq!(codes, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn context_reads_outermost_first_and_keeps_inner_hint() {
        let e = Error::auth("401 Unauthorized")
            .with_hint("inner")
            .context("uploading layer sha256:ab")
            .context("pushing r/a:1")
            .with_hint("outer");
        assert_eq!(e.to_string(), "pushing r/a:1: uploading layer sha256:ab: 401 Unauthorized");
        assert_eq!(e.hint(), Some("inner"));
        assert_eq!(e.kind(), ErrorKind::Auth);
    }
}
