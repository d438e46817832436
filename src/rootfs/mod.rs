//! Image filesystems on disk: the one mechanism that turns an image's layers into a directory tree.
//!
//! [`apply_layers`] takes the layers of an image in order — each an [`OciDescriptor`] (used to name
//! the layer in errors) and a reader of its blob, gzip, zstd or plain tar told apart by magic bytes
//! and always read as a stream, never a whole layer in memory — and applies them to an empty
//! directory with OCI whiteouts (`.wh.<name>` deletes a lower entry, `.wh..wh..opq` empties a
//! directory of everything lower layers put there). [`Options::paths`] restricts what is
//! materialized to requested paths (with their parent directories), which is how `hoist build`
//! reads the few files a `COPY --from=<image>` or a `--chown=<name>` needs; `hoist pull REF
//! --rootfs DIR` calls the same function with [`Options::default`] for the whole tree (and
//! `chown: true` when it runs as root). Entries that would escape the directory (`..`, links
//! climbing out of the root, writing through a symlink that replaced a directory), device nodes and
//! hard links to outside the tree are refused with an error naming the layer and the entry. The
//! [`Report`] lists every materialized entry with the mode, owner and kind the layers gave it —
//! an unprivileged unpack cannot store owners on disk, so callers read them here. [`lookup`] scans
//! one layer for a few small files (read top-down, it finds `/etc/passwd` without applying the image);
//! [`list`] reads a layer's headers into a [`Listing`], what `hoist build` keeps of a base layer.

mod unpack;

pub use crate::model::OciDescriptor;
pub use unpack::{
    apply_layers, list, list_with, lookup, resolve, visible_databases, Entry, EntryKind, Filter, Found, Listing,
    Lookup, Options, Report, Visit, ACCOUNT_FILES,
};
