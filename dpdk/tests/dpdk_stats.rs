//! Port statistics and extended statistics count what went through the
//! port. net_pcap counts bytes as well as packets (net_ring and net_null
//! count packets only), and writes what is sent to its tx capture.

mod common;

use std::time::{Duration, Instant};

use common::{rtp_frame, write_pcap, RuntimeDir};
use mediafork_dataplane::source::PacketSource;
use mediafork_dpdk::{Eal, Mempool, Port};

#[test]
fn dpdk_stats_report_packets() {
    let dir = RuntimeDir::new("stats");
    let tmp = tempfile::tempdir().expect("temp dir");
    let (rx_pcap, tx_pcap) = (tmp.path().join("rx.pcap"), tmp.path().join("tx.pcap"));
    let rx_frames: Vec<Vec<u8>> = (0..50).map(|i| rtp_frame(10_000, i)).collect();
    let rx_bytes: u64 = rx_frames.iter().map(|f| f.len() as u64).sum();
    write_pcap(&rx_pcap, &rx_frames);

    let vdev = format!(
        "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
        rx_pcap.display(),
        tx_pcap.display()
    );
    let eal = Eal::init(&dir.eal_args(&[&vdev])).expect("EAL init");
    let pool = Mempool::new(&eal, "stats-pool", 511, 0, None).expect("mempool");
    let mut port = Port::configure("net_pcap0", 1, 256, &pool).expect("configure");
    port.start().expect("start");

    let zero = port.stats().expect("stats");
    assert_eq!(
        (zero.ipackets, zero.opackets, zero.ibytes, zero.obytes),
        (0, 0, 0, 0)
    );

    let mut rxq = port.rx_queue(0).expect("rx queue");
    let mut received = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while received < rx_frames.len() && Instant::now() < deadline {
        received += rxq.poll_burst(|_| ());
    }
    assert_eq!(received, rx_frames.len());

    let tx_frames: Vec<Vec<u8>> = (0..10).map(|i| rtp_frame(12_000, 100 + i)).collect();
    let tx_bytes: u64 = tx_frames.iter().map(|f| f.len() as u64).sum();
    let mut txq = port.tx_queue(0).expect("tx queue");
    let mut mbufs: Vec<_> = tx_frames
        .iter()
        .map(|f| pool.alloc_with(f).unwrap())
        .collect();
    assert_eq!(txq.tx_burst(&mut mbufs), 10);
    assert!(mbufs.is_empty());

    let s = port.stats().expect("stats");
    assert_eq!(s.ipackets, rx_frames.len() as u64);
    assert_eq!(s.ibytes, rx_bytes);
    assert_eq!(s.opackets, 10);
    assert_eq!(s.obytes, tx_bytes);
    assert_eq!((s.imissed, s.ierrors, s.oerrors, s.rx_nombuf), (0, 0, 0, 0));
    assert_eq!(s.rx_queues.len(), 1);
    assert_eq!(s.rx_queues[0].packets, rx_frames.len() as u64);
    assert_eq!(s.rx_queues[0].bytes, rx_bytes);
    assert_eq!(s.tx_queues[0].packets, 10);

    let x = port.xstats().expect("xstats");
    let get = |name: &str| x.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(
        get("rx_good_packets"),
        Some(rx_frames.len() as u64),
        "{x:?}"
    );
    assert_eq!(get("rx_good_bytes"), Some(rx_bytes), "{x:?}");
    assert_eq!(get("tx_good_packets"), Some(10), "{x:?}");
    assert_eq!(get("rx_q0_packets"), Some(rx_frames.len() as u64), "{x:?}");

    port.reset_stats().expect("reset");
    assert_eq!(port.stats().unwrap().ipackets, 0);

    // Stopping is refused while queue handles exist (a worker may poll them).
    let err = port.stop().expect_err("queues are out");
    assert!(err.to_string().contains("2 queue handle(s)"), "{err}");
    drop((rxq, txq));
    port.stop().expect("stop once the queues are back");
    port.close().expect("close");
    assert_eq!(pool.in_use(), 0);

    // What was sent is in the tx capture: header + 10 records.
    let written = std::fs::read(&tx_pcap).expect("tx capture");
    assert_eq!(written.len() as u64, 24 + 10 * 16 + tx_bytes);
}
