//! Small lexical helpers shared by the SIP header parsers (and reused by the
//! multipart and CUCM code): splitting lists and parameters without breaking
//! quoted strings or `<...>` URIs, and unquoting.

/// RFC 3261 `token` characters (§25.1): what method names, header names and
/// parameter names are made of.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Whether `s` is a non-empty RFC 3261 token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// Splits `s` at every `sep` that is outside a quoted string and outside
/// `<...>`, trimming the pieces and dropping empty ones.
///
/// Quoted strings may contain `\"`; an unterminated quote or `<` simply runs
/// to the end of the input (the caller decides whether the piece is valid).
pub(crate) fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut angle_depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '<' => angle_depth += 1,
            '>' => angle_depth = angle_depth.saturating_sub(1),
            _ if c == sep && angle_depth == 0 => {
                push_trimmed(&mut pieces, s.get(start..i).unwrap_or(""));
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    push_trimmed(&mut pieces, s.get(start..).unwrap_or(""));
    pieces
}

fn push_trimmed<'a>(pieces: &mut Vec<&'a str>, piece: &'a str) {
    let piece = piece.trim();
    if !piece.is_empty() {
        pieces.push(piece);
    }
}

/// Removes surrounding double quotes and resolves `\x` escapes; anything not
/// quoted is returned trimmed and unchanged.
pub(crate) fn unquote(s: &str) -> String {
    let s = s.trim();
    let inner = match s.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')) {
        Some(inner) => inner,
        None => return s.to_owned(),
    };
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses `;name[=value]` parameters (the leading `;` is optional). Values are
/// unquoted; names keep their case (compare them case-insensitively).
pub(crate) fn parse_params(s: &str) -> Vec<(String, Option<String>)> {
    split_outside_quotes(s, ';')
        .into_iter()
        .map(|p| match p.split_once('=') {
            Some((name, value)) => (name.trim().to_owned(), Some(unquote(value))),
            None => (p.to_owned(), None),
        })
        .collect()
}

/// Finds a parameter by case-insensitive name: `Some("")` for a flag
/// parameter without a value.
pub(crate) fn find_param<'a>(
    params: &'a [(String, Option<String>)],
    name: &str,
) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref().unwrap_or(""))
}

/// Truncates `s` to at most `max` bytes on a character boundary, replacing
/// control characters, so that it can go into a log line or a reason phrase.
pub(crate) fn excerpt(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() + c.len_utf8() > max {
            out.push_str("...");
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lists_respecting_quotes_and_angles() {
        let v = split_outside_quotes(r#""Doe, John" <sip:a@b;x=1,2>;p=",", <sip:c@d> , "#, ',');
        assert_eq!(v, vec![r#""Doe, John" <sip:a@b;x=1,2>;p=",""#, "<sip:c@d>"]);
        let v = split_outside_quotes(r#""a\"b,c", d"#, ',');
        assert_eq!(v, vec![r#""a\"b,c""#, "d"]);
    }

    #[test]
    fn unquotes_and_unescapes() {
        assert_eq!(unquote(r#" "a \"b\" c" "#), r#"a "b" c"#);
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("\""), "\"");
    }

    #[test]
    fn parses_params() {
        let p = parse_params(";tag=abc; lr ;q=\"0.5;x\"");
        assert_eq!(p.len(), 3);
        assert_eq!(find_param(&p, "TAG"), Some("abc"));
        assert_eq!(find_param(&p, "lr"), Some(""));
        assert_eq!(find_param(&p, "q"), Some("0.5;x"));
        assert_eq!(find_param(&p, "none"), None);
    }

    #[test]
    fn excerpt_is_char_safe() {
        assert_eq!(excerpt("héllo\r\nworld", 6), "héllo...");
        assert_eq!(excerpt("ab\tc", 10), "ab c");
    }
}
