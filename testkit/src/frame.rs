//! Ethernet II frames carrying UDP over IPv4 or IPv6, with the header
//! variations a capture or a mirror port really delivers (802.1Q and QinQ
//! tags, IPv4 options, fragments, IPv6 extension headers), plus a few kinds
//! of garbage the data plane must skip without tripping.
//!
//! Checksums are always computed and correct, so a parser that validates them
//! accepts every frame built here; a test that wants a bad checksum corrupts
//! the bytes itself, and the damage is then deliberate and visible.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Source MAC of every frame: locally administered (bit 1 of the first octet
/// set), so it can never collide with a real NIC's address.
pub const SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// Destination MAC of every frame (locally administered, unicast).
pub const DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// TPID of an 802.1Q customer tag (the only tag, or the inner one of QinQ).
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad service tag (the outer tag of QinQ).
pub const TPID_8021AD: u16 = 0x88A8;

/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IPv6 next-header value of the hop-by-hop options header.
pub const IPV6_HOP_BY_HOP: u8 = 0;
/// IPv6 next-header value of the destination options header.
pub const IPV6_DEST_OPTS: u8 = 60;
/// IPv6 next-header value of the fragment header.
pub const IPV6_FRAGMENT: u8 = 44;

/// Length of an Ethernet II header without tags.
pub const ETH_HEADER_LEN: usize = 14;
/// Length of one VLAN tag.
pub const VLAN_TAG_LEN: usize = 4;
/// Length of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Smallest Ethernet frame on the wire without its FCS; shorter frames are
/// padded by the sender's NIC (see [`pad_to_min`]).
pub const ETH_MIN_FRAME: usize = 60;

/// IP identification used for frames that are not fragments. Linux sends 0
/// with DF set for connected UDP sockets; we do the same, so the frames look
/// like what a real SBC on Linux emits.
const UNFRAGMENTED_ID: u16 = 0;
/// IP identification (and IPv6 fragment id) used for the single fragment that
/// [`FrameSpec::ipv4_fragment`] describes.
pub const FRAGMENT_ID: u16 = 0x4D46; // "MF"

/// How to wrap a UDP payload into a frame.
///
/// Build one with [`FrameSpec::udp`] and adjust fields with struct-update
/// syntax: `FrameSpec { vlans: vec![100], ..FrameSpec::udp(src, dst) }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpec {
    /// UDP source (IP and port). Must be the same family as `dst`.
    pub src: SocketAddr,
    /// UDP destination (IP and port).
    pub dst: SocketAddr,
    /// VLAN IDs (12 bits each), outermost first. One tag uses TPID 0x8100;
    /// two tags use 0x88a8 for the outer and 0x8100 for the inner (802.1ad
    /// QinQ). More than two are accepted for garbage tests: every tag after
    /// the first then uses 0x8100.
    pub vlans: Vec<u16>,
    /// Raw IPv4 option bytes, zero-padded (with End-of-Options) to a multiple
    /// of 4; at most 40 bytes after padding. Ignored for IPv6.
    pub ipv4_options: Vec<u8>,
    /// Make the packet one fragment: `(more_fragments, offset_in_8_byte_units)`.
    /// With offset 0 the packet carries the UDP header (a first fragment);
    /// with a non-zero offset it carries the payload bytes only, as a real
    /// trailing fragment does. For IPv6 the same is expressed with a fragment
    /// header, because the recorder must treat both families alike. To split
    /// a real datagram into consistent fragments use
    /// [`FrameSpec::build_fragments`].
    pub ipv4_fragment: Option<(bool, u16)>,
    /// IPv6 only: insert a hop-by-hop options header and a destination
    /// options header (each 8 bytes of PadN) before the UDP header, so a
    /// parser that assumes next-header = UDP right after the fixed header is
    /// caught out.
    pub ipv6_ext_headers: bool,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
}

impl FrameSpec {
    /// A plain untagged UDP frame from `src` to `dst`, TTL 64, no options,
    /// not fragmented.
    pub fn udp(src: SocketAddr, dst: SocketAddr) -> Self {
        Self {
            src,
            dst,
            vlans: Vec::new(),
            ipv4_options: Vec::new(),
            ipv4_fragment: None,
            ipv6_ext_headers: false,
            ttl: 64,
        }
    }

    /// The complete Ethernet II frame (no FCS, no padding) carrying `payload`
    /// in a UDP datagram.
    ///
    /// # Panics
    /// If `src` and `dst` are of different families, a VLAN ID exceeds 4095,
    /// or the IPv4 options exceed 40 bytes: those are bugs in the test, not
    /// conditions to model.
    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        let ip = self.raw_ip(payload);
        ethernet(&self.vlans, ethertype_of(self.src.ip()), &ip)
    }

    /// The IP packet alone (what a raw-IP capture, link type 101, holds).
    pub fn raw_ip(&self, payload: &[u8]) -> Vec<u8> {
        check_families(self.src, self.dst);
        let transport = match self.ipv4_fragment {
            Some((_, offset)) if offset != 0 => payload.to_vec(),
            _ => udp_datagram(self.src, self.dst, payload),
        };
        match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let (id, flags_frag) = match self.ipv4_fragment {
                    None => (UNFRAGMENTED_ID, IPV4_DF),
                    Some((more, offset)) => (FRAGMENT_ID, fragment_field(more, offset)),
                };
                ipv4_packet(self, s, d, IPPROTO_UDP, id, flags_frag, &transport)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let frag = self
                    .ipv4_fragment
                    .map(|(more, offset)| (more, offset, u32::from(FRAGMENT_ID)));
                ipv6_packet(self, s, d, IPPROTO_UDP, frag, &transport)
            }
            _ => unreachable!("families checked above"),
        }
    }

    /// Split one UDP datagram carrying `payload` into IP fragments, as a
    /// sender whose path MTU is too small does (a SIPREC INVITE with its
    /// metadata is often 3-4 KB over UDP). Each fragment carries at most
    /// `max_fragment_data` bytes of the datagram (rounded down to a multiple
    /// of 8, as the offset field requires); the first one holds the UDP
    /// header, whose length and checksum cover the whole datagram. All
    /// fragments share `id`. IPv4 options, if any, are repeated in every
    /// fragment. [`FrameSpec::ipv4_fragment`] is ignored here.
    ///
    /// Returns Ethernet frames in offset order; a datagram that fits in one
    /// fragment comes back as one unfragmented frame.
    pub fn build_fragments(
        &self,
        payload: &[u8],
        max_fragment_data: usize,
        id: u16,
    ) -> Vec<Vec<u8>> {
        check_families(self.src, self.dst);
        let step = max_fragment_data / 8 * 8;
        assert!(step >= 8, "fragments must carry at least 8 bytes");
        let datagram = udp_datagram(self.src, self.dst, payload);
        let plain = FrameSpec {
            ipv4_fragment: None,
            ..self.clone()
        };
        if datagram.len() <= step {
            return vec![plain.build(payload)];
        }
        let ethertype = ethertype_of(self.src.ip());
        datagram
            .chunks(step)
            .enumerate()
            .map(|(i, chunk)| {
                let offset_bytes = i * step;
                let more = offset_bytes + chunk.len() < datagram.len();
                let offset =
                    u16::try_from(offset_bytes / 8).expect("datagram too large to fragment");
                let ip = match (self.src.ip(), self.dst.ip()) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => ipv4_packet(
                        self,
                        s,
                        d,
                        IPPROTO_UDP,
                        id,
                        fragment_field(more, offset),
                        chunk,
                    ),
                    (IpAddr::V6(s), IpAddr::V6(d)) => ipv6_packet(
                        self,
                        s,
                        d,
                        IPPROTO_UDP,
                        Some((more, offset, u32::from(id))),
                        chunk,
                    ),
                    _ => unreachable!("families checked above"),
                };
                ethernet(&self.vlans, ethertype, &ip)
            })
            .collect()
    }
}

const IPV4_DF: u16 = 0x4000;
const IPV4_MF: u16 = 0x2000;

fn fragment_field(more: bool, offset: u16) -> u16 {
    assert!(offset <= 0x1FFF, "fragment offset exceeds 13 bits");
    (if more { IPV4_MF } else { 0 }) | offset
}

fn check_families(src: SocketAddr, dst: SocketAddr) {
    assert_eq!(
        src.is_ipv4(),
        dst.is_ipv4(),
        "FrameSpec: src {src} and dst {dst} are of different IP families"
    );
}

fn ethertype_of(ip: IpAddr) -> u16 {
    match ip {
        IpAddr::V4(_) => ETHERTYPE_IPV4,
        IpAddr::V6(_) => ETHERTYPE_IPV6,
    }
}

/// Wrap `inner` (whose type is `ethertype`) into an Ethernet II frame with the
/// given VLAN tags, outermost first.
pub fn ethernet(vlans: &[u16], ethertype: u16, inner: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HEADER_LEN + VLAN_TAG_LEN * vlans.len() + inner.len());
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    for (i, &vid) in vlans.iter().enumerate() {
        assert!(vid <= 0x0FFF, "VLAN ID {vid} exceeds 12 bits");
        let tpid = if vlans.len() >= 2 && i == 0 {
            TPID_8021AD
        } else {
            TPID_8021Q
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        // PCP 0, DEI 0: priority bits are irrelevant to the recorder.
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(inner);
    f
}

/// The one's-complement sum of `data` as 16-bit big-endian words (odd length
/// padded with a zero byte), not yet folded or inverted.
fn sum16(data: &[u8]) -> u32 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// The Internet checksum (RFC 1071) of `data`. Running it over a header that
/// already contains its checksum yields 0, which is how tests verify one.
pub fn internet_checksum(data: &[u8]) -> u16 {
    fold(sum16(data))
}

/// The UDP/TCP checksum of `segment` (header with a zero checksum field, plus
/// data) under the IPv4 or IPv6 pseudo-header. A computed 0 is returned as
/// 0xFFFF for UDP, because 0 means "no checksum" there.
pub fn transport_checksum(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.push(0);
            pseudo.push(proto);
            let len = u16::try_from(segment.len()).expect("IPv4 segment over 65535 bytes");
            pseudo.extend_from_slice(&len.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(segment.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("transport_checksum: mixed IP families"),
    }
    let c = fold(sum16(&pseudo).wrapping_add(sum16(segment)));
    if c == 0 && proto == IPPROTO_UDP {
        0xFFFF
    } else {
        c
    }
}

/// UDP header + payload with correct length and checksum.
fn udp_datagram(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let len = UDP_HEADER_LEN + payload.len();
    // IPv6 jumbograms aside, the UDP length field is 16 bits; for IPv4 the
    // whole IP packet must also fit, which ipv4_packet checks.
    let len16 = u16::try_from(len).expect("UDP datagram over 65535 bytes");
    let mut d = Vec::with_capacity(len);
    d.extend_from_slice(&src.port().to_be_bytes());
    d.extend_from_slice(&dst.port().to_be_bytes());
    d.extend_from_slice(&len16.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let c = transport_checksum(src.ip(), dst.ip(), IPPROTO_UDP, &d);
    d[6..8].copy_from_slice(&c.to_be_bytes());
    d
}

fn ipv4_packet(
    spec: &FrameSpec,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    flags_frag: u16,
    transport: &[u8],
) -> Vec<u8> {
    let mut options = spec.ipv4_options.clone();
    while options.len() % 4 != 0 {
        options.push(0); // End of Option List, then padding
    }
    assert!(options.len() <= 40, "IPv4 options exceed 40 bytes");
    let header_len = 20 + options.len();
    let total = u16::try_from(header_len + transport.len()).expect("IPv4 packet over 65535 bytes");
    let mut p = Vec::with_capacity(usize::from(total));
    p.push(0x40 | (header_len / 4) as u8);
    p.push(0); // DSCP/ECN
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&flags_frag.to_be_bytes());
    p.push(spec.ttl);
    p.push(proto);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&options);
    let c = internet_checksum(&p[..header_len]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(transport);
    p
}

fn ipv6_packet(
    spec: &FrameSpec,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    proto: u8,
    fragment: Option<(bool, u16, u32)>,
    transport: &[u8],
) -> Vec<u8> {
    // Extension headers in RFC 8200 §4.1 order: hop-by-hop, destination
    // options (the pre-routing position), fragment, then the transport.
    let mut ext: Vec<(u8, [u8; 8])> = Vec::new();
    if spec.ipv6_ext_headers {
        // Each carries one PadN option filling its 6 option bytes.
        ext.push((IPV6_HOP_BY_HOP, [0, 0, 1, 4, 0, 0, 0, 0]));
        ext.push((IPV6_DEST_OPTS, [0, 0, 1, 4, 0, 0, 0, 0]));
    }
    if let Some((more, offset, id)) = fragment {
        assert!(offset <= 0x1FFF, "fragment offset exceeds 13 bits");
        let field = (offset << 3) | u16::from(more);
        let mut h = [0u8; 8];
        h[2..4].copy_from_slice(&field.to_be_bytes());
        h[4..8].copy_from_slice(&id.to_be_bytes());
        ext.push((IPV6_FRAGMENT, h));
    }
    let payload_len =
        u16::try_from(ext.len() * 8 + transport.len()).expect("IPv6 payload over 65535 bytes");
    let mut p = Vec::with_capacity(40 + usize::from(payload_len));
    p.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class 0, flow label 0
    p.extend_from_slice(&payload_len.to_be_bytes());
    p.push(ext.first().map_or(proto, |(t, _)| *t));
    p.push(spec.ttl);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    for (i, (_, body)) in ext.iter().enumerate() {
        let next = ext.get(i + 1).map_or(proto, |(t, _)| *t);
        let mut h = *body;
        h[0] = next;
        // h[1] (Hdr Ext Len / reserved) is 0: one 8-byte unit.
        p.extend_from_slice(&h);
    }
    p.extend_from_slice(transport);
    p
}

/// A broadcast ARP request ("who has 192.0.2.2? tell 192.0.2.1"): the most
/// common non-IP frame on a mirror port, which the data plane must skip.
pub fn arp_frame() -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xFF; 6]);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f.extend_from_slice(&[0x00, 0x01]); // hardware type Ethernet
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes()); // protocol type
    f.extend_from_slice(&[6, 4]); // hardware and protocol address lengths
    f.extend_from_slice(&[0x00, 0x01]); // request
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&[192, 0, 2, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[192, 0, 2, 2]);
    f
}

/// A TCP SYN from `src` to `dst` with correct IP and TCP checksums and no
/// payload: IP traffic that is not UDP, which the data plane must skip even
/// when its ports fall in the RTP range.
pub fn tcp_frame(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    check_families(src, dst);
    let mut seg = Vec::with_capacity(20);
    seg.extend_from_slice(&src.port().to_be_bytes());
    seg.extend_from_slice(&dst.port().to_be_bytes());
    seg.extend_from_slice(&1u32.to_be_bytes()); // sequence number
    seg.extend_from_slice(&0u32.to_be_bytes()); // acknowledgment number
    seg.push(5 << 4); // data offset: 5 words
    seg.push(0x02); // SYN
    seg.extend_from_slice(&0xFFFFu16.to_be_bytes()); // window
    seg.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    let c = transport_checksum(src.ip(), dst.ip(), IPPROTO_TCP, &seg);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    let spec = FrameSpec::udp(src, dst);
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ipv4_packet(&spec, s, d, IPPROTO_TCP, UNFRAGMENTED_ID, IPV4_DF, &seg)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6_packet(&spec, s, d, IPPROTO_TCP, None, &seg),
        _ => unreachable!("families checked above"),
    };
    ethernet(&[], ethertype_of(src.ip()), &ip)
}

/// The first `len` bytes of `frame` (all of it if shorter): what a capture
/// with a small snap length, or a damaged packet, hands the parser.
pub fn truncated(frame: &[u8], len: usize) -> Vec<u8> {
    frame[..len.min(frame.len())].to_vec()
}

/// `frame` zero-padded to the 60-byte Ethernet minimum, as it appears on the
/// wire. A parser must then take the datagram's length from the IP header,
/// not from the frame: the trailing zeros are not payload.
pub fn pad_to_min(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    if f.len() < ETH_MIN_FRAME {
        f.resize(ETH_MIN_FRAME, 0);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::from(a), port))
    }

    #[test]
    fn ipv4_udp_frame_matches_hand_computed_bytes() {
        let spec = FrameSpec::udp(v4([192, 0, 2, 1], 1000), v4([198, 51, 100, 2], 40000));
        let f = spec.build(&[0xAA, 0xBB]);
        // IPv4 header sum: 4500+001E+0000+4000+4011+0000+C000+0201+C633+6402
        //   = 0x2B165 -> fold 0xB167 -> complement 0x4E98.
        // UDP: pseudo-header C000+0201+C633+6402+0011+000A = 0x1EC51,
        //   plus 03E8+9C40+000A+0000+AABB = 0x14AED, total 0x3373E
        //   -> fold 0x3741 -> complement 0xC8BE.
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,
            0x45, 0x00, 0x00, 0x1E, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x4E, 0x98,
            192, 0, 2, 1, 198, 51, 100, 2,
            0x03, 0xE8, 0x9C, 0x40, 0x00, 0x0A, 0xC8, 0xBE,
            0xAA, 0xBB,
        ];
        assert_eq!(f, expected);
    }

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 §3 example bytes: sum 0xDDF2, checksum !0xDDF2 = 0x220D.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]),
            0x220D
        );
    }

    #[test]
    fn qinq_tags_use_88a8_outer_and_8100_inner() {
        let spec = FrameSpec {
            vlans: vec![100, 200],
            ..FrameSpec::udp(v4([192, 0, 2, 1], 1), v4([192, 0, 2, 2], 2))
        };
        let f = spec.build(b"x");
        assert_eq!(
            &f[12..22],
            &[0x88, 0xA8, 0x00, 100, 0x81, 0x00, 0x00, 200, 0x08, 0x00]
        );
        let one = FrameSpec {
            vlans: vec![4095],
            ..spec.clone()
        }
        .build(b"x");
        assert_eq!(&one[12..18], &[0x81, 0x00, 0x0F, 0xFF, 0x08, 0x00]);
    }

    #[test]
    fn options_are_padded_and_counted_in_ihl() {
        let spec = FrameSpec {
            ipv4_options: vec![0x94, 0x04, 0x00], // Router Alert, 3 of its 4 bytes
            ..FrameSpec::udp(v4([192, 0, 2, 1], 1), v4([192, 0, 2, 2], 2))
        };
        let ip = spec.raw_ip(b"abc");
        assert_eq!(ip[0], 0x46);
        assert_eq!(&ip[20..24], &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(internet_checksum(&ip[..24]), 0);
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, ip.len());
    }

    #[test]
    fn trailing_fragment_carries_no_udp_header() {
        let spec = FrameSpec {
            ipv4_fragment: Some((false, 185)),
            ..FrameSpec::udp(v4([192, 0, 2, 1], 1), v4([192, 0, 2, 2], 2))
        };
        let ip = spec.raw_ip(b"tail");
        assert_eq!(u16::from_be_bytes([ip[6], ip[7]]), 185);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), FRAGMENT_ID);
        assert_eq!(&ip[20..], b"tail");
        let first = FrameSpec {
            ipv4_fragment: Some((true, 0)),
            ..spec
        }
        .raw_ip(b"head");
        assert_eq!(u16::from_be_bytes([first[6], first[7]]), 0x2000);
        assert_eq!(first.len(), 20 + 8 + 4);
    }

    #[test]
    fn pad_and_truncate() {
        let arp = arp_frame();
        assert_eq!(arp.len(), 42);
        assert_eq!(pad_to_min(&arp).len(), 60);
        assert_eq!(truncated(&arp, 10).len(), 10);
        assert_eq!(truncated(&arp, 1000).len(), 42);
    }

    #[test]
    #[should_panic(expected = "different IP families")]
    fn mixed_families_panic() {
        let v6: SocketAddr = "[2001:db8::1]:5".parse().unwrap();
        FrameSpec::udp(v4([192, 0, 2, 1], 1), v6).build(b"");
    }
}
