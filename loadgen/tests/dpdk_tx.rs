//! `--tx dpdk`: the loadgen's RTP through a real DPDK transmit queue.
//!
//! The `net_pcap` driver writes every transmitted frame, stamped when the
//! driver took it, to a capture file: the test reads it back and checks
//! what a recorder on the wire would see (addresses, MACs, checksums, RTP
//! sequence and payload) and the pacing (one packet per 20 ms per stream).
//! One EAL per process: run with `cargo nextest`.
#![cfg(feature = "dpdk")]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Command, FromArgMatches};
use mediafork_dpdk::testing::RuntimeDir;
use mediafork_loadgen::LoadgenArgs;
use mediafork_testkit::frame::{internet_checksum, transport_checksum, IPPROTO_UDP};
use mediafork_testkit::payload::pattern_index;
use mediafork_testkit::pcap::read_pcap;
use mediafork_testkit::rtp::RtpPacket;

fn parse(argv: &[String]) -> LoadgenArgs {
    let cmd = LoadgenArgs::augment_args(Command::new("loadgen"));
    let m = cmd
        .try_get_matches_from(std::iter::once("loadgen".to_string()).chain(argv.iter().cloned()))
        .unwrap();
    LoadgenArgs::from_arg_matches(&m).unwrap()
}

/// A frame of one stream as captured: (time, sequence, payload index).
type Sent = (u64, u16, u32);

const DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x2a];
/// Calls of two streams each, 1 s of 20 ms PCMU.
const CALLS: usize = 4;
const PACKETS: usize = 50;

#[test]
fn dpdk_tx_net_pcap_frames_are_correct_and_paced() {
    let runtime = RuntimeDir::new("loadgen-tx");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tx.pcap");
    // net_pcap needs an rx side too: an empty capture.
    let rx = tmp.path().join("rx.pcap");
    mediafork_testkit::pcap::write_pcap::<&[u8]>(
        &rx,
        mediafork_testkit::pcap::LINKTYPE_ETHERNET,
        &[],
    )
    .unwrap();
    let vdev = format!(
        "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
        rx.display(),
        out.display()
    );
    let eal = runtime.eal_args(&[&vdev]).join(" ");
    let args = parse(&[
        "--target".into(),
        "127.0.0.1".into(),
        "--local-ip".into(),
        "127.0.0.1".into(),
        "--rtp-only".into(),
        "40000-40007".into(),
        "--calls".into(),
        CALLS.to_string(),
        "--rate".into(),
        "100".into(),
        "--duration".into(),
        "1s".into(),
        "--sockets".into(),
        "2".into(),
        "--quiet".into(),
        "--tx".into(),
        "dpdk".into(),
        "--dpdk-eal".into(),
        eal,
        "--dpdk-port".into(),
        "net_pcap0".into(),
        "--dst-mac".into(),
        "02:00:00:00:00:2a".into(),
    ]);
    let summary = mediafork_loadgen::run(&args).unwrap();
    assert_eq!(summary.tx, "dpdk");
    assert_eq!(summary.send_errors, 0, "{}", summary.render());
    assert_eq!(summary.packets_sent as usize, CALLS * 2 * PACKETS);
    assert_eq!(summary.bytes_sent as usize, CALLS * 2 * PACKETS * 172);
    let port_line = summary.tx_port.clone().expect("the port's counters");
    assert!(
        port_line.contains(&format!("{} frames sent, 0 failed", CALLS * 2 * PACKETS)),
        "{port_line}"
    );

    let frames = read_pcap(&out).unwrap();
    assert_eq!(
        frames.len(),
        CALLS * 2 * PACKETS,
        "frames written by net_pcap"
    );
    let mut streams: BTreeMap<u32, (u16, Vec<Sent>)> = BTreeMap::new();
    let mut src_ports = std::collections::BTreeSet::new();
    for (ts, f) in &frames {
        assert_eq!(f[..6], DST_MAC, "destination MAC from --dst-mac");
        assert_eq!(f[12..14], [0x08, 0x00], "IPv4");
        let ip = &f[14..34];
        assert_eq!(internet_checksum(ip), 0, "IPv4 header checksum");
        assert_eq!(ip[9], IPPROTO_UDP);
        let (src, dst) = (
            IpAddr::from([ip[12], ip[13], ip[14], ip[15]]),
            IpAddr::from([ip[16], ip[17], ip[18], ip[19]]),
        );
        assert_eq!(src, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(dst, IpAddr::from([127, 0, 0, 1]));
        let udp = &f[34..];
        let stored = u16::from_be_bytes([udp[6], udp[7]]);
        let mut zeroed = udp.to_vec();
        zeroed[6..8].fill(0);
        assert_eq!(
            transport_checksum(src, dst, IPPROTO_UDP, &zeroed),
            stored,
            "UDP checksum"
        );
        src_ports.insert(u16::from_be_bytes([udp[0], udp[1]]));
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        let p = RtpPacket::parse(&udp[8..]).expect("RTP");
        let idx = pattern_index(p.payload[0]).expect("the loadgen's payload pattern");
        assert!(p.payload.iter().all(|&b| pattern_index(b) == Some(idx)));
        let e = streams.entry(p.ssrc).or_insert((dport, Vec::new()));
        assert_eq!(e.0, dport, "a stream keeps its destination");
        e.1.push((*ts, p.sequence, idx));
    }
    assert_eq!(streams.len(), CALLS * 2);
    let dports: std::collections::BTreeSet<u16> = streams.values().map(|s| s.0).collect();
    assert_eq!(dports, (40000..40008).collect());
    assert!(
        src_ports.len() <= 2,
        "sources are the --sockets ports: {src_ports:?}"
    );
    let mut gaps = Vec::new();
    for (ssrc, (_, pkts)) in &streams {
        assert_eq!(pkts.len(), PACKETS, "stream {ssrc:08x}");
        for (i, w) in pkts.windows(2).enumerate() {
            assert_eq!(w[1].1, w[0].1.wrapping_add(1), "sequence of {ssrc:08x}");
            assert_eq!(w[1].2, w[0].2 + 1, "payload index of {ssrc:08x} at {i}");
            gaps.push(w[1].0.saturating_sub(w[0].0));
        }
    }
    // Pacing: the median gap is the ptime. A loaded CI machine may delay
    // single sends, so only the median is held tightly.
    gaps.sort_unstable();
    let median = Duration::from_nanos(gaps[gaps.len() / 2]);
    assert!(
        median > Duration::from_millis(19) && median < Duration::from_millis(21),
        "median gap {median:?} (gaps {:?} .. {:?})",
        Duration::from_nanos(gaps[0]),
        Duration::from_nanos(gaps[gaps.len() - 1])
    );
    // No drift: each stream's 49 gaps add up to 980 ms (up to a late first
    // or last send).
    for (ssrc, (_, pkts)) in &streams {
        let span = Duration::from_nanos(pkts[PACKETS - 1].0 - pkts[0].0);
        assert!(
            span > Duration::from_millis(960) && span < Duration::from_millis(1000),
            "stream {ssrc:08x} spans {span:?}"
        );
    }
}

#[test]
fn dpdk_tx_bad_port_is_named() {
    let runtime = RuntimeDir::new("loadgen-badport");
    let eal = runtime.eal_args(&["--vdev=net_null0"]).join(" ");
    let args = parse(&[
        "--target".into(),
        "127.0.0.1".into(),
        "--rtp-only".into(),
        "40000".into(),
        "--duration".into(),
        "100ms".into(),
        "--quiet".into(),
        "--tx".into(),
        "dpdk".into(),
        "--dpdk-eal".into(),
        eal,
        "--dpdk-port".into(),
        "net_nosuch0".into(),
        "--dst-mac".into(),
        "02:00:00:00:00:2a".into(),
    ]);
    let e = mediafork_loadgen::run(&args).unwrap_err().to_string();
    assert!(e.contains("net_nosuch0"), "{e}");
}
