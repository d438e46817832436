//! The Dockerfile syntax tree: [`Dockerfile`], [`Instruction`], its [`Args`], [`Flag`]s and
//! [`Heredoc`]s, and the [`ParseError`] the parser raises. Pure data: values are kept as written
//! (quotes kept, variables unexpanded), as BuildKit's parser keeps them; expansion is
//! [`super::expand`]'s job and happens at build time, against the build's variables.

use serde::Serialize;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dockerfile {
    /// The escape character: `\` unless a `# escape=` directive chose `` ` ``.
    pub escape: char,
    /// The `# syntax=` directive's value, if any (hoist does not fetch frontends; it is reported).
    pub syntax: Option<String>,
    /// Every parser directive recognised at the top of the file, in order.
    pub directives: Vec<Directive>,
    pub instructions: Vec<Instruction>,
    /// Things BuildKit warns about but accepts (empty continuation lines).
    pub warnings: Vec<Warning>,
}

/// A parser directive (`# escape=`, `# syntax=`, `# check=`), name lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// A non-fatal remark about the file, with the 1-based line of the instruction it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

/// One instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instruction {
    /// Lowercase: `"from"`, `"copy"`, … (unknown instructions are kept, lowercased, too).
    pub keyword: String,
    /// `--name[=value]` flags written before the arguments, quotes removed.
    pub flags: Vec<Flag>,
    pub args: Args,
    /// Here-documents (`<<EOF`) attached to a RUN, COPY or ADD in shell form (or an ONBUILD of one).
    pub heredocs: Vec<Heredoc>,
    /// 1-based line the instruction starts on.
    pub line: usize,
    /// 1-based line it ends on, including continuation lines and here-document bodies.
    pub end_line: usize,
    /// The instruction as BuildKit sees it: continuation lines joined, comment lines between them
    /// dropped, the escape characters that continued the lines removed.
    pub original: String,
}

/// A builder flag such as `--from=build` (`name: "from"`) or `--link` (`value: None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// An instruction's arguments, in the form BuildKit's parser gives them for that instruction.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "form", content = "value", rename_all = "snake_case")]
pub enum Args {
    /// Nothing after the keyword (and its flags).
    None,
    /// Exec form, `["a", "b"]`: CMD, ENTRYPOINT, RUN, SHELL, COPY, ADD, VOLUME, HEALTHCHECK CMD.
    Json(Vec<String>),
    /// Shell form: the rest of the line as one string (CMD, ENTRYPOINT, RUN, SHELL).
    Shell(String),
    /// Whitespace-separated words, quotes kept: FROM, EXPOSE, and COPY/ADD/VOLUME not in exec form.
    Words(Vec<String>),
    /// `key=value` pairs: ENV and LABEL (values as written, quotes kept), ARG (`value: None` for a
    /// bare `ARG name`).
    KeyValues(Vec<KeyValue>),
    /// One uninterpreted string: MAINTAINER, STOPSIGNAL, USER, WORKDIR, and the arguments of an
    /// instruction the parser does not know.
    Text(String),
    /// HEALTHCHECK `<kind> [command]`: `kind` as written (`CMD`, `NONE`, …); `command` is
    /// [`Args::Json`], [`Args::Shell`] or [`Args::None`].
    Healthcheck { kind: String, command: Box<Args> },
    /// ONBUILD's trigger, parsed as an instruction of its own (same lines as the ONBUILD).
    Onbuild(Box<Instruction>),
}

/// One `key=value` (or legacy `key value`) item of ENV, LABEL or ARG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    /// As written (quotes kept). `None` only for ARG without a default.
    pub value: Option<String>,
    /// The legacy `ENV key value` / `LABEL key value` form: one pair, the value is the rest of the
    /// line.
    pub legacy: bool,
}

/// A here-document: `COPY <<EOF /dest` followed by its body and the `EOF` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The terminator word, quotes removed.
    pub name: String,
    /// The body, line endings kept, terminator excluded; leading tabs already stripped from every
    /// line when [`Heredoc::chomp_tabs`] is set (stripping again is harmless).
    pub content: String,
    /// False when the terminator was quoted (`<<'EOF'`, `<<"EOF"`): the body is used literally.
    pub expand: bool,
    /// `<<-EOF`: leading tabs are stripped from the body and the terminator line.
    pub chomp_tabs: bool,
    /// A file descriptor written before `<<` (`3<<EOF`), meaningful to RUN only.
    pub fd: Option<u32>,
}

/// What went wrong, for callers that branch on it; the message carries the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParseErrorKind {
    /// Empty file, or only comments and directives.
    NoInstructions,
    /// `ENV key` / `LABEL key` with no value.
    MissingValue,
    /// `ENV a=b c`: a later word has no `=`.
    MissingEquals,
    /// A JSON array whose elements are not all strings (e.g. nested arrays).
    NotStringArray,
    /// A parser directive with a value BuildKit refuses (`# escape=x`).
    InvalidDirective,
    /// The same parser directive twice.
    DuplicateDirective,
    /// A here-document whose terminator never comes.
    UnterminatedHeredoc,
    /// A here-document marker that cannot be lexed (`<<'EOF` with no closing quote).
    InvalidHeredoc,
}

/// A parse failure at a 1-based line. Displays as `line N: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(line: usize, kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        ParseError { line, message: message.into(), kind }
    }
}

impl Dockerfile {
    /// The file as BuildKit's parser test corpus prints it: one s-expression per instruction.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for instruction in &self.instructions {
            out.push_str(&instruction.dump());
            out.push('\n');
        }
        out
    }
}

impl Instruction {
    /// The last flag named `name` (without `--`), if any.
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().rev().find(|f| f.name == name)
    }

    /// True for the JSON (exec) form, including `HEALTHCHECK CMD [...]`.
    pub fn is_json(&self) -> bool {
        match &self.args {
            Args::Json(_) => true,
            Args::Healthcheck { command, .. } => matches!(**command, Args::Json(_)),
            _ => false,
        }
    }

    /// This instruction as one line of BuildKit's parser test corpus: `(copy ["--from=a"] "x" "/y")`.
    pub fn dump(&self) -> String {
        super::dump::instruction(self)
    }
}

impl Flag {
    /// The flag as written after quote removal: `--name` or `--name=value`.
    pub fn to_arg(&self) -> String {
        match &self.value {
            Some(v) => format!("--{}={v}", self.name),
            None => format!("--{}", self.name),
        }
    }
}
