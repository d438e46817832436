//! Printing an [`Instruction`] the way BuildKit's `Node.Dump` does — the s-expressions of its
//! parser test corpus (`(env "k" "v" "=")`, `(copy ["--from=a"] "x" "/y")`) — so the conformance
//! test can compare whole parses, not just instruction names. Strings are quoted as Go's
//! `strconv.Quote` quotes them.

use std::fmt::Write;

use super::ast::{Args, Instruction};

/// `(keyword ["--flag"…] "arg"…)`.
pub(crate) fn instruction(instruction: &Instruction) -> String {
    format!("({})", body(instruction))
}

fn body(instruction: &Instruction) -> String {
    let mut out = instruction.keyword.clone();
    if !instruction.flags.is_empty() {
        let flags: Vec<String> = instruction.flags.iter().map(|f| go_quote(&f.to_arg())).collect();
        write!(out, " [{}]", flags.join(" ")).expect("writing to a String");
    }
    push_args(&mut out, &instruction.keyword, &instruction.args);
    out.trim().to_string()
}

fn push_args(out: &mut String, keyword: &str, args: &Args) {
    let mut push = |s: &str| {
        out.push(' ');
        out.push_str(&go_quote(s));
    };
    match args {
        Args::None => {}
        Args::Json(items) | Args::Words(items) => items.iter().for_each(|s| push(s)),
        Args::Shell(s) | Args::Text(s) => push(s),
        Args::KeyValues(pairs) if keyword == "arg" => {
            for pair in pairs {
                match &pair.value {
                    Some(value) => push(&format!("{}={value}", pair.key)),
                    None => push(&pair.key),
                }
            }
        }
        Args::KeyValues(pairs) => {
            for pair in pairs {
                push(&pair.key);
                push(pair.value.as_deref().unwrap_or_default());
                push(if pair.legacy { "" } else { "=" });
            }
        }
        Args::Healthcheck { kind, command } => {
            push(kind);
            push_args(out, keyword, command);
        }
        Args::Onbuild(inner) => {
            out.push(' ');
            out.push_str(&instruction(inner));
        }
    }
}

/// Go's `strconv.Quote`: printable characters as they are, the usual backslash escapes, `\xNN`
/// for other ASCII, `\uNNNN` / `\UNNNNNNNN` for other non-printable characters.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32).expect("writing to a String"),
            c if (c as u32) < 0x10000 => write!(out, "\\u{:04x}", c as u32).expect("writing to a String"),
            c => write!(out, "\\U{:08x}", c as u32).expect("writing to a String"),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` (letters, marks, numbers, punctuation, symbols and
/// the ASCII space): exact for ASCII; outside it, controls, format characters, separators and
/// private-use characters are non-printable.
fn is_go_printable(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{180e}')
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}')
        || matches!(c, '\u{e000}'..='\u{f8ff}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
        || matches!(c, '\u{f0000}'..='\u{10ffff}'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::dockerfile::ast::{Flag, KeyValue};

    fn instr(keyword: &str, flags: Vec<Flag>, args: Args) -> Instruction {
        Instruction {
            keyword: keyword.into(),
            flags,
            args,
            heredocs: vec![],
            line: 1,
            end_line: 1,
            original: String::new(),
        }
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote("a\"b\\c\n\t\u{0}\u{7f}"), r#""a\"b\\c\n\t\x00\x7f""#);
    }

    #[test]
    fn go_quote_keeps_printable_unicode() {
        assert_eq!(go_quote("♥☃é"), "\"♥☃é\"");
        assert_eq!(go_quote("\u{a0}\u{200b}"), r#""\u00a0\u200b""#);
    }

    #[test]
    fn dumps_flags_like_go_percent_q() {
        let flags =
            vec![Flag { name: "from".into(), value: Some("a".into()) }, Flag { name: "link".into(), value: None }];
        let i = instr("copy", flags, Args::Words(vec!["x".into(), "/y".into()]));
        assert_eq!(instruction(&i), r#"(copy ["--from=a" "--link"] "x" "/y")"#);
    }

    #[test]
    fn dumps_env_triples_and_arg_words() {
        let pairs = vec![KeyValue { key: "k".into(), value: Some("v".into()), legacy: false }];
        assert_eq!(instruction(&instr("env", vec![], Args::KeyValues(pairs.clone()))), r#"(env "k" "v" "=")"#);
        let mut arg = pairs;
        arg.push(KeyValue { key: "n".into(), value: None, legacy: false });
        assert_eq!(instruction(&instr("arg", vec![], Args::KeyValues(arg))), r#"(arg "k=v" "n")"#);
    }

    #[test]
    fn dumps_empty_args_without_trailing_space() {
        assert_eq!(instruction(&instr("cmd", vec![], Args::Json(vec![]))), "(cmd)");
        assert_eq!(instruction(&instr("healthcheck", vec![], Args::None)), "(healthcheck)");
    }

    #[test]
    fn dumps_onbuild_nested() {
        let inner = instr("run", vec![], Args::Shell("echo hi".into()));
        let outer = instr("onbuild", vec![], Args::Onbuild(Box::new(inner)));
        assert_eq!(instruction(&outer), r#"(onbuild (run "echo hi"))"#);
    }
}
