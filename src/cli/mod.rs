//! The command line: clap definitions and one module per verb. Verbs turn flags into options and call
//! the library; no protocol logic lives here.

mod build;
mod common;
mod push;

use clap::{Parser, Subcommand};

use crate::error::Result;

pub use common::{OutputArgs, RegistryArgs};

const AFTER_HELP: &str = "\
Credentials, first match wins:
  1. --username + --password-stdin
  2. HARBOR_USERNAME/HARBOR_PASSWORD (for HARBOR_URL's or HARBOR_HOST's host), then CI_REGISTRY_USER/CI_REGISTRY_PASSWORD (for CI_REGISTRY)
  3. DOCKER_AUTH_CONFIG
  4. $DOCKER_CONFIG/config.json or ~/.docker/config.json (auths, credHelpers, credsStore)

Exit codes: 0 ok, 1 failure, 2 usage, 3 authentication or permission, 4 network or TLS.";

/// hoist: build and push OCI images and Helm charts without a Docker daemon.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Show every HTTP exchange (method, URL, status, size, time), token request (scopes asked and
    /// granted) and retry on stderr. Secrets never appear. Also: HOIST_LOG=1.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Push an OCI layout or a `docker save` archive to one or more references.
    #[command(after_help = push::EXAMPLES)]
    Push(push::PushArgs),
    /// Build an image from a Dockerfile (no container runtime) and push it or write an OCI layout.
    #[command(after_help = build::EXAMPLES)]
    Build(build::BuildArgs),
}

impl Cli {
    /// Runs the chosen verb.
    pub async fn run(self) -> Result<()> {
        if self.verbose || crate::progress::log_env_enabled(std::env::var(crate::ci::vars::HOIST_LOG).ok().as_deref()) {
            crate::progress::enable_verbose();
        }
        match self.command {
            Command::Push(args) => push::run(args).await,
            Command::Build(args) => build::run(args).await,
        }
    }
}
