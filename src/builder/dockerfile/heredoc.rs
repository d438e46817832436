//! Here-document markers: finding `<<EOF`, `<<-EOF`, `<<'EOF'`, `<<"EOF"` and `3<<EOF` words in an
//! instruction line, as BuildKit does (lex the line keeping quotes and escapes, then match each
//! word against `^(\d*)<<(-?)([^<]*)$`), and deciding from the quoting whether the body expands.
//! Reading the bodies is [`super::parser`]'s job.

use super::ast::Heredoc;
use super::expand::{self, ExpandError, Options};

/// Never has a value: here-document markers are lexed with an empty environment.
fn no_env(_: &str) -> Option<String> {
    None
}

/// Every here-document marker in `line`, in order, with empty contents. A line that does not lex
/// (an unterminated quote, say) has none, as in BuildKit.
pub(crate) fn markers_in_line(line: &str) -> Result<Vec<Heredoc>, ExpandError> {
    let options = Options { raw_quotes: true, raw_escapes: true, skip_unset: true };
    let Ok((_, words)) = expand::process(line, &no_env, '\\', options) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for word in words {
        found.extend(marker(&word)?);
    }
    Ok(found)
}

/// `Some` if `word` is a here-document marker. Errors when its terminator does not lex.
pub(crate) fn marker(word: &str) -> Result<Option<Heredoc>, ExpandError> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp_tabs, rest) = match after.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, after),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let cooked = Options { skip_unset: true, ..Options::default() };
    let (_, words) = expand::process(rest, &no_env, '\\', cooked)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let (_, raw_words) = expand::process(rest, &no_env, '\\', Options { raw_quotes: true, ..cooked })?;
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    // Quotes that disappeared when lexing were real quotes around (part of) the terminator.
    let expand = raw_words.len() == 1 && quotes(name) == quotes(&raw_words[0]);
    Ok(Some(Heredoc {
        name: name.clone(),
        content: String::new(),
        expand,
        chomp_tabs,
        fd: word[..digits].parse().ok(),
    }))
}

/// `<<-` bodies: leading tabs removed from every line.
pub(crate) fn chomp_tabs(content: &str) -> String {
    content.split_inclusive('\n').map(|line| line.trim_start_matches('\t')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<String> {
        markers_in_line(line).unwrap().into_iter().map(|h| h.name).collect()
    }

    #[test]
    fn plain_marker() {
        let h = marker("<<EOF").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.chomp_tabs, h.fd), ("EOF", true, false, None));
    }

    #[test]
    fn dash_marker_chomps() {
        let h = marker("<<-EOF").unwrap().unwrap();
        assert!(h.chomp_tabs && h.expand);
    }

    #[test]
    fn quoted_markers_do_not_expand() {
        for word in ["<<'EOF'", "<<\"EOF\"", "<<-'EOF'", "<<E'O'F"] {
            let h = marker(word).unwrap().unwrap();
            assert_eq!(h.name, "EOF", "{word}");
            assert!(!h.expand, "{word}");
        }
    }

    #[test]
    fn file_descriptor_prefix() {
        assert_eq!(marker("3<<EOF").unwrap().unwrap().fd, Some(3));
    }

    #[test]
    fn not_markers() {
        for word in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "a<<EOF", "<<A<B"] {
            assert_eq!(marker(word).unwrap(), None, "{word:?}");
        }
    }

    #[test]
    fn unterminated_quote_in_marker_is_an_error() {
        for word in ["<<'EOF", "<<\"EOF"] {
            assert!(marker(word).is_err(), "{word}");
        }
    }

    #[test]
    fn markers_found_in_a_line() {
        assert_eq!(names("RUN <<EOF"), ["EOF"]);
        assert_eq!(names("COPY <<FILE1 <<-FILE2 /dest"), ["FILE1", "FILE2"]);
        assert_eq!(names("RUN 4<<EOF"), ["EOF"]);
        assert_eq!(names("RUN python3 <<'EOF' > out"), ["EOF"]);
    }

    #[test]
    fn quoted_whole_word_is_not_a_marker() {
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
    }

    #[test]
    fn line_that_does_not_lex_has_no_markers() {
        assert!(names("RUN echo 'unterminated <<EOF").is_empty());
    }

    #[test]
    fn chomp_removes_leading_tabs_per_line() {
        assert_eq!(chomp_tabs("\t\thello\n\tworld\n x\t\n"), "hello\nworld\n x\t\n");
    }
}
