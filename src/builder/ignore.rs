//! `.dockerignore` rules and the glob matcher COPY/ADD sources share, following docker's
//! `patternmatcher`: patterns are cleaned paths relative to the context (a leading `/` is dropped),
//! `*` and `?` never cross a `/`, `**` matches any number of directories, `[a-z]` classes and `\`
//! escapes work, `!` re-includes, the last matching pattern wins, and a pattern that matches a parent
//! directory matches everything below it.

/// One cleaned pattern, split on `/`.
#[derive(Debug, Clone)]
struct Pattern {
    segments: Vec<String>,
    exclusion: bool,
}

/// The parsed rules of a `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

impl IgnoreRules {
    /// Parses `.dockerignore` text: one pattern a line, `#` comments, blank lines skipped.
    pub fn parse(text: &str) -> IgnoreRules {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, pat) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(pat);
            if cleaned.is_empty() {
                continue;
            }
            patterns.push(Pattern { segments: cleaned.split('/').map(str::to_string).collect(), exclusion });
        }
        IgnoreRules { patterns }
    }

    /// True when `rel` (a `/`-separated path relative to the context) is excluded.
    pub fn is_ignored(&self, rel: &str) -> bool {
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        if parts.is_empty() {
            return false;
        }
        let mut ignored = false;
        for p in &self.patterns {
            // The path itself, or any parent directory of it.
            let hit = (1..=parts.len()).any(|n| match_segments(&p.segments, &parts[..n]));
            if hit {
                ignored = !p.exclusion;
            }
        }
        ignored
    }
}

/// Lexically cleans a path: drops a leading `/`, `.` parts and empty parts; resolves `..` (never
/// above the root). Returns `/`-separated parts joined.
pub fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}

/// True when `path` contains glob metacharacters.
pub fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Matches a `/`-separated path against a `/`-separated glob (`**` matches zero or more parts).
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pat: Vec<String> = clean(pattern).split('/').map(str::to_string).collect();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match_segments(&pat, &parts)
}

fn match_segments(pat: &[String], parts: &[&str]) -> bool {
    match pat.first() {
        None => parts.is_empty(),
        Some(p) if p == "**" => {
            // `**/**/…` means what one `**` means: collapse them, or each adds a factor of the depth.
            let rest = &pat[pat.iter().take_while(|p| *p == "**").count()..];
            (0..=parts.len()).any(|skip| match_segments(rest, &parts[skip..]))
        }
        Some(p) => match parts.first() {
            Some(part) => match_one(p.as_bytes(), part.as_bytes()) && match_segments(&pat[1..], &parts[1..]),
            None => false,
        },
    }
}

/// `filepath.Match` for one path part: `*`, `?`, `[...]` (with `^`/`!` negation and ranges), `\`.
fn match_one(pat: &[u8], s: &[u8]) -> bool {
    match pat.first() {
        None => s.is_empty(),
        Some(b'*') => {
            // A run of `*` matches what one does; collapsed, so `***…*` cannot make matching exponential
            // (found by fuzzing: a .dockerignore line of 40 stars took seconds per path).
            let rest = &pat[pat.iter().take_while(|c| **c == b'*').count()..];
            rest.is_empty() || (0..=s.len()).any(|i| match_one(rest, &s[i..]))
        }
        Some(b'?') => !s.is_empty() && match_one(&pat[1..], &s[1..]),
        Some(b'[') => {
            let Some(c) = s.first() else { return false };
            let mut i = 1;
            let negate = matches!(pat.get(1), Some(b'^') | Some(b'!'));
            if negate {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            while i < pat.len() && (pat[i] != b']' || first) {
                first = false;
                let mut lo = pat[i];
                if lo == b'\\' && i + 1 < pat.len() {
                    i += 1;
                    lo = pat[i];
                }
                let mut hi = lo;
                if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
                    hi = pat[i + 2];
                    i += 2;
                }
                if lo <= *c && *c <= hi {
                    matched = true;
                }
                i += 1;
            }
            if i >= pat.len() {
                return false; // unterminated class: no match, as filepath.Match's ErrBadPattern
            }
            matched != negate && match_one(&pat[i + 1..], &s[1..])
        }
        Some(b'\\') if pat.len() > 1 => s.first() == Some(&pat[1]) && match_one(&pat[2..], &s[1..]),
        Some(c) => s.first() == Some(c) && match_one(&pat[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_filepath_match() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "dir/a.txt"));
        assert!(glob_match("dir/*.txt", "dir/a.txt"));
        assert!(glob_match("**/*.txt", "x/y/a.txt"));
        assert!(glob_match("**/*.txt", "a.txt"));
        assert!(glob_match("fil?", "file"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("/abs/x", "abs/x"));
    }

    #[test]
    fn dockerignore_rules() {
        let r = IgnoreRules::parse("# comment\n\n*.log\n/build\n!build/keep.txt\nsecret/**\n**/*.tmp\n");
        assert!(r.is_ignored("a.log"));
        assert!(!r.is_ignored("sub/a.log"));
        assert!(r.is_ignored("build"));
        assert!(r.is_ignored("build/out.bin"));
        assert!(!r.is_ignored("build/keep.txt"));
        assert!(r.is_ignored("secret/k/x"));
        assert!(r.is_ignored("deep/er/x.tmp"));
        assert!(!r.is_ignored("src/main.rs"));
    }

    #[test]
    fn cleans_paths() {
        assert_eq!(clean("/a/./b/../c/"), "a/c");
        assert_eq!(clean("../x"), "x");
    }
}
