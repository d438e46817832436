//! Request bodies for blobs: streamed from a file range, sent from memory, passed through from
//! another registry's GET, or read from a layer file while it is being written ([`growing_body`]). A body is made afresh for every attempt (a streamed body cannot be
//! replayed), and reports the bytes it sends to a [`Progress`].

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::TryStreamExt;
use reqwest::Body;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::events::Progress;
use super::ops::Repository;
use crate::error::{Error, Result};
use crate::growing::GrowingFile;
use crate::model::{Blob, BlobSource};

/// Read size for streaming bodies: big enough that per-read overhead vanishes, small enough to keep
/// memory flat (jobs × 256 KiB).
const READ_CHUNK: usize = 256 * 1024;

/// A fresh request body for a blob. File and in-memory blobs can be made again for every attempt;
/// a blob streamed from another registry is a one-shot body (a resend fails as retryable, and the
/// retry starts a new GET).
pub(super) enum BodySource {
    Local(Blob, Arc<dyn Progress>),
    Remote(Mutex<Option<Body>>),
}

impl BodySource {
    pub(super) async fn new(
        blob: &Blob,
        remote: Option<&Repository>,
        progress: Arc<dyn Progress>,
    ) -> Result<BodySource> {
        match (&blob.source, remote) {
            (BlobSource::Remote { .. }, Some(src)) => {
                let resp = src
                    .get_blob(&blob.digest)
                    .await
                    .map_err(|e| e.context(format!("reading it from {}/{}", src.client.host(), src.name)))?;
                let stream = resp.bytes_stream().inspect_ok(move |c: &Bytes| progress.advance(c.len() as u64));
                Ok(BodySource::Remote(Mutex::new(Some(Body::wrap_stream(stream)))))
            }
            (BlobSource::Remote { registry, repository }, None) => Err(Error::other(format!(
                "it lives in {registry}/{repository} and cannot be mounted here, and no source was opened"
            ))),
            _ => Ok(BodySource::Local(blob.clone(), progress)),
        }
    }

    /// `len` bytes from `offset` of a local blob (for a chunk).
    pub(super) fn range(&self, offset: u64, len: u64) -> Result<Body> {
        let BodySource::Local(blob, progress) = self else {
            return Err(Error::other("a blob streamed from another registry cannot be sent in chunks"));
        };
        let progress = progress.clone();
        match &blob.source {
            BlobSource::Bytes(b) => {
                progress.advance(len);
                Ok(Body::from(b.slice(offset as usize..(offset + len) as usize)))
            }
            BlobSource::File { path, offset: base } => Ok(file_body(path.clone(), base + offset, len, progress)),
            BlobSource::Remote { .. } => unreachable!("remote blobs use BodySource::Remote"),
        }
    }

    pub(super) fn body(&self) -> Result<Body> {
        let (blob, progress) = match self {
            BodySource::Remote(b) => {
                return b
                    .lock()
                    .expect("body lock")
                    .take()
                    .ok_or_else(|| Error::network("the streamed body was already sent").retryable(None))
            }
            BodySource::Local(blob, progress) => (blob, progress.clone()),
        };
        match &blob.source {
            BlobSource::Bytes(b) => {
                progress.advance(b.len() as u64);
                Ok(Body::from(b.clone()))
            }
            BlobSource::File { path, offset } => Ok(file_body(path.clone(), *offset, blob.size, progress)),
            BlobSource::Remote { .. } => unreachable!("remote blobs use BodySource::Remote"),
        }
    }
}

/// A streaming body of `len` bytes of `path` from `offset`, opened when the request is sent.
fn file_body(path: std::path::PathBuf, offset: u64, len: u64, progress: Arc<dyn Progress>) -> Body {
    let opened = async move {
        let mut f = tokio::fs::File::open(&path).await?;
        f.seek(std::io::SeekFrom::Start(offset)).await?;
        Ok::<_, std::io::Error>(ReaderStream::with_capacity(f.take(len), READ_CHUNK))
    };
    let stream = futures_util::stream::once(opened)
        .try_flatten()
        .inspect_ok(move |chunk: &Bytes| progress.advance(chunk.len() as u64));
    Body::wrap_stream(stream)
}

/// The bytes of a file that is still being written, from `offset`: `len` of them, or (`None`) all
/// up to the end the writer announces. Each read waits for the writer instead of stopping at the
/// current end of the file; a writer that gives up fails the body (and so the request).
pub(super) fn growing_body(file: GrowingFile, offset: u64, len: Option<u64>, progress: Arc<dyn Progress>) -> Body {
    struct St {
        growing: GrowingFile,
        file: Option<tokio::fs::File>,
        pos: u64,
        stop: Option<u64>,
    }
    let st = St { growing: file, file: None, pos: offset, stop: len.map(|l| offset + l) };
    let stream = futures_util::stream::try_unfold(st, |mut st| async move {
        if st.stop.is_some_and(|stop| st.pos >= stop) {
            return Ok(None);
        }
        let (have, end) = st.growing.wait_for(st.pos + 1).await?;
        if have <= st.pos {
            return match (end, st.stop) {
                (Some(_), None) => Ok(None),
                _ => Err(std::io::Error::other("the layer file ended before the bytes asked for")),
            };
        }
        let want = (have - st.pos).min(READ_CHUNK as u64).min(st.stop.map_or(u64::MAX, |s| s - st.pos));
        if st.file.is_none() {
            let mut f = tokio::fs::File::open(st.growing.path()).await?;
            f.seek(std::io::SeekFrom::Start(st.pos)).await?;
            st.file = Some(f);
        }
        let mut buf = vec![0u8; want as usize];
        st.file.as_mut().expect("opened above").read_exact(&mut buf).await?;
        st.pos += want;
        Ok(Some((Bytes::from(buf), st)))
    })
    .inspect_ok(move |chunk: &Bytes| progress.advance(chunk.len() as u64));
    Body::wrap_stream(stream)
}
