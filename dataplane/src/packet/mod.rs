//! Zero-copy decoding of the headers between a received frame and the RTP
//! payload: Ethernet (with up to two VLAN tags), IPv4/IPv6, UDP, then RTP or
//! RTCP.
//!
//! This runs once per packet on the worker's hot path, so every parser here
//! borrows from the frame, allocates nothing, never panics (every access goes
//! through `split_first_chunk`/`get`, so a hostile frame can only produce an
//! `Err`) and reports a [`DropReason`] that the worker counts directly.
//! Checksums are deliberately not verified: the NIC usually has, a bad one on
//! an RTP packet costs at most one garbled 20 ms frame, and summing every byte
//! would double the per-packet cost.
//!
//! Port-range filtering is the worker's job; this module only decodes.

mod ether;
mod ip;
mod rtp;
#[cfg(test)]
pub(crate) mod testutil;
mod udp;

use std::net::SocketAddr;

use crate::source::Frame;
use crate::DropReason;

pub use ether::parse_ethernet;
pub use ip::parse_ip;
pub use rtp::{classify, Media, RtpHeader};

pub(crate) use ether::{is_vlan_tpid, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// A UDP datagram found inside a frame; borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Outermost and inner 802.1Q/802.1ad VLAN ids, 0 when absent.
    pub vlan_outer: u16,
    pub vlan_inner: u16,
    /// UDP payload, trimmed to the UDP length.
    pub payload: &'a [u8],
}

/// Decode whatever a [`crate::source::PacketSource`] handed over, so the
/// worker has one entry point whatever the backend.
///
/// `Frame::Udp` needs no decoding: the kernel already stripped the headers
/// and told us the addresses, so `data` is the payload as is.
#[inline]
pub fn parse_frame(frame: Frame, data: &[u8]) -> Result<Datagram<'_>, DropReason> {
    match frame {
        Frame::Ethernet => parse_ethernet(data),
        Frame::Ip => parse_ip(data),
        Frame::Udp { src, dst } => Ok(Datagram {
            src,
            dst,
            vlan_outer: 0,
            vlan_inner: 0,
            payload: data,
        }),
    }
}

#[inline(always)]
pub(crate) const fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// Frames of every kind the parser accepts, for the prefix test.
    fn valid_frames() -> Vec<(Frame, Vec<u8>)> {
        let rtp = rtp_packet(0x80, 0, 1, 2, 3, b"hello");
        let v4 = ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, &udp(4000, 5000, &rtp));
        let v4opt = ipv4_with_options(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            17,
            &[1, 1, 1, 0],
            &udp(4000, 5000, &rtp),
        );
        let v6 = ipv6(V6A, V6B, 17, &udp(4000, 5000, &rtp));
        let mut v6ext_body = ext_header(17, 0);
        v6ext_body.extend(udp(4000, 5000, &rtp));
        let v6ext = ipv6(V6A, V6B, 60, &v6ext_body);
        vec![
            (Frame::Ethernet, ether(ETHERTYPE_IPV4, &[], &v4)),
            (
                Frame::Ethernet,
                ether(ETHERTYPE_IPV4, &[(0x8100, 7)], &v4opt),
            ),
            (
                Frame::Ethernet,
                ether(ETHERTYPE_IPV6, &[(0x88a8, 100), (0x8100, 200)], &v6ext),
            ),
            (Frame::Ethernet, ether(ETHERTYPE_IPV6, &[], &v6)),
            (Frame::Ip, v4),
            (Frame::Ip, v6),
            (Frame::Ip, v6ext),
        ]
    }

    #[test]
    fn every_prefix_of_a_valid_frame_is_an_error() {
        for (kind, frame) in valid_frames() {
            assert!(parse_frame(kind, &frame).is_ok(), "{kind:?} {frame:02x?}");
            for len in 0..frame.len() {
                let r = parse_frame(kind, &frame[..len]);
                assert_eq!(r, Err(DropReason::Malformed), "{kind:?} prefix {len}");
            }
        }
    }

    #[test]
    fn every_prefix_of_an_rtp_packet_is_an_error() {
        let mut ext = vec![0xbe, 0xde, 0, 1, 1, 2, 3, 4];
        ext.extend_from_slice(b"payload\x00\x00\x03");
        let mut p = rtp_packet(0x80 | 0x20 | 0x10 | 2, 96, 1, 2, 3, &[]);
        p.extend_from_slice(&[0; 8]); // two CSRCs
        p.extend_from_slice(&ext);
        let ok = classify(&p).expect("valid");
        let Media::Rtp(h) = ok else { panic!("{ok:?}") };
        assert_eq!(h.payload, b"payload");
        for len in 1..p.len() {
            assert_eq!(classify(&p[..len]), Err(DropReason::Malformed), "{len}");
        }
        assert_eq!(classify(&[]), Err(DropReason::NotRtp));
    }

    #[test]
    fn udp_frames_pass_through() {
        let src: SocketAddr = "192.0.2.1:1000".parse().expect("addr");
        let dst: SocketAddr = "[2001:db8::1]:2000".parse().expect("addr");
        let d = parse_frame(Frame::Udp { src, dst }, b"abc").expect("udp");
        assert_eq!((d.src, d.dst, d.payload), (src, dst, &b"abc"[..]));
        assert_eq!((d.vlan_outer, d.vlan_inner), (0, 0));
    }

    #[test]
    fn full_stack_ethernet_vlan_ipv4_udp_rtp() {
        let rtp = rtp_packet(0x80, 0x80 | 8, 513, 160, 0xdead_beef, &[0xd5; 160]);
        let f = ether(
            ETHERTYPE_IPV4,
            &[(0x8100, 42)],
            &ipv4([192, 0, 2, 1], [192, 0, 2, 2], 17, &udp(30000, 30002, &rtp)),
        );
        let d = parse_ethernet(&f).expect("parse");
        assert_eq!(d.vlan_outer, 42);
        let Ok(Media::Rtp(h)) = classify(d.payload) else {
            panic!("not rtp")
        };
        assert!(h.marker);
        assert_eq!((h.payload_type, h.sequence, h.timestamp), (8, 513, 160));
        assert_eq!(h.ssrc, 0xdead_beef);
        assert_eq!(h.payload.len(), 160);
    }

    fn check_against_etherparse(frame: &[u8], ours: &Datagram<'_>) {
        let sliced = etherparse::SlicedPacket::from_ethernet(frame);
        let Ok(sliced) = sliced else { return };
        let (src_ip, dst_ip): (IpAddr, IpAddr) = match &sliced.net {
            Some(etherparse::NetSlice::Ipv4(s)) => (
                s.header().source_addr().into(),
                s.header().destination_addr().into(),
            ),
            Some(etherparse::NetSlice::Ipv6(s)) => (
                s.header().source_addr().into(),
                s.header().destination_addr().into(),
            ),
            _ => return,
        };
        let Some(etherparse::TransportSlice::Udp(u)) = &sliced.transport else {
            return;
        };
        assert_eq!(ours.src, SocketAddr::new(src_ip, u.source_port()));
        assert_eq!(ours.dst, SocketAddr::new(dst_ip, u.destination_port()));
        assert_eq!(ours.payload, u.payload());
    }

    #[derive(Debug, Clone)]
    enum Ip {
        V4([u8; 4], [u8; 4]),
        V6([u8; 16], [u8; 16]),
    }

    fn arb_ip() -> impl Strategy<Value = Ip> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(a, b)| Ip::V4(a, b)),
            (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(a, b)| Ip::V6(a, b)),
        ]
    }

    /// Builds a frame with etherparse (an independent implementation) and
    /// returns it with the VLAN ids it carries.
    fn build(
        ip: &Ip,
        vlans: &[u16],
        sport: u16,
        dport: u16,
        payload: &[u8],
        eth_pad: usize,
    ) -> Vec<u8> {
        use etherparse::{PacketBuilder, VlanId};
        let vid = |v: u16| VlanId::try_new(v).expect("12-bit vlan id");
        let eth = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]);
        let mut out = Vec::new();
        macro_rules! finish {
            ($step:expr) => {
                match ip {
                    Ip::V4(s, d) => $step
                        .ipv4(*s, *d, 64)
                        .udp(sport, dport)
                        .write(&mut out, payload),
                    Ip::V6(s, d) => $step
                        .ipv6(*s, *d, 64)
                        .udp(sport, dport)
                        .write(&mut out, payload),
                }
            };
        }
        let r = match vlans {
            [] => finish!(eth),
            [a] => finish!(eth.single_vlan(vid(*a))),
            [a, b, ..] => finish!(eth.double_vlan(vid(*a), vid(*b))),
        };
        r.expect("etherparse write");
        out.resize(out.len() + eth_pad, 0);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_ethernet(&data);
            let _ = parse_ip(&data);
            let _ = classify(&data);
            if let Ok(d) = parse_ethernet(&data) {
                check_against_etherparse(&data, &d);
            }
        }

        /// Random bytes behind a valid-looking prefix reach the deeper parsers
        /// far more often than fully random ones.
        #[test]
        fn random_bytes_behind_headers_never_panic(
            v6 in any::<bool>(),
            proto in prop_oneof![Just(17u8), Just(0), Just(43), Just(44), Just(60), any::<u8>()],
            tail in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let mut p = if v6 {
                let l = (tail.len() as u16).to_be_bytes();
                let mut h = vec![0x60, 0, 0, 0, l[0], l[1], proto, 64];
                h.extend_from_slice(&[0; 32]);
                h
            } else {
                let total = (20 + tail.len()) as u16;
                let t = total.to_be_bytes();
                let mut h = vec![0x45, 0, t[0], t[1], 0, 0, 0, 0, 64, proto, 0, 0];
                h.extend_from_slice(&[0; 8]);
                h
            };
            p.extend_from_slice(&tail);
            if let Ok(d) = parse_ip(&p) {
                let _ = classify(d.payload);
            }
            let _ = classify(&tail);
        }

        /// Frames built by etherparse, then with random bytes overwritten: if
        /// we accept one, etherparse must read the same thing from it.
        #[test]
        fn mutated_frames_agree_with_etherparse(
            ip in arb_ip(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let mut f = build(&ip, &[], 1000, 2000, &payload, 0);
            for (i, b) in muts {
                let n = f.len();
                f[i % n] = b;
            }
            if let Ok(d) = parse_ethernet(&f) {
                check_against_etherparse(&f, &d);
            }
        }

        #[test]
        fn etherparse_frames_round_trip(
            ip in arb_ip(),
            vlans in proptest::collection::vec(0u16..4096, 0..=2),
            sport in any::<u16>(),
            dport in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            eth_pad in 0usize..50,
        ) {
            let f = build(&ip, &vlans, sport, dport, &payload, eth_pad);
            let d = parse_ethernet(&f).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let (src, dst): (IpAddr, IpAddr) = match ip {
                Ip::V4(s, d) => (Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into()),
                Ip::V6(s, d) => (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into()),
            };
            prop_assert_eq!(d.src, SocketAddr::new(src, sport));
            prop_assert_eq!(d.dst, SocketAddr::new(dst, dport));
            prop_assert_eq!(d.payload, &payload[..]);
            prop_assert_eq!(d.vlan_outer, vlans.first().copied().unwrap_or(0));
            prop_assert_eq!(d.vlan_inner, vlans.get(1).copied().unwrap_or(0));
            check_against_etherparse(&f, &d);

            // The same packet without its link header, as a raw-IP capture has it.
            let ip_start = 14 + 4 * vlans.len();
            let raw = parse_ip(&f[ip_start..]).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(raw, Datagram { vlan_outer: 0, vlan_inner: 0, ..d });
        }
    }
}
