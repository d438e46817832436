//! hoist: a daemon-less OCI client for CI jobs.
//!
//! # Layout
//! - [`model`]: pure data — digests, references, media types, manifests and the [`model::Artifact`] a
//!   push works on. No I/O.
//! - [`layout`]: reading sources from disk — OCI image layouts and `docker save` archives — into an
//!   `Artifact`; writing OCI layouts.
//! - [`registry`]: the only code on the network — TLS, credentials, the auth handshake, the upload
//!   protocol, registry errors.
//! - [`push`]: the push engine — concurrency, skipping what exists, progress and the report.
//! - [`builder`]: Dockerfile parsing and image building (no runtime).
//! - [`growing`]: a file read while it is written (layers uploaded while they are compressed).
//! - [`remote`]: images already in registries — copy, tag, ls, inspect, pull, index create.
//! - [`chart`]: Helm chart packaging (as helm does, reproducibly) and the chart OCI artifact.
//! - [`rootfs`]: applying image layers to a directory (whiteouts, path filter, escape checks).
//! - [`ci`]: the CI environment (GitLab, Harbor) read through a trait so tests pass a map.
//! - [`provenance`]: SLSA provenance of a build (in-toto statement, DSSE envelope, `.att` tag).
//! - [`sbom`]: the SBOM of what a build added (Go and cargo-auditable binaries, Go/Rust/npm/yarn/pnpm
//!   lockfiles, package.json, Python dist-info/egg-info, Java archives; SPDX, CycloneDX).
//! - [`scan`]: `hoist scan` — Harbor's vulnerability scan, its report, and the GitLab/JUnit files made from it.
//! - [`doctor`]: `hoist doctor`'s checks (pure diagnoses in `doctor::checks`) and their report.
//! - [`cli`]: clap definitions and one module per verb; no protocol logic.
//! - [`error`]: the error type and its mapping to exit codes.
//! - [`fsutil`]: atomic output files, size-limited reads, decompression-bomb guards.
//! - [`paths`]: path arithmetic inside images and contexts (clean, join, the glob matcher).

pub mod builder;
pub mod chart;
pub mod ci;
pub mod cli;
pub mod doctor;
pub mod error;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod growing;
pub mod layout;
pub mod model;
pub mod paths;
pub mod progress;
pub mod provenance;
pub mod push;
pub mod registry;
pub mod remote;
pub mod rootfs;
pub mod sbom;
pub mod scan;
pub mod sign;
