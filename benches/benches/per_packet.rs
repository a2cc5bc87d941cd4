//! Per-packet cost of the data plane: parse (Ethernet/IPv4/UDP/RTP) +
//! demux lookup + per-track update + ring write, at 1k, 10k, 100k and 200k
//! active tracks.
//!
//! Traffic is what a loaded recorder sees: every track sends in turn, in a
//! fixed random order, so consecutive packets belong to different tracks and
//! the track state is not conveniently in cache. Each timed batch processes
//! 1024 freshly prepared frames (as a NIC would have DMA'd them); preparing
//! the frames and draining the rings happen outside the timed region.
//!
//! Run: `cargo bench -p mediafork-benches --bench per_packet`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mediafork_dataplane::codec::Codec;
use mediafork_dataplane::config::{DataplaneConfig, PortRange};
use mediafork_dataplane::engine::{Binding, CallSetup, Engine, TrackSetup};
use mediafork_dataplane::ring::RecordConsumer;
use mediafork_dataplane::source::{Frame, RxPacket, MAX_BURST};
use mediafork_dataplane::worker::WorkerCore;
use mediafork_testkit::frame::FrameSpec;
use mediafork_testkit::rng::SplitMix64;
use mediafork_testkit::rtp::RtpPacket;

const PORTS_PER_ADDR: usize = 4096;
const BATCH: usize = 1024;
/// Offset of the RTP header in an untagged IPv4 frame.
const RTP_AT: usize = 14 + 20 + 8;

struct Fixture {
    _engine: Engine,
    core: WorkerCore,
    rings: Vec<Vec<RecordConsumer>>,
    /// One frame, patched per packet with the track's address, port, SSRC,
    /// sequence number and timestamp: a per-track template table would put
    /// tens of MB through the cache that a NIC never would.
    template: Vec<u8>,
    /// The batch being processed: a copy per packet, as in a NIC's RX ring.
    slots: Vec<Vec<u8>>,
    order: Vec<u32>,
    cursor: usize,
    seq: Vec<u16>,
    cycles: Vec<u32>,
}

fn media_addr(track: usize) -> SocketAddr {
    let a = track / PORTS_PER_ADDR;
    let ip = Ipv4Addr::new(127, 1, (a >> 8) as u8, a as u8);
    SocketAddr::new(IpAddr::V4(ip), 40000 + (track % PORTS_PER_ADDR) as u16)
}

fn setup(tracks: usize) -> Fixture {
    let config = DataplaneConfig {
        port_range: PortRange::new(40000, 40000 + PORTS_PER_ADDR as u16 - 1).unwrap(),
        max_tracks: tracks + 16,
        max_addresses: tracks / PORTS_PER_ADDR + 2,
        ring_bytes: 8 << 20,
        recordings_dir: std::env::temp_dir().join("mediafork-bench-unused"),
        ..DataplaneConfig::default()
    };
    let (engine, mut cores, rings) = Engine::start_without_writers(config).unwrap();
    let core = cores.pop().unwrap();
    let src: SocketAddr = "127.0.0.1:30000".parse().unwrap();
    // Two tracks per call, like a SIPREC session.
    let mut call = None;
    for t in 0..tracks {
        if t % 2 == 0 {
            call = Some(engine.open_call(CallSetup::default()).unwrap());
        }
        let dst = media_addr(t);
        engine
            .add_track(
                call.as_ref().unwrap(),
                TrackSetup {
                    index: None,
                    label: None,
                    payload_types: vec![(0, Codec::Pcmu)],
                    bindings: vec![Binding::Port(dst)],
                    ..TrackSetup::default()
                },
            )
            .unwrap();
        let _ = dst;
    }
    let rtp = RtpPacket::new(0, 0, 0, 0x1000_0000, vec![0x55; 160]).to_bytes();
    let template = FrameSpec::udp(src, media_addr(0)).build(&rtp);
    let mut order: Vec<u32> = (0..tracks as u32).collect();
    let mut rng = SplitMix64::new(0x5eed);
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let slots = (0..BATCH).map(|_| Vec::with_capacity(256)).collect();
    Fixture {
        _engine: engine,
        core,
        rings,
        template,
        slots,
        order,
        cursor: 0,
        seq: vec![0; tracks],
        cycles: vec![0; tracks],
    }
}

impl Fixture {
    /// Fill the batch with the next packet of the next BATCH tracks.
    fn prepare(&mut self) {
        for slot in &mut self.slots {
            let t = self.order[self.cursor] as usize;
            self.cursor = (self.cursor + 1) % self.order.len();
            let s = self.seq[t].wrapping_add(1);
            self.seq[t] = s;
            if s == 0 {
                self.cycles[t] += 1;
            }
            slot.clear();
            slot.extend_from_slice(&self.template);
            let dst = media_addr(t);
            if let IpAddr::V4(ip) = dst.ip() {
                slot[30..34].copy_from_slice(&ip.octets());
            }
            slot[36..38].copy_from_slice(&dst.port().to_be_bytes());
            slot[RTP_AT + 8..RTP_AT + 12]
                .copy_from_slice(&(0x1000_0000u32 + t as u32).to_be_bytes());
            slot[RTP_AT + 2..RTP_AT + 4].copy_from_slice(&s.to_be_bytes());
            // Timestamps keep running across sequence wrap-around.
            let ts = (self.cycles[t].wrapping_mul(65536).wrapping_add(s as u32)).wrapping_mul(160);
            slot[RTP_AT + 4..RTP_AT + 8].copy_from_slice(&ts.to_be_bytes());
        }
    }

    fn drain(&mut self) {
        for per_writer in &mut self.rings {
            for r in per_writer {
                r.discard_all();
            }
        }
    }
}

fn per_packet(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_packet");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(4));
    for tracks in [1_000usize, 10_000, 100_000, 200_000] {
        let mut fx = setup(tracks);
        // Warm every track once so the measured packets are steady-state.
        for _ in 0..tracks.div_ceil(BATCH) {
            fx.prepare();
            for slot in &fx.slots {
                fx.core.handle(&RxPacket {
                    frame: Frame::Ethernet,
                    data: slot,
                    arrival_ns: 0,
                });
            }
            fx.drain();
        }
        group.bench_function(BenchmarkId::from_parameter(tracks), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut now_ns = 1_000_000_000u64;
                for _ in 0..iters {
                    fx.prepare();
                    now_ns += 20_000_000;
                    let start = Instant::now();
                    // Bursts of 32, as a worker receives them.
                    for burst in fx.slots.chunks(MAX_BURST) {
                        let mut pkts = [RxPacket {
                            frame: Frame::Ethernet,
                            data: &[],
                            arrival_ns: now_ns,
                        }; MAX_BURST];
                        for (p, slot) in pkts.iter_mut().zip(burst) {
                            p.data = slot;
                        }
                        fx.core.handle_burst(&pkts[..burst.len()]);
                    }
                    total += start.elapsed();
                    fx.drain();
                }
                total
            })
        });
        let c = fx.core.counters();
        assert_eq!(
            c.recorded, c.rx_packets,
            "every packet must reach a ring: {c:?}"
        );
        assert_eq!(
            c.drops.iter().sum::<u64>(),
            0,
            "benchmark traffic must not be dropped: {c:?}"
        );
    }
    group.finish();
}

criterion_group!(benches, per_packet);
criterion_main!(benches);
