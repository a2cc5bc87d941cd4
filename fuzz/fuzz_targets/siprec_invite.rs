//! A whole INVITE body path: multipart, SDP, SIPREC metadata XML, CUCM
//! parameters, and the recorder's answer to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_control::server::answer::{assess, build_answer};
use mediafork_control::sip::SipMessage;
use mediafork_control::siprec::classify_invite;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = SipMessage::parse(data) else {
        return;
    };
    if let Ok(kind) = classify_invite(&m) {
        let offer = kind.sdp();
        let v = assess(offer);
        let _ = build_answer(offer, &v, &[], "127.0.0.1".parse().unwrap(), 1, 1).to_string();
    }
});
