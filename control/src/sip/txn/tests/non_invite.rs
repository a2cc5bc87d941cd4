//! Non-INVITE server transactions: retransmission absorption and Timer J.

use super::*;

#[test]
fn udp_options_absorbs_retransmissions_and_ends_with_timer_j() {
    let mut h = Harness::new();
    let options = request("OPTIONS", "z9hG4bKopt1", 1, None);
    h.recv(options.clone(), udp());
    // No automatic 100 for non-INVITE.
    assert!(h.sent().is_empty());
    let id = h.new_request();
    assert_eq!(h.st.state(id), Some(TxnState::Trying));

    // Trying: a retransmission is absorbed silently.
    h.at(500);
    h.recv(options.clone(), udp());
    assert!(h.sent().is_empty());
    assert!(h.events().is_empty());

    h.respond(id, reply(&options, 200, "OK"));
    assert_eq!(h.codes(), [200]);
    assert_eq!(h.st.state(id), Some(TxnState::Completed));
    // Completed: a retransmission gets the final response again.
    h.at(1_500);
    h.recv(options, udp());
    assert_eq!(h.codes(), [200]);
    assert!(h.events().is_empty());
    // No response retransmission of its own over UDP for non-INVITE.
    assert_eq!(h.next_timer(), Some(500 + 32_000));
    assert!(h.sent().is_empty());
    h.assert_empty();
}

#[test]
fn provisional_then_final_for_non_invite() {
    let mut h = Harness::new();
    let info = request("INFO", "z9hG4bKinfo", 3, Some("uas-tag"));
    h.recv(info.clone(), udp());
    let id = h.new_request();
    h.respond(id, reply(&info, 100, "Trying"));
    assert_eq!(h.st.state(id), Some(TxnState::Proceeding));
    h.recv(info.clone(), udp());
    assert_eq!(h.codes(), [100, 100]);
    h.respond(id, reply(&info, 200, "OK"));
    assert_eq!(
        h.st.respond(h.now, id, reply(&info, 200, "OK")),
        Err(RespondError::FinalAlreadySent(id))
    );
    assert_eq!(h.codes(), [200]);
}

#[test]
fn tcp_bye_timer_j_is_zero() {
    let mut h = Harness::new();
    let bye = request("BYE", "z9hG4bKbye1", 2, Some("uas-tag"));
    h.recv(bye.clone(), tcp());
    let id = h.new_request();
    h.respond(id, reply(&bye, 200, "OK"));
    assert_eq!(h.sent(), [("200".to_owned(), tcp())]);
    h.assert_empty();
}

#[test]
fn same_branch_different_method_is_another_transaction() {
    let mut h = Harness::new();
    h.recv(request("INVITE", "z9hG4bKsame", 1, None), udp());
    let invite = h.new_request();
    h.recv(request("OPTIONS", "z9hG4bKsame", 1, None), udp());
    let options = h.new_request();
    assert_ne!(invite, options);
    // Same branch from another sent-by is another transaction too.
    let other = request_via(
        "OPTIONS",
        "SIP/2.0/UDP 192.0.2.77:5060;branch=z9hG4bKsame",
        1,
        None,
    );
    h.recv(other, udp());
    h.new_request();
    assert_eq!(h.st.len(), 3);
}

#[test]
fn a_tu_that_never_answers_does_not_leak() {
    let mut h = Harness::new();
    h.recv(request("OPTIONS", "z9hG4bKlost", 1, None), udp());
    let id = h.new_request();
    assert_eq!(h.next_timer(), Some(32_000));
    assert_eq!(h.st.state(id), None);
    h.assert_empty();
}
