//! A file that one thread writes while others read it as it grows: how `hoist build -t` uploads a
//! layer while it is being compressed. The writer ([`GrowingWriter`]) is an ordinary `io::Write`
//! over the file that publishes, after every write, how many bytes are on disk; when the layer is
//! complete it publishes the blob's digest and size ([`GrowingWriter::finish`]), and dropping it
//! unfinished tells readers the file will never be complete. Readers ([`GrowingFile`]) wait for bytes
//! instead of reading past the end. The file is the one the build keeps (spool or cache), so memory
//! stays bounded whatever the reader's pace, and the writer never waits for a reader.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use tokio::sync::watch;

use crate::model::Digest;

/// How far the file is.
#[derive(Debug, Clone, Default)]
struct Growth {
    /// Bytes written to the file so far.
    written: u64,
    /// `Some(Ok((digest, size)))` when complete, `Some(Err(why))` when it never will be.
    end: Option<Result<(Digest, u64), String>>,
}

/// What a reader learns by waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// At least this many bytes are on disk, and more may come.
    Growing(u64),
    /// The file is complete: its digest and size.
    Complete(Digest, u64),
}

/// The writing end: wraps the file being written.
pub struct GrowingWriter {
    file: File,
    tx: watch::Sender<Growth>,
    finished: bool,
}

/// The reading end: the path and the writer's announcements. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GrowingFile {
    path: PathBuf,
    rx: watch::Receiver<Growth>,
}

/// Creates `path` for writing and the reading end that follows it.
pub fn create(path: &Path) -> io::Result<(GrowingWriter, GrowingFile)> {
    let file = File::create(path)?;
    let (tx, rx) = watch::channel(Growth::default());
    Ok((GrowingWriter { file, tx, finished: false }, GrowingFile { path: path.to_path_buf(), rx }))
}

impl GrowingWriter {
    /// Every byte is written: tells readers the blob's digest and size.
    pub fn finish(mut self, digest: Digest, size: u64) {
        self.finished = true;
        self.tx.send_modify(|g| g.end = Some(Ok((digest, size))));
    }
}

impl io::Write for GrowingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.tx.send_modify(|g| g.written += n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for GrowingWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.tx.send_modify(|g| g.end = Some(Err("the layer was not written to the end".into())));
        }
    }
}

impl GrowingFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until more than `have` bytes are on disk, or the file is complete; an error when the
    /// writer gave up.
    pub async fn wait_past(&mut self, have: u64) -> io::Result<Progress> {
        let growth = self
            .rx
            .wait_for(|g| g.written > have || g.end.is_some())
            .await
            .map_err(|_| io::Error::other("the layer writer went away"))?;
        match &growth.end {
            Some(Ok((digest, size))) if growth.written >= *size => Ok(Progress::Complete(digest.clone(), *size)),
            Some(Err(why)) if growth.written <= have => Err(io::Error::other(why.clone())),
            _ => Ok(Progress::Growing(growth.written)),
        }
    }

    /// Waits until at least `want` bytes are on disk (or fewer when the file completes shorter):
    /// returns how many are, and the digest and size once complete.
    pub async fn wait_for(&mut self, want: u64) -> io::Result<(u64, Option<(Digest, u64)>)> {
        let mut have = 0;
        loop {
            match self.wait_past(have).await? {
                Progress::Complete(d, size) => return Ok((size, Some((d, size)))),
                Progress::Growing(n) if n >= want => return Ok((n, None)),
                Progress::Growing(n) => have = n,
            }
        }
    }
}

/// Receives each layer as its file is created, before a byte is compressed, with the layer's media
/// type: `hoist build -t` hands the push engine's layer streams to the layer writer, which uploads
/// each layer while it grows. It lives here, below both, so neither imports the other.
#[derive(Clone)]
pub struct Sink(pub std::sync::Arc<dyn Fn(GrowingFile, &'static str) + Send + Sync>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn readers_follow_the_writer_and_learn_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, mut r) = create(&dir.path().join("f")).unwrap();
        let mut r2 = r.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(b"hello ").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            w.write_all(b"world").unwrap();
            w.finish(Digest::sha256_of(b"hello world"), 11);
        });
        let (n, end) = r.wait_for(3).await.unwrap();
        assert!(n >= 3);
        let (n, end2) = r.wait_for(100).await.unwrap();
        assert_eq!((n, end2), (11, Some((Digest::sha256_of(b"hello world"), 11))));
        assert!(end.is_none() || n == 11);
        writer.join().unwrap();
        assert_eq!(std::fs::read(r2.path()).unwrap(), b"hello world");
        assert_eq!(r2.wait_past(11).await.unwrap(), Progress::Complete(Digest::sha256_of(b"hello world"), 11));

        // A writer dropped unfinished: readers get an error, not a short file.
        let (mut w, mut r) = create(&dir.path().join("g")).unwrap();
        w.write_all(b"part").unwrap();
        drop(w);
        assert_eq!(r.wait_past(0).await.unwrap(), Progress::Growing(4));
        assert!(r.wait_past(4).await.is_err());
    }
}
