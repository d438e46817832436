//! Running the hoist binary under test: [`Hoist::cmd`] gives a `Command` for `CARGO_BIN_EXE_hoist` with a clean
//! environment (a fresh empty HOME; no `DOCKER_CONFIG`, `DOCKER_AUTH_CONFIG`, `HARBOR_*`, `CI`, `CI_*`,
//! `GITLAB_CI`, `SSL_CERT_FILE`/`SSL_CERT_DIR`, proxies), and [`Hoist::run`] runs it with a time limit into an
//! [`Output`] whose `assert_*` methods print both streams on failure. Tests add back what they need with
//! `.env(…)`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long one hoist run may take before it is killed and the test fails.
pub const HOIST_TIMEOUT: Duration = Duration::from_secs(180);

/// The hoist binary with a clean environment.
pub struct Hoist;

impl Hoist {
    /// Path of the binary cargo built for these tests.
    pub fn bin() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_hoist"))
    }

    /// A `Command` for hoist with a clean environment and a fresh, empty HOME (under `CARGO_TARGET_TMPDIR`).
    pub fn cmd() -> Command {
        Self::cmd_with_home(&super::scratch_dir("hoist-home"))
    }

    /// Like [`Hoist::cmd`], with HOME = `home` (e.g. to plant `~/.docker/config.json`).
    pub fn cmd_with_home(home: &Path) -> Command {
        let mut cmd = Command::new(Self::bin());
        super::clean_env(&mut cmd, home);
        cmd
    }

    /// Runs `hoist ARGS…` (clean environment) and waits, at most [`HOIST_TIMEOUT`].
    pub fn run<I, S>(args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Self::cmd();
        cmd.args(args);
        Self::run_cmd(cmd, None)
    }

    /// Runs `hoist ARGS…` feeding `stdin` (e.g. for `--password-stdin`).
    pub fn run_with_stdin<I, S>(args: I, stdin: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Self::cmd();
        cmd.args(args);
        Self::run_cmd(cmd, Some(stdin))
    }

    /// Runs a prepared command (from [`Hoist::cmd`]) with an optional stdin, at most [`HOIST_TIMEOUT`].
    pub fn run_cmd(cmd: Command, stdin: Option<&[u8]>) -> Output {
        let desc = format!("{cmd:?}");
        let inner = super::run_with_timeout(cmd, stdin.map(|s| s.to_vec()), HOIST_TIMEOUT);
        Output { desc, inner }
    }
}

/// A finished hoist run.
pub struct Output {
    desc: String,
    pub inner: std::process::Output,
}

impl Output {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.inner.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.inner.stderr).into_owned()
    }

    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.inner.status.code()
    }

    pub fn success(&self) -> bool {
        self.inner.status.success()
    }

    fn report(&self) -> String {
        format!(
            "{}\nexit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.desc,
            self.inner.status,
            self.stdout(),
            self.stderr()
        )
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "hoist failed:\n{}", self.report());
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "hoist exit code is not {code}:\n{}", self.report());
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(self.stderr().contains(needle), "stderr does not contain {needle:?}:\n{}", self.report());
        self
    }

    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        assert!(self.stdout().contains(needle), "stdout does not contain {needle:?}:\n{}", self.report());
        self
    }

    /// Neither stream contains `secret` (e.g. a password).
    #[track_caller]
    pub fn assert_no_leak(&self, secret: &str) -> &Self {
        assert!(
            !self.stdout().contains(secret) && !self.stderr().contains(secret),
            "output leaks {secret:?}:\n{}",
            self.report()
        );
        self
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.report())
    }
}
