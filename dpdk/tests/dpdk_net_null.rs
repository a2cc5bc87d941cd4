//! net_null produces frames endlessly; what the PacketSource counts is what
//! the port's statistics count, on every queue.

mod common;

use common::RuntimeDir;
use mediafork_dataplane::source::PacketSource;
use mediafork_dpdk::{rss_ip_udp, Eal, Mempool, Port};

#[test]
fn dpdk_net_null_rx_counts() {
    let dir = RuntimeDir::new("net-null");
    let eal = Eal::init(&dir.eal_args(&["--vdev=net_null0,size=128"])).expect("EAL init");
    let pool = Mempool::new(&eal, "null-pool", 2047, 64, None).expect("mempool");
    let mut port = Port::configure("net_null0", 2, 256, &pool).expect("configure net_null0");
    assert_eq!(port.n_rx_queues(), 2);
    assert_ne!(
        port.rss_hf() & rss_ip_udp(),
        0,
        "net_null takes the RSS configuration"
    );
    port.start().expect("start");
    port.reset_stats().expect("reset stats");

    let mut total = 0u64;
    for q in 0..2 {
        let mut rxq = port.rx_queue(q).expect("rx queue");
        for _ in 0..100 {
            let n = rxq.poll_burst(|pkts| {
                for p in pkts {
                    assert_eq!(p.data.len(), 128);
                }
            });
            assert_eq!(
                n,
                mediafork_dpdk::MAX_BURST,
                "net_null always has a full burst"
            );
            total += n as u64;
        }
    }
    assert_eq!(total, 2 * 100 * 32);
    let stats = port.stats().expect("stats");
    assert_eq!(stats.ipackets, total);
    // net_null (22.11) counts packets but not bytes.
    assert_eq!(stats.imissed, 0);
    assert_eq!(stats.rx_nombuf, 0);
    assert_eq!(stats.rx_queues.len(), 2);
    assert_eq!(stats.rx_queues[0].packets, 3200);
    assert_eq!(stats.rx_queues[1].packets, 3200);
    assert_eq!(pool.in_use(), 0, "mbufs leaked");
}
