//! The line-level parser, following BuildKit's `parser.Parse`: byte-order mark, CRLF, parser
//! directives, comment lines, continuation lines (the escape character at the end of a line; comment
//! and blank lines inside a continuation are dropped), and here-document bodies after RUN, COPY and
//! ADD. Each joined line goes to [`super::args`] to become an [`Instruction`].

use std::iter::Zip;
use std::ops::RangeFrom;
use std::str::SplitInclusive;

use super::args;
use super::ast::{Args, Dockerfile, Heredoc, Instruction, ParseError, ParseErrorKind, Warning};
use super::directives::Directives;
use super::heredoc;

/// Parses a Dockerfile. Errors carry the 1-based line they concern.
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut lines = Lines::new(src);
    let mut directives = Directives::default();
    let mut instructions = Vec::new();
    let mut warnings = Vec::new();

    while let Some((raw, number)) = lines.next() {
        let token = trim_newline(raw).trim_start();
        directives.observe(token, number)?;
        let escape = directives.escape;
        let body = if token.starts_with('#') { "" } else { token };
        let (first, continues) = trim_continuation(body, escape);
        if !continues && first.is_empty() {
            continue;
        }
        let (line, had_empty_lines) =
            if continues { join_continuation(&mut lines, first, escape) } else { (first.to_string(), false) };
        if had_empty_lines {
            warnings.push(Warning { line: number, message: format!("empty continuation line found in: {line}") });
        }
        let mut instruction =
            args::instruction(&line, escape).map_err(|(kind, message)| ParseError::new(number, kind, message))?;
        if can_contain_heredoc(&instruction) {
            instruction.heredocs = read_heredocs(&mut lines, &line, number)?;
        }
        set_lines(&mut instruction, number, lines.last);
        instructions.push(instruction);
    }

    if instructions.is_empty() {
        return Err(ParseError::new(lines.last.max(1), ParseErrorKind::NoInstructions, "file with no instructions"));
    }
    Ok(Dockerfile {
        escape: directives.escape,
        syntax: directives.found.iter().find(|d| d.name == "syntax").map(|d| d.value.clone()),
        directives: directives.found,
        instructions,
        warnings,
    })
}

/// The source's lines, line endings kept, with their 1-based numbers; remembers the last number
/// handed out.
struct Lines<'a> {
    inner: Zip<SplitInclusive<'a, char>, RangeFrom<usize>>,
    last: usize,
}

impl<'a> Lines<'a> {
    fn new(src: &'a str) -> Lines<'a> {
        Lines { inner: src.split_inclusive('\n').zip(1..), last: 0 }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (&'a str, usize);

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        self.last = item.1;
        Some(item)
    }
}

/// Appends continuation lines to `first` until a line does not continue (or the file ends).
/// Comment lines and blank lines in between are skipped; the flag says whether blank ones were.
fn join_continuation(lines: &mut Lines, first: &str, escape: char) -> (String, bool) {
    let mut line = first.to_string();
    let mut had_empty_lines = false;
    for (raw, _) in lines.by_ref() {
        let text = trim_newline(raw);
        if is_comment(text) {
            continue;
        }
        if text.trim_start().is_empty() {
            had_empty_lines = true;
            continue;
        }
        let (part, continues) = trim_continuation(text, escape);
        line.push_str(part);
        if !continues {
            break;
        }
    }
    (line, had_empty_lines)
}

/// The here-documents `line` announces, bodies read from the following lines in order.
fn read_heredocs(lines: &mut Lines, line: &str, number: usize) -> Result<Vec<Heredoc>, ParseError> {
    let mut docs = heredoc::markers_in_line(line)
        .map_err(|e| ParseError::new(number, ParseErrorKind::InvalidHeredoc, e.to_string()))?;
    for doc in &mut docs {
        if !read_body(lines, doc) {
            return Err(ParseError::new(number, ParseErrorKind::UnterminatedHeredoc, "unterminated heredoc"));
        }
    }
    Ok(docs)
}

/// Reads one here-document body up to its terminator line; false if the file ends first.
fn read_body(lines: &mut Lines, doc: &mut Heredoc) -> bool {
    for (raw, _) in lines.by_ref() {
        let candidate = trim_newline(raw);
        let candidate = if doc.chomp_tabs { candidate.trim_start_matches('\t') } else { candidate };
        if candidate == doc.name {
            if doc.chomp_tabs {
                doc.content = heredoc::chomp_tabs(&doc.content);
            }
            return true;
        }
        doc.content.push_str(raw);
    }
    false
}

/// Both ends of an instruction and of its ONBUILD trigger.
fn set_lines(instruction: &mut Instruction, line: usize, end_line: usize) {
    instruction.line = line;
    instruction.end_line = end_line;
    if let Args::Onbuild(inner) = &mut instruction.args {
        set_lines(inner, line, end_line);
    }
}

/// RUN, COPY and ADD in shell form may have here-documents, directly or as an ONBUILD trigger.
fn can_contain_heredoc(instruction: &Instruction) -> bool {
    let target = match &instruction.args {
        Args::Onbuild(inner) if instruction.keyword == "onbuild" => inner,
        _ => instruction,
    };
    matches!(target.keyword.as_str(), "run" | "copy" | "add") && !matches!(target.args, Args::Json(_))
}

/// Drops the line ending (every trailing `\r` and `\n`).
fn trim_newline(raw: &str) -> &str {
    raw.trim_end_matches(['\r', '\n'])
}

/// A comment line: `#` is its first non-whitespace character.
fn is_comment(text: &str) -> bool {
    text.trim_start().starts_with('#')
}

/// If `line` ends with the escape character (then optional spaces/tabs), not itself escaped,
/// returns the line without it and `true` (the instruction continues on the next line).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(before) = trimmed.strip_suffix(escape) {
        if !before.ends_with(escape) {
            return (before, true);
        }
    }
    (line, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_marker_removed() {
        assert_eq!(trim_continuation("RUN a \\", '\\'), ("RUN a ", true));
        assert_eq!(trim_continuation("RUN a\\ \t", '\\'), ("RUN a", true));
        assert_eq!(trim_continuation("\\", '\\'), ("", true));
    }

    #[test]
    fn escaped_escape_does_not_continue() {
        assert_eq!(trim_continuation("ENV C a\\\\", '\\'), ("ENV C a\\\\", false));
    }

    #[test]
    fn continuation_uses_the_escape_character() {
        assert_eq!(trim_continuation("RUN a `", '`'), ("RUN a ", true));
        assert_eq!(trim_continuation("RUN C:\\", '`'), ("RUN C:\\", false));
    }

    #[test]
    fn newline_trimming_handles_crlf() {
        assert_eq!(trim_newline("FROM a\r\n"), "FROM a");
        assert_eq!(trim_newline("FROM a"), "FROM a");
    }

    #[test]
    fn comment_detection_ignores_leading_whitespace() {
        assert!(is_comment("  \t# x"));
        assert!(!is_comment("RUN # x"));
    }
}
