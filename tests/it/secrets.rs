//! Verbose mode and secrets: `-v`/`HOIST_LOG` show every HTTP exchange, token request (scopes asked and
//! granted) and retry — and no command of hoist, in any mode, with right or wrong credentials, against a
//! Basic or a token registry, ever lets the password, the base64 Basic string, the token it was issued,
//! or anything shaped like a JWT reach stdout, stderr or a file it writes.
//!
//! Adding a verb to the scan is one line in [`VERBS`].

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::harness::*;

const USER: &str = "robot$proj+ci";
/// Distinctive, so a leak cannot hide behind a common substring.
const PASSWORD: &str = "Hx7-pw-QuokkaZebra-91f3e2";
const WRONG: &str = "Hx7-wrong-PelicanOtter-5a0c";
/// The signing key's password (HOIST_SIGNING_PASSWORD in every run).
const KEY_PASSWORD: &str = "Hx7-keypw-NarwhalYak-3d9b";

/// One hoist run's setting: the registry, whether the password is right, where its outputs go.
struct Case<'a> {
    reg: &'a Registry,
    /// `basic` or `token`.
    kind: &'static str,
    right: bool,
    /// An OCI layout with tag v1 to push.
    layout: String,
    /// A build context whose Dockerfile builds FROM an image on `reg`.
    context: String,
    /// A Helm chart directory.
    chart: String,
    /// An image already on `reg` (`host/proj/base:1`).
    base: String,
    /// A directory the verb writes its files into (scanned afterwards, every file).
    out: PathBuf,
    /// cosign.key (encrypted with [`KEY_PASSWORD`]) and cosign.pub, from `hoist generate-key-pair`.
    key: String,
    public: String,
}

impl Case<'_> {
    fn dest(&self, verb: &str) -> String {
        format!("{}/proj/{verb}-{}:1", self.reg.host(), self.kind)
    }
    fn file(&self, name: &str) -> String {
        self.out.join(name).display().to_string()
    }
}

type Args = fn(&Case) -> Vec<String>;

/// One verb of the scan: its name, whether a right-password run writes files into `out` (then they
/// must exist and are scanned), and its arguments. A wrong password exits 3 from every verb.
struct Verb {
    name: &'static str,
    writes: bool,
    args: Args,
}

fn with_reports(c: &Case, mut args: Vec<String>) -> Vec<String> {
    args.extend(["--metadata-file".into(), c.file("meta.json"), "--dotenv".into(), c.file("hoist.env")]);
    args
}

/// Every verb hoist has that talks to a registry, with the arguments that make it do so and write its
/// files. Adding a verb is one line.
const VERBS: &[Verb] = &[
    Verb {
        name: "push",
        writes: true,
        args: |c| with_reports(c, vec!["push".into(), c.layout.clone(), c.dest("push")]),
    },
    Verb {
        name: "build",
        writes: true,
        args: |c| {
            let out = format!("oci:{}:v1", c.file("layout"));
            with_reports(
                c,
                vec![
                    "build".into(),
                    c.context.clone(),
                    "-t".into(),
                    c.dest("build"),
                    "--output".into(),
                    out,
                    // A candidate read with the credentials (its log lines name it).
                    "--cache-from".into(),
                    c.dest("push"),
                ],
            )
        },
    },
    Verb {
        name: "chart",
        writes: true,
        args: |c| {
            with_reports(
                c,
                vec![
                    "chart".into(),
                    "push".into(),
                    c.chart.clone(),
                    format!("oci://{}/proj/charts-{}", c.reg.host(), c.kind),
                ],
            )
        },
    },
    Verb { name: "copy", writes: true, args: |c| with_reports(c, vec!["copy".into(), c.base.clone(), c.dest("copy")]) },
    Verb {
        name: "tag",
        writes: true,
        args: |c| with_reports(c, vec!["tag".into(), c.base.clone(), format!("t-{}", c.kind)]),
    },
    Verb { name: "ls", writes: false, args: |c| vec!["ls".into(), c.base.rsplit_once(':').unwrap().0.to_string()] },
    Verb { name: "inspect", writes: false, args: |c| vec!["inspect".into(), c.base.clone(), "--json".into()] },
    Verb {
        name: "pull",
        writes: true,
        args: |c| {
            with_reports(c, vec!["pull".into(), c.base.clone(), "--output".into(), format!("oci:{}", c.file("pulled"))])
        },
    },
    Verb { name: "doctor", writes: false, args: |c| vec!["doctor".into(), c.base.clone()] },
    Verb { name: "login", writes: false, args: |c| vec!["login".into(), c.reg.host()] },
    // Signing: the key file's contents and its password must not leak either (scanned as secrets).
    Verb {
        name: "sign",
        writes: false,
        args: |c| {
            vec![
                "sign".into(),
                c.base.clone(),
                "--key".into(),
                c.key.clone(),
                "--metadata-file".into(),
                c.file("sign.json"),
            ]
        },
    },
    Verb {
        name: "verify",
        writes: false,
        args: |c| vec!["verify".into(), c.base.clone(), "--key".into(), c.public.clone()],
    },
    Verb {
        name: "push-sign",
        writes: true,
        args: |c| {
            let mut args = with_reports(c, vec!["push".into(), c.layout.clone(), c.dest("push-sign")]);
            args.extend(["--sign".into(), "--signing-key".into(), c.key.clone()]);
            args
        },
    },
    // Provenance: the statement (max: build-arg values) and the signed envelope, with the key.
    Verb {
        name: "build-provenance",
        writes: true,
        args: |c| {
            let mut args =
                with_reports(c, vec!["build".into(), c.context.clone(), "-t".into(), c.dest("build-provenance")]);
            args.extend(["--provenance=max".into(), "--provenance-file".into(), c.file("provenance.json")]);
            args.extend(["--sign".into(), "--signing-key".into(), c.key.clone()]);
            args
        },
    },
    Verb {
        name: "verify-provenance",
        writes: false,
        args: |c| {
            let image = format!("{}/proj/build-provenance-{}:1", c.reg.host(), c.kind);
            vec!["verify".into(), image, "--provenance".into(), "--key".into(), c.public.clone()]
        },
    },
    Verb { name: "referrers", writes: false, args: |c| vec!["referrers".into(), c.base.clone(), "--json".into()] },
    Verb {
        name: "attach",
        writes: false,
        args: |c| {
            let file = format!("{}/Dockerfile", c.context);
            vec!["attach".into(), c.base.clone(), file, "--artifact-type".into(), "application/vnd.example.note".into()]
        },
    },
];

/// `user:password` as a Basic header carries it.
fn basic(pass: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{pass}"))
}

/// The first JWT-shaped string in `text` (`eyJ….eyJ….sig`: a base64url JSON header and payload).
fn find_jwt(text: &str) -> Option<&str> {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut from = 0;
    while let Some(i) = text[from..].find("eyJ") {
        let start = from + i;
        let rest = &text[start..];
        let seg1 = rest.find(|c: char| !is_b64(c)).unwrap_or(rest.len());
        if seg1 > 10 && rest[seg1..].starts_with(".eyJ") {
            return Some(&rest[..(seg1 + 20).min(rest.len())]);
        }
        from = start + 3;
    }
    None
}

/// Every file under `dir` with its text (lossy).
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out
}

/// Fails when any secret form is in `text`.
#[track_caller]
fn assert_clean(place: &str, text: &str, secrets: &[String], report: &dyn Fn() -> String) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{place} leaks {s:?}\n{}", report());
    }
    if let Some(jwt) = find_jwt(text) {
        panic!("{place} holds a JWT ({jwt}…)\n{}", report());
    }
}

fn run_matrix(reg: &Registry, kind: &'static str) {
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(131).layer_sizes(&[20_000, 3000]).tag("v1"));
    let layout = format!("oci:{}:v1", src.display());
    // The build's base lives on the authenticated registry, so a build reads it with the credentials.
    let base = format!("{}/proj/base:1", reg.host());
    Hoist::run_with_stdin(["push", &layout, &base, "-u", USER, "--password-stdin", "-q"], PASSWORD.as_bytes())
        .assert_success();
    let context = work.path().join("ctx");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), format!("FROM {base}\nCOPY hello.txt /hello.txt\n")).unwrap();
    std::fs::write(context.join("hello.txt"), "hi\n").unwrap();
    let chart = work.path().join("demo");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: demo\nversion: 0.1.0\n").unwrap();
    std::fs::write(chart.join("templates/cm.yaml"), "kind: ConfigMap\n").unwrap();

    // A signing key pair; its password and every base64 line of the private key are secrets too.
    let keys = work.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let mut gen = Hoist::cmd();
    gen.current_dir(&keys).arg("generate-key-pair").env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
    let out = Hoist::run_cmd(gen, None);
    out.assert_success().assert_no_leak(KEY_PASSWORD);
    let key_text = std::fs::read_to_string(keys.join("cosign.key")).unwrap();
    let key_lines: Vec<String> =
        key_text.lines().filter(|l| !l.starts_with("-----") && l.len() > 16).map(str::to_string).collect();
    assert!(!key_lines.is_empty());
    for l in &key_lines {
        out.assert_no_leak(l);
    }

    let mut runs = 0;
    for right in [true, false] {
        let pass = if right { PASSWORD } else { WRONG };
        for verb in VERBS {
            for via_stdin in [false, true] {
                let out_dir = work.path().join(format!("out-{}-{right}-{via_stdin}", verb.name));
                std::fs::create_dir_all(&out_dir).unwrap();
                let case = Case {
                    reg,
                    kind,
                    right,
                    layout: layout.clone(),
                    context: context.display().to_string(),
                    chart: chart.display().to_string(),
                    base: base.clone(),
                    out: out_dir.clone(),
                    key: keys.join("cosign.key").display().to_string(),
                    public: keys.join("cosign.pub").display().to_string(),
                };
                let mut cmd = Hoist::cmd();
                cmd.arg("-v").args((verb.args)(&case));
                cmd.env("CI_DEBUG_TRACE", "true").env("CI", "true").env("GITLAB_CI", "true");
                cmd.env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
                let stdin = if via_stdin {
                    cmd.args(["-u", USER, "--password-stdin"]);
                    Some(pass.as_bytes())
                } else {
                    cmd.env("HARBOR_URL", format!("http://{}", reg.host()))
                        .env("HARBOR_USERNAME", USER)
                        .env("HARBOR_PASSWORD", pass);
                    None
                };
                let before = reg.token_issuer_opt().map_or(0, |t| t.request_count());
                let out = Hoist::run_cmd(cmd, stdin);
                runs += 1;
                let name = verb.name;
                let report =
                    || format!("{kind} registry, {name}, right password: {right}, stdin: {via_stdin}\n{out:?}");
                if case.right {
                    assert!(out.success(), "expected success\n{}", report());
                } else {
                    assert_eq!(out.code(), Some(3), "a wrong password is an auth failure (exit 3)\n{}", report());
                }
                // Verbose mode really spoke, so the scan looked at what it says.
                assert!(out.stderr().contains("[http] GET "), "no verbose output\n{}", report());
                let mut secrets = vec![PASSWORD.to_string(), WRONG.to_string(), basic(PASSWORD), basic(WRONG)];
                secrets.push(KEY_PASSWORD.to_string());
                secrets.extend(key_lines.iter().cloned());
                if let Some(issuer) = reg.token_issuer_opt() {
                    let issued: Vec<String> =
                        issuer.requests()[before..].iter().filter_map(|r| r.token.clone()).collect();
                    if case.right {
                        assert!(!issued.is_empty(), "the token registry issued no token\n{}", report());
                        assert!(out.stderr().contains("[token] "), "no token line\n{}", report());
                    }
                    secrets.extend(issued);
                }
                assert_clean("stdout", &out.stdout(), &secrets, &report);
                assert_clean("stderr", &out.stderr(), &secrets, &report);
                let files = files_under(&out_dir);
                if case.right && verb.writes {
                    assert!(!files.is_empty(), "the verb wrote no file to scan\n{}", report());
                    assert!(out_dir.join("hoist.env").is_file(), "no dotenv file\n{}", report());
                }
                for (path, text) in files {
                    assert_clean(&path.display().to_string(), &text, &secrets, &report);
                }
            }
        }
    }
    assert_eq!(runs, VERBS.len() * 4);
}

#[test]
fn secrets_never_leak_from_any_verb_basic_registry() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd(USER, PASSWORD)));
    run_matrix(&reg, "basic");
}

#[test]
fn secrets_never_leak_from_any_verb_token_registry() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::Token(TokenIssuerOpts::with_user(USER, PASSWORD))));
    run_matrix(&reg, "token");
}

#[test]
fn secrets_jwt_finder_finds_jwts() {
    let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let jwt = format!("{}.{}.c2ln", enc(r#"{"alg":"ES256","typ":"JWT"}"#), enc(r#"{"sub":"robot"}"#));
    assert!(find_jwt(&format!("token: {jwt} end")).is_some());
    assert!(find_jwt("eyJ short.eyJ").is_none());
    assert!(find_jwt("[http] GET https://h/v2/ -> 200 OK").is_none());
}

#[test]
fn verbose_shows_exchanges_tokens_and_hides_state() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::Token(TokenIssuerOpts::with_user(USER, PASSWORD))));
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(132).layer_sizes(&[70_000]).tag("v1"));
    let dest = format!("{}/proj/verbose:1", reg.host());
    let layout = format!("oci:{}:v1", src.display());
    let out =
        Hoist::run_with_stdin(["push", "-v", &layout, &dest, "-u", USER, "--password-stdin"], PASSWORD.as_bytes());
    out.assert_success();
    let err = out.stderr();
    let host = reg.host();
    for needle in [
        format!("[http] GET http://{host}/v2/ -> 401 Unauthorized"),
        format!("[registry] {host}: http://{host}/ auth Bearer"),
        format!("user \"{USER}\" from --username/--password-stdin"),
        "asked [repository:proj/verbose:pull,push] granted [repository:proj/verbose:pull,push]".to_string(),
        format!("[http] POST http://{host}/v2/proj/verbose/blobs/uploads/ -> 202 Accepted"),
        "?_state=…&digest=sha256:".to_string(),
        "-> 201 Created (sent ".to_string(),
        format!("[http] PUT http://{host}/v2/proj/verbose/manifests/1 -> 201 Created"),
    ] {
        assert!(err.contains(&needle), "stderr lacks {needle:?}:\n{err}");
    }
    // `_state` never shows its value.
    assert!(!err.contains("_state=") || err.matches("_state=…").count() == err.matches("_state=").count(), "{err}");

    // HOIST_LOG turns it on without -v; without either, nothing of it shows.
    let mut cmd = Hoist::cmd();
    cmd.args(["push", &layout, &format!("{host}/proj/verbose:2"), "-u", USER, "--password-stdin"]);
    cmd.env("HOIST_LOG", "1");
    let out = Hoist::run_cmd(cmd, Some(PASSWORD.as_bytes()));
    out.assert_success().assert_stderr_contains("[http] PUT ");
    let out = Hoist::run_with_stdin(
        ["push", &layout, &format!("{host}/proj/verbose:3"), "-u", USER, "--password-stdin"],
        PASSWORD.as_bytes(),
    );
    out.assert_success();
    assert!(!out.stderr().contains("[http]"), "{}", out.stderr());
}

/// `hoist scan` needs Harbor's scan API, so it runs against the **fake Harbor** (harness/harbor.rs, an API fake in
/// front of a real registry) rather than in [`VERBS`]' plain registries: right and wrong password, from stdin and
/// from HARBOR_*, verbose, every output file scanned.
#[test]
fn secrets_never_leak_from_scan_on_the_fake_harbor() {
    let robot = FakeRobot::ci(USER, PASSWORD, "proj").can("proj", &["scan:create", "artifact-addition:read"]);
    let fake = HarborFake::start(vec![FakeProject::new(1, "proj")], vec![robot]);
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(133).layer_sizes(&[2000]).tag("v1"));
    let target = format!("{}/proj/scanned:1", fake.host());
    Hoist::run_with_stdin(
        ["push", &format!("oci:{}:v1", src.display()), &target, "-u", USER, "--password-stdin", "-q"],
        PASSWORD.as_bytes(),
    )
    .assert_success();
    let issuer = fake.registry().token_issuer();
    for right in [true, false] {
        let pass = if right { PASSWORD } else { WRONG };
        for via_stdin in [false, true] {
            let out_dir = work.path().join(format!("scan-{right}-{via_stdin}"));
            std::fs::create_dir_all(&out_dir).unwrap();
            let mut cmd = Hoist::cmd();
            cmd.args(["-v", "scan", &target, "--json", "--gitlab-report"])
                .arg(out_dir.join("gl.json"))
                .arg("--junit")
                .arg(out_dir.join("junit.xml"));
            cmd.env("CI_DEBUG_TRACE", "true").env("CI", "true").env("GITLAB_CI", "true");
            let stdin = if via_stdin {
                cmd.args(["-u", USER, "--password-stdin"]);
                Some(pass.as_bytes())
            } else {
                cmd.env("HARBOR_URL", format!("http://{}", fake.host()))
                    .env("HARBOR_USERNAME", USER)
                    .env("HARBOR_PASSWORD", pass);
                None
            };
            let before = issuer.request_count();
            let out = Hoist::run_cmd(cmd, stdin);
            let report = || format!("scan, right password: {right}, stdin: {via_stdin}\n{out:?}");
            if right {
                assert!(out.success(), "expected success\n{}", report());
                assert!(out_dir.join("gl.json").is_file() && out_dir.join("junit.xml").is_file(), "{}", report());
            } else {
                assert_eq!(out.code(), Some(3), "a wrong password is an auth failure (exit 3)\n{}", report());
            }
            assert!(out.stderr().contains("[http] GET "), "no verbose output\n{}", report());
            let mut secrets = vec![PASSWORD.to_string(), WRONG.to_string(), basic(PASSWORD), basic(WRONG)];
            secrets.extend(issuer.requests()[before..].iter().filter_map(|r| r.token.clone()));
            assert_clean("stdout", &out.stdout(), &secrets, &report);
            assert_clean("stderr", &out.stderr(), &secrets, &report);
            for (path, text) in files_under(&out_dir) {
                assert_clean(&path.display().to_string(), &text, &secrets, &report);
            }
        }
    }
}
