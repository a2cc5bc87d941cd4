//! Records on the worker → writer rings.
//!
//! Each (worker, writer) pair has one SPSC byte ring (`rtrb`). A record is a
//! fixed 40-byte header followed by its payload; writing one is a bounds
//! check and two `memcpy`s into memory the ring owns, so the hot path never
//! allocates. Variable-length records keep a 20 ms G.711 packet at 200 bytes
//! of ring instead of a slot sized for the largest packet.

use rtrb::{Consumer, Producer, RingBuffer};

use crate::demux::TrackRef;

/// Size of the fixed record header.
pub const HEADER_LEN: usize = 40;

/// What a record carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Audio payload placed at `rel` samples in segment `segment`.
    Audio = 1,
    /// A new segment begins: `rel` holds the silence (samples) to insert
    /// before it, `ssrc` its SSRC, `aux` the [`SegmentReason`].
    SegmentStart = 2,
    /// A raw packet for the call's pcap; `aux` is the frame kind and, for
    /// socket frames, the payload starts with the encoded addresses.
    Packet = 3,
    /// The worker's final statistics for a track (payload: `TrackReport`).
    TrackEnd = 4,
    /// Audio the worker could not put on the ring (it was full): `aux`
    /// packets from `rel` in segment `segment`, the first of which arrived
    /// at `arrival_ns`; the payload is the last one's arrival (u64 LE).
    /// Sent before the next record of the track that fits.
    Loss = 5,
}

/// Payload size of a [`Kind::Loss`] record.
pub const LOSS_PAYLOAD: usize = 8;

/// The fixed part of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// Codec (as `u8`) for audio and segment records.
    pub codec: u8,
    pub payload_len: u16,
    pub track: TrackRef,
    pub segment: u32,
    pub rel: i64,
    pub arrival_ns: u64,
    pub ssrc: u32,
    pub aux: u32,
}

impl Header {
    #[inline]
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = self.kind as u8;
        b[1] = self.codec;
        b[2..4].copy_from_slice(&self.payload_len.to_le_bytes());
        b[4..8].copy_from_slice(&self.track.slot.to_le_bytes());
        b[8..12].copy_from_slice(&self.track.gen.to_le_bytes());
        b[12..16].copy_from_slice(&self.segment.to_le_bytes());
        b[16..24].copy_from_slice(&self.rel.to_le_bytes());
        b[24..32].copy_from_slice(&self.arrival_ns.to_le_bytes());
        b[32..36].copy_from_slice(&self.ssrc.to_le_bytes());
        b[36..40].copy_from_slice(&self.aux.to_le_bytes());
        b
    }

    fn decode(b: &[u8; HEADER_LEN]) -> Option<Header> {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let kind = match b[0] {
            1 => Kind::Audio,
            2 => Kind::SegmentStart,
            3 => Kind::Packet,
            4 => Kind::TrackEnd,
            5 => Kind::Loss,
            _ => return None,
        };
        Some(Header {
            kind,
            codec: b[1],
            payload_len: u16::from_le_bytes([b[2], b[3]]),
            track: TrackRef {
                slot: u32_at(4),
                gen: u32_at(8),
            },
            segment: u32_at(12),
            rel: u64_at(16) as i64,
            arrival_ns: u64_at(24),
            ssrc: u32_at(32),
            aux: u32_at(36),
        })
    }
}

/// Create a ring of `bytes` bytes.
pub fn ring(bytes: usize) -> (RecordProducer, RecordConsumer) {
    let (p, c) = RingBuffer::new(bytes);
    (
        RecordProducer { inner: p },
        RecordConsumer {
            inner: c,
            scratch: Vec::with_capacity(2048),
        },
    )
}

/// The worker's end of a ring.
pub struct RecordProducer {
    inner: Producer<u8>,
}

impl RecordProducer {
    /// Free bytes.
    #[inline]
    pub fn free(&self) -> usize {
        self.inner.slots()
    }

    /// Bytes a record with `payload` bytes takes.
    #[inline]
    pub const fn size_of(payload: usize) -> usize {
        HEADER_LEN + payload
    }

    /// Append one record whose payload is the concatenation of `parts`.
    /// Returns false (and writes nothing) when the ring lacks room.
    #[inline]
    pub fn push(&mut self, header: &Header, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        debug_assert_eq!(len, header.payload_len as usize);
        let total = HEADER_LEN + len;
        let Ok(mut chunk) = self.inner.write_chunk(total) else {
            return false;
        };
        let (a, b) = chunk.as_mut_slices();
        let mut dst = Split { a, b, at: 0 };
        dst.put(&header.encode());
        for p in parts {
            dst.put(p);
        }
        chunk.commit_all();
        true
    }

    /// Whether the writer has gone away.
    pub fn is_abandoned(&self) -> bool {
        self.inner.is_abandoned()
    }
}

/// A write cursor over the two halves of a wrapped ring chunk.
struct Split<'a> {
    a: &'a mut [u8],
    b: &'a mut [u8],
    at: usize,
}

impl Split<'_> {
    #[inline]
    fn put(&mut self, src: &[u8]) {
        let in_a = self.a.len().saturating_sub(self.at).min(src.len());
        if in_a > 0 {
            self.a[self.at..self.at + in_a].copy_from_slice(&src[..in_a]);
        }
        let rest = &src[in_a..];
        if !rest.is_empty() {
            let off = (self.at + in_a) - self.a.len();
            self.b[off..off + rest.len()].copy_from_slice(rest);
        }
        self.at += src.len();
    }
}

/// The writer's end of a ring.
pub struct RecordConsumer {
    inner: Consumer<u8>,
    scratch: Vec<u8>,
}

/// Ring contents that are not a record: a bug, never input-driven (only
/// workers write rings), reported rather than panicking.
#[derive(Debug, thiserror::Error)]
#[error("corrupt record on a worker ring (kind byte {0})")]
pub struct CorruptRecord(pub u8);

impl RecordConsumer {
    /// Take the next record, if a whole one is there, and pass it to `f`.
    pub fn pop<R>(
        &mut self,
        f: impl FnOnce(&Header, &[u8]) -> R,
    ) -> Result<Option<R>, CorruptRecord> {
        let mut hb = [0u8; HEADER_LEN];
        {
            let Ok(chunk) = self.inner.read_chunk(HEADER_LEN) else {
                return Ok(None);
            };
            let (a, b) = chunk.as_slices();
            hb[..a.len()].copy_from_slice(a);
            hb[a.len()..].copy_from_slice(b);
            // Not committed: the header stays until the whole record is read.
        }
        let header = Header::decode(&hb).ok_or(CorruptRecord(hb[0]))?;
        let total = HEADER_LEN + header.payload_len as usize;
        let Ok(chunk) = self.inner.read_chunk(total) else {
            return Ok(None);
        };
        let (a, b) = chunk.as_slices();
        self.scratch.clear();
        self.scratch.extend_from_slice(a);
        self.scratch.extend_from_slice(b);
        chunk.commit_all();
        Ok(Some(f(&header, &self.scratch[HEADER_LEN..])))
    }

    /// Throw away everything waiting (benchmarks that measure workers only).
    pub fn discard_all(&mut self) {
        let n = self.inner.slots();
        if let Ok(chunk) = self.inner.read_chunk(n) {
            chunk.commit_all();
        }
    }

    /// Bytes waiting.
    pub fn used(&self) -> usize {
        self.inner.slots()
    }

    /// Whether the worker has gone away.
    pub fn is_abandoned(&self) -> bool {
        self.inner.is_abandoned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(kind: Kind, len: u16, rel: i64) -> Header {
        Header {
            kind,
            codec: 0,
            payload_len: len,
            track: TrackRef { slot: 3, gen: 9 },
            segment: 2,
            rel,
            arrival_ns: 123,
            ssrc: 0xdeadbeef,
            aux: 7,
        }
    }

    #[test]
    fn records_survive_wraparound() {
        let (mut p, mut c) = ring(1000);
        let mut expected = Vec::new();
        for i in 0..500u32 {
            let payload: Vec<u8> = (0..(i % 170) as u8).collect();
            let head = h(Kind::Audio, payload.len() as u16, i as i64 * -3);
            // Fill until full, then drain, so records straddle the wrap point.
            if !p.push(
                &head,
                &[&payload[..payload.len() / 2], &payload[payload.len() / 2..]],
            ) {
                while let Some((hh, pl)) = c.pop(|hh, pl| (*hh, pl.to_vec())).unwrap() {
                    assert_eq!(Some((hh, pl)), expected.first().cloned());
                    expected.remove(0);
                }
                assert!(p.push(&head, &[&payload]));
            }
            expected.push((head, payload));
        }
        while let Some(got) = c.pop(|hh, pl| (*hh, pl.to_vec())).unwrap() {
            assert_eq!(got, expected.remove(0));
        }
        assert!(expected.is_empty());
    }

    #[test]
    fn full_ring_refuses_without_partial_write() {
        let (mut p, mut c) = ring(100);
        assert!(p.push(&h(Kind::Audio, 50, 0), &[&[1; 50]]));
        assert!(!p.push(&h(Kind::Audio, 50, 0), &[&[2; 50]]));
        let got = c.pop(|hh, pl| (hh.payload_len, pl[0])).unwrap();
        assert_eq!(got, Some((50, 1)));
        assert_eq!(c.pop(|_, _| ()).unwrap(), None);
    }
}
