//! A capture replayed by net_pcap comes out of the PacketSource byte for byte.

mod common;

use std::time::{Duration, Instant};

use common::{rtp_frame, udp_frame, write_pcap, RuntimeDir};
use mediafork_dataplane::source::{Frame, PacketSource};
use mediafork_dpdk::{Eal, Mempool, Port};

#[test]
fn dpdk_net_pcap_reads_capture() {
    let dir = RuntimeDir::new("net-pcap");
    let tmp = tempfile::tempdir().expect("temp dir");
    let pcap = tmp.path().join("in.pcap");
    // Different sizes, including a minimum-size frame and a full 1500-byte MTU one.
    let mut frames: Vec<Vec<u8>> = (0..5).map(|i| rtp_frame(20_000, i)).collect();
    frames.push(udp_frame(5060, 5060, b"OPTIONS sip:x SIP/2.0\r\n\r\n"));
    frames.push(udp_frame(1, 2, &[]));
    frames.push(udp_frame(3, 4, &vec![0xab; 1472]));
    write_pcap(&pcap, &frames);

    let vdev = format!("--vdev=net_pcap0,rx_pcap={}", pcap.display());
    let eal = Eal::init(&dir.eal_args(&[&vdev])).expect("EAL init");
    let pool = Mempool::new(&eal, "pcap-pool", 511, 32, None).expect("mempool");
    let mut port = Port::configure("net_pcap0", 1, 128, &pool).expect("configure net_pcap0");
    assert_eq!(port.driver(), "net_pcap");
    port.start().expect("start");
    let mut rxq = port.rx_queue(0).expect("rx queue");

    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < frames.len() && Instant::now() < deadline {
        rxq.poll_burst(|pkts| {
            for p in pkts {
                assert_eq!(p.frame, Frame::Ethernet);
                got.push(p.data.to_vec());
            }
        });
    }
    assert_eq!(got.len(), frames.len(), "all frames of the capture");
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(g, f, "frame {i} differs");
    }
    // End of the capture: nothing more, and the source says so by returning 0.
    for _ in 0..100 {
        assert_eq!(rxq.poll_burst(|_| panic!("no more frames expected")), 0);
    }
    drop(rxq);
    assert_eq!(pool.in_use(), 0, "mbufs leaked");
}
