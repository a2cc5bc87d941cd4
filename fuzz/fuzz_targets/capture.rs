//! pcap/pcapng reading for offline replay, then the same link-stripping and
//! packet path replay uses.
//!
//! Invariants: no packet is longer than the file it came from, the reader
//! is fused (nothing after an error), and a file read whole or through a
//! reader that returns a few bytes at a time gives the same packets.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_dataplane::capture::{strip_link, CaptureReader};
use mediafork_dataplane::packet::{classify, parse_frame};
use std::io::{self, Read};

/// Returns at most 7 bytes per read, as a pipe or socket may.
struct Dribble(io::Cursor<Vec<u8>>);

impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(7);
        self.0.read(&mut buf[..n])
    }
}

/// Packets (timestamp, link, data, orig_len) and whether reading ended in
/// an error; `None` if the file header is refused.
type Read_ = (Vec<(u64, String, Vec<u8>, u32)>, bool);

fn read_all<R: Read + Send + 'static>(r: R, len: usize) -> Option<Read_> {
    let mut reader = CaptureReader::from_reader(r, "fuzz").ok()?;
    let mut packets = Vec::new();
    let mut failed = false;
    // Each record has a header of at least 16 bytes, so a file cannot hold
    // more packets than this; more would mean the reader loops.
    let bound = len / 16 + 1;
    while let Some(next) = reader.next_packet() {
        match next {
            Ok(p) => {
                assert!(p.data.len() <= len, "packet longer than the file");
                if let Ok((frame, bytes)) = strip_link(p.link, p.data) {
                    if let Ok(d) = parse_frame(frame, bytes) {
                        let _ = classify(d.payload);
                    }
                }
                packets.push((
                    p.timestamp_ns,
                    format!("{:?}", p.link),
                    p.data.to_vec(),
                    p.orig_len,
                ));
                assert!(
                    packets.len() <= bound,
                    "more packets than the file can hold"
                );
            }
            Err(e) => {
                let _ = e.to_string();
                failed = true;
                break;
            }
        }
    }
    assert!(reader.next_packet().is_none(), "reader not fused");
    Some((packets, failed))
}

fuzz_target!(|data: &[u8]| {
    let whole = read_all(io::Cursor::new(data.to_vec()), data.len());
    let dribbled = read_all(Dribble(io::Cursor::new(data.to_vec())), data.len());
    assert_eq!(whole, dribbled, "packets depend on read sizes");
});
