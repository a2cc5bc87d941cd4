//! SIP over TCP/TLS: the Content-Length framer fed the input in arbitrary
//! chunks, the way a receive loop sees it.
//!
//! Invariants: every frame it yields is non-empty, within the buffer, within
//! the limits and parses (framing and parsing agree on where the body
//! starts and ends); the frames do not depend on how the bytes were chunked.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_control::sip::framing::{leading_keepalive_len, message_length_with_limits};
use mediafork_control::sip::{ParseLimits, SipMessage};

/// Small enough that the fuzzer reaches every limit with short inputs.
const SMALL: ParseLimits = ParseLimits {
    max_message_len: 600,
    max_headers: 8,
    max_line_len: 120,
};

#[derive(Debug, PartialEq)]
enum End {
    /// Waiting for more bytes, with this many buffered.
    Pending(usize),
    Error,
}

/// Feeds `chunks` to a receive buffer the way the server's reader does:
/// append, then take complete messages until the framer wants more.
fn frame<'a>(chunks: impl Iterator<Item = &'a [u8]>, limits: &ParseLimits) -> (Vec<Vec<u8>>, End) {
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match message_length_with_limits(&buf, limits) {
                Ok(Some(n)) => {
                    assert!(n > 0 && n <= buf.len(), "frame of {n} in {}", buf.len());
                    let frame: Vec<u8> = buf.drain(..n).collect();
                    check_frame(&frame, limits);
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(_) => return (frames, End::Error),
            }
        }
    }
    (frames, End::Pending(buf.len()))
}

fn check_frame(frame: &[u8], limits: &ParseLimits) {
    let keepalive = leading_keepalive_len(frame);
    assert!(keepalive < frame.len(), "a frame of keep-alives only");
    assert!(frame.len() - keepalive <= limits.max_message_len);
    let m = SipMessage::parse_unvalidated(frame, limits)
        .unwrap_or_else(|e| panic!("framed message does not parse: {e}"));
    let body_start = frame.len() - m.body.len();
    assert_eq!(
        frame.get(body_start..),
        Some(m.body.as_slice()),
        "the body is not the end of the frame"
    );
    if let Ok(m) = SipMessage::parse_with_limits(frame, limits) {
        let _ = (m.call_id(), m.cseq(), m.via_branch());
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte: limits and chunk-size seed; the rest is the stream.
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let limits = if ctl & 1 == 0 {
        ParseLimits::default()
    } else {
        SMALL
    };
    let whole = frame(std::iter::once(stream), &limits);
    // Chunk sizes from a tiny LCG seeded by the control byte, so the same
    // input always chunks the same way: up to 8 bytes (every boundary case)
    // or up to 512 (TCP-segment-like). The framer rescans the buffer on
    // every call, so tiny chunks on long inputs would only slow the run.
    let max_chunk = if ctl & 2 == 0 && stream.len() <= 1024 {
        8
    } else {
        512
    };
    let mut state = u32::from(ctl >> 2) | 1;
    let mut rest = stream;
    let chunks = std::iter::from_fn(|| {
        if rest.is_empty() {
            return None;
        }
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((state >> 16) as usize % max_chunk + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    });
    let chunked = frame(chunks, &limits);
    // Errors are prefix-stable (a bad start line or an over-long line is
    // already bad when only part of it has arrived), so even a broken
    // stream breaks at the same message however it was chunked.
    assert_eq!(whole, chunked, "framing depends on chunking");
});
