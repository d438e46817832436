//! Turning one joined instruction line into an [`Instruction`]: splitting off the keyword and the
//! `--flags`, then the per-instruction argument rules of BuildKit's `line_parsers.go` (JSON or
//! shell form, whitespace-separated words, ENV/LABEL/ARG pairs, HEALTHCHECK, ONBUILD). No line
//! handling here: continuations, comments and here-documents are [`super::parser`]'s.

use super::ast::{Args, Flag, Instruction, KeyValue, ParseErrorKind};

/// A rule violation with its message; the parser adds the line.
pub(crate) type ArgError = (ParseErrorKind, String);

/// Whitespace as BuildKit's `[\t\v\f\r ]+` separator regex sees it.
fn is_separator(ch: char) -> bool {
    matches!(ch, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// Builds the instruction for one joined line. `line`/`end_line` are filled in by the caller.
pub(crate) fn instruction(line: &str, escape: char) -> Result<Instruction, ArgError> {
    let (keyword, flags, rest) = split_command(line);
    let args = match keyword.as_str() {
        "add" | "copy" | "volume" => maybe_json_to_list(rest)?,
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest)?,
        "env" => name_values(rest, "ENV", escape)?,
        "label" => name_values(rest, "LABEL", escape)?,
        "arg" => names_or_name_values(rest, escape),
        "expose" | "from" => whitespace_words(rest),
        "healthcheck" => health_config(rest)?,
        "onbuild" if rest.is_empty() => Args::None,
        "onbuild" => Args::Onbuild(Box::new(instruction(rest, escape)?)),
        _ if rest.is_empty() => Args::None,
        // MAINTAINER, STOPSIGNAL, USER, WORKDIR, and instructions this parser does not know.
        _ => Args::Text(rest.to_string()),
    };
    Ok(Instruction {
        keyword,
        flags: flags.iter().map(|f| parse_flag(f)).collect(),
        args,
        heredocs: Vec::new(),
        line: 0,
        end_line: 0,
        original: line.to_string(),
    })
}

/// `--name=value` → `Flag { name, Some(value) }`; `--name` → `Flag { name, None }`.
fn parse_flag(word: &str) -> Flag {
    let word = word.strip_prefix("--").unwrap_or(word);
    match word.split_once('=') {
        Some((name, value)) => Flag { name: name.to_string(), value: Some(value.to_string()) },
        None => Flag { name: word.to_string(), value: None },
    }
}

/// Keyword (lowercased), flag words, and the trimmed rest of the line.
pub(crate) fn split_command(line: &str) -> (String, Vec<String>, &str) {
    let line = line.trim();
    let Some(split) = line.find(is_separator) else {
        return (line.to_lowercase(), Vec::new(), "");
    };
    let keyword = line[..split].to_lowercase();
    let after = line[split..].trim_start_matches(is_separator);
    let (rest, flags) = extract_flags(after);
    (keyword, flags, rest.trim())
}

/// Reads leading `--flag[=value]` words (quotes and `\` escapes processed) up to the first word
/// not starting with `--`, or past a lone `--`. Returns the rest of the line and the flags.
pub(crate) fn extract_flags(line: &str) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut flags = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut chars = line.char_indices().peekable();
    while let Some((pos, ch)) = chars.next() {
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            if !line[pos..].starts_with("--") {
                return (&line[pos..], flags);
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word if ch.is_whitespace() => {
                if word == "--" {
                    return (&line[pos..], flags);
                }
                if blank_ok || !word.is_empty() {
                    flags.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                phase = Phase::Spaces;
            }
            Phase::Word if ch == '\'' || ch == '"' => {
                blank_ok = true;
                phase = Phase::Quote(ch);
            }
            Phase::Quote(quote) if ch == quote => phase = Phase::Word,
            Phase::Word | Phase::Quote(_) => {
                if ch == '\\' {
                    match chars.next() {
                        Some((_, escaped)) => word.push(escaped),
                        // A trailing `\` is dropped.
                        None => break,
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Spaces => unreachable!("handled above"),
        }
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        flags.push(word);
    }
    ("", flags)
}

/// Words separated by whitespace, quotes and escapes kept in the words (BuildKit's parseWords):
/// a quoted section may contain whitespace; the escape character keeps the next character in the
/// word; an escape at the very end is dropped.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        let at_end = chars.peek().is_none();
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            if ch == escape && q != '\'' {
                if at_end {
                    quote = None;
                    continue;
                }
                word.push(ch);
                word.extend(chars.next());
                continue;
            }
            word.push(ch);
            continue;
        }
        if ch.is_whitespace() {
            if in_word && (blank_ok || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        in_word = true;
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            if at_end {
                continue;
            }
            word.push(ch);
            word.extend(chars.next());
            continue;
        }
        word.push(ch);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// `Ok(Some)` for a JSON array of strings, `Ok(None)` for anything that is not valid JSON array
/// syntax (the caller falls back), `Err` for a valid array holding non-strings.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, ArgError> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::String(s) => Ok(s),
            _ => Err((
                ParseErrorKind::NotStringArray,
                "when using JSON array syntax, arrays must be comprised of strings only".to_string(),
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// CMD, ENTRYPOINT, RUN, SHELL: exec form if the rest is a JSON string array, else shell form.
fn maybe_json(rest: &str) -> Result<Args, ArgError> {
    if rest.is_empty() {
        return Ok(Args::None);
    }
    Ok(match parse_json(rest)? {
        Some(list) => Args::Json(list),
        None => Args::Shell(rest.to_string()),
    })
}

/// COPY, ADD, VOLUME: exec form if JSON, else whitespace-separated words.
fn maybe_json_to_list(rest: &str) -> Result<Args, ArgError> {
    Ok(match parse_json(rest)? {
        Some(list) => Args::Json(list),
        None => whitespace_words(rest),
    })
}

/// FROM, EXPOSE (and the non-JSON COPY/ADD/VOLUME): split on whitespace, quotes not special.
fn whitespace_words(rest: &str) -> Args {
    if rest.is_empty() {
        return Args::None;
    }
    Args::Words(rest.split(is_separator).filter(|w| !w.is_empty()).map(str::to_string).collect())
}

/// ENV and LABEL: `k=v k2="v 2"`, or the legacy `k the rest of the line`.
fn name_values(rest: &str, keyword: &str, escape: char) -> Result<Args, ArgError> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Args::None);
    };
    if !first.contains('=') {
        let Some((key, value)) = rest.split_once(is_separator) else {
            return Err((ParseErrorKind::MissingValue, format!("{keyword} must have two arguments")));
        };
        let value = value.trim_start_matches(is_separator);
        return Ok(Args::KeyValues(vec![KeyValue {
            key: key.to_string(),
            value: Some(value.to_string()),
            legacy: true,
        }]));
    }
    words
        .iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) => Ok(KeyValue { key: key.to_string(), value: Some(value.to_string()), legacy: false }),
            None => Err((
                ParseErrorKind::MissingEquals,
                format!("Syntax error - can't find = in {word:?}. Must be of the form: name=value"),
            )),
        })
        .collect::<Result<_, _>>()
        .map(Args::KeyValues)
}

/// ARG: `name`, `name=default`, several per line.
fn names_or_name_values(rest: &str, escape: char) -> Args {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Args::None;
    }
    Args::KeyValues(
        words
            .into_iter()
            .map(|word| match word.split_once('=') {
                Some((key, value)) => KeyValue { key: key.to_string(), value: Some(value.to_string()), legacy: false },
                None => KeyValue { key: word, value: None, legacy: false },
            })
            .collect(),
    )
}

/// HEALTHCHECK: a kind word (`CMD`, `NONE`, …), then the command in JSON or shell form.
fn health_config(rest: &str) -> Result<Args, ArgError> {
    if rest.is_empty() {
        return Ok(Args::None);
    }
    let (kind, command) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    Ok(Args::Healthcheck { kind: kind.to_string(), command: Box::new(maybe_json(command.trim_start())?) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Args {
        instruction(line, '\\').unwrap_or_else(|e| panic!("{line:?}: {e:?}")).args
    }

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn kv(key: &str, value: Option<&str>, legacy: bool) -> KeyValue {
        KeyValue { key: key.into(), value: value.map(str::to_string), legacy }
    }

    #[test]
    fn keyword_is_lowercased_and_args_trimmed() {
        let (keyword, flags, rest) = split_command("  CoPy \t a b  ");
        assert_eq!((keyword.as_str(), flags.len(), rest), ("copy", 0, "a b"));
    }

    #[test]
    fn flags_stop_at_first_non_flag_word() {
        let (rest, flags) = extract_flags("--from=build --link src --chown=1 dst");
        assert_eq!(flags, ["--from=build", "--link"]);
        assert_eq!(rest, "src --chown=1 dst");
    }

    #[test]
    fn double_dash_ends_flags() {
        let (rest, flags) = extract_flags("--doit=true -- --notaflag /tmp/");
        assert_eq!(flags, ["--doit=true"]);
        assert_eq!(rest.trim(), "--notaflag /tmp/");
    }

    #[test]
    fn flag_values_lose_quotes_and_escapes() {
        let (_, flags) = extract_flags(r#"--a="x y" --b='z' --c=\"q x"#);
        assert_eq!(flags, ["--a=x y", "--b=z", "--c=\"q"]);
    }

    #[test]
    fn single_dash_is_not_a_flag() {
        let (rest, flags) = extract_flags("-x foo");
        assert!(flags.is_empty());
        assert_eq!(rest, "-x foo");
    }

    #[test]
    fn only_flags_leave_no_args() {
        let i = instruction("CMD --doit -- [ ]", '\\').unwrap();
        assert_eq!(i.flags, [Flag { name: "doit".into(), value: None }]);
        assert_eq!(i.args, Args::Json(vec![]));
        assert_eq!(instruction("COPY --from=x", '\\').unwrap().args, Args::None);
    }

    #[test]
    fn json_form_for_exec_instructions() {
        assert_eq!(args(r#"CMD ["a", "b c"]"#), Args::Json(words(&["a", "b c"])));
        assert_eq!(args("ENTRYPOINT []"), Args::Json(vec![]));
    }

    #[test]
    fn invalid_json_falls_back_to_shell_form() {
        for line in [r#"CMD ['a']"#, r#"CMD ["a""#, r#"CMD ["a"] extra"#, r#"CMD [a]"#, r#"RUN [ "a", ]"#] {
            let rest = split_command(line).2.to_string();
            assert_eq!(args(line), Args::Shell(rest), "{line}");
        }
    }

    #[test]
    fn json_with_non_strings_is_an_error() {
        for line in [r#"CMD ["a", ["b"]]"#, r#"CMD [1]"#, r#"COPY ["a", null]"#] {
            let err = instruction(line, '\\').unwrap_err();
            assert_eq!(err.0, ParseErrorKind::NotStringArray, "{line}");
        }
    }

    #[test]
    fn json_escapes_are_decoded() {
        assert_eq!(args(r#"CMD ["\u0041\/\"\\"]"#), Args::Json(words(&["A/\"\\"])));
    }

    #[test]
    fn copy_shell_form_is_whitespace_words_with_quotes_kept() {
        assert_eq!(args(r#"COPY "a b" /x"#), Args::Words(words(&["\"a", "b\"", "/x"])));
    }

    #[test]
    fn env_pairs_keep_quotes_and_escapes() {
        assert_eq!(
            args(r#"ENV a=1 b="x y" c=x\ y d='q\'"#),
            Args::KeyValues(vec![
                kv("a", Some("1"), false),
                kv("b", Some("\"x y\""), false),
                kv("c", Some("x\\ y"), false),
                kv("d", Some("'q\\'"), false),
            ])
        );
    }

    #[test]
    fn env_legacy_form_takes_the_rest_of_the_line() {
        assert_eq!(args("ENV PATH  /a b  c"), Args::KeyValues(vec![kv("PATH", Some("/a b  c"), true)]));
    }

    #[test]
    fn env_without_value_is_an_error() {
        let err = instruction("ENV PATH", '\\').unwrap_err();
        assert_eq!(err, (ParseErrorKind::MissingValue, "ENV must have two arguments".to_string()));
        assert_eq!(instruction("LABEL x", '\\').unwrap_err().1, "LABEL must have two arguments");
    }

    #[test]
    fn env_pair_form_requires_equals_everywhere() {
        let err = instruction("ENV a=1 b", '\\').unwrap_err();
        assert_eq!(err.0, ParseErrorKind::MissingEquals);
        assert!(err.1.contains(r#""b""#), "{}", err.1);
    }

    #[test]
    fn empty_value_is_allowed() {
        assert_eq!(args("ENV a="), Args::KeyValues(vec![kv("a", Some(""), false)]));
    }

    #[test]
    fn arg_names_and_defaults() {
        assert_eq!(
            args(r#"ARG a b=2 c="x y" d="#),
            Args::KeyValues(vec![
                kv("a", None, false),
                kv("b", Some("2"), false),
                kv("c", Some("\"x y\""), false),
                kv("d", Some(""), false),
            ])
        );
    }

    #[test]
    fn parse_words_trailing_escape_dropped() {
        assert_eq!(parse_words("a=b\\", '\\'), ["a=b"]);
        assert_eq!(parse_words("a=\"b\\", '\\'), ["a=\"b"]);
    }

    #[test]
    fn parse_words_blank_quoted_word_kept() {
        assert_eq!(parse_words("a '' b", '\\'), ["a", "''", "b"]);
    }

    #[test]
    fn parse_words_backtick_escape() {
        assert_eq!(parse_words("a=x` y b", '`'), ["a=x` y", "b"]);
        assert_eq!(parse_words("a=x\\ y", '`'), ["a=x\\", "y"]);
    }

    #[test]
    fn from_and_expose_are_words() {
        assert_eq!(args("FROM a AS b"), Args::Words(words(&["a", "AS", "b"])));
        assert_eq!(args("EXPOSE 80/tcp\t443"), Args::Words(words(&["80/tcp", "443"])));
    }

    #[test]
    fn string_instructions_keep_the_rest_verbatim() {
        assert_eq!(args("WORKDIR /a b"), Args::Text("/a b".into()));
        assert_eq!(args("USER a:b"), Args::Text("a:b".into()));
    }

    #[test]
    fn unknown_instruction_is_kept_with_raw_args() {
        let i = instruction("FROBNICATE --x=1 a  b", '\\').unwrap();
        assert_eq!(i.keyword, "frobnicate");
        assert_eq!(i.args, Args::Text("a  b".into()));
    }

    #[test]
    fn healthcheck_kinds() {
        assert_eq!(args("HEALTHCHECK"), Args::None);
        assert_eq!(args("HEALTHCHECK NONE"), Args::Healthcheck { kind: "NONE".into(), command: Box::new(Args::None) });
        assert_eq!(
            args("HEALTHCHECK --interval=5s CMD  curl -f x"),
            Args::Healthcheck { kind: "CMD".into(), command: Box::new(Args::Shell("curl -f x".into())) }
        );
        assert_eq!(
            args(r#"HEALTHCHECK CMD ["a"]"#),
            Args::Healthcheck { kind: "CMD".into(), command: Box::new(Args::Json(words(&["a"]))) }
        );
    }

    #[test]
    fn onbuild_parses_its_trigger() {
        let Args::Onbuild(inner) = args("ONBUILD COPY --from=x a b") else { panic!() };
        assert_eq!(inner.keyword, "copy");
        assert_eq!(inner.flags, [Flag { name: "from".into(), value: Some("x".into()) }]);
        assert_eq!(inner.args, Args::Words(words(&["a", "b"])));
        assert_eq!(inner.original, "COPY --from=x a b");
    }

    #[test]
    fn onbuild_trigger_errors_propagate() {
        assert_eq!(instruction("ONBUILD ENV X", '\\').unwrap_err().0, ParseErrorKind::MissingValue);
    }
}
