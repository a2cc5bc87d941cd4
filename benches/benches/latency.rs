//! End-to-end latency from a packet's arrival to its audio in the writer
//! (issue 6, benchmark 3), with real-time traffic over kernel sockets.
//!
//! An engine with the socket backend (one worker, one writer, the
//! production defaults: `reorder_window` 200 ms, `flush_interval` 1 s)
//! records K calls × 2 tracks, each track its own UDP socket on 127.0.0.1.
//! A sender thread sends every stream at real-time pace (PCMU, 20 ms, 50
//! packets/s), the streams spread evenly over each 20 ms period, for a
//! warm-up and then the measured seconds. Three figures per load:
//!
//! 1. **placement** (measured): `Engine::take_writer_latency`, recorded by
//!    the writer for every audio record when it places the decoded samples
//!    in the track's timeline, from the packet's `arrival_ns` (the socket
//!    source's clock read right after `recvmmsg`). It covers the worker
//!    (parse, lookup, ring copy), the ring, the writer's polling (it sleeps
//!    1 ms when it finds nothing) and the G.711 decode.
//! 2. **to the WAV buffer** (computed): placed audio waits in the timeline
//!    until audio 200 ms (`reorder_window`) further on has been placed, then
//!    moves to the track's `out` buffer. So arrival → `out` = placement
//!    latency of the packet 10 packets later + 200 ms of sender time. The
//!    `out` buffer is private to the writer, so it is not observed.
//! 3. **to the WAV file** (measured): `out` is written to the file (one
//!    `pwrite` into the page cache) at every flush (`flush_interval`). A
//!    monitor thread polls the size of up to 64 WAV files every 1 ms; when
//!    a file grows, every packet now complete in it gets `seen - sent`, its
//!    send time being taken by the sender right before `send_to`. This is
//!    arrival → bytes in the file, with up to ~1 ms of polling delay, and
//!    includes the reorder hold and the wait for the next flush.
//!
//! A second configuration at one load sets `flush_interval` to 10 ms, so
//! that the WAV-file figure isolates the reorder hold (to within 10 ms).
//!
//! Run: `cargo bench -p mediafork-benches --bench latency`
//! Options (after `--`): `--loads 100,1000,5000` (streams), `--duration S`
//! (measured seconds, 10), `--warmup S` (3), `--fast-flush-load N` (1000;
//! 0 skips it), `--first-port P` (2000; each run takes its own range of
//! streams + 200 ports above it), `--json FILE`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediafork_dataplane::backend::SocketBackend;
use mediafork_dataplane::codec::Codec;
use mediafork_dataplane::config::{DataplaneConfig, PortRange};
use mediafork_dataplane::engine::{Binding, CallHandle, CallSetup, Engine, TrackSetup};
use mediafork_dataplane::hdrhistogram::Histogram;
use mediafork_dataplane::recording::meta::now_ns;
use mediafork_dataplane::DropReason;

/// First media port (`--first-port`): below 10000, so neither Linux's
/// ephemeral range (32768-60999) nor the `capacity` bench's recorders
/// (10000-32766) share a port with this bench. Busy ports are skipped.
const FIRST_PORT: u16 = 2_000;
const PTIME: Duration = Duration::from_millis(20);
const SAMPLES_PER_PACKET: u64 = 160;
const PAYLOAD: usize = 160;
const RTP_LEN: usize = 12 + PAYLOAD;
const WAV_HEADER: u64 = 44;
/// WAV files watched per run.
const MONITORED: usize = 64;
const MONITOR_POLL: Duration = Duration::from_millis(1);

struct Opts {
    loads: Vec<usize>,
    duration: Duration,
    warmup: Duration,
    fast_flush_load: usize,
    json: Option<PathBuf>,
    first_port: u16,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        loads: vec![100, 1000, 5000],
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(3),
        fast_flush_load: 1000,
        json: None,
        first_port: FIRST_PORT,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--loads" => {
                o.loads = val()
                    .split(',')
                    .map(|s| s.trim().parse().expect("--loads: numbers"))
                    .collect()
            }
            "--duration" => o.duration = Duration::from_secs_f64(val().parse().expect("secs")),
            "--warmup" => o.warmup = Duration::from_secs_f64(val().parse().expect("secs")),
            "--fast-flush-load" => o.fast_flush_load = val().parse().expect("streams"),
            "--json" => o.json = Some(PathBuf::from(val())),
            "--first-port" => o.first_port = val().parse().expect("port"),
            // `cargo bench` passes `--bench`; filters are not supported.
            _ => {}
        }
    }
    for l in &mut o.loads {
        // Two tracks per call, and room in the port range / fd limit.
        *l = (*l).clamp(2, 8000) & !1;
    }
    o
}

/// Percentiles of one histogram, in µs.
#[derive(Clone, Copy, Debug, Default)]
struct Pct {
    count: u64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Pct {
    fn of(h: &Histogram<u64>) -> Pct {
        let q = |x: f64| h.value_at_quantile(x) as f64 / 1e3;
        Pct {
            count: h.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: h.max() as f64 / 1e3,
        }
    }

    /// Shift by `us` (a constant hold).
    fn plus(self, us: f64) -> Pct {
        Pct {
            p50: self.p50 + us,
            p90: self.p90 + us,
            p99: self.p99 + us,
            p999: self.p999 + us,
            max: self.max + us,
            ..self
        }
    }

    fn json(&self) -> String {
        format!(
            "{{\"count\": {}, \"p50_us\": {:.1}, \"p90_us\": {:.1}, \"p99_us\": {:.1}, \"p999_us\": {:.1}, \"max_us\": {:.1}}}",
            self.count, self.p50, self.p90, self.p99, self.p999, self.max
        )
    }
}

struct LoadResult {
    streams: usize,
    flush: Duration,
    reorder: Duration,
    placement: Pct,
    to_out: Pct,
    to_file: Pct,
    sender_lag: Pct,
    sent: u64,
    recorded: u64,
    drops: u64,
    /// Drops by reason, e.g. `ring_full 120`.
    drop_reasons: String,
    send_errors: u64,
    wav_ok: usize,
    wav_checked: usize,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

fn rtp(stream: usize, seq: u16, ts: u32, out: &mut [u8; RTP_LEN]) {
    out[0] = 0x80;
    out[1] = 0; // PCMU
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&ts.to_be_bytes());
    out[8..12].copy_from_slice(&(0x2000_0000u32 + stream as u32).to_be_bytes());
    for (k, b) in out[12..].iter_mut().enumerate() {
        *b = (k as u8).wrapping_add(seq as u8) | 0x80;
    }
}

struct SenderOut {
    lag: Histogram<u64>,
    /// Per monitored stream, send time (ns since the epoch) of each packet.
    send_ns: Vec<Vec<u64>>,
    sent: u64,
    errors: u64,
}

/// Every stream at 50 packets/s, stream `i` offset by `i/n` of a period.
fn send(addrs: &[SocketAddr], packets: usize, monitored: &[usize]) -> SenderOut {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("sender socket");
    let n = addrs.len();
    let mut mon_of = vec![usize::MAX; n];
    for (m, &s) in monitored.iter().enumerate() {
        mon_of[s] = m;
    }
    let mut out = SenderOut {
        lag: histogram(),
        send_ns: vec![Vec::with_capacity(packets); monitored.len()],
        sent: 0,
        errors: 0,
    };
    let mut buf = [0u8; RTP_LEN];
    let t0 = Instant::now() + Duration::from_millis(5);
    for k in 0..packets {
        let period = t0 + PTIME * k as u32;
        for (i, addr) in addrs.iter().enumerate() {
            let due = period + PTIME * i as u32 / n as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            rtp(
                i,
                k as u16,
                (k as u64 * SAMPLES_PER_PACKET) as u32,
                &mut buf,
            );
            let at = now_ns();
            match sock.send_to(&buf, addr) {
                Ok(_) => out.sent += 1,
                Err(_) => out.errors += 1,
            }
            out.lag
                .saturating_record(Instant::now().saturating_duration_since(due).as_nanos() as u64);
            if mon_of[i] != usize::MAX {
                out.send_ns[mon_of[i]].push(at);
            }
        }
    }
    out
}

/// Polls the size of `files` until `stop`; returns (time seen, size) per file.
fn monitor(files: &[PathBuf], stop: &AtomicBool) -> Vec<Vec<(u64, u64)>> {
    let mut seen: Vec<Vec<(u64, u64)>> = vec![Vec::new(); files.len()];
    let mut last = vec![0u64; files.len()];
    while !stop.load(Ordering::Relaxed) {
        for (i, f) in files.iter().enumerate() {
            let Ok(m) = std::fs::metadata(f) else {
                continue;
            };
            if m.len() != last[i] {
                last[i] = m.len();
                seen[i].push((now_ns(), m.len()));
            }
        }
        std::thread::sleep(MONITOR_POLL);
    }
    seen
}

/// Latency from send to the WAV file for packets sent in `[from, to]`.
fn file_latency(send_ns: &[Vec<u64>], seen: &[Vec<(u64, u64)>], from: u64, to: u64) -> Pct {
    let mut h = histogram();
    for (sends, obs) in send_ns.iter().zip(seen) {
        let mut done = 0usize;
        for &(t, len) in obs {
            let complete = (len.saturating_sub(WAV_HEADER) / 2 / SAMPLES_PER_PACKET) as usize;
            for &s in sends.iter().take(complete).skip(done) {
                if (from..=to).contains(&s) {
                    h.saturating_record(t.saturating_sub(s));
                }
            }
            done = done.max(complete);
        }
    }
    Pct::of(&h)
}

fn run_load(
    streams: usize,
    flush: Duration,
    opts: &Opts,
    scratch: &Path,
    next_port: &mut u16,
) -> LoadResult {
    let dir = scratch.join(format!("load-{streams}-{}ms", flush.as_millis()));
    let reorder = DataplaneConfig::default().reorder_window;
    // A port range with slack for ports other processes may hold; runs use
    // fresh ports so no socket of an earlier run is in the way.
    let lo = *next_port;
    let hi = lo.saturating_add(streams as u16 + 200);
    *next_port = hi.saturating_add(1);
    let config = DataplaneConfig {
        port_range: PortRange::new(lo, hi).expect("port range"),
        recordings_dir: dir.clone(),
        date_partitions: false,
        max_tracks: streams + 16,
        flush_interval: flush,
        ..DataplaneConfig::default()
    };
    let (engine, cores) = Engine::start(config).expect("engine");
    let (backend, sources) = SocketBackend::new(1).expect("socket backend");
    let mut addrs = Vec::with_capacity(streams);
    for port in lo..=hi {
        if addrs.len() == streams {
            break;
        }
        let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        if backend.open(a, 0).is_ok() {
            addrs.push(a);
        }
    }
    assert_eq!(addrs.len(), streams, "not enough free ports in {lo}-{hi}");
    let mut calls: Vec<CallHandle> = Vec::new();
    let mut files = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        if i % 2 == 0 {
            calls.push(
                engine
                    .open_call(CallSetup {
                        source: "rtp".into(),
                        started_at_ns: now_ns(),
                        ..CallSetup::default()
                    })
                    .expect("call"),
            );
        }
        let call = calls.last().expect("a call");
        engine
            .add_track(
                call,
                TrackSetup {
                    payload_types: vec![(0, Codec::Pcmu)],
                    bindings: vec![Binding::Port(*a)],
                    ..TrackSetup::default()
                },
            )
            .expect("track");
        files.push(call.dir.join(format!("track-{}.wav", i % 2)));
    }
    engine.spawn_workers(cores, sources).expect("worker");
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.writer_stats()[0].open_tracks < streams as u64 {
        assert!(Instant::now() < deadline, "writer did not open the tracks");
        std::thread::sleep(Duration::from_millis(10));
    }

    let step = (streams / MONITORED.min(streams)).max(1);
    let monitored: Vec<usize> = (0..streams).step_by(step).take(MONITORED).collect();
    let mon_files: Vec<PathBuf> = monitored.iter().map(|&s| files[s].clone()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let mon = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("bench-monitor".into())
            .spawn(move || monitor(&mon_files, &stop))
            .expect("monitor thread")
    };
    let packets = ((opts.warmup + opts.duration).as_secs_f64() / PTIME.as_secs_f64()) as usize;
    let sender = {
        let addrs = addrs.clone();
        let monitored = monitored.clone();
        std::thread::Builder::new()
            .name("bench-sender".into())
            .spawn(move || send(&addrs, packets, &monitored))
            .expect("sender thread")
    };
    std::thread::sleep(opts.warmup);
    // Writers merge their samples every flush: what is taken here is the
    // warm-up up to the last merge.
    drop(engine.take_writer_latency());
    let measure_from = now_ns();
    let sent = sender.join().expect("sender");
    let end_ns = now_ns();
    // Every measured packet through the reorder window and a flush.
    std::thread::sleep(flush + reorder + Duration::from_millis(300));
    let placement = engine.take_writer_latency();
    stop.store(true, Ordering::Relaxed);
    let seen = mon.join().expect("monitor");
    // The last packets never pass the reorder window (nothing comes after
    // them); leave out what was sent in the last window before the end.
    let to_file = file_latency(
        &sent.send_ns,
        &seen,
        measure_from,
        end_ns.saturating_sub((reorder + PTIME * 2).as_nanos() as u64),
    );
    let placement = Pct::of(&placement);
    let to_out = placement.plus(reorder.as_secs_f64() * 1e6);

    for c in &calls {
        engine.end_call(c, now_ns()).expect("end call");
    }
    for a in &addrs {
        let _ = backend.close(*a);
    }
    let counters = engine.worker_counters()[0];
    let closed = {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut n = 0;
        while n < calls.len() && Instant::now() < deadline {
            if engine.recv_closed(Duration::from_millis(100)).is_some() {
                n += 1;
            }
        }
        n
    };
    drop(engine.shutdown());
    drop(backend);
    // Sanity: every monitored track's WAV holds exactly what was sent.
    let want = WAV_HEADER + packets as u64 * SAMPLES_PER_PACKET * 2;
    let wav_ok = monitored
        .iter()
        .filter(|&&s| std::fs::metadata(&files[s]).is_ok_and(|m| m.len() == want))
        .count();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "  {streams} streams, flush {} ms: {closed}/{} calls closed",
        flush.as_millis(),
        calls.len()
    );
    LoadResult {
        streams,
        flush,
        reorder,
        placement,
        to_out,
        to_file,
        sender_lag: Pct::of(&sent.lag),
        sent: sent.sent,
        recorded: counters.recorded,
        drops: counters.drops.iter().sum(),
        drop_reasons: DropReason::ALL
            .iter()
            .filter(|r| counters.drops[r.index()] > 0)
            .map(|r| format!("{} {}", r.name(), counters.drops[r.index()]))
            .collect::<Vec<_>>()
            .join(", "),
        send_errors: sent.errors,
        wav_ok,
        wav_checked: monitored.len(),
    }
}

fn ms(us: f64) -> String {
    format!("{:.1}", us / 1e3)
}

fn main() {
    let opts = parse_opts();
    let scratch_root = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let scratch = scratch_root.join(format!("mf-latency-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    println!(
        "mediafork latency: socket backend on 127.0.0.1, 1 worker, 1 writer, PCMU 20 ms at real-time pace, \
         {} s warm-up + {} s measured per load; WAV files in {}",
        opts.warmup.as_secs_f64(),
        opts.duration.as_secs_f64(),
        scratch_root.display()
    );
    let mut runs = Vec::new();
    let mut next_port = opts.first_port;
    let default_flush = DataplaneConfig::default().flush_interval;
    for &l in &opts.loads {
        eprintln!("load {l} streams...");
        runs.push(run_load(l, default_flush, &opts, &scratch, &mut next_port));
    }
    if opts.fast_flush_load > 0 {
        let l = opts.fast_flush_load.clamp(2, 8000) & !1;
        eprintln!("load {l} streams, flush_interval 10 ms...");
        runs.push(run_load(
            l,
            Duration::from_millis(10),
            &opts,
            &scratch,
            &mut next_port,
        ));
    }
    let _ = std::fs::remove_dir_all(&scratch);

    println!();
    println!("Arrival -> audio placed in the track timeline (writer histogram), µs:");
    println!();
    println!("| streams | calls | pps | flush | samples | p50 | p90 | p99 | p99.9 | max | drops | sender lag p99 (µs) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &runs {
        let p = &r.placement;
        println!(
            "| {} | {} | {} | {} ms | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.0} |",
            r.streams,
            r.streams / 2,
            r.streams * 50,
            r.flush.as_millis(),
            p.count,
            p.p50,
            p.p90,
            p.p99,
            p.p999,
            p.max,
            r.drops,
            r.sender_lag.p99
        );
    }
    println!();
    println!("Arrival -> bytes in the WAV buffer / file, ms:");
    println!();
    println!("| streams | flush | to `out` buffer p50 / p99 / p99.9 (computed: placement + reorder window) | to WAV file p50 / p90 / p99 / p99.9 / max (measured) | packets timed |");
    println!("|---:|---:|---|---|---:|");
    for r in &runs {
        let (o, f) = (&r.to_out, &r.to_file);
        println!(
            "| {} | {} ms | {} / {} / {} | {} / {} / {} / {} / {} | {} |",
            r.streams,
            r.flush.as_millis(),
            ms(o.p50),
            ms(o.p99),
            ms(o.p999),
            ms(f.p50),
            ms(f.p90),
            ms(f.p99),
            ms(f.p999),
            ms(f.max),
            f.count
        );
    }
    println!();
    for r in &runs {
        if r.wav_ok != r.wav_checked || r.drops > 0 || r.send_errors > 0 {
            println!(
                "warning: {} streams, flush {} ms: {} of {} watched WAVs complete, {} drops ({}), {} send errors, {} sent, {} recorded",
                r.streams,
                r.flush.as_millis(),
                r.wav_ok,
                r.wav_checked,
                r.drops,
                r.drop_reasons,
                r.send_errors,
                r.sent,
                r.recorded
            );
        }
    }

    if let Some(path) = &opts.json {
        let mut s = String::from("{\n  \"bench\": \"latency\",\n  \"runs\": [\n");
        for (i, r) in runs.iter().enumerate() {
            let _ = write!(
                s,
                "    {{\"streams\": {}, \"calls\": {}, \"packets_per_second\": {}, \"flush_interval_ms\": {}, \
                 \"reorder_window_ms\": {}, \"sent\": {}, \"recorded\": {}, \"drops\": {}, \"drop_reasons\": \"{}\", \"send_errors\": {}, \
                 \"wav_complete\": {}, \"wav_checked\": {},\n     \"placement\": {},\n     \"to_out_buffer_computed\": {},\n     \
                 \"to_wav_file\": {},\n     \"sender_lag\": {}}}{}\n",
                r.streams,
                r.streams / 2,
                r.streams * 50,
                r.flush.as_millis(),
                r.reorder.as_millis(),
                r.sent,
                r.recorded,
                r.drops,
                r.drop_reasons,
                r.send_errors,
                r.wav_ok,
                r.wav_checked,
                r.placement.json(),
                r.to_out.json(),
                r.to_file.json(),
                r.sender_lag.json(),
                if i + 1 < runs.len() { "," } else { "" }
            );
        }
        s.push_str("  ]\n}\n");
        std::fs::write(path, s).expect("write --json file");
        println!("wrote {}", path.display());
    }
}
