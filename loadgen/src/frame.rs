//! Ethernet, IP and UDP headers in front of the RTP, for senders that hand
//! whole frames to a NIC (`--tx dpdk`) instead of datagrams to the kernel.
//!
//! A stream's header never changes but for the UDP checksum (the addresses,
//! ports and lengths are fixed for its life), so each stream keeps a
//! template built once by the testkit's frame builder, and a packet costs a
//! 42- or 62-byte copy and a checksum over its RTP bytes. The checksum is
//! computed rather than left 0 (which IPv4 would allow): recorders and
//! capture tools that check it must see what an SBC sends.

use std::net::SocketAddr;

use mediafork_testkit::frame::{internet_checksum, FrameSpec};

/// Longest header: Ethernet (14), IPv6 (40), UDP (8).
pub const MAX_HEADER: usize = 14 + 40 + 8;

/// One stream's frame header; empty for senders that give the kernel the
/// RTP alone.
#[derive(Debug, Clone)]
pub struct FrameHeader {
    bytes: [u8; MAX_HEADER],
    len: u8,
    /// RTP length the template was built for.
    payload_len: u16,
    /// Ones'-complement sum of the UDP pseudo-header and header with a
    /// zero payload: the template's checksum, un-complemented.
    base: u16,
}

impl FrameHeader {
    /// No header: the packet is the RTP alone.
    pub fn none() -> Self {
        FrameHeader {
            bytes: [0; MAX_HEADER],
            len: 0,
            payload_len: 0,
            base: 0,
        }
    }

    /// The header of a stream from `src` to `dst` whose RTP packets are
    /// `payload_len` bytes long.
    ///
    /// # Panics
    /// If `src` and `dst` are of different IP families (the plan checks that
    /// `--local-ip` and `--target` are not).
    pub fn udp(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: SocketAddr,
        dst: SocketAddr,
        payload_len: usize,
    ) -> Self {
        let template = FrameSpec::udp(src, dst).build(&vec![0; payload_len]);
        let len = template.len() - payload_len;
        let mut bytes = [0u8; MAX_HEADER];
        bytes[..len].copy_from_slice(&template[..len]);
        bytes[..6].copy_from_slice(&dst_mac);
        bytes[6..12].copy_from_slice(&src_mac);
        let csum = u16::from_be_bytes([bytes[len - 2], bytes[len - 1]]);
        FrameHeader {
            bytes,
            len: len as u8,
            payload_len: payload_len as u16,
            base: !csum,
        }
    }

    /// Header length in bytes (0 for [`FrameHeader::none`]).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether this is [`FrameHeader::none`].
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Complete `frame`, whose RTP is already at `frame[self.len()..]`:
    /// copy the header in front of it and set the UDP checksum.
    pub fn finish(&self, frame: &mut [u8]) {
        let len = self.len();
        if len == 0 {
            return;
        }
        debug_assert_eq!(frame.len() - len, usize::from(self.payload_len));
        frame[..len].copy_from_slice(&self.bytes[..len]);
        let sum = u32::from(self.base) + u32::from(!internet_checksum(&frame[len..]));
        let sum = (sum & 0xffff) + (sum >> 16);
        // 0 means "no checksum" in UDP: a computed 0 is sent as 0xffff.
        let csum = match !(sum as u16) {
            0 => 0xffff,
            c => c,
        };
        frame[len - 2..len].copy_from_slice(&csum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str, dst: &str) {
        let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let smac = [2, 0, 0, 0, 0, 0x11];
        let dmac = [2, 0, 0, 0, 0, 0x22];
        let h = FrameHeader::udp(smac, dmac, src, dst, 172);
        for seed in 0..300u32 {
            let rtp: Vec<u8> = (0..172u32)
                .map(|i| (i.wrapping_mul(seed | 1) ^ seed >> 2) as u8)
                .collect();
            let mut frame = vec![0u8; h.len() + rtp.len()];
            frame[h.len()..].copy_from_slice(&rtp);
            h.finish(&mut frame);
            let mut want = FrameSpec::udp(src, dst).build(&rtp);
            want[..6].copy_from_slice(&dmac);
            want[6..12].copy_from_slice(&smac);
            assert_eq!(frame, want, "seed {seed}");
        }
    }

    #[test]
    fn frames_match_the_reference_builder_checksum_included() {
        check("10.0.0.1:20000", "10.0.0.2:40000");
        check("[2001:db8::1]:20002", "[2001:db8::2]:40002");
    }

    #[test]
    fn no_header_leaves_the_packet_alone() {
        let h = FrameHeader::none();
        assert!(h.is_empty());
        let mut p = [7u8; 20];
        h.finish(&mut p);
        assert_eq!(p, [7u8; 20]);
    }
}
