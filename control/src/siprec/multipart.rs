//! `multipart/mixed` bodies (RFC 2046 §5.1) as SIPREC SRCs send them: SDP plus
//! recording metadata, sometimes more (Cisco adds `application/gtd`).
//!
//! Tolerated, because vendors do it: quoted or bare boundaries, CRLF or bare
//! LF (AudioCodes), preamble and epilogue, whitespace after a delimiter, part
//! headers without a space after the colon (BroadWorks), parts in any order,
//! and parts that start directly with content and no header section. Not
//! tolerated: a body without its opening or closing delimiter (a truncated
//! message must not be half-recorded).

use crate::sip::syntax::is_token;
use crate::sip::ContentType;
use thiserror::Error;

/// Most parts accepted in one body (SIPREC needs two or three).
pub const MAX_PARTS: usize = 32;

/// One body part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPart {
    /// Lowercased `type/subtype`; `text/plain` when the part has no
    /// Content-Type (the RFC 2046 default).
    pub content_type: String,
    /// The raw Content-Disposition value (`recording-session`,
    /// `session;handling=required`), if any.
    pub content_disposition: Option<String>,
    /// Every part header in order, names as written, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl BodyPart {
    /// A part header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The disposition type, lowercased (`recording-session`, `session`).
    pub fn disposition_type(&self) -> Option<String> {
        let disposition = self.content_disposition.as_deref()?;
        let kind = disposition.split(';').next()?.trim();
        (!kind.is_empty()).then(|| kind.to_ascii_lowercase())
    }

    /// Whether Content-Disposition says `handling=required` (RFC 3204): an
    /// unsupported part marked so must make the whole request fail with 415.
    pub fn handling_required(&self) -> bool {
        self.content_disposition.as_deref().is_some_and(|d| {
            d.split(';').skip(1).any(|p| {
                p.split_once('=').is_some_and(|(n, v)| {
                    n.trim().eq_ignore_ascii_case("handling")
                        && v.trim().eq_ignore_ascii_case("required")
                })
            })
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MultipartError {
    #[error("multipart Content-Type without a boundary")]
    MissingBoundary,
    #[error("multipart boundary is not valid")]
    InvalidBoundary,
    #[error("multipart body has no opening boundary")]
    NoOpeningBoundary,
    #[error("multipart body has no closing boundary")]
    NoClosingBoundary,
    #[error("multipart body has no parts")]
    NoParts,
    #[error("multipart body has more than {max} parts")]
    TooManyParts { max: usize },
    #[error("malformed {header} header in body part {part}")]
    MalformedPartHeader { part: usize, header: &'static str },
}

/// Splits `body` according to `content_type`. A body that is not
/// `multipart/*` is returned as a single part of that type (no headers), so
/// callers handle plain `application/sdp` and multipart bodies alike.
pub fn parse(content_type: &ContentType, body: &[u8]) -> Result<Vec<BodyPart>, MultipartError> {
    if !content_type.is_multipart() {
        return Ok(vec![BodyPart {
            content_type: content_type.mime_type.clone(),
            content_disposition: None,
            headers: Vec::new(),
            body: body.to_vec(),
        }]);
    }
    let boundary = content_type
        .boundary()
        .ok_or(MultipartError::MissingBoundary)?;
    // RFC 2046 allows 1-70 characters; some stacks exceed 70, so allow more
    // but keep it bounded.
    if boundary.len() > 200 || boundary.contains(['\r', '\n']) {
        return Err(MultipartError::InvalidBoundary);
    }
    let delimiters = find_delimiters(body, boundary.as_bytes());
    let first = delimiters
        .first()
        .ok_or(MultipartError::NoOpeningBoundary)?;
    if first.closing {
        return Err(MultipartError::NoParts);
    }
    let mut parts = Vec::new();
    for pair in delimiters.windows(2) {
        let [open, next] = pair else { continue };
        if open.closing {
            break;
        }
        if parts.len() >= MAX_PARTS {
            return Err(MultipartError::TooManyParts { max: MAX_PARTS });
        }
        let content = part_content(body, open.content_start, next.line_start);
        parts.push(parse_part(content, parts.len() + 1)?);
        if next.closing {
            return Ok(parts);
        }
    }
    Err(MultipartError::NoClosingBoundary)
}

/// A delimiter line: where it starts, where the following content starts,
/// and whether it is the closing `--boundary--`.
#[derive(Debug)]
struct Delimiter {
    line_start: usize,
    content_start: usize,
    closing: bool,
}

/// Finds every line that is `--boundary` (optionally followed by `--`, then
/// optional whitespace) at the start of a line.
fn find_delimiters(body: &[u8], boundary: &[u8]) -> Vec<Delimiter> {
    let mut found = Vec::new();
    let mut line_start = 0;
    while line_start <= body.len() {
        let rest = body.get(line_start..).unwrap_or_default();
        let line_len = rest.iter().position(|&b| b == b'\n');
        let line = rest
            .get(..line_len.unwrap_or(rest.len()))
            .unwrap_or_default();
        let next_line = line_len.map_or(body.len() + 1, |len| line_start + len + 1);
        if let Some(after) = line
            .strip_prefix(b"--")
            .and_then(|l| l.strip_prefix(boundary))
        {
            let (closing, tail) = match after.strip_prefix(b"--") {
                Some(tail) => (true, tail),
                None => (false, after),
            };
            // "--boundaryX" is content, not a delimiter.
            if tail.iter().all(|b| b.is_ascii_whitespace()) {
                found.push(Delimiter {
                    line_start,
                    content_start: next_line.min(body.len()),
                    closing,
                });
                if closing {
                    break;
                }
            }
        }
        if line_len.is_none() {
            break;
        }
        line_start = next_line;
    }
    found
}

/// The bytes between a delimiter line and the next, without the line break
/// that precedes the next delimiter (it belongs to the delimiter).
fn part_content(body: &[u8], start: usize, next_delimiter: usize) -> &[u8] {
    let mut end = next_delimiter;
    if end > start && body.get(end - 1) == Some(&b'\n') {
        end -= 1;
        if end > start && body.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
    }
    body.get(start..end.max(start)).unwrap_or_default()
}

/// Splits a part into headers and body. `number` is 1-based, for errors.
fn parse_part(content: &[u8], number: usize) -> Result<BodyPart, MultipartError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    loop {
        let rest = content.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            break;
        }
        let line_len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let raw = rest.get(..line_len).unwrap_or_default();
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let after_line = (pos + line_len + 1).min(content.len());
        if line.is_empty() {
            pos = after_line;
            break;
        }
        let text = String::from_utf8_lossy(line);
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(text.trim());
                pos = after_line;
                continue;
            }
        }
        match header_line(&text) {
            Some((name, value)) => headers.push((name, value)),
            // Content without a header section (or without the empty line
            // after the headers): the body starts here.
            None => break,
        }
        pos = after_line;
    }
    let body = content.get(pos..).unwrap_or_default().to_vec();
    let content_type = match headers.iter().find(|(n, _)| is_content_type(n)) {
        Some((_, value)) => {
            ContentType::parse(value)
                .map_err(|_| MultipartError::MalformedPartHeader {
                    part: number,
                    header: "Content-Type",
                })?
                .mime_type
        }
        None => "text/plain".to_owned(),
    };
    let content_disposition = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Disposition"))
        .map(|(_, v)| v.clone());
    Ok(BodyPart {
        content_type,
        content_disposition,
        headers,
        body,
    })
}

fn is_content_type(name: &str) -> bool {
    name.eq_ignore_ascii_case("Content-Type") || name.eq_ignore_ascii_case("c")
}

/// `Name:value` (any whitespace after the colon) with a token name.
fn header_line(text: &str) -> Option<(String, String)> {
    let (name, value) = text.split_once(':')?;
    let name = name.trim_end();
    is_token(name).then(|| (name.to_owned(), value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ct(boundary: &str) -> ContentType {
        ContentType::parse(&format!("multipart/mixed;boundary={boundary}")).unwrap()
    }

    const BODY: &[u8] = b"preamble\r\n--foo\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--foo  \r\nContent-Type:application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n<recording/>\r\n--foo--\r\nepilogue";

    #[test]
    fn splits_parts() {
        let parts = parse(&ct("foo"), BODY).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_type, "application/sdp");
        // The CRLF before the delimiter belongs to the delimiter.
        assert_eq!(parts[0].body, b"v=0\r\n");
        assert_eq!(parts[1].content_type, "application/rs-metadata+xml");
        assert_eq!(
            parts[1].disposition_type().as_deref(),
            Some("recording-session")
        );
        assert_eq!(parts[1].body, b"<recording/>");
    }

    #[test]
    fn bare_lf_quoted_boundary_and_headerless_parts() {
        let body = b"--a'b (c)\nContent-Type: Application/SDP\n\nv=0\n--a'b (c)\n<?xml version=\"1.0\"?><recording/>\n--a'b (c)--";
        let ct = ContentType::parse("multipart/mixed; boundary=\"a'b (c)\"").unwrap();
        let parts = parse(&ct, body).unwrap();
        assert_eq!(parts[0].content_type, "application/sdp");
        assert_eq!(parts[0].body, b"v=0");
        assert_eq!(parts[1].content_type, "text/plain");
        assert!(parts[1].headers.is_empty());
        assert_eq!(parts[1].body, b"<?xml version=\"1.0\"?><recording/>");
    }

    #[test]
    fn non_multipart_is_one_part() {
        let parts = parse(&ContentType::parse("application/sdp").unwrap(), b"v=0").unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].content_type, "application/sdp");
    }

    #[test]
    fn similar_lines_are_content() {
        let body = b"--foo\r\n\r\n--foobar\r\n--foo-x\r\n--foo--";
        let parts = parse(&ct("foo"), body).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body, b"--foobar\r\n--foo-x");
    }

    #[test]
    fn malformed_bodies() {
        let truncated = &BODY[..BODY.len() - 20];
        assert_eq!(
            parse(&ct("foo"), truncated),
            Err(MultipartError::NoClosingBoundary)
        );
        assert_eq!(
            parse(&ct("bar"), BODY),
            Err(MultipartError::NoOpeningBoundary)
        );
        assert_eq!(
            parse(&ct("foo"), b"--foo--\r\n"),
            Err(MultipartError::NoParts)
        );
        assert_eq!(
            parse(&ContentType::parse("multipart/mixed").unwrap(), BODY),
            Err(MultipartError::MissingBoundary)
        );
        let bad_ct = b"--foo\r\nContent-Type: sdp\r\n\r\nv=0\r\n--foo--";
        assert_eq!(
            parse(&ct("foo"), bad_ct).unwrap_err().to_string(),
            "malformed Content-Type header in body part 1"
        );
        let many: Vec<u8> = (0..40)
            .flat_map(|_| b"--foo\r\n\r\nx\r\n".iter().copied())
            .collect();
        assert_eq!(
            parse(&ct("foo"), &many),
            Err(MultipartError::TooManyParts { max: MAX_PARTS })
        );
    }

    #[test]
    fn handling_required() {
        let parts = parse(
            &ct("b"),
            b"--b\r\nContent-Disposition: session; handling=REQUIRED\r\n\r\nx\r\n--b\r\nContent-Disposition: signal;handling=optional\r\n\r\ny\r\n--b--",
        )
        .unwrap();
        assert!(parts[0].handling_required());
        assert!(!parts[1].handling_required());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024), boundary in "[a-z-]{1,8}") {
            let _ = parse(&ct(&boundary), &bytes);
        }

        #[test]
        fn mutations_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12)) {
            let mut bytes = BODY.to_vec();
            for (index, byte) in edits {
                let at = index.index(bytes.len());
                bytes[at] = byte;
            }
            let _ = parse(&ct("foo"), &bytes);
        }
    }
}
