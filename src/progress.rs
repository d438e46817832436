//! Progress on stderr: live bars in a terminal, one line per blob start and end otherwise (CI logs),
//! no per-blob output with `-q` — and the closing summary, always. Inside GitLab CI (`GITLAB_CI=true`)
//! long phases are wrapped in collapsible log sections ([`Reporter::section`]). Stdout is never touched here.
//!
//! Verbose mode (`-v`, `HOIST_LOG`) is worded here too: [`enable_verbose`] listens to the registry
//! layer's [`Trace`]s and prints one `[http]`/`[token]`/`[registry]`/`[retry]` line each (and turns
//! bars into lines so the two do not fight). Traces carry no secrets by construction.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::media::kind_of;
use crate::model::{Blob, Digest};
use crate::registry::chunking::size_arg;
use crate::registry::events::{self, Event, Progress, Trace};
use crate::registry::BlobOutcome;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

impl Mode {
    /// Bars on a terminal, lines elsewhere, nothing with `quiet`.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() && !VERBOSE.load(Ordering::Relaxed) {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

/// Prints progress for one run.
pub struct Reporter {
    mode: Mode,
    multi: Option<MultiProgress>,
    /// Wrap phases in GitLab's collapsible log sections.
    gitlab_sections: bool,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").field("mode", &self.mode).finish()
    }
}

impl Reporter {
    pub fn new(mode: Mode) -> Arc<Reporter> {
        Self::with_sections(mode, false)
    }

    /// A reporter that wraps phases in GitLab log sections when `env` says this is a GitLab job
    /// (`GITLAB_CI=true`) and lines, not bars, are printed.
    pub fn for_env(mode: Mode, env: &dyn crate::ci::Env) -> Arc<Reporter> {
        let gitlab = env.var(crate::ci::vars::GITLAB_CI).is_some_and(|v| v == "true");
        Self::with_sections(mode, gitlab && mode == Mode::Lines)
    }

    fn with_sections(mode: Mode, gitlab_sections: bool) -> Arc<Reporter> {
        let multi = (mode == Mode::Bars).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Arc::new(Reporter { mode, multi, gitlab_sections })
    }

    /// Opens a collapsible GitLab log section (`name`: `[a-z0-9_]`), closed when the guard drops; elsewhere
    /// the header is printed as a plain note.
    pub fn section(&self, name: &str, header: &str) -> Section {
        if self.gitlab_sections {
            eprintln_flush(&section_marker("start", name, Some(header)));
            Section { name: Some(name.to_string()) }
        } else {
            self.note(header);
            Section { name: None }
        }
    }

    /// A line for people (suppressed with `-q`), printed above any bars.
    pub fn note(&self, line: &str) {
        match (&self.multi, self.mode) {
            (_, Mode::Quiet) => {}
            (Some(m), _) => {
                let _ = m.println(line);
            }
            (None, _) => eprintln_flush(line),
        }
    }

    /// A warning: shown even with `-q`.
    pub fn warn(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(format!("warning: {line}"));
            }
            None => eprintln_flush(&format!("warning: {line}")),
        }
    }

    /// Words a registry [`Event`] as a warning.
    pub fn event(&self, event: &Event) {
        self.warn(&describe(event));
    }

    /// The closing summary: shown even with `-q`.
    pub fn summary(&self, line: &str) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
        eprintln_flush(line);
    }

    /// A blob already in the repository.
    pub fn skipped(&self, blob: &Blob) {
        self.note(&format!(
            "{} {} exists, skipped ({})",
            kind_of(&blob.media_type),
            blob.digest.short(),
            human_bytes(blob.size)
        ));
    }

    /// Starts tracking an upload.
    pub fn start(&self, blob: &Blob) -> Arc<BlobProgress> {
        self.start_as(blob, "uploading")
    }

    /// Starts tracking a transfer the line calls `verb` ("uploading", "downloading").
    pub fn start_as(&self, blob: &Blob, verb: &str) -> Arc<BlobProgress> {
        let label = format!("{} {}", kind_of(&blob.media_type), blob.digest.short());
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(blob.size));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>24} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        // Said when the first byte moves, not before: a blob that is then mounted (or found) never
        // gets an "uploading" line, only its outcome.
        let announce = (self.mode == Mode::Lines).then(|| format!("{label} {verb} ({})", human_bytes(blob.size)));
        Arc::new(BlobProgress {
            label,
            bar,
            sent: AtomicU64::new(0),
            started: Instant::now(),
            announce: std::sync::Mutex::new(announce),
        })
    }

    /// Starts tracking an upload whose blob is still being written (`label` names it until its
    /// digest is known; the size grows as it goes).
    pub fn start_growing(&self, label: String) -> Arc<BlobProgress> {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::no_length());
            bar.set_style(
                ProgressStyle::with_template("{prefix:>24} {spinner} {bytes:>10} {bytes_per_sec:>12} (compressing)")
                    .expect("static template"),
            );
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if self.mode == Mode::Lines {
            eprintln_flush(&format!("{label} uploading while it is compressed"));
        }
        Arc::new(BlobProgress {
            label,
            bar,
            sent: AtomicU64::new(0),
            started: Instant::now(),
            announce: std::sync::Mutex::new(None),
        })
    }

    /// Ends tracking an upload.
    pub fn finish(&self, p: &BlobProgress, outcome: BlobOutcome, size: u64) {
        self.finish_as(p, &p.label, outcome, size);
    }

    /// Ends tracking an upload started by [`Reporter::start_growing`], naming the blob it became.
    pub fn finish_growing(&self, p: &BlobProgress, media_type: &str, digest: &Digest, size: u64, outcome: BlobOutcome) {
        let label = format!("{} {}", kind_of(media_type), digest.short());
        match outcome {
            BlobOutcome::Skipped => {
                self.clear_bar(p);
                self.note(&format!(
                    "{label} was already in the registry: its upload was dropped ({})",
                    human_bytes(size)
                ));
            }
            _ => self.finish_as(p, &label, outcome, size),
        }
    }

    /// Stops tracking an upload that failed (the failure is reported by the caller).
    pub fn abandon(&self, p: &BlobProgress) {
        self.clear_bar(p);
    }

    fn clear_bar(&self, p: &BlobProgress) {
        if let Some(bar) = &p.bar {
            bar.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(bar);
            }
        }
    }

    fn finish_as(&self, p: &BlobProgress, label: &str, outcome: BlobOutcome, size: u64) {
        let secs = p.started.elapsed().as_secs_f64();
        self.clear_bar(p);
        let verb = match outcome {
            BlobOutcome::Uploaded => "uploaded",
            BlobOutcome::Mounted => "mounted",
            BlobOutcome::Skipped => "skipped",
            BlobOutcome::Downloaded => "downloaded",
        };
        self.note(&format!("{label} {verb} {} in {:.1} s ({})", human_bytes(size), secs, rate(size, secs)));
    }
}

impl Reporter {
    /// Starts showing a long wait on a server (Harbor's scan): a spinner with the latest state in a terminal; in
    /// logs a line when the state changes and at least every [`WAIT_LINE_EVERY`] while it does not.
    pub fn waiting(&self, label: &str) -> Waiting {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg} ({elapsed})").expect("static template"),
            );
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Waiting {
            label: label.to_string(),
            lines: self.mode == Mode::Lines,
            bar,
            started: Instant::now(),
            last: std::sync::Mutex::new(None),
        }
    }
}

/// How often a wait prints a line in logs while nothing changes (GitLab shows a job as stuck to people after a
/// few silent minutes; a line every 30 s says it is not).
pub const WAIT_LINE_EVERY: Duration = Duration::from_secs(30);

/// A wait shown by [`Reporter::waiting`]; the spinner goes when it drops.
pub struct Waiting {
    label: String,
    lines: bool,
    bar: Option<ProgressBar>,
    started: Instant,
    /// The state last printed as a line, and when.
    last: std::sync::Mutex<Option<(String, Instant)>>,
}

impl Waiting {
    /// The server's latest state (e.g. `Running 40%`).
    pub fn update(&self, state: &str) {
        if let Some(b) = &self.bar {
            b.set_message(state.to_string());
        }
        if !self.lines {
            return;
        }
        let mut last = self.last.lock().expect("wait lock");
        let now = Instant::now();
        if wait_line_due(last.as_ref().map(|(s, at)| (s.as_str(), now.duration_since(*at))), state) {
            eprintln_flush(&format!("{} {state} ({:.0} s)", self.label, self.started.elapsed().as_secs_f64()));
            *last = Some((state.to_string(), now));
        }
    }

    /// Seconds since the wait began.
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Whether a wait prints a line for `state`, given the last line's state and age: the first one, a new state,
/// or the same state [`WAIT_LINE_EVERY`] later.
fn wait_line_due(last: Option<(&str, Duration)>, state: &str) -> bool {
    match last {
        None => true,
        Some((s, age)) => s != state || age >= WAIT_LINE_EVERY,
    }
}

/// An open GitLab log section; dropping it closes it.
#[must_use = "the section closes when this guard drops"]
pub struct Section {
    name: Option<String>,
}

impl Drop for Section {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            eprintln_flush(&section_marker("end", name, None));
        }
    }
}

/// `\e[0Ksection_start:<unix seconds>:<name>[collapsed=true]\r\e[0K<header>` (GitLab's documented format)
/// or the matching `section_end`.
fn section_marker(which: &str, name: &str, header: Option<&str>) -> String {
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    match header {
        Some(h) => format!("\x1b[0Ksection_{which}:{ts}:{name}[collapsed=true]\r\x1b[0K{h}"),
        None => format!("\x1b[0Ksection_{which}:{ts}:{name}\r\x1b[0K"),
    }
}

/// Progress of one upload.
pub struct BlobProgress {
    label: String,
    bar: Option<ProgressBar>,
    sent: AtomicU64,
    started: Instant,
    /// The plain-log start line, printed once with the first byte sent or received.
    announce: std::sync::Mutex<Option<String>>,
}

impl BlobProgress {
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

impl Progress for BlobProgress {
    fn advance(&self, bytes: u64) {
        if bytes > 0 {
            if let Some(line) = self.announce.lock().map(|mut a| a.take()).unwrap_or(None) {
                eprintln_flush(&line);
            }
        }
        self.sent.fetch_add(bytes, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
    fn restart(&self) {
        self.sent.store(0, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_position(0);
        }
    }
}

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns on verbose mode for this process: every registry [`Trace`] is printed on stderr.
pub fn enable_verbose() {
    VERBOSE.store(true, Ordering::Relaxed);
    events::set_trace_sink(Box::new(|t| eprintln_flush(&describe_trace(t))));
}

/// Whether `HOIST_LOG`'s value asks for verbose mode: anything but empty, `0`, `off`, `false`.
pub fn log_env_enabled(value: Option<&str>) -> bool {
    value.is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "off" | "false" | "none"))
}

/// One verbose line for a trace.
pub fn describe_trace(t: &Trace) -> String {
    match t {
        Trace::Exchange { method, url, status, error, sent, received, redirected_to, elapsed } => {
            let answer = match (status, error) {
                (Some(s), _) => reqwest::StatusCode::from_u16(*s).map_or_else(|_| s.to_string(), |c| c.to_string()),
                (None, Some(e)) => format!("failed: {e}"),
                (None, None) => "no answer".into(),
            };
            let mut sizes = Vec::new();
            if let Some(n) = sent.filter(|n| *n > 0) {
                sizes.push(format!("sent {}", human_bytes(n)));
            }
            if let Some(n) = received {
                sizes.push(format!("received {}", human_bytes(*n)));
            }
            sizes.push(format!("{} ms", elapsed.as_millis()));
            let redirect = redirected_to.as_ref().map(|u| format!(" (redirected to {u})")).unwrap_or_default();
            format!("[http] {method} {url}{redirect} -> {answer} ({})", sizes.join(", "))
        }
        Trace::Token { realm, service, asked, granted } => format!(
            "[token] {realm} service={} asked [{}] granted [{}]",
            service.as_deref().unwrap_or("-"),
            asked.join(" "),
            granted.as_ref().map_or("opaque token: not readable".to_string(), |g| g.join(" "))
        ),
        Trace::Connected { host, base, auth, user, source } => format!(
            "[registry] {host}: {base} auth {auth}; credentials: {}",
            match (user, source) {
                (Some(u), Some(s)) => format!("user {u:?} from {s}"),
                _ => "none".to_string(),
            }
        ),
        Trace::Retry { host, reason } => format!("[retry] {host}: {reason}"),
    }
}

/// One line for a registry event.
pub fn describe(event: &Event) -> String {
    match event {
        Event::ChunkSizeChosen { host, refused, chunk } => {
            let arg = size_arg(*chunk);
            format!(
                "{host} refuses request bodies of {refused} bytes (413 Payload Too Large from a proxy): uploading in \
                 chunks of {arg} to it for the rest of this run; pass --chunk-size {arg} to start there"
            )
        }
        Event::BackedOff { host, parallel } => {
            format!("{host} is overloaded (429/503): now {parallel} upload(s) at a time")
        }
    }
}

fn eprintln_flush(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
    let _ = e.flush();
}

/// `512.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// `98.3 MB/s` (decimal megabytes, as network rates are quoted).
pub fn rate(bytes: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "- MB/s".into();
    }
    format!("{:.1} MB/s", bytes as f64 / secs / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_print_a_line_on_change_and_every_30_seconds() {
        assert!(wait_line_due(None, "Pending"));
        assert!(!wait_line_due(Some(("Pending", Duration::from_secs(3))), "Pending"));
        assert!(wait_line_due(Some(("Pending", Duration::from_secs(3))), "Running"));
        assert!(wait_line_due(Some(("Running", Duration::from_secs(30))), "Running"));
    }

    #[test]
    fn units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(512 << 20), "512.0 MiB");
        assert_eq!(rate(100_000_000, 2.0), "50.0 MB/s");
    }

    #[test]
    fn gitlab_section_markers() {
        let start = section_marker("start", "hoist_push", Some("Pushing"));
        assert!(start.starts_with("\x1b[0Ksection_start:"), "{start:?}");
        assert!(start.ends_with(":hoist_push[collapsed=true]\r\x1b[0KPushing"), "{start:?}");
        let end = section_marker("end", "hoist_push", None);
        assert!(end.starts_with("\x1b[0Ksection_end:") && end.ends_with(":hoist_push\r\x1b[0K"), "{end:?}");
        let env = crate::ci::MapEnv::new([("GITLAB_CI", "true")]);
        assert!(Reporter::for_env(Mode::Lines, &env).gitlab_sections);
        assert!(!Reporter::for_env(Mode::Quiet, &env).gitlab_sections);
        assert!(!Reporter::for_env(Mode::Lines, &crate::ci::MapEnv::new([])).gitlab_sections);
    }
}
