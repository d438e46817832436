//! Flags shared by the verbs that talk to registries or report a result, and turning them into
//! library options.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;

use crate::ci::{vars, Env};
use crate::error::{Error, Result};
use crate::push::{PushOptions, PushReport};
use crate::registry::ops::RetryPolicy;
use crate::registry::tls::TlsOptions;
use crate::registry::{ClientOptions, Credential};

/// How to reach and log in to registries.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Registry")]
pub struct RegistryArgs {
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
    /// Attempts after the first for retryable failures (network errors, 408, 429, 5xx).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub retries: u32,
    /// Upload in chunks of SIZE (e.g. 8MiB, 512KiB, 1000000) instead of one streaming PUT per blob —
    /// for proxies that cap request bodies. Without it, hoist switches to 8 MiB chunks by itself after a 413.
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
    /// No progress output (warnings, errors and the closing summary still go to stderr).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl RegistryArgs {
    /// Push options from these flags (reads the password from stdin when asked). Every verb that talks
    /// to registries comes through here, so this is where `--insecure` warns — every run, even with `-q`.
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
            retry: RetryPolicy { retries: self.retries, ..RetryPolicy::default() },
            client: ClientOptions {
                plain_http: self.plain_http,
                tls: TlsOptions {
                    ca_files,
                    insecure: self.insecure,
                    certs_d: env.non_empty(vars::HOIST_CERTS_DIR).map(PathBuf::from),
                },
                max_idle: jobs,
            },
            credential,
            chunk_size: self.chunk_size.unwrap_or(0),
        })
    }
}

impl OutputArgs {
    /// Prints `REF@digest` per reference on stdout and writes the requested files.
    pub fn emit(&self, report: &PushReport) -> Result<()> {
        for r in &report.references {
            let bare = r.split_once('@').map_or(r.as_str(), |(n, _)| n);
            println!("{bare}@{}", report.digest);
        }
        if let Some(f) = &self.digest_file {
            crate::fsutil::write_atomic(f, format!("{}\n", report.digest).as_bytes())?;
        }
        if let Some(f) = &self.metadata_file {
            let json = serde_json::to_vec_pretty(report).expect("report serializes");
            crate::fsutil::write_atomic(f, &json)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

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
