//! Scenario tests for the transaction layer, with real SIP text and a fake
//! clock: `Instant`s are computed from one base, nothing sleeps.

mod cancel;
mod invite;
mod non_invite;
mod robustness;

use std::time::{Duration, Instant};

use super::*;
use crate::sip::SipMessage;

pub(super) const CALL_ID: &str = "a84b4c76e66710@192.0.2.10";

pub(super) fn udp() -> Peer {
    Peer::udp("192.0.2.10:5060".parse().unwrap())
}

pub(super) fn tcp() -> Peer {
    Peer::tcp("192.0.2.10:41000".parse().unwrap(), 7)
}

/// A request from the SBC at 192.0.2.10 with the given top Via.
pub(super) fn request_via(method: &str, via: &str, cseq: u32, to_tag: Option<&str>) -> SipMessage {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let cseq_method = method;
    let raw = format!(
        "{method} sip:srs@198.51.100.20:5060 SIP/2.0\r\n\
         Via: {via}\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKupstream\r\n\
         Max-Forwards: 70\r\n\
         From: \"SBC\" <sip:rec@192.0.2.10>;tag=src-tag\r\n\
         To: <sip:srs@198.51.100.20>{to_tag}\r\n\
         Call-ID: {CALL_ID}\r\n\
         CSeq: {cseq} {cseq_method}\r\n\
         Contact: <sip:rec@192.0.2.10:5060>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    SipMessage::parse(raw.as_bytes()).unwrap()
}

/// A request whose top Via carries `branch` (RFC 3261 style).
pub(super) fn request(method: &str, branch: &str, cseq: u32, to_tag: Option<&str>) -> SipMessage {
    request_via(
        method,
        &format!("SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport"),
        cseq,
        to_tag,
    )
}

/// A response the TU builds: with a To tag for anything but 100.
pub(super) fn reply(req: &SipMessage, code: u16, reason: &str) -> SipMessage {
    let mut resp = SipMessage::response(req, code, reason);
    if code > 100 {
        resp.set_to_tag("uas-tag");
        resp.add_header("Contact", "<sip:srs@198.51.100.20:5060>");
    }
    resp
}

/// A transaction layer driven by a fake clock.
pub(super) struct Harness {
    pub st: ServerTransactions,
    pub t0: Instant,
    pub now: Instant,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_timers(Timers::default())
    }

    pub fn with_timers(timers: Timers) -> Harness {
        let t0 = Instant::now();
        Harness {
            st: ServerTransactions::new(timers),
            t0,
            now: t0,
        }
    }

    /// Seconds since `t0` as milliseconds, for readable assertions.
    pub fn ms(&self, at: Instant) -> u128 {
        at.duration_since(self.t0).as_millis()
    }

    pub fn recv(&mut self, req: SipMessage, peer: Peer) {
        self.st.on_request(self.now, req, peer).unwrap();
    }

    pub fn respond(&mut self, id: TxnId, resp: SipMessage) {
        self.st.respond(self.now, id, resp).unwrap();
    }

    /// Moves the clock to `t0 + ms` and runs the timers.
    pub fn at(&mut self, ms: u64) {
        self.now = self.t0 + Duration::from_millis(ms);
        self.st.handle_timeout(self.now);
    }

    /// Advances to the next deadline (if any) and runs it; returns its time
    /// in ms since `t0`.
    pub fn next_timer(&mut self) -> Option<u128> {
        let at = self.st.poll_timeout()?;
        self.now = at;
        self.st.handle_timeout(at);
        Some(self.ms(at))
    }

    /// Drains the transmits as (status code or method, peer).
    pub fn sent(&mut self) -> Vec<(String, Peer)> {
        std::iter::from_fn(|| self.st.poll_transmit())
            .map(|t| {
                let msg = SipMessage::parse(&t.bytes).unwrap();
                let what = match msg.status() {
                    Some(code) => code.to_string(),
                    None => msg.method().map(|m| m.to_string()).unwrap_or_default(),
                };
                (what, t.peer)
            })
            .collect()
    }

    /// Drains the transmits as status codes.
    pub fn codes(&mut self) -> Vec<u16> {
        self.sent()
            .into_iter()
            .filter_map(|(what, _)| what.parse().ok())
            .collect()
    }

    /// Drains the transmitted messages.
    pub fn messages(&mut self) -> Vec<SipMessage> {
        std::iter::from_fn(|| self.st.poll_transmit())
            .map(|t| SipMessage::parse(&t.bytes).unwrap())
            .collect()
    }

    pub fn events(&mut self) -> Vec<TuEvent> {
        std::iter::from_fn(|| self.st.poll_event()).collect()
    }

    /// The id of the single new request passed up.
    pub fn new_request(&mut self) -> TxnId {
        match self.events().as_slice() {
            [TuEvent::Request { id, .. }] => *id,
            other => panic!("expected one Request event, got {other:?}"),
        }
    }

    /// Asserts that nothing is left: no transaction, no index entry, no timer.
    pub fn assert_empty(&self) {
        assert_eq!(self.st.len(), 0);
        assert!(self.st.is_empty());
        assert_eq!(self.st.index_sizes(), (0, 0, 0, 0));
        assert_eq!(self.st.poll_timeout(), None);
    }
}
