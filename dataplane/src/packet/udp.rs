//! The UDP header.

use std::net::{IpAddr, SocketAddr};

use super::{be16, Datagram};
use crate::DropReason;

/// Decode the UDP header at the start of `segment` (the IP payload, already
/// trimmed to the IP length). The checksum is not verified, see the module
/// docs.
#[inline(always)]
pub(crate) fn parse_udp(
    segment: &[u8],
    src: IpAddr,
    dst: IpAddr,
) -> Result<Datagram<'_>, DropReason> {
    let Some((h, _)) = segment.split_first_chunk::<8>() else {
        return Err(DropReason::Malformed);
    };
    let len = usize::from(be16([h[4], h[5]]));
    // Fails for a length below the header's 8 bytes (including the 0 of
    // IPv6 jumbograms, which RTP never uses) and past the IP payload.
    let Some(payload) = segment.get(8..len) else {
        return Err(DropReason::Malformed);
    };
    Ok(Datagram {
        src: SocketAddr::new(src, be16([h[0], h[1]])),
        dst: SocketAddr::new(dst, be16([h[2], h[3]])),
        vlan_outer: 0,
        vlan_inner: 0,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::udp;
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn ports_and_payload() {
        let pkt = udp(65535, 1, b"abc");
        let d = parse_udp(&pkt, A, B).expect("ok");
        assert_eq!(d.src, SocketAddr::new(A, 65535));
        assert_eq!(d.dst, SocketAddr::new(B, 1));
        assert_eq!(d.payload, b"abc");
    }

    #[test]
    fn empty_payload() {
        assert_eq!(parse_udp(&udp(1, 2, b""), A, B).expect("ok").payload, b"");
    }

    #[test]
    fn payload_is_trimmed_to_udp_length() {
        let mut s = udp(1, 2, b"abc");
        s.extend_from_slice(b"trailer");
        assert_eq!(parse_udp(&s, A, B).expect("ok").payload, b"abc");
    }

    #[test]
    fn bad_lengths() {
        let good = udp(1, 2, b"abcd");
        for len in [0u16, 1, 7, 13, 0xffff] {
            let mut s = good.clone();
            s[4..6].copy_from_slice(&len.to_be_bytes());
            assert_eq!(parse_udp(&s, A, B), Err(DropReason::Malformed), "{len}");
        }
        for n in 0..8 {
            assert_eq!(parse_udp(&good[..n], A, B), Err(DropReason::Malformed));
        }
    }
}
