//! `hoist login [REGISTRY]` and `hoist logout [REGISTRY]`: store (after checking them against the registry) or
//! remove credentials in docker's `config.json` and Helm's `registry/config.json`, for the tools that run after
//! hoist in a job.

use clap::Args;

use super::common::ConnectArgs;
use crate::ci::{Env, ProcessEnv};
use crate::doctor::Target;
use crate::error::{Error, Result};
use crate::registry::credentials::{self, robot_name_issue, CredentialSource};
use crate::registry::{authfile, Client};

pub const LOGIN_EXAMPLES: &str = "\
Examples:
  echo \"$HARBOR_PASSWORD\" | hoist login harbor.example.com -u 'robot$team+ci' --password-stdin
  hoist login                       # in CI: HARBOR_URL with HARBOR_USERNAME/HARBOR_PASSWORD, else CI_REGISTRY
  hoist logout harbor.example.com

Writes $DOCKER_CONFIG/config.json (else ~/.docker/config.json) and Helm's registry config ($HELM_REGISTRY_CONFIG,
else ~/.config/helm/registry/config.json): mode 0600, replaced atomically, other entries kept. The credentials
are checked against the registry first (GET /v2/, or a token as docker login gets one); nothing is written when
the registry refuses them. The password is never printed.";

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry (host[:port]). Without it: HARBOR_URL/HARBOR_HOST, else CI_REGISTRY.
    pub registry: Option<String>,
    /// Write only docker's config.json, not Helm's.
    #[arg(long)]
    pub no_helm: bool,
    #[command(flatten)]
    pub registry_args: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (host[:port]). Without it: HARBOR_URL/HARBOR_HOST, else CI_REGISTRY.
    pub registry: Option<String>,
}

fn config_files(env: &dyn Env, helm: bool) -> Result<Vec<std::path::PathBuf>> {
    let docker = credentials::docker_config_path(env)
        .ok_or_else(|| Error::usage("neither DOCKER_CONFIG nor HOME is set: nowhere to write docker's config.json"))?;
    Ok(std::iter::once(docker).chain(helm.then(|| authfile::helm_config_path(env)).flatten()).collect())
}

pub async fn login(args: LoginArgs) -> Result<()> {
    let env = ProcessEnv;
    let host = Target::resolve(args.registry.as_deref(), &env)?.host;
    let opts = args.registry_args.push_options(&env, 1, Vec::new())?;
    // Flags, else the CI variables for this host; a docker config's own entry is not written back.
    let found = credentials::resolve(&host, opts.credential.clone(), &env)?
        .filter(|(_, s)| {
            matches!(s, CredentialSource::Flags | CredentialSource::HarborEnv | CredentialSource::GitlabEnv)
        })
        .ok_or_else(|| {
            Error::usage(format!("no credentials to store for {host}")).with_hint(
                "pass -u USER --password-stdin (or, in CI, set HARBOR_USERNAME/HARBOR_PASSWORD for HARBOR_URL)",
            )
        })?;
    if let Some(issue) = robot_name_issue(&found.0.username) {
        eprintln!("warning: {issue}");
    }
    let cred = found.0.clone();
    let client = Client::connect(&host, &opts.client, Some(found)).await?;
    client.verify_credentials().await?;
    for path in config_files(&env, !args.no_helm)? {
        let stored = authfile::store(&path, &host, &cred)?;
        eprintln!("wrote credentials for {host} (user {:?}) to {}", cred.username, path.display());
        if let Some(helper) = stored.helper_first {
            eprintln!("note: {} names {helper}, which docker and hoist ask before this entry", path.display());
        }
    }
    eprintln!("Login Succeeded");
    Ok(())
}

pub async fn logout(args: LogoutArgs) -> Result<()> {
    let env = ProcessEnv;
    let host = Target::resolve(args.registry.as_deref(), &env)?.host;
    let mut any = false;
    for path in config_files(&env, true)? {
        if authfile::remove(&path, &host)? {
            eprintln!("removed credentials for {host} from {}", path.display());
            any = true;
        }
    }
    if !any {
        eprintln!("not logged in to {host}");
    }
    Ok(())
}
