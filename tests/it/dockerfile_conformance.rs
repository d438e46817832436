//! Conformance of hoist's Dockerfile parser with BuildKit's own parser test corpus
//! (`../shared/conformance/dockerfile-parser/`, see its README; override the location with
//! `HOIST_CONFORMANCE_DIR`). Every positive case must parse to the instruction sequence of its
//! `result` file — and, beyond names, to the same s-expression BuildKit prints for each
//! instruction; every negative case must be rejected. All mismatches are reported together.

use std::fs;
use std::path::{Path, PathBuf};

use hoist::builder::dockerfile::{parse, Args, Instruction};

/// Fewer cases than this means the corpus is not the one we expect; passing would prove nothing.
const MIN_POSITIVE: usize = 30;
const MIN_NEGATIVE: usize = 4;

/// The corpus directory: `HOIST_CONFORMANCE_DIR` (either the `dockerfile-parser` directory itself
/// or the conformance root holding it), else `../shared/conformance/dockerfile-parser`.
fn corpus_dir() -> PathBuf {
    match std::env::var_os("HOIST_CONFORMANCE_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let nested = dir.join("dockerfile-parser");
            if nested.join("testfiles").is_dir() {
                nested
            } else {
                dir
            }
        }
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/dockerfile-parser"),
    }
}

/// The case directories under `dir`, sorted by name.
fn cases(dir: &Path) -> Vec<(String, PathBuf)> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut cases: Vec<(String, PathBuf)> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).path())
        .filter(|path| path.join("Dockerfile").is_file())
        .map(|path| (path.file_name().unwrap_or_default().to_string_lossy().into_owned(), path))
        .collect();
    cases.sort();
    cases
}

fn read(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()))
}

/// The instruction names of one `result` line: `(onbuild (run "x"))` → `onbuild run`.
fn expected_name(line: &str) -> String {
    let mut names = Vec::new();
    let mut rest = line.trim();
    while let Some(after) = rest.strip_prefix('(') {
        let end = after.find([' ', ')']).unwrap_or(after.len());
        names.push(&after[..end]);
        rest = after[end..].trim_start();
    }
    names.join(" ")
}

/// The same for a parsed instruction: its keyword, then its ONBUILD trigger's.
fn parsed_name(instruction: &Instruction) -> String {
    match &instruction.args {
        Args::Onbuild(inner) => format!("{} {}", instruction.keyword, parsed_name(inner)),
        _ => instruction.keyword.clone(),
    }
}

#[test]
fn dockerfile_parser_matches_buildkit_corpus() {
    let dir = corpus_dir();
    let positive_dir = dir.join("testfiles");
    let negative_dir = dir.join("testfiles-negative");
    assert!(
        positive_dir.is_dir() && negative_dir.is_dir(),
        "BuildKit's Dockerfile parser corpus not found: looked for {} and {}. Set HOIST_CONFORMANCE_DIR \
         to the directory holding testfiles/ and testfiles-negative/ (BuildKit's \
         frontend/dockerfile/parser test files), or to its parent conformance directory.",
        positive_dir.display(),
        negative_dir.display(),
    );

    let positive = cases(&positive_dir);
    let negative = cases(&negative_dir);
    let mut name_failures = Vec::new();
    let mut dump_failures = Vec::new();
    let mut dumps_compared = 0;

    for (case, path) in &positive {
        let expected: Vec<String> =
            read(&path.join("result")).lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
        let parsed = match parse(&read(&path.join("Dockerfile"))) {
            Ok(parsed) => parsed,
            Err(e) => {
                name_failures.push(format!("{case}: expected {} instructions, got error: {e}", expected.len()));
                continue;
            }
        };
        let want_names: Vec<String> = expected.iter().map(|l| expected_name(l)).collect();
        let got_names: Vec<String> = parsed.instructions.iter().map(parsed_name).collect();
        if want_names != got_names {
            name_failures.push(format!("{case}:\n    expected {want_names:?}\n    got      {got_names:?}"));
            continue;
        }
        for (want, instruction) in expected.iter().zip(&parsed.instructions) {
            dumps_compared += 1;
            let got = instruction.dump();
            if *want != got {
                dump_failures
                    .push(format!("{case} (line {}):\n    expected {want}\n    got      {got}", instruction.line));
            }
        }
    }

    let mut negative_failures = Vec::new();
    for (case, path) in &negative {
        match parse(&read(&path.join("Dockerfile"))) {
            Ok(parsed) => negative_failures.push(format!(
                "{case}: expected an error, got {} instructions: {:?}",
                parsed.instructions.len(),
                parsed.instructions.iter().map(parsed_name).collect::<Vec<_>>()
            )),
            Err(e) if e.line == 0 || e.message.is_empty() => {
                negative_failures.push(format!("{case}: error without a line or message: {e:?}"))
            }
            Err(_) => {}
        }
    }

    let positive_ok = positive.len() - name_failures.len();
    let negative_ok = negative.len() - negative_failures.len();
    eprintln!(
        "BuildKit corpus at {}: {positive_ok}/{} positive (names), {}/{} instruction dumps identical, \
         {negative_ok}/{} negative rejected",
        dir.display(),
        positive.len(),
        dumps_compared - dump_failures.len(),
        dumps_compared,
        negative.len(),
    );

    let mut report = Vec::new();
    if positive.len() < MIN_POSITIVE || negative.len() < MIN_NEGATIVE {
        report.push(format!(
            "corpus too small to mean anything: {} positive (want >= {MIN_POSITIVE}), {} negative (want >= \
             {MIN_NEGATIVE}) in {}",
            positive.len(),
            negative.len(),
            dir.display()
        ));
    }
    for (title, failures) in [
        ("instruction sequence differs", &name_failures),
        ("instruction differs from BuildKit's dump", &dump_failures),
        ("negative case accepted", &negative_failures),
    ] {
        if !failures.is_empty() {
            report.push(format!("{} × {title}:\n  {}", failures.len(), failures.join("\n  ")));
        }
    }
    assert!(report.is_empty(), "Dockerfile conformance failures:\n{}", report.join("\n"));
}

#[test]
fn result_line_names_include_onbuild_trigger() {
    assert_eq!(expected_name(r#"(onbuild (run "echo" "test"))"#), "onbuild run");
    assert_eq!(expected_name(r#"(copy ["--from=a"] "x" "/y")"#), "copy");
    assert_eq!(expected_name("(cmd)"), "cmd");
}
