//! multipart/mixed bodies as SIPREC SRCs send them.
//!
//! Input: a Content-Type value up to the first newline, then the body.
//! Invariants: at most `MAX_PARTS` parts, each part's body is a contiguous
//! piece of the input body, and a non-multipart type is one verbatim part.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_control::sip::ContentType;
use mediafork_control::siprec::multipart::{self, MAX_PARTS};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (ct, body) = data.split_at(split);
    let body = body.get(1..).unwrap_or_default();
    let Ok(ct) = ContentType::parse(&String::from_utf8_lossy(ct)) else {
        return;
    };
    let Ok(parts) = multipart::parse(&ct, body) else {
        return;
    };
    if !ct.is_multipart() {
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body, body);
        return;
    }
    assert!(!parts.is_empty() && parts.len() <= MAX_PARTS);
    for p in &parts {
        assert!(contains(body, &p.body), "part body not taken from the body");
        assert_eq!(p.content_type, p.content_type.to_ascii_lowercase());
        let _ = (p.disposition_type(), p.handling_required());
        let _ = p.header("Content-ID");
    }
});
