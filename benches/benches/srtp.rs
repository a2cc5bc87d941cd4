//! What SRTP costs per packet.
//!
//! - `srtp_unprotect/<suite>`: copy a 172-byte RTP packet's SRTP form (20 ms
//!   of G.711 plus the tag) into a scratch buffer, check its index against
//!   the replay window, authenticate and decrypt it in place: exactly what a
//!   worker does for each SRTP packet before the usual per-packet work.
//! - `worker_path/{rtp,srtp_aes_cm_128_80,srtp_aead_aes_128_gcm}`: the whole
//!   worker path (parse, lookup, track update, ring write) at 1,000 tracks,
//!   bursts of 32, for plain RTP and for SRTP, so the difference is the
//!   SRTP share of a packet's cost. Frames are prepared and rings drained
//!   outside the timed region, as in `per_packet`.
//!
//! Run: `cargo bench -p mediafork-benches --bench srtp`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mediafork_dataplane::codec::Codec;
use mediafork_dataplane::config::{DataplaneConfig, PortRange};
use mediafork_dataplane::engine::{Binding, CallSetup, Engine, TrackSetup};
use mediafork_dataplane::ring::RecordConsumer;
use mediafork_dataplane::source::{Frame, RxPacket, MAX_BURST};
use mediafork_dataplane::srtp::{MasterKey, ReplayWindow, SrtpContext, SrtpSession, Suite};
use mediafork_dataplane::worker::WorkerCore;
use mediafork_testkit::frame::FrameSpec;
use mediafork_testkit::rtp::RtpPacket;

fn master(suite: Suite) -> MasterKey {
    let material: Vec<u8> = (0..suite.key_len() + suite.salt_len())
        .map(|i| i as u8 ^ 0x5a)
        .collect();
    MasterKey::new(suite, &material).unwrap()
}

fn unprotect(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp_unprotect");
    group.throughput(Throughput::Elements(1));
    for suite in Suite::ALL {
        let key = master(suite);
        let mut tx = SrtpContext::from_master(&key);
        let plain = RtpPacket::new(0, 1000, 160_000, 0x1234_5678, vec![0x55; 160]).to_bytes();
        assert_eq!(plain.len(), 172);
        let mut wire = plain.clone();
        wire.resize(plain.len() + suite.rtp_tag_len(), 0);
        let n = tx.protect_rtp(&mut wire, plain.len()).unwrap();
        wire.truncate(n);
        let session = Arc::new(SrtpSession::new(&key));
        let mut scratch = [0u8; 2048];
        group.bench_function(BenchmarkId::from_parameter(suite.sdes_name()), |b| {
            b.iter(|| {
                // A fresh window each time, so the same packet is accepted
                // again: the window check itself is a few instructions.
                let mut window = ReplayWindow::default();
                let buf = &mut scratch[..wire.len()];
                buf.copy_from_slice(std::hint::black_box(&wire));
                let len = session.unprotect_rtp(&mut window, buf).unwrap();
                std::hint::black_box(&buf[..len]);
            })
        });
    }
    group.finish();
}

const TRACKS: usize = 1_000;
const BATCH: usize = 1024;

struct Fixture {
    _engine: Engine,
    core: WorkerCore,
    rings: Vec<Vec<RecordConsumer>>,
    senders: Vec<Option<SrtpContext>>,
    seq: Vec<u16>,
    cursor: usize,
    slots: Vec<Vec<u8>>,
}

fn dst(t: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        40000 + 2 * t as u16,
    )
}

fn setup(suite: Option<Suite>) -> Fixture {
    let config = DataplaneConfig {
        port_range: PortRange::new(40000, 40000 + 2 * TRACKS as u16).unwrap(),
        max_tracks: TRACKS + 16,
        ring_bytes: 8 << 20,
        recordings_dir: std::env::temp_dir().join("mediafork-bench-unused"),
        ..DataplaneConfig::default()
    };
    let (engine, mut cores, rings) = Engine::start_without_writers(config).unwrap();
    let core = cores.pop().unwrap();
    let mut call = None;
    let mut senders = Vec::new();
    for t in 0..TRACKS {
        if t % 2 == 0 {
            call = Some(engine.open_call(CallSetup::default()).unwrap());
        }
        let key = suite.map(master);
        senders.push(key.as_ref().map(SrtpContext::from_master));
        engine
            .add_track(
                call.as_ref().unwrap(),
                TrackSetup {
                    payload_types: vec![(0, Codec::Pcmu)],
                    bindings: vec![Binding::Port(dst(t))],
                    srtp: key,
                    ..TrackSetup::default()
                },
            )
            .unwrap();
    }
    Fixture {
        _engine: engine,
        core,
        rings,
        senders,
        seq: vec![0; TRACKS],
        cursor: 0,
        slots: vec![Vec::new(); BATCH],
    }
}

impl Fixture {
    /// The next packet of the next BATCH tracks, protected when SRTP.
    fn prepare(&mut self) {
        let src: SocketAddr = "127.0.0.1:30000".parse().unwrap();
        for slot in &mut self.slots {
            let t = self.cursor;
            self.cursor = (self.cursor + 1) % TRACKS;
            let s = self.seq[t].wrapping_add(1);
            self.seq[t] = s;
            let rtp = RtpPacket::new(
                0,
                s,
                s as u32 * 160,
                0x1000_0000 + t as u32,
                vec![0x55; 160],
            )
            .to_bytes();
            let payload = match &mut self.senders[t] {
                Some(tx) => {
                    let mut buf = rtp.clone();
                    buf.resize(rtp.len() + 16, 0);
                    let n = tx.protect_rtp(&mut buf, rtp.len()).unwrap();
                    buf.truncate(n);
                    buf
                }
                None => rtp,
            };
            *slot = FrameSpec::udp(src, dst(t)).build(&payload);
        }
    }

    fn drain(&mut self) {
        for per_writer in &mut self.rings {
            for r in per_writer {
                r.discard_all();
            }
        }
    }

    fn run(&mut self, now_ns: u64) {
        for burst in self.slots.chunks(MAX_BURST) {
            let mut pkts = [RxPacket {
                frame: Frame::Ethernet,
                data: &[],
                arrival_ns: now_ns,
            }; MAX_BURST];
            for (p, slot) in pkts.iter_mut().zip(burst) {
                p.data = slot;
            }
            self.core.handle_burst(&pkts[..burst.len()]);
        }
    }
}

fn worker_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("worker_path");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    for (name, suite) in [
        ("rtp", None),
        ("srtp_aes_cm_128_80", Some(Suite::AesCm128HmacSha1_80)),
        ("srtp_aead_aes_128_gcm", Some(Suite::AeadAes128Gcm)),
    ] {
        let mut fx = setup(suite);
        let mut now_ns = 1_000_000_000u64;
        // Every track's first packet (state set-up) before measuring.
        for _ in 0..TRACKS.div_ceil(BATCH) {
            fx.prepare();
            fx.run(now_ns);
            fx.drain();
        }
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    fx.prepare();
                    now_ns += 20_000_000;
                    let start = Instant::now();
                    fx.run(now_ns);
                    total += start.elapsed();
                    fx.drain();
                }
                total
            })
        });
        let c = fx.core.counters();
        assert_eq!(c.recorded, c.rx_packets, "every packet recorded: {c:?}");
    }
    group.finish();
}

criterion_group!(benches, unprotect, worker_path);
criterion_main!(benches);
