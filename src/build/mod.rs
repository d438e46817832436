//! Building images without a container runtime: Dockerfile parsing ([`dockerfile`]) and planning.

pub mod dockerfile;
