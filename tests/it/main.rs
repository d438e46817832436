//! hoist's integration tests: one binary, real registries started on loopback by [`harness`].

mod build;
mod dockerfile_conformance;
mod harness;
mod harness_selftest;
mod proxy_selftest;
mod push;
mod resilience;
mod secrets;
mod tls;
