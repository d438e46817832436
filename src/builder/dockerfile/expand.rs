//! Shell-word expansion as BuildKit's `frontend/dockerfile/shell` lexer does it: `$VAR`, `${VAR}`,
//! the `${VAR:-default}` / `-` / `:+` / `+` / `:?` / `?` forms, `${VAR#pat}` / `##` / `%` / `%%`
//! trimming, `${VAR/pat/repl}` / `//` replacement, the configurable escape character, single quotes
//! (literal), double quotes (expansion inside) and quote removal. [`expand_word`] gives one string
//! (ProcessWord); [`expand_words`] splits on unquoted whitespace after expansion (ProcessWords).
//! Pure: variables come from a [`Lookup`] (a closure or a map).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;

/// Where variable values come from. Implemented for closures `Fn(&str) -> Option<String>`,
/// `HashMap<String, String>` and `BTreeMap<String, String>`. `None` means unset, which differs
/// from set-but-empty for `${VAR-x}`, `${VAR+x}` and `${VAR?x}`.
pub trait Lookup {
    fn lookup(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String> + ?Sized> Lookup for F {
    fn lookup(&self, name: &str) -> Option<String> {
        self(name)
    }
}

impl<S: BuildHasher> Lookup for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Expansion failed for `word`. Displays as BuildKit does: `failed to process "word": reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {kind}")]
pub struct ExpandError {
    pub word: String,
    pub kind: ExpandErrorKind,
}

/// Why expansion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// `${VAR?msg}` with VAR unset, or `${VAR:?msg}` with VAR unset or empty.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern { pattern: String, reason: String },
}

/// Expands `word` into one string (BuildKit's ProcessWord): variables substituted, quotes and
/// escapes removed, unquoted whitespace kept as is.
pub fn expand_word<E: Lookup + ?Sized>(word: &str, env: &E, escape: char) -> Result<String, ExpandError> {
    process(word, env, escape, Options::default()).map(|(word, _)| word)
}

/// Expands `text` and splits it on unquoted whitespace (BuildKit's ProcessWords). Whitespace that
/// comes from a variable's value splits too, unless the variable was inside double quotes.
pub fn expand_words<E: Lookup + ?Sized>(text: &str, env: &E, escape: char) -> Result<Vec<String>, ExpandError> {
    process(text, env, escape, Options::default()).map(|(_, words)| words)
}

/// The lexer's switches, as BuildKit's `Lex` fields (used by here-document detection).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written instead of expanding them to "".
    pub skip_unset: bool,
}

/// Runs the lexer over `text`: the single-string result and the split words.
pub(crate) fn process<E: Lookup + ?Sized>(
    text: &str,
    env: &E,
    escape: char,
    options: Options,
) -> Result<(String, Vec<String>), ExpandError> {
    let mut lexer = Lexer { chars: text.chars().collect(), pos: 0, env, escape, options };
    let raw_escapes = options.raw_escapes;
    lexer.process_until(None, raw_escapes).map_err(|kind| ExpandError { word: text.to_string(), kind })
}

/// Collects the words of ProcessWords: unquoted whitespace ends a word, quoted text never does.
#[derive(Default)]
struct Words {
    current: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.current.is_empty() {
                self.words.push(std::mem::take(&mut self.current));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.current.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|ch| self.add_char(ch));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.current.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.words.push(self.current);
        }
        self.words
    }
}

struct Lexer<'a, E: ?Sized> {
    chars: Vec<char>,
    pos: usize,
    env: &'a E,
    escape: char,
    options: Options,
}

type Step<T> = Result<T, ExpandErrorKind>;

impl<E: Lookup + ?Sized> Lexer<'_, E> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    /// Processes up to `stop` (consumed) or the end of input when `stop` is `None`.
    fn process_until(&mut self, stop: Option<char>, raw_escapes: bool) -> Step<(String, Vec<String>)> {
        let saved = std::mem::replace(&mut self.options.raw_escapes, raw_escapes);
        let result = self.process_until_inner(stop);
        self.options.raw_escapes = saved;
        result
    }

    fn process_until_inner(&mut self, stop: Option<char>) -> Step<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '\'' => {
                    let value = self.single_quoted()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '"' => {
                    let value = self.double_quoted()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                _ => {
                    self.next();
                    if ch != self.escape {
                        words.add_char(ch);
                        result.push(ch);
                        continue;
                    }
                    if self.options.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    // An escape at the very end is dropped.
                    let Some(escaped) = self.next() else { break };
                    words.add_raw_char(escaped);
                    result.push(escaped);
                }
            }
        }
        match stop {
            Some('/') => Err(ExpandErrorKind::MissingSlash),
            Some(_) => Err(ExpandErrorKind::MissingBrace),
            None => Ok((result, words.finish())),
        }
    }

    /// `'...'`: everything literal up to the next `'`; nothing escapes inside.
    fn single_quoted(&mut self) -> Step<String> {
        let mut result = String::new();
        let open = self.next();
        if self.options.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ExpandErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.options.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    /// `"..."`: literal except `$` expansion; the escape character escapes only `"`, `$` and itself.
    fn double_quoted(&mut self) -> Step<String> {
        let mut result = String::new();
        let open = self.next();
        if self.options.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ExpandErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.options.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => result.push_str(&self.dollar()?),
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.escape {
                        if self.options.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // Dropped; the loop then reports the missing quote.
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                ch = next;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// Looks `name` up; unset variables stay as written when `skip_unset` is on.
    fn value_or(&self, name: &str, written: impl FnOnce() -> String) -> String {
        match self.env.lookup(name) {
            Some(value) => value,
            None if self.options.skip_unset => written(),
            None => String::new(),
        }
    }

    /// `$name`, `${name}` and the `${name<op>word}` forms. The `$` is next in the input.
    fn dollar(&mut self) -> Step<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.value_or(&name, || format!("${name}")));
        }
        self.next();
        match self.peek() {
            None => return Err(ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            None => Err(ExpandErrorKind::MissingBrace),
            Some('}') => Ok(self.value_or(&name, || format!("${{{name}}}"))),
            Some(':') => {
                let op = self.next().ok_or(ExpandErrorKind::MissingBrace)?;
                self.modifier(name, op, true)
            }
            Some(op @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(name, op, false),
            Some('/') => self.replace(name),
            Some(other) => Err(ExpandErrorKind::UnsupportedModifier(other.to_string())),
        }
    }

    /// `${name[:]<op>word}` with the input just past `op`.
    fn modifier(&mut self, name: String, op: char, colon: bool) -> Step<String> {
        let written_op = if colon { format!(":{op}") } else { op.to_string() };
        let is_pattern = op == '#' || op == '%';
        if colon && is_pattern {
            return Err(ExpandErrorKind::UnsupportedModifier(written_op));
        }
        let (word, _) =
            self.process_until(Some('}'), is_pattern).map_err(|e| self.at_end_or(e, ExpandErrorKind::MissingBrace))?;

        let value = self.env.lookup(&name);
        if value.is_none() && self.options.skip_unset {
            return Ok(format!("${{{name}{written_op}{word}}}"));
        }
        // With the colon, set-but-empty counts as unset.
        let is_set = value.as_ref().is_some_and(|v| !(colon && v.is_empty()));
        match op {
            '-' if is_set => Ok(value.unwrap_or_default()),
            '-' => Ok(word),
            '+' if is_set => Ok(word),
            '+' => Ok(String::new()),
            '?' if is_set => Ok(value.unwrap_or_default()),
            '?' => {
                let message = match (word.is_empty(), value.is_some()) {
                    (false, _) => word,
                    (true, false) => "is not allowed to be unset".to_string(),
                    (true, true) => "is not allowed to be empty".to_string(),
                };
                Err(ExpandErrorKind::Required { name, message })
            }
            '#' | '%' => {
                let (greedy, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                let tokens = pattern::compile(&pattern)
                    .map_err(|reason| ExpandErrorKind::InvalidPattern { pattern: pattern.clone(), reason })?;
                let value = value.unwrap_or_default();
                Ok(if op == '#' {
                    pattern::trim_prefix(&tokens, &value, greedy)
                } else {
                    pattern::trim_suffix(&tokens, &value, greedy)
                })
            }
            _ => Err(ExpandErrorKind::UnsupportedModifier(written_op)),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`, input just past the `/`.
    fn replace(&mut self, name: String) -> Step<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let (pattern, _) =
            self.process_until(Some('/'), true).map_err(|e| self.at_end_or(e, ExpandErrorKind::MissingSlash))?;
        let (replacement, _) =
            self.process_until(Some('}'), true).map_err(|e| self.at_end_or(e, ExpandErrorKind::MissingBrace))?;
        let value = self.env.lookup(&name);
        if value.is_none() && self.options.skip_unset {
            let slashes = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{slashes}{pattern}/{replacement}}}"));
        }
        let tokens = pattern::compile(&pattern)
            .map_err(|reason| ExpandErrorKind::InvalidPattern { pattern: pattern.clone(), reason })?;
        Ok(pattern::replace(&tokens, &value.unwrap_or_default(), &replacement, all))
    }

    /// Any error inside `${...}` that ran into the end of input is reported as the missing
    /// delimiter, as BuildKit does.
    fn at_end_or(&self, error: ExpandErrorKind, at_end: ExpandErrorKind) -> ExpandErrorKind {
        if self.peek().is_none() {
            at_end
        } else {
            error
        }
    }

    /// A variable name: letters, digits and `_`; or all-digit positional names (`$10`); or one
    /// special parameter character (`$@`, `$?`, `$$`, …).
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(digit) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(digit);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

/// Shell patterns (`*`, `?`, `\` escapes; no bracket expressions) for `${#}`, `${%}` and `${/}`,
/// matched with the preferences of the regular expression BuildKit compiles them to (leftmost,
/// then greedy or lazy stars in order; neither `*` nor `?` matches a newline).
mod pattern {
    use super::HashSet;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Token {
        Star,
        Any,
        Literal(char),
    }

    pub(super) fn compile(pattern: &str) -> Result<Vec<Token>, String> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(ch) = chars.next() {
            tokens.push(match ch {
                '*' => Token::Star,
                '?' => Token::Any,
                // `\}` and `\/` had to be escaped inside `${}`; the escape is not part of the pattern.
                '\\' if matches!(chars.peek(), Some('}' | '/')) => continue,
                '\\' => match chars.next() {
                    Some(c @ ('*' | '?' | '\\')) => Token::Literal(c),
                    Some(c) => return Err(format!("invalid escape '\\{c}'")),
                    None => return Err("invalid escape '\\' at end of pattern".to_string()),
                },
                c => Token::Literal(c),
            });
        }
        Ok(tokens)
    }

    /// Where the preferred match of `tokens` starting at `start` ends, if any.
    fn match_at(tokens: &[Token], text: &[char], start: usize, greedy: bool) -> Option<usize> {
        fn go(
            tokens: &[Token],
            text: &[char],
            t: usize,
            pos: usize,
            greedy: bool,
            failed: &mut HashSet<(usize, usize)>,
        ) -> Option<usize> {
            if t == tokens.len() {
                return Some(pos);
            }
            if failed.contains(&(t, pos)) {
                return None;
            }
            let found = match tokens[t] {
                Token::Literal(c) => {
                    (text.get(pos) == Some(&c)).then(|| go(tokens, text, t + 1, pos + 1, greedy, failed)).flatten()
                }
                Token::Any => (text.get(pos).is_some_and(|&c| c != '\n'))
                    .then(|| go(tokens, text, t + 1, pos + 1, greedy, failed))
                    .flatten(),
                Token::Star => {
                    let run = text[pos..].iter().take_while(|&&c| c != '\n').count();
                    let mut lengths: Box<dyn Iterator<Item = usize>> =
                        if greedy { Box::new((0..=run).rev()) } else { Box::new(0..=run) };
                    lengths.find_map(|n| go(tokens, text, t + 1, pos + n, greedy, failed))
                }
            };
            if found.is_none() {
                failed.insert((t, pos));
            }
            found
        }
        go(tokens, text, 0, start, greedy, &mut HashSet::new())
    }

    /// `${v#p}` (lazy) / `${v##p}` (greedy): drop the matching prefix.
    pub(super) fn trim_prefix(tokens: &[Token], value: &str, greedy: bool) -> String {
        let text: Vec<char> = value.chars().collect();
        match match_at(tokens, &text, 0, greedy) {
            Some(end) => text[end..].iter().collect(),
            None => value.to_string(),
        }
    }

    /// `${v%p}` / `${v%%p}`: drop the matching suffix (a prefix match on the reversed strings).
    pub(super) fn trim_suffix(tokens: &[Token], value: &str, greedy: bool) -> String {
        let reversed_tokens: Vec<Token> = tokens.iter().rev().copied().collect();
        let reversed: String = value.chars().rev().collect();
        trim_prefix(&reversed_tokens, &reversed, greedy).chars().rev().collect()
    }

    /// `${v/p/r}` (first match) and `${v//p/r}` (every match), stars greedy.
    pub(super) fn replace(tokens: &[Token], value: &str, replacement: &str, all: bool) -> String {
        let text: Vec<char> = value.chars().collect();
        let find_from =
            |from: usize| (from..=text.len()).find_map(|s| match_at(tokens, &text, s, true).map(|e| (s, e)));
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= text.len() {
            let Some((start, end)) = find_from(search) else {
                break;
            };
            out.extend(&text[last_end..start]);
            // No replacement for an empty match right after the previous match (Go's rule).
            if end > last_end || start == 0 {
                out.push_str(replacement);
            }
            last_end = end;
            if !all {
                break;
            }
            search = if end > search { end } else { search + 1 };
        }
        out.extend(&text[last_end..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [("FOO", "foo"), ("EMPTY", ""), ("SPACED", "a b  c"), ("PATH", "/usr/local/bin:/usr/bin"), ("FILE", "a.tar.gz")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn word(s: &str) -> String {
        expand_word(s, &env(), '\\').unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> ExpandErrorKind {
        expand_word(s, &env(), '\\').expect_err(s).kind
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(word("$FOO/${FOO}x"), "foo/foox");
    }

    #[test]
    fn unset_variable_expands_to_nothing() {
        assert_eq!(word("a${NOPE}b$NOPE"), "ab");
    }

    #[test]
    fn dollar_without_name_is_literal() {
        assert_eq!(word("cost: $ 5 $"), "cost: $ 5 $");
        assert_eq!(word("$/"), "$/");
    }

    #[test]
    fn name_stops_at_non_word_char() {
        assert_eq!(word("$FOO-bar $FOO.txt"), "foo-bar foo.txt");
    }

    #[test]
    fn positional_and_special_parameters_are_looked_up() {
        let lookup = |k: &str| Some(format!("<{k}>"));
        assert_eq!(expand_word("$12x $$ $@", &lookup, '\\').unwrap(), "<12>x <$> <@>");
    }

    #[test]
    fn colon_dash_default_applies_when_unset_or_empty() {
        assert_eq!(word("${NOPE:-d} ${EMPTY:-d} ${FOO:-d}"), "d d foo");
    }

    #[test]
    fn dash_default_applies_only_when_unset() {
        assert_eq!(word("[${NOPE-d}] [${EMPTY-d}] [${FOO-d}]"), "[d] [] [foo]");
    }

    #[test]
    fn colon_plus_alternative_applies_when_set_and_non_empty() {
        assert_eq!(word("[${NOPE:+a}] [${EMPTY:+a}] [${FOO:+a}]"), "[] [] [a]");
    }

    #[test]
    fn plus_alternative_applies_when_set() {
        assert_eq!(word("[${NOPE+a}] [${EMPTY+a}] [${FOO+a}]"), "[] [a] [a]");
    }

    #[test]
    fn default_word_is_itself_expanded() {
        assert_eq!(word("${NOPE:-$FOO-${EMPTY:-x}}"), "foo-x");
    }

    #[test]
    fn default_word_may_be_quoted() {
        assert_eq!(word(r#"${NOPE:-"a b"}"#), "a b");
    }

    #[test]
    fn colon_question_errors_when_unset_or_empty() {
        assert_eq!(err("${NOPE:?set it}"), ExpandErrorKind::Required { name: "NOPE".into(), message: "set it".into() });
        assert_eq!(
            err("${EMPTY:?}"),
            ExpandErrorKind::Required { name: "EMPTY".into(), message: "is not allowed to be empty".into() }
        );
        assert_eq!(word("${FOO:?x}"), "foo");
    }

    #[test]
    fn question_errors_only_when_unset() {
        assert_eq!(
            err("${NOPE?}"),
            ExpandErrorKind::Required { name: "NOPE".into(), message: "is not allowed to be unset".into() }
        );
        assert_eq!(word("[${EMPTY?x}]"), "[]");
    }

    #[test]
    fn required_error_displays_like_buildkit() {
        let e = expand_word("${X:?need X}", &env(), '\\').unwrap_err();
        assert_eq!(e.to_string(), r#"failed to process "${X:?need X}": X: need X"#);
    }

    #[test]
    fn prefix_trimming_lazy_and_greedy() {
        assert_eq!(word("${PATH#*:}"), "/usr/bin");
        assert_eq!(word("${PATH##*/}"), "bin");
        assert_eq!(word("${FILE#nomatch}"), "a.tar.gz");
    }

    #[test]
    fn suffix_trimming_lazy_and_greedy() {
        assert_eq!(word("${FILE%.*}"), "a.tar");
        assert_eq!(word("${FILE%%.*}"), "a");
    }

    #[test]
    fn pattern_question_mark_matches_one_char() {
        assert_eq!(word("${FILE#?.}"), "tar.gz");
    }

    #[test]
    fn colon_with_pattern_modifier_is_unsupported() {
        assert_eq!(err("${FILE:#a}"), ExpandErrorKind::UnsupportedModifier(":#".into()));
    }

    #[test]
    fn replace_first_and_all() {
        assert_eq!(word("${PATH/usr/opt}"), "/opt/local/bin:/usr/bin");
        assert_eq!(word("${PATH//usr/opt}"), "/opt/local/bin:/opt/bin");
        assert_eq!(word("${FILE//?/x}"), "xxxxxxxx");
    }

    #[test]
    fn replace_with_escaped_slash() {
        assert_eq!(word(r"${PATH//\//|}"), "|usr|local|bin:|usr|bin");
    }

    #[test]
    fn unknown_modifier_is_an_error() {
        assert_eq!(err("${FOO:=x}"), ExpandErrorKind::UnsupportedModifier(":=".into()));
        assert_eq!(err("${FOO^}"), ExpandErrorKind::UnsupportedModifier("^".into()));
    }

    #[test]
    fn bad_substitutions() {
        assert_eq!(err("${}"), ExpandErrorKind::BadSubstitution);
        assert_eq!(err("${:-x}"), ExpandErrorKind::BadSubstitution);
        assert_eq!(err("${{x}"), ExpandErrorKind::BadSubstitution);
    }

    #[test]
    fn missing_closing_brace() {
        assert_eq!(err("${FOO"), ExpandErrorKind::MissingBrace);
        assert_eq!(err("${FOO:-x"), ExpandErrorKind::MissingBrace);
        assert_eq!(err("${"), ExpandErrorKind::MissingBrace);
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(word(r#"'$FOO \ "x"'"#), r#"$FOO \ "x""#);
    }

    #[test]
    fn double_quotes_expand_and_escape_only_quote_dollar_escape() {
        assert_eq!(word(r#""$FOO \$FOO \" \\ \n 'x'""#), r#"foo $FOO " \ \n 'x'"#);
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        assert_eq!(err("'abc"), ExpandErrorKind::UnterminatedSingleQuote);
        assert_eq!(err("\"abc"), ExpandErrorKind::UnterminatedDoubleQuote);
        assert_eq!(err("\"abc\\"), ExpandErrorKind::UnterminatedDoubleQuote);
    }

    #[test]
    fn escape_outside_quotes_takes_next_char_literally() {
        assert_eq!(word(r#"\$FOO \" \' \\ a\b"#), r#"$FOO " ' \ ab"#);
    }

    #[test]
    fn trailing_escape_is_dropped() {
        assert_eq!(word("abc\\"), "abc");
    }

    #[test]
    fn backtick_escape_character() {
        assert_eq!(expand_word(r"C:\path `$FOO ``", &env(), '`').unwrap(), r"C:\path $FOO `");
        assert_eq!(expand_word(r#""a`"b""#, &env(), '`').unwrap(), r#"a"b"#);
    }

    #[test]
    fn closure_lookup() {
        let lookup = |k: &str| (k == "A").then(|| "1".to_string());
        assert_eq!(expand_word("$A$B", &lookup, '\\').unwrap(), "1");
        let dynamic: &dyn Fn(&str) -> Option<String> = &lookup;
        assert_eq!(expand_word("${A}", dynamic, '\\').unwrap(), "1");
    }

    #[test]
    fn btreemap_lookup() {
        let map: BTreeMap<String, String> = [("A".to_string(), "x".to_string())].into();
        assert_eq!(expand_word("$A", &map, '\\').unwrap(), "x");
    }

    #[test]
    fn words_split_on_unquoted_whitespace() {
        let words = expand_words("  a  'b c' \"d $SPACED\" $SPACED e\\ f ", &env(), '\\').unwrap();
        assert_eq!(words, ["a", "b c", "d a b  c", "a", "b", "c", "e f"]);
    }

    #[test]
    fn words_join_adjacent_parts() {
        let words = expand_words("x$FOO'y'\"z\" a${NOPE:-b}c", &env(), '\\').unwrap();
        assert_eq!(words, ["xfooyz", "abc"]);
    }

    #[test]
    fn words_drop_empty_quoted_words() {
        // BuildKit's ProcessWords yields no word for a lone "" (unlike a shell).
        assert_eq!(expand_words(r#"a "" b"#, &env(), '\\').unwrap(), ["a", "b"]);
    }

    #[test]
    fn words_of_empty_text() {
        assert!(expand_words("   ", &env(), '\\').unwrap().is_empty());
    }

    #[test]
    fn skip_unset_keeps_references_as_written() {
        let options = Options { skip_unset: true, ..Options::default() };
        let (out, _) = process("$A ${B} ${C:-x} ${D//a/b} $FOO", &env(), '\\', options).unwrap();
        assert_eq!(out, "$A ${B} ${C:-x} ${D//a/b} foo");
    }

    #[test]
    fn raw_quotes_and_escapes_are_kept() {
        let options = Options { raw_quotes: true, raw_escapes: true, skip_unset: true };
        let (_, words) = process(r#"COPY <<'EOF' "a b" \x"#, &env(), '\\', options).unwrap();
        assert_eq!(words, ["COPY", "<<'EOF'", r#""a b""#, r"\x"]);
    }
}
