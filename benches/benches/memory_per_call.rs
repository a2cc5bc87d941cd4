//! Memory per active two-track call (issue 6, benchmark 4). Goal: at most
//! 64 KiB per call, excluding the page cache.
//!
//! Starts `mediafork run` (the release binary; built when missing) with
//! the socket backend, one worker and one writer, recordings in a temp
//! folder, then brings up calls in steps with the loadgen library (real
//! SIPREC INVITEs from 127.0.0.1, two PCMU streams each at real-time pace)
//! and keeps them up. At 0 calls and at each step it reads the server's
//! `/proc/PID/status`:
//!
//! - `RssAnon` is the figure: anonymous (heap, stacks) resident memory. It
//!   excludes file-backed pages, and the page cache holding the WAV files
//!   is not part of any process's RSS at all.
//! - `VmRSS` (= RssAnon + RssFile + RssShmem) is printed beside it.
//!
//! Per call = ΔRssAnon / Δcalls, from 0 calls and between steps (the
//! marginal cost, free of fixed costs that appear with the first traffic,
//! such as the worker → writer ring being touched). Each step is read
//! twice: a few seconds after its calls are up, and after the INVITE server
//! transactions have expired (Timer L, 64·T1 = 32 s after the 200 OK), which
//! is the steady state of a long call.
//!
//! Kernel memory is not in RSS: socket buffers (`/proc/net/sockstat` UDP
//! `mem`, system-wide, printed for reference), socket and file structures.
//!
//! The bench also prints the sizes of the data plane's public per-track
//! types, for the bottom-up estimate in `benches/LATENCY_MEMORY.md`.
//!
//! Run: `cargo bench -p mediafork-benches --bench memory_per_call`
//! Options (after `--`): `--steps 200,500,1000` (cumulative calls),
//! `--settle S` (5), `--hold S` (40, after the last call of a step is up;
//! 0 skips the second reading), `--bin PATH` (or `MEDIAFORK_BIN`),
//! `--rate CPS` (new calls per second in a ramp, 100), `--rtp-ports LO-HI`
//! (61000-65499: 1,125 calls),
//! `--mode on_demand` (calls received but nothing stored: the difference
//! to the default `always` is the writer's audio buffers), `--json FILE`.
//!
//! Each reading also gives the recorder's drops so far by reason and its
//! ring fill (`/v1/stats`): a step where the machine could not keep up
//! (drops, a full ring) holds more audio in the writer than a healthy one.
//! And it splits RssAnon by mapping (`/proc/PID/smaps`): the main heap,
//! glibc's per-thread arenas (64 MiB reservations), and the rest.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mediafork_dataplane::recording::meta::{CallMeta, SegmentMeta, TrackMeta};
use mediafork_dataplane::report::TrackReport;
use mediafork_dataplane::specs::TrackSpec;
use mediafork_dataplane::track::{TrackCold, TrackState};
use mediafork_dataplane::writer::timeline::Timeline;
use mediafork_dataplane::writer::wav::WavFile;
use mediafork_loadgen::{LoadgenArgs, LoadgenError, Style, Summary};

/// Media ports of the recorder (`--rtp-ports`): above the ephemeral range
/// (32768-60999) and clear of the `capacity` bench (10000-32766) and the
/// `latency` bench (2000-9999); 4,500 ports, 1,125 calls at 4 ports each.
const RTP_PORTS: (u16, u16) = (61_000, 65_499);
/// Calls the port range can carry.
fn max_calls(ports: (u16, u16)) -> usize {
    (usize::from(ports.1) - usize::from(ports.0) + 1) / 4
}

struct Opts {
    steps: Vec<usize>,
    settle: Duration,
    hold: Duration,
    bin: Option<PathBuf>,
    json: Option<PathBuf>,
    /// `recordings.mode`: `always`, or `on_demand` (received, nothing
    /// stored: isolates the writer's audio buffers).
    mode: String,
    /// New calls per second while a step ramps up.
    rate: f64,
    rtp_ports: (u16, u16),
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        steps: vec![200, 500, 1000],
        settle: Duration::from_secs(5),
        hold: Duration::from_secs(40),
        bin: std::env::var_os("MEDIAFORK_BIN").map(PathBuf::from),
        json: None,
        mode: "always".into(),
        rate: 100.0,
        rtp_ports: RTP_PORTS,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--steps" => {
                o.steps = val()
                    .split(',')
                    .map(|s| s.trim().parse().expect("--steps: numbers"))
                    .collect()
            }
            "--settle" => o.settle = Duration::from_secs_f64(val().parse().expect("secs")),
            "--hold" => o.hold = Duration::from_secs_f64(val().parse().expect("secs")),
            "--bin" => o.bin = Some(PathBuf::from(val())),
            "--json" => o.json = Some(PathBuf::from(val())),
            "--mode" => o.mode = val(),
            "--rate" => o.rate = val().parse().expect("calls per second"),
            "--rtp-ports" => {
                let v = val();
                let (lo, hi) = v.split_once('-').expect("--rtp-ports LO-HI");
                o.rtp_ports = (lo.parse().expect("port"), hi.parse().expect("port"));
                assert!(o.rtp_ports.0 < o.rtp_ports.1, "--rtp-ports LO-HI");
            }
            // `cargo bench` passes `--bench`; filters are not supported.
            _ => {}
        }
    }
    let max = max_calls(o.rtp_ports);
    o.steps.retain(|&n| n > 0 && n <= max);
    o.steps.sort_unstable();
    o.steps.dedup();
    assert!(
        !o.steps.is_empty(),
        "--steps: 1 to {max} calls (4 ports per call in --rtp-ports)"
    );
    o
}

/// `<target>/release/mediafork`: next to this bench's `deps` folder, or
/// built there with cargo.
fn find_binary(opts: &Opts) -> PathBuf {
    if let Some(b) = &opts.bin {
        return b.clone();
    }
    let exe = std::env::current_exe().expect("current exe");
    // <target>/release/deps/memory_per_call-HASH
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let bin = target.join("release").join("mediafork");
    if !bin.exists() {
        eprintln!("building {} ...", bin.display());
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "mediafork-control",
                "--bin",
                "mediafork",
            ])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo build of mediafork failed");
    }
    bin
}

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").expect("udp bind");
        let port = u.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// GET `path` from the admin API; the JSON body.
fn http_get(addr: SocketAddr, path: &str) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    if !text.starts_with("HTTP/1.1 200") {
        return None;
    }
    // Content-Length or a single chunk: the JSON object is between the
    // first '{' and the last '}'.
    let body = text.split_once("\r\n\r\n")?.1;
    let json = &body[body.find('{')?..=body.rfind('}')?];
    serde_json::from_str(json).ok()
}

#[derive(Clone, Copy, Debug, Default)]
struct Rss {
    vm_rss_kib: u64,
    rss_anon_kib: u64,
    rss_file_kib: u64,
    rss_shmem_kib: u64,
    threads: u64,
}

fn read_rss(pid: u32) -> Rss {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let mut r = Rss::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let n: u64 = v
            .split_whitespace()
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        match k {
            "VmRSS" => r.vm_rss_kib = n,
            "RssAnon" => r.rss_anon_kib = n,
            "RssFile" => r.rss_file_kib = n,
            "RssShmem" => r.rss_shmem_kib = n,
            "Threads" => r.threads = n,
            _ => {}
        }
    }
    r
}

/// Pages of UDP socket buffer memory (system-wide), `/proc/net/sockstat`.
fn udp_mem_pages() -> u64 {
    let text = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("UDP:"))
        .and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.iter()
                .position(|w| *w == "mem")
                .and_then(|i| f.get(i + 1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The median of three readings a second apart.
fn sample_rss(pid: u32) -> Rss {
    let mut v: Vec<Rss> = (0..3)
        .map(|i| {
            if i > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            read_rss(pid)
        })
        .collect();
    v.sort_by_key(|r| r.rss_anon_kib);
    v[1]
}

struct Server {
    child: Child,
    admin: SocketAddr,
    sip: SocketAddr,
}

impl Server {
    fn start(bin: &Path, dir: &Path, mode: &str, ports: (u16, u16)) -> Server {
        let sip = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port());
        let admin = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port());
        let rec = dir.join("recordings");
        let config = dir.join("mediafork.toml");
        std::fs::write(
            &config,
            format!(
                "[sip]\nallowed_sources = [\"127.0.0.1\"]\n\n\
                 [media]\naddress = \"127.0.0.1\"\nrtp_ports = \"{}-{}\"\nworkers = 1\nwriters = 1\n\n\
                 [recordings]\ndir = \"{}\"\nmode = \"{mode}\"\n\n\
                 [limits]\nmax_calls = {}\n\n\
                 [storage]\nwarn_free_percent = 0\ncritical_free_percent = 0\ncritical_free_bytes = 0\n\n\
                 [shutdown]\ngrace_period = \"0s\"\n\n\
                 [log]\nlevel = \"warn\"\n",
                ports.0,
                ports.1,
                rec.display(),
                max_calls(ports)
            ),
        )
        .expect("write config");
        let log = std::fs::File::create(dir.join("server.log")).expect("log file");
        let child = Command::new(bin)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--sip-listen")
            .arg(sip.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mediafork run");
        let mut s = Server { child, admin, sip };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(admin, "/v1/health").is_none() {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!(
                    "mediafork run exited ({st}): {}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "mediafork run did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn active_calls(&self) -> Option<u64> {
        http_get(self.admin, "/v1/status")?
            .get("active_calls")?
            .as_u64()
    }

    /// Worker drops and writer I/O errors from `/v1/stats`, as text.
    fn stats(&self) -> Option<serde_json::Value> {
        http_get(self.admin, "/v1/stats")
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Load = (Arc<AtomicBool>, JoinHandle<Result<Summary, LoadgenError>>);

/// `calls` more calls, kept up until stopped.
fn start_load(sip: SocketAddr, calls: usize, rate: f64) -> Load {
    let args = LoadgenArgs {
        target: Some(sip.to_string()),
        calls: calls as u32,
        rate,
        duration: Duration::from_secs(24 * 3600),
        total: None,
        codec: mediafork_loadgen::Codec::Pcmu,
        ptime: 20,
        style: Style::Generic,
        local_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        sip_port: 0,
        rtp_only: None,
        pcap: None,
        pcap_ports: "39500-43500".parse().expect("port range"),
        sockets: 4,
        tx: mediafork_loadgen::TxKind::Socket,
        dpdk_eal: None,
        dpdk_port: "0".into(),
        dst_mac: None,
        json: false,
        quiet: true,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::Builder::new()
        .name("bench-loadgen".into())
        .spawn(move || mediafork_loadgen::run_until(&args, &s))
        .expect("loadgen thread");
    (stop, h)
}

/// RssAnon split by mapping, KiB.
#[derive(Clone, Copy, Debug, Default)]
struct AnonSplit {
    /// `[heap]`: the main arena (brk).
    heap: u64,
    /// Anonymous mappings inside 64 MiB reservations: glibc's per-thread
    /// arenas (and large `mmap`ed blocks).
    arenas: u64,
    /// Everything else anonymous: stacks, small mmaps.
    other: u64,
}

fn anon_split(pid: u32) -> AnonSplit {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut out = AnonSplit::default();
    let mut kind = 0u8; // 0 none, 1 heap, 2 arena, 3 other
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping header: "start-end perms offset dev inode [path]".
            let f: Vec<&str> = line.split_whitespace().collect();
            let path = f.get(5).copied().unwrap_or("");
            let (lo, hi) = first.split_once('-').unwrap_or(("0", "0"));
            let lo = u64::from_str_radix(lo, 16).unwrap_or(0);
            let hi = u64::from_str_radix(hi, 16).unwrap_or(0);
            // glibc heaps are HEAP_MAX (64 MiB) aligned.
            let in_arena = lo % (64 << 20) == 0 || (hi - lo) >= (32 << 20);
            kind = match path {
                "[heap]" => 1,
                "" if in_arena => 2,
                "" | "[stack]" => 3,
                _ => 0,
            };
        } else if let Some(v) = line.strip_prefix("Anonymous:") {
            let n: u64 = v
                .split_whitespace()
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            match kind {
                1 => out.heap += n,
                2 => out.arenas += n,
                3 => out.other += n,
                _ => {}
            }
        }
    }
    out
}

/// Recorder counters from `/v1/stats`.
#[derive(Clone, Debug, Default)]
struct RecStats {
    rx_packets: u64,
    recorded: u64,
    drops: std::collections::BTreeMap<String, u64>,
    ring_used: u64,
    ring_capacity: u64,
}

impl RecStats {
    fn read(server: &Server) -> RecStats {
        let mut r = RecStats::default();
        let Some(v) = server.stats() else {
            return r;
        };
        for w in v
            .get("workers")
            .and_then(|w| w.as_array())
            .into_iter()
            .flatten()
        {
            let n = |k: &str| w.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
            r.rx_packets += n("rx_packets");
            r.recorded += n("recorded");
            r.ring_used += n("ring_used_bytes");
            r.ring_capacity += n("ring_capacity_bytes");
            if let Some(d) = w.get("drops").and_then(|d| d.as_object()) {
                for (k, x) in d {
                    *r.drops.entry(k.clone()).or_default() += x.as_u64().unwrap_or(0);
                }
            }
        }
        r
    }

    fn drop_total(&self) -> u64 {
        self.drops.values().sum()
    }

    fn drops_text(&self) -> String {
        let v: Vec<String> = self
            .drops
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if v.is_empty() {
            "0".into()
        } else {
            v.join(", ")
        }
    }
}

struct Reading {
    calls: usize,
    secs: f64,
    rss: Rss,
    split: AnonSplit,
    udp_kib: f64,
    stats: RecStats,
}

fn kib(v: f64) -> String {
    format!("{v:.1}")
}

fn main() {
    let opts = parse_opts();
    let bin = find_binary(&opts);
    let dir = std::env::temp_dir().join(format!("mf-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    println!(
        "mediafork memory_per_call: {} run, socket backend, 1 worker, 1 writer, recordings.mode = {}; \
         loadgen SIPREC calls from 127.0.0.1, 2 PCMU streams each at 50 packets/s, kept up; steps {:?}; \
         recordings in {}",
        bin.display(),
        opts.mode,
        opts.steps,
        dir.display()
    );
    let server = Server::start(&bin, &dir, &opts.mode, opts.rtp_ports);
    let pid = server.pid();
    std::thread::sleep(Duration::from_secs(2));
    let base = sample_rss(pid);
    let base_split = anon_split(pid);
    let base_udp = udp_mem_pages();
    eprintln!("0 calls: {base:?} {base_split:?}");
    let read = |calls: usize, since: Instant| {
        let rss = sample_rss(pid);
        let r = Reading {
            calls,
            secs: since.elapsed().as_secs_f64(),
            rss,
            split: anon_split(pid),
            udp_kib: (udp_mem_pages() as f64 - base_udp as f64) * 4.0,
            stats: RecStats::read(&server),
        };
        eprintln!(
            "{calls} calls, {:.0} s: {:?} {:?}, drops {}",
            r.secs,
            r.rss,
            r.split,
            r.stats.drops_text()
        );
        r
    };

    let mut loads: Vec<Load> = Vec::new();
    let mut readings: Vec<Reading> = Vec::new();
    let mut up = 0usize;
    for &target in &opts.steps {
        loads.push(start_load(server.sip, target - up, opts.rate));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let n = server.active_calls().unwrap_or(0) as usize;
            if n >= target {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {n} of {target} calls came up; see {}",
                dir.join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        up = target;
        let t_up = Instant::now();
        std::thread::sleep(opts.settle);
        readings.push(read(target, t_up));
        if opts.hold > opts.settle {
            std::thread::sleep(opts.hold.saturating_sub(t_up.elapsed()));
            readings.push(read(target, t_up));
        }
        let n = server.active_calls().unwrap_or(0);
        assert!(n as usize >= target, "calls dropped to {n} during the step");
    }
    for (stop, _) in &loads {
        stop.store(true, Ordering::Relaxed);
    }
    let mut summaries = Vec::new();
    for (_, h) in loads {
        match h.join().expect("loadgen thread") {
            Ok(s) => summaries.push(s),
            Err(e) => eprintln!("loadgen: {e}"),
        }
    }
    // Calls ended: what the process gives back.
    std::thread::sleep(Duration::from_secs(5));
    let after = sample_rss(pid);
    let remaining = server.active_calls().unwrap_or(0);
    server.stop();

    let failed: u64 = summaries.iter().map(|s| s.calls_failed).sum();
    let sent: u64 = summaries.iter().map(|s| s.packets_sent).sum();
    let send_errors: u64 = summaries.iter().map(|s| s.send_errors).sum();
    let late: u64 = summaries.iter().map(|s| s.late_sends).sum();
    let lag_p99 = summaries.iter().map(|s| s.lag_p99_us).max().unwrap_or(0);

    println!();
    println!(
        "Baseline (0 calls): VmRSS {} KiB, RssAnon {} KiB (heap {}, arenas {}, other {}), RssFile {} KiB, {} threads",
        base.vm_rss_kib,
        base.rss_anon_kib,
        base_split.heap,
        base_split.arenas,
        base_split.other,
        base.rss_file_kib,
        base.threads
    );
    println!();
    println!(
        "| calls | s after up | VmRSS (MiB) | RssAnon (MiB) | ΔRssAnon/call from 0 (KiB) | ΔRssAnon/call vs previous step (KiB) | \
         Δ/call: main heap / thread arenas / other (KiB) | recorder drops so far | ring fill | kernel UDP mem Δ (KiB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|---|---:|---:|");
    // Per reading: (from 0, marginal) KiB per call.
    let mut per_call: Vec<(f64, Option<f64>)> = Vec::new();
    for (k, r) in readings.iter().enumerate() {
        let from0 = (r.rss.rss_anon_kib as f64 - base.rss_anon_kib as f64) / r.calls as f64;
        // Marginal: the same reading (early/late) of the previous step.
        let per_step = if opts.hold > opts.settle { 2 } else { 1 };
        let marginal = k.checked_sub(per_step).map(|j| &readings[j]).and_then(|p| {
            (r.calls > p.calls).then(|| {
                (r.rss.rss_anon_kib as f64 - p.rss.rss_anon_kib as f64) / (r.calls - p.calls) as f64
            })
        });
        let c = r.calls as f64;
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {} | {} | {:.1} / {:.1} / {:.1} | {} | {:.0}% | {:.0} |",
            r.calls,
            r.secs,
            r.rss.vm_rss_kib as f64 / 1024.0,
            r.rss.rss_anon_kib as f64 / 1024.0,
            kib(from0),
            marginal.map_or("–".into(), kib),
            (r.split.heap as f64 - base_split.heap as f64) / c,
            (r.split.arenas as f64 - base_split.arenas as f64) / c,
            (r.split.other as f64 - base_split.other as f64) / c,
            r.stats.drops_text(),
            100.0 * r.stats.ring_used as f64 / r.stats.ring_capacity.max(1) as f64,
            r.udp_kib
        );
        per_call.push((from0, marginal));
    }
    println!();
    println!(
        "after the calls ended (+5 s, {remaining} still open): VmRSS {:.1} MiB, RssAnon {:.1} MiB",
        after.vm_rss_kib as f64 / 1024.0,
        after.rss_anon_kib as f64 / 1024.0
    );
    println!(
        "loadgen: {failed} calls failed, {sent} RTP packets sent, {send_errors} send errors, {late} sent > 1 ms late, \
         send lag p99 {lag_p99} µs"
    );
    let last = per_call.last().map_or(0.0, |p| p.0);
    println!(
        "goal <= 64 KiB per two-track call: {} ({:.1} KiB at {} calls, last reading, from 0 calls)",
        if last <= 64.0 { "met" } else { "missed" },
        last,
        readings.last().map_or(0, |r| r.calls)
    );
    println!();
    println!(
        "Sizes of the data plane's public per-track types (bytes; heap behind them not included):"
    );
    for (name, size) in [
        (
            "TrackState (worker, hot)",
            std::mem::size_of::<TrackState>(),
        ),
        ("TrackCold (worker, cold)", std::mem::size_of::<TrackCold>()),
        ("TrackSpec", std::mem::size_of::<TrackSpec>()),
        ("TrackReport", std::mem::size_of::<TrackReport>()),
        ("Timeline (writer)", std::mem::size_of::<Timeline>()),
        ("WavFile (writer)", std::mem::size_of::<WavFile>()),
        (
            "TrackMeta (writer, per track)",
            std::mem::size_of::<TrackMeta>(),
        ),
        ("SegmentMeta", std::mem::size_of::<SegmentMeta>()),
        (
            "CallMeta (writer, per call)",
            std::mem::size_of::<CallMeta>(),
        ),
    ] {
        println!("  {name}: {size}");
    }

    if let Some(path) = &opts.json {
        let mut s = String::from("{\n  \"bench\": \"memory_per_call\",\n");
        let _ = writeln!(s, "  \"mode\": \"{}\",", opts.mode);
        let _ = writeln!(
            s,
            "  \"baseline\": {{\"vm_rss_kib\": {}, \"rss_anon_kib\": {}, \"rss_file_kib\": {}, \"heap_kib\": {}, \
             \"arenas_kib\": {}, \"other_anon_kib\": {}, \"threads\": {}}},",
            base.vm_rss_kib,
            base.rss_anon_kib,
            base.rss_file_kib,
            base_split.heap,
            base_split.arenas,
            base_split.other,
            base.threads
        );
        s.push_str("  \"readings\": [\n");
        for (k, (r, (from0, marginal))) in readings.iter().zip(&per_call).enumerate() {
            let drops: Vec<String> = r
                .stats
                .drops
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            let _ = writeln!(
                s,
                "    {{\"calls\": {}, \"seconds_after_up\": {:.1}, \"vm_rss_kib\": {}, \"rss_anon_kib\": {}, \
                 \"rss_file_kib\": {}, \"heap_kib\": {}, \"arenas_kib\": {}, \"other_anon_kib\": {}, \
                 \"anon_kib_per_call_from_0\": {from0:.2}, \"anon_kib_per_call_marginal\": {}, \
                 \"kernel_udp_mem_delta_kib\": {:.0}, \"rx_packets\": {}, \"recorded\": {}, \"drops\": {{{}}}, \
                 \"drops_total\": {}, \"ring_used_bytes\": {}, \"ring_capacity_bytes\": {}}}{}",
                r.calls,
                r.secs,
                r.rss.vm_rss_kib,
                r.rss.rss_anon_kib,
                r.rss.rss_file_kib,
                r.split.heap,
                r.split.arenas,
                r.split.other,
                marginal.map_or("null".into(), |m| format!("{m:.2}")),
                r.udp_kib,
                r.stats.rx_packets,
                r.stats.recorded,
                drops.join(", "),
                r.stats.drop_total(),
                r.stats.ring_used,
                r.stats.ring_capacity,
                if k + 1 < readings.len() { "," } else { "" }
            );
        }
        s.push_str("  ],\n");
        let _ = writeln!(
            s,
            "  \"after_calls_ended\": {{\"vm_rss_kib\": {}, \"rss_anon_kib\": {}, \"still_open\": {remaining}}},",
            after.vm_rss_kib, after.rss_anon_kib
        );
        let _ = writeln!(
            s,
            "  \"loadgen\": {{\"calls_failed\": {failed}, \"packets_sent\": {sent}, \"send_errors\": {send_errors}, \
             \"late_sends\": {late}, \"lag_p99_us\": {lag_p99}}},"
        );
        let _ = writeln!(
            s,
            "  \"goal_kib_per_call\": 64, \"last_kib_per_call\": {last:.2}, \"goal_met\": {}",
            last <= 64.0
        );
        s.push_str("}\n");
        std::fs::write(path, s).expect("write --json file");
        println!("wrote {}", path.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
