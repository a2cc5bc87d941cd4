//! IPv4 and IPv6, down to the UDP header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::udp::parse_udp;
use super::{be16, Datagram};
use crate::DropReason;

const PROTO_UDP: u8 = 17;
const V6_HOP_BY_HOP: u8 = 0;
const V6_ROUTING: u8 = 43;
const V6_FRAGMENT: u8 = 44;
const V6_DEST_OPTS: u8 = 60;

/// Decode a packet with no link header (raw-IP captures, tun devices),
/// choosing the version from the first nibble because nothing else says it.
#[inline]
pub fn parse_ip(packet: &[u8]) -> Result<Datagram<'_>, DropReason> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => parse_ipv4(packet),
        Some(6) => parse_ipv6(packet),
        _ => Err(DropReason::Malformed),
    }
}

/// IPv4 down to UDP.
///
/// Fragments and the protocol are checked before the total length so that
/// TCP segments captured before segmentation offload (whose total length is
/// 0 or larger than the frame) count as `NotUdp`, not `Malformed`.
#[inline(always)]
pub(crate) fn parse_ipv4(packet: &[u8]) -> Result<Datagram<'_>, DropReason> {
    let Some((h, _)) = packet.split_first_chunk::<20>() else {
        return Err(DropReason::Malformed);
    };
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if h[0] >> 4 != 4 || ihl < 20 {
        return Err(DropReason::Malformed);
    }
    // MF flag or a non-zero offset: any piece of a fragmented datagram. Only
    // the first carries the UDP header, and RTP is never legitimately
    // fragmented, so reassembly is not worth its state.
    if be16([h[6], h[7]]) & 0x3fff != 0 {
        return Err(DropReason::Fragment);
    }
    if h[9] != PROTO_UDP {
        return Err(DropReason::NotUdp);
    }
    let total = usize::from(be16([h[2], h[3]]));
    // `get` fails when total < ihl or total > the buffer; anything after
    // `total` is link-layer padding.
    let Some(udp) = packet.get(ihl..total) else {
        return Err(DropReason::Malformed);
    };
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    parse_udp(udp, IpAddr::V4(src), IpAddr::V4(dst))
}

/// IPv6 down to UDP, walking the extension headers a UDP packet may
/// legitimately carry. Each one consumes at least 8 bytes, so the walk ends
/// within `payload length / 8` steps whatever the input.
#[inline(always)]
pub(crate) fn parse_ipv6(packet: &[u8]) -> Result<Datagram<'_>, DropReason> {
    let Some((fixed, rest)) = packet.split_first_chunk::<8>() else {
        return Err(DropReason::Malformed);
    };
    let Some((src, rest)) = rest.split_first_chunk::<16>() else {
        return Err(DropReason::Malformed);
    };
    let Some((dst, rest)) = rest.split_first_chunk::<16>() else {
        return Err(DropReason::Malformed);
    };
    if fixed[0] >> 4 != 6 {
        return Err(DropReason::Malformed);
    }
    let payload_len = usize::from(be16([fixed[4], fixed[5]]));
    let Some(mut body) = rest.get(..payload_len) else {
        return Err(DropReason::Malformed);
    };
    let mut next = fixed[6];
    loop {
        match next {
            PROTO_UDP => break,
            V6_HOP_BY_HOP | V6_ROUTING | V6_DEST_OPTS => {
                let Some(&[nh, len8]) = body.first_chunk::<2>() else {
                    return Err(DropReason::Malformed);
                };
                let Some(after) = body.get((usize::from(len8) + 1) * 8..) else {
                    return Err(DropReason::Malformed);
                };
                next = nh;
                body = after;
            }
            V6_FRAGMENT => return Err(DropReason::Fragment),
            // No next header (59), TCP, ICMPv6, ESP, AH, mobility, ...
            _ => return Err(DropReason::NotUdp),
        }
    }
    let src = Ipv6Addr::from(*src);
    let dst = Ipv6Addr::from(*dst);
    parse_udp(body, IpAddr::V6(src), IpAddr::V6(dst))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    const U: &[u8] = b"payload";

    fn u() -> Vec<u8> {
        udp(5004, 5006, U)
    }

    #[test]
    fn ipv4_plain() {
        let pkt = ipv4([192, 168, 0, 1], [192, 168, 0, 2], 17, &u());
        let d = parse_ip(&pkt).expect("ok");
        assert_eq!(d.src, "192.168.0.1:5004".parse().expect("addr"));
        assert_eq!(d.dst, "192.168.0.2:5006".parse().expect("addr"));
        assert_eq!(d.payload, U);
    }

    #[test]
    fn ipv4_options_are_skipped() {
        // Router alert + NOPs + a 20-byte record-route: IHL up to 15.
        let mut opts = vec![0x94, 4, 0, 0, 1, 1, 1, 1];
        opts.push(7);
        opts.push(39);
        opts.push(4);
        opts.resize(40, 0);
        let p = ipv4_with_options([1, 2, 3, 4], [5, 6, 7, 8], 17, &opts, &u());
        assert_eq!(p[0], 0x4f);
        let d = parse_ip(&p).expect("ok");
        assert_eq!(d.payload, U);
        assert_eq!(d.src, "1.2.3.4:5004".parse().expect("addr"));
    }

    #[test]
    fn ipv4_bad_header_lengths() {
        let good = ipv4([1, 2, 3, 4], [5, 6, 7, 8], 17, &u());
        for ihl in 0..5u8 {
            let mut p = good.clone();
            p[0] = 0x40 | ihl;
            assert_eq!(parse_ip(&p), Err(DropReason::Malformed), "ihl {ihl}");
        }
        // IHL pointing past the total length.
        let mut p = good.clone();
        p[0] = 0x4f;
        assert_eq!(parse_ip(&p), Err(DropReason::Malformed));
        // Total length smaller than the header, and larger than the buffer.
        for total in [0u16, 19, good.len() as u16 + 1, 0xffff] {
            let mut p = good.clone();
            p[2..4].copy_from_slice(&total.to_be_bytes());
            assert_eq!(parse_ip(&p), Err(DropReason::Malformed), "total {total}");
        }
    }

    #[test]
    fn ipv4_total_length_trims_trailing_bytes() {
        let mut p = ipv4([1, 2, 3, 4], [5, 6, 7, 8], 17, &u());
        p.extend_from_slice(&[0xff; 20]);
        assert_eq!(parse_ip(&p).expect("ok").payload, U);
    }

    #[test]
    fn ipv4_fragments() {
        let good = ipv4([1, 2, 3, 4], [5, 6, 7, 8], 17, &u());
        // MF only (first fragment), offset only (last), both (middle).
        for flags in [0x2000u16, 0x0001, 0x00b9, 0x2010, 0x3fff] {
            let mut p = good.clone();
            p[6..8].copy_from_slice(&flags.to_be_bytes());
            assert_eq!(parse_ip(&p), Err(DropReason::Fragment), "{flags:#x}");
        }
        // DF and the reserved bit do not make a fragment.
        for flags in [0x4000u16, 0x8000, 0x0000] {
            let mut p = good.clone();
            p[6..8].copy_from_slice(&flags.to_be_bytes());
            assert!(parse_ip(&p).is_ok(), "{flags:#x}");
        }
        // A fragmented TCP segment is still a fragment.
        let mut p = ipv4([1, 2, 3, 4], [5, 6, 7, 8], 6, &[0; 20]);
        p[6] = 0x20;
        assert_eq!(parse_ip(&p), Err(DropReason::Fragment));
    }

    #[test]
    fn ipv4_not_udp() {
        for proto in [1u8, 6, 47, 50, 132] {
            let p = ipv4([1, 2, 3, 4], [5, 6, 7, 8], proto, &u());
            assert_eq!(parse_ip(&p), Err(DropReason::NotUdp), "{proto}");
        }
        // TCP captured before TSO: total length 0 must not look malformed.
        let mut p = ipv4([1, 2, 3, 4], [5, 6, 7, 8], 6, &[0; 40]);
        p[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(parse_ip(&p), Err(DropReason::NotUdp));
    }

    #[test]
    fn version_nibble() {
        assert_eq!(parse_ip(&[]), Err(DropReason::Malformed));
        for v in [0u8, 1, 5, 7, 15] {
            let mut p = ipv4([1, 2, 3, 4], [5, 6, 7, 8], 17, &u());
            p[0] = (v << 4) | 5;
            assert_eq!(parse_ip(&p), Err(DropReason::Malformed), "v{v}");
        }
    }

    #[test]
    fn ipv6_plain() {
        let pkt = ipv6(V6A, V6B, 17, &u());
        let d = parse_ip(&pkt).expect("ok");
        assert_eq!(d.src, "[2001:db8::1]:5004".parse().expect("addr"));
        assert_eq!(d.dst, "[2001:db8::2]:5006".parse().expect("addr"));
        assert_eq!(d.payload, U);
    }

    #[test]
    fn ipv6_extension_headers_are_walked() {
        // hop-by-hop -> routing (24 bytes) -> destination options -> UDP
        let mut body = ext_header(43, 0);
        body.extend(ext_header(60, 2));
        body.extend(ext_header(17, 0));
        body.extend(u());
        let pkt = ipv6(V6A, V6B, 0, &body);
        let d = parse_ip(&pkt).expect("ok");
        assert_eq!(d.payload, U);
        assert_eq!(d.dst.port(), 5006);
    }

    #[test]
    fn ipv6_fragment_header() {
        let mut body = vec![17, 0, 0, 1, 0, 0, 0, 42];
        body.extend(u());
        assert_eq!(
            parse_ip(&ipv6(V6A, V6B, 44, &body)),
            Err(DropReason::Fragment)
        );
        // Behind a destination-options header too.
        let mut body2 = ext_header(44, 0);
        body2.extend(body);
        assert_eq!(
            parse_ip(&ipv6(V6A, V6B, 60, &body2)),
            Err(DropReason::Fragment)
        );
    }

    #[test]
    fn ipv6_not_udp() {
        for next in [59u8, 6, 58, 50, 51, 135] {
            assert_eq!(
                parse_ip(&ipv6(V6A, V6B, next, &u())),
                Err(DropReason::NotUdp),
                "{next}"
            );
        }
        let mut body = ext_header(59, 0);
        body.extend(u());
        assert_eq!(parse_ip(&ipv6(V6A, V6B, 0, &body)), Err(DropReason::NotUdp));
    }

    #[test]
    fn ipv6_lengths() {
        // Payload length larger than the buffer.
        let mut p = ipv6(V6A, V6B, 17, &u());
        p[5] += 1;
        assert_eq!(parse_ip(&p), Err(DropReason::Malformed));
        // Trailing bytes after the payload are ignored.
        let mut p = ipv6(V6A, V6B, 17, &u());
        p.extend_from_slice(&[9; 11]);
        assert_eq!(parse_ip(&p).expect("ok").payload, U);
        // An extension header longer than the payload.
        let mut body = ext_header(17, 0);
        body[1] = 3;
        body.extend(u());
        assert_eq!(
            parse_ip(&ipv6(V6A, V6B, 0, &body)),
            Err(DropReason::Malformed)
        );
        // Payload length 0 (a jumbogram) with UDP next: no room for UDP.
        let mut p = ipv6(V6A, V6B, 17, &u());
        p[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(parse_ip(&p), Err(DropReason::Malformed));
    }

    #[test]
    fn ipv6_long_extension_chain_terminates() {
        let mut body = Vec::new();
        for _ in 0..100 {
            body.extend(ext_header(60, 0));
        }
        body.extend(ext_header(17, 0));
        body.extend(u());
        assert_eq!(parse_ip(&ipv6(V6A, V6B, 60, &body)).expect("ok").payload, U);
    }
}
