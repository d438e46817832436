//! `.helmignore` with Helm's own semantics (`pkg/ignore/rules.go`), which are not gitignore's: rules
//! are tried in order and the first decision wins; a rule without `/` matches the base name, one with
//! `/` the whole relative path (a leading `/` anchors it); a trailing `/` limits it to directories;
//! `!p` ignores every path that does NOT match `p` (Helm's odd negation, kept for compatibility);
//! `**` is refused; globs are Go's `filepath.Match` (`*`/`?` never cross `/`, `[a-z]`, `[^a-z]`, `\`
//! escapes). The directory loader always appends `templates/.?*`.

use crate::error::{Error, Result};

/// The file Helm reads at the chart root (only there: a subchart's own copy is packaged as a file).
pub const HELMIGNORE: &str = ".helmignore";
/// The rule Helm's directory loader appends after the file's rules.
pub const DEFAULT_RULE: &str = "templates/.?*";

#[derive(Debug, Clone)]
struct Rule {
    raw: String,
    negate: bool,
    must_dir: bool,
    kind: RuleKind,
    glob: Vec<char>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleKind {
    /// Leading `/`: the whole relative path, anchored at the root.
    Anchored,
    /// Contains `/`: the whole relative path.
    Path,
    /// No `/`: the base name only.
    Base,
}

/// Parsed `.helmignore` rules.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Parses `.helmignore` text: one rule a line, trimmed; blank and `#` lines skipped; a UTF-8 BOM
    /// is dropped from the first line only. `**` and malformed globs are errors, as in Helm.
    pub fn parse(text: &str) -> Result<Rules> {
        let mut rules = Rules::default();
        for (i, line) in text.split('\n').enumerate() {
            let line = if i == 0 { line.strip_prefix('\u{feff}').unwrap_or(line) } else { line };
            rules.add(line).map_err(|e| e.context(format!("{HELMIGNORE} line {}", i + 1)))?;
        }
        Ok(rules)
    }

    /// Appends Helm's default rule, `templates/.?*`.
    pub fn add_defaults(&mut self) {
        self.add(DEFAULT_RULE).expect("the default rule is valid");
    }

    /// The raw rules kept, in order.
    pub fn patterns(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.raw.as_str()).collect()
    }

    /// Whether any rule is negated (Helm's `!` does not re-include: worth a warning).
    pub fn has_negation(&self) -> bool {
        self.rules.iter().any(|r| r.negate)
    }

    fn add(&mut self, line: &str) -> Result<()> {
        let rule = line.trim();
        if rule.is_empty() || rule.starts_with('#') {
            return Ok(());
        }
        if rule.contains("**") {
            return Err(Error::usage(format!("rule {rule:?}: double-star (**) syntax is not supported")));
        }
        validate_glob(rule).map_err(|why| Error::usage(format!("rule {rule:?}: {why}")))?;
        let raw = rule.to_string();
        let (negate, rest) = match rule.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, rule),
        };
        let (must_dir, rest) = match rest.strip_suffix('/') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (kind, glob) = if let Some(r) = rest.strip_prefix('/') {
            (RuleKind::Anchored, r)
        } else if rest.contains('/') {
            (RuleKind::Path, rest)
        } else {
            (RuleKind::Base, rest)
        };
        self.rules.push(Rule { raw, negate, must_dir, kind, glob: glob.chars().collect() });
        Ok(())
    }

    /// Helm's `Ignore(path, fileInfo)`: `path` relative to the chart root, `/`-separated.
    pub fn ignored(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." || path == "./" {
            return false;
        }
        for r in &self.rules {
            let matches = || {
                let subject = match r.kind {
                    RuleKind::Base => base_name(path),
                    RuleKind::Anchored | RuleKind::Path => path,
                };
                glob_match(&r.glob, &subject.chars().collect::<Vec<_>>())
            };
            if r.negate {
                if r.must_dir && !is_dir {
                    return true;
                }
                if !matches() {
                    return true;
                }
                continue;
            }
            if r.must_dir && !is_dir {
                continue;
            }
            if matches() {
                return true;
            }
        }
        false
    }
}

/// Go's `filepath.Base`: the last element, trailing slashes dropped (`""` → `.`).
fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() { "." } else { "/" };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Checks a glob's syntax as Go's `filepath.Match` would (unclosed or empty classes, bad ranges, a
/// trailing `\`).
fn validate_glob(pattern: &str) -> std::result::Result<(), &'static str> {
    let p: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err("the pattern ends in an escape (\\)");
                }
                i += 2;
            }
            '[' => i = parse_class(&p, i + 1).map(|(_, next)| next).ok_or("malformed character class")?,
            _ => i += 1,
        }
    }
    Ok(())
}

/// One class item character (with `\` escapes); `None` for the characters Go refuses there.
fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match p.get(i)? {
        '-' | ']' => None,
        '\\' => p.get(i + 1).map(|c| (*c, i + 2)),
        c => Some((*c, i + 1)),
    }
}

/// A class starting after `[` at `i`: (negated, ranges) and the index after its `]`.
#[allow(clippy::type_complexity)]
fn parse_class(p: &[char], mut i: usize) -> Option<((bool, Vec<(char, char)>), usize)> {
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if p.get(i) == Some(&']') && !ranges.is_empty() {
            return Some(((negated, ranges), i + 1));
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        ranges.push((lo, hi));
    }
}

/// Go's `filepath.Match` on Unix, for a pattern already validated: the whole name must match.
pub fn glob_match(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') => {
            let rest = &p[1..];
            for n in 0..=s.len() {
                if glob_match(rest, &s[n..]) {
                    return true;
                }
                if n < s.len() && s[n] == '/' {
                    break;
                }
            }
            false
        }
        Some('?') => !s.is_empty() && s[0] != '/' && glob_match(&p[1..], &s[1..]),
        Some('[') => {
            let Some(((negated, ranges), next)) = parse_class(p, 1) else { return false };
            let Some(&c) = s.first() else { return false };
            let hit = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
            hit != negated && glob_match(&p[next..], &s[1..])
        }
        Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && glob_match(&p[2..], &s[1..]),
        Some(c) => s.first() == Some(c) && glob_match(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        glob_match(&p.chars().collect::<Vec<_>>(), &s.chars().collect::<Vec<_>>())
    }

    #[test]
    fn go_match_semantics() {
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "d/a.txt"));
        assert!(m("cargo/*.txt", "cargo/a.txt"));
        assert!(m("ru[c-e]?er.txt", "rudder.txt"));
        assert!(m("[^a]x", "bx"));
        assert!(!m("[^a]x", "ax"));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(m("templates/.?*", "templates/.x"));
        assert!(!m("templates/.?*", "templates/."));
        assert!(validate_glob("[z-").is_err());
        assert!(validate_glob("[]").is_err());
        assert!(validate_glob("a\\").is_err());
        assert!(validate_glob("[a-c]x").is_ok());
    }

    #[test]
    fn first_decision_and_odd_negation() {
        let mut r = Rules::parse("!a.txt\n").unwrap();
        r.add_defaults();
        assert!(!r.ignored("a.txt", false));
        assert!(r.ignored("Chart.yaml", false), "Helm's `!x` ignores everything that is not x");
        let r = Rules::parse("\u{feff}cargo/\n# c\n\n  helm.txt  \n").unwrap();
        assert_eq!(r.patterns(), ["cargo/", "helm.txt"]);
        assert!(r.ignored("cargo", true));
        assert!(!r.ignored("cargo", false));
        assert!(r.ignored("x/helm.txt", false));
        assert!(Rules::parse("a/**/b").is_err());
    }
}
