//! Evaluating a parsed Dockerfile without running anything: build arguments (global and per stage),
//! ENV and `$VAR` expansion, stages (`AS name`, `--target`, only the stages the target needs), and
//! every instruction hoist can do without a container runtime. The result is a [`Stage`]: its base,
//! the file trees of its layers (one per COPY/ADD/WORKDIR that creates something), history and
//! config. Nothing is written here; [`super::build`] writes the layers. RUN and other runtime needs
//! fail with the file and line.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::context::BuildContext;
use super::dockerfile::{expand_word, expand_words, Args, Dockerfile, Instruction};
use super::ignore;
use super::layer::{self, Content, Kind, Node, Tree};
use super::source::{Accounts, BaseImage, ImageFiles, Platform};
use crate::error::{Error, Result};

/// What the planner needs.
pub struct PlanInput<'a> {
    pub dockerfile: &'a Dockerfile,
    /// The Dockerfile's name for messages (`Dockerfile:12: …`).
    pub file_name: &'a str,
    pub context: &'a BuildContext,
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
    pub platform: &'a Platform,
    /// Files of registry images (`COPY --from`, `--chown` names); `None` under `--check`, where
    /// such copies are validated but not filled.
    pub images: Option<&'a dyn ImageFiles>,
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
    /// The stage a stage's FROM chain starts at (itself when it starts from an image or scratch).
    pub fn root_of(&self, mut index: usize) -> usize {
        while let Some(p) = self.stages[index].parent {
            index = p;
        }
        index
    }

    /// Registry images whose files the needed stages read, as written: those `COPY --from` copies
    /// from (an image named in `--from`, or the base of a stage named there) — all their layers are
    /// needed — and the bases of stages with a `--chown` by name, whose `/etc/passwd` and
    /// `/etc/group` are needed. `--from` values with variables are left to the evaluation (which
    /// refuses them).
    pub fn image_needs(&self, df: &Dockerfile) -> (BTreeSet<String>, BTreeSet<String>) {
        let (mut layers, mut accounts) = (BTreeSet::new(), BTreeSet::new());
        let remote = |i: usize| Some(&self.stages[self.root_of(i)].from).filter(|f| *f != "scratch").cloned();
        for s in self.stages.iter().filter(|s| self.needed[s.index]) {
            for ins in &df.instructions[s.body.clone()] {
                if !matches!(ins.keyword.as_str(), "copy" | "add") {
                    continue;
                }
                if let Some(from) = ins.flag("from").and_then(|f| f.value.as_deref()) {
                    match stage_index(&self.stages[..s.index], from) {
                        Some(i) => layers.extend(remote(i)),
                        None if !from.contains('$') => {
                            layers.insert(from.to_string());
                        }
                        None => {}
                    }
                }
                if let Some(chown) = ins.flag("chown").and_then(|f| f.value.as_deref()) {
                    let by_name = chown.split(':').any(|p| p != "root" && p.parse::<u64>().is_err());
                    if by_name {
                        accounts.extend(remote(s.index));
                    }
                }
            }
        }
        (layers, accounts)
    }

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
    /// Directories that exist below this build's files without an entry of their own (parents on
    /// a registry base, left to the base or to extraction).
    implied: std::collections::BTreeSet<String>,
    shell: Vec<String>,
    args: BTreeMap<String, String>,
    cmd_set: bool,
    /// Root-owned WORKDIRs on a registry base left to the base (see `Evaluator::settle_workdirs`).
    pending_workdirs: Vec<PendingDir>,
}

/// A WORKDIR directory whose entry depends on the base, settled when the stage is done.
#[derive(Debug, Clone)]
struct PendingDir {
    path: String,
    why: String,
    /// Where its layer goes in `Stage::layers`, and its history entry.
    layer_pos: usize,
    history_pos: usize,
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
        ev.settle_workdirs();
        done[header.index] = Some(ev.stage);
    }
    Ok(done[outline.target].take().expect("target evaluated"))
}

/// BuildKit's (and buildah's) environment for `FROM scratch`.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn new_stage(header: &StageHeader, base: Option<Arc<BaseImage>>) -> Stage {
    let mut config =
        base.as_ref().and_then(|b| b.config.get("config").and_then(Value::as_object).cloned()).unwrap_or_default();
    if header.from == "scratch" {
        config.insert("Env".into(), json!([DEFAULT_PATH]));
    }
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
        implied: Default::default(),
        args: BTreeMap::new(),
        cmd_set: false,
        pending_workdirs: Vec::new(),
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
                // As docker and BuildKit store it: an absolute path as written (a trailing `/`
                // kept), a relative one joined to the current directory and cleaned.
                let stored = if text.starts_with('/') { text.clone() } else { format!("/{path}") };
                self.set("WorkingDir", json!(stored));
                // BuildKit: `mkdir -p` as the USER — the directories it makes (parents too) 0755 and
                // owned by the user; one that exists, in this build or in the base, is left as it is.
                let (uid, gid) = self.user_ids();
                let mut tree = Tree::new();
                let known = self.stage.fs.get(&path).is_some_and(Node::is_dir) || self.stage.implied.contains(&path);
                let why = format!(
                    "{}:{} WORKDIR makes it {uid}:{gid} when the base lacks it",
                    self.input.file_name, ins.line
                );
                if !path.is_empty() {
                    self.mkdir_all(&path, (uid, gid), &why, &mut tree);
                }
                if !tree.is_empty() {
                    self.add_layer(tree);
                    self.history(ins, false);
                } else {
                    if !known && !path.is_empty() && self.stage.remote_base && (uid, gid) == (0, 0) {
                        let pending = PendingDir {
                            path,
                            why,
                            layer_pos: self.stage.layers.len(),
                            history_pos: self.stage.history.len(),
                        };
                        self.stage.pending_workdirs.push(pending);
                    }
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
        // On a registry base, a parent directory this build did not make may exist in the base
        // with its own mode and owner, which an entry here would override: it is left out, and
        // extraction keeps the base's (or makes a missing one 0755 root, as a copy would).
        if self.stage.remote_base {
            let missing: Vec<String> =
                tree.keys().flat_map(|k| layer::parents(k)).filter(|p| !tree.contains_key(p)).collect();
            for p in missing {
                match self.stage.fs.get(&p).filter(|n| n.is_dir()) {
                    Some(n) => {
                        tree.insert(p, n.clone());
                    }
                    None => {
                        self.stage.implied.insert(p);
                    }
                }
            }
        } else {
            layer::add_parents(&mut tree, &self.stage.fs);
        }
        for (k, v) in &tree {
            self.stage.fs.insert(k.clone(), v.clone());
        }
        self.stage.layers.push(tree);
    }

    /// `mkdir -p path` as BuildKit's file operations do it (fsutil's MkdirAll), into `tree`: the
    /// directories missing from the stage, top-down, each 0755 and owned by `owner`; one that exists
    /// is left as it is. On a registry base the base is asked only when the answer changes the
    /// result: a missing directory made 0755 root is what extraction makes of a parent with no entry,
    /// so those are left implied and the base's layers are not read. Otherwise the question goes to
    /// the base's layer listings (see [`super::images::ImageSources::learn`]) with `why`; until it is
    /// answered the directory is taken as there, and the build plans again once it knows.
    fn mkdir_all(&mut self, path: &str, owner: (u64, u64), why: &str, tree: &mut Tree) {
        let mut prefixes = layer::parents(path);
        prefixes.push(path.to_string());
        let mut missing = false;
        for p in prefixes {
            if tree.contains_key(&p) {
                continue;
            }
            if !missing {
                if self.stage.fs.get(&p).is_some_and(Node::is_dir) || self.stage.implied.contains(&p) {
                    continue;
                }
                if self.stage.remote_base {
                    if owner == (0, 0) {
                        self.stage.implied.insert(p);
                        continue;
                    }
                    match self.base_has_dir(&p, why) {
                        Some(true) => {
                            self.stage.implied.insert(p);
                            continue;
                        }
                        Some(false) => {}
                        // Not known yet: the rest waits for the answer.
                        None => return,
                    }
                }
                missing = true;
            }
            tree.insert(p, Node::dir(0o755, owner.0, owner.1));
        }
    }

    /// Root-owned WORKDIRs on a registry base, once the stage is done. The directory (and the parents
    /// it needs) is what `mkdir -p` as root makes — 0755 root, the same as extraction makes of a parent
    /// with no entry — so it needs no entry of its own when this build puts anything below it, and
    /// the base is not read. Only a WORKDIR left empty shows in the image whether the base had it: the
    /// base is asked then, and a directory it lacks gets its entries, in the WORKDIR's own layer.
    fn settle_workdirs(&mut self) {
        let pending = std::mem::take(&mut self.stage.pending_workdirs);
        // Settled in order (a parent goes into the first layer that needs it), inserted from the
        // last so the positions stay right.
        let mut settled: Vec<(usize, usize, Tree)> = Vec::new();
        for p in pending {
            let below = format!("{}/", p.path);
            if self.stage.fs.range(below.clone()..).next().is_some_and(|(k, _)| k.starts_with(&below)) {
                continue;
            }
            let mut prefixes = layer::parents(&p.path);
            prefixes.push(p.path.clone());
            let mut tree = Tree::new();
            for dir in prefixes {
                if !tree.is_empty() {
                    tree.insert(dir, Node::dir(0o755, 0, 0));
                    continue;
                }
                if self.stage.fs.get(&dir).is_some_and(Node::is_dir) {
                    continue;
                }
                match self.base_has_dir(&dir, &p.why) {
                    Some(true) => {}
                    Some(false) => {
                        tree.insert(dir, Node::dir(0o755, 0, 0));
                    }
                    // Not known yet: the build plans again once it is.
                    None => break,
                }
            }
            if !tree.contains_key(&p.path) {
                continue;
            }
            for (k, n) in &tree {
                self.stage.fs.insert(k.clone(), n.clone());
            }
            settled.push((p.layer_pos, p.history_pos, tree));
        }
        for (layer_pos, history_pos, tree) in settled.into_iter().rev() {
            self.stage.layers.insert(layer_pos, tree);
            self.stage.history[history_pos].1 = false;
        }
    }

    /// Whether this stage's registry base has a directory at `path` (`None` until the build has read
    /// the base for it). Under `--check` nothing is read: taken as missing.
    fn base_has_dir(&self, path: &str, why: &str) -> Option<bool> {
        let from = &self.outline.stages[self.outline.root_of(self.index)].from;
        match self.input.images {
            Some(images) => images.base_dir(from, path, why),
            None => Some(false),
        }
    }

    fn copy(&mut self, ins: &Instruction, is_add: bool) -> Result<()> {
        let name = if is_add { "ADD" } else { "COPY" };
        let mut from: Option<String> = None;
        let mut owner: Option<(u64, u64)> = None;
        let mut chmod: Option<u32> = None;
        let mut excludes: Vec<String> = Vec::new();
        let mut parents = false;
        for f in &ins.flags {
            let v = f.value.clone().unwrap_or_default();
            match f.name.as_str() {
                "from" if !is_add => {
                    // BuildKit decides the stage graph before any ARG is known, and refuses
                    // variables here rather than expanding them.
                    let plain = expand_word(&v, &HashMap::<String, String>::new(), self.input.dockerfile.escape)
                        .map_err(|e| self.err(ins, e))?;
                    if plain != v {
                        return Err(self
                            .err(ins, format!("COPY --from={v}: variable expansion is not supported for --from"))
                            .with_hint("define a new stage with FROM using an ARG from the global scope, and COPY --from that stage"));
                    }
                    from = Some(v)
                }
                "chown" => owner = Some(self.chown(ins, &self.expand(ins, &v)?)?),
                "chmod" => {
                    chmod = Some(
                        u32::from_str_radix(&v, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| self.err(ins, format!("{name} --chmod={v:?}: expected an octal mode")))?,
                    )
                }
                // Patterns as in .dockerignore, not expanded (BuildKit does not expand them either).
                "exclude" => excludes.push(v),
                "parents" if !is_add => parents = !matches!(v.as_str(), "false" | "0"),
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
                let Some(fs) = self.copy_source_tree(ins, stage_ref, &src)? else { continue };
                items.extend(
                    resolve_in_tree(&fs, &src).map_err(|m| self.err(ins, format!("COPY --from={stage_ref}: {m}")))?,
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
                if parents {
                    // --parents keeps the source's path below the context (or below a `/./`
                    // pivot in the source), as a path under the destination directory.
                    let kept = match src.split_once("/./") {
                        Some((pivot, _)) => {
                            let pivot = ignore::clean(pivot);
                            s.rel.strip_prefix(&format!("{pivot}/")).unwrap_or(&s.rel).to_string()
                        }
                        None => s.rel.clone(),
                    };
                    items.push((kept, entries, false));
                    continue;
                }
                let base = s.rel.rsplit('/').next().unwrap_or_default().to_string();
                items.push((base, entries, s.is_dir));
            }
        }
        if !excludes.is_empty() {
            // --exclude: matched against each copied path relative to its source, and with the
            // source's own name in front (so `*.txt` drops `a.txt` sources and `dir/**/*.txt`).
            let rules = ignore::IgnoreRules::parse(&excludes.join("\n"));
            for (base, entries, _) in &mut items {
                entries.retain(|rel, _| {
                    let named = layer::join(base, rel);
                    !(rules.is_ignored(&named) || (!rel.is_empty() && rules.is_ignored(rel)))
                });
            }
            items.retain(|(_, entries, is_dir)| *is_dir || !entries.is_empty());
        }
        let dest_dir_syntax = dest_dir_syntax || parents;
        if items.len() + extracted.len() > 1 && !dest_dir_syntax {
            return Err(self.err(ins, format!("When using {name} with more than one source file, the destination must be a directory and end with a /")));
        }
        let dest_is_dir = dest_dir_syntax
            || self.stage.fs.get(&dest_abs).is_some_and(Node::is_dir)
            || self.stage.implied.contains(&dest_abs);
        let mut tree = Tree::new();
        // BuildKit's copy (fsutil's Copy): first `mkdir -p` of the destination (written with a
        // trailing `/`, or a directory copied into it) or else of its parent; the directories it
        // makes are 0755 and owned as --chown says (--chmod is for the copied entries only), and one
        // that exists keeps its mode and owner.
        let has_dir_item = items.iter().any(|(_, _, is_dir)| *is_dir);
        let mkdir = if dest_dir_syntax || has_dir_item {
            dest_abs.clone()
        } else {
            dest_abs.rsplit_once('/').map_or(String::new(), |(p, _)| p.to_string())
        };
        let ids = owner.unwrap_or((0, 0));
        if !mkdir.is_empty() {
            let why = format!(
                "{}:{} {name} --chown makes it {}:{} when the base lacks it",
                self.input.file_name, ins.line, ids.0, ids.1
            );
            self.mkdir_all(&mkdir, ids, &why, &mut tree);
        }
        let created: std::collections::BTreeSet<String> = tree.keys().cloned().collect();
        for (base, entries, is_dir) in items {
            if is_dir {
                // The directory's contents; the directory itself is the destination made above.
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
                for (rel, node) in entries {
                    tree.insert(layer::join(&target, &rel), node);
                }
            }
        }
        for (k, n) in tree.iter_mut() {
            if created.contains(k) {
                continue;
            }
            if let Some((u, g)) = owner {
                n.uid = u;
                n.gid = g;
            }
            if let Some(m) = chmod {
                if !matches!(n.kind, Kind::Symlink(_)) {
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

    /// `--chown=user[:group]`: numbers as they are, names through the stage's own `/etc/passwd`
    /// and `/etc/group` as BuildKit resolves them (a bare user gets its primary group from
    /// passwd; a bare number is used for both). A name that is not there is an error (BuildKit
    /// silently uses 0).
    fn chown(&self, ins: &Instruction, spec: &str) -> Result<(u64, u64)> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let by_name = |s: &str| s != "root" && s.parse::<u64>().is_err();
        let accounts = if by_name(u) || g.is_some_and(by_name) { self.accounts(ins, spec)? } else { None };
        let Some((accounts, whose)) = accounts else {
            // --check: names are not resolved offline.
            let id = |s: &str| s.parse::<u64>().unwrap_or(0);
            return Ok((id(u), g.map_or(id(u), id)));
        };
        let find = |name: &str, is_group: bool| -> Result<(u64, u64)> {
            if let Ok(n) = name.parse::<u64>() {
                return Ok((n, n));
            }
            let (file, text) =
                if is_group { ("/etc/group", &accounts.group) } else { ("/etc/passwd", &accounts.passwd) };
            match text {
                Some(t) => super::source::lookup_name(t, name, is_group)
                    .or((name == "root").then_some((0, 0)))
                    .ok_or_else(|| {
                        self.err(
                            ins,
                            format!(
                                "--chown={spec}: no {} {name:?} in {file} of {whose}",
                                if is_group { "group" } else { "user" }
                            ),
                        )
                        .with_hint("use a name that file defines, or numeric ids (--chown=1000:1000)")
                    }),
                None if name == "root" => Ok((0, 0)),
                None => Err(self
                    .err(ins, format!("--chown={spec}: {whose} has no {file} to look {name:?} up in"))
                    .with_hint("use numeric ids (--chown=1000:1000), or COPY an /etc/passwd and /etc/group in first")),
            }
        };
        let (uid, primary) = find(u, false)?;
        let gid = match g {
            Some(g) => find(g, true)?.0,
            None => primary,
        };
        Ok((uid, gid))
    }

    /// The account files `--chown` names are looked up in: the stage's own (copied in by an
    /// earlier instruction) over its base image's; `None` under `--check`.
    fn accounts(&self, ins: &Instruction, spec: &str) -> Result<Option<(Accounts, String)>> {
        let read = |k: &str| -> Option<Vec<u8>> {
            match &self.stage.fs.get(k)?.kind {
                Kind::File(Content::Path(p)) => std::fs::read(p).ok(),
                Kind::File(Content::Bytes(b)) => Some(b.to_vec()),
                _ => None,
            }
        };
        let root = self.outline.root_of(self.index);
        let from = &self.outline.stages[root].from;
        let mut accounts = Accounts::default();
        let whose = if from == "scratch" { "this stage".to_string() } else { from.clone() };
        if from != "scratch" {
            let Some(images) = self.input.images else { return Ok(None) };
            accounts = images
                .accounts(from)
                .map_err(|e| e.context(format!("{}:{}: --chown={spec}", self.input.file_name, ins.line)))?;
        }
        if let Some(p) = read("etc/passwd") {
            accounts.passwd = Some(p);
        }
        if let Some(g) = read("etc/group") {
            accounts.group = Some(g);
        }
        Ok(Some((accounts, whose)))
    }

    /// The tree a `COPY --from` source is resolved in: an earlier stage's files (over its base
    /// image's, when it has one), or a registry image's. `None` under `--check`.
    fn copy_source_tree(&self, ins: &Instruction, name: &str, src: &str) -> Result<Option<Cow<'_, Tree>>> {
        let ctx = |e: Error| e.context(format!("{}:{}: COPY --from={name}", self.input.file_name, ins.line));
        if let Some(idx) = stage_index(&self.outline.stages[..self.index], name) {
            let stage = self.done[idx].as_ref().expect("dependency evaluated");
            if !stage.remote_base {
                return Ok(Some(Cow::Borrowed(&stage.fs)));
            }
            let Some(images) = self.input.images else { return Ok(None) };
            let base = &self.outline.stages[self.outline.root_of(idx)].from;
            let mut t = images.files(base, &[src.to_string()]).map_err(ctx)?;
            t.extend(stage.fs.iter().map(|(k, n)| (k.clone(), n.clone())));
            return Ok(Some(Cow::Owned(t)));
        }
        if self.outline.stages.iter().any(|s| s.name.as_deref() == Some(name.to_lowercase().as_str())) {
            return Err(
                self.err(ins, format!("COPY --from={name}: stage {name:?} is not defined before this instruction"))
            );
        }
        let Some(images) = self.input.images else { return Ok(None) };
        Ok(Some(Cow::Owned(images.files(name, &[src.to_string()]).map_err(ctx)?)))
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

    /// Registry images as in-memory trees.
    struct FakeImages(HashMap<String, Tree>);

    impl super::super::source::ImageFiles for FakeImages {
        fn files(&self, image: &str, _paths: &[String]) -> Result<Tree> {
            self.0.get(image).cloned().ok_or_else(|| Error::other(format!("no image {image}")))
        }
        fn accounts(&self, image: &str) -> Result<super::super::source::Accounts> {
            let t = self.files(image, &[])?;
            let read = |k: &str| match t.get(k).map(|n| &n.kind) {
                Some(Kind::File(Content::Bytes(b))) => Some(b.to_vec()),
                _ => None,
            };
            Ok(super::super::source::Accounts { passwd: read("etc/passwd"), group: read("etc/group") })
        }
        fn base_dir(&self, image: &str, path: &str, _why: &str) -> Option<bool> {
            Some(self.0.get(image).and_then(|t| t.get(path)).is_some_and(Node::is_dir))
        }
    }

    fn file(text: &str, mode: u32, uid: u64) -> Node {
        Node { kind: Kind::File(Content::Bytes(Arc::new(text.as_bytes().to_vec()))), mode, uid, gid: uid }
    }

    fn plan_with(dockerfile: &str, files: &[(&str, &str)], images: &FakeImages) -> Result<Stage> {
        let dir = tempfile::tempdir().unwrap();
        for (p, c) in files {
            std::fs::create_dir_all(dir.path().join(p).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(p), c).unwrap();
        }
        let ctx = BuildContext::open(dir.path()).unwrap();
        let df = parse(dockerfile).unwrap();
        let platform = Platform::parse("linux/amd64").unwrap();
        let build_args = BTreeMap::new();
        let input = PlanInput {
            dockerfile: &df,
            file_name: "Dockerfile",
            context: &ctx,
            build_args: &build_args,
            target: None,
            platform: &platform,
            images: Some(images),
        };
        let o = outline(&input)?;
        evaluate(&input, &o, &HashMap::new())
    }

    #[test]
    fn new_directories_get_buildkits_owner_and_mode() {
        let mut base = Tree::new();
        for (p, mode, uid) in
            [("etc", 0o755, 0), ("home", 0o755, 0), ("home/nonroot", 0o700, 65532), ("tmp", 0o1777, 0)]
        {
            base.insert(p.into(), Node::dir(mode, uid, uid));
        }
        let images = FakeImages(HashMap::from([("example.com/base:1".to_string(), base)]));
        let s = plan_with(
            "FROM example.com/base:1\nCOPY --chown=65532:65532 d/ /app/config/\nCOPY --chown=65532 a /home/nonroot/new/a\n\
             COPY --chmod=600 d /srv/data\nCOPY --chown=7:7 --chmod=640 d /opt/x\nWORKDIR /tmp\nUSER 1000\nWORKDIR /home/nonroot\nWORKDIR /work/dir\n",
            &[("d/f", "f"), ("a", "a")],
            &images,
        )
        .unwrap();
        let meta = |p: &str| s.fs.get(p).map(|n| (n.mode, n.uid, n.gid));
        // A new directory and the parents a --chown copy makes: 0755, the --chown owner.
        assert_eq!(meta("app"), Some((0o755, 65532, 65532)));
        assert_eq!(meta("app/config"), Some((0o755, 65532, 65532)));
        assert_eq!(meta("app/config/f").map(|m| m.1), Some(65532));
        // An existing one keeps its own (no entry over the base's).
        assert_eq!(meta("home/nonroot"), None);
        assert_eq!(meta("home/nonroot/new"), Some((0o755, 65532, 65532)));
        // --chmod is for the copied entries; a directory made root-owned is left to extraction.
        assert_eq!(meta("srv/data"), None);
        assert_eq!(meta("srv/data/f").map(|m| m.0), Some(0o600));
        assert_eq!(meta("opt/x"), Some((0o755, 7, 7)));
        assert_eq!(meta("opt/x/f"), Some((0o640, 7, 7)));
        // WORKDIR of a directory the base has leaves it; a new one (and its parents) is the USER's.
        assert_eq!(meta("tmp"), None);
        assert_eq!(meta("work"), Some((0o755, 1000, 1000)));
        assert_eq!(meta("work/dir"), Some((0o755, 1000, 1000)));
        let empty: Vec<bool> = s.history.iter().filter(|(c, _)| c.contains("WORKDIR")).map(|(_, e)| *e).collect();
        assert_eq!(empty, [true, true, false]);
        // A root WORKDIR left empty shows whether the base had it: made (parents too) when it lacks it.
        let s = plan_with(
            "FROM example.com/base:1\nWORKDIR /var/lib/x\nWORKDIR /home/nonroot\nWORKDIR /srv\nCOPY a .\n",
            &[("a", "a")],
            &images,
        )
        .unwrap();
        let meta = |p: &str| s.fs.get(p).map(|n| (n.mode, n.uid, n.gid));
        for p in ["var", "var/lib", "var/lib/x"] {
            assert_eq!(meta(p), Some((0o755, 0, 0)), "{p}");
        }
        assert_eq!(meta("home/nonroot"), None, "the base has it");
        assert_eq!(meta("srv"), None, "a file below it: extraction makes it as mkdir would");
        assert!(s.fs.contains_key("srv/a"));
        let empty: Vec<bool> = s.history.iter().filter(|(c, _)| c.contains("WORKDIR")).map(|(_, e)| *e).collect();
        assert_eq!(empty, [false, true, true]);
        assert_eq!(s.layers.len(), 2);
        assert!(s.layers[0].contains_key("var/lib/x"), "in the WORKDIR's own layer, before the COPY's");
    }

    #[test]
    fn copy_from_images_and_chown_by_name() {
        let mut img = Tree::new();
        img.insert("etc".into(), Node::dir(0o755, 0, 0));
        img.insert(
            "etc/passwd".into(),
            file(
                "root:x:0:0::/root:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\napp:x:1000:50::/:\n",
                0o644,
                0,
            ),
        );
        img.insert("etc/group".into(), file("root:x:0:\nstaff:x:50:\nnonroot:x:65532:\n", 0o644, 0));
        img.insert("etc/ssl".into(), Node::dir(0o755, 0, 0));
        img.insert("etc/ssl/cert.pem".into(), file("pem", 0o644, 0));
        img.insert("usr/bin/tool".into(), file("bin", 0o4755, 7));
        let images = FakeImages(HashMap::from([("example.com/base:1".to_string(), img)]));
        // --from an image, and --from a stage that is only that image; owners and modes kept.
        let s = plan_with(
            "FROM example.com/base:1 AS b\nFROM scratch\nCOPY --from=example.com/base:1 /usr/bin/tool /t\nCOPY --from=b /etc/ssl /ssl\n",
            &[],
            &images,
        )
        .unwrap();
        assert_eq!((s.fs["t"].mode, s.fs["t"].uid), (0o4755, 7));
        assert!(s.fs.contains_key("ssl/cert.pem"));
        // --chown by name through the base's passwd and group, as BuildKit resolves them.
        let s = plan_with(
            "FROM example.com/base:1\nCOPY --chown=nonroot:nonroot a /a\nCOPY --chown=app b /b\nCOPY --chown=app:root a /c\nCOPY --chown=1000:staff a /d\n",
            &[("a", "1"), ("b", "2")],
            &images,
        )
        .unwrap();
        let ids = |k: &str| (s.fs[k].uid, s.fs[k].gid);
        assert_eq!([ids("a"), ids("b"), ids("c"), ids("d")], [(65532, 65532), (1000, 50), (1000, 0), (1000, 50)]);
        let e = plan_with("FROM example.com/base:1\nCOPY --chown=ghost a /a\n", &[("a", "1")], &images).unwrap_err();
        assert!(
            e.to_string()
                .contains("Dockerfile:2: --chown=ghost: no user \"ghost\" in /etc/passwd of example.com/base:1"),
            "{e}"
        );
        let e =
            plan_with("FROM example.com/base:1\nCOPY --chown=app:ghosts a /a\n", &[("a", "1")], &images).unwrap_err();
        assert!(e.to_string().contains("no group \"ghosts\" in /etc/group"), "{e}");
        // A scratch stage resolves names through the passwd it copied in.
        let s = plan_with(
            "FROM scratch\nCOPY --from=example.com/base:1 /etc/passwd /etc/passwd\nCOPY --from=example.com/base:1 /etc/group /etc/group\nCOPY --chown=nonroot a /a\n",
            &[("a", "1")],
            &images,
        )
        .unwrap();
        assert_eq!((s.fs["a"].uid, s.fs["a"].gid), (65532, 65532));
        let e = plan_with("FROM scratch\nCOPY --from=example.com/base:1 /nope /x\n", &[], &images).unwrap_err();
        assert!(e.to_string().contains("Dockerfile:2: COPY --from=example.com/base:1: \"/nope\" not found"), "{e}");
    }

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
            images: None,
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
        assert_eq!(
            s.config["Env"],
            json!([DEFAULT_PATH, "A=x9", "B=two words"]),
            "scratch starts with BuildKit's PATH"
        );
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
    fn leading_slash_parents_and_exclude() {
        let files = [
            ("x/a.txt", "a"),
            ("x/b.md", "b"),
            ("y/a.txt", "c"),
            ("d/k/keep.txt", "k"),
            ("d/k/drop.log", "l"),
            ("top.txt", "t"),
        ];
        let s = plan(
            "FROM scratch\nCOPY /top.txt /t\nCOPY --parents x/a.txt y/a.txt /p/\nCOPY --parents ./x/./*.md /q/\nCOPY --exclude=**/*.log --exclude=nope d /e\nCOPY --exclude=*.md x/* /f/\n",
            &files,
            &[],
            None,
        )
        .unwrap();
        assert!(s.fs.contains_key("t"), "a leading / is the context root");
        assert!(
            s.fs.contains_key("p/x/a.txt") && s.fs.contains_key("p/y/a.txt"),
            "{:?}",
            s.fs.keys().collect::<Vec<_>>()
        );
        assert!(s.fs.contains_key("q/b.md") && !s.fs.contains_key("q/x/b.md"), "the /./ pivot");
        assert!(s.fs.contains_key("e/k/keep.txt") && !s.fs.contains_key("e/k/drop.log"));
        assert!(s.fs.contains_key("f/a.txt") && !s.fs.contains_key("f/b.md"));
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
        assert!(e.to_string().contains("Dockerfile:2: --chown=app: this stage has no /etc/passwd"), "{e}");
        let e = plan("ARG I=alpine\nFROM scratch\nCOPY --from=${I} /a /a\n", &[], &[], None).unwrap_err();
        assert!(e.to_string().contains("Dockerfile:3: COPY --from=${I}: variable expansion is not supported"), "{e}");
        // Stages the target does not need are not evaluated.
        assert!(plan("FROM scratch AS a\nRUN x\nFROM scratch\nCOPY a /a\n", &[("a", "1")], &[], None).is_ok());
    }
}
