//! INVITE server transactions: 100 Trying, 2xx retransmission until ACK,
//! Timer G/H/I, reliable transports.

use super::*;

#[test]
fn udp_invite_200_retransmits_until_ack() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bK776asdhds", 1, None);
    h.recv(invite.clone(), udp());
    let sent = h.sent();
    assert_eq!(sent, [("100".to_owned(), udp())]);
    let id = h.new_request();
    assert_eq!(h.st.state(id), Some(TxnState::Proceeding));

    h.at(100);
    h.respond(id, reply(&invite, 200, "OK"));
    assert_eq!(h.codes(), [200]);
    assert_eq!(h.st.state(id), Some(TxnState::Accepted));

    // Retransmissions at T1, 2T1, 4T1 after the send, then every T2.
    let mut times = Vec::new();
    for _ in 0..5 {
        times.push(h.next_timer().unwrap() - 100);
        assert_eq!(h.codes(), [200]);
    }
    assert_eq!(times, [500, 1500, 3500, 7500, 11500]);

    // The ACK for the 2xx has a branch of its own (§17.1.1.3 is for non-2xx).
    let ack = request("ACK", "z9hG4bKack2xx", 1, Some("uas-tag"));
    h.recv(ack.clone(), udp());
    assert_eq!(
        h.events(),
        [TuEvent::Ack {
            request: ack.clone(),
            peer: udp()
        }]
    );
    // The retransmitted ACK is absorbed while the transaction exists.
    h.recv(ack, udp());
    assert!(h.events().is_empty());

    // No more 2xx; Timer L (64*T1 after the 2xx) ends it without an event.
    assert_eq!(h.next_timer(), Some(100 + 32_000));
    assert!(h.sent().is_empty());
    assert!(h.events().is_empty());
    assert_eq!(h.st.state(id), None);
    h.assert_empty();
}

#[test]
fn retransmissions_are_capped_at_t2_and_give_up_after_64_t1() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKnoack", 1, None);
    h.recv(invite.clone(), udp());
    let id = h.new_request();
    h.sent();
    h.respond(id, reply(&invite, 200, "OK"));
    h.codes();
    let mut times = Vec::new();
    while let Some(at) = h.next_timer() {
        let codes = h.codes();
        if codes.is_empty() {
            break;
        }
        assert_eq!(codes, [200]);
        times.push(at);
    }
    assert_eq!(
        times,
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(h.ms(h.now), 32_000);
    assert_eq!(h.events(), [TuEvent::AckTimeout { id }]);
    h.assert_empty();
}

#[test]
fn retransmitted_invite_gets_the_last_response_and_is_not_passed_up() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKrexmit", 1, None);
    h.recv(invite.clone(), udp());
    let id = h.new_request();
    h.sent();

    // Proceeding: the 100 again.
    h.at(500);
    h.recv(invite.clone(), udp());
    assert_eq!(h.codes(), [100]);
    assert!(h.events().is_empty());

    // After a 180 the 180.
    h.respond(id, reply(&invite, 180, "Ringing"));
    assert_eq!(h.codes(), [180]);
    h.recv(invite.clone(), udp());
    assert_eq!(h.codes(), [180]);

    // Accepted: the 2xx.
    h.respond(id, reply(&invite, 200, "OK"));
    assert_eq!(h.codes(), [200]);
    h.at(900); // before the first retransmission at 1000
    h.recv(invite, udp());
    assert_eq!(h.codes(), [200]);
    assert!(h.events().is_empty());
    assert_eq!(h.st.len(), 1);
}

#[test]
fn a_100_copies_timestamp_and_has_no_to_tag() {
    let mut h = Harness::new();
    let mut invite = request("INVITE", "z9hG4bKts", 1, None);
    invite.add_header("Timestamp", "54.2");
    h.recv(invite, udp());
    let trying = h.messages().pop().unwrap();
    assert_eq!(trying.status(), Some(100));
    assert_eq!(trying.header("Timestamp"), Some("54.2"));
    assert_eq!(trying.to().unwrap().tag(), None);
    assert_eq!(trying.header_list("Via").len(), 2);
    assert_eq!(trying.call_id().unwrap(), CALL_ID);
}

#[test]
fn non_2xx_final_uses_timer_g_h_and_i() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKbusy", 1, None);
    h.recv(invite.clone(), udp());
    let id = h.new_request();
    h.sent();
    h.respond(id, reply(&invite, 486, "Busy Here"));
    assert_eq!(h.codes(), [486]);
    assert_eq!(h.st.state(id), Some(TxnState::Completed));

    // Timer G: 500 ms, then 1 s.
    assert_eq!(h.next_timer(), Some(500));
    assert_eq!(h.codes(), [486]);
    assert_eq!(h.next_timer(), Some(1500));
    assert_eq!(h.codes(), [486]);
    // A retransmitted INVITE gets the 486 as well.
    h.recv(invite, udp());
    assert_eq!(h.codes(), [486]);

    // The ACK for a non-2xx reuses the INVITE's branch: absorbed.
    h.at(2000);
    let ack = request("ACK", "z9hG4bKbusy", 1, Some("uas-tag"));
    h.recv(ack.clone(), udp());
    assert!(h.events().is_empty());
    assert_eq!(h.st.state(id), Some(TxnState::Confirmed));
    h.recv(ack, udp());
    assert!(h.events().is_empty());
    assert!(h.sent().is_empty());

    // Timer I = T4, and no more 486 before it.
    assert_eq!(h.next_timer(), Some(7000));
    assert!(h.sent().is_empty());
    h.assert_empty();
}

#[test]
fn timer_h_reports_a_missing_ack_for_a_non_2xx() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKnoack486", 1, None);
    h.recv(invite.clone(), udp());
    let id = h.new_request();
    h.respond(id, reply(&invite, 488, "Not Acceptable Here"));
    h.at(31_999);
    assert!(h.events().is_empty());
    h.at(32_000);
    assert_eq!(h.events(), [TuEvent::AckTimeout { id }]);
    h.assert_empty();
}

#[test]
fn tcp_never_retransmits_and_timer_i_is_zero() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKtcp486", 1, None);
    h.recv(invite.clone(), tcp());
    assert_eq!(h.sent(), [("100".to_owned(), tcp())]);
    let id = h.new_request();
    h.respond(id, reply(&invite, 486, "Busy Here"));
    assert_eq!(h.sent(), [("486".to_owned(), tcp())]);
    // Only Timer H is pending: no Timer G over TCP.
    assert_eq!(h.st.poll_timeout().map(|t| h.ms(t)), Some(32_000));
    h.at(10_000);
    assert!(h.sent().is_empty());
    h.recv(request("ACK", "z9hG4bKtcp486", 1, Some("uas-tag")), tcp());
    assert!(h.events().is_empty());
    h.assert_empty();
}

#[test]
fn tcp_2xx_is_not_retransmitted_but_still_waits_for_the_ack() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKtcp200", 1, None);
    h.recv(invite.clone(), tcp());
    let id = h.new_request();
    h.sent();
    h.respond(id, reply(&invite, 200, "OK"));
    assert_eq!(h.codes(), [200]);
    assert_eq!(h.st.poll_timeout().map(|t| h.ms(t)), Some(32_000));
    h.at(5_000);
    assert!(h.sent().is_empty());
    let ack = request("ACK", "z9hG4bKtcpack", 1, Some("uas-tag"));
    h.recv(ack.clone(), tcp());
    assert_eq!(
        h.events(),
        [TuEvent::Ack {
            request: ack,
            peer: tcp()
        }]
    );
    h.assert_empty();

    // And without ACK: AckTimeout after 64*T1.
    let invite = request("INVITE", "z9hG4bKtcp200b", 2, None);
    h.recv(invite.clone(), tcp());
    let id = h.new_request();
    h.respond(id, reply(&invite, 200, "OK"));
    h.at(5_000 + 32_000);
    assert_eq!(h.events(), [TuEvent::AckTimeout { id }]);
    h.assert_empty();
}

#[test]
fn ack_for_2xx_is_matched_by_call_id_cseq_and_to_tag() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKm1", 5, None);
    h.recv(invite.clone(), udp());
    let id = h.new_request();
    h.respond(id, reply(&invite, 200, "OK"));
    h.sent();
    // Wrong To tag or CSeq: not ours, passed up, retransmissions go on.
    for ack in [
        request("ACK", "z9hG4bKa1", 5, Some("other-tag")),
        request("ACK", "z9hG4bKa2", 4, Some("uas-tag")),
    ] {
        h.recv(ack.clone(), udp());
        assert_eq!(
            h.events(),
            [TuEvent::Ack {
                request: ack,
                peer: udp()
            }]
        );
    }
    h.next_timer();
    assert_eq!(h.codes(), [200]);
    h.recv(request("ACK", "z9hG4bKa3", 5, Some("uas-tag")), udp());
    assert_eq!(h.events().len(), 1);
    while h.next_timer().is_some() {
        assert!(h.sent().is_empty());
    }
    assert!(h.events().is_empty());
    h.assert_empty();
}

#[test]
fn delayed_trying() {
    let timers = Timers {
        trying_delay: Duration::from_millis(200),
        ..Timers::RFC3261
    };
    let mut h = Harness::with_timers(timers);
    let invite = request("INVITE", "z9hG4bKslow", 1, None);
    h.recv(invite.clone(), udp());
    assert!(h.sent().is_empty());
    // A retransmission before any response gets nothing yet.
    h.recv(invite, udp());
    assert!(h.sent().is_empty());
    assert_eq!(h.next_timer(), Some(200));
    assert_eq!(h.codes(), [100]);
    h.new_request();

    // A TU that answers in time suppresses the 100.
    let fast = request("INVITE", "z9hG4bKfast", 2, None);
    h.recv(fast.clone(), udp());
    let id = h.new_request();
    h.respond(id, reply(&fast, 180, "Ringing"));
    assert_eq!(h.codes(), [180]);
    h.at(1_000);
    assert!(h.sent().is_empty());
}

#[test]
fn respond_errors() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKerr", 1, None);
    h.recv(invite.clone(), udp());
    let id = h.new_request();
    let now = h.now;
    assert_eq!(
        h.st.respond(now, id, invite.clone()),
        Err(RespondError::NotAResponse)
    );
    let mut odd = reply(&invite, 200, "OK");
    odd.start = crate::sip::StartLine::Response {
        code: 99,
        reason: "x".into(),
    };
    assert_eq!(
        h.st.respond(now, id, odd),
        Err(RespondError::InvalidStatus(99))
    );
    h.respond(id, reply(&invite, 200, "OK"));
    // A second 2xx is allowed (RFC 6026 §7.1), anything else is not.
    h.respond(id, reply(&invite, 200, "OK"));
    assert_eq!(
        h.st.respond(now, id, reply(&invite, 180, "Ringing")),
        Err(RespondError::FinalAlreadySent(id))
    );
    assert_eq!(
        h.st.respond(now, id, reply(&invite, 500, "Oops")),
        Err(RespondError::FinalAlreadySent(id))
    );
    h.at(40_000);
    assert_eq!(
        h.st.respond(h.now, id, reply(&invite, 200, "OK")),
        Err(RespondError::UnknownTransaction(id))
    );
    assert_eq!(
        RespondError::UnknownTransaction(id).to_string(),
        format!("txn-{} does not exist (terminated or never created)", id.0)
    );
}

#[test]
fn transport_error_terminates_the_connections_transactions() {
    let mut h = Harness::new();
    let on_tcp = request("INVITE", "z9hG4bKconn7", 1, None);
    h.recv(on_tcp.clone(), tcp());
    let tcp_id = h.new_request();
    let other_conn = Peer::tcp("192.0.2.10:41001".parse().unwrap(), 8);
    h.recv(request("OPTIONS", "z9hG4bKconn8", 2, None), other_conn);
    let other_id = h.new_request();
    h.recv(request("OPTIONS", "z9hG4bKudp", 3, None), udp());
    h.new_request();
    h.sent();

    assert_eq!(h.st.on_transport_error(&tcp()), 1);
    assert_eq!(h.events(), [TuEvent::TransportError { id: tcp_id }]);
    assert_eq!(h.st.len(), 2);
    assert_eq!(
        h.st.respond(h.now, tcp_id, reply(&on_tcp, 200, "OK")),
        Err(RespondError::UnknownTransaction(tcp_id))
    );
    // UDP errors (ICMP) are by address.
    assert_eq!(h.st.on_transport_error(&udp()), 1);
    assert_eq!(h.st.state(other_id), Some(TxnState::Trying));
    assert_eq!(h.st.on_transport_error(&other_conn), 1);
    h.events();
    h.assert_empty();
}

#[test]
fn legacy_rfc2543_invite_without_branch() {
    let mut h = Harness::new();
    let via = "SIP/2.0/UDP 192.0.2.10:5060";
    let invite = request_via("INVITE", via, 1, None);
    h.recv(invite.clone(), udp());
    let id = h.new_request();
    h.sent();
    h.recv(invite.clone(), udp());
    assert_eq!(h.codes(), [100]);
    assert!(h.events().is_empty());
    // Another INVITE with a different CSeq is a new transaction.
    h.recv(request_via("INVITE", via, 2, None), udp());
    let second = h.new_request();
    assert_ne!(id, second);
    h.sent();

    h.respond(id, reply(&invite, 603, "Decline"));
    assert_eq!(h.codes(), [603]);
    h.recv(request_via("ACK", via, 1, Some("uas-tag")), udp());
    assert!(h.events().is_empty());
    assert_eq!(h.st.state(id), Some(TxnState::Confirmed));
}
