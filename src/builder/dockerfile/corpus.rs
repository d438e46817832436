//! A corpus of tricky Dockerfiles, each pinning one behaviour of [`super::parse`] end to end:
//! continuations with comments and blank lines inside, the backtick escape of Windows-style files,
//! CRLF and byte-order marks, directives, quoting, JSON-versus-shell fallback, here-documents,
//! ONBUILD, errors and their line numbers, and expansion of parsed values.

use std::collections::HashMap;

use super::*;

fn parse_ok(src: &str) -> Dockerfile {
    parse(src).unwrap_or_else(|e| panic!("{e}\n---\n{src}"))
}

fn dumps(src: &str) -> Vec<String> {
    parse_ok(src).instructions.iter().map(Instruction::dump).collect()
}

fn only(src: &str) -> Instruction {
    let mut parsed = parse_ok(src);
    assert_eq!(parsed.instructions.len(), 1, "{:#?}", parsed.instructions);
    parsed.instructions.remove(0)
}

fn error(src: &str) -> ParseError {
    parse(src).expect_err(src)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn comments_between_continuation_lines_are_dropped() {
    let src = "RUN apt-get update \\\n    # install things\n    && apt-get install -y x \\\n  # more\n    && rm -rf /var/lib/apt\n";
    let i = only(src);
    assert_eq!(i.args, Args::Shell("apt-get update     && apt-get install -y x     && rm -rf /var/lib/apt".into()));
    assert_eq!((i.line, i.end_line), (1, 5));
}

#[test]
fn empty_continuation_lines_are_dropped_with_a_warning() {
    let parsed = parse_ok("FROM a\nRUN a \\\n\n   \nb\n");
    assert_eq!(parsed.instructions[1].args, Args::Shell("a b".into()));
    assert_eq!(parsed.warnings.len(), 1);
    assert_eq!(parsed.warnings[0].line, 2);
}

#[test]
fn continuation_at_end_of_file() {
    assert_eq!(dumps("FROM a\nRUN something \\"), ["(from \"a\")", "(run \"something\")"]);
}

#[test]
fn continuation_line_keeps_its_indentation() {
    assert_eq!(only("RUN echo hello\\\n  world\n").args, Args::Shell("echo hello  world".into()));
}

#[test]
fn comment_ending_in_escape_does_not_continue() {
    assert_eq!(dumps("# comment \\\nFROM a\n"), ["(from \"a\")"]);
}

#[test]
fn indented_comment_lines() {
    assert_eq!(dumps("   # indented comment\nFROM a\n\t# tab comment\nUSER me\n"), ["(from \"a\")", "(user \"me\")"]);
}

#[test]
fn hash_inside_an_instruction_is_not_a_comment() {
    assert_eq!(only("RUN echo # not a comment\n").args, Args::Shell("echo # not a comment".into()));
}

#[test]
fn windows_style_file_with_backtick_escape() {
    let src = "# escape=`\r\n\r\nFROM mcr.microsoft.com/windows/servercore\r\nCOPY testfile.txt c:\\\r\nRUN dir c:\\ `\r\n    && echo done\r\nWORKDIR C:\\app\\\r\n";
    let parsed = parse_ok(src);
    assert_eq!(parsed.escape, '`');
    assert_eq!(
        parsed.instructions.iter().map(Instruction::dump).collect::<Vec<_>>(),
        [
            r#"(from "mcr.microsoft.com/windows/servercore")"#,
            r#"(copy "testfile.txt" "c:\\")"#,
            r#"(run "dir c:\\     && echo done")"#,
            r#"(workdir "C:\\app\\")"#,
        ]
    );
}

#[test]
fn backtick_escape_in_env_words() {
    let i = only("# escape=`\nENV a=x` y b=\"q`\"r\"\n");
    let Args::KeyValues(pairs) = &i.args else { panic!("{:?}", i.args) };
    assert_eq!(pairs[0].value.as_deref(), Some("x` y"));
    assert_eq!(pairs[1].value.as_deref(), Some("\"q`\"r\""));
    let env = HashMap::<String, String>::new();
    assert_eq!(expand_word(pairs[0].value.as_deref().unwrap(), &env, '`').unwrap(), "x y");
    assert_eq!(expand_word(pairs[1].value.as_deref().unwrap(), &env, '`').unwrap(), "q\"r");
}

#[test]
fn crlf_line_endings() {
    let parsed = parse_ok("FROM a\r\nRUN x \\\r\n  y\r\nCMD [\"b\"]\r\n");
    assert_eq!(parsed.dump(), "(from \"a\")\n(run \"x   y\")\n(cmd \"b\")\n");
}

#[test]
fn byte_order_mark_is_ignored() {
    let parsed = parse_ok("\u{feff}# escape=`\nFROM a\n");
    assert_eq!(parsed.escape, '`');
    assert_eq!(parsed.instructions[0].keyword, "from");
}

#[test]
fn directives_are_recorded() {
    let parsed = parse_ok("# syntax=docker/dockerfile:1.7\n#ESCAPE = `\n# check=skip=all\nFROM a\n");
    assert_eq!(parsed.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert_eq!(parsed.escape, '`');
    let names: Vec<&str> = parsed.directives.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["syntax", "escape", "check"]);
}

#[test]
fn directive_after_a_comment_is_a_comment() {
    let parsed = parse_ok("# hello\n# escape=`\nFROM a\nRUN b `\n");
    assert_eq!(parsed.escape, '\\');
    assert!(parsed.syntax.is_none());
    assert_eq!(parsed.instructions[1].args, Args::Shell("b `".into()));
}

#[test]
fn directive_after_an_instruction_is_a_comment() {
    let parsed = parse_ok("FROM a\n# escape=`\n");
    assert_eq!(parsed.escape, '\\');
}

#[test]
fn invalid_escape_directive_is_an_error_at_its_line() {
    let e = error("# syntax=x\n# escape=|\nFROM a\n");
    assert_eq!((e.line, e.kind), (2, ParseErrorKind::InvalidDirective));
    assert_eq!(e.to_string(), "line 2: invalid escape token '|' does not match ` or \\");
}

#[test]
fn repeated_directive_is_an_error() {
    assert_eq!(error("# syntax=a\n# syntax=b\nFROM a\n").kind, ParseErrorKind::DuplicateDirective);
}

#[test]
fn empty_and_comment_only_files_are_rejected() {
    for src in ["", "\n\n", "# just a comment\n", "# syntax=docker/dockerfile:1\n"] {
        let e = error(src);
        assert_eq!(e.kind, ParseErrorKind::NoInstructions, "{src:?}");
        assert!(e.line >= 1);
    }
}

#[test]
fn lone_continuation_is_an_instruction_without_keyword() {
    // As in BuildKit, whose parser accepts it; refusing the empty keyword is a build-time decision.
    let i = only("   \\\n");
    assert_eq!((i.keyword.as_str(), &i.args), ("", &Args::None));
}

#[test]
fn no_instructions_error_reports_last_line() {
    let e = error("# a\n# b\n\n");
    assert_eq!(e.to_string(), "line 3: file with no instructions");
}

#[test]
fn errors_report_the_instruction_first_line() {
    let e = error("FROM a\n\nENV A=1 \\\n    B\n");
    assert_eq!((e.line, e.kind), (3, ParseErrorKind::MissingEquals));
    let e = error("FROM a\nLABEL only-a-key\n");
    assert_eq!((e.line, e.kind), (2, ParseErrorKind::MissingValue));
}

#[test]
fn nested_json_is_an_error_for_every_exec_instruction() {
    for keyword in ["CMD", "ENTRYPOINT", "RUN", "SHELL", "COPY", "ADD", "VOLUME"] {
        let e = error(&format!("FROM a\n{keyword} [\"a\", [\"b\"]]\n"));
        assert_eq!((e.line, e.kind), (2, ParseErrorKind::NotStringArray), "{keyword}");
    }
    let e = error("FROM a\nHEALTHCHECK CMD [\"a\", 1]\n");
    assert_eq!(e.kind, ParseErrorKind::NotStringArray);
}

#[test]
fn json_versus_shell_form() {
    let src = "CMD [\"a\", \"b\"]\nCMD ['a']\nCMD [\"a\"\nRUN [ \"x y\" ]\nRUN [\"a\"] && b\nENTRYPOINT  exec  x\nSHELL [\"pwsh\", \"-c\"]\n";
    let args: Vec<Args> = parse_ok(src).instructions.into_iter().map(|i| i.args).collect();
    assert_eq!(
        args,
        [
            Args::Json(strings(&["a", "b"])),
            Args::Shell("['a']".into()),
            Args::Shell("[\"a\"".into()),
            Args::Json(strings(&["x y"])),
            Args::Shell("[\"a\"] && b".into()),
            Args::Shell("exec  x".into()),
            Args::Json(strings(&["pwsh", "-c"])),
        ]
    );
}

#[test]
fn json_form_of_copy_and_volume() {
    let parsed = parse_ok("COPY [\"a b\", \"/c d/\"]\nVOLUME [\"/v\"]\nVOLUME /a /b\n");
    let args: Vec<&Args> = parsed.instructions.iter().map(|i| &i.args).collect();
    assert_eq!(args[0], &Args::Json(strings(&["a b", "/c d/"])));
    assert_eq!(args[1], &Args::Json(strings(&["/v"])));
    assert_eq!(args[2], &Args::Words(strings(&["/a", "/b"])));
}

#[test]
fn json_string_continued_over_lines() {
    let i = only("CMD [\"a\", \\\n     \"b\"]\n");
    assert_eq!(i.args, Args::Json(strings(&["a", "b"])));
}

#[test]
fn flags_on_copy_and_from() {
    let parsed =
        parse_ok("FROM --platform=$BUILDPLATFORM golang AS build\nCOPY --from=build --chmod=755 --link /out /bin/\n");
    let from = &parsed.instructions[0];
    assert_eq!(from.flag("platform").and_then(|f| f.value.as_deref()), Some("$BUILDPLATFORM"));
    assert_eq!(from.args, Args::Words(strings(&["golang", "AS", "build"])));
    let copy = &parsed.instructions[1];
    assert_eq!(copy.flags.len(), 3);
    assert_eq!(copy.flag("link"), Some(&Flag { name: "link".into(), value: None }));
    assert_eq!(copy.dump(), r#"(copy ["--from=build" "--chmod=755" "--link"] "/out" "/bin/")"#);
}

#[test]
fn env_forms() {
    let parsed = parse_ok("ENV A 1 2  3\nENV B=1 C=\"two words\" D=three\\ words E=\nENV F=\"multi \\\n  line\"\n");
    let pairs: Vec<Vec<KeyValue>> = parsed
        .instructions
        .into_iter()
        .map(|i| match i.args {
            Args::KeyValues(p) => p,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(pairs[0], [KeyValue { key: "A".into(), value: Some("1 2  3".into()), legacy: true }]);
    let values: Vec<&str> = pairs[1].iter().map(|kv| kv.value.as_deref().unwrap()).collect();
    assert_eq!(values, ["1", "\"two words\"", "three\\ words", ""]);
    assert_eq!(pairs[2][0].value.as_deref(), Some("\"multi   line\""));
}

#[test]
fn arg_forms() {
    let i = only("ARG VERSION=1.0 TARGETOS \"QUOTED=a b\"\n");
    assert_eq!(i.dump(), r#"(arg "VERSION=1.0" "TARGETOS" "\"QUOTED=a b\"")"#);
}

#[test]
fn label_with_quoted_key_and_value() {
    let i = only("LABEL \"com.example.vendor\"=\"ACME Inc\" version=\"1.0\"\n");
    let Args::KeyValues(pairs) = i.args else { panic!() };
    assert_eq!(pairs[0].key, "\"com.example.vendor\"");
    assert_eq!(pairs[0].value.as_deref(), Some("\"ACME Inc\""));
}

#[test]
fn healthcheck_forms() {
    let src = "HEALTHCHECK NONE\nHEALTHCHECK --interval=30s --retries=3 CMD curl -f http://localhost/ || exit 1\nHEALTHCHECK CMD [\"/bin/check\"]\n";
    assert_eq!(
        dumps(src),
        [
            r#"(healthcheck "NONE")"#,
            r#"(healthcheck ["--interval=30s" "--retries=3"] "CMD" "curl -f http://localhost/ || exit 1")"#,
            r#"(healthcheck "CMD" "/bin/check")"#,
        ]
    );
    assert!(parse_ok(src).instructions[2].is_json());
}

#[test]
fn onbuild_wraps_a_parsed_instruction() {
    let parsed = parse_ok("FROM a\nONBUILD ADD . /app/src\nONBUILD RUN [\"make\"]\n");
    assert_eq!(parsed.dump(), "(from \"a\")\n(onbuild (add \".\" \"/app/src\"))\n(onbuild (run \"make\"))\n");
    let Args::Onbuild(inner) = &parsed.instructions[1].args else { panic!() };
    assert_eq!((inner.line, inner.original.as_str()), (2, "ADD . /app/src"));
}

#[test]
fn run_and_unknown_instructions_parse() {
    let parsed = parse_ok("FROM a\nRUN --mount=type=cache,target=/root/.cache make\nFROBNICATE the widget\n");
    assert_eq!(
        parsed.instructions[1].flag("mount").and_then(|f| f.value.clone()),
        Some("type=cache,target=/root/.cache".into())
    );
    assert_eq!(parsed.instructions[2].keyword, "frobnicate");
    assert_eq!(parsed.instructions[2].args, Args::Text("the widget".into()));
}

#[test]
fn keywords_are_case_insensitive() {
    assert_eq!(dumps("from a\nCoPy x y\n"), ["(from \"a\")", "(copy \"x\" \"y\")"]);
}

#[test]
fn original_is_the_joined_line() {
    let i = only("RUN a \\\n  # c\n  b\n");
    assert_eq!(i.original, "RUN a   b");
}

#[test]
fn heredoc_copy_body_and_lines() {
    let parsed = parse_ok("FROM a\nCOPY <<EOF /etc/motd\nhello $USER\n  # not a comment\nEOF\nUSER me\n");
    let copy = &parsed.instructions[1];
    assert_eq!(copy.args, Args::Words(strings(&["<<EOF", "/etc/motd"])));
    assert_eq!(
        copy.heredocs,
        [Heredoc {
            name: "EOF".into(),
            content: "hello $USER\n  # not a comment\n".into(),
            expand: true,
            chomp_tabs: false,
            fd: None
        }]
    );
    assert_eq!((copy.line, copy.end_line), (2, 5));
    assert_eq!(parsed.instructions[2].line, 6);
}

#[test]
fn heredoc_dash_strips_tabs_from_body_and_terminator() {
    let copy = only("COPY <<-EOT /x\n\t\tindented\n\tEOT\n");
    assert_eq!(copy.heredocs[0].content, "indented\n");
    assert!(copy.heredocs[0].chomp_tabs);
}

#[test]
fn heredoc_terminator_with_tabs_needs_dash() {
    let e = error("COPY <<EOT /x\nbody\n\tEOT\n");
    assert_eq!((e.line, e.kind), (1, ParseErrorKind::UnterminatedHeredoc));
}

#[test]
fn heredoc_quoted_terminators_do_not_expand() {
    let parsed = parse_ok("COPY <<'A' /a\n$X\nA\nCOPY <<\"B\" /b\n$X\nB\n");
    assert!(parsed.instructions.iter().all(|i| !i.heredocs[0].expand));
}

#[test]
fn several_heredocs_on_one_line() {
    let copy = only("COPY <<FILE1 <<FILE2 /dest/\ncontent 1\nFILE1\ncontent 2\nFILE2\n");
    let bodies: Vec<(&str, &str)> = copy.heredocs.iter().map(|h| (h.name.as_str(), h.content.as_str())).collect();
    assert_eq!(bodies, [("FILE1", "content 1\n"), ("FILE2", "content 2\n")]);
    assert_eq!(copy.end_line, 5);
}

#[test]
fn heredoc_on_run_with_flags_and_fd() {
    let run = only("RUN --mount=type=cache,target=/c 3<<EOF cat <&3\nx\nEOF\n");
    assert_eq!(run.heredocs[0].fd, Some(3));
    assert_eq!(run.heredocs[0].content, "x\n");
}

#[test]
fn heredoc_body_keeps_crlf_and_empty_lines() {
    let copy = only("COPY <<EOF /x\r\na\r\n\r\nEOF\r\n");
    assert_eq!(copy.heredocs[0].content, "a\r\n\r\n");
}

#[test]
fn empty_heredoc() {
    assert_eq!(only("RUN <<EOF\nEOF\n").heredocs[0].content, "");
}

#[test]
fn heredoc_after_continuation_lines() {
    let run = only("RUN \\\n  <<EOF\necho hi\nEOF\n");
    assert_eq!(run.heredocs[0].content, "echo hi\n");
}

#[test]
fn json_form_has_no_heredocs() {
    let parsed = parse_ok("RUN [\"<<EOF\"]\nCMD <<EOF\n");
    assert!(parsed.instructions.iter().all(|i| i.heredocs.is_empty()));
}

#[test]
fn heredoc_markers_only_on_run_copy_add() {
    let parsed = parse_ok("FROM a\nUSER <<EOF\nEOF\n");
    assert_eq!(parsed.instructions.len(), 3);
    assert!(parsed.instructions[1].heredocs.is_empty());
}

#[test]
fn quoted_heredoc_marker_is_literal_text() {
    assert!(only("RUN echo '<<EOF'\n").heredocs.is_empty());
}

#[test]
fn onbuild_heredoc_attaches_to_onbuild() {
    let i = only("ONBUILD RUN <<EOF\necho\nEOF\n");
    assert_eq!(i.heredocs.len(), 1);
    assert_eq!((i.line, i.end_line), (1, 3));
}

#[test]
fn unterminated_heredoc_is_an_error() {
    let e = error("FROM a\nRUN <<EOF\necho\n");
    assert_eq!(e.to_string(), "line 2: unterminated heredoc");
}

#[test]
fn unlexable_heredoc_marker_is_an_error() {
    // The line lexes (the quote is escaped), but the marker's terminator word does not.
    let e = error("FROM a\nRUN <<${X:-\\'}\nx\n");
    assert_eq!((e.line, e.kind), (2, ParseErrorKind::InvalidHeredoc));
}

#[test]
fn expanding_parsed_values() {
    let parsed = parse_ok(
        "ARG VERSION\nENV APP=/opt/app NAME=\"my app\" \\\n    DIR=${APP:-/srv}/bin TAG=${VERSION:+v$VERSION} \\\n    EXT=${FILE##*.} OPT=${MISSING-default}\n",
    );
    let Args::KeyValues(pairs) = &parsed.instructions[1].args else { panic!() };
    let env: HashMap<String, String> = [("APP", "/opt/app"), ("VERSION", "1.2"), ("FILE", "x.tar.gz")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let expanded: Vec<String> =
        pairs.iter().map(|kv| expand_word(kv.value.as_deref().unwrap(), &env, parsed.escape).unwrap()).collect();
    assert_eq!(expanded, ["/opt/app", "my app", "/opt/app/bin", "v1.2", "gz", "default"]);
}

#[test]
fn required_variable_error_from_parsed_value() {
    let i = only("WORKDIR ${HOME:?HOME must be set}/src\n");
    let Args::Text(path) = &i.args else { panic!() };
    let e = expand_word(path, &|_: &str| None, '\\').unwrap_err();
    assert_eq!(e.kind, ExpandErrorKind::Required { name: "HOME".into(), message: "HOME must be set".into() });
}

#[test]
fn expanding_copy_words_with_quotes() {
    let i = only("COPY \"my file.txt\" $DEST\n");
    let env: HashMap<String, String> = [("DEST".to_string(), "/a b/".to_string())].into();
    let Args::Words(_) = &i.args else { panic!() };
    let rest = i.original.strip_prefix("COPY ").unwrap();
    assert_eq!(expand_words(rest, &env, '\\').unwrap(), ["my file.txt", "/a", "b/"]);
}

#[test]
fn serializes_to_json() {
    let parsed = parse_ok("FROM a\nCOPY --from=x <<EOF /y\nhi\nEOF\n");
    let json = serde_json::to_value(&parsed).unwrap();
    assert_eq!(json["escape"], "\\");
    assert_eq!(json["instructions"][1]["keyword"], "copy");
    assert_eq!(json["instructions"][1]["args"]["form"], "words");
    assert_eq!(json["instructions"][1]["heredocs"][0]["content"], "hi\n");
    let error = serde_json::to_value(error("")).unwrap();
    assert_eq!(error["kind"], "no_instructions");
}
