//! SIP datagram parsing and TCP stream framing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_control::sip::{framing, SipMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SipMessage::parse(data) {
        let _ = m.cseq();
        let _ = m.from();
        let _ = m.to();
        let _ = m.content_type();
        let _ = SipMessage::parse(&m.to_bytes());
    }
    let _ = framing::message_length(data);
});
