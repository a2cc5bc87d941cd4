//! RTP and RTCP recognition (RFC 3550, demultiplexed per RFC 5761).

use super::be16;
use crate::DropReason;

/// RTCP packet types 192..=223 collide with RTP marker + payload types
/// 64..=95, which RFC 5761 §4 reserves so that RTP and RTCP can share a port.
const RTCP_TYPES: std::ops::RangeInclusive<u8> = 192..=223;

/// The fixed RTP header and the payload it announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc_count: u8,
    pub has_extension: bool,
    /// After CSRCs and extension, padding removed.
    pub payload: &'a [u8],
}

/// What a UDP payload on a media port is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media<'a> {
    Rtp(RtpHeader<'a>),
    /// Only the first packet of a compound RTCP packet is looked at: its
    /// type and sender SSRC are all the recorder needs to attribute it.
    Rtcp {
        packet_type: u8,
        ssrc: u32,
    },
}

#[inline(always)]
const fn be32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

/// Classify a UDP payload as RTP or RTCP.
///
/// Only version 2 is accepted, which is what tells media from STUN, DTLS,
/// ZRTP or keep-alives sharing the port (they all fail with `NotRtp`; an
/// empty payload has no version at all and fails the same way). A payload
/// that claims version 2 but is shorter than its own header says is
/// `Malformed`.
#[inline]
pub fn classify(udp_payload: &[u8]) -> Result<Media<'_>, DropReason> {
    let Some(&b0) = udp_payload.first() else {
        return Err(DropReason::NotRtp);
    };
    if b0 >> 6 != 2 {
        return Err(DropReason::NotRtp);
    }
    let Some(&b1) = udp_payload.get(1) else {
        return Err(DropReason::Malformed);
    };
    if RTCP_TYPES.contains(&b1) {
        let Some(h) = udp_payload.first_chunk::<8>() else {
            return Err(DropReason::Malformed);
        };
        return Ok(Media::Rtcp {
            packet_type: b1,
            ssrc: be32([h[4], h[5], h[6], h[7]]),
        });
    }
    parse_rtp(udp_payload).map(Media::Rtp)
}

#[inline]
fn parse_rtp(p: &[u8]) -> Result<RtpHeader<'_>, DropReason> {
    let Some((h, rest)) = p.split_first_chunk::<12>() else {
        return Err(DropReason::Malformed);
    };
    let csrc_count = h[0] & 0x0f;
    let has_extension = h[0] & 0x10 != 0;
    let has_padding = h[0] & 0x20 != 0;
    let Some(mut payload) = rest.get(usize::from(csrc_count) * 4..) else {
        return Err(DropReason::Malformed);
    };
    if has_extension {
        // 16-bit profile id, 16-bit length in 32-bit words, then the words.
        let Some((x, after)) = payload.split_first_chunk::<4>() else {
            return Err(DropReason::Malformed);
        };
        let Some(after) = after.get(usize::from(be16([x[2], x[3]])) * 4..) else {
            return Err(DropReason::Malformed);
        };
        payload = after;
    }
    if has_padding {
        // The last byte counts the padding, itself included, so 0 is invalid;
        // it may not eat into the header either.
        let Some(&pad) = payload.last() else {
            return Err(DropReason::Malformed);
        };
        let kept = payload.len().checked_sub(usize::from(pad));
        let Some(trimmed) = kept.filter(|_| pad != 0).and_then(|n| payload.get(..n)) else {
            return Err(DropReason::Malformed);
        };
        payload = trimmed;
    }
    Ok(RtpHeader {
        marker: h[1] & 0x80 != 0,
        payload_type: h[1] & 0x7f,
        sequence: be16([h[2], h[3]]),
        timestamp: be32([h[4], h[5], h[6], h[7]]),
        ssrc: be32([h[8], h[9], h[10], h[11]]),
        csrc_count,
        has_extension,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::rtp_packet;
    use super::*;

    fn rtp(p: &[u8]) -> RtpHeader<'_> {
        match classify(p) {
            Ok(Media::Rtp(h)) => h,
            other => panic!("expected RTP, got {other:?}"),
        }
    }

    #[test]
    fn basic_header_fields() {
        let p = rtp_packet(0x80, 0, 0xfffe, 0x0102_0304, 0xcafe_babe, b"pcmu");
        assert_eq!(
            rtp(&p),
            RtpHeader {
                marker: false,
                payload_type: 0,
                sequence: 0xfffe,
                timestamp: 0x0102_0304,
                ssrc: 0xcafe_babe,
                csrc_count: 0,
                has_extension: false,
                payload: b"pcmu",
            }
        );
        let p = rtp_packet(0x80, 0x80 | 101, 1, 2, 3, &[]);
        let h = rtp(&p);
        assert!(h.marker);
        assert_eq!(h.payload_type, 101);
        assert_eq!(h.payload, b"");
    }

    #[test]
    fn csrcs_are_skipped() {
        for cc in 0..=15u8 {
            let mut body = vec![0x11; 4 * usize::from(cc)];
            body.extend_from_slice(b"data");
            let p = rtp_packet(0x80 | cc, 8, 1, 2, 3, &body);
            let h = rtp(&p);
            assert_eq!(h.csrc_count, cc);
            assert_eq!(h.payload, b"data");
            // One CSRC byte missing.
            let short = &p[..12 + 4 * usize::from(cc) - usize::from(cc > 0)];
            if cc > 0 {
                assert_eq!(classify(short), Err(DropReason::Malformed), "cc {cc}");
            }
        }
    }

    #[test]
    fn header_extension_is_skipped() {
        // RFC 8285 one-byte header extension, 2 words.
        let mut body = vec![0xbe, 0xde, 0, 2, 0x10, 0xaa, 0x21, 0xbb, 0xcc, 0, 0, 0];
        body.extend_from_slice(b"opus");
        let pkt = rtp_packet(0x90, 111, 1, 2, 3, &body);
        let h = rtp(&pkt);
        assert!(h.has_extension);
        assert_eq!(h.payload, b"opus");
        // Zero-length extension.
        let pkt = rtp_packet(0x90, 111, 1, 2, 3, &[0, 0, 0, 0, b'x']);
        let h = rtp(&pkt);
        assert_eq!(h.payload, b"x");
        // Extension header missing, or its words running past the end.
        assert_eq!(
            classify(&rtp_packet(0x90, 111, 1, 2, 3, &[0xbe, 0xde])),
            Err(DropReason::Malformed)
        );
        assert_eq!(
            classify(&rtp_packet(
                0x90,
                111,
                1,
                2,
                3,
                &[0xbe, 0xde, 0, 3, 1, 2, 3, 4]
            )),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn csrcs_and_extension_together() {
        let mut body = vec![0; 8];
        body.extend_from_slice(&[0x10, 0x00, 0, 1, 9, 9, 9, 9]);
        body.extend_from_slice(b"g722");
        let pkt = rtp_packet(0x92, 9, 1, 2, 3, &body);
        let h = rtp(&pkt);
        assert_eq!((h.csrc_count, h.has_extension), (2, true));
        assert_eq!(h.payload, b"g722");
    }

    #[test]
    fn padding_is_removed() {
        let pkt = rtp_packet(0xa0, 0, 1, 2, 3, b"abcd\0\0\x03");
        let h = rtp(&pkt);
        assert_eq!(h.payload, b"abcd");
        // A single padding byte counting itself.
        assert_eq!(
            rtp(&rtp_packet(0xa0, 0, 1, 2, 3, b"abcd\x01")).payload,
            b"abcd"
        );
        // Padding that is the whole payload.
        assert_eq!(
            rtp(&rtp_packet(0xa0, 0, 1, 2, 3, b"\0\0\0\x04")).payload,
            b""
        );
        // Padding after an extension and CSRC.
        let mut body = vec![0; 4];
        body.extend_from_slice(&[0, 0, 0, 0]);
        body.extend_from_slice(b"zz\x02");
        assert_eq!(rtp(&rtp_packet(0xb1, 0, 1, 2, 3, &body)).payload, b"z");
    }

    #[test]
    fn bad_padding() {
        // Count 0.
        assert_eq!(
            classify(&rtp_packet(0xa0, 0, 1, 2, 3, b"abc\0")),
            Err(DropReason::Malformed)
        );
        // Count larger than the payload (would eat the header).
        assert_eq!(
            classify(&rtp_packet(0xa0, 0, 1, 2, 3, b"abc\x05")),
            Err(DropReason::Malformed)
        );
        // Padding flag with no payload at all.
        assert_eq!(
            classify(&rtp_packet(0xa0, 0, 1, 2, 3, b"")),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn versions_other_than_2_are_not_rtp() {
        for b0 in [0x00u8, 0x40, 0xc0, 0x01, 0x17 /* DTLS */] {
            let p = rtp_packet(b0, 0, 1, 2, 3, b"xxxx");
            assert_eq!(classify(&p), Err(DropReason::NotRtp), "{b0:#x}");
        }
        // STUN binding request.
        let stun = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0];
        assert_eq!(classify(&stun), Err(DropReason::NotRtp));
        assert_eq!(classify(&[]), Err(DropReason::NotRtp));
        // RTCP with a wrong version too.
        assert_eq!(
            classify(&[0x40, 200, 0, 6, 1, 2, 3, 4]),
            Err(DropReason::NotRtp)
        );
    }

    #[test]
    fn short_rtp_is_malformed() {
        for n in 1..12 {
            let p = rtp_packet(0x80, 0, 1, 2, 3, b"");
            assert_eq!(classify(&p[..n]), Err(DropReason::Malformed), "{n}");
        }
    }

    #[test]
    fn rtcp_packet_types() {
        // SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR.
        for pt in [200u8, 201, 202, 203, 204, 205, 206, 207] {
            let p = [0x81, pt, 0, 7, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0];
            assert_eq!(
                classify(&p),
                Ok(Media::Rtcp {
                    packet_type: pt,
                    ssrc: 0x1234_5678
                }),
                "{pt}"
            );
            for n in 2..8 {
                assert_eq!(classify(&p[..n]), Err(DropReason::Malformed), "{pt} {n}");
            }
        }
    }

    #[test]
    fn rfc5761_boundaries() {
        // The second byte alone decides: 192..=223 is RTCP, whatever the
        // marker/PT split would have said.
        let kind = |b1: u8| match classify(&rtp_packet(0x80, b1, 1, 2, 3, b"x")) {
            Ok(Media::Rtp(h)) => Some((h.marker, h.payload_type)),
            Ok(Media::Rtcp { packet_type, .. }) => {
                assert_eq!(packet_type, b1);
                None
            }
            Err(e) => panic!("{b1}: {e:?}"),
        };
        assert_eq!(kind(191), Some((true, 63)));
        assert_eq!(kind(192), None);
        assert_eq!(kind(200), None); // PT 72 with marker is an SR
        assert_eq!(kind(223), None);
        assert_eq!(kind(224), Some((true, 96)));
        // PT 64..=95 without the marker stays RTP.
        assert_eq!(kind(72), Some((false, 72)));
        assert_eq!(kind(64), Some((false, 64)));
        assert_eq!(kind(95), Some((false, 95)));
        for b1 in 0..=255u8 {
            assert_eq!(kind(b1).is_none(), (192..=223).contains(&b1), "{b1}");
        }
    }
}
