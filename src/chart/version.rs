//! Chart versions and the version constraints of chart dependencies, as Helm reads them (Masterminds
//! semver v3): versions are SemVer 2 read leniently (`v1.2`, `1` pass, missing parts are 0); a
//! constraint is `||`-separated groups of `,`/space-separated comparisons (`=`, `!=`, `>`, `>=`, `<`,
//! `<=`, `~`, `^`, hyphen ranges `1.2 - 1.4`, wildcards `x`, `X`, `*` and missing parts). A version
//! with a pre-release only satisfies comparisons that name a pre-release themselves. Written here
//! (about 200 lines) because the `semver` crate follows Cargo's rules: no `||`, no hyphen ranges.

use std::cmp::Ordering;

/// A version: major.minor.patch, pre-release identifiers, build metadata (ignored in comparisons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Vec<String>,
    pub build: String,
}

fn ident_ok(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Version {
    /// Masterminds' `NewVersion`: `v?MAJOR(.MINOR)?(.PATCH)?(-PRE)?(+BUILD)?`.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let (rest, build) = s.split_once('+').map_or((s, ""), |(a, b)| (a, b));
        if !build.is_empty() && !build.split('.').all(ident_ok) || s.ends_with('+') {
            return None;
        }
        let (core, pre) = rest.split_once('-').map_or((rest, None), |(a, b)| (a, Some(b)));
        let pre: Vec<String> = match pre {
            Some(p) => {
                let ids: Vec<&str> = p.split('.').collect();
                let numeric_zero =
                    |i: &&str| i.len() > 1 && i.starts_with('0') && i.bytes().all(|b| b.is_ascii_digit());
                if !ids.iter().all(|i| ident_ok(i)) || ids.iter().any(numeric_zero) {
                    return None;
                }
                ids.into_iter().map(str::to_string).collect()
            }
            None => Vec::new(),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty()
            || parts.len() > 3
            || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let num = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse::<u64>().ok());
        Some(Version { major: num(0)?, minor: num(1)?, patch: num(2)?, pre, build: build.to_string() })
    }

    fn new(major: u64, minor: u64, patch: u64) -> Version {
        Version { major, minor, patch, pre: Vec::new(), build: String::new() }
    }
}

impl Ord for Version {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(o.major, o.minor, o.patch)).then_with(|| {
            match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&o.pre) {
                        let ord = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.cmp(b),
                        };
                        if ord != Ordering::Equal {
                            return ord;
                        }
                    }
                    self.pre.len().cmp(&o.pre.len())
                }
            }
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// One comparison after expansion: `lo <(=) v <(=) hi`, or its negation (`!=`).
#[derive(Debug, Clone)]
struct Range {
    lo: Option<(Version, bool)>,
    hi: Option<(Version, bool)>,
    negate: bool,
    /// The constraint named a pre-release: pre-release versions may match.
    allows_pre: bool,
}

impl Range {
    fn contains(&self, v: &Version) -> bool {
        if !v.pre.is_empty() && !self.allows_pre {
            return false;
        }
        let above = self.lo.as_ref().is_none_or(|(l, incl)| if *incl { v >= l } else { v > l });
        let below = self.hi.as_ref().is_none_or(|(h, incl)| if *incl { v <= h } else { v < h });
        (above && below) != self.negate
    }
}

/// A parsed constraint such as `^1.2`, `>=1.0, <2.0 || 3.x`, `2.x.x`.
#[derive(Debug, Clone)]
pub struct Constraint {
    groups: Vec<Vec<Range>>,
}

/// A partial version from a constraint: the parts given (`None` = wildcard or missing).
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    full: Version,
}

fn partial(s: &str) -> Option<Partial> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let (core, tail) = match s.find(['-', '+']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 {
        return None;
    }
    let mut nums = [None, None, None];
    let mut wild = false;
    for (i, p) in parts.iter().enumerate() {
        if matches!(*p, "x" | "X" | "*") {
            wild = true;
        } else if wild {
            return None; // `1.x.3`
        } else {
            nums[i] = Some(p.parse::<u64>().ok()?);
        }
    }
    let text = format!("{}.{}.{}{tail}", nums[0].unwrap_or(0), nums[1].unwrap_or(0), nums[2].unwrap_or(0));
    Some(Partial { major: nums[0], minor: nums[1], patch: nums[2], full: Version::parse(&text)? })
}

impl Constraint {
    pub fn parse(s: &str) -> Option<Constraint> {
        let mut groups = Vec::new();
        for group in s.split("||") {
            let mut words: Vec<String> = Vec::new();
            for w in group.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
                match words.last_mut() {
                    Some(last) if last.chars().all(|c| "=<>!~^".contains(c)) && !last.is_empty() => last.push_str(w),
                    _ => words.push(w.to_string()),
                }
            }
            let mut ranges = Vec::new();
            let mut i = 0;
            while i < words.len() {
                if words.get(i + 1).map(String::as_str) == Some("-") {
                    let lo = partial(&words[i])?;
                    let hi = partial(words.get(i + 2)?)?;
                    ranges.push(op_range(">=", &lo)?);
                    ranges.push(op_range("<=", &hi)?);
                    i += 3;
                    continue;
                }
                let w = &words[i];
                let op_len = w.find(|c: char| !"=<>!~^".contains(c)).unwrap_or(w.len());
                let (op, ver) = w.split_at(op_len);
                ranges.push(op_range(op, &partial(ver)?)?);
                i += 1;
            }
            if ranges.is_empty() {
                return None;
            }
            groups.push(ranges);
        }
        Some(Constraint { groups })
    }

    pub fn matches(&self, v: &Version) -> bool {
        self.groups.iter().any(|g| g.iter().all(|r| r.contains(v)))
    }
}

fn op_range(op: &str, p: &Partial) -> Option<Range> {
    let v = p.full.clone();
    let allows_pre = !v.pre.is_empty();
    let next_major = || Version::new(p.major.unwrap_or(0) + 1, 0, 0);
    let next_minor = || Version::new(v.major, v.minor + 1, 0);
    // The first version above every version this partial stands for (`1.x` → 2.0.0, `1.2.x` → 1.3.0).
    let above_all = || match (p.major, p.minor, p.patch) {
        (None, _, _) => None,
        (Some(_), None, _) => Some(next_major()),
        (Some(_), Some(_), None) => Some(next_minor()),
        _ => None,
    };
    let r = |lo: Option<(Version, bool)>, hi: Option<(Version, bool)>, negate| Range { lo, hi, negate, allows_pre };
    let wildcard = p.patch.is_none();
    Some(match op {
        "" | "=" | "==" | "!=" => {
            let negate = op == "!=";
            if p.major.is_none() {
                r(Some((Version::new(0, 0, 0), true)), None, negate)
            } else if wildcard {
                r(Some((v.clone(), true)), Some((above_all()?, false)), negate)
            } else {
                r(Some((v.clone(), true)), Some((v, true)), negate)
            }
        }
        ">" => match above_all() {
            Some(a) => r(Some((a, true)), None, false),
            None if p.major.is_none() => r(Some((Version::new(u64::MAX, 0, 0), false)), None, false),
            None => r(Some((v, false)), None, false),
        },
        ">=" | "=>" => r(Some((v, true)), None, false),
        "<" => r(None, Some((v, false)), false),
        "<=" | "=<" => match above_all() {
            Some(a) => r(None, Some((a, false)), false),
            None if p.major.is_none() => r(None, None, false),
            None => r(None, Some((v, true)), false),
        },
        "~" | "~>" => {
            let hi = if p.minor.is_some() { next_minor() } else { next_major() };
            r(Some((v, true)), Some((hi, false)), false)
        }
        "^" => {
            let hi = if v.major > 0 || p.minor.is_none() {
                next_major()
            } else if v.minor > 0 || p.patch.is_none() {
                next_minor()
            } else {
                Version::new(0, 0, v.patch + 1)
            };
            r(Some((v, true)), Some((hi, false)), false)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(c: &str, v: &str) -> bool {
        Constraint::parse(c).unwrap_or_else(|| panic!("{c}")).matches(&Version::parse(v).unwrap())
    }

    #[test]
    fn versions() {
        assert!(Version::parse("1.2.3-rc.1+b.5").is_some());
        assert!(Version::parse("v1.2").is_some());
        assert!(Version::parse("one").is_none());
        assert!(Version::parse("1.2.3-01").is_none());
        assert!(Version::parse("1.2.3.4").is_none());
        assert!(Version::parse("1.0.0-rc.1").unwrap() < Version::parse("1.0.0").unwrap());
        assert!(Version::parse("1.0.0-rc.2").unwrap() < Version::parse("1.0.0-rc.10").unwrap());
    }

    #[test]
    fn constraints() {
        assert!(ok("2.x.x", "2.31.4") && !ok("2.x.x", "3.0.0"));
        assert!(ok("^1.2.3", "1.9.0") && !ok("^1.2.3", "2.0.0") && !ok("^1.2.3", "1.2.2"));
        assert!(ok("^0.2.3", "0.2.9") && !ok("^0.2.3", "0.3.0"));
        assert!(ok("~1.2.3", "1.2.9") && !ok("~1.2.3", "1.3.0"));
        assert!(ok(">=1.0, <2.0", "1.5.0") && !ok(">= 1.0 < 2.0", "2.0.0"));
        assert!(ok("1.2 - 1.4.5", "1.4.5") && !ok("1.2 - 1.4.5", "1.4.6"));
        assert!(ok("<1.0 || >=3", "3.1.0") && !ok("<1.0 || >=3", "2.0.0"));
        assert!(ok("*", "5.0.0") && !ok("*", "5.0.0-rc.1"));
        assert!(ok(">=1.0.0-0", "1.0.0-rc.1"));
        assert!(ok("1.2.3", "1.2.3") && !ok("1.2.3", "1.2.4"));
        assert!(ok("!=1.2.3", "1.2.4") && !ok("!=1.2.3", "1.2.3"));
        assert!(ok(">1.x", "2.0.0") && !ok(">1.x", "1.9.0"));
        assert!(Constraint::parse(">>1").is_none());
    }
}
