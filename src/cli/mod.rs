//! The command line: clap definitions and one module per verb. Verbs turn flags into options and call
//! the library; no protocol logic lives here.

mod build;
mod chart;
mod ci;
mod common;
mod copy;
mod doctor;
mod index;
mod inspect;
mod login;
mod ls;
mod pull;
mod push;
mod referrers;
mod sbom;
mod scan;
mod sign;
mod tag;

use clap::{Parser, Subcommand};

use crate::error::Result;

pub use common::{chart_dotenv, write_atomic, CiArgs, OutputArgs, RegistryArgs};

const AFTER_HELP: &str = "\
Credentials, first match wins:
  1. --username + --password-stdin
  2. HARBOR_USERNAME/HARBOR_PASSWORD (for HARBOR_URL's or HARBOR_HOST's host),
     then CI_REGISTRY_USER/CI_REGISTRY_PASSWORD (for CI_REGISTRY),
     then CI_DEPENDENCY_PROXY_USER/CI_DEPENDENCY_PROXY_PASSWORD (for CI_DEPENDENCY_PROXY_SERVER)
  3. DOCKER_AUTH_CONFIG
  4. $DOCKER_CONFIG/config.json or ~/.docker/config.json (auths, credHelpers, credsStore)

Exit codes: 0 ok, 1 failure, 2 usage, 3 authentication or permission, 4 network or TLS,
5 verification failed (hoist verify).
6 hoist scan --fail-on: a finding at or above the severity remains.";

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
    Build(Box<build::BuildArgs>),
    /// What the GitLab CI context resolves to (`hoist ci refs`: the references a push would use).
    Ci(ci::CiCmdArgs),
    /// Copy an image or index between registries or repositories (mounting on one registry).
    #[command(after_help = copy::EXAMPLES)]
    Copy(copy::CopyArgs),
    /// Add tags to a manifest in the registry (no blob moves).
    #[command(after_help = tag::EXAMPLES)]
    Tag(tag::TagArgs),
    /// List a repository's tags.
    #[command(after_help = ls::EXAMPLES)]
    Ls(ls::LsArgs),
    /// Describe an image or index: digest, platforms, config, layers, annotations.
    #[command(after_help = inspect::EXAMPLES)]
    Inspect(inspect::InspectArgs),
    /// Download an image into an OCI layout.
    #[command(after_help = pull::EXAMPLES)]
    Pull(pull::PullArgs),
    /// Make multi-platform image indexes from per-platform images.
    #[command(after_help = index::EXAMPLES)]
    Index(index::IndexArgs),
    /// Package Helm charts as helm does (reproducibly) and push them as OCI artifacts.
    Chart(chart::ChartArgs),
    /// Check step by step what a push needs (DNS, TCP, TLS, API, credentials, token, Harbor) and say how to fix it.
    #[command(after_help = doctor::EXAMPLES)]
    Doctor(doctor::DoctorArgs),
    /// Run Harbor's vulnerability scan of a pushed image and bring the result back: summary, GitLab and JUnit reports.
    #[command(after_help = scan::EXAMPLES)]
    Scan(scan::ScanArgs),
    /// Write the SBOM of an existing image (SPDX or CycloneDX): the one it carries, else its layers read.
    #[command(after_help = sbom::EXAMPLES)]
    Sbom(sbom::SbomArgs),
    /// Check credentials against a registry and store them in docker's and Helm's config for later tools.
    #[command(after_help = login::LOGIN_EXAMPLES)]
    Login(login::LoginArgs),
    /// Remove a registry's credentials from docker's and Helm's config.
    Logout(login::LogoutArgs),
    /// Sign images, indexes or charts in a registry with a key, as cosign does (by digest).
    #[command(after_help = sign::SIGN_EXAMPLES)]
    Sign(sign::SignArgs),
    /// Check an image's cosign signatures against a public key.
    #[command(after_help = sign::VERIFY_EXAMPLES)]
    Verify(sign::VerifyArgs),
    /// Write a new signing key pair (cosign.key, encrypted; cosign.pub) that cosign reads too.
    #[command(after_help = sign::KEYGEN_EXAMPLES)]
    GenerateKeyPair(sign::GenerateKeyPairArgs),
    /// List what is attached to an image (signatures, SBOMs, provenance), as `oras discover` does.
    #[command(after_help = referrers::EXAMPLES)]
    Referrers(referrers::ReferrersArgs),
    /// Attach files to an image as an OCI 1.1 artifact (listed by `hoist referrers`).
    #[command(after_help = referrers::ATTACH_EXAMPLES)]
    Attach(referrers::AttachArgs),
}

impl Cli {
    /// Runs the chosen verb.
    pub async fn run(self) -> Result<()> {
        if self.verbose || crate::progress::log_env_enabled(std::env::var(crate::ci::vars::HOIST_LOG).ok().as_deref()) {
            crate::progress::enable_verbose();
        }
        match self.command {
            Command::Push(args) => push::run(args).await,
            Command::Build(args) => build::run(*args).await,
            Command::Ci(args) => ci::run(args).await,
            Command::Copy(args) => copy::run(args).await,
            Command::Tag(args) => tag::run(args).await,
            Command::Ls(args) => ls::run(args).await,
            Command::Inspect(args) => inspect::run(args).await,
            Command::Pull(args) => pull::run(args).await,
            Command::Index(args) => index::run(args).await,
            Command::Chart(args) => chart::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
            Command::Scan(args) => scan::run(args).await,
            Command::Sbom(args) => sbom::run(args).await,
            Command::Login(args) => login::login(args).await,
            Command::Logout(args) => login::logout(args).await,
            Command::Sign(args) => sign::sign(args).await,
            Command::Verify(args) => sign::verify(args).await,
            Command::GenerateKeyPair(args) => sign::generate_key_pair(args),
            Command::Referrers(args) => referrers::run(args).await,
            Command::Attach(args) => referrers::attach(args).await,
        }
    }
}
