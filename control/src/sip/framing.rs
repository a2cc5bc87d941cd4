//! Message boundaries on stream transports (TCP, TLS; RFC 3261 §18.3): the
//! header section ends at the first empty line and the body is exactly
//! Content-Length bytes, which is therefore mandatory on streams.
//!
//! The caller keeps a receive buffer, asks [`message_length`] after each read,
//! and when it gets `Some(n)` hands `buf[..n]` to
//! [`SipMessage::parse`](super::SipMessage::parse) and drains `n` bytes.
//! Any error means the stream can no longer be framed: close the connection.

use super::head::scan_head;
use super::message::{leading_crlf_len, parse_content_length};
use super::{ParseLimits, SipParseError};

/// Length of the first complete message in `buf`, including the CRLF
/// keep-alives before it (so draining that many bytes consumes them too);
/// `Ok(None)` if more bytes are needed. Uses the default [`ParseLimits`].
pub fn message_length(buf: &[u8]) -> Result<Option<usize>, SipParseError> {
    message_length_with_limits(buf, &ParseLimits::default())
}

/// [`message_length`] with explicit limits. A message whose head is still
/// incomplete after `max_message_len` bytes, or whose Content-Length would
/// take it past that, is an error rather than an ever-growing buffer.
pub fn message_length_with_limits(
    buf: &[u8],
    limits: &ParseLimits,
) -> Result<Option<usize>, SipParseError> {
    let skipped = leading_crlf_len(buf);
    let data = buf.get(skipped..).unwrap_or_default();
    if data.is_empty() {
        return Ok(None);
    }
    let Some(head) = scan_head(data, limits)? else {
        if data.len() > limits.max_message_len {
            return Err(SipParseError::MessageTooLarge {
                len: data.len(),
                max: limits.max_message_len,
            });
        }
        return Ok(None);
    };
    let body_len =
        parse_content_length(&head.headers)?.ok_or(SipParseError::ContentLengthRequired)?;
    let message_len = head.body_offset.saturating_add(body_len);
    if message_len > limits.max_message_len {
        return Err(SipParseError::MessageTooLarge {
            len: message_len,
            max: limits.max_message_len,
        });
    }
    if data.len() < message_len {
        return Ok(None);
    }
    Ok(Some(skipped + message_len))
}

/// Number of CR/LF bytes at the start of `buf`. RFC 5626 §3.5.1: a client's
/// double-CRLF "ping" deserves a single-CRLF "pong"; check this before
/// [`message_length`] (which silently consumes keep-alives) if you answer them.
pub fn leading_keepalive_len(buf: &[u8]) -> usize {
    leading_crlf_len(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:srs@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.2;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nbody";

    #[test]
    fn whole_split_and_concatenated() {
        assert_eq!(message_length(MSG), Ok(Some(MSG.len())));
        for cut in 0..MSG.len() {
            assert_eq!(message_length(&MSG[..cut]), Ok(None), "cut at {cut}");
        }
        let mut two = b"\r\n\r\n".to_vec();
        two.extend_from_slice(MSG);
        two.extend_from_slice(MSG);
        assert_eq!(message_length(&two), Ok(Some(4 + MSG.len())));
        assert_eq!(message_length(&two[4 + MSG.len()..]), Ok(Some(MSG.len())));
        assert_eq!(leading_keepalive_len(&two), 4);
    }

    #[test]
    fn errors() {
        assert_eq!(message_length(b"\r\n\r\n"), Ok(None));
        assert_eq!(
            message_length(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n"),
            Err(SipParseError::ContentLengthRequired)
        );
        assert_eq!(
            message_length(b"GET / HTTP/1.1\r\n"),
            Err(SipParseError::MalformedRequestLine)
        );
        let limits = ParseLimits {
            max_message_len: 64,
            ..ParseLimits::default()
        };
        assert!(matches!(
            message_length_with_limits(b"OPTIONS sip:a SIP/2.0\r\nl: 100\r\n\r\n", &limits),
            Err(SipParseError::MessageTooLarge { .. })
        ));
        let long_head = [b"OPTIONS sip:a SIP/2.0\r\n".as_slice(), &[b'X'; 100]].concat();
        assert!(matches!(
            message_length_with_limits(&long_head, &limits),
            Err(SipParseError::LineTooLong { .. }) | Err(SipParseError::MessageTooLarge { .. })
        ));
    }

    /// Found by the sip_stream fuzz target: keep-alives before a message of
    /// exactly the size limit. The framer limits the message without them
    /// and accepted it; the parser limited the frame with them and refused
    /// it, so a legitimate near-limit message after a CRLF ping was lost.
    #[test]
    fn keepalives_do_not_count_against_the_limit() {
        let msg = b"OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n";
        let limits = ParseLimits {
            max_message_len: msg.len(),
            ..ParseLimits::default()
        };
        let stream = [b"\r\n\r\n".as_slice(), msg].concat();
        let n = message_length_with_limits(&stream, &limits)
            .unwrap()
            .unwrap();
        assert_eq!(n, stream.len());
        let parsed = crate::sip::SipMessage::parse_unvalidated(&stream[..n], &limits).unwrap();
        assert!(parsed.body.is_empty());
        let too_big = [stream.as_slice(), b"x"].concat();
        assert!(matches!(
            crate::sip::SipMessage::parse_unvalidated(&too_big, &limits),
            Err(SipParseError::MessageTooLarge { .. })
        ));
    }
}
