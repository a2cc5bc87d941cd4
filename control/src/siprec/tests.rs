//! End-to-end tests over the vendor fixtures: SIP parse → classify → SDP and
//! metadata, plus malformed variants and fuzzing of the whole pipeline.

use super::*;
use crate::sdp::Direction;
use crate::sip::{framing, Method, SipMessage};
use proptest::prelude::*;

const RFC7866: &[u8] = include_bytes!("../../tests/fixtures/sip/rfc7866_example_invite.sip");
const CUBE: &[u8] = include_bytes!("../../tests/fixtures/sip/cube_siprec_invite.sip");
const ACME: &[u8] = include_bytes!("../../tests/fixtures/sip/acme_siprec_invite.sip");
const RIBBON: &[u8] = include_bytes!("../../tests/fixtures/sip/ribbon_siprec_invite.sip");
const BROADWORKS: &[u8] = include_bytes!("../../tests/fixtures/sip/broadworks_invite.sip");
const AUDIOCODES: &[u8] = include_bytes!("../../tests/fixtures/sip/audiocodes_lf_invite.sip");
const CUCM_NEAR: &[u8] = include_bytes!("../../tests/fixtures/sip/cucm_nearend_invite.sip");
const CUCM_FAR: &[u8] = include_bytes!("../../tests/fixtures/sip/cucm_farend_invite.sip");
const PLAIN: &[u8] = include_bytes!("../../tests/fixtures/sip/plain_invite.sip");

const ALL: [&[u8]; 9] = [
    RFC7866, CUBE, ACME, RIBBON, BROADWORKS, AUDIOCODES, CUCM_NEAR, CUCM_FAR, PLAIN,
];

/// Parses and classifies a SIPREC fixture.
fn siprec(raw: &[u8]) -> (SipMessage, crate::sdp::Sdp, RecordingMetadata) {
    let msg = SipMessage::parse(raw).unwrap();
    match classify_invite(&msg).unwrap() {
        InviteKind::Siprec {
            sdp,
            metadata: Some((xml, meta)),
        } => {
            assert!(xml.starts_with(b"<?xml"));
            (msg, sdp, meta)
        }
        other => panic!("not SIPREC with metadata: {other:?}"),
    }
}

/// `(label, sender AORs)` for every m-line, in SDP order.
fn senders_by_label(sdp: &crate::sdp::Sdp, meta: &RecordingMetadata) -> Vec<(String, Vec<String>)> {
    sdp.media
        .iter()
        .map(|m| {
            let label = m.label().unwrap().to_owned();
            let aors = meta
                .senders_of_label(&label)
                .iter()
                .map(|p| p.aor.clone().unwrap_or_default())
                .collect();
            (label, aors)
        })
        .collect()
}

#[test]
fn rfc7866_example() {
    let (msg, sdp, meta) = siprec(RFC7866);
    assert_eq!(msg.call_id().unwrap(), "d253c800-b0d1ea39-4a7dd-3f0e20a");
    assert!(msg.requires("siprec"));
    assert_eq!(sdp.media.len(), 2);
    assert!(sdp
        .media
        .iter()
        .all(|m| m.direction() == Direction::SendOnly));
    assert_eq!(
        senders_by_label(&sdp, &meta),
        vec![
            (
                "1".to_owned(),
                vec!["sip:alice@atlanta.example.com".to_owned()]
            ),
            (
                "2".to_owned(),
                vec!["sip:bob@biloxi.example.com".to_owned()]
            ),
        ]
    );
    assert_eq!(meta.sessions[0].id, "hVpd7YQgRW2nD22h7q60JQ==");
    assert_eq!(
        meta.sessions[0].sip_session_ids,
        vec!["ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2"]
    );
    assert_eq!(meta.participants.len(), 2);
    assert!(meta
        .participants
        .iter()
        .all(|p| p.session_ids == vec!["hVpd7YQgRW2nD22h7q60JQ=="]));
}

#[test]
fn cisco_cube() {
    let (msg, sdp, meta) = siprec(CUBE);
    assert_eq!(
        msg.call_id().unwrap(),
        "7E2B0E4A-DA3A11EE-8011F4CF-E25B3A0C@192.0.2.10"
    );
    assert_eq!(
        cisco_guid(&msg).as_deref(),
        Some("2116681300-3661238766-2148922575-3797695020")
    );
    assert_eq!(
        session_id_header(&msg).unwrap().local,
        "3e9f2d1c0a7b5c4d8e6f1a2b3c4d5e6f"
    );
    assert_eq!(
        senders_by_label(&sdp, &meta),
        vec![
            (
                "1".to_owned(),
                vec!["sip:+14085550100@192.0.2.50".to_owned()]
            ),
            ("2".to_owned(), vec!["sip:3001@198.51.100.60".to_owned()]),
        ]
    );
    assert_eq!(
        meta.sessions[0].start_time.as_deref(),
        Some("2024-03-05T14:22:31.402Z")
    );
    let m = &sdp.media[0];
    assert_eq!((m.port, m.codec_for(0)), (16800, Some(("PCMU", 8000))));
    assert_eq!(m.fmtp_for("101"), Some("0-16"));
    // The GTD part (handling=optional) is ignored, not rejected.
}

#[test]
fn oracle_acme_pre_rfc() {
    let (msg, sdp, meta) = siprec(ACME);
    assert_eq!(msg.via_branch(), Some("z9hG4bKa1d0s10070ph1ld8c8g0.1"));
    assert_eq!(
        senders_by_label(&sdp, &meta),
        vec![
            (
                "16777227".to_owned(),
                vec!["sip:+15555550101@192.0.2.40".to_owned()]
            ),
            (
                "16777228".to_owned(),
                vec!["sip:2001@192.0.2.41".to_owned()]
            ),
        ]
    );
    assert!(sdp
        .media
        .iter()
        .all(|m| m.proto == "RTP/SAVP" && m.crypto.len() == 1));
    assert_eq!(
        meta.extension("apkt:ucid"),
        Some("00FA080018803B69810C3D;encoding=hex")
    );
    assert_eq!(meta.sessions[0].extensions.len(), 2);
    let caller = meta.senders_of_label("16777227")[0];
    assert_eq!(caller.name.as_deref(), Some("Alice & Co"));
    assert_eq!(
        caller.extensions,
        vec![("apkt:callingParty".to_owned(), "true".to_owned())]
    );
    assert_eq!(caller.session_ids, vec!["QUNNRS1zZXNzaW9uLTAwMDE="]);
    assert_eq!(
        meta.stream_by_label("16777228").unwrap().mode.as_deref(),
        Some("separate")
    );
}

#[test]
fn ribbon_sonus() {
    assert!(RIBBON.len() > 3000, "Ribbon INVITEs exceed a UDP-safe size");
    let (msg, sdp, meta) = siprec(RIBBON);
    assert_eq!(
        cisco_guid(&msg).as_deref(),
        Some("0012345678-0987654321-1122334455-0544332211")
    );
    assert_eq!(
        senders_by_label(&sdp, &meta),
        vec![
            ("1".to_owned(), vec!["+15555550123@198.51.100.5".to_owned()]),
            ("2".to_owned(), vec!["+15555550199@203.0.113.5".to_owned()]),
        ]
    );
    let caller = meta.senders_of_label("1")[0];
    assert_eq!(
        caller.aor_uri().as_deref(),
        Some("sip:+15555550123@198.51.100.5")
    );
    assert_eq!(caller.aor_user().as_deref(), Some("+15555550123"));
    assert_eq!(
        meta.group_id.as_deref(),
        Some("UmliYm9uR3JvdXAwMDAwMDAwMQ==")
    );
    assert_eq!(meta.extension("callData/gcid"), Some("0x00a1b2c3"));
    assert_eq!(
        meta.extension("callData/From"),
        Some("<sip:+15555550123@198.51.100.5>;tag=gK0a11b2c3")
    );
    assert_eq!(
        meta.extension("callData/Call-ID"),
        Some("1-12345@198.51.100.5")
    );
    let m = &sdp.media[0];
    assert_eq!(m.codec_for(18), Some(("G729", 8000)));
    assert_eq!((m.ptime, m.maxptime), (Some(20), Some(40)));
    assert_eq!(
        m.effective_connection(&sdp).unwrap().addr.to_string(),
        "203.0.113.6"
    );
    // Ribbon uses TCP: the fixture frames on a stream.
    assert_eq!(framing::message_length(RIBBON), Ok(Some(RIBBON.len())));
}

#[test]
fn broadworks_metadata_first_and_no_space_headers() {
    let (msg, sdp, meta) = siprec(BROADWORKS);
    assert_eq!(
        msg.from().unwrap().display_name.as_deref(),
        Some("Agent 4001")
    );
    assert_eq!(msg.cseq().unwrap(), (512345678, Method::Invite));
    assert_eq!(sdp.media.len(), 1);
    // One mixed m-line: both participants send on it.
    assert_eq!(
        senders_by_label(&sdp, &meta),
        vec![(
            "1".to_owned(),
            vec![
                "sip:4001@as.example.com".to_owned(),
                "tel:+15555550147".to_owned()
            ]
        )]
    );
    assert_eq!(meta.extension("bw:callType"), Some("network"));
    assert_eq!(
        meta.sessions[0].group_ref.as_deref(),
        Some("QldHcm91cDAwMDE=")
    );
}

#[test]
fn audiocodes_bare_lf_body_and_src_contact() {
    let msg = SipMessage::parse(AUDIOCODES).unwrap();
    assert!(!msg.requires("siprec"));
    assert!(signals_siprec(&msg), ";src in Contact");
    let (_, sdp, meta) = siprec(AUDIOCODES);
    assert_eq!(
        senders_by_label(&sdp, &meta),
        vec![
            (
                "1".to_owned(),
                vec!["sip:+15555550111@192.0.2.91".to_owned()]
            ),
            ("2".to_owned(), vec!["sip:6002@192.0.2.92".to_owned()]),
        ]
    );
    assert_eq!(sdp.media[1].codec_for(96), Some(("telephone-event", 8000)));
}

#[test]
fn cucm_legs() {
    let mut legs = Vec::new();
    for raw in [CUCM_NEAR, CUCM_FAR] {
        let msg = SipMessage::parse(raw).unwrap();
        assert!(!signals_siprec(&msg));
        match classify_invite(&msg).unwrap() {
            InviteKind::Cucm { sdp, leg } => {
                assert_eq!(sdp.media.len(), 1);
                assert_eq!(sdp.media[0].direction(), Direction::SendOnly);
                assert_eq!(sdp.media[0].label(), None);
                legs.push((msg.call_id().unwrap().to_owned(), leg));
            }
            other => panic!("not CUCM: {other:?}"),
        }
    }
    let [(near_call, near), (far_call, far)] = legs.as_slice() else {
        panic!("two legs expected")
    };
    assert_ne!(near_call, far_call, "two dialogs");
    assert_eq!(near.refci, far.refci);
    assert_eq!(near.stream, Some(CucmStream::NearEnd));
    assert_eq!(far.stream, Some(CucmStream::FarEnd));
}

#[test]
fn plain_call() {
    let msg = SipMessage::parse(PLAIN).unwrap();
    let kind = classify_invite(&msg).unwrap();
    assert!(matches!(kind, InviteKind::Plain { .. }));
    assert_eq!(kind.sdp().media[0].port, 49170);
}

/// Replaces the body of a fixture, fixing Content-Length.
fn with_body(raw: &[u8], content_type: Option<&str>, body: &[u8]) -> SipMessage {
    let mut msg = SipMessage::parse(raw).unwrap();
    match content_type {
        Some(ct) => msg.set_body(ct, body.to_vec()),
        None => {
            msg.remove_header("Content-Type");
            msg.body = body.to_vec();
        }
    }
    SipMessage::parse(&msg.to_bytes()).unwrap()
}

fn cube_body() -> (String, Vec<u8>) {
    let msg = SipMessage::parse(CUBE).unwrap();
    (msg.header("Content-Type").unwrap().to_owned(), msg.body)
}

#[test]
fn classification_errors_map_to_responses() {
    let (ct, body) = cube_body();
    let check = |msg: SipMessage, code: u16, reason: &str| {
        let err = classify_invite(&msg).unwrap_err();
        assert_eq!(
            (err.status_code(), err.to_string().as_str()),
            (code, reason)
        );
    };

    // Truncated multipart: the closing delimiter is missing.
    let cut = body.len() - 30;
    check(
        with_body(CUBE, Some(&ct), &body[..cut]),
        400,
        "malformed multipart body: multipart body has no closing boundary",
    );
    check(
        with_body(CUBE, Some("multipart/mixed;boundary=other"), &body),
        400,
        "malformed multipart body: multipart body has no opening boundary",
    );
    // Bad SDP inside a good multipart.
    let bad_port =
        String::from_utf8(body.clone())
            .unwrap()
            .replacen("m=audio 16800", "m=audio 70000", 1);
    check(
        with_body(CUBE, Some(&ct), bad_port.as_bytes()),
        400,
        "malformed SDP: SDP line 6: bad m= port (m=audio 70000 RTP/AVP 0 101)",
    );
    let bad_c = String::from_utf8(body.clone()).unwrap().replacen(
        "c=IN IP4 192.0.2.10",
        "c=IN IP4 192.0.2",
        1,
    );
    check(
        with_body(CUBE, Some(&ct), bad_c.as_bytes()),
        400,
        "malformed SDP: SDP line 4: bad c= address (c=IN IP4 192.0.2)",
    );
    // Metadata with a DOCTYPE.
    let doctype = String::from_utf8(body.clone()).unwrap().replacen(
        "<recording ",
        "<!DOCTYPE recording [<!ENTITY x \"y\">]><recording ",
        1,
    );
    check(
        with_body(CUBE, Some(&ct), doctype.as_bytes()),
        400,
        "malformed recording metadata: metadata must not contain DOCTYPE or ENTITY declarations",
    );
    // A required part of an unknown type.
    let required_gtd = String::from_utf8(body.clone())
        .unwrap()
        .replace("signal;handling=optional", "signal;handling=required");
    check(
        with_body(CUBE, Some(&ct), required_gtd.as_bytes()),
        415,
        "unsupported body type application/gtd",
    );
    check(
        with_body(PLAIN, Some("text/html"), b"<p>hi</p>"),
        415,
        "unsupported body type text/html",
    );
    // Delayed offer.
    check(
        with_body(CUCM_NEAR, Some(""), b""),
        488,
        "no SDP offer in the INVITE",
    );
    check(
        with_body(
            RFC7866,
            Some("application/rs-metadata+xml"),
            b"<recording/>",
        ),
        488,
        "no SDP offer in the INVITE",
    );
    let mut gz = SipMessage::parse(PLAIN).unwrap();
    gz.add_header("Content-Encoding", "gzip");
    check(gz, 415, "unsupported Content-Encoding gzip");
    check(
        with_body(PLAIN, Some("application"), b"v=0"),
        400,
        "malformed Content-Type header",
    );
    check(
        with_body(PLAIN, None, b"hello"),
        400,
        "missing Content-Type header",
    );
    let two_sdp = b"--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b--";
    check(
        with_body(PLAIN, Some("multipart/mixed;boundary=b"), two_sdp),
        400,
        "more than one SDP body part",
    );
}

#[test]
fn lenient_body_handling() {
    // Missing Content-Type but an obvious SDP: sniffed.
    let sdp = SipMessage::parse(PLAIN).unwrap().body;
    assert!(matches!(
        classify_invite(&with_body(PLAIN, None, &sdp)).unwrap(),
        InviteKind::Plain { .. }
    ));
    // Headerless parts inside multipart are sniffed too; metadata alone makes
    // it SIPREC even without Require/Contact.
    let plain_sdp = String::from_utf8(sdp).unwrap();
    let body = format!(
        "--b\n\n{plain_sdp}\n--b\n<?xml version=\"1.0\"?><recording xmlns=\"urn:ietf:params:xml:ns:recording:1\"/>\n--b--\n"
    );
    match classify_invite(&with_body(
        PLAIN,
        Some("multipart/mixed;boundary=b"),
        body.as_bytes(),
    ))
    .unwrap()
    {
        InviteKind::Siprec {
            metadata: Some(_), ..
        } => {}
        other => panic!("{other:?}"),
    }
    // SIPREC signalled, metadata to follow later.
    let mut msg = SipMessage::parse(PLAIN).unwrap();
    msg.add_header("Require", "siprec");
    assert!(matches!(
        classify_invite(&msg).unwrap(),
        InviteKind::Siprec { metadata: None, .. }
    ));
}

#[test]
fn tcp_framing_of_concatenated_and_split_fixtures() {
    let mut stream = Vec::new();
    for raw in ALL {
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(raw);
    }
    // Feed in awkward chunks, as a TCP socket would.
    let mut buffer: Vec<u8> = Vec::new();
    let mut call_ids = Vec::new();
    for chunk in stream.chunks(97) {
        buffer.extend_from_slice(chunk);
        while let Some(len) = framing::message_length(&buffer).unwrap() {
            let msg = SipMessage::parse(&buffer[..len]).unwrap();
            call_ids.push(msg.call_id().unwrap().to_owned());
            buffer.drain(..len);
        }
    }
    assert!(buffer.is_empty());
    let expected: Vec<String> = ALL
        .iter()
        .map(|raw| {
            SipMessage::parse(raw)
                .unwrap()
                .call_id()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(call_ids, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..ALL.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
    ) {
        let mut bytes = ALL[which].to_vec();
        for (index, byte) in edits {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        let _ = framing::message_length(&bytes);
        if let Ok(msg) = SipMessage::parse(&bytes) {
            if let Ok(InviteKind::Siprec { sdp, metadata: Some((_, meta)) }) = classify_invite(&msg) {
                for m in &sdp.media {
                    if let Some(label) = m.label() {
                        let _ = meta.senders_of_label(label);
                    }
                }
            }
            let _ = (CucmLeg::from_message(&msg), cisco_guid(&msg), session_id_header(&msg));
        }
    }

    #[test]
    fn truncated_fixtures_never_panic(which in 0..ALL.len(), cut in any::<prop::sample::Index>()) {
        let raw = ALL[which];
        let bytes = &raw[..cut.index(raw.len())];
        prop_assert_eq!(framing::message_length(bytes).ok(), Some(None));
        if let Ok(msg) = SipMessage::parse(bytes) {
            let _ = classify_invite(&msg);
        }
    }

    #[test]
    fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048), multipart in any::<bool>()) {
        let ct = if multipart { Some("multipart/mixed;boundary=uniqueBoundary") } else { None };
        let msg = with_body(CUBE, ct, &body);
        let _ = classify_invite(&msg);
    }
}
