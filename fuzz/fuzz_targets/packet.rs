//! The worker's per-packet path: Ethernet (VLANs) → IPv4/IPv6 → UDP →
//! RTP/RTCP classification.
//!
//! Invariants: the payload handed on is a piece of the frame, VLAN ids are
//! 12-bit, RTP fields come from the bytes they claim to, and whenever
//! etherparse (an independent decoder) also accepts the frame, both read
//! the same addresses, ports and payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_dataplane::packet::{classify, parse_frame, Datagram, Media};
use mediafork_dataplane::source::Frame;
use std::net::{IpAddr, SocketAddr};

/// Whether `inner` lies within `outer` (same allocation, by address).
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fn check_media(payload: &[u8]) {
    match classify(payload) {
        Ok(Media::Rtp(h)) => {
            assert!(within(payload, h.payload));
            assert!(payload.len() >= 12 + 4 * usize::from(h.csrc_count) + h.payload.len());
            assert!(h.payload_type < 128 && h.csrc_count < 16);
            assert_eq!(h.sequence, u16::from_be_bytes([payload[2], payload[3]]));
            assert_eq!(
                h.ssrc,
                u32::from_be_bytes([payload[8], payload[9], payload[10], payload[11]])
            );
            assert_eq!(payload[0] >> 6, 2);
        }
        Ok(Media::Rtcp { packet_type, .. }) => {
            assert!((192..=223).contains(&packet_type));
            assert_eq!(payload[0] >> 6, 2);
        }
        Err(_) => {}
    }
}

fn check_against_etherparse(frame: Frame, data: &[u8], ours: &Datagram<'_>) {
    let sliced = match frame {
        Frame::Ethernet => etherparse::SlicedPacket::from_ethernet(data),
        Frame::Ip => etherparse::SlicedPacket::from_ip(data),
        Frame::Udp { .. } => return,
    };
    let Ok(sliced) = sliced else { return };
    let (src, dst): (IpAddr, IpAddr) = match &sliced.net {
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
    assert_eq!(ours.src, SocketAddr::new(src, u.source_port()));
    assert_eq!(ours.dst, SocketAddr::new(dst, u.destination_port()));
    assert_eq!(ours.payload, u.payload());
}

fuzz_target!(|data: &[u8]| {
    for frame in [Frame::Ethernet, Frame::Ip] {
        if let Ok(d) = parse_frame(frame, data) {
            assert!(within(data, d.payload));
            assert!(d.vlan_outer < 4096 && d.vlan_inner < 4096);
            if frame == Frame::Ip {
                assert_eq!((d.vlan_outer, d.vlan_inner), (0, 0));
            }
            check_against_etherparse(frame, data, &d);
            check_media(d.payload);
        }
    }
    check_media(data);
});
