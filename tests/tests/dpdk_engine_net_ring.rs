//! In process: RTP sent into a `net_ring` port is received by an `Engine`
//! worker through the DPDK packet source `mediafork run --backend dpdk` uses
//! (`mediafork_control::dpdk_backend::DpdkSource`, which registers the
//! worker thread with the EAL), and recorded exactly.
#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dpdk_common::RuntimeDir;
use mediafork_control::dpdk_backend::DpdkSource;
use mediafork_dataplane::config::{DataplaneConfig, PortRange};
use mediafork_dataplane::engine::{Binding, CallSetup, Engine, TrackSetup};
use mediafork_dataplane::writer::WriterEvent;
use mediafork_dpdk::{Eal, Mempool, Port, PortConfig};
use mediafork_testkit::frame::FrameSpec;
use mediafork_testkit::payload::{Block, Law};
use mediafork_testkit::stream::{Impairments, StreamSpec};
use mediafork_testkit::wav::read_wav;

const PACKETS: u32 = 300;

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn dpdk_net_ring_engine_records_rtp() {
    let runtime = RuntimeDir::new("engine-net-ring");
    let tmp = tempfile::tempdir().unwrap();
    let eal = Eal::init(&runtime.eal_args(&["--vdev=net_ring0"])).expect("EAL init");
    let pool = Mempool::new(&eal, "engine-ring", 2047, 64, None).expect("mempool");
    let config = PortConfig {
        n_rx_queues: 1,
        n_tx_queues: 1,
        rx_desc: 512,
        tx_desc: 512,
        ..PortConfig::default()
    };
    let mut port = Port::configure_with("net_ring0", &config, &pool).expect("configure net_ring0");
    port.start().expect("start");

    let (engine, cores) = Engine::start(DataplaneConfig {
        port_range: PortRange::new(40000, 40099).unwrap(),
        recordings_dir: tmp.path().to_path_buf(),
        date_partitions: false,
        idle_sleep: Duration::ZERO,
        ..DataplaneConfig::default()
    })
    .expect("engine");
    let dst: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    let src: SocketAddr = "10.0.0.1:20000".parse().unwrap();
    let call = engine
        .open_call(CallSetup {
            source: "sip".into(),
            started_at_ns: now_ns(),
            ..CallSetup::default()
        })
        .expect("open call");
    engine
        .add_track(
            &call,
            TrackSetup {
                label: Some("1".into()),
                bindings: vec![Binding::Port(dst)],
                ..TrackSetup::default()
            },
        )
        .expect("add track");
    let rxq = port.rx_queue(0).expect("rx queue");
    engine
        .spawn_workers(cores, vec![DpdkSource::from_queue(rxq, eal.clone())])
        .expect("spawn worker");

    // Send the stream into the ring port's tx queue, which feeds its rx queue.
    let spec = StreamSpec::new(src, dst, 0xabcd_0001);
    let frames: Vec<Vec<u8>> = (0..PACKETS)
        .map(|n| {
            let rtp = spec.rtp_packet(n, &Impairments::default()).to_bytes();
            FrameSpec::udp(src, dst).build(&rtp)
        })
        .collect();
    let mut txq = port.tx_queue(0).expect("tx queue");
    for chunk in frames.chunks(32) {
        let mut mbufs: Vec<_> = chunk.iter().map(|f| pool.alloc_with(f).unwrap()).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !mbufs.is_empty() {
            txq.tx_burst(&mut mbufs);
            assert!(Instant::now() < deadline, "net_ring stayed full");
        }
    }
    drop(txq);

    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.worker_counters()[0].recorded < u64::from(PACKETS) {
        assert!(
            Instant::now() < deadline,
            "worker recorded {:?}",
            engine.worker_counters()[0]
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let counters = engine.worker_counters()[0];
    assert_eq!(counters.rx_packets, u64::from(PACKETS), "{counters:?}");
    engine.end_call(&call, now_ns()).expect("end call");
    let events = engine.shutdown();
    let closed = events
        .into_iter()
        .map(|e| match e {
            WriterEvent::Closed(c) => c,
        })
        .find(|c| c.call == call.call)
        .expect("the recording closed at shutdown");
    let t = &closed.meta.tracks[0];
    assert_eq!(t.packets, u64::from(PACKETS));
    assert_eq!(t.lost, 0);
    assert_eq!(t.samples, u64::from(PACKETS) * 160);
    let wav = read_wav(closed.dir.join(&t.file)).unwrap();
    let blocks = wav.pattern_blocks(160, Law::Ulaw).unwrap();
    assert_eq!(blocks.len(), PACKETS as usize);
    for (n, b) in blocks.iter().enumerate() {
        assert_eq!(*b, Block::Packet(n as u32 % 200), "block {n}");
    }
    // The worker is gone and freed every mbuf it received.
    assert_eq!(pool.in_use(), 0, "mbufs leaked");
    let stats = port.stats().expect("stats");
    assert_eq!(stats.ipackets, u64::from(PACKETS), "{stats:?}");
}
