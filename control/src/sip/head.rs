//! Scanning the start line and header section, shared by datagram parsing and
//! stream framing so that both agree on where a message's body starts.

use super::headers::Headers;
use super::syntax::is_token;
use super::{Method, ParseLimits, SipParseError, StartLine};

/// The start line and headers of a message, and where its body starts.
#[derive(Debug)]
pub(crate) struct Head {
    pub start: StartLine,
    pub headers: Headers,
    /// Offset of the first body byte in the scanned buffer.
    pub body_offset: usize,
}

/// Scans the head of the message at the start of `data` (leading keep-alive
/// CRLFs already skipped). `Ok(None)` when the empty line ending the header
/// section has not arrived yet. Lines may end in CRLF or bare LF.
pub(crate) fn scan_head(data: &[u8], limits: &ParseLimits) -> Result<Option<Head>, SipParseError> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut start: Option<StartLine> = None;
    let mut pos = 0;
    let body_offset = loop {
        let rest = data.get(pos..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            // A line's CR is not part of its length (as below): a line of
            // exactly the limit must not fail while its LF is still on the
            // way, or framing would depend on how TCP segmented it.
            let partial = rest.strip_suffix(b"\r").unwrap_or(rest);
            if partial.len() > limits.max_line_len {
                return Err(SipParseError::LineTooLong {
                    max: limits.max_line_len,
                });
            }
            return Ok(None);
        };
        let raw = rest.get(..nl).unwrap_or_default();
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.len() > limits.max_line_len {
            return Err(SipParseError::LineTooLong {
                max: limits.max_line_len,
            });
        }
        pos += nl + 1;
        if line.is_empty() {
            break pos;
        }
        if start.is_none() {
            // Parse the start line as soon as it is complete: on a stream,
            // garbage is rejected now rather than after max_message_len bytes.
            start = Some(parse_start_line(line)?);
        } else {
            lines.push(line);
        }
    };
    let start = start.ok_or(SipParseError::Empty)?;
    let headers = parse_header_lines(&lines, limits)?;
    Ok(Some(Head {
        start,
        headers,
        body_offset,
    }))
}

/// Unfolds continuation lines (RFC 3261 §7.3.1) and splits `name: value`.
/// Header bytes that are not UTF-8 (Latin-1 display names from old PBXs) are
/// replaced rather than rejected: a recording should not fail over a name.
fn parse_header_lines(lines: &[&[u8]], limits: &ParseLimits) -> Result<Headers, SipParseError> {
    let mut headers = Headers::new();
    let mut current: Option<(String, String)> = None;
    for (index, line) in lines.iter().enumerate() {
        // Line 1 is the start line.
        let line_no = index + 2;
        let text = String::from_utf8_lossy(line);
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            let (_, value) = current
                .as_mut()
                .ok_or(SipParseError::MalformedHeaderLine { line: line_no })?;
            let more = text.trim();
            if !more.is_empty() {
                // `Name:` with the whole value on the next line must read
                // the same as `Name: value`, or a folded Call-ID would not
                // match its unfolded retransmission.
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
            continue;
        }
        if let Some((name, value)) = current.take() {
            push_header(&mut headers, name, value, limits)?;
        }
        let (name, value) = text
            .split_once(':')
            .ok_or(SipParseError::MalformedHeaderLine { line: line_no })?;
        let name = name.trim_end();
        if !is_token(name) {
            return Err(SipParseError::MalformedHeaderLine { line: line_no });
        }
        current = Some((name.to_owned(), value.trim().to_owned()));
    }
    if let Some((name, value)) = current {
        push_header(&mut headers, name, value, limits)?;
    }
    Ok(headers)
}

fn push_header(
    headers: &mut Headers,
    name: String,
    value: String,
    limits: &ParseLimits,
) -> Result<(), SipParseError> {
    if headers.len() >= limits.max_headers {
        return Err(SipParseError::TooManyHeaders {
            max: limits.max_headers,
        });
    }
    headers.add(&name, value);
    Ok(())
}

/// `Request-Line = Method SP Request-URI SP SIP-Version` or
/// `Status-Line = SIP-Version SP Status-Code SP Reason-Phrase`.
pub(crate) fn parse_start_line(line: &[u8]) -> Result<StartLine, SipParseError> {
    let text = String::from_utf8_lossy(line);
    let is_response = text
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"));
    if is_response {
        let mut parts = text.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let code = parts.next().unwrap_or_default();
        let reason = parts.next().unwrap_or_default().trim();
        if !is_sip_version(version) || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(SipParseError::MalformedStatusLine);
        }
        let code: u16 = code
            .parse()
            .map_err(|_| SipParseError::MalformedStatusLine)?;
        if !(100..=699).contains(&code) {
            return Err(SipParseError::MalformedStatusLine);
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_owned(),
        });
    }
    let parts: Vec<&str> = text.split_ascii_whitespace().collect();
    match parts.as_slice() {
        [method, uri, version] if is_token(method) && is_sip_version(version) => {
            Ok(StartLine::Request {
                method: Method::from_token(method),
                uri: (*uri).to_owned(),
                version: (*version).to_owned(),
            })
        }
        _ => Err(SipParseError::MalformedRequestLine),
    }
}

/// `SIP/<digits>.<digits>`; the version itself is checked by the caller
/// (a request for another version deserves a 505, not a 400).
fn is_sip_version(s: &str) -> bool {
    let Some(number) = s
        .get(4..)
        .filter(|_| s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")))
    else {
        return false;
    };
    match number.split_once('.') {
        Some((major, minor)) => {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_lines() {
        assert_eq!(
            parse_start_line(b"SIP/2.0 200 OK").unwrap(),
            StartLine::Response {
                code: 200,
                reason: "OK".into()
            }
        );
        assert_eq!(
            parse_start_line(b"SIP/2.0 183").unwrap(),
            StartLine::Response {
                code: 183,
                reason: String::new()
            }
        );
        assert!(matches!(
            parse_start_line(b"INVITE sip:a@b SIP/2.0").unwrap(),
            StartLine::Request {
                method: Method::Invite,
                ..
            }
        ));
        for bad in [
            &b"SIP/2.0 20 OK"[..],
            b"SIP/2.0 700 Nope",
            b"SIP/2.0 2x0 OK",
            b"SIP/x 200 OK",
            b"GET / HTTP/1.1",
            b"INVITE sip:a@b",
            b"INV{TE sip:a@b SIP/2.0",
            b"",
        ] {
            assert!(
                parse_start_line(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn folding_and_bad_lines() {
        let limits = ParseLimits::default();
        let head = scan_head(
            b"OPTIONS sip:a SIP/2.0\r\nSubject: one\r\n  two\r\n\tthree\r\nTo : x\r\n\r\nbody",
            &limits,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.headers.get("s"), Some("one two three"));
        assert_eq!(head.headers.get("To"), Some("x"));
        assert_eq!(head.body_offset, 62);
        assert_eq!(
            scan_head(b"OPTIONS sip:a SIP/2.0\r\n continued\r\n\r\n", &limits).unwrap_err(),
            SipParseError::MalformedHeaderLine { line: 2 }
        );
        assert_eq!(
            scan_head(b"OPTIONS sip:a SIP/2.0\r\nTo x\r\n\r\n", &limits).unwrap_err(),
            SipParseError::MalformedHeaderLine { line: 2 }
        );
        assert!(scan_head(b"OPTIONS sip:a SIP/2.0\r\nTo: x\r\n", &limits)
            .unwrap()
            .is_none());
    }

    /// Found by the sip_datagram fuzz target: a header whose value starts
    /// on a continuation line got a leading space, so it re-serialised as
    /// `Call-ID:  abc` and compared unequal to the same value unfolded.
    #[test]
    fn a_line_at_the_limit_waiting_for_its_lf_is_not_too_long() {
        // Found by the sip_stream fuzz target: the same bytes framed whole
        // and in TCP-sized chunks must give the same answer.
        let limits = ParseLimits {
            max_line_len: 24,
            ..ParseLimits::default()
        };
        let line = [b"OPTIONS sip:a SIP/2.0\r\n".as_slice(), &[b'X'; 24]].concat();
        let mut partial = line.clone();
        partial.push(b'\r');
        assert_eq!(scan_head(&partial, &limits).map(|h| h.is_some()), Ok(false));
        partial.push(b'X');
        assert!(matches!(
            scan_head(&partial, &limits),
            Err(SipParseError::LineTooLong { .. })
        ));
    }

    #[test]
    fn value_entirely_on_a_continuation_line() {
        let limits = ParseLimits::default();
        let head = scan_head(
            b"OPTIONS sip:a SIP/2.0\r\nCall-ID:\r\n  abc@host\r\nSubject:\r\n\tone\r\n two\r\n\r\n",
            &limits,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.headers.get("Call-ID"), Some("abc@host"));
        assert_eq!(head.headers.get("Subject"), Some("one two"));
    }
}
