//! Ethernet → IP → UDP → RTP/RTCP parsing: any frame, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_dataplane::packet::{classify, parse_frame};
use mediafork_dataplane::source::Frame;

fuzz_target!(|data: &[u8]| {
    for frame in [Frame::Ethernet, Frame::Ip] {
        if let Ok(d) = parse_frame(frame, data) {
            let _ = classify(d.payload);
        }
    }
    let _ = classify(data);
});
