//! What the registry layer tells the layers above it, as typed values: upload progress (bytes, as a
//! [`Progress`]) and one-time [`Event`]s (a switch to chunked uploads, a back-off). The registry layer
//! never formats these for people; the reporter (`crate::progress`) does. This keeps the transport free
//! of any dependency on the terminal side. Verbose mode's [`Trace`]s come through the same door: a
//! process-wide sink the CLI sets when `-v`/`HOIST_LOG` ask for it, so every verb is traced alike.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::model::DisplaySafeUrl;

/// Receives upload progress. `restart` is called when a retry begins again from zero.
pub trait Progress: Send + Sync {
    fn advance(&self, bytes: u64);
    fn restart(&self);
}

/// Progress nobody watches.
pub struct NoProgress;
impl Progress for NoProgress {
    fn advance(&self, _: u64) {}
    fn restart(&self) {}
}

/// Something the user should hear about once, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A proxy in front of `host` answered 413 to a request body of `refused` bytes; a chunk of `chunk`
    /// bytes went through, and the rest of the run uploads to `host` in chunks of that size.
    ChunkSizeChosen { host: String, refused: u64, chunk: u64 },
    /// `host` answered 429/503: uploads at once are now `parallel`.
    BackedOff { host: String, parallel: u64 },
}

/// Where events go (the reporter in the CLI).
pub type Notice = Arc<dyn Fn(&Event) + Send + Sync>;

/// One thing verbose mode (`-v`, `HOIST_LOG`) shows, as data: the transport records every HTTP
/// exchange, token request and retry here and the reporter words them. Nothing secret is ever put in
/// a `Trace`: URLs are [`DisplaySafeUrl`]s, headers are never recorded, tokens only as the scopes
/// they grant.
#[derive(Debug, Clone)]
pub enum Trace {
    /// A request and its answer (or the transport error that ended it).
    Exchange {
        method: String,
        url: DisplaySafeUrl,
        /// The answer's status, or `None` when no answer came.
        status: Option<u16>,
        /// The transport error, already free of URLs.
        error: Option<String>,
        /// Request body bytes (when known up front).
        sent: Option<u64>,
        /// The answer's `Content-Length` (when given).
        received: Option<u64>,
        /// Where redirects ended, when they did.
        redirected_to: Option<DisplaySafeUrl>,
        elapsed: Duration,
    },
    /// A token request: the scopes asked, and those the token grants when it is a readable JWT
    /// (`None` for an opaque token).
    Token { realm: DisplaySafeUrl, service: Option<String>, asked: Vec<String>, granted: Option<Vec<String>> },
    /// How a registry was reached and who we are to it.
    Connected { host: String, base: DisplaySafeUrl, auth: String, user: Option<String>, source: Option<String> },
    /// A failure that will be retried.
    Retry { host: String, reason: String },
}

type Sink = Box<dyn Fn(&Trace) + Send + Sync>;
static SINK: OnceLock<Sink> = OnceLock::new();

/// Sends every [`Trace`] of this process to `sink` (the first call wins; verbose mode sets it once).
pub fn set_trace_sink(sink: Sink) {
    let _ = SINK.set(sink);
}

/// Whether anyone listens (building a trace is skipped otherwise).
pub fn tracing() -> bool {
    SINK.get().is_some()
}

/// Records a trace when someone listens.
pub fn trace(make: impl FnOnce() -> Trace) {
    if let Some(sink) = SINK.get() {
        sink(&make());
    }
}
