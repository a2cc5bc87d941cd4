//! What the transaction layer tells the transaction user (TU), and the
//! queues through which it hands out events and transmits.

use std::collections::VecDeque;
use std::fmt;

use super::transport::{Peer, Transmit};
use crate::sip::SipMessage;

/// Identifies one server transaction for as long as it exists. Ids are never
/// reused within one [`ServerTransactions`](super::ServerTransactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId(pub(crate) u64);

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "txn-{}", self.0)
    }
}

/// The state of a server transaction (RFC 3261 §17.2.1, §17.2.2, RFC 6026
/// §7.1), for tests and metrics. Terminated transactions no longer exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// Non-INVITE: no response sent yet.
    Trying,
    /// A provisional response (or only the layer's 100) has been sent.
    Proceeding,
    /// INVITE: a 2xx has been sent; retransmitting it until the ACK.
    Accepted,
    /// A final response has been sent (INVITE: non-2xx, waiting for ACK).
    Completed,
    /// INVITE: the ACK for the non-2xx final response has arrived.
    Confirmed,
}

/// An event for the TU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TuEvent {
    /// A new request (not a retransmission, not ACK, not CANCEL). The TU
    /// answers it with [`ServerTransactions::respond`](super::ServerTransactions::respond).
    Request {
        id: TxnId,
        request: SipMessage,
        peer: Peer,
    },
    /// An ACK that is not part of a server transaction (RFC 3261 §17.2.3):
    /// the ACK for a 2xx (passed up once per 2xx while its INVITE
    /// transaction exists), or a stray ACK matching nothing (the TU drops
    /// it if it matches no dialog).
    Ack { request: SipMessage, peer: Peer },
    /// A CANCEL matched the INVITE transaction `invite` before its final
    /// response: the layer has answered the CANCEL with 200 and the INVITE
    /// with 487 (RFC 3261 §9.2). The TU abandons the call setup; a later
    /// `respond` on `invite` fails with `FinalAlreadySent`.
    Cancelled { invite: TxnId },
    /// No ACK arrived within 64*T1 of the final response: for a 2xx the TU
    /// ends the dialog with BYE (RFC 3261 §13.3.1.4); for a non-2xx (Timer
    /// H, §17.2.1) there is nothing left to do but log it.
    AckTimeout { id: TxnId },
    /// The transport failed for the transaction's peer (RFC 3261 §17.2.4)
    /// and the transaction is gone.
    TransportError { id: TxnId },
}

/// The pending output of the layer, drained by `poll_transmit` and
/// `poll_event`.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<TuEvent>,
}

impl Outbox {
    pub(crate) fn send(&mut self, peer: &Peer, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit { peer: *peer, bytes });
    }

    pub(crate) fn event(&mut self, event: TuEvent) {
        self.events.push_back(event);
    }
}
