mod common;

use common::{decode_rtp, decode_udp, reassemble, scratch};
use mediafork_testkit::frame::{arp_frame, truncated};
use mediafork_testkit::pcap::{
    parse_capture, read_pcap, write_pcap, write_pcap_with, write_pcapng, TsResolution,
    LINKTYPE_ETHERNET, LINKTYPE_RAW,
};
use mediafork_testkit::sip::{ok_200, siprec_invite, CallSpec, Vendor};
use mediafork_testkit::stream::{generate, merge, Impairments, StreamSpec, DEFAULT_START_NS};
use mediafork_testkit::{Capture, FrameSpec};

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// (seconds, fraction, stored length, original length) of one record.
type RecordHeader = (u32, u32, u32, u32);

/// Walk a classic pcap by hand: magic, link type and each record's lengths.
fn walk_classic(b: &[u8]) -> (u32, u32, Vec<RecordHeader>) {
    let magic = le32(b, 0);
    assert_eq!(&b[4..8], &[2, 0, 4, 0], "version 2.4");
    let link = le32(b, 20);
    let mut recs = Vec::new();
    let mut pos = 24;
    while pos < b.len() {
        let (sec, frac, incl, orig) = (
            le32(b, pos),
            le32(b, pos + 4),
            le32(b, pos + 8),
            le32(b, pos + 12),
        );
        recs.push((sec, frac, incl, orig));
        pos += 16 + incl as usize;
    }
    assert_eq!(pos, b.len(), "records tile the file exactly");
    (magic, link, recs)
}

#[test]
fn write_pcap_magic_and_record_lengths() {
    let path = scratch("classic.pcap");
    let pkts: Vec<(u64, Vec<u8>)> = vec![
        (1_700_000_000_123_456_789, vec![0xAA; 60]),
        (1_700_000_001_000_000_000, vec![0xBB; 7]),
    ];
    write_pcap(&path, LINKTYPE_ETHERNET, &pkts).unwrap();
    let b = std::fs::read(&path).unwrap();
    assert_eq!(&b[0..4], &[0xD4, 0xC3, 0xB2, 0xA1]);
    let (magic, link, recs) = walk_classic(&b);
    assert_eq!((magic, link), (0xA1B2_C3D4, 1));
    assert_eq!(
        recs,
        vec![(1_700_000_000, 123_456, 60, 60), (1_700_000_001, 0, 7, 7)]
    );
    let back = read_pcap(&path).unwrap();
    assert_eq!(
        back[0],
        (1_700_000_000_123_456_000, vec![0xAA; 60]),
        "µs truncation"
    );
    assert_eq!(back[1], pkts[1]);

    // borrowed slices work too, and nanosecond files keep full precision
    let borrowed: Vec<(u64, &[u8])> = pkts.iter().map(|(t, d)| (*t, d.as_slice())).collect();
    let ns_path = scratch("nanos.pcap");
    write_pcap_with(&ns_path, LINKTYPE_RAW, TsResolution::Nano, &borrowed).unwrap();
    let b = std::fs::read(&ns_path).unwrap();
    assert_eq!(&b[0..4], &[0x4D, 0x3C, 0xB2, 0xA1]);
    assert_eq!(walk_classic(&b).1, 101);
    assert_eq!(read_pcap(&ns_path).unwrap()[0].0, 1_700_000_000_123_456_789);
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&ns_path).unwrap();
}

#[test]
fn pcapng_blocks_by_hand() {
    let path = scratch("mixed.pcapng");
    let eth = FrameSpec::udp(
        "192.0.2.1:1".parse().unwrap(),
        "192.0.2.2:2".parse().unwrap(),
    );
    let recs: Vec<(u64, u32, Vec<u8>)> = vec![
        (10_000, LINKTYPE_ETHERNET, eth.build(b"a")),
        (20_000, LINKTYPE_RAW, eth.raw_ip(b"b")),
        (30_000, LINKTYPE_ETHERNET, eth.build(b"ccc")),
    ];
    write_pcapng(&path, &recs).unwrap();
    let b = std::fs::read(&path).unwrap();
    // block types in order: SHB, IDB(eth), EPB, IDB(raw), EPB, EPB
    let mut kinds = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let kind = le32(&b, pos);
        let len = le32(&b, pos + 4) as usize;
        assert_eq!(len % 4, 0);
        assert_eq!(
            le32(&b, pos + len - 4) as usize,
            len,
            "trailing length repeats"
        );
        if kind == 6 {
            let cap = le32(&b, pos + 20) as usize;
            assert_eq!(len, 32 + cap.div_ceil(4) * 4);
        }
        kinds.push(kind);
        pos += len;
    }
    assert_eq!(kinds, vec![0x0A0D_0D0A, 1, 6, 1, 6, 6]);
    assert_eq!(le32(&b, 8), 0x1A2B_3C4D, "byte-order magic");
    let parsed = parse_capture(&b).unwrap();
    let summary: Vec<(u64, u32, Vec<u8>)> = parsed
        .into_iter()
        .map(|r| (r.ts_ns, r.link_type, r.data))
        .collect();
    assert_eq!(summary, recs);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn capture_builder_round_trip() {
    let call = CallSpec::two_streams(
        "cap-1@192.0.2.1",
        "192.0.2.1:5060".parse().unwrap(),
        "198.51.100.7:5060".parse().unwrap(),
        Vendor::CiscoCube,
    );
    let a = StreamSpec {
        packets: 10,
        ..StreamSpec::new(
            "192.0.2.1:20000".parse().unwrap(),
            "198.51.100.7:40000".parse().unwrap(),
            0xA,
        )
    };
    let b = StreamSpec {
        ssrc: 0xB,
        src: "192.0.2.1:20002".parse().unwrap(),
        dst: "198.51.100.7:40002".parse().unwrap(),
        start_ns: DEFAULT_START_NS + 5_000_000,
        ..a.clone()
    };
    let media = merge(vec![
        generate(&a, Impairments::default()),
        generate(&b, Impairments::default()),
    ]);
    let invite = siprec_invite(&call);
    let mut cap = Capture::new();
    cap.add_frames(media.clone())
        .add_sip(
            DEFAULT_START_NS - 20_000_000,
            call.dst_sip,
            call.src_sip,
            &ok_200(&call),
        )
        .add_sip(
            DEFAULT_START_NS - 30_000_000,
            call.src_sip,
            call.dst_sip,
            &invite,
        )
        .add_raw(DEFAULT_START_NS + 1, arp_frame())
        .add_raw(DEFAULT_START_NS + 2, truncated(&media[0].frame, 20));
    assert_eq!(cap.len(), 24);
    let sorted = cap.sorted();
    assert_eq!(
        cap.frames()[0].0,
        media[0].ts_ns,
        "sorted() leaves the original alone"
    );
    let times: Vec<u64> = sorted.frames().iter().map(|f| f.0).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));

    let p = scratch("call.pcap");
    sorted.write_pcap(&p).unwrap();
    let cleanup = [p.clone(), scratch("call.pcapng")];
    let back = read_pcap(&p).unwrap();
    assert_eq!(back.len(), 24);
    let first = decode_udp(&back[0].1).unwrap();
    assert_eq!(
        String::from_utf8(first.payload).unwrap(),
        invite,
        "INVITE first, byte-exact"
    );
    let ssrcs: Vec<u32> = back
        .iter()
        .filter_map(|(_, f)| decode_udp(f).ok())
        .filter(|u| u.dst.port() >= 40000)
        .map(|u| decode_rtp(&u.payload).4)
        .collect();
    let rtp_count = ssrcs.len();
    assert!(ssrcs.iter().all(|s| [0xA, 0xB].contains(s)));
    assert_eq!(rtp_count, 20);

    let png = scratch("call.pcapng");
    sorted.write_pcapng(&png).unwrap();
    let back_ng = read_pcap(&png).unwrap();
    assert_eq!(back_ng, back, "pcapng and pcap hold the same records");
    for f in cleanup {
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn fragmented_sip_in_a_capture() {
    let call = CallSpec::two_streams(
        "frag@192.0.2.1",
        "192.0.2.1:5060".parse().unwrap(),
        "198.51.100.7:5060".parse().unwrap(),
        Vendor::AcmePacket,
    );
    let invite = siprec_invite(&call);
    assert!(
        invite.len() > 1480,
        "a SIPREC INVITE exceeds one Ethernet MTU"
    );
    let mut cap = Capture::new();
    cap.add_sip_fragmented(
        DEFAULT_START_NS,
        call.src_sip,
        call.dst_sip,
        &invite,
        1480,
        0x77,
    );
    assert!(cap.len() >= 2);
    let frames: Vec<Vec<u8>> = cap.into_frames().into_iter().map(|(_, f)| f).collect();
    let u = reassemble(&frames).unwrap();
    assert_eq!(String::from_utf8(u.payload).unwrap(), invite);
}
