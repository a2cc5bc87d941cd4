//! One outgoing RTP stream: header fields and the verifiable G.711 payload,
//! written into caller-owned buffers so the sender's hot loop allocates
//! nothing.

use mediafork_testkit::payload::pattern_byte;
use mediafork_testkit::rtp::RTP_HEADER_LEN;

/// The largest RTP packet the loadgen builds (40 ms G.711 plus header).
pub const MAX_PACKET: usize = 512;

/// State of one stream between packets.
#[derive(Debug, Clone)]
pub struct RtpStream {
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload type (0 PCMU, 8 PCMA).
    pub payload_type: u8,
    /// Samples (= payload bytes for G.711) per packet.
    pub samples: u32,
    /// Sequence number of the next packet.
    pub seq: u16,
    /// RTP timestamp of the next packet.
    pub timestamp: u32,
    /// Index of the next packet in the stream (selects the pattern byte).
    pub index: u32,
    /// When the next packet is due, ns on the run's clock.
    pub due_ns: u64,
    /// Packet interval in ns.
    pub ptime_ns: u64,
}

impl RtpStream {
    /// A stream whose first packet is due at `start_ns`. Sequence and
    /// timestamp start at values derived from the SSRC: RFC 3550 wants them
    /// random, and recorders must not assume zero.
    pub fn new(ssrc: u32, payload_type: u8, ptime_ms: u32, start_ns: u64) -> Self {
        Self {
            ssrc,
            payload_type,
            samples: 8 * ptime_ms,
            seq: (ssrc >> 16) as u16 ^ 0x5a5a,
            timestamp: ssrc.rotate_left(7) & 0x7fff_ffff,
            index: 0,
            due_ns: start_ns,
            ptime_ns: u64::from(ptime_ms) * 1_000_000,
        }
    }

    /// Length of every packet of the stream.
    pub fn packet_len(&self) -> usize {
        RTP_HEADER_LEN + self.samples as usize
    }

    /// Write the next packet into `buf` and step the stream to the one
    /// after it; returns the packet's length.
    ///
    /// # Panics
    /// If `buf` is shorter than the packet (it never is with
    /// [`MAX_PACKET`]-sized buffers and ptime up to 40 ms).
    pub fn write_next(&mut self, buf: &mut [u8]) -> usize {
        let len = self.packet_len();
        let b = &mut buf[..len];
        b[0] = 0x80;
        // Marker on the first packet: the start of a talkspurt.
        b[1] = self.payload_type | if self.index == 0 { 0x80 } else { 0 };
        b[2..4].copy_from_slice(&self.seq.to_be_bytes());
        b[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        b[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        b[RTP_HEADER_LEN..].fill(pattern_byte(self.index));
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(self.samples);
        self.index = self.index.wrapping_add(1);
        self.due_ns += self.ptime_ns;
        len
    }
}

/// A well-mixed 32-bit value from a few integers, for SSRCs: distinct
/// streams must not collide, and pcap runs must give the same bytes each
/// time.
pub fn mix(parts: &[u64]) -> u32 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for &p in parts {
        h ^= p;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 29;
    }
    (h ^ (h >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediafork_testkit::payload::pattern_index;
    use mediafork_testkit::rtp::RtpPacket;

    #[test]
    fn packets_parse_and_carry_the_pattern() {
        let mut s = RtpStream::new(0x1234_5678, 8, 20, 1_000);
        let mut buf = [0u8; MAX_PACKET];
        let first_seq = s.seq;
        let first_ts = s.timestamp;
        for i in 0..3u32 {
            let n = s.write_next(&mut buf);
            assert_eq!(n, 172);
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            assert_eq!(p.payload_type, 8);
            assert_eq!(p.marker, i == 0);
            assert_eq!(p.ssrc, 0x1234_5678);
            assert_eq!(p.sequence, first_seq.wrapping_add(i as u16));
            assert_eq!(p.timestamp, first_ts.wrapping_add(160 * i));
            assert!(p.payload.iter().all(|&b| pattern_index(b) == Some(i)));
        }
        assert_eq!(s.due_ns, 1_000 + 3 * 20_000_000);
    }

    #[test]
    fn forty_ms_fits() {
        let mut s = RtpStream::new(1, 0, 40, 0);
        assert_eq!(s.write_next(&mut [0u8; MAX_PACKET]), 12 + 320);
    }

    #[test]
    fn mix_spreads() {
        let a: std::collections::HashSet<u32> =
            (0..10_000u64).map(|i| mix(&[7, i / 2, i % 2])).collect();
        assert_eq!(a.len(), 10_000);
    }
}
