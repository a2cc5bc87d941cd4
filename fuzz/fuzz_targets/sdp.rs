//! SDP offers: the parser, every per-m-line accessor the answer builder
//! uses, and the writer.
//!
//! Invariants: what we write parses again to the same media lines (kind,
//! port, formats, direction, label), and writing is idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_control::sdp::Sdp;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = Sdp::parse_bytes(data) else {
        return;
    };
    let _ = (sdp.session_direction(), sdp.origin.sess_version_num());
    for m in &sdp.media {
        let _ = (m.direction(), m.label(), m.mid(), m.is_disabled());
        let _ = m.effective_connection(&sdp);
        for pt in m.payload_types() {
            let _ = m.codec_for(pt);
            let _ = m.fmtp_for(&pt.to_string());
        }
    }
    let text = sdp.to_string();
    let again =
        Sdp::parse(&text).unwrap_or_else(|e| panic!("written SDP does not parse: {e}\n{text}"));
    assert_eq!(again.media.len(), sdp.media.len());
    for (a, b) in again.media.iter().zip(&sdp.media) {
        assert_eq!(a.kind, b.kind);
        assert_eq!(a.port, b.port);
        assert_eq!(a.formats, b.formats);
        assert_eq!(a.direction(), b.direction());
        // The writer turns a stray CR inside a value into a space.
        assert_eq!(
            a.label(),
            b.label().map(|l| l.replace('\r', " ")).as_deref()
        );
        assert_eq!(a.payload_types(), b.payload_types());
    }
    assert_eq!(again.to_string(), text, "writing SDP is not idempotent");
});
