//! `hoist sign`, `hoist verify`, `hoist generate-key-pair`, and the `--sign` flags of the verbs that
//! push (`build`, `push`, `copy`, `tag`, `chart push`): sign what was just pushed, by its digest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::common::{reporter, RegistryArgs};
use crate::ci::{Env, ProcessEnv};
use crate::error::{Context, Error, Result};
use crate::model::Reference;
use crate::progress::Reporter;
use crate::push::{Clients, PushOptions, PushReport};
use crate::remote::referrers::Subject;
use crate::sign::{keys::SigningKey, parse_annotation, source, SigFormat, SignOptions, SignReport};

pub const SIGN_EXAMPLES: &str = "\
Examples:
  hoist sign harbor.example.com/proj/app@sha256:... --key cosign.key
  hoist sign harbor.example.com/proj/app:1.4.0 -a git-sha=$CI_COMMIT_SHA
  hoist build -t harbor.example.com/proj/app:1.4.0 . --sign      # sign what the build pushed
  cosign verify --key cosign.pub --insecure-ignore-tlog harbor.example.com/proj/app:1.4.0

The key: --key FILE, else HOIST_SIGNING_KEY, else COSIGN_PRIVATE_KEY (the PEM itself or a path to it:
a GitLab CI/CD variable of type File gives a path). Its password: HOIST_SIGNING_PASSWORD, else
COSIGN_PASSWORD, else a prompt on a terminal. Keys from `cosign generate-key-pair` and
`hoist generate-key-pair` both work, as do plain PKCS#8 P-256 PEM keys.

A tag is resolved to its digest once (a HEAD of the manifest); the image itself is never read, so
images that a Harbor signing policy keeps from being pulled can still be signed. The signature is
cosign's: a simple-signing payload (the repository, the digest, -a annotations in `optional`) signed
with ECDSA P-256, added to the sha256-<hex>.sig tag next to any signatures already there.
Keyless signing (Fulcio, Rekor) is not supported yet.";

pub const VERIFY_EXAMPLES: &str = "\
Examples:
  hoist verify harbor.example.com/proj/app:1.4.0 --key cosign.pub
  hoist verify harbor.example.com/proj/app@sha256:... --key cosign.pub -a git-sha=$CI_COMMIT_SHA --json
  hoist verify harbor.example.com/proj/app:1.4.0 --provenance --key cosign.pub   # signed SLSA provenance

Passes (exit 0) when at least one signature verifies with the key over its payload, its payload names
the image's digest, and it carries every -a annotation. Otherwise exits 5 and says, for each signature
found, why it does not hold. Works on signatures made by cosign (--tlog-upload=false) or by hoist.";

pub const KEYGEN_EXAMPLES: &str = "\
Examples:
  HOIST_SIGNING_PASSWORD=... hoist generate-key-pair          # writes cosign.key and cosign.pub
  hoist generate-key-pair --output-key-prefix release

The private key is cosign's encrypted PEM (scrypt + secretbox), readable by cosign; the password comes
from HOIST_SIGNING_PASSWORD or COSIGN_PASSWORD (empty: no password), else a prompt on a terminal.
Existing files are never overwritten. Store cosign.key as a GitLab CI/CD variable of type File
(HOIST_SIGNING_KEY) and its password as a masked variable (HOIST_SIGNING_PASSWORD).";

/// `--sign` and its options on the verbs that push.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Signing")]
pub struct SignFlags {
    /// Sign what was pushed (by digest, in each repository pushed to) with cosign's signature format.
    /// Key: --signing-key, else HOIST_SIGNING_KEY / COSIGN_PRIVATE_KEY; password: HOIST_SIGNING_PASSWORD /
    /// COSIGN_PASSWORD.
    #[arg(long)]
    pub sign: bool,
    /// The private key for --sign (cosign.key, or a PKCS#8 P-256 PEM).
    #[arg(long, value_name = "FILE", requires = "sign")]
    pub signing_key: Option<PathBuf>,
    /// An annotation for the signature's payload (repeatable), as cosign's -a.
    #[arg(long = "sign-annotation", value_name = "KEY=VALUE", value_parser = parse_annotation, requires = "sign")]
    pub sign_annotations: Vec<(String, String)>,
    /// Which signature forms to write.
    #[arg(long, value_enum, default_value = "both", value_name = "FORMAT", requires = "sign")]
    pub sig_format: SigFormat,
}

impl SignFlags {
    /// The signing options when `--sign` was given: read before pushing, so a missing key or a wrong
    /// password fails the job before anything is uploaded.
    pub fn load(&self, env: &dyn Env) -> Result<Option<SignOptions>> {
        if !self.sign {
            return Ok(None);
        }
        let key = source::signing_key(self.signing_key.as_deref(), env)?;
        Ok(Some(SignOptions {
            key,
            annotations: self.sign_annotations.iter().cloned().collect(),
            format: self.sig_format,
        }))
    }
}

/// Signs `report`'s digest in every repository it was pushed to.
pub async fn sign_pushed(
    signer: &SignOptions,
    report: &PushReport,
    opts: &PushOptions,
    env: &dyn Env,
    reporter: &Arc<Reporter>,
) -> Result<Vec<SignReport>> {
    let clients = Clients::new(opts, env);
    let mut repos: Vec<Reference> = Vec::new();
    for r in &report.references {
        let r: Reference = r.parse()?;
        if !repos.iter().any(|x| x.name() == r.name()) {
            repos.push(r);
        }
    }
    let subject = Subject { media_type: report.media_type.clone(), digest: report.digest.clone(), size: report.size };
    let mut out = Vec::new();
    for r in repos {
        out.push(sign_one(&clients, &r, &subject, signer, reporter).await?);
    }
    Ok(out)
}

async fn sign_one(
    clients: &Clients<'_>,
    reference: &Reference,
    subject: &Subject,
    signer: &SignOptions,
    reporter: &Arc<Reporter>,
) -> Result<SignReport> {
    let report = crate::sign::sign(clients, reference, subject, signer, reporter).await?;
    reporter.note(&format!("signed {} ({})", report.reference, report.describe()));
    Ok(report)
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The images, indexes or charts to sign: host[:port]/repository:tag or @digest.
    #[arg(required = true, value_name = "REF")]
    pub references: Vec<String>,
    /// The private key (cosign.key, or a PKCS#8 P-256 PEM). Else HOIST_SIGNING_KEY, COSIGN_PRIVATE_KEY.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// An annotation for the signature's payload, in `optional` (repeatable).
    #[arg(long = "annotation", short = 'a', value_name = "KEY=VALUE", value_parser = parse_annotation)]
    pub annotations: Vec<(String, String)>,
    /// Which signature forms to write.
    #[arg(long, value_enum, default_value = "both", value_name = "FORMAT")]
    pub sig_format: SigFormat,
    /// Write a JSON report of what was signed (reference, digest, signature tag) to FILE.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn sign(args: SignArgs) -> Result<()> {
    let env = ProcessEnv;
    let references: Vec<Reference> = args.references.iter().map(|r| r.parse()).collect::<Result<_>>()?;
    let signer = SignOptions {
        key: source::signing_key(args.key.as_deref(), &env)?,
        annotations: args.annotations.iter().cloned().collect(),
        format: args.sig_format,
    };
    let opts = args.registry.push_options(&env, 1, Vec::new())?;
    let reporter = reporter(&args.registry, args.quiet);
    let clients = Clients::new(&opts, &env);
    let mut reports = Vec::new();
    for reference in &references {
        // The legacy form needs only the digest: a pinned one is used as is, without reading anything.
        let subject = match reference.digest() {
            Some(d) if signer.format == SigFormat::Legacy => {
                Subject { media_type: String::new(), digest: d.clone(), size: 0 }
            }
            _ => resolve(&clients, reference).await?,
        };
        let report = sign_one(&clients, reference, &subject, &signer, &reporter).await?;
        println!("{}", report.reference);
        reports.push(report);
    }
    if let Some(f) = &args.metadata_file {
        super::write_atomic(f, &serde_json::to_vec_pretty(&reports).expect("report serializes"))?;
    }
    Ok(())
}

/// What `reference` names — digest, media type, size — from a HEAD of the manifest (never a GET: the
/// image is not read). A pinned digest must match what the registry answers.
async fn resolve(clients: &Clients<'_>, reference: &Reference) -> Result<Subject> {
    let repo = crate::remote::open(clients, reference, "pull").await?;
    let ctx = || format!("resolving {reference}");
    let (digest, media_type, size) = repo
        .manifest_head(&reference.manifest_reference())
        .await
        .map_err(|e| {
            if !e.message().contains("412 Precondition") {
                return e;
            }
            e.with_hint(
                "Harbor answers 412 for images its signing policy keeps from being pulled: sign them as they are \
                 pushed (--sign), or by digest with --sig-format legacy (no read at all)",
            )
        })
        .with_context(ctx)?
        .ok_or_else(|| Error::other(format!("{reference}: no such manifest")))?;
    if reference.digest().is_some_and(|d| *d != digest) {
        return Err(Error::other(format!("the registry answers {reference} with {digest}")).context(ctx()));
    }
    Ok(Subject { media_type, digest, size })
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image, index or chart to check: host[:port]/repository:tag or @digest.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The public key (cosign.pub). Else HOIST_VERIFY_KEY (the PEM or its path).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// An annotation the signature's payload must carry (repeatable).
    #[arg(long = "annotation", short = 'a', value_name = "KEY=VALUE", value_parser = parse_annotation)]
    pub annotations: Vec<(String, String)>,
    /// Print the report as JSON on stdout ({reference, digest, verified, signatures: [{form,
    /// payloadDigest, problem, dockerReference, annotations}]}).
    #[arg(long)]
    pub json: bool,
    /// Check the SLSA provenance instead of the signatures: a statement (signed with the key's
    /// private key when --key or HOIST_VERIFY_KEY is given; else the unsigned referrer) whose subject
    /// is the image. Prints its source, commit, builder and base images.
    #[arg(long)]
    pub provenance: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn verify(args: VerifyArgs) -> Result<()> {
    let env = ProcessEnv;
    if args.provenance {
        return verify_provenance(args, &env).await;
    }
    let reference: Reference = args.reference.parse()?;
    let key = source::public_key(args.key.as_deref(), &env)?;
    let want: BTreeMap<String, String> = args.annotations.iter().cloned().collect();
    let opts = args.registry.push_options(&env, 1, Vec::new())?;
    let clients = Clients::new(&opts, &env);
    let digest = resolve(&clients, &reference).await?.digest;
    let repo = crate::remote::open(&clients, &reference, "pull").await?;
    let report = crate::sign::verify(&repo, &reference.name(), &digest, &key, &want)
        .await
        .map_err(|e| e.context(format!("verifying {reference}")))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
    } else {
        for s in &report.signatures {
            match &s.problem {
                None => eprintln!("✔ {} signature {}: verified", s.form, s.payload_digest.short()),
                Some(p) => eprintln!("✘ {} signature {}: {p}", s.form, s.payload_digest.short()),
            }
        }
    }
    if report.verified {
        if !args.json {
            println!("{}", report.reference);
        }
        return Ok(());
    }
    let why = if report.signatures.is_empty() {
        "no signatures found".to_string()
    } else {
        let reasons: Vec<&str> = report.signatures.iter().filter_map(|s| s.problem.as_deref()).collect();
        format!("none of its {} signatures holds: {}", report.signatures.len(), reasons.join("; "))
    };
    Err(Error::verification(format!("verifying {}: {why}", report.reference))
        .with_hint("sign it with hoist sign (or cosign sign) using the private key of this public key"))
}

/// `hoist verify REF --provenance`.
async fn verify_provenance(args: VerifyArgs, env: &dyn crate::ci::Env) -> Result<()> {
    let reference: Reference = args.reference.parse()?;
    let key = if args.key.is_some() || env.non_empty(crate::ci::vars::HOIST_VERIFY_KEY).is_some() {
        Some(source::public_key(args.key.as_deref(), env)?)
    } else {
        None
    };
    let opts = args.registry.push_options(env, 1, Vec::new())?;
    let clients = Clients::new(&opts, env);
    let digest = resolve(&clients, &reference).await?.digest;
    let repo = crate::remote::open(&clients, &reference, "pull").await?;
    let found = crate::provenance::verify(&repo, &digest, key.as_ref())
        .await
        .map_err(|e| e.context(format!("verifying the provenance of {reference}")))?;
    let good = found.iter().find(|f| f.problem.is_none());
    if args.json {
        let doc = serde_json::json!({
            "reference": format!("{}@{digest}", reference.name()),
            "verified": good.is_some(),
            "signed": key.is_some(),
            "statements": found,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("report serializes"));
    } else {
        for f in &found {
            match &f.problem {
                None => eprintln!("✔ {} provenance {}: verified", f.form, f.digest.short()),
                Some(p) => eprintln!("✘ {} provenance {}: {p}", f.form, f.digest.short()),
            }
        }
        if let Some(s) = good.and_then(|f| f.summary.as_ref()) {
            println!("{}@{digest}", reference.name());
            println!("source:  {}", s.source.as_deref().unwrap_or("-"));
            println!("commit:  {}", s.commit.as_deref().unwrap_or("-"));
            println!("builder: {}", s.builder.as_deref().unwrap_or("-"));
            for b in &s.bases {
                println!("base:    {b}");
            }
        }
    }
    if good.is_some() {
        return Ok(());
    }
    let why = if found.is_empty() {
        if key.is_some() { "no signed provenance found" } else { "no provenance found" }.to_string()
    } else {
        found.iter().filter_map(|f| f.problem.clone()).collect::<Vec<_>>().join("; ")
    };
    Err(Error::verification(format!("verifying the provenance of {}@{digest}: {why}", reference.name()))
        .with_hint("build it with hoist build --provenance (and --sign for a signed statement)"))
}

#[derive(Debug, Args)]
pub struct GenerateKeyPairArgs {
    /// Write PREFIX.key and PREFIX.pub.
    #[arg(long, default_value = "cosign", value_name = "PREFIX")]
    pub output_key_prefix: String,
}

pub fn generate_key_pair(args: GenerateKeyPairArgs) -> Result<()> {
    let env = ProcessEnv;
    let key_path = PathBuf::from(format!("{}.key", args.output_key_prefix));
    let pub_path = PathBuf::from(format!("{}.pub", args.output_key_prefix));
    for p in [&key_path, &pub_path] {
        if p.exists() {
            return Err(Error::usage(format!("{} exists; hoist never overwrites a key", p.display()))
                .with_hint("remove it, or choose another --output-key-prefix"));
        }
    }
    let password = source::new_password(&env)?;
    let key = SigningKey::generate();
    let private = key.to_encrypted_pem(&password)?;
    let public = key.public_key().to_pem()?;
    write_new(&key_path, private.as_bytes(), 0o600)?;
    write_new(&pub_path, public.as_bytes(), 0o644)?;
    eprintln!("Private key written to {}", key_path.display());
    eprintln!("Public key written to {}", pub_path.display());
    Ok(())
}

/// Creates `path` (failing if it exists) with `mode`, so a private key is never readable by others.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    f.write_all(bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}
