//! Why a SIP message could not be parsed. Every message names what is wrong
//! and is short and single-line, so that `err.to_string()` can be used as the
//! reason phrase of the 400 that answers the request.

use thiserror::Error;

/// A malformed or over-limit SIP message, or a missing/malformed header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SipParseError {
    /// Nothing but CRLF keep-alives (or nothing at all).
    #[error("empty message")]
    Empty,
    /// The message (or, on a stream, the announced message) is over
    /// [`ParseLimits::max_message_len`](super::ParseLimits::max_message_len).
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    MessageTooLarge { len: usize, max: usize },
    /// A single line is over [`ParseLimits::max_line_len`](super::ParseLimits::max_line_len).
    #[error("line longer than {max} bytes")]
    LineTooLong { max: usize },
    /// More header fields than [`ParseLimits::max_headers`](super::ParseLimits::max_headers).
    #[error("more than {max} header fields")]
    TooManyHeaders { max: usize },
    /// No empty line ends the header section of a datagram.
    #[error("header section not terminated by an empty line")]
    UnterminatedHeaders,
    /// The first line is neither `METHOD uri SIP/x.y` nor `SIP/x.y code reason`.
    #[error("malformed request line")]
    MalformedRequestLine,
    /// `SIP/2.0 <3-digit code 100-699> <reason>` expected.
    #[error("malformed status line")]
    MalformedStatusLine,
    /// A header line without `name:` or a continuation line before any header.
    #[error("malformed header line {line}")]
    MalformedHeaderLine { line: usize },
    /// A header that is present but cannot be parsed (the canonical name).
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    /// A mandatory header is absent (the canonical name).
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    #[error("CSeq method {cseq} does not match request method {request}")]
    CSeqMethodMismatch { cseq: String, request: String },
    /// Content-Length announces more body than the datagram holds.
    #[error("Content-Length {declared} exceeds the {received} bytes received")]
    ContentLengthExceeds { declared: usize, received: usize },
    /// Stream transports (TCP/TLS) cannot frame a message without it.
    #[error("missing Content-Length header on a stream transport")]
    ContentLengthRequired,
}
