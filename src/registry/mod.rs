//! The only code on the network: one [`Client`] per registry host.
//!
//! - [`client`]: the transport — scheme, TLS, the auth handshake, token cache, sending requests.
//! - [`ops`]: registry operations on top of it — HEAD/mount/upload blobs, put/get manifests.
//! - [`events`]: what it tells the layers above (progress, one-time events) as data, never as text.
//! - [`mirrors`]: registry mirrors — a reference to the ordered places to pull it from (pure).
//! - [`fetch`]: plain HTTPS downloads (Helm repository indexes and archives) over the same TLS and retries.
//! - [`authfile`]: writing docker's and Helm's `config.json` (`hoist login`/`logout`).
//! - [`probe`]: DNS and TCP probes for `hoist doctor` (its TLS probe is in [`tls`]).
//! - [`harbor`]: Harbor's API v2.0, read-only (what `hoist doctor` checks); [`harbor_scan`]: its scan API.
//! - [`credentials`], [`auth`], [`tls`], [`error`], [`retry`], [`chunking`], `body`: the pieces those use.

pub mod auth;
pub mod authfile;
mod body;
pub mod chunking;
pub mod client;
pub mod credentials;
pub mod error;
pub mod events;
pub mod fetch;
pub mod harbor;
pub mod harbor_scan;
pub mod mirrors;
pub mod ops;
pub mod probe;
pub mod retry;
pub mod tls;

pub use client::{Client, ClientOptions};
pub use credentials::{Credential, CredentialSource, Secret};
pub use events::{Event, Progress};
pub use ops::BlobOutcome;
