//! Why the layer refused a request or a response. Neither is fatal: the
//! driver logs the first, the TU the second.

use thiserror::Error;

use super::event::TxnId;
use crate::sip::SipParseError;

/// A message handed to [`ServerTransactions::on_request`](super::ServerTransactions::on_request)
/// that cannot belong to any transaction. [`SipMessage::parse`](crate::sip::SipMessage::parse)
/// already rejects these, so this only happens with hand-built messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    #[error("not a request")]
    NotARequest,
    /// Call-ID or CSeq, which every matching rule needs, is absent or bad.
    #[error("request cannot be matched to a transaction: {0}")]
    Unmatchable(#[from] SipParseError),
}

/// A response the TU passed to [`ServerTransactions::respond`](super::ServerTransactions::respond)
/// that was not sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RespondError {
    #[error("not a response")]
    NotAResponse,
    #[error("status code {0} is outside 100-699")]
    InvalidStatus(u16),
    /// The transaction has terminated (timer, transport error) or never
    /// existed. Typical after a CANCEL race or a slow TU.
    #[error("{0} does not exist (terminated or never created)")]
    UnknownTransaction(TxnId),
    /// A final response was already sent; only further 2xx may follow a 2xx
    /// (RFC 6026 §7.1).
    #[error("{0} has already sent a final response")]
    FinalAlreadySent(TxnId),
}

/// The status code of a response the TU wants sent: 100–699, or why not.
pub(crate) fn response_status(response: &crate::sip::SipMessage) -> Result<u16, RespondError> {
    let code = response.status().ok_or(RespondError::NotAResponse)?;
    if !(100..=699).contains(&code) {
        return Err(RespondError::InvalidStatus(code));
    }
    Ok(code)
}
