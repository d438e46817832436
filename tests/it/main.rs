//! hoist's integration tests: one binary, real registries started on loopback by [`harness`].

mod build;
mod build_images;
mod build_mirrors;
mod build_stream;
mod chart;
mod ci;
mod ci_templates;
mod compress;
mod dockerfile_conformance;
mod doctor;
mod harness;
mod harness_selftest;
mod helm_judge;
mod judges_selftest;
mod login;
mod ops;
mod own_pipeline;
mod proxy_selftest;
mod push;
mod realworld;
mod referrers;
mod resilience;
mod scan;
mod secrets;
mod sign;
mod tls;
