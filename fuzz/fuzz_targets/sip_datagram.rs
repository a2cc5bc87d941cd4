//! One SIP message per UDP datagram: `SipMessage::parse`, every accessor the
//! recorder uses, and the serialiser.
//!
//! Invariants: a parsed message re-serialised parses again to the same start
//! line, Call-ID, CSeq and body, and serialising is idempotent (what we
//! send is what we would read back).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_control::sip::{ParseLimits, SipMessage};

/// Serialising turns bare LF into CRLF, unfolds continuation lines and adds
/// Content-Length, so the copy can exceed limits the original met; those
/// limits are not what this target checks.
const RELAXED: ParseLimits = ParseLimits {
    max_message_len: usize::MAX,
    max_headers: usize::MAX,
    max_line_len: usize::MAX,
};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = SipMessage::parse(data) else {
        // The unvalidated parse is what answers malformed requests with 400.
        if let Ok(m) = SipMessage::parse_unvalidated(data, &ParseLimits::default()) {
            let _ = m.validate();
            let _ = SipMessage::response(&m, 400, "Bad Request").to_bytes();
        }
        return;
    };
    let _ = (m.from(), m.to(), m.contacts(), m.content_type());
    let _ = (m.via_branch(), m.via_params(), m.require(), m.supported());
    let _ = (m.request_uri(), m.status(), m.header_list("Allow"));
    let mut resp = SipMessage::response(&m, 200, "OK");
    resp.set_to_tag("fuzz");
    let _ = resp.to_bytes();

    let bytes = m.to_bytes();
    let again = SipMessage::parse_with_limits(&bytes, &RELAXED)
        .unwrap_or_else(|e| panic!("re-serialised message does not parse: {e}"));
    // The serialiser replaces CR inside values by a space (no injection).
    let norm = |s: &str| s.replace('\r', " ");
    assert_eq!(again.method(), m.method());
    assert_eq!(again.status(), m.status());
    assert_eq!(again.request_uri().map(norm), m.request_uri().map(norm));
    assert_eq!(again.call_id().ok().map(norm), m.call_id().ok().map(norm));
    assert_eq!(again.cseq().ok(), m.cseq().ok());
    assert_eq!(again.body, m.body);
    assert_eq!(again.to_bytes(), bytes, "serialising is not idempotent");
});
