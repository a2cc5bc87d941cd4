mod common;

use common::{decode_ip, decode_udp, reassemble, transport_checksum_ok};
use mediafork_testkit::frame::{self, arp_frame, pad_to_min, tcp_frame, truncated, FrameSpec};
use std::net::SocketAddr;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn plain_ipv4_round_trip() {
    let spec = FrameSpec::udp(sa("192.0.2.10:20000"), sa("198.51.100.20:40000"));
    let payload: Vec<u8> = (0..=255).collect();
    let f = spec.build(&payload);
    assert_eq!(&f[0..6], &[0x02, 0, 0, 0, 0, 0x02], "dst MAC");
    assert_eq!(&f[6..12], &[0x02, 0, 0, 0, 0, 0x01], "src MAC");
    let u = decode_udp(&f).unwrap();
    assert_eq!((u.src, u.dst), (spec.src, spec.dst));
    assert_eq!(u.payload, payload);
    assert_eq!(u.ip.ttl, 64);
    assert!(u.ip.tags.is_empty());
    // raw_ip is the same packet without the 14-byte Ethernet header
    assert_eq!(spec.raw_ip(&payload), f[14..].to_vec());
}

#[test]
fn odd_length_payload_checksums() {
    for len in [0usize, 1, 3, 159, 161] {
        let spec = FrameSpec::udp(sa("203.0.113.1:1"), sa("203.0.113.2:65535"));
        let u = decode_udp(&spec.build(&vec![0xA5; len])).unwrap();
        assert_eq!(u.payload.len(), len);
    }
}

#[test]
fn vlan_tags_are_in_place() {
    let base = FrameSpec::udp(sa("192.0.2.1:5000"), sa("192.0.2.2:40000"));
    let one = FrameSpec {
        vlans: vec![42],
        ..base.clone()
    }
    .build(b"hello");
    assert_eq!(&one[12..16], &[0x81, 0x00, 0x00, 42]);
    let u = decode_udp(&one).unwrap();
    assert_eq!(u.ip.tags, vec![(0x8100, 42)]);
    assert_eq!(u.payload, b"hello");

    let two = FrameSpec {
        vlans: vec![10, 4000],
        ..base.clone()
    }
    .build(b"hello");
    let u = decode_udp(&two).unwrap();
    assert_eq!(u.ip.tags, vec![(0x88A8, 10), (0x8100, 4000)]);
    assert_eq!(two.len(), one.len() + 4);

    let v6 = FrameSpec {
        vlans: vec![7],
        ..FrameSpec::udp(sa("[2001:db8::1]:5000"), sa("[2001:db8::2]:40000"))
    }
    .build(b"v6");
    let u = decode_udp(&v6).unwrap();
    assert_eq!(u.ip.tags, vec![(0x8100, 7)]);
}

#[test]
fn ipv4_options_and_ttl() {
    let spec = FrameSpec {
        ipv4_options: vec![0x01, 0x01, 0x01, 0x01, 0x07, 0x03], // NOPs + start of RR
        ttl: 3,
        ..FrameSpec::udp(sa("192.0.2.1:5000"), sa("192.0.2.2:40000"))
    };
    let u = decode_udp(&spec.build(b"opt")).unwrap();
    assert_eq!(u.ip.header_len, 28, "6 option bytes padded to 8");
    assert_eq!(u.ip.ttl, 3);
    assert_eq!(u.payload, b"opt");
}

#[test]
fn ipv6_plain_and_extension_headers() {
    let base = FrameSpec::udp(sa("[2001:db8::10]:20000"), sa("[2001:db8::20]:40000"));
    let u = decode_udp(&base.build(b"rtp")).unwrap();
    assert!(u.ip.ext.is_empty());
    assert_eq!(&base.build(b"rtp")[12..14], &[0x86, 0xDD]);

    let ext = FrameSpec {
        ipv6_ext_headers: true,
        ttl: 9,
        ..base
    };
    let f = ext.build(b"rtp");
    let u = decode_udp(&f).unwrap();
    assert_eq!(u.ip.ext, vec![0, 60], "hop-by-hop then destination options");
    assert_eq!(u.ip.ttl, 9);
    assert_eq!(u.payload, b"rtp");
    assert_eq!(f[14 + 6], 0, "fixed header's next header is hop-by-hop");
}

#[test]
fn single_fragment_flags() {
    let base = FrameSpec::udp(sa("192.0.2.1:5000"), sa("192.0.2.2:40000"));
    let first = decode_ip(
        &FrameSpec {
            ipv4_fragment: Some((true, 0)),
            ..base.clone()
        }
        .build(b"abcdefgh"),
    )
    .unwrap();
    assert_eq!(first.frag.map(|f| (f.0, f.1)), Some((true, 0)));
    assert_eq!(
        first.payload.len(),
        8 + 8,
        "UDP header present in the first fragment"
    );

    let last = decode_ip(
        &FrameSpec {
            ipv4_fragment: Some((false, 2)),
            ..base.clone()
        }
        .build(b"tail"),
    )
    .unwrap();
    assert_eq!(last.frag.map(|f| (f.0, f.1)), Some((false, 2)));
    assert_eq!(last.payload, b"tail");

    let v6 = decode_ip(
        &FrameSpec {
            ipv4_fragment: Some((true, 0)),
            ..FrameSpec::udp(sa("[2001:db8::1]:1"), sa("[2001:db8::2]:2"))
        }
        .build(b"x"),
    )
    .unwrap();
    assert_eq!(v6.ext, vec![44]);
    assert_eq!(v6.frag.map(|f| (f.0, f.1)), Some((true, 0)));
}

#[test]
fn build_fragments_reassemble_to_the_datagram() {
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    for (src, dst) in [
        ("192.0.2.1:5060", "198.51.100.7:5060"),
        ("[2001:db8::1]:5060", "[2001:db8::7]:5060"),
    ] {
        let spec = FrameSpec {
            vlans: vec![5],
            ..FrameSpec::udp(sa(src), sa(dst))
        };
        let frags = spec.build_fragments(&payload, 1480, 0x1234);
        assert_eq!(frags.len(), 3, "3008-byte datagram in 1480-byte pieces");
        let mut shuffled = frags.clone();
        shuffled.reverse();
        let u = reassemble(&shuffled).unwrap();
        assert_eq!(u.payload, payload);
        assert_eq!((u.src, u.dst), (spec.src, spec.dst));
        // Small datagrams come back unfragmented.
        let single = spec.build_fragments(b"short", 1480, 1);
        assert_eq!(single.len(), 1);
        assert_eq!(decode_udp(&single[0]).unwrap().payload, b"short");
    }
}

#[test]
fn garbage_helpers() {
    let arp = arp_frame();
    assert_eq!(&arp[0..6], &[0xFF; 6]);
    assert_eq!(&arp[12..14], &[0x08, 0x06]);
    assert_eq!(arp.len(), 42);
    assert!(decode_ip(&arp).is_err());

    for (s, d) in [
        ("192.0.2.1:1234", "192.0.2.2:40000"),
        ("[2001:db8::1]:1", "[2001:db8::2]:40000"),
    ] {
        let tcp = tcp_frame(sa(s), sa(d));
        let ip = decode_ip(&tcp).unwrap();
        assert_eq!(ip.proto, 6);
        assert_eq!(ip.payload.len(), 20);
        assert_eq!(ip.payload[13], 0x02, "SYN");
        assert!(transport_checksum_ok(ip.src, ip.dst, 6, &ip.payload));
    }

    let f = FrameSpec::udp(sa("192.0.2.1:1"), sa("192.0.2.2:2")).build(&[1; 100]);
    let t = truncated(&f, 40);
    assert_eq!(t, f[..40].to_vec());
    assert!(
        decode_ip(&t).is_err(),
        "truncated frame no longer matches its IP length"
    );

    let small = FrameSpec::udp(sa("192.0.2.1:1"), sa("192.0.2.2:2")).build(b"");
    let padded = pad_to_min(&small);
    assert_eq!(padded.len(), frame::ETH_MIN_FRAME);
    assert_eq!(&padded[..small.len()], &small[..]);
}
