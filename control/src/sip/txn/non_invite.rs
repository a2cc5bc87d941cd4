//! The non-INVITE server transaction (RFC 3261 §17.2.2): BYE, OPTIONS,
//! INFO, UPDATE, PRACK, CANCEL, ...
//!
//! ```text
//!   request ----> Trying --1xx--> Proceeding --+
//!                   |  (retransmissions:       | final
//!                   |   absorbed / resend 1xx) |
//!                   +------ final -------------+--> Completed --Timer J--> Terminated
//!                                                 (64*T1 on UDP, 0 on TCP/TLS;
//!                                                  retransmissions resend the final)
//! ```

use std::time::Instant;

use super::error::RespondError;
use super::event::{Outbox, TxnId, TxnState};
use super::timers::{later, Timers};
use super::transport::Peer;
use crate::sip::SipMessage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// One non-INVITE server transaction.
#[derive(Debug)]
pub(crate) struct NonInviteTxn {
    id: TxnId,
    peer: Peer,
    state: State,
    last_response: Option<Vec<u8>>,
    /// Timer J.
    terminate_at: Option<Instant>,
    /// Not an RFC timer: a TU that never answers would leak the
    /// transaction, and after 64*T1 the UAC has given up anyway (its Timer
    /// F), so a final response could no longer matter.
    abandon_at: Option<Instant>,
}

impl NonInviteTxn {
    pub(crate) fn new(id: TxnId, peer: Peer, now: Instant, timers: &Timers) -> NonInviteTxn {
        NonInviteTxn {
            id,
            peer,
            state: State::Trying,
            last_response: None,
            terminate_at: None,
            abandon_at: Some(later(now, timers.transaction_timeout())),
        }
    }

    pub(crate) fn state(&self) -> Option<TxnState> {
        match self.state {
            State::Trying => Some(TxnState::Trying),
            State::Proceeding => Some(TxnState::Proceeding),
            State::Completed => Some(TxnState::Completed),
            State::Terminated => None,
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    pub(crate) fn peer(&self) -> &Peer {
        &self.peer
    }

    /// A retransmitted request: Trying absorbs it, Proceeding and Completed
    /// resend the last response (§17.2.2).
    pub(crate) fn on_retransmission(&self, out: &mut Outbox) {
        if matches!(self.state, State::Proceeding | State::Completed) {
            if let Some(bytes) = &self.last_response {
                out.send(&self.peer, bytes.clone());
            }
        }
    }

    /// A response from the TU (or from the layer itself, for CANCEL).
    pub(crate) fn respond(
        &mut self,
        now: Instant,
        timers: &Timers,
        response: &SipMessage,
        out: &mut Outbox,
    ) -> Result<(), RespondError> {
        let code = super::error::response_status(response)?;
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return Err(RespondError::FinalAlreadySent(self.id));
        }
        let bytes = response.to_bytes();
        out.send(&self.peer, bytes.clone());
        self.last_response = Some(bytes);
        if code < 200 {
            self.state = State::Proceeding;
        } else {
            self.abandon_at = None;
            self.state = State::Completed;
            if self.peer.is_reliable() {
                self.terminate();
            } else {
                self.terminate_at = Some(later(now, timers.transaction_timeout()));
            }
        }
        Ok(())
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if self.terminate_at.is_some_and(|t| t <= now) {
            self.terminate();
        }
        if self.abandon_at.is_some_and(|t| t <= now) {
            tracing::warn!(txn = %self.id, "TU sent no final response within 64*T1; transaction dropped");
            self.terminate();
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [self.terminate_at, self.abandon_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub(crate) fn terminate(&mut self) {
        self.state = State::Terminated;
        self.terminate_at = None;
        self.abandon_at = None;
    }
}
