//! Evaluating a parsed Dockerfile without running anything: build arguments (global and per stage),
//! ENV and `$VAR` expansion, stages (`AS name`, `--target`, only the stages the target needs), and
//! every instruction hoist can do without a container runtime. The result is a [`Stage`]: its base,
//! the file trees of its layers (one per COPY/ADD/WORKDIR that creates something), history and
//! config. Nothing is written here; [`super::build`] writes the layers. RUN and other runtime needs
//! fail with the file and line.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::context::BuildContext;
use super::dockerfile::{expand_word, expand_words, Args, Dockerfile, Instruction};
use super::ignore;
use super::layer::{self, Content, Kind, Node, Tree};
use crate::error::{Error, Result};
use crate::model::{Digest, OciDescriptor, Reference};

/// The platform an image is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`, `linux/arm64/v8`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: None })
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: Some(v.to_string()) })
            }
            _ => Err(Error::usage(format!("--platform {s:?}: expected os/arch[/variant]"))),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A FROM that names a registry image, as the registry described it.
#[derive(Debug, Clone)]
pub struct BaseImage {
    pub reference: Reference,
    /// The manifest digest (of the platform's manifest when the tag was an index).
    pub digest: Digest,
    /// The image config, as JSON.
    pub config: Value,
    /// The manifest's layer descriptors, reused as they are.
    pub layers: Vec<OciDescriptor>,
}

/// What the planner needs.
pub struct PlanInput<'a> {
    pub dockerfile: &'a Dockerfile,
    /// The Dockerfile's name for messages (`Dockerfile:12: …`).
    pub file_name: &'a str,
    pub context: &'a BuildContext,
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
    pub platform: &'a Platform,
}

/// A stage's FROM line, before evaluation.
#[derive(Debug, Clone)]
pub struct StageHeader {
    pub index: usize,
    pub name: Option<String>,
    /// The FROM argument, expanded with the global ARGs.
    pub from: String,
    pub line: usize,
    /// Index of an earlier stage this one starts from.
    pub parent: Option<usize>,
    /// Instructions after the FROM (indexes into the Dockerfile).
    pub body: std::ops::Range<usize>,
}

/// The stages, which one is the target, and which are needed for it.
#[derive(Debug, Clone)]
pub struct Outline {
    pub global_args: BTreeMap<String, String>,
    pub auto_args: BTreeMap<String, String>,
    pub stages: Vec<StageHeader>,
    pub target: usize,
    pub needed: Vec<bool>,
}

impl Outline {
    /// Needed stages that start from a registry image: (stage index, reference as written).
    pub fn registry_bases(&self) -> Vec<(usize, String)> {
        self.stages
            .iter()
            .filter(|s| self.needed[s.index] && s.parent.is_none() && s.from != "scratch")
            .map(|s| (s.index, s.from.clone()))
            .collect()
    }
}

/// A built (planned) stage.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: Option<String>,
    /// `None` for `scratch` (or a base not resolved under `--check`).
    pub base: Option<Arc<BaseImage>>,
    /// True when the stage starts from a registry image (resolved or not).
    pub remote_base: bool,
    /// The files this build added (base layers not included).
    pub fs: Tree,
    pub layers: Vec<Tree>,
    /// (created_by, empty_layer), in order.
    pub history: Vec<(String, bool)>,
    /// The `config` object of the image config.
    pub config: Map<String, Value>,
    pub author: Option<String>,
    shell: Vec<String>,
    args: BTreeMap<String, String>,
    cmd_set: bool,
}

fn usage_at(file: &str, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::usage(format!("{file}:{line}: {msg}"))
}

fn words_of(args: &Args) -> Vec<String> {
    match args {
        Args::Words(w) | Args::Json(w) => w.clone(),
        Args::Text(t) | Args::Shell(t) => vec![t.clone()],
        _ => Vec::new(),
    }
}

/// Reads the stage structure: global ARGs, FROM lines, the target and the stages it needs.
pub fn outline(input: &PlanInput<'_>) -> Result<Outline> {
    let file = input.file_name;
    let p = input.platform;
    let mut auto_args = BTreeMap::new();
    let variant = p.variant.clone().unwrap_or_default();
    for (prefix, _) in [("TARGET", ()), ("BUILD", ())] {
        auto_args.insert(format!("{prefix}PLATFORM"), p.to_string());
        auto_args.insert(format!("{prefix}OS"), p.os.clone());
        auto_args.insert(format!("{prefix}ARCH"), p.architecture.clone());
        auto_args.insert(format!("{prefix}VARIANT"), variant.clone());
    }
    let mut global_args: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: Vec<StageHeader> = Vec::new();
    let instructions = &input.dockerfile.instructions;
    for (i, ins) in instructions.iter().enumerate() {
        match ins.keyword.as_str() {
            "arg" if stages.is_empty() => {
                let Args::KeyValues(kvs) = &ins.args else { continue };
                for kv in kvs {
                    let lookup = |n: &str| global_args.get(n).or_else(|| auto_args.get(n)).cloned();
                    let value = match (input.build_args.get(&kv.key), &kv.value) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(d)) => Some(
                            expand_word(d, &lookup, input.dockerfile.escape)
                                .map_err(|e| usage_at(file, ins.line, e))?,
                        ),
                        (None, None) => None,
                    };
                    if let Some(v) = value {
                        global_args.insert(kv.key.clone(), v);
                    }
                }
            }
            "from" => {
                let words = words_of(&ins.args);
                let lookup = |n: &str| global_args.get(n).or_else(|| auto_args.get(n)).cloned();
                let image = match words.first() {
                    Some(w) => {
                        expand_word(w, &lookup, input.dockerfile.escape).map_err(|e| usage_at(file, ins.line, e))?
                    }
                    None => return Err(usage_at(file, ins.line, "FROM requires an image")),
                };
                let name = match words.as_slice() {
                    [_] => None,
                    [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => Some(name.to_lowercase()),
                    _ => return Err(usage_at(file, ins.line, "FROM takes IMAGE [AS NAME]")),
                };
                if let Some(n) = &name {
                    if stages.iter().any(|s| s.name.as_deref() == Some(n)) {
                        return Err(usage_at(file, ins.line, format!("duplicate stage name {n:?}")));
                    }
                }
                if let Some(f) = ins.flags.iter().find(|f| f.name != "platform") {
                    return Err(usage_at(file, ins.line, format!("FROM --{} is not supported", f.name)));
                }
                let lower = image.to_lowercase();
                let parent = stages.iter().find(|s| s.name.as_deref() == Some(lower.as_str())).map(|s| s.index);
                if let Some(last) = stages.last_mut() {
                    last.body.end = i;
                }
                stages.push(StageHeader {
                    index: stages.len(),
                    name,
                    from: if lower == "scratch" { "scratch".into() } else { image },
                    line: ins.line,
                    parent,
                    body: i + 1..instructions.len(),
                });
            }
            _ if stages.is_empty() => {
                return Err(usage_at(file, ins.line, format!("{} before the first FROM", ins.keyword.to_uppercase())))
            }
            _ => {}
        }
    }
    if stages.is_empty() {
        return Err(Error::usage(format!("{file}: no FROM instruction")));
    }
    let target = match input.target {
        None => stages.len() - 1,
        Some(t) => {
            stages.iter().find(|s| s.name.as_deref() == Some(t.to_lowercase().as_str())).map(|s| s.index).ok_or_else(
                || {
                    let names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
                    Error::usage(format!("--target {t:?}: no stage has that name"))
                        .with_hint(format!("stages: {}", names.join(", ")))
                },
            )?
        }
    };
    // Dependencies: FROM <stage> and COPY --from=<stage>.
    let mut needed = vec![false; stages.len()];
    let mut todo = vec![target];
    while let Some(s) = todo.pop() {
        if needed[s] {
            continue;
        }
        needed[s] = true;
        if let Some(p) = stages[s].parent {
            todo.push(p);
        }
        for ins in &instructions[stages[s].body.clone()] {
            if let Some(from) = ins.flag("from").and_then(|f| f.value.as_deref()) {
                if let Some(dep) = stage_index(&stages[..s], from) {
                    todo.push(dep);
                }
            }
        }
    }
    Ok(Outline { global_args, auto_args, stages, target, needed })
}

fn stage_index(stages: &[StageHeader], name: &str) -> Option<usize> {
    let lower = name.to_lowercase();
    stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
        .or_else(|| name.parse::<usize>().ok().filter(|i| *i < stages.len()))
}

/// Evaluates the needed stages and returns the target. `bases` holds the resolved registry images
/// by stage index (missing under `--check`).
pub fn evaluate(input: &PlanInput<'_>, outline: &Outline, bases: &HashMap<usize, Arc<BaseImage>>) -> Result<Stage> {
    let mut done: Vec<Option<Stage>> = vec![None; outline.stages.len()];
    for header in &outline.stages {
        if !outline.needed[header.index] {
            continue;
        }
        let mut stage = match header.parent {
            Some(p) => {
                let mut s = done[p].clone().expect("parent stage evaluated first");
                s.args.clear();
                s.cmd_set = false;
                s
            }
            None => new_stage(header, bases.get(&header.index).cloned()),
        };
        stage.name = header.name.clone();
        let mut ev = Evaluator { input, outline, done: &done, index: header.index, stage };
        for ins in &input.dockerfile.instructions[header.body.clone()] {
            ev.instruction(ins)?;
        }
        done[header.index] = Some(ev.stage);
    }
    Ok(done[outline.target].take().expect("target evaluated"))
}

fn new_stage(header: &StageHeader, base: Option<Arc<BaseImage>>) -> Stage {
    let config =
        base.as_ref().and_then(|b| b.config.get("config").and_then(Value::as_object).cloned()).unwrap_or_default();
    Stage {
        name: header.name.clone(),
        remote_base: header.from != "scratch",
        base,
        fs: Tree::new(),
        layers: Vec::new(),
        history: Vec::new(),
        shell: config
            .get("Shell")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]),
        config,
        author: None,
        args: BTreeMap::new(),
        cmd_set: false,
    }
}

struct Evaluator<'a> {
    input: &'a PlanInput<'a>,
    outline: &'a Outline,
    done: &'a [Option<Stage>],
    /// The index of the stage being evaluated.
    index: usize,
    stage: Stage,
}

impl Evaluator<'_> {
    fn err(&self, ins: &Instruction, msg: impl std::fmt::Display) -> Error {
        usage_at(self.input.file_name, ins.line, msg)
    }

    fn env(&self) -> Vec<String> {
        self.stage
            .config
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    fn lookup_map(&self) -> HashMap<String, String> {
        let mut map: HashMap<String, String> = self.stage.args.clone().into_iter().collect();
        for kv in self.env() {
            if let Some((k, v)) = kv.split_once('=') {
                map.insert(k.to_string(), v.to_string());
            }
        }
        map
    }

    fn expand(&self, ins: &Instruction, word: &str) -> Result<String> {
        expand_word(word, &self.lookup_map(), self.input.dockerfile.escape).map_err(|e| self.err(ins, e))
    }

    fn workdir(&self) -> String {
        ignore::clean(self.stage.config.get("WorkingDir").and_then(Value::as_str).unwrap_or("/"))
    }

    fn history(&mut self, ins: &Instruction, empty: bool) {
        self.stage.history.push((ins.original.trim().to_string(), empty));
    }

    fn set(&mut self, key: &str, value: Value) {
        self.stage.config.insert(key.to_string(), value);
    }

    fn map_entry(&mut self, key: &str) -> &mut Map<String, Value> {
        let v = self.stage.config.entry(key.to_string()).or_insert_with(|| json!({}));
        if !v.is_object() {
            *v = json!({});
        }
        v.as_object_mut().expect("object")
    }

    fn instruction(&mut self, ins: &Instruction) -> Result<()> {
        let kw = ins.keyword.as_str();
        if !matches!(kw, "copy" | "add" | "healthcheck" | "run") {
            if let Some(f) = ins.flags.first() {
                return Err(self.err(ins, format!("{} does not take the flag --{}", kw.to_uppercase(), f.name)));
            }
        }
        match kw {
            "arg" => {
                let Args::KeyValues(kvs) = &ins.args else { return Ok(()) };
                for kv in kvs {
                    let value = match (self.input.build_args.get(&kv.key), &kv.value) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(d)) => Some(self.expand(ins, d)?),
                        (None, None) => self
                            .outline
                            .global_args
                            .get(&kv.key)
                            .or_else(|| self.outline.auto_args.get(&kv.key))
                            .cloned(),
                    };
                    if let Some(v) = value {
                        self.stage.args.insert(kv.key.clone(), v);
                    }
                }
                self.history(ins, true);
            }
            "env" => {
                let Args::KeyValues(kvs) = &ins.args else { return Ok(()) };
                for kv in kvs {
                    let v = self.expand(ins, kv.value.as_deref().unwrap_or_default())?;
                    let key = self.expand(ins, &kv.key)?;
                    let mut env = self.env();
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
                    env.push(format!("{key}={v}"));
                    self.set("Env", json!(env));
                }
                self.history(ins, true);
            }
            "label" => {
                let Args::KeyValues(kvs) = &ins.args else { return Ok(()) };
                for kv in kvs {
                    let k = self.expand(ins, &kv.key)?;
                    let v = self.expand(ins, kv.value.as_deref().unwrap_or_default())?;
                    self.map_entry("Labels").insert(k, json!(v));
                }
                self.history(ins, true);
            }
            "workdir" => {
                let text = match &ins.args {
                    Args::Text(t) => self.expand(ins, t)?,
                    _ => return Err(self.err(ins, "WORKDIR requires a path")),
                };
                let path = if text.starts_with('/') {
                    ignore::clean(&text)
                } else {
                    layer::join(&self.workdir(), &ignore::clean(&text))
                };
                self.set("WorkingDir", json!(format!("/{path}")));
                if !path.is_empty() && !self.stage.fs.get(&path).is_some_and(Node::is_dir) {
                    let (uid, gid) = self.user_ids();
                    let mut tree = Tree::new();
                    tree.insert(path, Node::dir(0o755, uid, gid));
                    self.add_layer(tree);
                    self.history(ins, false);
                } else {
                    self.history(ins, true);
                }
            }
            "user" => {
                let Args::Text(t) = &ins.args else { return Err(self.err(ins, "USER requires a user")) };
                let u = self.expand(ins, t)?;
                self.set("User", json!(u));
                self.history(ins, true);
            }
            "expose" => {
                for w in words_of(&ins.args) {
                    for port in expand_words(&w, &self.lookup_map(), self.input.dockerfile.escape)
                        .map_err(|e| self.err(ins, e))?
                    {
                        let port = if port.contains('/') { port.to_lowercase() } else { format!("{port}/tcp") };
                        let num = port.split('/').next().unwrap_or_default();
                        if num.split('-').any(|p| p.parse::<u16>().is_err()) {
                            return Err(self.err(ins, format!("EXPOSE: invalid port {port:?}")));
                        }
                        self.map_entry("ExposedPorts").insert(port, json!({}));
                    }
                }
                self.history(ins, true);
            }
            "cmd" | "entrypoint" => {
                let argv = self.command(ins, &ins.args)?;
                if kw == "cmd" {
                    self.set("Cmd", argv);
                    self.stage.cmd_set = true;
                } else {
                    self.set("Entrypoint", argv);
                    if !self.stage.cmd_set {
                        self.set("Cmd", Value::Null);
                    }
                }
                self.history(ins, true);
            }
            "shell" => {
                let Args::Json(argv) = &ins.args else {
                    return Err(self.err(ins, "SHELL requires the JSON form: SHELL [\"executable\", \"parameters\"]"));
                };
                self.stage.shell = argv.clone();
                self.set("Shell", json!(argv));
                self.history(ins, true);
            }
            "volume" => {
                for w in words_of(&ins.args) {
                    let v = self.expand(ins, &w)?;
                    if v.is_empty() {
                        return Err(self.err(ins, "VOLUME specified can not be an empty string"));
                    }
                    self.map_entry("Volumes").insert(v, json!({}));
                }
                self.history(ins, true);
            }
            "stopsignal" => {
                let Args::Text(t) = &ins.args else { return Err(self.err(ins, "STOPSIGNAL requires a signal")) };
                let s = self.expand(ins, t)?;
                self.set("StopSignal", json!(s));
                self.history(ins, true);
            }
            "healthcheck" => {
                let hc = self.healthcheck(ins)?;
                self.set("Healthcheck", hc);
                self.history(ins, true);
            }
            "onbuild" => {
                let Args::Onbuild(inner) = &ins.args else {
                    return Err(self.err(ins, "ONBUILD requires an instruction"));
                };
                if matches!(inner.keyword.as_str(), "onbuild" | "from" | "maintainer") {
                    return Err(
                        self.err(ins, format!("{} isn't allowed as an ONBUILD trigger", inner.keyword.to_uppercase()))
                    );
                }
                let entry = self.stage.config.entry("OnBuild".to_string()).or_insert_with(|| json!([]));
                if !entry.is_array() {
                    *entry = json!([]);
                }
                entry.as_array_mut().expect("array").push(json!(inner.original.trim()));
                self.history(ins, true);
            }
            "maintainer" => {
                if let Args::Text(t) = &ins.args {
                    self.stage.author = Some(t.clone());
                }
                self.history(ins, true);
            }
            "copy" | "add" => self.copy(ins, kw == "add")?,
            "run" => {
                return Err(self
                    .err(ins, "RUN needs a container runtime, which hoist does not use")
                    .with_hint("build the artifact in an earlier CI job (or stage it as a job artifact) and COPY it"))
            }
            "from" => unreachable!("stage bodies hold no FROM"),
            other => return Err(self.err(ins, format!("unknown instruction {}", other.to_uppercase()))),
        }
        Ok(())
    }

    fn user_ids(&self) -> (u64, u64) {
        let user = self.stage.config.get("User").and_then(Value::as_str).unwrap_or_default();
        let (u, g) = user.split_once(':').unwrap_or((user, ""));
        match u.parse::<u64>() {
            Ok(uid) => (uid, g.parse().unwrap_or(uid)),
            Err(_) => (0, 0),
        }
    }

    fn command(&self, ins: &Instruction, args: &Args) -> Result<Value> {
        Ok(match args {
            Args::Json(argv) => json!(argv),
            Args::Shell(text) => {
                let mut argv = self.stage.shell.clone();
                argv.push(text.clone());
                json!(argv)
            }
            Args::None => json!([]),
            _ => return Err(self.err(ins, "expected a command")),
        })
    }

    fn healthcheck(&self, ins: &Instruction) -> Result<Value> {
        let Args::Healthcheck { kind, command } = &ins.args else {
            return Err(self.err(ins, "HEALTHCHECK requires CMD or NONE"));
        };
        if kind.eq_ignore_ascii_case("none") {
            return Ok(json!({ "Test": ["NONE"] }));
        }
        if !kind.eq_ignore_ascii_case("cmd") {
            return Err(self.err(ins, format!("HEALTHCHECK: unknown type {kind:?}")));
        }
        let test = match &**command {
            Args::Json(argv) => std::iter::once("CMD".to_string()).chain(argv.iter().cloned()).collect::<Vec<_>>(),
            Args::Shell(text) => vec!["CMD-SHELL".to_string(), text.clone()],
            _ => return Err(self.err(ins, "HEALTHCHECK CMD requires a command")),
        };
        let mut hc = Map::new();
        hc.insert("Test".into(), json!(test));
        for f in &ins.flags {
            let v = f.value.clone().unwrap_or_default();
            let key = match f.name.as_str() {
                "interval" => "Interval",
                "timeout" => "Timeout",
                "start-period" => "StartPeriod",
                "start-interval" => "StartInterval",
                "retries" => {
                    let n: i64 =
                        v.parse().map_err(|_| self.err(ins, format!("HEALTHCHECK --retries={v:?} is not a number")))?;
                    hc.insert("Retries".into(), json!(n));
                    continue;
                }
                other => return Err(self.err(ins, format!("HEALTHCHECK: unknown flag --{other}"))),
            };
            let ns = super::config::parse_duration(&v)
                .ok_or_else(|| self.err(ins, format!("HEALTHCHECK --{}={v:?} is not a duration", f.name)))?;
            hc.insert(key.into(), json!(ns));
        }
        Ok(Value::Object(hc))
    }

    fn add_layer(&mut self, mut tree: Tree) {
        layer::add_parents(&mut tree, &self.stage.fs);
        for (k, v) in &tree {
            self.stage.fs.insert(k.clone(), v.clone());
        }
        self.stage.layers.push(tree);
    }

    fn copy(&mut self, ins: &Instruction, is_add: bool) -> Result<()> {
        let name = if is_add { "ADD" } else { "COPY" };
        let mut from: Option<String> = None;
        let mut owner: Option<(u64, u64)> = None;
        let mut chmod: Option<u32> = None;
        for f in &ins.flags {
            let v = f.value.clone().unwrap_or_default();
            match f.name.as_str() {
                "from" if !is_add => from = Some(self.expand(ins, &v)?),
                "chown" => owner = Some(self.chown(ins, &self.expand(ins, &v)?)?),
                "chmod" => {
                    chmod = Some(
                        u32::from_str_radix(&v, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| self.err(ins, format!("{name} --chmod={v:?}: expected an octal mode")))?,
                    )
                }
                "link" | "checksum" | "keep-git-dir" => {}
                other => return Err(self.err(ins, format!("{name} --{other} is not supported by hoist"))),
            }
        }
        let words = match &ins.args {
            Args::Words(w) | Args::Json(w) => w.clone(),
            _ => Vec::new(),
        };
        if words.len() < 2 {
            return Err(self.err(ins, format!("{name} requires at least two arguments: source(s) and destination")));
        }
        let (dest_word, src_words) = words.split_last().expect("two or more");
        let dest = self.expand(ins, dest_word)?;
        let dest_dir_syntax = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
        let dest_abs = if dest.starts_with('/') {
            ignore::clean(&dest)
        } else {
            layer::join(&self.workdir(), &ignore::clean(&dest))
        };
        // (basename, entries relative to the item, is_dir)
        let mut items: Vec<(String, Tree, bool)> = Vec::new();
        let mut extracted: Vec<Tree> = Vec::new();
        for word in src_words {
            if let Some((doc, expand)) = heredoc_for(ins, word) {
                let doc = if expand { expand_heredoc(&doc, &self.lookup_map()).into_bytes() } else { doc.into_bytes() };
                let mut t = Tree::new();
                t.insert(
                    String::new(),
                    Node { kind: Kind::File(Content::Bytes(Arc::new(doc))), mode: 0o644, uid: 0, gid: 0 },
                );
                let fname = heredoc_name(word);
                items.push((fname, t, false));
                continue;
            }
            let src = self.expand(ins, word)?;
            if is_add && (src.starts_with("http://") || src.starts_with("https://") || src.starts_with("git@")) {
                return Err(self
                    .err(ins, format!("ADD {src}: hoist does not download URLs"))
                    .with_hint("download it in an earlier CI job (with a checksum) and COPY it"));
            }
            if let Some(stage_ref) = &from {
                let stage = self.source_stage(ins, stage_ref)?;
                items.extend(
                    resolve_in_tree(&stage.fs, &src)
                        .map_err(|m| self.err(ins, format!("COPY --from={stage_ref}: {m}")))?,
                );
                continue;
            }
            let sources = self.input.context.resolve(&src).map_err(|m| self.err(ins, m))?;
            for s in sources {
                if is_add && !s.is_dir && looks_like_archive(&s.path) {
                    let bytes = std::fs::read(&s.path).map_err(|e| self.err(ins, format!("reading {}: {e}", s.rel)))?;
                    let read = layer::read_tar(&bytes, &dest_abs, owner)
                        .map_err(|e| self.err(ins, format!("ADD {}: {}", s.rel, e.message())))?;
                    if let Some(t) = read {
                        extracted.push(t);
                        continue;
                    }
                }
                let entries = self
                    .input
                    .context
                    .entries(&s)
                    .map_err(|e| e.context(format!("{}:{}", self.input.file_name, ins.line)))?;
                let base = s.rel.rsplit('/').next().unwrap_or_default().to_string();
                items.push((base, entries, s.is_dir));
            }
        }
        if items.len() + extracted.len() > 1 && !dest_dir_syntax {
            return Err(self.err(ins, format!("When using {name} with more than one source file, the destination must be a directory and end with a /")));
        }
        let dest_is_dir = dest_dir_syntax || self.stage.fs.get(&dest_abs).is_some_and(Node::is_dir);
        let mut tree = Tree::new();
        // Destination directories made for the copy: owned as --chown says, but --chmod is for the
        // copied files.
        let mut created: Vec<String> = Vec::new();
        for (base, entries, is_dir) in items {
            if is_dir {
                if !dest_abs.is_empty() {
                    let mode = entries.get("").map_or(0o755, |n| n.mode);
                    tree.insert(dest_abs.clone(), Node::dir(mode, 0, 0));
                }
                for (rel, node) in entries {
                    if !rel.is_empty() {
                        tree.insert(layer::join(&dest_abs, &rel), node);
                    }
                }
            } else {
                let target = if dest_is_dir { layer::join(&dest_abs, &base) } else { dest_abs.clone() };
                if target.is_empty() {
                    return Err(self.err(ins, format!("{name}: cannot copy a file onto /")));
                }
                if dest_is_dir
                    && !dest_abs.is_empty()
                    && !tree.contains_key(&dest_abs)
                    && !self.stage.fs.contains_key(&dest_abs)
                {
                    tree.insert(dest_abs.clone(), Node::dir(0o755, 0, 0));
                    created.push(dest_abs.clone());
                }
                for (rel, node) in entries {
                    tree.insert(layer::join(&target, &rel), node);
                }
            }
        }
        for (k, n) in tree.iter_mut() {
            if let Some((u, g)) = owner {
                n.uid = u;
                n.gid = g;
            }
            if let Some(m) = chmod {
                if !matches!(n.kind, Kind::Symlink(_)) && !created.contains(k) {
                    n.mode = m;
                }
            }
        }
        for t in extracted {
            tree.extend(t);
        }
        self.add_layer(tree);
        self.history(ins, false);
        Ok(())
    }

    fn chown(&self, ins: &Instruction, spec: &str) -> Result<(u64, u64)> {
        let (u, g) = spec.split_once(':').unwrap_or((spec, spec));
        let id = |s: &str| -> Result<u64> {
            match s {
                "root" => Ok(0),
                _ => s.parse().map_err(|_| {
                    self.err(
                        ins,
                        format!("--chown={spec}: the name {s:?} cannot be resolved without a container runtime"),
                    )
                    .with_hint("use numeric ids, e.g. --chown=1000:1000")
                }),
            }
        };
        Ok((id(u)?, id(g)?))
    }

    fn source_stage(&self, ins: &Instruction, name: &str) -> Result<&Stage> {
        let Some(idx) = stage_index(&self.outline.stages[..self.index], name) else {
            return Err(self
                .err(ins, format!("COPY --from={name}: not an earlier stage; copying from an image needs its layers, which hoist does not download"))
                .with_hint("copy from a stage of this Dockerfile, or provide the files in the build context"));
        };
        let stage = self.done[idx].as_ref().expect("dependency evaluated");
        if stage.remote_base {
            let from = &self.outline.stages[idx].from;
            return Err(self
                .err(ins, format!("COPY --from={name}: stage {name:?} starts from the image {from}, whose files hoist would have to download"))
                .with_hint("only stages FROM scratch can be COPY --from sources"));
        }
        Ok(stage)
    }
}

/// True when the file starts like a gzip stream or a tar archive (read before loading it whole).
fn looks_like_archive(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 262];
    let Ok(f) = std::fs::File::open(path) else { return false };
    let mut n = 0;
    let mut r = f.take(262);
    while let Ok(k) = r.read(&mut head[n..]) {
        if k == 0 {
            break;
        }
        n += k;
    }
    layer::is_compressed(&head[..n]) || (n >= 262 && &head[257..262] == b"ustar")
}

/// The here-document a source word (`<<EOF`, `<<-"EOF"`) names, its body expanded unless quoted.
fn heredoc_for(ins: &Instruction, word: &str) -> Option<(String, bool)> {
    if !word.starts_with("<<") {
        return None;
    }
    let name = heredoc_name(word);
    ins.heredocs.iter().find(|h| h.name == name).map(|h| (h.content.clone(), h.expand))
}

/// `$NAME` and `${NAME}` in a here-document body (`\$` keeps a literal `$`); unset names expand to "".
fn expand_heredoc(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'$') => {
                out.push('$');
                chars.next();
            }
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                out.push_str(vars.get(&name).map(String::as_str).unwrap_or_default());
            }
            '$' if chars.peek().is_some_and(|c| c.is_ascii_alphabetic() || *c == '_') => {
                let mut name = String::new();
                while let Some(c) = chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_') {
                    name.push(*c);
                    chars.next();
                }
                out.push_str(vars.get(&name).map(String::as_str).unwrap_or_default());
            }
            c => out.push(c),
        }
    }
    out
}

fn heredoc_name(word: &str) -> String {
    word.trim_start_matches("<<").trim_start_matches('-').trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// Resolves a COPY --from source against a stage's tree.
fn resolve_in_tree(fs: &Tree, src: &str) -> std::result::Result<Vec<(String, Tree, bool)>, String> {
    let cleaned = ignore::clean(src);
    let roots: Vec<String> = if ignore::has_glob(&cleaned) {
        fs.keys().filter(|k| ignore::glob_match(&cleaned, k)).cloned().collect()
    } else if cleaned.is_empty() || fs.contains_key(&cleaned) {
        vec![cleaned.clone()]
    } else {
        Vec::new()
    };
    if roots.is_empty() {
        return Err(format!("{src:?} not found in that stage"));
    }
    let mut out = Vec::new();
    for root in roots {
        let node = fs.get(&root);
        let is_dir = root.is_empty() || node.is_some_and(Node::is_dir);
        let mut t = Tree::new();
        if is_dir {
            let prefix = if root.is_empty() { String::new() } else { format!("{root}/") };
            for (k, n) in fs.range(prefix.clone()..) {
                let Some(rel) = k.strip_prefix(&prefix) else { break };
                t.insert(rel.to_string(), n.clone());
            }
            if let Some(n) = node {
                t.insert(String::new(), n.clone());
            }
        } else if let Some(n) = node {
            t.insert(String::new(), n.clone());
        }
        let base = root.rsplit('/').next().unwrap_or_default().to_string();
        out.push((base, t, is_dir));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::dockerfile::parse;

    fn plan(dockerfile: &str, files: &[(&str, &str)], args: &[(&str, &str)], target: Option<&str>) -> Result<Stage> {
        let dir = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        }
        let ctx = BuildContext::open(dir.path()).unwrap();
        let df = parse(dockerfile).unwrap();
        let build_args: BTreeMap<String, String> = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let platform = Platform::parse("linux/amd64").unwrap();
        let input = PlanInput {
            dockerfile: &df,
            file_name: "Dockerfile",
            context: &ctx,
            build_args: &build_args,
            target,
            platform: &platform,
        };
        let o = outline(&input)?;
        evaluate(&input, &o, &HashMap::new())
    }

    #[test]
    fn args_env_and_config() {
        let s = plan(
            "ARG V=1\nFROM scratch\nARG V\nARG W=x${V}\nENV A=$W B=\"two words\"\nLABEL l=$A\nWORKDIR /app\nWORKDIR sub\nUSER 1000:1000\nEXPOSE 80 53/udp\nENTRYPOINT [\"/bin/app\"]\nCMD serve --port 80\nVOLUME /data\nSTOPSIGNAL SIGTERM\nONBUILD COPY . /x\n",
            &[],
            &[("V", "9")],
            None,
        )
        .unwrap();
        assert_eq!(s.config["Env"], json!(["A=x9", "B=two words"]));
        assert_eq!(s.config["Labels"]["l"], json!("x9"));
        assert_eq!(s.config["WorkingDir"], json!("/app/sub"));
        assert_eq!(s.config["Cmd"], json!(["/bin/sh", "-c", "serve --port 80"]));
        assert_eq!(s.config["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(s.config["OnBuild"], json!(["COPY . /x"]));
        assert!(s.fs["app/sub"].is_dir());
        assert_eq!(s.fs["app/sub"].uid, 0);
        assert_eq!(s.layers.len(), 2);
    }

    #[test]
    fn copy_semantics() {
        let files = [("a.txt", "a"), ("dir/b.txt", "b"), ("dir/sub/c.txt", "c"), ("x.tar", "not a tar")];
        let s = plan(
            "FROM scratch AS build\nCOPY a.txt /out/\nCOPY dir /d\nWORKDIR /w\nCOPY a.txt rel\nCOPY --chown=5:6 --chmod=600 *.txt /g/\nCOPY <<EOF /h/doc\nhello\nEOF\nFROM scratch\nCOPY --from=build /d/sub /final/\n",
            &files,
            &[],
            Some("build"),
        )
        .unwrap();
        assert!(s.fs.contains_key("out/a.txt"));
        assert!(s.fs.contains_key("d/sub/c.txt"));
        assert!(s.fs.contains_key("w/rel"));
        assert_eq!((s.fs["g/a.txt"].uid, s.fs["g/a.txt"].mode), (5, 0o600));
        assert_eq!((s.fs["g"].uid, s.fs["g"].mode), (5, 0o755));
        assert!(matches!(&s.fs["h/doc"].kind, Kind::File(Content::Bytes(b)) if b.as_slice() == b"hello\n"));
        let vars = HashMap::from([("A".to_string(), "1".to_string())]);
        assert_eq!(expand_heredoc("x=$A ${A} \\$A $B.", &vars), "x=1 1 $A .");
        let s2 = plan(
            "FROM scratch AS build\nCOPY dir /d\nFROM scratch\nCOPY --from=build /d/sub /final/\n",
            &files,
            &[],
            None,
        )
        .unwrap();
        assert!(s2.fs.contains_key("final/c.txt"));
        assert_eq!(s2.layers.len(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        let e = plan("FROM scratch\nRUN echo hi\n", &[], &[], None).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Usage);
        assert!(e.to_string().starts_with("Dockerfile:2: RUN needs a container runtime"), "{e}");
        let e = plan("FROM scratch\n\nADD https://example.com/x /x\n", &[], &[], None).unwrap_err();
        assert!(e.to_string().starts_with("Dockerfile:3:"), "{e}");
        let e = plan("FROM scratch\nCOPY ../x /x\n", &[], &[], None).unwrap_err();
        assert!(e.to_string().contains("outside the build context"), "{e}");
        let e = plan("FROM scratch\nCOPY a b /x\n", &[("a", "1"), ("b", "2")], &[], None).unwrap_err();
        assert!(e.to_string().contains("must be a directory"), "{e}");
        let e = plan("FROM scratch\nCOPY --chown=app a /x\n", &[("a", "1")], &[], None).unwrap_err();
        assert!(e.to_string().contains("cannot be resolved"), "{e}");
        // Stages the target does not need are not evaluated.
        assert!(plan("FROM scratch AS a\nRUN x\nFROM scratch\nCOPY a /a\n", &[("a", "1")], &[], None).is_ok());
    }
}
