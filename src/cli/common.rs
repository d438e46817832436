//! Flags shared by the verbs that talk to registries or report a result, and turning them into
//! library options.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;

use crate::ci::context::{CiContext, TagPolicy};
use crate::ci::{vars, Env};
use crate::error::{Error, Result};
use crate::model::Reference;
use crate::push::{PushOptions, PushReport};
use crate::registry::ops::RetryPolicy;
use crate::registry::tls::TlsOptions;
use crate::registry::{ClientOptions, Credential};

/// How to reach and log in to a registry: what every verb that talks to one takes (`doctor` and
/// `login` take only this; the verbs that move blobs add [`RegistryArgs`]' transfer flags).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Registry")]
pub struct ConnectArgs {
    /// Username for the registry (robot accounts: 'robot$project+name', in single quotes).
    #[arg(long, short = 'u', requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password (or token) from standard input; passwords are never taken as arguments.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Talk plain HTTP to the registry (loopback registries fall back to HTTP by themselves).
    #[arg(long)]
    pub plain_http: bool,
    /// Trust this CA bundle (PEM) as well as the system's. Also: CI_SERVER_TLS_CA_FILE,
    /// /etc/docker/certs.d/<host:port>/ca.crt, SSL_CERT_FILE.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Vec<PathBuf>,
    /// Skip TLS certificate verification (dangerous; a warning is printed every run).
    #[arg(long)]
    pub insecure: bool,
}

/// `--force`, for the verbs that move tags.
#[derive(Debug, Clone, Args)]
pub struct ForceArgs {
    /// Move a tag even when it holds another kind of artifact (a container image, a Helm chart,
    /// another artifactType). Without it hoist refuses, naming both, before sending anything.
    #[arg(long)]
    pub force: bool,
}

/// [`ConnectArgs`] and how transfers behave: for the verbs that move manifests and blobs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Registry")]
pub struct RegistryArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Attempts after the first for retryable failures (network errors, 408, 429, 5xx; see docs/push.md).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub retries: u32,
    /// Upload in chunks of SIZE (e.g. 8MiB, 512KiB, 1000000) instead of one streaming PUT per blob —
    /// for proxies that cap request bodies. Without it, a 413 makes hoist find a size that passes by
    /// itself (8 MiB, then halving down to 64 KiB) and say which.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub chunk_size: Option<u64>,
}

/// `8MiB`, `8M`, `512KiB`, `1000000` → bytes (K/M/G are binary, as docker and helm read them).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size like 8MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    match n.checked_mul(mult) {
        Some(0) | None => Err(format!("{s:?} is not a usable size")),
        Some(v) => Ok(v),
    }
}

/// Where to write the result, and how much to say.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Write the pushed digest (`sha256:<hex>` and a newline) to FILE.
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<PathBuf>,
    /// Write a JSON report (references, digest, media type, size, and each blob's outcome) to FILE.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Write a dotenv report for GitLab's `artifacts: reports: dotenv:` — HOIST_IMAGE (repository),
    /// HOIST_DIGEST, HOIST_TAGS (space-separated), HOIST_IMAGE_REF (repository@digest), HOIST_CHART_* for charts.
    #[arg(long, value_name = "FILE")]
    pub dotenv: Option<PathBuf>,
    /// No progress output (warnings, errors and the closing summary still go to stderr).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Where an image goes when the job says so: the GitLab CI context (Harbor integration, GitLab's registry).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "GitLab CI")]
pub struct CiArgs {
    /// The image name under $HARBOR_PROJECT when no -t is given (default: $CI_PROJECT_NAME).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The tags a pipeline pushes when -t names none: default, none, or a list of sha, ref, latest,
    /// version, semver, mr; -NAME drops one from the default (e.g. --tag-policy=-latest).
    #[arg(long, default_value = "default", value_name = "LIST", allow_hyphen_values = true)]
    pub tag_policy: String,
    /// Push these tags as well (repeatable, or comma-separated); invalid characters become `-`.
    #[arg(long = "extra-tag", value_name = "TAG", value_delimiter = ',')]
    pub extra_tags: Vec<String>,
}

impl CiArgs {
    /// The CI context of this job (`--name` applied).
    pub fn context(&self, env: &dyn Env) -> CiContext {
        CiContext::from_env(env, self.name.as_deref())
    }

    /// The references to push: `given` (`-t`/DEST) resolved against `ctx`, or (when empty) the CI
    /// destination, with the pipeline's tags under `--tag-policy` and every `--extra-tag`.
    pub fn destinations(&self, ctx: &CiContext, given: &[String]) -> Result<Vec<Reference>> {
        let policy = TagPolicy::parse(&self.tag_policy)?;
        let extra: Vec<String> =
            self.extra_tags.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
        ctx.destinations(given, &policy, &extra)
    }

    /// Prints the context's warnings and the CI_DEBUG_TRACE caveat.
    pub fn warn(&self, ctx: &CiContext, env: &dyn Env, reporter: &crate::progress::Reporter) {
        for w in ctx.warnings() {
            reporter.warn(w);
        }
        if env.non_empty(vars::CI_DEBUG_TRACE).is_some_and(|v| v == "true") {
            reporter.warn(
                "CI_DEBUG_TRACE is on: hoist prints no secrets, but the runner's trace of the job script shows                  every variable's value, HARBOR_PASSWORD included; turn it off once done",
            );
        }
    }
}

impl RegistryArgs {
    /// Push options from these flags: [`ConnectArgs::push_options`] with `--retries` and `--chunk-size`.
    pub fn push_options(&self, env: &dyn Env, jobs: usize, mount_from: Vec<String>) -> Result<PushOptions> {
        let mut opts = self.connect.push_options(env, jobs, mount_from)?;
        opts.retry = RetryPolicy { retries: self.retries, ..RetryPolicy::default() };
        opts.chunk_size = self.chunk_size.unwrap_or(0);
        Ok(opts)
    }
}

impl ConnectArgs {
    /// Push options from these flags (reads the password from stdin when asked), with the default
    /// retries and streaming uploads. Every verb that talks to registries comes through here, so this
    /// is where `--insecure` warns — every run, even with `-q`.
    pub fn push_options(&self, env: &dyn Env, jobs: usize, mount_from: Vec<String>) -> Result<PushOptions> {
        if self.insecure {
            eprintln!(
                "warning: --insecure: TLS certificates are not verified; anyone on the path can read and change what \
                 hoist sends and receives"
            );
        }
        let credential = match (&self.username, self.password_stdin) {
            (Some(user), true) => {
                let mut pw = String::new();
                std::io::stdin()
                    .read_to_string(&mut pw)
                    .map_err(|e| Error::usage(format!("reading the password from stdin: {e}")))?;
                let pw = pw.trim_end_matches(['\n', '\r']);
                if pw.is_empty() {
                    return Err(Error::usage("--password-stdin: standard input was empty"));
                }
                Some(Credential::new(user.clone(), pw))
            }
            _ => None,
        };
        let mut ca_files = self.ca_file.clone();
        if let Some(f) = env.non_empty(vars::CI_SERVER_TLS_CA_FILE) {
            ca_files.push(f.into());
        }
        Ok(PushOptions {
            jobs,
            mount_from,
            retry: RetryPolicy::default(),
            client: ClientOptions {
                plain_http: self.plain_http,
                tls: TlsOptions {
                    ca_files,
                    insecure: self.insecure,
                    certs_d: env.non_empty(vars::HOIST_CERTS_DIR).map(PathBuf::from),
                },
                max_idle: jobs,
                insecure_hosts: Vec::new(),
            },
            credential,
            chunk_size: 0,
            force: false,
        })
    }
}

/// Registry mirrors for verbs that read images (the same rules `hoist build` reads for its bases).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Registry")]
pub struct MirrorArgs {
    /// Read images of SRC (a registry or registry/path prefix) from mirror DEST first, the origin
    /// last (repeatable). Also read: HOIST_REGISTRY_MIRRORS (comma-separated) and containers'
    /// registries.conf (CONTAINERS_REGISTRIES_CONF, else /etc/containers/registries.conf).
    #[arg(long = "registry-mirror", value_name = "SRC=DEST")]
    pub registry_mirrors: Vec<String>,
}

impl MirrorArgs {
    pub fn load(&self, env: &dyn Env) -> Result<crate::registry::mirrors::Mirrors> {
        crate::registry::mirrors::Mirrors::load(&self.registry_mirrors, env)
    }
}

/// Where progress goes for a verb that talks to registries, with the `--insecure` warning said once.
pub fn reporter(registry: &RegistryArgs, quiet: bool) -> std::sync::Arc<crate::progress::Reporter> {
    use crate::progress::{Mode, Reporter};
    let reporter = Reporter::for_env(Mode::detect(quiet), &crate::ci::ProcessEnv);
    if registry.connect.insecure {
        reporter
            .warn("--insecure: TLS certificates are not verified; anyone on the path can read and change this traffic");
    }
    reporter
}

/// `--platform os/arch[/variant]`, when given.
pub fn platform(arg: Option<&str>) -> Result<Option<crate::builder::source::Platform>> {
    arg.map(crate::builder::source::Platform::parse).transpose()
}

impl OutputArgs {
    /// Prints `REF@digest` per reference on stdout and writes the requested files; the dotenv report
    /// names the image ([`image_dotenv`]).
    pub fn emit(&self, report: &PushReport) -> Result<()> {
        self.emit_with(report, image_dotenv(report))
    }

    /// Like [`OutputArgs::emit`], with `dotenv` as the dotenv report's variables — a chart push passes
    /// [`chart_dotenv`] alone, so a pipeline's build job's HOIST_IMAGE* are not overwritten by the chart's.
    pub fn emit_with(&self, report: &PushReport, dotenv: Vec<(String, String)>) -> Result<()> {
        for r in &report.references {
            let bare = r.split_once('@').map_or(r.as_str(), |(n, _)| n);
            println!("{bare}@{}", report.digest);
        }
        if let Some(f) = &self.digest_file {
            write_atomic(f, format!("{}\n", report.digest).as_bytes())?;
        }
        if let Some(f) = &self.metadata_file {
            let json = serde_json::to_vec_pretty(report).expect("report serializes");
            write_atomic(f, &json)?;
        }
        if let Some(f) = &self.dotenv {
            write_atomic(f, dotenv_text(&dotenv)?.as_bytes())?;
        }
        Ok(())
    }
}

/// HOIST_IMAGE, HOIST_TAGS, HOIST_IMAGE_REF (of the first registry repository pushed) and HOIST_DIGEST.
pub fn image_dotenv(report: &PushReport) -> Vec<(String, String)> {
    // `oci:DIR:TAG` and `docker-archive:FILE` entries are local outputs, not images in a registry.
    let pushed: Vec<Reference> = report
        .references
        .iter()
        .filter(|r| !r.starts_with("oci:") && !r.starts_with("docker-archive:"))
        .filter_map(|r| r.parse::<Reference>().ok())
        .collect();
    let mut out = Vec::new();
    if let Some(first) = pushed.first() {
        let image = first.name();
        let tags: Vec<&str> = pushed.iter().filter(|r| r.name() == image).filter_map(|r| r.tag()).collect();
        out.push(("HOIST_IMAGE".to_string(), image.clone()));
        out.push(("HOIST_TAGS".to_string(), tags.join(" ")));
        out.push(("HOIST_IMAGE_REF".to_string(), format!("{image}@{}", report.digest)));
    }
    out.push(("HOIST_DIGEST".to_string(), report.digest.to_string()));
    out
}

/// The chart variables a `chart push` adds to the dotenv report: HOIST_CHART_NAME, HOIST_CHART_VERSION,
/// HOIST_CHART_REF (`oci://host/project/name`, what `helm install --version` takes) and HOIST_CHART_DIGEST.
pub fn chart_dotenv(
    name: &str,
    version: &str,
    repository: &Reference,
    digest: &crate::model::Digest,
) -> Vec<(String, String)> {
    vec![
        ("HOIST_CHART_NAME".to_string(), name.to_string()),
        ("HOIST_CHART_VERSION".to_string(), version.to_string()),
        ("HOIST_CHART_REF".to_string(), format!("oci://{}", repository.name())),
        ("HOIST_CHART_DIGEST".to_string(), digest.to_string()),
    ]
}

/// `KEY=value` lines; a value with a newline cannot be expressed in GitLab's dotenv and is refused.
fn dotenv_text(pairs: &[(String, String)]) -> Result<String> {
    let mut text = String::new();
    for (k, v) in pairs {
        if v.contains(['\n', '\r']) {
            return Err(Error::other(format!("--dotenv: the value of {k} has a line break")));
        }
        text.push_str(&format!("{k}={v}\n"));
    }
    Ok(text)
}

/// Outputs are written whole or not at all (see [`crate::fsutil`]).
pub use crate::fsutil::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;

    fn report(refs: &[&str]) -> PushReport {
        PushReport {
            references: refs.iter().map(|s| s.to_string()).collect(),
            digest: format!("sha256:{}", "a".repeat(64)).parse().unwrap(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 1,
            blobs: Vec::new(),
            seconds: 0.0,
            retries: Default::default(),
            layers: Vec::new(),
        }
    }

    #[test]
    fn dotenv_names_image_tags_and_ref() {
        let r = report(&["h.io:8443/team/app:01234567", "h.io:8443/team/app:main", "other.io/x:1"]);
        let text = dotenv_text(&image_dotenv(&r)).unwrap();
        let d = "sha256:".to_string() + &"a".repeat(64);
        assert_eq!(
            text,
            format!(
                "HOIST_IMAGE=h.io:8443/team/app\nHOIST_TAGS=01234567 main\nHOIST_IMAGE_REF=h.io:8443/team/app@{d}\nHOIST_DIGEST={d}\n"
            )
        );
        // A layout-only build has a digest and no image.
        let text = dotenv_text(&image_dotenv(&report(&["oci:out:latest"]))).unwrap();
        assert_eq!(text, format!("HOIST_DIGEST={d}\n"));
        let chart = chart_dotenv("web", "1.2.3", &"h.io/team/web:1.2.3".parse().unwrap(), &r.digest);
        assert_eq!(chart[2].1, "oci://h.io/team/web");
        assert!(dotenv_text(&[("K".into(), "a\nb".into())]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1000000"), Ok(1_000_000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("8 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }
}
