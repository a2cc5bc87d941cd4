//! A worker's final account of one track, sent to the writer on the ring
//! when the track ends. Several workers may have seen the same track (RSS
//! moved a stream), so reports are merged.

/// Per-track counters kept by the worker that receives the track.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrackReport {
    /// Whether this worker saw any packet of the track.
    pub seen: bool,
    /// First SSRC seen.
    pub ssrc: u32,
    /// Unique RTP packets received (all segments).
    pub packets: u64,
    /// Packets expected from the sequence numbers (all segments).
    pub expected: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Received too far behind to place (sequence window); the writer adds
    /// the packets that missed its reorder window.
    pub late: u64,
    /// Packets not written because the ring to the writer was full.
    pub ring_drops: u64,
    /// Packets whose payload type the track cannot record.
    pub unsupported: u64,
    /// RFC 4733 event packets.
    pub events: u64,
    pub rtcp_packets: u64,
    pub ssrc_changes: u64,
    pub first_seq: u16,
    pub last_seq: u16,
    pub first_timestamp: u32,
    pub last_timestamp: u32,
    pub first_arrival_ns: u64,
    pub last_arrival_ns: u64,
    /// RFC 3550 interarrival jitter at the end, ns.
    pub jitter_ns: f64,
    /// SRTP/SRTCP packets whose authentication failed (not recorded).
    pub srtp_auth_failed: u64,
    /// SRTP/SRTCP packets refused as replays (not recorded).
    pub srtp_replay: u64,
    /// Packets from another source than the one the track is locked to.
    pub wrong_source: u64,
    /// Packets whose raw copy for `call.pcap` did not fit in the ring to
    /// the writer: the capture lacks them (the audio may still hold them).
    pub pcap_drops: u64,
}

const WORDS: usize = 19;
/// Encoded size on the ring.
pub const ENCODED_LEN: usize = WORDS * 8;

impl TrackReport {
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let words: [u64; WORDS] = [
            self.seen as u64,
            self.ssrc as u64,
            self.packets,
            self.expected,
            self.duplicates,
            self.reordered,
            self.late,
            self.ring_drops,
            self.unsupported,
            self.events,
            self.rtcp_packets,
            self.ssrc_changes,
            // The SRTP counters share a word, 32 bits each (saturating):
            // the encoded size stays what the writer expects.
            (self.srtp_auth_failed.min(u32::MAX as u64) << 32)
                | self.srtp_replay.min(u32::MAX as u64),
            (self.first_seq as u64) << 48 | (self.last_seq as u64) << 32,
            (self.first_timestamp as u64) << 32 | self.last_timestamp as u64,
            self.first_arrival_ns,
            self.last_arrival_ns,
            self.wrong_source,
            self.pcap_drops,
        ];
        let mut out = [0u8; ENCODED_LEN];
        for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        // Jitter travels in the otherwise unused low 32 bits of the seq word.
        let jitter_us = (self.jitter_ns / 1000.0)
            .round()
            .clamp(0.0, u32::MAX as f64) as u32;
        out[13 * 8..13 * 8 + 4].copy_from_slice(&jitter_us.to_le_bytes());
        out
    }

    pub fn decode(b: &[u8]) -> Option<TrackReport> {
        if b.len() != ENCODED_LEN {
            return None;
        }
        let w = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(x)
        };
        let jitter_us = u32::from_le_bytes([b[104], b[105], b[106], b[107]]);
        Some(TrackReport {
            seen: w(0) != 0,
            ssrc: w(1) as u32,
            packets: w(2),
            expected: w(3),
            duplicates: w(4),
            reordered: w(5),
            late: w(6),
            ring_drops: w(7),
            unsupported: w(8),
            events: w(9),
            rtcp_packets: w(10),
            ssrc_changes: w(11),
            first_seq: (w(13) >> 48) as u16,
            last_seq: (w(13) >> 32) as u16,
            first_timestamp: (w(14) >> 32) as u32,
            last_timestamp: w(14) as u32,
            first_arrival_ns: w(15),
            last_arrival_ns: w(16),
            jitter_ns: jitter_us as f64 * 1000.0,
            srtp_auth_failed: w(12) >> 32,
            srtp_replay: w(12) & u32::MAX as u64,
            wrong_source: w(17),
            pcap_drops: w(18),
        })
    }

    /// Fold another worker's report of the same track into this one.
    pub fn merge(&mut self, o: &TrackReport) {
        // A worker that only ever met forged or replayed packets has not
        // "seen" the track, but its refusals still count.
        self.srtp_auth_failed += o.srtp_auth_failed;
        self.srtp_replay += o.srtp_replay;
        self.wrong_source += o.wrong_source;
        self.pcap_drops += o.pcap_drops;
        if !o.seen {
            return;
        }
        if !self.seen || o.first_arrival_ns < self.first_arrival_ns {
            self.ssrc = o.ssrc;
            self.first_seq = o.first_seq;
            self.first_timestamp = o.first_timestamp;
            self.first_arrival_ns = o.first_arrival_ns;
        }
        if !self.seen || o.last_arrival_ns >= self.last_arrival_ns {
            self.last_seq = o.last_seq;
            self.last_timestamp = o.last_timestamp;
            self.last_arrival_ns = o.last_arrival_ns;
        }
        self.jitter_ns = self.jitter_ns.max(o.jitter_ns);
        self.seen = true;
        self.packets += o.packets;
        self.expected += o.expected;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.late += o.late;
        self.ring_drops += o.ring_drops;
        self.unsupported += o.unsupported;
        self.events += o.events;
        self.rtcp_packets += o.rtcp_packets;
        self.ssrc_changes += o.ssrc_changes;
    }

    /// Packets expected but never received.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = TrackReport {
            seen: true,
            ssrc: 0xfeedface,
            packets: 1000,
            expected: 1003,
            duplicates: 2,
            reordered: 5,
            late: 1,
            ring_drops: 0,
            unsupported: 3,
            events: 4,
            rtcp_packets: 6,
            ssrc_changes: 1,
            first_seq: 65500,
            last_seq: 967,
            first_timestamp: 0xffff_0000,
            last_timestamp: 12345,
            first_arrival_ns: 1,
            last_arrival_ns: 2,
            jitter_ns: 1_234_000.0,
            srtp_auth_failed: 7,
            srtp_replay: 8,
            wrong_source: 9,
            pcap_drops: 10,
        };
        assert_eq!(TrackReport::decode(&r.encode()), Some(r));
        assert_eq!(r.lost(), 3);
        assert_eq!(TrackReport::decode(&[0u8; 3]), None);
    }
}
