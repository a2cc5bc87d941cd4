//! An RxQueue moves to a worker thread, which registers itself with the EAL
//! (for the mempool's per-lcore cache) and polls there; the port outlives
//! the `Port` handle while the worker holds the queue.

mod common;

use common::{rtp_frame, RuntimeDir};
use mediafork_dataplane::source::PacketSource;
use mediafork_dpdk::{DpdkError, Eal, Mempool, Port};

#[test]
fn dpdk_worker_thread_polls_its_queue() {
    let dir = RuntimeDir::new("worker");
    let eal = Eal::init(&dir.eal_args(&["--vdev=net_ring0"])).expect("EAL init");
    // The thread that ran Eal::init is the main lcore already.
    assert!(matches!(
        eal.register_thread(),
        Err(DpdkError::InvalidArgument { .. })
    ));
    let pool = Mempool::new(&eal, "worker-pool", 1023, 64, None).expect("mempool");
    let mut port = Port::configure("net_ring0", 1, 512, &pool).expect("configure");
    port.start().expect("start");

    let frames: Vec<Vec<u8>> = (0..100).map(|i| rtp_frame(10_000, i)).collect();
    let mut txq = port.tx_queue(0).expect("tx queue");
    let mut mbufs: Vec<_> = frames.iter().map(|f| pool.alloc_with(f).unwrap()).collect();
    while !mbufs.is_empty() {
        assert!(txq.tx_burst(&mut mbufs) > 0);
    }
    drop(txq);

    let rxq = port.rx_queue(0).expect("rx queue");
    let err = port.rx_queue(0).expect_err("one holder per queue");
    assert!(matches!(err, DpdkError::QueueUnavailable { .. }), "{err:?}");
    assert!(port.rx_queue(1).is_err(), "only one queue configured");
    // Dropping the Port while the worker holds a queue is fine: the queue
    // keeps the port open; it closes when the worker drops the queue.
    drop(port);

    let worker_eal = eal.clone();
    let got = std::thread::spawn(move || {
        let mut rxq = rxq;
        let reg = worker_eal
            .register_thread()
            .expect("register worker thread");
        assert_ne!(reg.lcore_id(), 0, "a new lcore id, not the main one");
        let mut got = Vec::new();
        while rxq.poll_burst(|pkts| got.extend(pkts.iter().map(|p| p.data.to_vec()))) > 0 {}
        drop(rxq);
        drop(reg);
        got
    })
    .join()
    .expect("worker");
    assert_eq!(got, frames);
    assert_eq!(pool.in_use(), 0);
}
