//! Capacity: the largest number of concurrent two-stream calls each
//! recorder records with zero packet loss and every recording complete,
//! ramping up, and its CPU seconds per million packets at every step.
//!
//! Recorders (systems under test, each a child process pinned to
//! `--sut-core`, fresh for every step, in a temporary directory):
//! - `socket`: `mediafork run`, socket backend, one worker, one writer;
//! - `rtpengine`: the Debian `rtpengine` daemon, userspace only,
//!   `--recording-method=pcap`, calls set up over its ng protocol by a SIP
//!   front end in this process (see `rtpengine.rs`);
//! - `floor`: a plain epoll + `recvmmsg` receiver writing each payload to a
//!   file (see `floor.rs`): what the kernel costs, the floor for any
//!   socket-based recorder;
//! - `dpdk`: `mediafork run --backend dpdk` (a build with `--features
//!   dpdk`), its RTP read by DPDK's `net_af_packet` off a veth pair between
//!   two network namespaces the bench makes (see `dpdk.rs`; needs root).
//!
//! The traffic is mediafork-loadgen's (SIPREC INVITEs, two `sendonly`
//! G.711 20 ms streams per call, real-time pacing), identical for every
//! recorder, generated in this process pinned to `--load-core`. Steps are
//! interleaved: at each call count every recorder runs in turn, so machine
//! noise hits them alike.
//!
//! Zero loss: every call answered, no send error, packets recorded ==
//! packets sent, every recording complete (mediafork: `complete: true` in
//! every `meta.json`; rtpengine: one pcap per call, no ng error; floor:
//! every stream closed by its BYE and flushed).
//!
//! CPU: utime + stime of the recorder's process (all threads) from
//! `/proc/PID/stat`, from just before loadgen starts to just after it ends.
//! Over loopback the kernel's receive path (IP, UDP, socket queueing) runs
//! in softirq on the *sending* core, so it is charged to the load
//! generator, not to any recorder: the figures are the recorders' own
//! userspace + system-call cost, alike for all three.
//!
//! Run (after `cargo build --release -p mediafork-control`):
//! `cargo bench -p mediafork-benches --bench capacity -- --step-secs 60`
//! (`-- --help` lists the options; `benches/scripts/capacity.sh` wraps it).

mod dpdk;
mod floor;
mod mediafork;
mod rtpengine;
mod sip;

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use mediafork_loadgen::{LoadgenArgs, Summary};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[derive(Parser, Debug)]
#[command(
    about = "Zero-loss concurrent calls and CPU per packet: mediafork vs rtpengine vs a recvmmsg floor"
)]
struct Args {
    /// Seconds of media per call at each step (the issue asks for 60).
    #[arg(long, default_value_t = 60)]
    step_secs: u64,
    /// First call count.
    #[arg(long, default_value_t = 50)]
    start: u32,
    /// Each step's call count is the previous one times this.
    #[arg(long, default_value_t = 1.5)]
    factor: f64,
    /// Stop ramping above this many calls.
    #[arg(long, default_value_t = 5000)]
    max: u32,
    /// Recorders to run, in this order at each step: socket, rtpengine,
    /// floor, dpdk (root; `net_af_packet` on a veth pair).
    #[arg(long, value_delimiter = ',', default_value = "socket,rtpengine,floor")]
    configs: Vec<String>,
    /// Core the recorder under test is pinned to.
    #[arg(long, default_value_t = 0)]
    sut_core: usize,
    /// Core the load generator (this process) is pinned to.
    #[arg(long, default_value_t = 1)]
    load_core: usize,
    /// Where the recordings go (a tmpfs keeps the disk out of the figure).
    #[arg(long, default_value = "/dev/shm")]
    dir: PathBuf,
    /// UDP ports the recorders may use (kept below the ephemeral range).
    #[arg(long, default_value = "10000-32766")]
    ports: String,
    /// SO_RCVBUF of each media socket (mediafork and floor).
    #[arg(long, default_value_t = 1 << 20)]
    rcvbuf: usize,
    /// Seconds the recorder idles (no calls) before each step, to measure
    /// its idle CPU.
    #[arg(long, default_value_t = 2)]
    idle_secs: u64,
    /// Drop a recorder from the ramp after this many lossy steps in a row
    /// (1: at its first loss). On a noisy machine a single lossy step can be
    /// a neighbour's fault; the summary reports the first loss either way.
    #[arg(long, default_value_t = 2)]
    max_lossy: u32,
    /// Also write every step's result here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Parser)]
struct LoadgenCli {
    #[command(flatten)]
    a: LoadgenArgs,
}

/// One recorder at one call count.
#[derive(Debug, Clone, Default)]
struct Step {
    config: String,
    calls: u32,
    answered: u64,
    failed: u64,
    sent: u64,
    recorded: u64,
    /// mediafork: packets its recordings count as lost (sequence gaps
    /// inside a track). Lost packets beyond this were missing at a track's
    /// end: sent, but after the recording had closed.
    gaps: u64,
    recordings: u64,
    complete: u64,
    sut_cpu: f64,
    idle_cpu_pct: f64,
    wall: f64,
    gen_cpu: f64,
    lag_p99_us: u64,
    late: u64,
    send_errors: u64,
    zero_loss: bool,
    note: String,
    /// The recorder's CPU by thread over the load, "name s, ...".
    threads: String,
}

impl Step {
    fn cpu_per_mpkt(&self) -> f64 {
        if self.recorded == 0 {
            f64::NAN
        } else {
            self.sut_cpu / (self.recorded as f64 / 1e6)
        }
    }

    /// Cores the recorder used during the step.
    fn cores(&self) -> f64 {
        self.sut_cpu / self.wall
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "config": self.config, "calls": self.calls, "answered": self.answered,
            "failed": self.failed, "sent": self.sent, "recorded": self.recorded,
            "gaps": self.gaps,
            "recordings": self.recordings, "complete": self.complete,
            "sut_cpu_s": self.sut_cpu, "idle_cpu_pct": self.idle_cpu_pct,
            "wall_s": self.wall, "gen_cpu_s": self.gen_cpu,
            "cpu_s_per_mpkt": self.cpu_per_mpkt(), "lag_p99_us": self.lag_p99_us,
            "late_sends": self.late, "send_errors": self.send_errors,
            "zero_loss": self.zero_loss, "note": self.note, "threads": self.threads,
        })
    }
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime (+ reaped children's) of `pid`, in seconds.
fn cpu_secs(pid: u32, tck: f64) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // After the comm field: state is f[0], utime f[11], stime f[12],
    // cutime f[13], cstime f[14].
    (f[11] + f[12] + f[13] + f[14]) / tck
}

/// CPU seconds per thread name (`comm`), summed over threads of that name.
fn thread_cpu(pid: u32, tck: f64) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some((_, rest))) = (stat.find('('), stat.rsplit_once(')')) else {
            continue;
        };
        let name = stat[open + 1..stat.len() - rest.len() - 1].to_string();
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        if f.len() > 12 {
            *out.entry(name).or_insert(0.0) += (f[11] + f[12]) / tck;
        }
    }
    out
}

/// "name s, ..." of the threads' CPU between two samples, busiest first.
fn thread_delta(
    a: &std::collections::BTreeMap<String, f64>,
    b: &std::collections::BTreeMap<String, f64>,
) -> String {
    let mut d: Vec<(String, f64)> = b
        .iter()
        .map(|(k, v)| (k.clone(), v - a.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v >= 0.01)
        .collect();
    d.sort_by(|x, y| y.1.total_cmp(&x.1));
    d.iter()
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(5090)
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(8990)
}

fn pin_self(core: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(core).is_ok() {
        if let Err(e) = nix::sched::sched_setaffinity(Pid::from_raw(0), &set) {
            eprintln!("capacity: cannot pin the load generator to core {core}: {e}");
        }
    }
}

/// SIGTERM, then wait up to `secs`, then SIGKILL.
fn terminate(child: &mut Child, secs: u64) -> String {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return if st.success() {
                    String::new()
                } else {
                    format!("exit {st}")
                }
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return "killed after SIGTERM timeout".into();
            }
        }
    }
}

fn loadgen(target: SocketAddr, local_ip: &str, calls: u32, secs: u64) -> Result<Summary, String> {
    let rate = (f64::from(calls) / 4.0).max(50.0);
    let argv = [
        "loadgen".to_string(),
        "--target".into(),
        target.to_string(),
        "--local-ip".into(),
        local_ip.to_string(),
        "--calls".into(),
        calls.to_string(),
        "--rate".into(),
        format!("{rate}"),
        "--duration".into(),
        format!("{secs}s"),
        "--quiet".into(),
    ];
    let cli = LoadgenCli::try_parse_from(argv).map_err(|e| e.to_string())?;
    mediafork_loadgen::run_until(&cli.a, &AtomicBool::new(false)).map_err(|e| e.to_string())
}

/// Everything a step needs that does not change between steps.
struct Ctx {
    args: Args,
    tck: f64,
    port_lo: u16,
    port_hi: u16,
    mediafork: Option<PathBuf>,
    mediafork_dpdk: Option<PathBuf>,
    net: Option<dpdk::Net>,
    me: PathBuf,
}

impl Ctx {
    fn taskset(&self, program: &Path) -> Command {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(self.args.sut_core.to_string()).arg(program);
        c
    }

    /// Idle CPU %, then the load; returns (loadgen summary, SUT CPU s,
    /// wall s, generator CPU s, idle %). Per-thread CPU goes to `threads`.
    fn measure(
        &self,
        pid: u32,
        target: SocketAddr,
        calls: u32,
        threads: &mut String,
    ) -> Result<(Summary, f64, f64, f64, f64), String> {
        self.measure_from(pid, target, "127.0.0.1", None, calls, threads)
    }

    /// [`Ctx::measure`] with the load generator sending from `local_ip`,
    /// inside network namespace `ns` if given.
    fn measure_from(
        &self,
        pid: u32,
        target: SocketAddr,
        local_ip: &str,
        ns: Option<&str>,
        calls: u32,
        threads: &mut String,
    ) -> Result<(Summary, f64, f64, f64, f64), String> {
        let c0 = cpu_secs(pid, self.tck);
        std::thread::sleep(Duration::from_secs(self.args.idle_secs));
        let c1 = cpu_secs(pid, self.tck);
        let t1 = thread_cpu(pid, self.tck);
        let idle = 100.0 * (c1 - c0) / self.args.idle_secs.max(1) as f64;
        let me = std::process::id();
        let g0 = cpu_secs(me, self.tck);
        let t0 = Instant::now();
        let secs = self.args.step_secs;
        let s = match ns {
            None => loadgen(target, local_ip, calls, secs)?,
            Some(ns) => {
                let ip = local_ip.to_string();
                dpdk::in_netns(ns, move || loadgen(target, &ip, calls, secs))?
            }
        };
        let wall = t0.elapsed().as_secs_f64();
        let c2 = cpu_secs(pid, self.tck);
        *threads = thread_delta(&t1, &thread_cpu(pid, self.tck));
        let g1 = cpu_secs(me, self.tck);
        Ok((s, c2 - c1, wall, g1 - g0, idle))
    }

    fn run(&self, config: &str, calls: u32) -> Step {
        let mut step = Step {
            config: config.to_string(),
            calls,
            ..Default::default()
        };
        let tmp = match tempfile::Builder::new()
            .prefix("mf-capacity-")
            .tempdir_in(&self.args.dir)
        {
            Ok(t) => t,
            Err(e) => {
                step.note = format!("tempdir: {e}");
                return step;
            }
        };
        let r = match config {
            "socket" => self.run_mediafork(tmp.path(), &mut step),
            "rtpengine" => self.run_rtpengine(tmp.path(), &mut step),
            "floor" => self.run_floor(tmp.path(), &mut step),
            "dpdk" => self.run_dpdk(tmp.path(), &mut step),
            other => Err(format!("unknown configuration {other:?}")),
        };
        if let Err(e) = r {
            step.note = if step.note.is_empty() {
                e
            } else {
                format!("{}; {e}", step.note)
            };
        }
        if std::env::var_os("MF_CAPACITY_KEEP").is_some() {
            eprintln!("  kept {}", tmp.keep().display());
        }
        step.zero_loss = step.note.is_empty()
            && step.answered == u64::from(calls)
            && step.failed == 0
            && step.send_errors == 0
            && step.sent > 0
            && step.recorded == step.sent
            && step.recordings == u64::from(calls)
            && step.complete == step.recordings;
        step
    }

    fn fill(step: &mut Step, s: &Summary, cpu: f64, wall: f64, gen: f64, idle: f64) {
        step.answered = s.calls_answered;
        step.failed = s.calls_failed + s.bye_failures;
        step.sent = s.packets_sent;
        step.send_errors = s.send_errors;
        step.lag_p99_us = s.lag_p99_us;
        step.late = s.late_sends;
        step.sut_cpu = cpu;
        step.wall = wall;
        step.gen_cpu = gen;
        step.idle_cpu_pct = idle;
        if !s.failures.is_empty() {
            step.note = format!("loadgen failures {:?}", s.failures);
        }
    }

    fn run_mediafork(&self, dir: &Path, step: &mut Step) -> Result<(), String> {
        let bin = self.mediafork.as_ref().ok_or("no mediafork binary")?;
        let cfg = dir.join("mediafork.toml");
        std::fs::write(
            &cfg,
            mediafork::config(step.calls, self.args.sut_core, self.args.rcvbuf),
        )
        .map_err(|e| e.to_string())?;
        let sip = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let admin = format!("127.0.0.1:{}", free_tcp_port());
        let rec = dir.join("rec");
        let log = std::fs::File::create(dir.join("mediafork.log")).map_err(|e| e.to_string())?;
        let mut child = self
            .taskset(bin)
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--sip-listen")
            .arg(sip.to_string())
            .arg("--media-addr")
            .arg("127.0.0.1")
            .arg("--rtp-ports")
            .arg(format!("{}-{}", self.port_lo, self.port_hi))
            .arg("--recordings")
            .arg(&rec)
            .arg("--admin-listen")
            .arg(&admin)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn mediafork: {e}"))?;
        let result = mediafork::wait_ready(&admin, 20)
            .and_then(|()| self.measure(child.id(), sip, step.calls, &mut step.threads));
        let exit = terminate(&mut child, 60);
        let (s, cpu, wall, gen, idle) = result?;
        Self::fill(step, &s, cpu, wall, gen, idle);
        let r = mediafork::read_recordings(&rec);
        step.recorded = r.packets;
        step.gaps = r.lost;
        step.recordings = r.recordings;
        step.complete = r.complete;
        if !exit.is_empty() {
            add_note(step, format!("mediafork {exit}"));
        }
        if step.recorded != step.sent {
            let log = std::fs::read_to_string(dir.join("mediafork.log")).unwrap_or_default();
            let last: Vec<&str> = log.lines().rev().take(3).collect();
            if !last.is_empty() {
                eprintln!("  mediafork log tail: {}", last.join(" | "));
            }
        }
        Ok(())
    }

    fn run_dpdk(&self, dir: &Path, step: &mut Step) -> Result<(), String> {
        let bin = self
            .mediafork_dpdk
            .as_ref()
            .ok_or("no mediafork binary with DPDK")?;
        let net = self.net.as_ref().ok_or("no veth pair")?;
        let runtime = dpdk::Runtime {
            prefix: format!("mfcap-{}-{}", std::process::id(), step.calls),
        };
        let cfg = dir.join("mediafork.toml");
        std::fs::write(
            &cfg,
            mediafork::config_with(
                step.calls,
                self.args.sut_core,
                self.args.rcvbuf,
                "dpdk",
                &dpdk::section(&runtime.prefix, self.args.sut_core),
            ),
        )
        .map_err(|e| e.to_string())?;
        let sip: SocketAddr = format!("{}:5060", dpdk::REC_IP)
            .parse()
            .map_err(|e| format!("{e}"))?;
        let admin = format!("127.0.0.1:{}", free_tcp_port());
        let rec = dir.join("rec");
        let log_path = dir.join("mediafork.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &net.rec, "taskset", "-c"])
            .arg(self.args.sut_core.to_string())
            .arg(bin)
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--sip-listen")
            .arg(sip.to_string())
            .arg("--media-addr")
            .arg(dpdk::REC_IP)
            // The recorder's namespace has its own ports: no clash with the
            // host's, nor with SIP on 5060.
            .arg("--rtp-ports")
            .arg(dpdk::RTP_PORTS)
            .arg("--recordings")
            .arg(&rec)
            .arg("--admin-listen")
            .arg(&admin)
            // The port's totals (ipackets, imissed) at shutdown.
            .env(
                "MEDIAFORK_LOG",
                "warn,mediafork_control::server::driver=info",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn mediafork (dpdk): {e}"))?;
        // The admin API listens on the recorder namespace's loopback.
        let a = admin.clone();
        let result =
            dpdk::in_netns(&net.rec, move || mediafork::wait_ready(&a, 30)).and_then(|()| {
                self.measure_from(
                    child.id(),
                    sip,
                    dpdk::SRC_IP,
                    Some(&net.src),
                    step.calls,
                    &mut step.threads,
                )
            });
        let exit = terminate(&mut child, 60);
        drop(runtime);
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("DPDK port totals")) {
            let plain = strip_ansi(l);
            let fields: Vec<&str> = plain
                .split_whitespace()
                .filter(|w| {
                    ["ipackets=", "imissed=", "ierrors=", "rx_nombuf="]
                        .iter()
                        .any(|k| w.starts_with(k))
                })
                .collect();
            add_thread_note(step, fields.join(" "));
        }
        let (s, cpu, wall, gen, idle) = result.inspect_err(|_| {
            let last: Vec<&str> = text.lines().rev().take(5).collect();
            eprintln!("  mediafork (dpdk) log tail: {}", last.join(" | "));
        })?;
        Self::fill(step, &s, cpu, wall, gen, idle);
        let r = mediafork::read_recordings(&rec);
        step.recorded = r.packets;
        step.gaps = r.lost;
        step.recordings = r.recordings;
        step.complete = r.complete;
        if !exit.is_empty() {
            add_note(step, format!("mediafork {exit}"));
        }
        if step.recorded != step.sent {
            let last: Vec<&str> = text.lines().rev().take(3).collect();
            if !last.is_empty() {
                eprintln!("  mediafork (dpdk) log tail: {}", last.join(" | "));
            }
        }
        Ok(())
    }

    fn run_rtpengine(&self, dir: &Path, step: &mut Step) -> Result<(), String> {
        let ng = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let rec = dir.join("rec");
        std::fs::create_dir_all(&rec).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("rtpengine.log")).map_err(|e| e.to_string())?;
        let mut child = self
            .taskset(Path::new("rtpengine"))
            .arg("--config-file=none")
            .arg("--foreground")
            .arg("--log-stderr")
            .arg("--log-level=4")
            .arg("--table=-1")
            .arg("--interface=127.0.0.1")
            .arg(format!("--listen-ng={ng}"))
            .arg(format!("--port-min={}", self.port_lo))
            .arg(format!("--port-max={}", self.port_hi))
            .arg(format!("--recording-dir={}", rec.display()))
            .arg("--recording-method=pcap")
            .arg("--recording-format=eth")
            .arg("--delete-delay=0")
            .arg("--timeout=600")
            .arg("--silent-timeout=600")
            .arg("--offer-timeout=600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn rtpengine (apt-get install rtpengine-daemon): {e}"))?;
        let result = rtpengine::wait_ready(ng, 20).and_then(|()| {
            let front = rtpengine::FrontEnd::start(ng)?;
            let m = self.measure(child.id(), front.sip, step.calls, &mut step.threads);
            let (errors, last) = front.finish();
            Ok((m, errors, last))
        });
        let exit = terminate(&mut child, 60);
        let (m, errors, last) = result?;
        let (s, cpu, wall, gen, idle) = m?;
        Self::fill(step, &s, cpu, wall, gen, idle);
        let (packets, files, per_file) = rtpengine::count_pcap_packets(&rec);
        step.recorded = packets;
        step.recordings = files;
        // A pcap per call, none empty; the ng exchanges all succeeded.
        step.complete = per_file.iter().filter(|&&n| n > 0).count() as u64;
        let mut notes = Vec::new();
        if errors > 0 {
            notes.push(format!("{errors} ng errors, last {last:?}"));
        }
        if !exit.is_empty() {
            notes.push(format!("rtpengine {exit}"));
        }
        for n in notes {
            add_note(step, n);
        }
        Ok(())
    }

    fn run_floor(&self, dir: &Path, step: &mut Step) -> Result<(), String> {
        let sip = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let out = dir.join("floor.json");
        let files = dir.join("rec");
        std::fs::create_dir_all(&files).map_err(|e| e.to_string())?;
        let mut child = self
            .taskset(&self.me)
            .arg("__floor")
            .arg(sip.to_string())
            .arg(self.port_lo.to_string())
            .arg(self.port_hi.to_string())
            .arg(&files)
            .arg(&out)
            .arg(self.args.rcvbuf.to_string())
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn floor: {e}"))?;
        // Ready when its SIP socket answers an OPTIONS.
        let probe = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let _ = probe.set_read_timeout(Some(Duration::from_millis(100)));
        let opts = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKp\r\nFrom: <sip:p@x>;tag=1\r\nTo: <sip:x@x>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let mut ready = false;
        for _ in 0..100 {
            let _ = probe.send_to(opts.as_bytes(), sip);
            let mut b = [0u8; 2048];
            if probe.recv(&mut b).is_ok() {
                ready = true;
                break;
            }
        }
        let result = if ready {
            self.measure(child.id(), sip, step.calls, &mut step.threads)
        } else {
            Err("floor receiver did not come up".into())
        };
        drop(child.stdin.take());
        let exit = terminate_after_stdin(&mut child, 60);
        let (s, cpu, wall, gen, idle) = result?;
        Self::fill(step, &s, cpu, wall, gen, idle);
        let v: serde_json::Value = std::fs::read(&out)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("no floor result")?;
        step.recorded = v["packets"].as_u64().unwrap_or(0);
        step.recordings = v["calls_ended"].as_u64().unwrap_or(0);
        let complete =
            v["flushed"].as_bool() == Some(true) && v["unfinished_streams"].as_u64() == Some(0);
        step.complete = if complete { step.recordings } else { 0 };
        if !exit.is_empty() {
            add_note(step, format!("floor {exit}"));
        }
        Ok(())
    }
}

/// `s` without terminal colour sequences (ESC [ ... m).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Extra detail for the per-thread line (not a failure).
fn add_thread_note(step: &mut Step, note: String) {
    if note.is_empty() {
        return;
    }
    if step.threads.is_empty() {
        step.threads = note;
    } else {
        step.threads = format!("{}; {note}", step.threads);
    }
}

fn add_note(step: &mut Step, note: String) {
    if step.note.is_empty() {
        step.note = note;
    } else {
        step.note = format!("{}; {note}", step.note);
    }
}

/// The floor exits by itself once its stdin is closed.
fn terminate_after_stdin(child: &mut Child, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return if st.success() {
                String::new()
            } else {
                format!("exit {st}")
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    terminate(child, 5)
}

fn row(s: &Step) -> String {
    format!(
        "| {} | {} | {}/{} | {} | {} | {} | {}/{} | {:.2} | {:.0}% | {:.1}% | {:.2} | {:.0} | {:.2} | {} | {} |",
        s.calls,
        s.config,
        s.answered,
        s.calls,
        s.sent,
        s.recorded,
        if s.gaps > 0 {
            format!("{} ({} gaps)", s.sent as i64 - s.recorded as i64, s.gaps)
        } else {
            (s.sent as i64 - s.recorded as i64).to_string()
        },
        s.complete,
        s.recordings,
        s.sut_cpu,
        100.0 * s.cores(),
        s.idle_cpu_pct,
        s.cpu_per_mpkt(),
        f64::from(s.calls) / s.cores(),
        s.gen_cpu,
        s.lag_p99_us,
        if s.zero_loss {
            "yes".to_string()
        } else if s.note.is_empty() {
            "**no**".to_string()
        } else {
            format!("**no** ({})", s.note)
        },
    )
}

const HEADER: &str = "| calls | recorder | answered | packets sent | recorded | lost | complete | recorder CPU s | recorder core use | idle CPU | CPU s / Mpkt | calls per core at this load | loadgen CPU s | send lag p99 µs | zero loss |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|";

/// Ratios of mediafork (`mine`: socket or dpdk) against every other
/// recorder, at the largest call count both ran without loss.
fn ratios(out: &mut String, steps: &[Step], configs: &[String], mine: &str) {
    let best = |c: &str| {
        steps
            .iter()
            .filter(|s| s.config == c && s.zero_loss)
            .max_by_key(|s| s.calls)
    };
    let _ = writeln!(out, "\nRatios (mediafork {mine} / peer):");
    for peer in configs.iter().filter(|c| *c != mine) {
        let common = steps
            .iter()
            .filter(|s| s.config == mine && s.zero_loss)
            .filter_map(|m| {
                steps
                    .iter()
                    .find(|p| p.config == *peer && p.calls == m.calls && p.zero_loss)
                    .map(|p| (m, p))
            })
            .max_by_key(|(m, _)| m.calls);
        if let Some((m, p)) = common {
            let _ = writeln!(
                out,
                "- vs {peer}: at {} calls, CPU per packet {:.2} vs {:.2} s/Mpkt → mediafork {mine} needs {:.2}× the peer's CPU (calls per core: {:.2}×)",
                m.calls,
                m.cpu_per_mpkt(),
                p.cpu_per_mpkt(),
                m.cpu_per_mpkt() / p.cpu_per_mpkt(),
                p.cpu_per_mpkt() / m.cpu_per_mpkt(),
            );
        }
        if let (Some(m), Some(p)) = (best(mine), best(peer)) {
            let _ = writeln!(
                out,
                "- vs {peer}: max zero-loss calls {} vs {} ({:.2}×)",
                m.calls,
                p.calls,
                f64::from(m.calls) / f64::from(p.calls)
            );
        }
    }
}

fn summary(steps: &[Step], configs: &[String]) -> String {
    let mut out = String::new();
    let best = |c: &str| {
        steps
            .iter()
            .filter(|s| s.config == c && s.zero_loss)
            .max_by_key(|s| s.calls)
    };
    let _ = writeln!(
        out,
        "\n| recorder | max zero-loss calls | first lossy step | CPU s / Mpkt there | µs per packet | packets/s per core | zero-loss calls per core (100 pkt/s per call) |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for c in configs {
        let first_loss = steps
            .iter()
            .filter(|s| s.config == *c && !s.zero_loss)
            .map(|s| s.calls.to_string())
            .next()
            .unwrap_or_else(|| "none".into());
        match best(c) {
            Some(s) => {
                let us = s.cpu_per_mpkt();
                let _ = writeln!(
                    out,
                    "| {c} | {} | {first_loss} | {:.2} | {:.2} | {:.0} | {:.0} |",
                    s.calls,
                    us,
                    us,
                    1e6 / us,
                    1e6 / us / 100.0
                );
            }
            None => {
                let _ = writeln!(out, "| {c} | none | {first_loss} | | | | |");
            }
        }
    }
    // Ratios at the same call count: the largest N both ran without loss.
    for mine in ["socket", "dpdk"] {
        if configs.iter().any(|c| c == mine) {
            ratios(&mut out, steps, configs, mine);
        }
    }
    if let Some(m) = best("socket") {
        let us = m.cpu_per_mpkt();
        let _ = writeln!(
            out,
            "\n25 GbE projection (socket backend, from {:.2} µs of recorder CPU per packet at {} calls): 13 Mpps needs {:.1} cores, plus the kernel's receive path, which loopback charges to the sender",
            us,
            m.calls,
            13e6 * us / 1e6
        );
    }
    out
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("__floor") {
        if let Err(e) = floor::serve(&argv[2..]) {
            eprintln!("floor: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args = Args::parse();
    let (port_lo, port_hi) = args
        .ports
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .unwrap_or((10_000, 32_766));
    let mediafork = if args.configs.iter().any(|c| c == "socket") {
        match mediafork::find_binary() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("capacity: {e}");
                std::process::exit(2);
            }
        }
    } else {
        None
    };
    let configs: Vec<String> = args.configs.clone();
    let (mediafork_dpdk, net) = if configs.iter().any(|c| c == "dpdk") {
        let bin = mediafork::find_dpdk_binary().unwrap_or_else(|e| {
            eprintln!("capacity: {e}");
            std::process::exit(2);
        });
        let net = dpdk::Net::create().unwrap_or_else(|e| {
            eprintln!(
                "capacity: the dpdk configuration needs root (network namespaces, AF_PACKET): {e}"
            );
            std::process::exit(2);
        });
        (Some(bin), Some(net))
    } else {
        (None, None)
    };
    pin_self(args.load_core);
    let ctx = Ctx {
        tck: clk_tck(),
        port_lo,
        port_hi,
        mediafork,
        mediafork_dpdk,
        net,
        me: std::env::current_exe().unwrap_or_else(|_| PathBuf::from(&argv[0])),
        args,
    };
    let uptime = |when: &str| {
        if let Ok(s) = std::fs::read_to_string("/proc/loadavg") {
            println!("load average {when}: {}", s.trim());
        }
    };
    uptime("before");
    println!(
        "{} s of media per call per step; recorder on core {}, load generator on core {}; configs {:?}\n",
        ctx.args.step_secs, ctx.args.sut_core, ctx.args.load_core, configs
    );
    println!("{HEADER}");
    let mut steps: Vec<Step> = Vec::new();
    let mut alive: Vec<String> = configs.clone();
    let mut lossy_in_a_row: std::collections::HashMap<String, u32> = Default::default();
    let mut n = f64::from(ctx.args.start);
    while n as u32 <= ctx.args.max && !alive.is_empty() {
        let calls = n as u32;
        for c in alive.clone() {
            let s = ctx.run(&c, calls);
            println!("{}", row(&s));
            if !s.threads.is_empty() {
                eprintln!(
                    "  {} at {calls} calls, CPU by thread: {}",
                    s.config, s.threads
                );
            }
            let streak = lossy_in_a_row.entry(c.clone()).or_insert(0);
            *streak = if s.zero_loss { 0 } else { *streak + 1 };
            if *streak >= ctx.args.max_lossy.max(1) {
                alive.retain(|a| *a != c);
            }
            steps.push(s);
        }
        n = (n * ctx.args.factor).ceil();
    }
    uptime("after");
    println!("{}", summary(&steps, &configs));
    if let Some(p) = &ctx.args.json {
        let v: Vec<serde_json::Value> = steps.iter().map(Step::json).collect();
        if let Err(e) = std::fs::write(p, serde_json::to_string_pretty(&v).unwrap_or_default()) {
            eprintln!("capacity: {}: {e}", p.display());
        }
    }
}
