//! The INVITE server transaction: RFC 3261 §17.2.1 as updated by RFC 6026
//! §7.1 (the Accepted state), plus the 2xx retransmission that RFC 3261
//! §13.3.1.4 assigns to the UAS core, kept here so that the TU only sees
//! "ACK arrived" or "ACK never came".
//!
//! ```text
//!                 INVITE / send 100 Trying
//!                            |
//!   1xx from TU   +----> Proceeding ----- CANCEL / send 487 ---+
//!   (send it)     +----------| |                               |
//!              2xx from TU   | |  300-699 from TU              |
//!        +-------------------+ +-----------------------+       |
//!        v                                             v       v
//!    Accepted  -- 2xx rexmit (UDP), T1..T2 -->     Completed <-+
//!        |  ACK: pass up, stop rexmit                  | Timer G rexmit (UDP)
//!        |  Timer L (64*T1): AckTimeout if no ACK      | Timer H: AckTimeout
//!        v                                             | ACK
//!    Terminated <------------ Timer I (T4, 0 on TCP) - Confirmed
//! ```

use std::time::Instant;

use super::error::RespondError;
use super::event::{Outbox, TuEvent, TxnId, TxnState};
use super::timers::{later, Backoff, Timers};
use super::transport::Peer;
use crate::sip::{SipMessage, StartLine};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Proceeding,
    Accepted,
    Completed,
    Confirmed,
    Terminated,
}

/// One INVITE server transaction.
#[derive(Debug)]
pub(crate) struct InviteTxn {
    id: TxnId,
    peer: Peer,
    state: State,
    /// The headers every response to this INVITE shares (Via, From, To,
    /// Call-ID, CSeq, and Timestamp per §8.2.6.1) as a `100 Trying`: what
    /// the layer needs to send 100 and 487 on its own, without keeping the
    /// INVITE's (possibly large SIPREC) body.
    skeleton: SipMessage,
    /// When a delayed 100 Trying is due.
    trying_at: Option<Instant>,
    /// What a retransmitted INVITE (or Timer G) resends.
    last_response: Option<Vec<u8>>,
    /// The To tag of the latest response carrying one: the 487 after a
    /// CANCEL and the 200 to that CANCEL reuse it (§9.2).
    response_tag: Option<String>,
    /// Timer G, or the 2xx retransmission in Accepted (UDP only).
    retransmit: Option<Backoff>,
    /// Timer H in Completed, Timer L in Accepted.
    timeout_at: Option<Instant>,
    /// Timer I.
    terminate_at: Option<Instant>,
    /// Whether the ACK for our 2xx has been passed up.
    acked: bool,
}

impl InviteTxn {
    /// Creates the transaction for a new INVITE and sends `100 Trying` now
    /// or schedules it ([`Timers::trying_delay`]).
    pub(crate) fn new(
        id: TxnId,
        peer: Peer,
        request: &SipMessage,
        now: Instant,
        timers: &Timers,
        out: &mut Outbox,
    ) -> InviteTxn {
        let mut skeleton = SipMessage::response(request, 100, "Trying");
        if let Some(timestamp) = request.header("Timestamp") {
            skeleton.add_header("Timestamp", timestamp);
        }
        let mut txn = InviteTxn {
            id,
            peer,
            state: State::Proceeding,
            skeleton,
            trying_at: None,
            last_response: None,
            response_tag: None,
            retransmit: None,
            timeout_at: None,
            terminate_at: None,
            acked: false,
        };
        if timers.trying_delay.is_zero() {
            txn.send_trying(out);
        } else {
            txn.trying_at = Some(later(now, timers.trying_delay));
        }
        txn
    }

    pub(crate) fn state(&self) -> Option<TxnState> {
        match self.state {
            State::Proceeding => Some(TxnState::Proceeding),
            State::Accepted => Some(TxnState::Accepted),
            State::Completed => Some(TxnState::Completed),
            State::Confirmed => Some(TxnState::Confirmed),
            State::Terminated => None,
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    pub(crate) fn peer(&self) -> &Peer {
        &self.peer
    }

    pub(crate) fn is_accepted(&self) -> bool {
        self.state == State::Accepted
    }

    pub(crate) fn response_tag(&self) -> Option<&str> {
        self.response_tag.as_deref()
    }

    /// A retransmitted INVITE: Proceeding resends the last provisional
    /// response (nothing if none went out yet), Completed the final one
    /// (§17.2.1); Accepted resends the 2xx, which is what the UAS core of
    /// §13.3.1.4 would do. Confirmed absorbs it.
    pub(crate) fn on_retransmission(&self, out: &mut Outbox) {
        match self.state {
            State::Proceeding | State::Accepted | State::Completed => self.resend(out),
            State::Confirmed | State::Terminated => {}
        }
    }

    /// An ACK matched to this transaction, by branch (the ACK for a non-2xx,
    /// §17.1.1.3) or by Call-ID, CSeq and To tag (the ACK for a 2xx).
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        timers: &Timers,
        request: SipMessage,
        peer: Peer,
        out: &mut Outbox,
    ) {
        match self.state {
            State::Completed => {
                // §17.2.1: stop Timers G and H; Timer I absorbs further ACK
                // retransmissions, and is zero when none can arrive.
                self.retransmit = None;
                self.timeout_at = None;
                self.state = State::Confirmed;
                if self.peer.is_reliable() {
                    self.terminate();
                } else {
                    self.terminate_at = Some(later(now, timers.t4));
                }
            }
            State::Accepted if !self.acked => {
                // RFC 6026 §7.1: the ACK goes to the TU. Over UDP the
                // transaction stays until Timer L to absorb INVITE
                // retransmissions; over TCP/TLS none can come.
                self.acked = true;
                self.retransmit = None;
                out.event(TuEvent::Ack { request, peer });
                if self.peer.is_reliable() {
                    self.terminate();
                }
            }
            // A retransmitted ACK, or an ACK before any final response: absorbed.
            State::Accepted | State::Proceeding | State::Confirmed | State::Terminated => {}
        }
    }

    /// A response from the TU.
    pub(crate) fn respond(
        &mut self,
        now: Instant,
        timers: &Timers,
        response: &SipMessage,
        out: &mut Outbox,
    ) -> Result<(), RespondError> {
        let code = super::error::response_status(response)?;
        match (self.state, code) {
            (State::Proceeding, 100..=199) => {
                self.trying_at = None;
                self.note_tag(response);
                self.send(response.to_bytes(), out);
            }
            (State::Proceeding, 200..=299) => {
                self.trying_at = None;
                self.note_tag(response);
                self.send(response.to_bytes(), out);
                self.state = State::Accepted;
                // §13.3.1.4 retransmits the 2xx until the ACK; over a
                // reliable hop delivery is the transport's job.
                self.retransmit = (!self.peer.is_reliable()).then(|| Backoff::start(now, timers));
                self.timeout_at = Some(later(now, timers.transaction_timeout()));
            }
            (State::Proceeding, _) => {
                self.note_tag(response);
                self.complete(now, timers, response.to_bytes(), out);
            }
            // RFC 6026 §7.1: further 2xx from the TU go straight out.
            (State::Accepted, 200..=299) => {
                self.note_tag(response);
                self.send(response.to_bytes(), out);
            }
            _ => return Err(RespondError::FinalAlreadySent(self.id)),
        }
        Ok(())
    }

    /// A CANCEL for this INVITE (§9.2): without a final response yet, answer
    /// the INVITE with 487 using `tag` and return true; otherwise the CANCEL
    /// has no effect on the INVITE.
    pub(crate) fn cancel(
        &mut self,
        now: Instant,
        timers: &Timers,
        tag: &str,
        out: &mut Outbox,
    ) -> bool {
        if self.state != State::Proceeding {
            return false;
        }
        let mut response = self.skeleton.clone();
        response.start = StartLine::Response {
            code: 487,
            reason: "Request Terminated".to_owned(),
        };
        response.set_to_tag(tag);
        self.response_tag = Some(tag.to_owned());
        self.complete(now, timers, response.to_bytes(), out);
        true
    }

    /// Runs every timer due at `now`.
    pub(crate) fn on_timeout(&mut self, now: Instant, out: &mut Outbox) {
        if self.trying_at.is_some_and(|t| t <= now) {
            self.trying_at = None;
            if self.state == State::Proceeding && self.last_response.is_none() {
                self.send_trying(out);
            }
        }
        if self.timeout_at.is_some_and(|t| t <= now) {
            // Timer H (§17.2.1) or Timer L (RFC 6026 §7.1). Checked before
            // the retransmission timer so that nothing is sent at give-up.
            let unacked = match self.state {
                State::Accepted => !self.acked,
                State::Completed => true,
                _ => false,
            };
            if unacked {
                out.event(TuEvent::AckTimeout { id: self.id });
            }
            self.terminate();
            return;
        }
        if self.retransmit.is_some_and(|b| b.at <= now) {
            self.resend(out);
            if let Some(backoff) = &mut self.retransmit {
                backoff.advance(now);
            }
        }
        if self.terminate_at.is_some_and(|t| t <= now) {
            self.terminate();
        }
    }

    /// The earliest pending timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [
            self.trying_at,
            self.timeout_at,
            self.retransmit.map(|b| b.at),
            self.terminate_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Ends the transaction now (timer or transport error).
    pub(crate) fn terminate(&mut self) {
        self.state = State::Terminated;
        self.trying_at = None;
        self.retransmit = None;
        self.timeout_at = None;
        self.terminate_at = None;
    }

    /// Sends a non-2xx final response: Completed, Timer G over UDP, Timer H.
    fn complete(&mut self, now: Instant, timers: &Timers, bytes: Vec<u8>, out: &mut Outbox) {
        self.trying_at = None;
        self.send(bytes, out);
        self.state = State::Completed;
        self.retransmit = (!self.peer.is_reliable()).then(|| Backoff::start(now, timers));
        self.timeout_at = Some(later(now, timers.transaction_timeout()));
    }

    fn send_trying(&mut self, out: &mut Outbox) {
        let bytes = self.skeleton.to_bytes();
        self.send(bytes, out);
    }

    fn send(&mut self, bytes: Vec<u8>, out: &mut Outbox) {
        out.send(&self.peer, bytes.clone());
        self.last_response = Some(bytes);
    }

    fn resend(&self, out: &mut Outbox) {
        if let Some(bytes) = &self.last_response {
            out.send(&self.peer, bytes.clone());
        }
    }

    fn note_tag(&mut self, response: &SipMessage) {
        if let Some(tag) = response
            .to()
            .ok()
            .and_then(|to| to.tag().map(str::to_owned))
        {
            self.response_tag = Some(tag);
        }
    }
}
