//! hoist's integration tests: one binary, real registries started on loopback by [`harness`].

mod build;
mod build_cache;
mod build_images;
mod build_mirrors;
mod build_stream;
mod chart;
mod ci;
mod ci_templates;
mod dockerfile_conformance;
mod doctor;
mod harness;
mod harness_selftest;
mod login;
mod ops;
mod proxy_selftest;
mod push;
mod realworld;
mod resilience;
mod secrets;
mod tls;
