//! Frames sent into a net_ring port come back out of it (its tx and rx
//! queues share one ring each) through the PacketSource implementation.

mod common;

use common::{now_ns, rtp_frame, RuntimeDir};
use mediafork_dataplane::source::{Frame, PacketSource};
use mediafork_dpdk::{Eal, Mempool, Port, PortConfig};

#[test]
fn dpdk_net_ring_loopback() {
    let dir = RuntimeDir::new("net-ring");
    let eal = Eal::init(&dir.eal_args(&["--vdev=net_ring0"])).expect("EAL init");
    let pool = Mempool::new(&eal, "ring-pool", 1023, 32, None).expect("mempool");

    // Two queues: net_ring has no RSS, so this also checks that the RSS
    // request is masked away instead of failing the configuration.
    let config = PortConfig {
        n_rx_queues: 2,
        n_tx_queues: 2,
        rx_desc: 256,
        tx_desc: 256,
        ..PortConfig::default()
    };
    let mut port = Port::configure_with("net_ring0", &config, &pool).expect("configure net_ring0");
    assert_eq!(port.rss_hf(), 0, "net_ring has no RSS");
    port.start().expect("start");

    let started = now_ns();
    for q in 0..2u16 {
        let n = if q == 0 { 40 } else { 7 };
        let sent_frames: Vec<Vec<u8>> = (0..n).map(|i| rtp_frame(30_000 + q, i)).collect();
        let mut txq = port.tx_queue(q).expect("tx queue");
        let mut mbufs: Vec<_> = sent_frames
            .iter()
            .map(|f| pool.alloc_with(f).expect("mbuf"))
            .collect();
        let mut sent = 0;
        while !mbufs.is_empty() {
            let k = txq.tx_burst(&mut mbufs);
            assert!(k > 0, "net_ring refused frames");
            sent += k;
        }
        assert_eq!(sent, n as usize);

        let mut rxq = port.rx_queue(q).expect("rx queue");
        assert_eq!(rxq.name(), format!("dpdk:{}/{q}", port.id()));
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut bursts = 0;
        loop {
            let k = rxq.poll_burst(|pkts| {
                assert!(pkts.len() <= mediafork_dpdk::MAX_BURST);
                let t = pkts[0].arrival_ns;
                for p in pkts {
                    assert_eq!(p.frame, Frame::Ethernet);
                    assert_eq!(p.arrival_ns, t, "one clock reading per burst");
                    assert!(
                        p.arrival_ns >= started - 1_000_000,
                        "arrival {} before test start {started}",
                        p.arrival_ns
                    );
                    assert!(
                        p.arrival_ns <= now_ns() + 1_000_000,
                        "arrival in the future"
                    );
                    got.push(p.data.to_vec());
                }
            });
            if k == 0 {
                break;
            }
            bursts += 1;
        }
        assert_eq!(got, sent_frames, "queue {q}: frames differ");
        assert!(
            bursts >= (n as usize).div_ceil(32),
            "bursts are at most 32 frames"
        );
        assert_eq!(rxq.multi_segment_frames(), 0);
    }
    // Every mbuf went back to the pool: the bulk free after each burst.
    assert_eq!(pool.in_use(), 0, "mbufs leaked");
}
