//! Removing capture link headers so the packet parsers see Ethernet or IP.

use crate::packet::{be16, is_vlan_tpid, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::source::Frame;
use crate::DropReason;

use super::LinkType;

/// Address families meaning IPv4 or IPv6 in a BSD loopback header. The value
/// of AF_INET6 differs per OS that wrote the file: Linux 10, Windows (Npcap
/// loopback) 23, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30.
const fn is_ip_family(af: u32) -> bool {
    matches!(af, 2 | 10 | 23 | 24 | 28 | 30)
}

/// Strip the link header and hand back the [`Frame`] kind and bytes for
/// [`crate::packet::parse_frame`].
///
/// Ethernet is passed through whole so that VLAN ids survive. Every other
/// supported link type becomes [`Frame::Ip`]; the protocol or family field is
/// checked first so that ARP and friends count as `NotIp` instead of being
/// misread as a bad IP header.
#[inline]
pub fn strip_link(link: LinkType, data: &[u8]) -> Result<(Frame, &[u8]), DropReason> {
    match link {
        LinkType::Ethernet => Ok((Frame::Ethernet, data)),
        LinkType::Raw => Ok((Frame::Ip, data)),
        // Null is in the writer's byte order and Loop in network order, but
        // files with Loop in host order exist; no IP family value reads as
        // another one byte-swapped, so accepting either order is safe.
        LinkType::Null | LinkType::Loop => {
            let Some((af, rest)) = data.split_first_chunk::<4>() else {
                return Err(DropReason::Malformed);
            };
            if is_ip_family(u32::from_le_bytes(*af)) || is_ip_family(u32::from_be_bytes(*af)) {
                Ok((Frame::Ip, rest))
            } else {
                Err(DropReason::NotIp)
            }
        }
        // SLL: packet type, ARPHRD type, address length, 8 address bytes,
        // protocol.
        LinkType::LinuxSll => {
            let Some((h, rest)) = data.split_first_chunk::<16>() else {
                return Err(DropReason::Malformed);
            };
            ip_after_ethertype(be16([h[14], h[15]]), rest)
        }
        // SLL2: protocol, reserved, interface index, ARPHRD type, packet
        // type, address length, 8 address bytes.
        LinkType::LinuxSll2 => {
            let Some((h, rest)) = data.split_first_chunk::<20>() else {
                return Err(DropReason::Malformed);
            };
            ip_after_ethertype(be16([h[0], h[1]]), rest)
        }
        LinkType::Other(_) => Err(DropReason::NotIp),
    }
}

/// The cooked headers' protocol field is an ethertype. Linux normally moves
/// VLAN tags into packet metadata before a cooked capture sees them, but
/// with some drivers (and for QinQ) a tag stays in the data; skip up to two
/// as `parse_ethernet` does. Their ids are lost: a `Frame::Ip` has nowhere
/// to carry them.
#[inline]
fn ip_after_ethertype(mut ethertype: u16, mut rest: &[u8]) -> Result<(Frame, &[u8]), DropReason> {
    for _ in 0..2 {
        if !is_vlan_tpid(ethertype) {
            break;
        }
        let Some((tag, inner)) = rest.split_first_chunk::<4>() else {
            return Err(DropReason::Malformed);
        };
        ethertype = be16([tag[2], tag[3]]);
        rest = inner;
    }
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok((Frame::Ip, rest)),
        et if is_vlan_tpid(et) => Err(DropReason::Malformed),
        _ => Err(DropReason::NotIp),
    }
}
