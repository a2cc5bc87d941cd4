//! Ethernet II and its VLAN tags.

use super::ip::{parse_ipv4, parse_ipv6};
use super::{be16, Datagram};
use crate::DropReason;

pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q customer tag.
const TPID_8021Q: u16 = 0x8100;
/// 802.1ad service tag (the outer tag of standard QinQ).
const TPID_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ outer tag, still emitted by some switches.
const TPID_QINQ: u16 = 0x9100;

/// Whether an ethertype announces a VLAN tag.
#[inline(always)]
pub(crate) const fn is_vlan_tpid(ethertype: u16) -> bool {
    matches!(ethertype, TPID_8021Q | TPID_8021AD | TPID_QINQ)
}

/// Decode an Ethernet II frame down to its UDP payload.
///
/// Up to two VLAN tags are accepted (a trunk port or a QinQ provider
/// network); a third means the frame is not what any SBC link sends, so it is
/// `Malformed` rather than silently mis-parsed. The frame's FCS, if the
/// capture kept it, and the minimum-size padding both sit after the IP
/// packet and are dropped by trimming to the IP length.
#[inline]
pub fn parse_ethernet(frame: &[u8]) -> Result<Datagram<'_>, DropReason> {
    let Some((eth, mut rest)) = frame.split_first_chunk::<14>() else {
        return Err(DropReason::Malformed);
    };
    let mut ethertype = be16([eth[12], eth[13]]);
    let mut vlans = [0u16; 2];
    let mut tags = 0;
    while is_vlan_tpid(ethertype) {
        let Some(slot) = vlans.get_mut(tags) else {
            return Err(DropReason::Malformed);
        };
        let Some((tag, inner)) = rest.split_first_chunk::<4>() else {
            return Err(DropReason::Malformed);
        };
        // The top 4 bits are priority and drop eligibility, not the id.
        *slot = be16([tag[0], tag[1]]) & 0x0fff;
        ethertype = be16([tag[2], tag[3]]);
        rest = inner;
        tags += 1;
    }
    let mut d = match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(rest)?,
        ETHERTYPE_IPV6 => parse_ipv6(rest)?,
        _ => return Err(DropReason::NotIp),
    };
    d.vlan_outer = vlans[0];
    d.vlan_inner = vlans[1];
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn v4_udp() -> Vec<u8> {
        ipv4(
            [10, 1, 1, 1],
            [10, 2, 2, 2],
            17,
            &udp(10000, 20000, b"rtp!"),
        )
    }

    #[test]
    fn untagged_ipv4() {
        let pkt = ether(ETHERTYPE_IPV4, &[], &v4_udp());
        let d = parse_ethernet(&pkt).expect("ok");
        assert_eq!(d.src, "10.1.1.1:10000".parse().expect("addr"));
        assert_eq!(d.dst, "10.2.2.2:20000".parse().expect("addr"));
        assert_eq!((d.vlan_outer, d.vlan_inner), (0, 0));
        assert_eq!(d.payload, b"rtp!");
    }

    #[test]
    fn single_8021q_tag_masks_priority_bits() {
        let pkt = ether(ETHERTYPE_IPV4, &[(0x8100, 0x123)], &v4_udp());
        let d = parse_ethernet(&pkt).expect("ok");
        assert_eq!((d.vlan_outer, d.vlan_inner), (0x123, 0));
        assert_eq!(d.payload, b"rtp!");
    }

    #[test]
    fn qinq_all_tpids() {
        for outer in [0x88a8, 0x9100, 0x8100] {
            let f = ether(ETHERTYPE_IPV4, &[(outer, 10), (0x8100, 4094)], &v4_udp());
            let d = parse_ethernet(&f).expect("ok");
            assert_eq!((d.vlan_outer, d.vlan_inner), (10, 4094), "{outer:#x}");
            assert_eq!(d.payload, b"rtp!");
        }
    }

    #[test]
    fn qinq_over_ipv6() {
        let p = ipv6(V6A, V6B, 17, &udp(1, 2, b"x"));
        let pkt = ether(ETHERTYPE_IPV6, &[(0x88a8, 5), (0x8100, 6)], &p);
        let d = parse_ethernet(&pkt).expect("ok");
        assert_eq!((d.vlan_outer, d.vlan_inner), (5, 6));
        assert_eq!(d.payload, b"x");
    }

    #[test]
    fn three_tags_are_malformed() {
        let f = ether(
            ETHERTYPE_IPV4,
            &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)],
            &v4_udp(),
        );
        assert_eq!(parse_ethernet(&f), Err(DropReason::Malformed));
    }

    #[test]
    fn other_ethertypes_are_not_ip() {
        // ARP, LLDP, MPLS, and an 802.3 length field (LLC/STP).
        for et in [0x0806, 0x88cc, 0x8847, 0x0026] {
            assert_eq!(
                parse_ethernet(&ether(et, &[], &v4_udp())),
                Err(DropReason::NotIp),
                "{et:#x}"
            );
            assert_eq!(
                parse_ethernet(&ether(et, &[(0x8100, 1)], &v4_udp())),
                Err(DropReason::NotIp),
                "tagged {et:#x}"
            );
        }
    }

    #[test]
    fn ethertype_and_ip_version_disagree() {
        let v6 = ipv6(V6A, V6B, 17, &udp(1, 2, b"x"));
        assert_eq!(
            parse_ethernet(&ether(ETHERTYPE_IPV4, &[], &v6)),
            Err(DropReason::Malformed)
        );
        assert_eq!(
            parse_ethernet(&ether(ETHERTYPE_IPV6, &[], &v4_udp())),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn ethernet_padding_and_fcs_are_trimmed() {
        // A 1-byte payload makes a 43-byte frame, padded to 60 plus a 4-byte FCS.
        let mut f = ether(
            ETHERTYPE_IPV4,
            &[],
            &ipv4([1, 1, 1, 1], [2, 2, 2, 2], 17, &udp(7, 8, b"A")),
        );
        f.resize(60, 0);
        f.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(parse_ethernet(&f).expect("ok").payload, b"A");

        let mut f6 = ether(ETHERTYPE_IPV6, &[], &ipv6(V6A, V6B, 17, &udp(7, 8, b"B")));
        f6.extend_from_slice(&[0xaa; 6]);
        assert_eq!(parse_ethernet(&f6).expect("ok").payload, b"B");
    }

    #[test]
    fn truncated_tags_and_headers() {
        assert_eq!(parse_ethernet(&[]), Err(DropReason::Malformed));
        assert_eq!(parse_ethernet(&[0; 13]), Err(DropReason::Malformed));
        // A tag announced but the frame ends inside it.
        let f = ether(0x8100, &[], &[0x00, 0x05, 0x08]);
        assert_eq!(parse_ethernet(&f), Err(DropReason::Malformed));
        // A tag followed by nothing at all.
        assert_eq!(
            parse_ethernet(&ether(ETHERTYPE_IPV4, &[(0x8100, 1)], &[])),
            Err(DropReason::Malformed)
        );
    }
}
