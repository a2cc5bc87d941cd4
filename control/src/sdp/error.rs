//! Why an SDP body was rejected. Messages are single-line and short enough to
//! be the reason phrase of a 400/488.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("SDP is empty")]
    Empty,
    #[error("SDP does not start with v=")]
    MissingVersion,
    #[error("unsupported SDP version {0}")]
    UnsupportedVersion(String),
    #[error("SDP has no o= line")]
    MissingOrigin,
    /// A line that matters is malformed: `what` says which field, `text` is
    /// an excerpt of the line (control characters replaced, length capped).
    #[error("SDP line {line}: {what} ({text})")]
    Line {
        line: usize,
        what: &'static str,
        text: String,
    },
    /// A value handed to a builder method is invalid.
    #[error("invalid SDP {0}")]
    InvalidValue(&'static str),
}
