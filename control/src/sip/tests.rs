//! Message-level tests: parsing, validation, accessors, building, and
//! robustness against arbitrary bytes.

use super::*;
use proptest::prelude::*;

const INVITE: &[u8] = b"\r\n\r\nINVITE sip:srs@198.51.100.20:5060 SIP/2.0\r\n\
v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport, SIP/2.0/UDP 192.0.2.11;branch=z9hG4bKx\r\n\
Via: SIP/2.0/UDP 192.0.2.12;branch=z9hG4bKy\r\n\
f: \"Rec, Src\" <sip:src@192.0.2.10>;tag=9fxced76sl\r\n\
t: <sip:srs@198.51.100.20>\r\n\
i: 3848276298220188511@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
m: <sip:src@192.0.2.10>;+sip.src, <sip:alt@192.0.2.10>\r\n\
Require: siprec\r\n\
k: timer,\r\n 100rel\r\n\
Record-Route: <sip:p1@192.0.2.99;lr>\r\n\
c: application/sdp\r\n\
l: 5\r\n\
\r\n\
v=0\r\nextra";

#[test]
fn parses_compact_folded_multi_valued_headers() {
    let msg = SipMessage::parse(INVITE).unwrap();
    assert_eq!(msg.method(), Some(&Method::Invite));
    assert_eq!(msg.request_uri(), Some("sip:srs@198.51.100.20:5060"));
    assert_eq!(msg.status(), None);
    assert_eq!(msg.call_id().unwrap(), "3848276298220188511@192.0.2.10");
    assert_eq!(msg.cseq().unwrap(), (1, Method::Invite));
    let from = msg.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("Rec, Src"));
    assert_eq!(from.tag(), Some("9fxced76sl"));
    assert_eq!(msg.to().unwrap().tag(), None);
    assert_eq!(msg.header_list("Via").len(), 3);
    assert_eq!(msg.headers_all("VIA").count(), 2);
    assert_eq!(msg.via_branch(), Some("z9hG4bK74bf9"));
    assert_eq!(msg.via_param("rport").as_deref(), Some(""));
    assert_eq!(msg.require(), vec!["siprec"]);
    assert!(msg.requires("SIPREC"));
    assert_eq!(msg.supported(), vec!["timer", "100rel"]);
    let contacts = msg.contacts().unwrap();
    assert_eq!(contacts.len(), 2);
    assert!(contacts[0].has_param("+sip.src"));
    assert_eq!(
        msg.content_type().unwrap().unwrap().mime_type,
        "application/sdp"
    );
    // Body cut to Content-Length.
    assert_eq!(msg.body, b"v=0\r\n");
}

#[test]
fn bare_lf_message() {
    let raw = b"SIP/2.0 200 OK\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2\nCall-ID: x\nCSeq: 7 BYE\n\n";
    let msg = SipMessage::parse(raw).unwrap();
    assert_eq!(msg.status(), Some(200));
    assert_eq!(msg.cseq().unwrap(), (7, Method::Bye));
    assert!(msg.body.is_empty());
}

fn request_with(headers: &str) -> Vec<u8> {
    format!("OPTIONS sip:srs@198.51.100.20 SIP/2.0\r\n{headers}\r\n").into_bytes()
}

const GOOD: &str = "Via: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n";

#[test]
fn malformed_messages_name_the_problem() {
    let cases: Vec<(String, &str)> = vec![
        (GOOD.replace("Call-ID: x\r\n", ""), "missing Call-ID header"),
        (
            GOOD.replace("Via: SIP/2.0/UDP a;branch=z9hG4bK1\r\n", ""),
            "missing Via header",
        ),
        (
            GOOD.replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS"),
            "malformed CSeq header",
        ),
        (
            GOOD.replace("CSeq: 1 OPTIONS", "CSeq: 1"),
            "malformed CSeq header",
        ),
        (
            GOOD.replace("CSeq: 1 OPTIONS", "CSeq: 99999999999 OPTIONS"),
            "malformed CSeq header",
        ),
        (
            GOOD.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"),
            "CSeq method INVITE does not match request method OPTIONS",
        ),
        (
            GOOD.replace("From: <sip:a@b>;tag=1", "From: <sip:a@b"),
            "malformed From header",
        ),
        (
            format!("{GOOD}Content-Length: 5000\r\n"),
            "Content-Length 5000 exceeds the 0 bytes received",
        ),
        (
            format!("{GOOD}Content-Length: -1\r\n"),
            "malformed Content-Length header",
        ),
        (
            format!("{GOOD}Content-Length: 0\r\nl: 2\r\n"),
            "malformed Content-Length header",
        ),
        (
            format!("{GOOD}Bad Header: x\r\n"),
            "malformed header line 7",
        ),
    ];
    for (headers, expected) in cases {
        let err = SipMessage::parse(&request_with(&headers)).unwrap_err();
        assert_eq!(err.to_string(), expected, "{headers}");
    }
    assert_eq!(
        SipMessage::parse(b"\r\n\r\n").unwrap_err(),
        SipParseError::Empty
    );
    assert_eq!(
        SipMessage::parse(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n").unwrap_err(),
        SipParseError::UnterminatedHeaders
    );
    // The unvalidated parse still lets the caller answer with a 400.
    let raw = request_with(&GOOD.replace("Call-ID: x\r\n", ""));
    let msg = SipMessage::parse_unvalidated(&raw, &ParseLimits::default()).unwrap();
    assert_eq!(
        msg.validate().unwrap_err(),
        SipParseError::MissingHeader("Call-ID")
    );
}

#[test]
fn limits_are_errors() {
    let limits = ParseLimits {
        max_message_len: 300,
        max_headers: 5,
        max_line_len: 100,
    };
    let raw = request_with(&format!("{GOOD}X-Extra: 1\r\n"));
    assert_eq!(
        SipMessage::parse_with_limits(&raw, &limits).unwrap_err(),
        SipParseError::TooManyHeaders { max: 5 }
    );
    let raw = request_with(&format!("Subject: {}\r\n", "x".repeat(200)));
    assert_eq!(
        SipMessage::parse_with_limits(&raw, &limits).unwrap_err(),
        SipParseError::LineTooLong { max: 100 }
    );
    let raw = vec![b'a'; 301];
    assert!(matches!(
        SipMessage::parse_with_limits(&raw, &limits),
        Err(SipParseError::MessageTooLarge { len: 301, max: 300 })
    ));
}

#[test]
fn builds_a_response_per_rfc3261() {
    let req = SipMessage::parse(INVITE).unwrap();
    let mut resp = SipMessage::response(&req, 200, "OK");
    assert!(resp.set_to_tag("srs-1"));
    assert!(!resp.set_to_tag("srs-2"));
    resp.add_header("Contact", "<sip:srs@198.51.100.20>");
    resp.set_body("application/sdp", b"v=0\r\n".to_vec());
    let bytes = resp.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport, SIP/2.0/UDP 192.0.2.11;branch=z9hG4bKx\r\nVia: SIP/2.0/UDP 192.0.2.12;branch=z9hG4bKy\r\n"));
    assert!(text.contains("\r\nTo: <sip:srs@198.51.100.20>;tag=srs-1\r\n"));
    assert!(text.contains("\r\nRecord-Route: <sip:p1@192.0.2.99;lr>\r\n"));
    assert!(text.ends_with("\r\nContent-Length: 5\r\n\r\nv=0\r\n"));
    assert_eq!(text.matches("Content-Length").count(), 1);
    // What we build parses back to the same thing.
    let back = SipMessage::parse(&bytes).unwrap();
    assert_eq!(back.status(), Some(200));
    assert_eq!(back.to().unwrap().tag(), Some("srs-1"));
    assert_eq!(back.call_id().unwrap(), req.call_id().unwrap());
    assert_eq!(back.cseq().unwrap(), (1, Method::Invite));
    assert_eq!(back.body, b"v=0\r\n");

    // No Record-Route on a 100 Trying or a failure.
    let trying = SipMessage::response(&req, 100, "Trying");
    assert!(trying.header("Record-Route").is_none());
}

#[test]
fn to_bytes_cannot_inject_headers() {
    let req = SipMessage::parse(INVITE).unwrap();
    let mut resp = SipMessage::response(&req, 400, "bad\r\nX-Evil: 1");
    resp.set_header("Warning", "399 srs \"x\"\r\nX-Evil: 2");
    let text = String::from_utf8(resp.to_bytes()).unwrap();
    assert!(!text.contains("\r\nX-Evil"));
    assert!(SipMessage::parse(text.as_bytes()).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SipMessage::parse(&bytes);
        let _ = framing::message_length(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let mut bytes = INVITE.to_vec();
        for (index, byte) in edits {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        if let Ok(msg) = SipMessage::parse(&bytes) {
            let _ = (msg.from(), msg.to(), msg.cseq(), msg.contacts(), msg.content_type(), msg.via_branch());
            let again = SipMessage::parse(&msg.to_bytes());
            prop_assert!(again.is_ok(), "{:?}", again);
        }
        let _ = framing::message_length(&bytes);
    }
}
