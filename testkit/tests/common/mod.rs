//! A tiny decoder written independently of the crate's builders (it shares no
//! code with them), so that the tests check the frames against the formats,
//! not against the builder's own understanding of them.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One's-complement sum folded to 16 bits, not inverted.
pub fn ones_sum(parts: &[&[u8]]) -> u16 {
    let mut acc: u64 = 0;
    for p in parts {
        for (i, b) in p.iter().enumerate() {
            acc += if i % 2 == 0 {
                u64::from(*b) << 8
            } else {
                u64::from(*b)
            };
        }
        // every part passed here has even length except possibly the last
    }
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpInfo {
    /// (TPID, VLAN ID) outermost first.
    pub tags: Vec<(u16, u16)>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    /// Final protocol / next header after extension headers.
    pub proto: u8,
    /// IPv6 extension header types walked, in order.
    pub ext: Vec<u8>,
    /// IPv4 header length in bytes (20 + options); 40 for IPv6.
    pub header_len: usize,
    /// (more fragments, offset in 8-byte units, identification)
    pub frag: Option<(bool, u16, u32)>,
    /// Bytes after all IP headers.
    pub payload: Vec<u8>,
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

/// Decode Ethernet (+ tags) and IP, verifying the IPv4 header checksum and
/// that the IP length fields match the bytes present.
pub fn decode_ip(frame: &[u8]) -> Result<IpInfo, String> {
    if frame.len() < 14 {
        return Err("short Ethernet".into());
    }
    let mut pos = 12;
    let mut tags = Vec::new();
    let mut ethertype = be16(frame, pos);
    while ethertype == 0x8100 || ethertype == 0x88A8 {
        let vid = be16(frame, pos + 2) & 0x0FFF;
        tags.push((ethertype, vid));
        pos += 4;
        ethertype = be16(frame, pos);
    }
    pos += 2;
    if frame.len() < pos + 20 {
        return Err("short IP header".into());
    }
    let ip = &frame[pos..];
    match ethertype {
        0x0800 => {
            if ip[0] >> 4 != 4 {
                return Err("not v4".into());
            }
            let ihl = usize::from(ip[0] & 0x0F) * 4;
            if ihl < 20 || ip.len() < ihl {
                return Err("short IPv4 header".into());
            }
            if ones_sum(&[&ip[..ihl]]) != 0xFFFF {
                return Err("bad IPv4 header checksum".into());
            }
            let total = usize::from(be16(ip, 2));
            if total != ip.len() {
                return Err(format!(
                    "IPv4 total length {total} != {} bytes present",
                    ip.len()
                ));
            }
            let ff = be16(ip, 6);
            let more = ff & 0x2000 != 0;
            let offset = ff & 0x1FFF;
            let frag = (more || offset != 0).then_some((more, offset, u32::from(be16(ip, 4))));
            Ok(IpInfo {
                tags,
                src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
                dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
                ttl: ip[8],
                proto: ip[9],
                ext: vec![],
                header_len: ihl,
                frag,
                payload: ip[ihl..].to_vec(),
            })
        }
        0x86DD => {
            if ip[0] >> 4 != 6 {
                return Err("not v6".into());
            }
            if ip.len() < 40 {
                return Err("short IPv6 header".into());
            }
            let plen = usize::from(be16(ip, 4));
            if plen + 40 != ip.len() {
                return Err("IPv6 payload length mismatch".into());
            }
            let src: [u8; 16] = ip[8..24].try_into().unwrap();
            let dst: [u8; 16] = ip[24..40].try_into().unwrap();
            let mut next = ip[6];
            let mut p = 40;
            let mut ext = Vec::new();
            let mut frag = None;
            loop {
                match next {
                    0 | 60 | 43 => {
                        ext.push(next);
                        let len = (usize::from(ip[p + 1]) + 1) * 8;
                        next = ip[p];
                        p += len;
                    }
                    44 => {
                        ext.push(next);
                        let field = be16(ip, p + 2);
                        let id = u32::from_be_bytes(ip[p + 4..p + 8].try_into().unwrap());
                        frag = Some((field & 1 != 0, field >> 3, id));
                        next = ip[p];
                        p += 8;
                    }
                    _ => break,
                }
            }
            Ok(IpInfo {
                tags,
                src: IpAddr::V6(Ipv6Addr::from(src)),
                dst: IpAddr::V6(Ipv6Addr::from(dst)),
                ttl: ip[7],
                proto: next,
                ext,
                header_len: 40,
                frag,
                payload: ip[p..].to_vec(),
            })
        }
        other => Err(format!("ethertype {other:#06x}")),
    }
}

/// Verify a UDP or TCP checksum over `segment` under the pseudo-header.
pub fn transport_checksum_ok(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> bool {
    let mut pseudo = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(segment.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => return false,
    }
    ones_sum(&[&pseudo, segment]) == 0xFFFF
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp {
    pub ip: IpInfo,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// Decode a complete (unfragmented) UDP frame, verifying every length and
/// checksum.
pub fn decode_udp(frame: &[u8]) -> Result<Udp, String> {
    let ip = decode_ip(frame)?;
    if ip.proto != 17 {
        return Err(format!("protocol {}", ip.proto));
    }
    if ip.frag.is_some() {
        return Err("fragment".into());
    }
    decode_udp_segment(ip.clone(), &ip.payload)
}

pub fn decode_udp_segment(ip: IpInfo, seg: &[u8]) -> Result<Udp, String> {
    let len = usize::from(be16(seg, 4));
    if len != seg.len() {
        return Err(format!("UDP length {len} != {} bytes present", seg.len()));
    }
    if be16(seg, 6) == 0 {
        return Err("UDP checksum absent".into());
    }
    if !transport_checksum_ok(ip.src, ip.dst, 17, seg) {
        return Err("bad UDP checksum".into());
    }
    Ok(Udp {
        src: SocketAddr::new(ip.src, be16(seg, 0)),
        dst: SocketAddr::new(ip.dst, be16(seg, 2)),
        payload: seg[8..].to_vec(),
        ip,
    })
}

/// Reassemble fragment frames (any order) into the UDP datagram.
pub fn reassemble(frames: &[Vec<u8>]) -> Result<Udp, String> {
    let mut parts: Vec<IpInfo> = frames
        .iter()
        .map(|f| decode_ip(f))
        .collect::<Result<_, _>>()?;
    parts.sort_by_key(|p| p.frag.map(|f| f.1).unwrap_or(0));
    let id = parts[0].frag.ok_or("first is not a fragment")?.2;
    let mut data = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let (more, offset, pid) = p.frag.ok_or("not a fragment")?;
        if pid != id {
            return Err("mixed ids".into());
        }
        if usize::from(offset) * 8 != data.len() {
            return Err(format!("gap at fragment {i}"));
        }
        if more != (i + 1 < parts.len()) {
            return Err("MF flag wrong".into());
        }
        if more && p.payload.len() % 8 != 0 {
            return Err("non-final fragment not a multiple of 8".into());
        }
        data.extend_from_slice(&p.payload);
    }
    decode_udp_segment(parts[0].clone(), &data)
}

/// RTP fields decoded independently: (pt, marker, seq, ts, ssrc, payload).
pub fn decode_rtp(b: &[u8]) -> (u8, bool, u16, u32, u32, Vec<u8>) {
    assert_eq!(b[0] >> 6, 2, "RTP version");
    let cc = usize::from(b[0] & 0x0F);
    let mut p = 12 + 4 * cc;
    if b[0] & 0x10 != 0 {
        let words = usize::from(be16(b, p + 2));
        p += 4 + words * 4;
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        end -= usize::from(b[b.len() - 1]);
    }
    (
        b[1] & 0x7F,
        b[1] & 0x80 != 0,
        be16(b, 2),
        u32::from_be_bytes(b[4..8].try_into().unwrap()),
        u32::from_be_bytes(b[8..12].try_into().unwrap()),
        b[p..end].to_vec(),
    )
}

/// A unique scratch path under the system temp dir (no tempfile dependency).
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mediafork-testkit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}
