//! Load generator pacing: can `mediafork-loadgen` send tens of thousands of
//! real-time RTP streams from one core, on time?
//!
//! The loadgen runs in RTP-only mode (no SIP; two PCMU 20 ms streams per
//! "call", 50 packets/s each) on a thread pinned to `--gen-core`, inside a
//! network namespace the bench makes (and deletes), towards one of two
//! targets:
//! - `discard`: an address on a veth link whose peer is down, with a
//!   permanent neighbour entry: the veth driver drops every frame at
//!   transmit (counted as TX dropped, no error to the sender). The sender
//!   pays its system calls, UDP/IP output and the driver hand-over, as
//!   towards a NIC, and nothing else: this is what the generator itself can
//!   do. (The `dummy` driver would do the same, but this machine's kernel
//!   has no `dummy` module.)
//! - `loopback`: a `recvmmsg` sink (epoll, bursts of 64) on 127.0.0.1,
//!   pinned to `--sink-core`. Over loopback the kernel's receive path (IP,
//!   UDP, socket queueing) runs in softirq on the *sending* core, so the
//!   generator's core pays it too: this is the set-up the capacity bench
//!   uses.
//! - `dpdk-null` (`--features dpdk`): `--tx dpdk` through DPDK's `net_null`
//!   driver, which frees each frame it is given. No system call and no
//!   kernel: this is the generator's own cost (timer wheel, frame build,
//!   UDP checksum, mbuf copy, burst hand-over) as in front of a NIC's
//!   transmit ring, minus the descriptor writes a real NIC adds. Each run is
//!   a child process (one EAL per process), pinned to `--gen-core`.
//!
//! Reported per run: packets/s achieved vs the target (streams × 50), send
//! errors, the sink's count (loopback), and the send lag from the timer
//! wheel (`Summary::lag_*`: a packet's due time to the return of the
//! `sendmmsg` that carried it) as p50 / p99 / max and the share of packets
//! more than 1 ms late. The generator's CPU is the process's minus the
//! sink thread's. Needs root (network namespace).
//!
//! `cargo bench -p mediafork-benches --bench loadgen_pacing -- --streams 10000,20000,40000`

use std::fs::File;
use std::net::UdpSocket;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use mediafork_loadgen::{LoadgenArgs, Summary};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{recvmmsg, setsockopt, sockopt, MsgFlags, MultiHeaders, SockaddrIn};
use nix::unistd::Pid;

#[derive(Parser, Debug)]
#[command(about = "mediafork-loadgen pacing from one core: achieved rate and send lag")]
struct Args {
    /// Stream counts (50 packets/s each).
    #[arg(long, value_delimiter = ',', default_value = "10000,20000,40000")]
    streams: Vec<u32>,
    /// Targets, in order at each count: discard, loopback, dpdk-null (the
    /// last needs `--features dpdk`).
    #[arg(long, value_delimiter = ',', default_value = "discard,loopback")]
    sinks: Vec<String>,
    /// Seconds each stream sends.
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// Stream pairs started per second (the ramp).
    #[arg(long, default_value_t = 5000.0)]
    rate: f64,
    /// Core of the generator.
    #[arg(long, default_value_t = 1)]
    gen_core: usize,
    /// Core of the loopback sink.
    #[arg(long, default_value_t = 0)]
    sink_core: usize,
    /// UDP sockets the generator sends from (`--sockets`).
    #[arg(long, default_value_t = 4)]
    sockets: usize,
    /// Sink ports (in the bench's own namespace, so no clash with the host).
    #[arg(long, default_value_t = 256)]
    sink_ports: u16,
    /// Also write the results here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, hide = true)]
    bench: bool,
    /// Internal: run one `dpdk-null` measurement of this many streams and
    /// print it as JSON (the parent starts one process per run).
    #[arg(long, hide = true)]
    dpdk_child: Option<u32>,
}

#[derive(Parser)]
struct LoadgenCli {
    #[command(flatten)]
    a: LoadgenArgs,
}

const NS_IP: &str = "10.251.0.1";
const DISCARD_IP: &str = "10.251.0.2";
const PORT0: u16 = 40_000;

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

struct Ns(String);

impl Ns {
    fn create() -> Result<Ns, String> {
        let name = format!("mfpace-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name])?;
        let ns = Ns(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"])?;
        // d1 stays down: veth drops what d0 transmits.
        ip(&[
            "-n", &ns.0, "link", "add", "d0", "type", "veth", "peer", "name", "d1",
        ])?;
        ip(&[
            "-n",
            &ns.0,
            "addr",
            "add",
            &format!("{NS_IP}/24"),
            "dev",
            "d0",
        ])?;
        ip(&["-n", &ns.0, "link", "set", "d0", "up"])?;
        ip(&[
            "-n",
            &ns.0,
            "neigh",
            "add",
            DISCARD_IP,
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            "d0",
            "nud",
            "permanent",
        ])?;
        Ok(ns)
    }

    /// Runs `f` on a thread in the namespace pinned to `core`.
    fn spawn<T: Send + 'static>(
        &self,
        core: usize,
        name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<Result<T, String>> {
        let path = PathBuf::from("/var/run/netns").join(&self.0);
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("setns: {e}"))?;
                let mut set = nix::sched::CpuSet::new();
                set.set(core).map_err(|e| e.to_string())?;
                nix::sched::sched_setaffinity(Pid::from_raw(0), &set)
                    .map_err(|e| format!("pin to core {core}: {e}"))?;
                Ok(f())
            })
            .expect("spawn")
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a stat line, in ticks.
fn ticks(stat: &str) -> f64 {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)
}

fn process_cpu(tck: f64) -> f64 {
    ticks(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default()) / tck
}

fn thread_cpu(tck: f64) -> f64 {
    ticks(&std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default()) / tck
}

/// Received packets and the sink thread's CPU seconds.
struct SinkResult {
    packets: u64,
    cpu: f64,
}

/// epoll + recvmmsg on `ports` sockets until `stop`.
fn sink(ports: u16, stop: Arc<AtomicBool>, ready: Arc<AtomicU64>, tck: f64) -> SinkResult {
    let c0 = thread_cpu(tck);
    let epoll = Epoll::new(EpollCreateFlags::empty()).expect("epoll");
    let mut socks = Vec::new();
    for i in 0..ports {
        let s = UdpSocket::bind(("127.0.0.1", PORT0 + i)).expect("bind sink port");
        s.set_nonblocking(true).expect("nonblocking");
        let _ = setsockopt(&s, sockopt::RcvBuf, &(4 << 20));
        epoll
            .add(
                s.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, u64::from(i)),
            )
            .expect("epoll add");
        socks.push(s);
    }
    ready.store(1, Ordering::SeqCst);
    let mut bufs = vec![[0u8; 256]; 64];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(64, None);
    let mut events = vec![EpollEvent::empty(); 64];
    let mut packets = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = epoll
            .wait(&mut events, EpollTimeout::from(100u16))
            .unwrap_or(0);
        for ev in &events[..n] {
            let s = &socks[ev.data() as usize];
            loop {
                let mut iovs: Vec<[std::io::IoSliceMut<'_>; 1]> = bufs
                    .iter_mut()
                    .map(|b| [std::io::IoSliceMut::new(&mut b[..])])
                    .collect();
                match recvmmsg(
                    s.as_raw_fd(),
                    &mut headers,
                    iovs.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                ) {
                    Ok(r) => {
                        let got = r.count() as u64;
                        packets += got;
                        if got < 64 {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
    }
    SinkResult {
        packets,
        cpu: thread_cpu(tck) - c0,
    }
}

fn loadgen(
    target_ip: &str,
    local_ip: &str,
    streams: u32,
    a: &Args,
    ports: u16,
    extra: &[String],
) -> Result<Summary, String> {
    let mut argv = vec![
        "loadgen".to_string(),
        "--target".into(),
        format!("{target_ip}:5060"),
        "--local-ip".into(),
        local_ip.into(),
        "--rtp-only".into(),
        format!("{PORT0}-{}", PORT0 + ports - 1),
        "--calls".into(),
        (streams / 2).to_string(),
        "--rate".into(),
        format!("{}", a.rate),
        "--duration".into(),
        format!("{}s", a.secs),
        "--sockets".into(),
        a.sockets.to_string(),
        "--quiet".into(),
    ];
    argv.extend_from_slice(extra);
    let cli = LoadgenCli::try_parse_from(argv).map_err(|e| e.to_string())?;
    mediafork_loadgen::run_until(&cli.a, &AtomicBool::new(false)).map_err(|e| e.to_string())
}

/// One `dpdk-null` run in this (child) process: prints the summary and the
/// process's CPU seconds as JSON on stdout.
#[cfg(feature = "dpdk")]
fn dpdk_child(streams: u32, a: &Args, tck: f64) {
    let mut set = nix::sched::CpuSet::new();
    set.set(a.gen_core).expect("core number");
    nix::sched::sched_setaffinity(Pid::from_raw(0), &set).expect("pin the generator");
    let runtime = mediafork_dpdk::testing::RuntimeDir::new(&format!("pace{streams}"));
    let eal = [
        "--no-huge".to_string(),
        "--no-pci".into(),
        "-m".into(),
        "512".into(),
        "--no-telemetry".into(),
        "--log-level=lib.eal:notice".into(),
        format!("--lcores=0@{}", a.gen_core),
        format!("--file-prefix={}", runtime.prefix),
        "--vdev=net_null0".into(),
    ]
    .join(" ");
    let extra = [
        "--tx".to_string(),
        "dpdk".into(),
        "--dpdk-eal".into(),
        eal,
        "--dpdk-port".into(),
        "net_null0".into(),
        "--dst-mac".into(),
        "02:00:00:00:00:02".into(),
    ];
    let c0 = process_cpu(tck);
    let r = loadgen("127.0.0.1", "127.0.0.1", streams, a, a.sink_ports, &extra);
    let cpu = process_cpu(tck) - c0;
    match r {
        Ok(s) => println!("{}", serde_json::json!({ "summary": s, "cpu": cpu })),
        Err(e) => println!("{}", serde_json::json!({ "error": e })),
    }
}

/// Runs `dpdk_child` for `streams` in a new process of this binary.
fn dpdk_run(streams: u32, a: &Args) -> Result<(Summary, f64), String> {
    if !cfg!(feature = "dpdk") {
        return Err("dpdk-null needs `--features dpdk`".into());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let o = Command::new(exe)
        .args(["--dpdk-child", &streams.to_string()])
        .args(["--gen-core", &a.gen_core.to_string()])
        .args(["--secs", &a.secs.to_string(), "--rate", &a.rate.to_string()])
        .args(["--sockets", &a.sockets.to_string()])
        .args(["--sink-ports", &a.sink_ports.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("no result from the child ({}): {text}", o.status))?;
    if let Some(e) = v["error"].as_str() {
        return Err(e.to_string());
    }
    let s = &v["summary"];
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    let summary = Summary {
        packets_sent: n("packets_sent"),
        send_errors: n("send_errors"),
        late_sends: n("late_sends"),
        lag_p50_us: n("lag_p50_us"),
        lag_p99_us: n("lag_p99_us"),
        lag_max_us: n("lag_max_us"),
        achieved_pps: s["achieved_pps"].as_f64().unwrap_or(0.0),
        sender_busy: s["sender_busy"].as_f64().unwrap_or(0.0),
        sender_ns_per_packet: s["sender_ns_per_packet"].as_f64().unwrap_or(0.0),
        duration_secs: s["duration_secs"].as_f64().unwrap_or(0.0),
        tx_port: s["tx_port"].as_str().map(str::to_owned),
        ..Summary::default()
    };
    Ok((summary, v["cpu"].as_f64().unwrap_or(0.0)))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() {
    let args = Arc::new(Args::parse());
    if let Some(streams) = args.dpdk_child {
        #[cfg(feature = "dpdk")]
        dpdk_child(streams, &args, tck());
        #[cfg(not(feature = "dpdk"))]
        println!(
            "{}",
            serde_json::json!({ "error": format!("{streams} streams: built without dpdk") })
        );
        return;
    }
    let ns = match Ns::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("loadgen_pacing needs root (a network namespace): {e}");
            std::process::exit(2);
        }
    };
    let tck = tck();
    println!("load average before: {}", loadavg());
    println!(
        "generator on core {}, sink on core {}, {} s per stream, {} pairs/s ramp, {} sockets\n",
        args.gen_core, args.sink_core, args.secs, args.rate, args.sockets
    );
    println!("| streams | target | target pps | packets sent | expected | achieved pps (first→last packet) | of target | send errors | sink received | lag p50 µs | lag p99 µs | lag max µs | late > 1 ms | generator CPU s | generator core use | sender busy | sender ns/packet | load avg (1 min) |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut out = Vec::new();
    for &streams in &args.streams {
        for target in &args.sinks {
            let stop = Arc::new(AtomicBool::new(false));
            let ready = Arc::new(AtomicU64::new(0));
            let sink_thread = if target == "loopback" {
                let (st, rd, ports) = (stop.clone(), ready.clone(), args.sink_ports);
                let h = ns.spawn(args.sink_core, "pace-sink", move || {
                    sink(ports, st, rd, tck)
                });
                while ready.load(Ordering::SeqCst) == 0 && !h.is_finished() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Some(h)
            } else {
                None
            };
            let (dst, src) = if target == "loopback" {
                ("127.0.0.1", "127.0.0.1")
            } else {
                (DISCARD_IP, NS_IP)
            };
            let c0 = process_cpu(tck);
            let t0 = Instant::now();
            let a = args.clone();
            let ports = args.sink_ports;
            let mut child_cpu = None;
            let r = if target == "dpdk-null" {
                dpdk_run(streams, &args).map(|(s, cpu)| {
                    child_cpu = Some(cpu);
                    s
                })
            } else {
                ns.spawn(args.gen_core, "pace-gen", move || {
                    loadgen(dst, src, streams, &a, ports, &[])
                })
                .join()
                .map_err(|_| "generator panicked".to_string())
                .and_then(|r| r)
                .and_then(|r| r)
            };
            let wall = t0.elapsed().as_secs_f64();
            // Let the sink drain what is queued.
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::SeqCst);
            let sunk = sink_thread.map(|h| h.join().ok().and_then(|r| r.ok()));
            let cpu = process_cpu(tck) - c0;
            let s = match r {
                Ok(s) => s,
                Err(e) => {
                    println!("| {streams} | {target} | failed: {e} |");
                    continue;
                }
            };
            let (sink_pkts, sink_cpu) = match &sunk {
                Some(Some(x)) => (Some(x.packets), x.cpu),
                _ => (None, 0.0),
            };
            let gen_cpu = child_cpu.unwrap_or(cpu - sink_cpu);
            // A child's CPU is measured over its run alone, not its start-up.
            let busy_wall = if child_cpu.is_some() {
                s.duration_secs
            } else {
                wall
            };
            let target_pps = f64::from(streams) * 50.0;
            let expected = u64::from(streams) * 50 * args.secs;
            let load = loadavg();
            println!(
                "| {streams} | {target} | {target_pps:.0} | {} | {expected} | {:.0} | {:.1}% | {} | {} | {} | {} | {} | {:.2}% | {gen_cpu:.2} | {:.0}% | {:.1}% | {:.0} | {} |",
                s.packets_sent,
                s.achieved_pps,
                100.0 * s.achieved_pps / target_pps,
                s.send_errors,
                sink_pkts.map_or("–".to_string(), |p| p.to_string()),
                s.lag_p50_us,
                s.lag_p99_us,
                s.lag_max_us,
                100.0 * s.late_sends as f64 / s.packets_sent.max(1) as f64,
                100.0 * gen_cpu / busy_wall,
                100.0 * s.sender_busy,
                s.sender_ns_per_packet,
                load.split_whitespace().next().unwrap_or(""),
            );
            out.push(serde_json::json!({
                "streams": streams, "target": target, "target_pps": target_pps,
                "packets_sent": s.packets_sent, "expected": expected,
                "achieved_pps": s.achieved_pps, "send_errors": s.send_errors,
                "sink_received": sink_pkts, "lag_p50_us": s.lag_p50_us,
                "lag_p99_us": s.lag_p99_us, "lag_max_us": s.lag_max_us,
                "late_sends": s.late_sends, "generator_cpu_s": gen_cpu,
                "wall_s": wall, "duration_s": s.duration_secs, "loadavg": load,
                "sender_busy": s.sender_busy, "sender_ns_per_packet": s.sender_ns_per_packet,
            }));
        }
    }
    println!("\nload average after: {}", loadavg());
    if let Some(p) = &args.json {
        let _ = std::fs::write(p, serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    drop(ns);
}
