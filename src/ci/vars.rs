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
/// Images whose layers `hoist build` may reuse, comma-separated (after `--cache-from`).
pub const HOIST_CACHE_FROM: &str = "HOIST_CACHE_FROM";
/// The XDG cache root.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// Seconds since the epoch for every timestamp a build writes (reproducible builds).
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// The commit's time (ISO 8601); the build's timestamps when `SOURCE_DATE_EPOCH` is unset.
pub const CI_COMMIT_TIMESTAMP: &str = "CI_COMMIT_TIMESTAMP";
/// Verbose mode without `-v`: any value but empty, `0`, `off`, `false` turns it on.
pub const HOIST_LOG: &str = "HOIST_LOG";
/// Registry mirrors for pulls, `SRC=DEST` items comma-separated (after `--registry-mirror`).
pub const HOIST_REGISTRY_MIRRORS: &str = "HOIST_REGISTRY_MIRRORS";
/// A containers `registries.conf` with `[[registry.mirror]]`s (default `/etc/containers/registries.conf`).
pub const CONTAINERS_REGISTRIES_CONF: &str = "CONTAINERS_REGISTRIES_CONF";
/// GitLab's Dependency Proxy `host:port`.
pub const CI_DEPENDENCY_PROXY_SERVER: &str = "CI_DEPENDENCY_PROXY_SERVER";
/// GitLab's Dependency Proxy user (for `CI_DEPENDENCY_PROXY_SERVER`).
pub const CI_DEPENDENCY_PROXY_USER: &str = "CI_DEPENDENCY_PROXY_USER";
/// GitLab's Dependency Proxy password (the job token).
pub const CI_DEPENDENCY_PROXY_PASSWORD: &str = "CI_DEPENDENCY_PROXY_PASSWORD";
/// `true` in every GitLab CI job: turns on collapsible log sections.
pub const GITLAB_CI: &str = "GITLAB_CI";
/// GitLab's debug trace switch: hoist warns that the runner's trace (not hoist) shows variable values.
pub const CI_DEBUG_TRACE: &str = "CI_DEBUG_TRACE";
/// The project's name (path component): the image name under the Harbor project unless `--name`.
pub const CI_PROJECT_NAME: &str = "CI_PROJECT_NAME";
/// The project's web URL: `org.opencontainers.image.source` and `url`.
pub const CI_PROJECT_URL: &str = "CI_PROJECT_URL";
/// The project's human title: `org.opencontainers.image.title`.
pub const CI_PROJECT_TITLE: &str = "CI_PROJECT_TITLE";
/// GitLab's container registry path of the project (`host[:port]/group/project`): the destination of
/// images (and of charts, as `oci://$CI_REGISTRY_IMAGE`) without Harbor.
pub const CI_REGISTRY_IMAGE: &str = "CI_REGISTRY_IMAGE";
/// The commit: `org.opencontainers.image.revision`.
pub const CI_COMMIT_SHA: &str = "CI_COMMIT_SHA";
/// The commit's first 8 hex digits: a tag in every pipeline.
pub const CI_COMMIT_SHORT_SHA: &str = "CI_COMMIT_SHORT_SHA";
/// The branch or tag name: `org.opencontainers.image.version` outside tag pipelines.
pub const CI_COMMIT_REF_NAME: &str = "CI_COMMIT_REF_NAME";
/// The ref name made URL- and tag-safe: a tag on branch pipelines.
pub const CI_COMMIT_REF_SLUG: &str = "CI_COMMIT_REF_SLUG";
/// The branch (branch pipelines only).
pub const CI_COMMIT_BRANCH: &str = "CI_COMMIT_BRANCH";
/// The git tag (tag pipelines only): `X.Y.Z`, `X.Y`, `X` tags for `vX.Y.Z`.
pub const CI_COMMIT_TAG: &str = "CI_COMMIT_TAG";
/// The default branch: its pipelines also push `latest`.
pub const CI_DEFAULT_BRANCH: &str = "CI_DEFAULT_BRANCH";
/// The merge request's project-level id (merge-request pipelines only): the `mr-<iid>` tag.
pub const CI_MERGE_REQUEST_IID: &str = "CI_MERGE_REQUEST_IID";
/// A merge-request pipeline's ref (`refs/merge-requests/<iid>/head`, or `/merge` for merged results).
pub const CI_MERGE_REQUEST_REF_PATH: &str = "CI_MERGE_REQUEST_REF_PATH";
/// A merge request's source and target branches (provenance's `source.mergeRequest`).
pub const CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: &str = "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME";
pub const CI_MERGE_REQUEST_TARGET_BRANCH_NAME: &str = "CI_MERGE_REQUEST_TARGET_BRANCH_NAME";
/// Helm's registry credentials file (`hoist login` writes it; default `~/.config/helm/registry/config.json`).
pub const HELM_REGISTRY_CONFIG: &str = "HELM_REGISTRY_CONFIG";
/// Helm's configuration directory (`registry/config.json` below it), before `XDG_CONFIG_HOME`.
pub const HELM_CONFIG_HOME: &str = "HELM_CONFIG_HOME";
/// The XDG config root (Helm's `helm/registry/config.json` below it).
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// The image a build or push job pushed, `repository@digest` (its dotenv report; later jobs get it as a
/// variable): what `hoist scan` scans when no REF is given.
pub const HOIST_IMAGE_REF: &str = "HOIST_IMAGE_REF";
/// `hoist sign`'s private key: the PEM itself, or a path to it (a GitLab CI/CD variable of type File).
pub const HOIST_SIGNING_KEY: &str = "HOIST_SIGNING_KEY";
/// The password of `HOIST_SIGNING_KEY` (or `--key`) when it is cosign's encrypted key.
pub const HOIST_SIGNING_PASSWORD: &str = "HOIST_SIGNING_PASSWORD";
/// cosign's private key variable (PEM or path), read after `HOIST_SIGNING_KEY`.
pub const COSIGN_PRIVATE_KEY: &str = "COSIGN_PRIVATE_KEY";
/// cosign's key password variable, read after `HOIST_SIGNING_PASSWORD`.
pub const COSIGN_PASSWORD: &str = "COSIGN_PASSWORD";
/// `hoist build`'s provenance when neither `--provenance` nor `--no-provenance` is given: `off`,
/// `auto` (attach at `min` where the registry keeps referrers itself; the default in GitLab CI),
/// `min` or `max`.
pub const HOIST_PROVENANCE: &str = "HOIST_PROVENANCE";
/// `hoist verify`'s public key: the PEM itself, or a path to it.
pub const HOIST_VERIFY_KEY: &str = "HOIST_VERIFY_KEY";
/// The GitLab instance (`https://gitlab.example.com`): with `CI_RUNNER_ID`, the provenance's builder id.
pub const CI_SERVER_URL: &str = "CI_SERVER_URL";
/// The runner running the job: the provenance's builder id.
pub const CI_RUNNER_ID: &str = "CI_RUNNER_ID";
/// The job's web page: the provenance's invocationId.
pub const CI_JOB_URL: &str = "CI_JOB_URL";
