//! Odd input never panics, and nothing outlives its timers.

use proptest::prelude::*;

use super::*;
use crate::sip::{ParseLimits, StartLine};

#[test]
fn garbage_and_missing_via_branch_do_not_panic() {
    let mut h = Harness::new();
    for via in [
        "garbage",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP 192.0.2.10;branch=",
        "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK",
        "SIP/2.0/UDP 192.0.2.10;;;branch",
        "SIP / 2.0 / UDP [::1] : 5060 ; branch = 1",
    ] {
        let invite = request_via("INVITE", via, 1, None);
        h.recv(invite.clone(), udp());
        let id = h.new_request();
        h.recv(invite.clone(), udp());
        assert!(h.events().is_empty(), "{via}");
        h.respond(id, reply(&invite, 486, "Busy Here"));
        h.recv(request_via("ACK", via, 1, Some("uas-tag")), udp());
        assert_eq!(h.st.state(id), Some(TxnState::Confirmed), "{via}");
        h.sent();
    }
    while h.next_timer().is_some() {}
    h.assert_empty();
}

#[test]
fn unmatchable_messages_are_errors() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKx", 1, None);
    let response = SipMessage::response(&invite, 200, "OK");
    assert_eq!(
        h.st.on_request(h.now, response, udp()),
        Err(RequestError::NotARequest)
    );
    let mut no_call_id = invite.clone();
    no_call_id.remove_header("Call-ID");
    assert!(matches!(
        h.st.on_request(h.now, no_call_id, udp()),
        Err(RequestError::Unmatchable(_))
    ));
    let mut bad_cseq = invite.clone();
    bad_cseq.set_header("CSeq", "one INVITE");
    assert!(h.st.on_request(h.now, bad_cseq, udp()).is_err());
    // No Via and no From at all still gets a (legacy) transaction.
    let mut bare = invite;
    bare.remove_header("Via");
    bare.remove_header("From");
    h.recv(bare.clone(), udp());
    h.new_request();
    h.recv(bare, udp());
    assert!(h.events().is_empty());
    assert_eq!(h.st.len(), 1);
}

#[test]
fn zero_timers_do_not_spin() {
    let timers = Timers {
        t1: Duration::ZERO,
        t2: Duration::ZERO,
        t4: Duration::ZERO,
        trying_delay: Duration::ZERO,
    };
    let mut h = Harness::with_timers(timers);
    let invite = request("INVITE", "z9hG4bKzero", 1, None);
    h.recv(invite.clone(), udp());
    let id = h.new_request();
    h.respond(id, reply(&invite, 200, "OK"));
    h.at(0);
    h.at(0);
    assert_eq!(h.events(), [TuEvent::AckTimeout { id }]);
    h.assert_empty();
}

#[derive(Debug, Clone)]
enum Op {
    Recv {
        method: usize,
        branch: usize,
        cseq: u32,
        to_tag: bool,
        tcp: bool,
    },
    Respond {
        pick: usize,
        code: usize,
    },
    Advance(u64),
    TransportError(bool),
}

const METHODS: [&str; 5] = ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"];
const BRANCHES: [&str; 4] = [
    "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKp1",
    "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKp2",
    "SIP/2.0/UDP 192.0.2.10:5060",
    "junk;branch=junk",
];
const CODES: [u16; 6] = [100, 180, 200, 202, 486, 603];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..METHODS.len(), 0..BRANCHES.len(), 1u32..3, any::<bool>(), any::<bool>()).prop_map(
            |(method, branch, cseq, to_tag, tcp)| Op::Recv { method, branch, cseq, to_tag, tcp }
        ),
        3 => (any::<usize>(), 0..CODES.len()).prop_map(|(pick, code)| Op::Respond { pick, code }),
        2 => (0u64..40_000).prop_map(Op::Advance),
        1 => any::<bool>().prop_map(Op::TransportError),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any interleaving of requests, responses, time and transport errors:
    /// no panic, and once the TU has answered everything and 64*T1 + T4 has
    /// passed twice over, nothing is left.
    #[test]
    fn random_interleavings_leave_nothing_behind(ops in proptest::collection::vec(op(), 1..60)) {
        let mut h = Harness::new();
        let mut requests: Vec<(TxnId, SipMessage)> = Vec::new();
        let mut elapsed = 0u64;
        for op in ops {
            match op {
                Op::Recv { method, branch, cseq, to_tag, tcp } => {
                    let req = request_via(
                        METHODS[method],
                        BRANCHES[branch],
                        cseq,
                        to_tag.then_some("uas-tag"),
                    );
                    let peer = if tcp { super::tcp() } else { udp() };
                    h.recv(req, peer);
                }
                Op::Respond { pick, code } => {
                    if !requests.is_empty() {
                        let (id, req) = &requests[pick % requests.len()];
                        let _ = h.st.respond(h.now, *id, reply(req, CODES[code], "X"));
                    }
                }
                Op::Advance(ms) => {
                    elapsed += ms;
                    h.at(elapsed);
                }
                Op::TransportError(tcp) => {
                    let peer = if tcp { super::tcp() } else { udp() };
                    h.st.on_transport_error(&peer);
                }
            }
            for event in h.events() {
                if let TuEvent::Request { id, request, .. } = event {
                    requests.push((id, request));
                }
            }
            h.sent();
            // Nothing is ever left overdue.
            if let Some(at) = h.st.poll_timeout() {
                prop_assert!(at > h.now);
            }
        }
        for (id, req) in &requests {
            let _ = h.st.respond(h.now, *id, reply(req, 500, "Server Internal Error"));
        }
        for _ in 0..4 {
            elapsed += 40_000;
            h.at(elapsed);
        }
        h.sent();
        h.events();
        h.assert_empty();
    }

    /// Whatever frames as a request is either matched or refused, never a panic.
    #[test]
    fn arbitrary_parsed_requests_never_panic(
        method in "[A-Z]{3,7}",
        via in "[ -~]{0,40}",
        cseq in "[0-9A-Z ]{0,12}",
        extra in "[ -~]{0,40}",
    ) {
        let raw = format!(
            "{method} sip:x SIP/2.0\r\nVia: {via}\r\nCall-ID: c\r\nCSeq: {cseq}\r\nFrom: {extra}\r\nTo: {extra}\r\n\r\n"
        );
        if let Ok(req) = SipMessage::parse_unvalidated(raw.as_bytes(), &ParseLimits::default()) {
            let mut h = Harness::new();
            let _ = h.st.on_request(h.now, req.clone(), udp());
            let _ = h.st.on_request(h.now, req, super::tcp());
            if let Some(TuEvent::Request { id, request, .. }) = h.st.poll_event() {
                let mut resp = SipMessage::response(&request, 200, "OK");
                resp.start = StartLine::Response { code: 200, reason: "OK".into() };
                let _ = h.st.respond(h.now, id, resp);
            }
            h.at(100_000);
            h.at(200_000);
        }
    }
}
