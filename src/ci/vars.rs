//! Every environment variable hoist reads, one constant each, with what it is for. The README's
//! "Environment" section lists the same names.

/// Harbor URL as typed in GitLab's Harbor integration (may end in `/`, may carry a port).
pub const HARBOR_URL: &str = "HARBOR_URL";
/// Harbor host without port (used when `HARBOR_URL` is unset).
pub const HARBOR_HOST: &str = "HARBOR_HOST";
/// `oci://host[:port]`.
pub const HARBOR_OCI: &str = "HARBOR_OCI";
/// The Harbor project.
pub const HARBOR_PROJECT: &str = "HARBOR_PROJECT";
/// Harbor username, usually a robot account (`robot$project+name`).
pub const HARBOR_USERNAME: &str = "HARBOR_USERNAME";
/// Harbor password (masked in GitLab).
pub const HARBOR_PASSWORD: &str = "HARBOR_PASSWORD";
/// GitLab's registry `host[:port]`.
pub const CI_REGISTRY: &str = "CI_REGISTRY";
/// GitLab's registry user (`gitlab-ci-token`).
pub const CI_REGISTRY_USER: &str = "CI_REGISTRY_USER";
/// GitLab's registry password (the job token).
pub const CI_REGISTRY_PASSWORD: &str = "CI_REGISTRY_PASSWORD";
/// A docker `config.json` document, as GitLab runners accept it.
pub const DOCKER_AUTH_CONFIG: &str = "DOCKER_AUTH_CONFIG";
/// Directory holding docker's `config.json` (default `~/.docker`).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// Home directory, for `~/.docker/config.json`.
pub const HOME: &str = "HOME";
/// An extra CA bundle file GitLab gives jobs of a self-managed instance.
pub const CI_SERVER_TLS_CA_FILE: &str = "CI_SERVER_TLS_CA_FILE";
/// The system CA bundle override (read by the TLS root loader).
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// Overrides docker's per-registry certificate directory (default `/etc/docker/certs.d`).
pub const HOIST_CERTS_DIR: &str = "HOIST_CERTS_DIR";
/// Layer cache directory for `hoist build` (else `$XDG_CACHE_HOME/hoist`, else `~/.cache/hoist`).
pub const HOIST_CACHE_DIR: &str = "HOIST_CACHE_DIR";
/// The XDG cache root.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// Seconds since the epoch for every timestamp a build writes (reproducible builds).
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// The commit's time (ISO 8601); the build's timestamps when `SOURCE_DATE_EPOCH` is unset.
pub const CI_COMMIT_TIMESTAMP: &str = "CI_COMMIT_TIMESTAMP";
/// Verbose mode without `-v`: any value but empty, `0`, `off`, `false` turns it on.
pub const HOIST_LOG: &str = "HOIST_LOG";
