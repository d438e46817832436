//! Parser directives: `# escape=`, `# syntax=` and `# check=` lines at the very top of a
//! Dockerfile. As in BuildKit, they are recognised only until the first line that is not one — an
//! instruction, an ordinary comment or an empty line — names are case-insensitive, each may appear
//! once, and the escape character must be `\` or `` ` ``.

use super::ast::{Directive, ParseError, ParseErrorKind};

const KNOWN: [&str; 3] = ["escape", "syntax", "check"];

/// Watches the first lines of a file for directives.
#[derive(Debug)]
pub(crate) struct Directives {
    pub escape: char,
    pub found: Vec<Directive>,
    done: bool,
}

impl Default for Directives {
    fn default() -> Self {
        Directives { escape: '\\', found: Vec::new(), done: false }
    }
}

impl Directives {
    /// Looks at one line (newline and leading whitespace already removed). After the first line
    /// that is not a directive, does nothing.
    pub fn observe(&mut self, line: &str, number: usize) -> Result<(), ParseError> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = split_directive(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            self.done = true;
            return Ok(());
        }
        if self.found.iter().any(|d| d.name == name) {
            return Err(ParseError::new(
                number,
                ParseErrorKind::DuplicateDirective,
                format!("only one {name} parser directive can be used"),
            ));
        }
        if name == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(ParseError::new(
                        number,
                        ParseErrorKind::InvalidDirective,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                    ))
                }
            };
        }
        self.found.push(Directive { name, value: value.to_string(), line: number });
        Ok(())
    }
}

/// Go's `\s`: the whitespace BuildKit's directive regex skips.
fn is_go_space(ch: char) -> bool {
    matches!(ch, ' ' | '\t' | '\n' | '\u{0c}' | '\r')
}

/// `#\s*name\s*=\s*value\s*` with `name` = `[a-zA-Z][a-zA-Z0-9]*` and a non-empty value.
fn split_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_go_space);
    let name_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let name = &rest[..name_len];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let after = rest[name_len..].trim_start_matches(is_go_space).strip_prefix('=')?;
    let trimmed = after.trim_matches(is_go_space);
    if !trimmed.is_empty() {
        return Some((name, trimmed));
    }
    // The regex's lazy `.+?` still takes one character: all-whitespace values keep the last one.
    let last = after.char_indices().last()?.0;
    Some((name, &after[last..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe_all(lines: &[&str]) -> Result<Directives, ParseError> {
        let mut d = Directives::default();
        for (i, line) in lines.iter().enumerate() {
            d.observe(line, i + 1)?;
        }
        Ok(d)
    }

    #[test]
    fn splits_name_and_value() {
        assert_eq!(split_directive("#escape=`"), Some(("escape", "`")));
        assert_eq!(split_directive("#  syntax = docker/dockerfile:1  "), Some(("syntax", "docker/dockerfile:1")));
        assert_eq!(split_directive("# check=skip=all"), Some(("check", "skip=all")));
    }

    #[test]
    fn not_directives() {
        for line in ["", "FROM x", "# hello", "# escape", "# esc ape=x", "# 1x=y", "# x=", "#=x"] {
            assert_eq!(split_directive(line), None, "{line:?}");
        }
    }

    #[test]
    fn escape_and_syntax_are_recorded() {
        let d = observe_all(&["# ESCAPE=`", "# syntax=docker/dockerfile:1"]).unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.found.len(), 2);
        assert_eq!(d.found[1], Directive { name: "syntax".into(), value: "docker/dockerfile:1".into(), line: 2 });
    }

    #[test]
    fn directives_end_at_first_other_line() {
        let d = observe_all(&["# comment", "# escape=`"]).unwrap();
        assert_eq!(d.escape, '\\');
        let d = observe_all(&["", "# escape=`"]).unwrap();
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn unknown_directive_ends_directives_without_error() {
        let d = observe_all(&["# foo=bar", "# escape=`"]).unwrap();
        assert_eq!(d.escape, '\\');
        assert!(d.found.is_empty());
    }

    #[test]
    fn invalid_escape_value_is_an_error() {
        let err = observe_all(&["# syntax=x", "# escape=x"]).unwrap_err();
        assert_eq!((err.line, err.kind), (2, ParseErrorKind::InvalidDirective));
        assert_eq!(err.message, "invalid escape token 'x' does not match ` or \\");
    }

    #[test]
    fn duplicate_directive_is_an_error() {
        let err = observe_all(&["# escape=`", "# Escape=\\"]).unwrap_err();
        assert_eq!((err.line, err.kind), (2, ParseErrorKind::DuplicateDirective));
        assert_eq!(err.message, "only one escape parser directive can be used");
    }
}
