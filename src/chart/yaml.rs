//! A YAML writer for the Chart.yaml/Chart.lock subset (maps, lists, strings, booleans, numbers) that
//! writes what Helm's serializer (go-yaml v2 behind sigs.k8s.io/yaml) writes: keys in go-yaml's order
//! (letters by code point, non-letters first, digit runs as numbers), 2-space maps, sequences not
//! indented under their key, strings quoted only when a plain scalar would read back as another type
//! or cannot be written plain (then single quotes, else double), `|` blocks for text with newlines, and
//! plain/quoted text folded at the first space past column 80.

use serde_json::Value;

const BEST_WIDTH: usize = 80;

/// The document for `v` (a map at the top), ending in a newline.
pub fn emit(v: &Value) -> String {
    let mut e = Emitter { out: String::new(), column: 0 };
    match v {
        Value::Object(_) | Value::Array(_) => e.block(v, 0, false),
        other => {
            e.scalar(other, 0);
            e.newline();
        }
    }
    e.out
}

struct Emitter {
    out: String,
    column: usize,
}

impl Emitter {
    fn put(&mut self, s: &str) {
        self.out.push_str(s);
        self.column += s.chars().count();
    }
    fn newline(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }
    fn indent(&mut self, n: usize) {
        if self.column > 0 {
            self.newline();
        }
        self.put(&" ".repeat(n));
    }

    /// A map or list whose entries start at column `indent`; `inline` when the first entry continues
    /// the current line (after `- `).
    fn block(&mut self, v: &Value, indent: usize, inline: bool) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_by(|a, b| go_key_order(a, b));
                for (i, k) in keys.into_iter().enumerate() {
                    if !(inline && i == 0) {
                        self.indent(indent);
                    }
                    self.key(k);
                    self.value(&map[k.as_str()], indent);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !(inline && i == 0) {
                        self.indent(indent);
                    }
                    self.put("-");
                    match item {
                        Value::Object(m) if !m.is_empty() => {
                            self.put(" ");
                            self.block(item, indent + 2, true);
                        }
                        Value::Array(a) if !a.is_empty() => {
                            self.put(" ");
                            self.block(item, indent + 2, true);
                        }
                        _ => {
                            self.put(" ");
                            self.scalar(item, indent + 2);
                        }
                    }
                }
            }
            _ => self.scalar(v, indent),
        }
        if indent == 0 && !inline && self.column > 0 {
            self.newline();
        }
    }

    fn key(&mut self, k: &str) {
        match style(k, false) {
            Style::Plain => self.put(k),
            Style::Single => self.put(&format!("'{}'", k.replace('\'', "''"))),
            _ => self.put(&double_quoted(k)),
        }
        self.put(":");
    }

    /// The value after `key:` of a map whose entries sit at `indent`.
    fn value(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Object(m) if !m.is_empty() => self.block(v, indent + 2, false),
            // go-yaml v2 does not indent a sequence under its mapping key.
            Value::Array(a) if !a.is_empty() => self.block(v, indent, false),
            _ => {
                self.put(" ");
                self.scalar(v, indent + 2);
            }
        }
    }

    /// A scalar at the current position; continuation lines are indented by `indent`.
    fn scalar(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Null => self.put("null"),
            Value::Bool(b) => self.put(if *b { "true" } else { "false" }),
            Value::Number(n) => self.put(&n.to_string()),
            Value::Object(_) => self.put("{}"),
            Value::Array(_) => self.put("[]"),
            Value::String(s) => match style(s, true) {
                Style::Plain => self.folded(s, indent, false),
                Style::Single => {
                    self.put("'");
                    self.folded(&s.replace('\'', "''"), indent, true);
                    self.put("'");
                }
                Style::Double => self.put(&double_quoted(s)),
                Style::Literal => self.literal(s, indent),
            },
        }
    }

    /// Plain or single-quoted text, breaking at a space once past the best width.
    fn folded(&mut self, s: &str, indent: usize, quoted: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let inner = !quoted || (i != 0 && i != chars.len() - 1);
                if !spaces && inner && self.column > BEST_WIDTH && chars.get(i + 1).is_some_and(|n| *n != ' ') {
                    self.newline();
                    self.put(&" ".repeat(indent));
                } else {
                    self.put(" ");
                }
                spaces = true;
            } else {
                let mut b = [0u8; 4];
                self.put(c.encode_utf8(&mut b));
                spaces = false;
            }
        }
    }

    fn literal(&mut self, s: &str, indent: usize) {
        let chomp = if !s.ends_with('\n') {
            "-"
        } else if s == "\n" || s.ends_with("\n\n") {
            "+"
        } else {
            ""
        };
        let hint = if s.starts_with(' ') || s.starts_with('\n') { "2" } else { "" };
        self.put(&format!("|{hint}{chomp}"));
        let body = s.strip_suffix('\n').unwrap_or(s);
        for line in body.split('\n') {
            self.newline();
            if !line.is_empty() {
                self.put(&" ".repeat(indent));
                self.put(line);
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// go-yaml v2's choice for a string (`encode.go` stringv + the emitter's scalar analysis).
fn style(s: &str, allow_literal: bool) -> Style {
    let a = analyze(s);
    if s.contains('\n') {
        return if allow_literal && a.block_allowed { Style::Literal } else { Style::Double };
    }
    if resolves_to_non_string(s) {
        return Style::Double;
    }
    if a.plain_allowed {
        Style::Plain
    } else if a.single_allowed {
        Style::Single
    } else {
        Style::Double
    }
}

struct Analysis {
    plain_allowed: bool,
    single_allowed: bool,
    block_allowed: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis { plain_allowed: false, single_allowed: true, block_allowed: false };
    }
    let chars: Vec<char> = s.chars().collect();
    let (mut flow_ind, mut block_ind, mut special) = (false, false, false);
    let (mut leading_space, mut trailing_space, mut leading_break, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break, mut line_breaks) = (false, false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    if s.starts_with("---") || s.starts_with("...") {
        flow_ind = true;
        block_ind = true;
    }
    let mut preceded_by_ws = true;
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let followed_by_ws = next.is_none_or(|n| n == ' ' || n == '\t' || n == '\n' || n == '\r');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                    flow_ind = true;
                    block_ind = true;
                }
                '?' | ':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                '-' if followed_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => flow_ind = true,
                ':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                '#' if preceded_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        }
        let printable = !(c.is_control() && c != '\n' && c != '\t') && c != '\u{feff}';
        if !printable {
            special = true;
        }
        if c == '\n' {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == chars.len() - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if c == '\n' {
            if i == 0 {
                leading_break = true;
            }
            if i == chars.len() - 1 {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    }
    let mut plain = true;
    let mut single = true;
    let mut block = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        plain = false;
    }
    if trailing_space {
        block = false;
    }
    if break_space {
        plain = false;
        single = false;
    }
    if space_break || special {
        plain = false;
        single = false;
        block = false;
    }
    if line_breaks || block_ind {
        plain = false;
    }
    let _ = flow_ind;
    Analysis { plain_allowed: plain, single_allowed: single, block_allowed: block }
}

/// Whether go-yaml v2 would read the plain text back as something other than a string (null, a
/// YAML 1.1 boolean, an int, a float, a timestamp, a base-60 number, the merge key).
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True",
        "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf", ".INF", "+.inf",
        "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    if !(first.is_ascii_digit() || matches!(first, '-' | '+' | '.')) {
        return false;
    }
    is_go_int(&s.replace('_', "")) || is_yaml_float(s) || is_timestamp(s) || is_base60(s)
}

/// Go's `strconv.ParseInt(s, 0, 64)` / `ParseUint` acceptance (sign, 0x/0o/0b prefixes, leading-0 octal).
fn is_go_int(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    let (digits, radix) = if let Some(h) = lower.strip_prefix("0x") {
        (h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (b, 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (&lower[1..], 8)
    } else {
        (lower.as_str(), 10)
    };
    !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix)) && u64::from_str_radix(digits, radix).is_ok()
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mant, exp) = match b.find(['e', 'E']) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let mant_ok = match mant.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && frac.bytes().all(|c| c.is_ascii_digit()),
        Some((int, frac)) => {
            !int.is_empty() && int.bytes().all(|c| c.is_ascii_digit()) && frac.bytes().all(|c| c.is_ascii_digit())
        }
        None => !mant.is_empty() && mant.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    mant_ok && exp_ok
}

/// `2006-1-2`, optionally followed by `T`/`t`/` ` and `15:4:5[.frac][Z|±hh:mm]`.
fn is_timestamp(s: &str) -> bool {
    let digits =
        |p: &str, min: usize, max: usize| (min..=max).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit());
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || !digits(d[0], 4, 4) || !digits(d[1], 1, 2) || !digits(d[2], 1, 2) {
        return false;
    }
    let Some(t) = time else { return true };
    let (clock, zone) = match t.find(['Z', '+', '-']) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let (hms, frac) = clock.split_once('.').map_or((clock, None), |(a, b)| (a, Some(b)));
    let p: Vec<&str> = hms.split(':').collect();
    let zone_ok = zone.is_empty()
        || zone == "Z"
        || (zone.len() == 6 && zone.as_bytes()[3] == b':' && digits(&zone[1..3], 2, 2) && digits(&zone[4..], 2, 2));
    p.len() == 3 && p.iter().all(|x| digits(x, 1, 2)) && frac.is_none_or(|f| digits(f, 1, 9)) && zone_ok
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, frac) = b.split_once('.').map_or((b, None), |(a, f)| (a, Some(f)));
    let mut parts = main.split(':');
    let head = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && head.starts_with(|c: char| c.is_ascii_digit())
        && head.bytes().all(|c| c.is_ascii_digit() || c == b'_')
        && rest.iter().all(|p| {
            (1..=2).contains(&p.len())
                && p.bytes().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || p.as_bytes()[0] <= b'5')
        })
        && frac.is_none_or(|f| f.bytes().all(|c| c.is_ascii_digit() || c == b'_'))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{feff}' => out.push_str("\\uFEFF"),
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02X}"));
                } else {
                    out.push_str(&format!("\\u{n:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// go-yaml v2's map key order (`sorter.go`): at the first differing character, two letters compare by
/// code point, a non-letter sorts before a letter, digit runs compare as numbers; else shorter first.
pub fn go_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl { Ordering::Less } else { Ordering::Greater };
        }
        let (mut an, mut bn): (u64, u64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as u64 - '0' as u64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as u64 - '0' as u64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn helm_shapes() {
        let v = json!({
            "version": "1.0", "name": "dev", "apiVersion": "v2", "appVersion": "v0.1.0",
            "kubeVersion": ">=1.16.0-0", "keywords": ["a", "b"],
            "maintainers": [{"name": "x", "email": "e"}],
            "annotations": {"images": "- a\n- b\n", "licenses": "Apache-2.0"},
        });
        assert_eq!(
            emit(&v),
            "annotations:\n  images: |\n    - a\n    - b\n  licenses: Apache-2.0\napiVersion: v2\nappVersion: v0.1.0\n\
             keywords:\n- a\n- b\nkubeVersion: '>=1.16.0-0'\nmaintainers:\n- email: e\n  name: x\nname: dev\n\
             version: \"1.0\"\n"
        );
    }

    #[test]
    fn folds_past_80_columns() {
        let d =
            "The fastest, most reliable, open source relational database. Created by the original developers of MySQL.";
        let out = emit(&json!({ "description": d }));
        let first = out.lines().next().unwrap();
        assert!(first.len() > 80 && first.len() < 100, "{out}");
        assert!(out.lines().nth(1).unwrap().starts_with("  "), "{out}");
    }

    #[test]
    fn scalars_needing_quotes() {
        for (s, want) in [
            ("", "\"\""),
            ("true", "\"true\""),
            ("1.10", "\"1.10\""),
            ("0755", "\"0755\""),
            ("2025-08-13T19:31:58.340987883Z", "\"2025-08-13T19:31:58.340987883Z\""),
            ("1.2.3", "1.2.3"),
            ("sha256:ab", "sha256:ab"),
            ("a: b", "'a: b'"),
            ("x ", "'x '"),
        ] {
            assert_eq!(emit(&json!({ "k": s })), format!("k: {want}\n"), "{s:?}");
        }
    }

    #[test]
    fn key_order() {
        let mut k = vec!["version", "apiVersion", "annotations", "a10", "a9", "A", "_x"];
        k.sort_by(|a, b| go_key_order(a, b));
        assert_eq!(k, ["_x", "A", "a9", "a10", "annotations", "apiVersion", "version"]);
    }
}
