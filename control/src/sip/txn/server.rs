//! The table of all server transactions of one endpoint: matching, the
//! CANCEL and ACK special cases, timers, and the output queues.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::error::{RequestError, RespondError};
use super::event::{Outbox, TuEvent, TxnId, TxnState};
use super::invite::InviteTxn;
use super::key::{AckKey, RequestKeys, TxnKey};
use super::non_invite::NonInviteTxn;
use super::tag::TagGenerator;
use super::timers::Timers;
use super::transport::{Peer, Transmit};
use crate::sip::{Method, SipMessage};

/// All server transactions of one endpoint (RFC 3261 §17.2 with RFC 6026),
/// sans IO.
///
/// The driver feeds it requests ([`on_request`](Self::on_request)), TU
/// responses ([`respond`](Self::respond)), time
/// ([`handle_timeout`](Self::handle_timeout)) and transport failures, and
/// after each call drains [`poll_transmit`](Self::poll_transmit) and
/// [`poll_event`](Self::poll_event), then sleeps until
/// [`poll_timeout`](Self::poll_timeout). Terminated transactions are removed
/// at once, so memory follows the number of live transactions.
#[derive(Debug)]
pub struct ServerTransactions {
    timers: Timers,
    next_id: u64,
    txns: HashMap<TxnId, Entry>,
    by_key: HashMap<TxnKey, TxnId>,
    /// INVITE transactions in Accepted, by what the ACK for their 2xx carries.
    by_ack: HashMap<AckKey, TxnId>,
    /// Every transaction's earliest deadline.
    deadlines: BTreeSet<(Instant, TxnId)>,
    out: Outbox,
    tags: TagGenerator,
}

#[derive(Debug)]
struct Entry {
    key: TxnKey,
    call_id: String,
    cseq: u32,
    txn: Txn,
    /// A CANCEL transaction the layer answers itself; the TU never sees its id.
    internal: bool,
    ack_key: Option<AckKey>,
    /// The deadline currently in `deadlines`.
    scheduled: Option<Instant>,
}

#[derive(Debug)]
enum Txn {
    /// Boxed: an INVITE transaction keeps a response skeleton and more timers.
    Invite(Box<InviteTxn>),
    NonInvite(NonInviteTxn),
}

impl Txn {
    fn state(&self) -> Option<TxnState> {
        match self {
            Txn::Invite(t) => t.state(),
            Txn::NonInvite(t) => t.state(),
        }
    }

    fn is_terminated(&self) -> bool {
        match self {
            Txn::Invite(t) => t.is_terminated(),
            Txn::NonInvite(t) => t.is_terminated(),
        }
    }

    fn peer(&self) -> &Peer {
        match self {
            Txn::Invite(t) => t.peer(),
            Txn::NonInvite(t) => t.peer(),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Txn::Invite(t) => t.next_deadline(),
            Txn::NonInvite(t) => t.next_deadline(),
        }
    }

    fn on_retransmission(&self, out: &mut Outbox) {
        match self {
            Txn::Invite(t) => t.on_retransmission(out),
            Txn::NonInvite(t) => t.on_retransmission(out),
        }
    }

    fn respond(
        &mut self,
        now: Instant,
        timers: &Timers,
        response: &SipMessage,
        out: &mut Outbox,
    ) -> Result<(), RespondError> {
        match self {
            Txn::Invite(t) => t.respond(now, timers, response, out),
            Txn::NonInvite(t) => t.respond(now, timers, response, out),
        }
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Outbox) {
        match self {
            Txn::Invite(t) => t.on_timeout(now, out),
            Txn::NonInvite(t) => t.on_timeout(now),
        }
    }

    fn terminate(&mut self) {
        match self {
            Txn::Invite(t) => t.terminate(),
            Txn::NonInvite(t) => t.terminate(),
        }
    }
}

impl ServerTransactions {
    pub fn new(timers: Timers) -> ServerTransactions {
        ServerTransactions {
            timers,
            next_id: 0,
            txns: HashMap::new(),
            by_key: HashMap::new(),
            by_ack: HashMap::new(),
            deadlines: BTreeSet::new(),
            out: Outbox::default(),
            tags: TagGenerator::new(),
        }
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    /// A request from the network.
    ///
    /// - A retransmission of a live transaction's request resends its last
    ///   response and is not passed up.
    /// - A new request other than ACK and CANCEL creates a transaction and
    ///   is passed up as [`TuEvent::Request`]; for INVITE, 100 Trying is
    ///   queued (or scheduled, see [`Timers::trying_delay`]).
    /// - ACK: see [`TuEvent::Ack`]; an ACK for a non-2xx is absorbed.
    /// - CANCEL is answered here (RFC 3261 §9.2): 200 and, for an INVITE
    ///   without a final response, 487 to the INVITE and
    ///   [`TuEvent::Cancelled`]; 481 when it matches nothing.
    pub fn on_request(
        &mut self,
        now: Instant,
        request: SipMessage,
        peer: Peer,
    ) -> Result<(), RequestError> {
        let method = request.method().cloned().ok_or(RequestError::NotARequest)?;
        let keys = RequestKeys::of(&request, &method)?;
        match method {
            Method::Ack => self.on_ack(now, request, peer, keys),
            Method::Cancel => self.on_cancel(now, &request, peer, keys),
            _ => self.on_other(now, request, peer, keys),
        }
        Ok(())
    }

    /// The TU's response to the request of transaction `id`, queued for the
    /// peer. For INVITE: 1xx keeps it Proceeding; 2xx moves it to Accepted
    /// (retransmitted over UDP until the ACK, [`TuEvent::AckTimeout`] after
    /// 64*T1); 300-699 to Completed (Timer G over UDP, Timer H).
    pub fn respond(
        &mut self,
        now: Instant,
        id: TxnId,
        response: SipMessage,
    ) -> Result<(), RespondError> {
        let entry = self
            .txns
            .get_mut(&id)
            .filter(|e| !e.internal)
            .ok_or(RespondError::UnknownTransaction(id))?;
        entry
            .txn
            .respond(now, &self.timers, &response, &mut self.out)?;
        if let Txn::Invite(invite) = &entry.txn {
            if invite.is_accepted() && entry.ack_key.is_none() {
                let ack_key = AckKey {
                    call_id: entry.call_id.clone(),
                    cseq: entry.cseq,
                    to_tag: invite.response_tag().unwrap_or("").to_owned(),
                };
                self.by_ack.insert(ack_key.clone(), id);
                entry.ack_key = Some(ack_key);
            }
        }
        self.settle(id);
        Ok(())
    }

    /// The driver could not deliver to `peer` (connection closed or reset,
    /// ICMP unreachable): every transaction of that connection (or, without
    /// a connection id, of that address and transport) terminates with
    /// [`TuEvent::TransportError`] (RFC 3261 §17.2.4). Returns how many.
    pub fn on_transport_error(&mut self, peer: &Peer) -> usize {
        let mut ids: Vec<TxnId> = self
            .txns
            .iter()
            .filter(|(_, e)| e.txn.peer().affected_by(peer))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for &id in &ids {
            if let Some(entry) = self.txns.get_mut(&id) {
                entry.txn.terminate();
                if !entry.internal {
                    self.out.event(TuEvent::TransportError { id });
                }
            }
            self.settle(id);
        }
        ids.len()
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TuEvent> {
        self.out.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Runs the timers due at `now`. Each due transaction runs once per
    /// call, so even zero timer values cannot make this loop forever.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<TxnId> = self
            .deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect();
        for id in due {
            if let Some(entry) = self.txns.get_mut(&id) {
                entry.txn.on_timeout(now, &mut self.out);
            }
            self.settle(id);
        }
    }

    /// Number of live transactions (including the layer's own CANCEL ones).
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// The state of a live transaction; `None` once it has terminated.
    pub fn state(&self, id: TxnId) -> Option<TxnState> {
        self.txns.get(&id).and_then(|e| e.txn.state())
    }

    fn on_other(&mut self, now: Instant, request: SipMessage, peer: Peer, keys: RequestKeys) {
        if let Some(&id) = self.by_key.get(&keys.key) {
            if let Some(entry) = self.txns.get(&id) {
                entry.txn.on_retransmission(&mut self.out);
            }
            return;
        }
        let id = self.allocate_id();
        let txn = match request.method() {
            Some(Method::Invite) => Txn::Invite(Box::new(InviteTxn::new(
                id,
                peer,
                &request,
                now,
                &self.timers,
                &mut self.out,
            ))),
            _ => Txn::NonInvite(NonInviteTxn::new(id, peer, now, &self.timers)),
        };
        self.insert(id, keys, txn, false);
        self.out.event(TuEvent::Request { id, request, peer });
        self.settle(id);
    }

    /// ACK (§17.2.3): by branch it can only match an INVITE transaction (the
    /// ACK for a non-2xx reuses the INVITE's branch); otherwise it is the ACK
    /// for a 2xx, found by Call-ID, CSeq number and To tag; otherwise it is
    /// passed up as it is.
    fn on_ack(&mut self, now: Instant, request: SipMessage, peer: Peer, keys: RequestKeys) {
        let by_branch = self.by_key.get(&keys.key).copied();
        let by_2xx = || {
            let ack_key = AckKey {
                call_id: keys.call_id.clone(),
                cseq: keys.cseq,
                to_tag: keys.to_tag.clone().unwrap_or_default(),
            };
            self.by_ack.get(&ack_key).copied()
        };
        let Some(id) = by_branch.or_else(by_2xx) else {
            self.out.event(TuEvent::Ack { request, peer });
            return;
        };
        if let Some(Entry {
            txn: Txn::Invite(invite),
            ..
        }) = self.txns.get_mut(&id)
        {
            invite.on_ack(now, &self.timers, request, peer, &mut self.out);
        }
        self.settle(id);
    }

    /// CANCEL (§9.2): a transaction of its own, answered by the layer.
    fn on_cancel(&mut self, now: Instant, request: &SipMessage, peer: Peer, keys: RequestKeys) {
        if let Some(&id) = self.by_key.get(&keys.key) {
            if let Some(entry) = self.txns.get(&id) {
                entry.txn.on_retransmission(&mut self.out);
            }
            return;
        }
        let invite_id = self
            .by_key
            .get(&keys.key.with_method(Method::Invite))
            .copied();
        let cancel_id = self.allocate_id();
        let cancel_txn = NonInviteTxn::new(cancel_id, peer, now, &self.timers);
        self.insert(cancel_id, keys, Txn::NonInvite(cancel_txn), true);

        let invite = invite_id.and_then(|id| match self.txns.get_mut(&id) {
            Some(Entry {
                txn: Txn::Invite(invite),
                ..
            }) => Some((id, invite)),
            _ => None,
        });
        let (response, cancelled) = match invite {
            Some((invite_id, invite)) => {
                // §9.2: the 200 to the CANCEL and the INVITE's response
                // should carry the same To tag.
                let tag = match invite.response_tag() {
                    Some(tag) => tag.to_owned(),
                    None => self.tags.next_tag(),
                };
                let mut ok = SipMessage::response(request, 200, "OK");
                ok.set_to_tag(&tag);
                let mut cancel_out = Outbox::default();
                let cancelled = invite.cancel(now, &self.timers, &tag, &mut cancel_out);
                (ok, cancelled.then_some((invite_id, cancel_out)))
            }
            None => {
                let mut no_txn =
                    SipMessage::response(request, 481, "Call/Transaction Does Not Exist");
                no_txn.set_to_tag(&self.tags.next_tag());
                (no_txn, None)
            }
        };
        if let Some(entry) = self.txns.get_mut(&cancel_id) {
            // A fresh non-INVITE transaction always accepts a final response.
            let _ = entry
                .txn
                .respond(now, &self.timers, &response, &mut self.out);
        }
        self.settle(cancel_id);
        if let Some((invite_id, mut cancel_out)) = cancelled {
            // The 487 goes out after the 200 to the CANCEL.
            self.out.transmits.append(&mut cancel_out.transmits);
            self.out.event(TuEvent::Cancelled { invite: invite_id });
            self.settle(invite_id);
        }
    }

    fn allocate_id(&mut self) -> TxnId {
        self.next_id = self.next_id.wrapping_add(1);
        TxnId(self.next_id)
    }

    fn insert(&mut self, id: TxnId, keys: RequestKeys, txn: Txn, internal: bool) {
        self.by_key.insert(keys.key.clone(), id);
        self.txns.insert(
            id,
            Entry {
                key: keys.key,
                call_id: keys.call_id,
                cseq: keys.cseq,
                txn,
                internal,
                ack_key: None,
                scheduled: None,
            },
        );
    }

    /// After anything happened to `id`: reschedules its timer, or removes it
    /// and its index entries once it has terminated.
    fn settle(&mut self, id: TxnId) {
        let Some(entry) = self.txns.get_mut(&id) else {
            return;
        };
        if let Some(at) = entry.scheduled.take() {
            self.deadlines.remove(&(at, id));
        }
        if entry.txn.is_terminated() {
            if let Some(entry) = self.txns.remove(&id) {
                if self.by_key.get(&entry.key) == Some(&id) {
                    self.by_key.remove(&entry.key);
                }
                if let Some(ack_key) = entry.ack_key {
                    if self.by_ack.get(&ack_key) == Some(&id) {
                        self.by_ack.remove(&ack_key);
                    }
                }
            }
            return;
        }
        if let Some(at) = entry.txn.next_deadline() {
            self.deadlines.insert((at, id));
            entry.scheduled = Some(at);
        }
    }

    /// Sizes of the internal indexes, to check that nothing leaks.
    #[cfg(test)]
    pub(crate) fn index_sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.txns.len(),
            self.by_key.len(),
            self.by_ack.len(),
            self.deadlines.len(),
        )
    }
}

impl Default for ServerTransactions {
    fn default() -> Self {
        Self::new(Timers::default())
    }
}
