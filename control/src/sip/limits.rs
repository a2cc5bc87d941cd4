//! Resource limits applied while parsing, so that a hostile or broken peer can
//! make the parser fail but never make it allocate without bound.

/// Limits applied by [`SipMessage::parse_with_limits`](super::SipMessage::parse_with_limits)
/// and the stream [`framing`](super::framing) functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest whole message (start line, headers and body). SIPREC INVITEs
    /// with multi-party metadata reach tens of KiB; 256 KiB leaves room
    /// without letting one TCP peer pin much memory.
    pub max_message_len: usize,
    /// Largest number of header fields (after unfolding).
    pub max_headers: usize,
    /// Longest single physical line, start line included.
    pub max_line_len: usize,
}

impl ParseLimits {
    /// 256 KiB messages, 256 headers, 8 KiB lines.
    pub const DEFAULT: ParseLimits = ParseLimits {
        max_message_len: 256 * 1024,
        max_headers: 256,
        max_line_len: 8 * 1024,
    };
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
