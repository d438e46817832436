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

use crate::paths::match_segments;
pub use crate::paths::{clean, glob_match, has_glob};

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
