//! CANCEL (RFC 3261 §9.2), answered by the layer.

use super::*;

#[test]
fn cancel_before_final_answers_200_and_487() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKcan1", 1, None);
    h.recv(invite.clone(), udp());
    let id = h.new_request();
    h.sent();
    h.respond(id, reply(&invite, 180, "Ringing"));
    h.sent();

    h.at(1_000);
    let cancel = request("CANCEL", "z9hG4bKcan1", 1, None);
    h.recv(cancel.clone(), udp());
    let sent = h.messages();
    let codes: Vec<_> = sent.iter().map(|m| m.status().unwrap()).collect();
    assert_eq!(codes, [200, 487]);
    // The 200 answers the CANCEL, the 487 the INVITE; both carry the tag of
    // the 180 (§9.2).
    assert_eq!(sent[0].cseq().unwrap(), (1, crate::sip::Method::Cancel));
    assert_eq!(sent[1].cseq().unwrap(), (1, crate::sip::Method::Invite));
    for m in &sent {
        assert_eq!(m.to().unwrap().tag(), Some("uas-tag"));
    }
    assert_eq!(h.events(), [TuEvent::Cancelled { invite: id }]);
    assert_eq!(h.st.state(id), Some(TxnState::Completed));
    // The TU's late answer is refused.
    assert_eq!(
        h.st.respond(h.now, id, reply(&invite, 200, "OK")),
        Err(RespondError::FinalAlreadySent(id))
    );
    // A retransmitted CANCEL gets its 200 again, nothing else.
    h.recv(cancel, udp());
    assert_eq!(h.codes(), [200]);
    assert!(h.events().is_empty());

    // The 487 is retransmitted (Timer G) until the ACK.
    assert_eq!(h.next_timer(), Some(1_500));
    assert_eq!(h.codes(), [487]);
    h.recv(request("ACK", "z9hG4bKcan1", 1, Some("uas-tag")), udp());
    assert!(h.events().is_empty());
    // Then Timer I and the CANCEL's Timer J clean everything up.
    while h.next_timer().is_some() {}
    assert!(h.sent().is_empty());
    h.assert_empty();
}

#[test]
fn cancel_before_any_tagged_response_uses_one_fresh_tag() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKcan2", 1, None);
    h.recv(invite, udp());
    h.new_request();
    h.sent();
    h.recv(request("CANCEL", "z9hG4bKcan2", 1, None), udp());
    let sent = h.messages();
    let tags: Vec<_> = sent
        .iter()
        .map(|m| m.to().unwrap().tag().unwrap().to_owned())
        .collect();
    assert_eq!(tags.len(), 2);
    assert_eq!(tags[0], tags[1]);
    assert_eq!(tags[0].len(), 16);
}

#[test]
fn cancel_after_final_is_answered_200_without_effect() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKcan3", 1, None);
    h.recv(invite.clone(), udp());
    let id = h.new_request();
    h.respond(id, reply(&invite, 200, "OK"));
    h.sent();
    h.recv(request("CANCEL", "z9hG4bKcan3", 1, None), udp());
    let sent = h.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status(), Some(200));
    assert_eq!(sent[0].cseq().unwrap().1, crate::sip::Method::Cancel);
    assert_eq!(sent[0].to().unwrap().tag(), Some("uas-tag"));
    assert!(h.events().is_empty());
    assert_eq!(h.st.state(id), Some(TxnState::Accepted));
}

#[test]
fn cancel_matching_nothing_gets_481() {
    let mut h = Harness::new();
    let cancel = request("CANCEL", "z9hG4bKnothing", 1, None);
    h.recv(cancel.clone(), udp());
    let sent = h.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status(), Some(481));
    assert!(sent[0].to().unwrap().tag().is_some());
    assert!(h.events().is_empty());
    h.recv(cancel, udp());
    assert_eq!(h.codes(), [481]);
    // Timer J ends the CANCEL's own transaction.
    assert_eq!(h.next_timer(), Some(32_000));
    h.assert_empty();
}

#[test]
fn cancel_over_tcp_cleans_up_at_once_after_ack() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKcan4", 1, None);
    h.recv(invite, tcp());
    let id = h.new_request();
    h.recv(request("CANCEL", "z9hG4bKcan4", 1, None), tcp());
    assert_eq!(h.codes(), [100, 200, 487]);
    assert_eq!(h.events(), [TuEvent::Cancelled { invite: id }]);
    assert_eq!(h.st.len(), 1);
    h.recv(request("ACK", "z9hG4bKcan4", 1, Some("x")), tcp());
    h.assert_empty();
}

#[test]
fn legacy_cancel_without_branch() {
    let mut h = Harness::new();
    let via = "SIP/2.0/UDP 192.0.2.10:5060";
    h.recv(request_via("INVITE", via, 7, None), udp());
    let id = h.new_request();
    h.sent();
    h.recv(request_via("CANCEL", via, 7, None), udp());
    assert_eq!(h.codes(), [200, 487]);
    assert_eq!(h.events(), [TuEvent::Cancelled { invite: id }]);
    // A CANCEL for another CSeq matches nothing.
    h.recv(request_via("CANCEL", via, 8, None), udp());
    assert_eq!(h.codes(), [481]);
}
