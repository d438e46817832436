//! Path arithmetic for paths inside images and build contexts, pure and shared: cleaning, joining, and
//! the glob matcher (docker's `patternmatcher`: `*` and `?` never cross a `/`, `**` matches any number of
//! directories, `[a-z]` classes and `\` escapes) that `.dockerignore`, COPY/ADD sources and the rootfs
//! path filter use. It sits below the builder and the rootfs unpacker, which both use it.

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

pub(crate) fn match_segments(pat: &[String], parts: &[&str]) -> bool {
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

/// `dir` + `/` + `rel`, for image paths (either may be empty).
pub fn join(dir: &str, rel: &str) -> String {
    match (dir.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (_, true) => dir.to_string(),
        _ => format!("{dir}/{rel}"),
    }
}
