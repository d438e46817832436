//! How big an upload request body may be on one registry: monolithic until told otherwise, chunks of
//! `--chunk-size` when the user chose them, and — when a proxy in front of the registry answers 413
//! Payload Too Large — chunks halved until one passes. One [`Chunking`] lives in each
//! [`super::Client`], so what a 413 taught holds for every repository of that registry for the rest
//! of the run. Formatting for people is left to the caller; this module only names sizes the way
//! `--chunk-size` reads them ([`size_arg`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// The first chunk size after a 413 to a whole-blob upload: distribution handles ≥ 8 MiB chunks as
/// cheaply as a monolithic upload, and it passes ingress-nginx's common 10m/16m limits. Smaller caps
/// (ingress-nginx's 1 MiB default, a 3,000,000-byte proxy) are found by halving from here.
pub const FALLBACK_CHUNK: u64 = 8 << 20;

/// Chunks are never halved below this, whatever the proxy says: below it a push is all request
/// overhead, and a cap that small is a misconfiguration worth reporting.
pub const MIN_CHUNK: u64 = 64 << 10;

/// The chunk size in force for one registry; 0 = one request per blob.
#[derive(Debug, Default)]
pub struct Chunking {
    size: AtomicU64,
    /// The smallest body a 413 refused (0: none yet).
    refused: AtomicU64,
    /// The size last announced to the user (0: nothing said yet).
    announced: AtomicU64,
}

/// What to do after a 413.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRefusal {
    /// Go on in chunks of this many bytes.
    Chunks(u64),
    /// The refused body was already the smallest chunk allowed (the value): nothing smaller can pass.
    Floor(u64),
}

impl Chunking {
    /// The chunk size now (0 = monolithic).
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// The user's `--chunk-size` (0 = none): taken unless a 413 already chose a size for this registry.
    pub fn prefer(&self, bytes: u64) {
        if bytes > 0 && self.refused.load(Ordering::Relaxed) == 0 {
            self.size.store(bytes, Ordering::Relaxed);
        }
    }

    /// A body of `len` bytes was refused with 413; `min_chunk` is the session's `OCI-Chunk-Min-Length`.
    /// Halves the chunk size (a whole-blob upload starts at [`FALLBACK_CHUNK`]) until it is below
    /// `len`, never below [`MIN_CHUNK`] nor `min_chunk`. Concurrent uploads only ever lower the size.
    pub fn refused(&self, len: u64, min_chunk: Option<u64>) -> AfterRefusal {
        let floor = MIN_CHUNK.max(min_chunk.unwrap_or(0));
        let lower = |c: u64, v: u64| Some(if c == 0 { v } else { c.min(v) });
        let _ = self.refused.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| lower(c, len));
        if len <= floor {
            return AfterRefusal::Floor(floor);
        }
        // Halve the chunk size (8 MiB after a whole-blob upload) until it is below what was refused:
        // a short last chunk refused takes the size straight below it, in round numbers.
        let mut next = match self.size() {
            0 => FALLBACK_CHUNK,
            cur => cur,
        };
        while next >= len && next > floor {
            next /= 2;
        }
        let next = next.max(floor);
        let _ = self.size.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| lower(c, next));
        AfterRefusal::Chunks(self.size())
    }

    /// A chunk of `len` bytes went through. Returns `Some((size, smallest refused))` once per size
    /// chosen after a 413, for the caller to tell the user; `None` otherwise. Only a chunk of the whole
    /// current size proves that size: a blob's short last chunk (or a small blob sent as one chunk by a
    /// concurrent upload while the size was being halved) proves nothing about it.
    pub fn passed(&self, len: u64) -> Option<(u64, u64)> {
        let refused = self.refused.load(Ordering::Relaxed);
        let size = self.size();
        if refused == 0 || size == 0 || len < size {
            return None;
        }
        let last = self.announced.swap(size, Ordering::Relaxed);
        (last != size).then_some((size, refused))
    }
}

/// `bytes` as `--chunk-size` reads it back: `2MiB`, `768KiB`, or plain bytes.
pub fn size_arg(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{}MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{}KiB", bytes >> 10)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_from_the_fallback_down_to_the_floor() {
        let c = Chunking::default();
        assert_eq!(c.size(), 0);
        assert_eq!(c.passed(1 << 20), None, "nothing learned, nothing to say");
        // A 20 MiB whole-blob upload refused: 8 MiB chunks, then halving (a 3,000,000-byte cap).
        assert_eq!(c.refused(20 << 20, None), AfterRefusal::Chunks(8 << 20));
        assert_eq!(c.refused(8 << 20, None), AfterRefusal::Chunks(4 << 20));
        assert_eq!(c.refused(4 << 20, None), AfterRefusal::Chunks(2 << 20));
        // A small blob sent whole (or a short last chunk) proves nothing about the 2 MiB size — the
        // race a concurrent upload of a 200 KB layer once won, announcing 2 MiB under a 1 MiB cap.
        assert_eq!(c.passed(200_000), None, "a short chunk proves nothing");
        assert_eq!(c.passed(2 << 20), Some((2 << 20, 4 << 20)));
        assert_eq!(c.passed(2 << 20), None, "said once");
        // A late answer for a larger in-flight chunk never raises the size.
        assert_eq!(c.refused(8 << 20, None), AfterRefusal::Chunks(2 << 20));
        // The user's --chunk-size does not override what a 413 taught.
        c.prefer(16 << 20);
        assert_eq!(c.size(), 2 << 20);
        // A small whole blob (or a short last chunk) refused: the first halving below its size.
        let c = Chunking::default();
        assert_eq!(c.refused(3 << 20, None), AfterRefusal::Chunks(2 << 20));
        assert_eq!(c.refused(1_900_000, None), AfterRefusal::Chunks(1 << 20));
        // A streaming body of unknown length: 8 MiB.
        assert_eq!(Chunking::default().refused(u64::MAX, None), AfterRefusal::Chunks(8 << 20));
        // Never below 64 KiB nor the registry's minimum; at the floor, give up.
        let c = Chunking::default();
        assert_eq!(c.refused(100 << 10, None), AfterRefusal::Chunks(MIN_CHUNK));
        assert_eq!(c.refused(MIN_CHUNK, None), AfterRefusal::Floor(MIN_CHUNK));
        let c = Chunking::default();
        assert_eq!(c.refused(8 << 20, Some(5 << 20)), AfterRefusal::Chunks(5 << 20));
        assert_eq!(c.refused(5 << 20, Some(5 << 20)), AfterRefusal::Floor(5 << 20));
        // --chunk-size is taken when nothing was refused.
        let c = Chunking::default();
        c.prefer(1 << 20);
        assert_eq!(c.size(), 1 << 20);
        assert_eq!(c.passed(1 << 20), None);
    }

    #[test]
    fn sizes_read_back_as_chunk_size_arguments() {
        assert_eq!(size_arg(2 << 20), "2MiB");
        assert_eq!(size_arg(1536 << 10), "1536KiB");
        assert_eq!(size_arg(64 << 10), "64KiB");
        assert_eq!(size_arg(3_000_000), "3000000");
    }
}
