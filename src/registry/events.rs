//! What the registry layer tells the layers above it, as typed values: upload progress (bytes, as a
//! [`Progress`]) and one-time [`Event`]s (a switch to chunked uploads, a back-off). The registry layer
//! never formats these for people; the reporter (`crate::progress`) does. This keeps the transport free
//! of any dependency on the terminal side.

use std::sync::Arc;

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
