//! Packets per second per worker core, DPDK against kernel sockets, side by
//! side in one run, with zero drops.
//!
//! The same traffic goes through the same engine (one worker pinned to a
//! core, one writer writing real WAV files to /dev/shm) twice:
//!
//! - **socket**: the socket backend, one kernel UDP socket per track on
//!   127.0.0.1. The sockets are filled before the worker starts (each holds
//!   its share in its receive buffer, which is far from full: no drop), so
//!   the worker drains a backlog as fast as it can, as it would behind a
//!   loaded NIC.
//! - **dpdk**: a `net_pcap` port reading the same packets from a capture in
//!   /dev/shm, polled through `DpdkSource`, the packet source of
//!   `mediafork run --backend dpdk`. The driver has the whole file waiting,
//!   so the worker is never idle either. `net_pcap` copies each frame from
//!   the file into an mbuf on the worker's core: a cost a NIC's DMA would
//!   not put there, so DPDK's figure is a lower bound.
//!
//! The figure compared is packets divided by the worker thread's CPU time
//! (`/proc/.../schedstat`), i.e. packets per second of one worker core.
//! Drops must be zero: every packet recorded, no ring full, no NIC miss, no
//! socket buffer overflow (`Udp RcvbufErrors`). Runs alternate between the
//! backends; the table gives each one's median.
//!
//! The socket row excludes the kernel's receive processing (IP/UDP, socket
//! lookup, queueing), which runs in softirq on the sending thread over
//! loopback and on an interrupt core with a real NIC; its cost per packet
//! on the sending thread is printed below the table.
//!
//! Needs root (DPDK's runtime folder, no hugepages needed).
//!
//! Run: `sudo cargo bench -p mediafork-benches --features dpdk --bench dpdk_vs_socket`
//! Size: `MF_BENCH_TRACKS` (1000), `MF_BENCH_PACKETS` per track (1000),
//! `MF_BENCH_RUNS` per backend (5).

use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediafork_control::dpdk_backend::DpdkSource;
use mediafork_dataplane::backend::{SocketBackend, SocketConfig};
use mediafork_dataplane::codec::Codec;
use mediafork_dataplane::config::{DataplaneConfig, PortRange};
use mediafork_dataplane::engine::{Binding, CallSetup, Engine, TrackSetup};
use mediafork_dataplane::stats::Counters;
use mediafork_dataplane::worker::WorkerCore;
use mediafork_dpdk::{Eal, Mempool, Port, PortConfig};

const FIRST_PORT: u16 = 40_000;
const PAYLOAD: usize = 160;
const RTP_LEN: usize = 12 + PAYLOAD;
const SRC_PORT: u16 = 50_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

struct Sizes {
    tracks: usize,
    per_track: usize,
    runs: usize,
}

impl Sizes {
    fn total(&self) -> usize {
        self.tracks * self.per_track
    }

    /// Packet `i` of the run: tracks take turns, as a loaded recorder sees.
    fn packet(&self, i: usize) -> (usize, u16, u32) {
        let track = i % self.tracks;
        let n = i / self.tracks;
        (track, n as u16, (n as u32).wrapping_mul(PAYLOAD as u32))
    }
}

fn rtp(track: usize, seq: u16, ts: u32, out: &mut [u8; RTP_LEN]) {
    out[0] = 0x80;
    out[1] = 0; // PCMU
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&ts.to_be_bytes());
    out[8..12].copy_from_slice(&(0x1000_0000u32 + track as u32).to_be_bytes());
    for (k, b) in out[12..].iter_mut().enumerate() {
        *b = (k as u8).wrapping_add(seq as u8) | 0x80;
    }
}

/// Ethernet + IPv4 (checksummed) + UDP (no checksum) from 127.0.0.1:50000
/// to 127.0.0.1:`dst_port`, then the RTP packet: 214 bytes.
fn frame(dst_port: u16, rtp: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + rtp.len());
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + 8 + rtp.len()) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
    let sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&SRC_PORT.to_be_bytes());
    f.extend_from_slice(&dst_port.to_be_bytes());
    f.extend_from_slice(&((8 + rtp.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(rtp);
    f
}

/// The run's traffic as a classic pcap (Ethernet), 20 µs apart.
fn write_capture(path: &Path, sizes: &Sizes) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0u8; 8])?;
    w.write_all(&65_535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let mut buf = [0u8; RTP_LEN];
    for i in 0..sizes.total() {
        let (track, seq, ts) = sizes.packet(i);
        rtp(track, seq, ts, &mut buf);
        let f = frame(FIRST_PORT + track as u16, &buf);
        let us = i as u64 * 20;
        w.write_all(&(1_700_000_000 + (us / 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&((us % 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(&f)?;
    }
    w.flush()
}

fn media(track: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), FIRST_PORT + track as u16)
}

/// An engine with every track bound (two per call), its worker pinned to
/// the last CPU when there are several.
fn engine(sizes: &Sizes, dir: &Path) -> (Engine, Vec<WorkerCore>) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = DataplaneConfig {
        port_range: PortRange::new(FIRST_PORT, FIRST_PORT + sizes.tracks as u16 - 1)
            .expect("port range"),
        recordings_dir: dir.to_path_buf(),
        date_partitions: false,
        max_tracks: sizes.tracks + 16,
        // Room for every record of the run: a slow writer can never make
        // the worker drop (ring_full) or wait.
        ring_bytes: (sizes.total() * (64 + PAYLOAD)).max(1 << 20),
        worker_cores: if cpus > 1 { vec![cpus - 1] } else { Vec::new() },
        ..DataplaneConfig::default()
    };
    let (engine, cores) = Engine::start(config).expect("engine");
    let mut call = None;
    for t in 0..sizes.tracks {
        if t % 2 == 0 {
            call = Some(engine.open_call(CallSetup::default()).expect("call"));
        }
        let Some(c) = call.as_ref() else { continue };
        engine
            .add_track(
                c,
                TrackSetup {
                    payload_types: vec![(0, Codec::Pcmu)],
                    bindings: vec![Binding::Port(media(t))],
                    ..TrackSetup::default()
                },
            )
            .expect("track");
    }
    (engine, cores)
}

/// CPU time of this process's thread named `name`, in ns.
fn thread_cpu_ns(name: &str) -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return schedstat(&task.path().join("schedstat"));
        }
    }
    None
}

fn schedstat(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `RcvbufErrors` of `/proc/net/snmp`: datagrams the kernel dropped because
/// a socket's buffer was full.
fn udp_rcvbuf_errors() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

struct Run {
    packets: u64,
    drops: u64,
    wall: Duration,
    worker_cpu: Duration,
}

impl Run {
    fn per_core_mpps(&self) -> f64 {
        self.packets as f64 / self.worker_cpu.as_secs_f64() / 1e6
    }

    fn wall_mpps(&self) -> f64 {
        self.packets as f64 / self.wall.as_secs_f64() / 1e6
    }
}

/// Waits until the worker has taken every packet; returns the wall time
/// since `start` and the worker's CPU time.
fn wait_done(engine: &Engine, total: u64, start: Instant) -> (Duration, Duration, Counters) {
    let deadline = start + Duration::from_secs(120);
    loop {
        let c = engine.worker_counters()[0];
        if c.rx_packets >= total {
            let wall = start.elapsed();
            let cpu = thread_cpu_ns("mf-worker-0").unwrap_or(0);
            return (wall, Duration::from_nanos(cpu), c);
        }
        assert!(
            Instant::now() < deadline,
            "the worker stalled at {} of {total} packets: {c:?}",
            c.rx_packets
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn check_counters(what: &str, c: &Counters, total: u64) -> u64 {
    let dropped: u64 = c.drops.iter().sum();
    assert_eq!(c.rx_packets, total, "{what}: {c:?}");
    assert_eq!(c.recorded, total, "{what}: every packet recorded: {c:?}");
    assert_eq!(dropped, 0, "{what}: zero drops: {c:?}");
    dropped
}

fn socket_run(sizes: &Sizes, dir: &Path) -> (Run, Duration) {
    let total = sizes.total() as u64;
    let (engine, cores) = engine(sizes, dir);
    let (backend, sources) =
        SocketBackend::with_config(1, SocketConfig::default()).expect("sockets");
    for t in 0..sizes.tracks {
        backend.open(media(t), 0).expect("open media socket");
    }
    // Fill the sockets before the worker runs: it then drains a backlog.
    let before = udp_rcvbuf_errors();
    let sender = UdpSocket::bind("127.0.0.1:0").expect("sender socket");
    let send_cpu0 = schedstat(Path::new("/proc/thread-self/schedstat")).unwrap_or(0);
    let mut buf = [0u8; RTP_LEN];
    for i in 0..sizes.total() {
        let (track, seq, ts) = sizes.packet(i);
        rtp(track, seq, ts, &mut buf);
        sender.send_to(&buf, media(track)).expect("send");
    }
    let send_cpu = schedstat(Path::new("/proc/thread-self/schedstat")).unwrap_or(0) - send_cpu0;
    let overflow = udp_rcvbuf_errors() - before;
    assert_eq!(
        overflow, 0,
        "socket buffers overflowed while filling: lower MF_BENCH_PACKETS"
    );
    let start = Instant::now();
    engine.spawn_workers(cores, sources).expect("worker");
    let (wall, cpu, c) = wait_done(&engine, total, start);
    let drops = check_counters("socket", &c, total) + (udp_rcvbuf_errors() - before);
    drop(engine.shutdown());
    drop(backend);
    (
        Run {
            packets: total,
            drops,
            wall,
            worker_cpu: cpu,
        },
        Duration::from_nanos(send_cpu),
    )
}

fn dpdk_run(sizes: &Sizes, dir: &Path, eal: &Eal, pool: &Mempool, port_name: &str) -> Run {
    let total = sizes.total() as u64;
    let (engine, cores) = engine(sizes, dir);
    let config = PortConfig {
        n_rx_queues: 1,
        n_tx_queues: 1,
        rx_desc: 1024,
        tx_desc: 256,
        ..PortConfig::default()
    };
    let mut port = Port::configure_with(port_name, &config, pool).expect("configure net_pcap");
    port.start().expect("start port");
    let stop: Arc<AtomicBool> = engine.shared().stop.clone();
    let source =
        DpdkSource::from_queue(port.rx_queue(0).expect("rx queue"), eal.clone()).with_stop(stop);
    let start = Instant::now();
    engine.spawn_workers(cores, vec![source]).expect("worker");
    let (wall, cpu, c) = wait_done(&engine, total, start);
    let mut drops = check_counters("dpdk", &c, total);
    let stats = port.stats().expect("port stats");
    drops += stats.imissed + stats.ierrors + stats.rx_nombuf;
    assert_eq!(
        stats.imissed + stats.ierrors + stats.rx_nombuf,
        0,
        "{stats:?}"
    );
    drop(engine.shutdown());
    drop(port);
    Run {
        packets: total,
        drops,
        wall,
        worker_cpu: cpu,
    }
}

fn median(mut v: Vec<Run>) -> Run {
    v.sort_by(|a, b| a.per_core_mpps().total_cmp(&b.per_core_mpps()));
    let mid = v.len() / 2;
    v.swap_remove(mid)
}

/// Removes the bench's scratch folder and DPDK's runtime folder.
struct Cleanup {
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; filters are not supported.
    let sizes = Sizes {
        tracks: env_usize("MF_BENCH_TRACKS", 1000).min(4000),
        per_track: env_usize("MF_BENCH_PACKETS", 1000).min(65_000),
        runs: env_usize("MF_BENCH_RUNS", 5),
    };
    let scratch_root = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let pid = std::process::id();
    let scratch = scratch_root.join(format!("mf-bench-{pid}"));
    let prefix = format!("mf-bench-{pid}");
    let _cleanup = Cleanup {
        dirs: vec![
            scratch.clone(),
            PathBuf::from("/var/run/dpdk").join(&prefix),
            PathBuf::from("/tmp/dpdk").join(&prefix),
        ],
    };
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    let pcap = scratch.join("traffic.pcap");
    write_capture(&pcap, &sizes).expect("write the capture");

    // One net_pcap port per DPDK run: a pcap port reads its file once.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut eal_args: Vec<String> = [
        "--no-huge",
        "--no-pci",
        "-m",
        "512",
        "--no-telemetry",
        "--log-level=lib.eal:notice",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    eal_args.push(format!("--lcores=0@(0-{})", cpus - 1));
    eal_args.push(format!("--file-prefix={prefix}"));
    for r in 0..sizes.runs {
        eal_args.push(format!("--vdev=net_pcap{r},rx_pcap={}", pcap.display()));
    }
    let eal = Eal::init(&eal_args).expect("EAL init (run as root)");
    let pool = Mempool::new(&eal, "bench", 8191, 256, None).expect("mempool");

    println!(
        "mediafork dpdk_vs_socket: {} tracks x {} packets = {} RTP packets (PCMU 20 ms, 214-byte frames), \
         1 worker{}, {} runs per backend",
        sizes.tracks,
        sizes.per_track,
        sizes.total(),
        if cpus > 1 {
            format!(" pinned to CPU {}", cpus - 1)
        } else {
            String::new()
        },
        sizes.runs
    );
    let (mut sockets, mut dpdk, mut send_cpu) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..sizes.runs {
        let dir = scratch.join(format!("socket-{r}"));
        let (run, sent) = socket_run(&sizes, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "run {r}: socket {:.2} Mpps/core ({:.3} s worker CPU)",
            run.per_core_mpps(),
            run.worker_cpu.as_secs_f64()
        );
        sockets.push(run);
        send_cpu.push(sent);
        let dir = scratch.join(format!("dpdk-{r}"));
        let run = dpdk_run(&sizes, &dir, &eal, &pool, &format!("net_pcap{r}"));
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "run {r}: dpdk   {:.2} Mpps/core ({:.3} s worker CPU)",
            run.per_core_mpps(),
            run.worker_cpu.as_secs_f64()
        );
        dpdk.push(run);
    }
    send_cpu.sort();
    let kernel_us = send_cpu[send_cpu.len() / 2].as_secs_f64() * 1e6 / sizes.total() as f64;
    let (s, d) = (median(sockets), median(dpdk));

    println!();
    println!(
        "| backend | packets | drops | worker CPU (s) | Mpps per worker core | wall (s) | wall Mpps |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, r) in [
        ("socket (kernel UDP, recvmmsg)", &s),
        ("dpdk (net_pcap)", &d),
    ] {
        println!(
            "| {name} | {} | {} | {:.3} | {:.2} | {:.3} | {:.2} |",
            r.packets,
            r.drops,
            r.worker_cpu.as_secs_f64(),
            r.per_core_mpps(),
            r.wall.as_secs_f64(),
            r.wall_mpps()
        );
    }
    println!();
    println!(
        "ratio dpdk / socket, packets per second per worker core: {:.2}x",
        d.per_core_mpps() / s.per_core_mpps()
    );
    println!(
        "per packet on the worker core: socket {:.0} ns, dpdk {:.0} ns",
        1e3 / s.per_core_mpps(),
        1e3 / d.per_core_mpps()
    );
    println!(
        "not on the socket worker: the kernel's send + loopback receive path, {kernel_us:.2} us per packet on the sending thread"
    );
    drop(pool);
    drop(eal);
}
