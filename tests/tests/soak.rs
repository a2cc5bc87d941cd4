//! Soak: `mediafork run` under constant churn (calls always starting and
//! ending, driven by `mediafork loadgen`) for `MF_SOAK_SECS` seconds,
//! sampling the server's memory, file descriptors, threads and port pool,
//! then checking that nothing grows and that every call was recorded
//! completely. See docs/SOAK.md for the knobs, the pass criteria and how to
//! run it for hours.
//!
//! The plain suite runs it short (60 s, 100 calls up); `scripts/test` has a
//! stage that runs it for 10 minutes at 300 calls up.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mediafork_e2e::admin::{cli_json, RawCall};
use mediafork_e2e::mediafork_bin;
use mediafork_e2e::server::{Server, ServerOptions, Slot};
use serde_json::Value;

const SLOT_SOAK: Slot = Slot(36);
/// 2,600 media ports, outside every slot's range (24000–27999), the other
/// big tests' (25000–29599) and the kernel's ephemeral range (32768+).
const PORTS: (u16, u16) = (30000, 32599);
/// `media.port_quarantine` for the soak (default 10 s): short enough that
/// 300 calls up plus those in quarantine fit in [`PORTS`], long enough that
/// every port still goes through quarantine between calls.
const QUARANTINE_SECS: u64 = 4;
/// The priming wave before the baseline: calls, seconds each.
const PRIME_CALLS: u64 = 10;
const PRIME_SECS: u64 = 2;
/// `media.ring_bytes` holds this many seconds of the calls' media (the
/// default 4 MiB is under a second of 300 calls'), so that a writer stalled
/// for a few seconds by the neighbours of a shared CI machine does not drop
/// packets (`ring_full`). The soak looks for leaks, not for real-time
/// headroom; a writer too slow for the load still fills any ring. The ring
/// is written round and round, one lap in this many seconds, so all of it is
/// resident well before the warm-up ends: it does not show as RSS growth.
const RING_SECS: u64 = 8;
/// Ring bytes a packet takes: a 40-byte header and 160 bytes of G.711.
const RING_RECORD: u64 = 200;
/// Ports a loadgen call takes: RTP and RTCP for each of its two streams.
const PORTS_PER_CALL: u64 = 4;
/// Packets per second per stream (ptime 20 ms).
const PPS: u64 = 50;
/// How many packets at the end of a track may be missing because the
/// loadgen sent them after the call's BYE, or not at all (see
/// [`check_recording`]): 2 s, a loadgen starved of CPU that long on a
/// shared machine. Seen here: up to 43 (0.86 s) at 300 calls with a load
/// average of 3 on 2 cores. Over the whole run at most 1 % may miss.
const TAIL_PACKETS: u64 = 100;
/// Drop reasons of packets that arrive after their call ended: the only
/// ones expected.
const TAIL_DROPS: [&str; 2] = ["unknown_port", "stale"];

/// Allowed growth of the idle fd count after the churn, against the idle
/// count after the priming wave. 0: the server opens nothing per call that
/// outlives the call.
const FD_SLACK: i64 = 0;
/// Allowed growth of the idle thread count (threads are a fixed set: SIP,
/// admin, workers, writers, runtime; none is spawned per call).
const THREAD_SLACK: i64 = 0;
/// RSS growth allowed between the first and last third of the steady
/// state (medians): this much, or [`RSS_SLACK_PERCENT`] of the first
/// third's median, whichever is larger.
const RSS_SLACK_MIB: f64 = 8.0;
const RSS_SLACK_PERCENT: f64 = 10.0;
/// Allowed growth of the steady-state fd count, last third's median over
/// the first's: calls up vary by a few around the target, each with 4
/// sockets and 2 WAV files.
const FD_STEADY_SLACK: f64 = 32.0;

/// The run's shape, from the environment.
#[derive(Clone, Debug)]
struct Plan {
    /// How long new calls keep starting (`MF_SOAK_SECS`, default 60).
    secs: u64,
    /// Calls up at once (`MF_SOAK_CALLS`, default 100).
    calls: u64,
    /// Each call's media duration (`MF_SOAK_CALL_SECS`, default 8).
    call_secs: u64,
    /// Seconds between samples (`MF_SOAK_SAMPLE_SECS`, default secs/60
    /// clamped to 2..=10).
    sample_secs: u64,
    /// Where the report goes (`MF_SOAK_REPORT`, default
    /// `<target>/tmp/soak-report.md`).
    report: Option<PathBuf>,
}

impl Plan {
    fn from_env() -> Plan {
        fn num(name: &str, default: u64) -> u64 {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v:?}: expected a whole number")),
                Err(_) => default,
            }
        }
        let secs = num("MF_SOAK_SECS", 60).max(30);
        let calls = num("MF_SOAK_CALLS", 100).max(10);
        let call_secs = num("MF_SOAK_CALL_SECS", 8).max(2);
        let sample_secs = num("MF_SOAK_SAMPLE_SECS", (secs / 60).clamp(2, 10)).max(1);
        let report = std::env::var_os("MF_SOAK_REPORT").map(PathBuf::from);
        let plan = Plan {
            secs,
            calls,
            call_secs,
            sample_secs,
            report,
        };
        let need = plan.ports_needed();
        let have = u64::from(PORTS.1 - PORTS.0 + 1);
        assert!(
            need <= have,
            "{plan:?} needs about {need} media ports, the soak has {have}: fewer calls or longer calls"
        );
        plan
    }

    /// New calls per second: each of the `calls` slots is refilled as soon
    /// as its call ends, so the rate is calls / call duration.
    fn rate(&self) -> f64 {
        self.calls as f64 / self.call_secs as f64
    }

    /// Calls placed in all: `secs` of calls at `rate`.
    fn total(&self) -> u64 {
        (self.rate() * self.secs as f64).round() as u64
    }

    /// Ports up at once: those of the calls up and those in quarantine,
    /// with a quarter more for the calls' set-up and tear-down.
    fn ports_needed(&self) -> u64 {
        let quarantined = self.rate() * QUARANTINE_SECS as f64;
        ((self.calls as f64 + quarantined) * PORTS_PER_CALL as f64 * 1.25) as u64
    }

    /// `media.ring_bytes`: [`RING_SECS`] of media, at least the default
    /// 4 MiB, in whole MiB.
    fn ring_bytes(&self) -> u64 {
        let bytes = self.calls * 2 * PPS * RING_RECORD * RING_SECS;
        bytes.div_ceil(1 << 20).max(4) << 20
    }

    /// When the steady state starts: the first calls have ended, their
    /// ports have left quarantine, and 20 % of the run has gone by.
    fn warmup_secs(&self) -> f64 {
        (self.secs as f64 * 0.2).max((self.call_secs + QUARANTINE_SECS + 2) as f64)
    }
}

/// One look at the server.
#[derive(Clone, Debug, Default)]
struct Sample {
    /// Seconds since the loadgen started (negative: before).
    t: f64,
    phase: &'static str,
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
    fds: u64,
    sockets: u64,
    active_calls: u64,
    ports_in_use: u64,
    ports_quarantined: u64,
    ports_free: u64,
    calls_started: u64,
    calls_ended: u64,
    calls_rejected: u64,
    rx_packets: u64,
    recorded: u64,
    drops: BTreeMap<String, u64>,
    writer_open_calls: u64,
    writer_io_errors: u64,
}

impl Sample {
    fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    fn drops_total(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// The process's own numbers from /proc.
fn proc_sample(pid: u32, s: &mut Sample) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e} (did the server die?)"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    s.rss_kib = field("VmRSS:");
    s.hwm_kib = field("VmHWM:");
    s.threads = field("Threads:");
    let (mut fds, mut sockets) = (0, 0);
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/<pid>/fd")
        .flatten()
    {
        fds += 1;
        // An fd closed between read_dir and read_link is simply not a socket.
        if std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")) {
            sockets += 1;
        }
    }
    s.fds = fds;
    s.sockets = sockets;
}

/// `mediafork status` and `stats`.
fn admin_sample(admin: &str, s: &mut Sample) {
    let st = cli_json(admin, &["status"]);
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {st:#}"));
    s.active_calls = n(&st["active_calls"]);
    s.ports_in_use = n(&st["ports"]["in_use"]);
    s.ports_quarantined = n(&st["ports"]["quarantined"]);
    s.ports_free = n(&st["ports"]["free"]);
    s.calls_started = n(&st["calls"]["started"]);
    s.calls_ended = n(&st["calls"]["ended"]);
    s.calls_rejected = n(&st["calls"]["rejected"]);
    let stats = cli_json(admin, &["stats"]);
    s.rx_packets = 0;
    s.recorded = 0;
    s.drops.clear();
    for w in stats["workers"].as_array().expect("workers") {
        s.rx_packets += w["rx_packets"].as_u64().unwrap_or(0);
        s.recorded += w["recorded"].as_u64().unwrap_or(0);
        for (reason, count) in w["drops"].as_object().expect("drops") {
            *s.drops.entry(reason.clone()).or_default() += count.as_u64().unwrap_or(0);
        }
    }
    s.drops.retain(|_, c| *c > 0);
    s.writer_open_calls = 0;
    s.writer_io_errors = 0;
    for w in stats["writers"].as_array().expect("writers") {
        s.writer_open_calls += w["open_calls"].as_u64().unwrap_or(0);
        s.writer_io_errors += w["io_errors"].as_u64().unwrap_or(0);
    }
}

fn sample(server: &Server, admin: &str, t0: Instant, started: bool, phase: &'static str) -> Sample {
    let mut s = Sample {
        phase,
        ..Default::default()
    };
    let e = t0.elapsed().as_secs_f64();
    s.t = if started { e } else { -e };
    // /proc first: the admin connection of this sample is not open yet,
    // and the previous sample's is long closed.
    proc_sample(server.pid(), &mut s);
    admin_sample(admin, &mut s);
    s
}

/// The recordings checked so far (and removed from disk, so that a long
/// soak does not fill it: 8 s calls take 256 KiB each).
#[derive(Default)]
struct Recordings {
    checked: u64,
    bad: Vec<String>,
    seen: HashSet<String>,
    /// Packets in the checked recordings.
    packets: u64,
    /// Tracks short of the packets planned (the tail raced the BYE), and
    /// the most packets one missed.
    short_tracks: u64,
    max_short: u64,
    probes: u64,
}

impl Recordings {
    /// Check and delete every closed recording under `dir`.
    fn sweep(&mut self, dir: &Path, call_secs: u64) {
        let mut metas = Vec::new();
        walk(dir, &mut metas);
        for d in metas {
            let Ok(text) = std::fs::read_to_string(d.join("meta.json")) else {
                continue;
            };
            // A meta.json being rewritten may read short: try again later.
            let Ok(meta) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if !meta["ended_at"].is_string() {
                continue;
            }
            let probe = meta["call"]["sip_call_id"]
                .as_str()
                .is_some_and(|c| c.starts_with(PROBE));
            if probe {
                self.probes += 1;
                let _ = std::fs::remove_dir_all(&d);
                continue;
            }
            let id = meta["recording_id"].as_str().unwrap_or("?").to_string();
            if !self.seen.insert(id.clone()) {
                self.bad.push(format!("{id}: recording id seen twice"));
            }
            self.checked += 1;
            let checked = check_recording(&d, &meta, call_secs);
            if let Ok(short) = &checked {
                for &s in short {
                    self.short_tracks += u64::from(s > 0);
                    self.max_short = self.max_short.max(s);
                }
            }
            if let Err(why) = checked {
                if self.bad.len() < 20 {
                    self.bad
                        .push(format!("{} ({}): {why}", id, meta["call"]["sip_call_id"]));
                } else if self.bad.len() == 20 {
                    self.bad.push("(more left out)".into());
                }
            }
            for t in meta["tracks"].as_array().into_iter().flatten() {
                self.packets += t["packets"].as_u64().unwrap_or(0);
            }
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}

fn walk(d: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(d) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.file_name().is_some_and(|n| n == "meta.json") {
            out.push(p.parent().unwrap().to_path_buf());
        }
    }
}

/// A loadgen call's recording: closed by its BYE, complete, two tracks
/// each holding the packets sent without a gap and a WAV of that length.
/// A track may miss its last packets (at most [`TAIL_PACKETS`]): the
/// loadgen sends the BYE from its SIP loop at the call's end while its RTP
/// sender, when behind schedule, still has the last packets to send; those
/// are not sent, or reach the server after the call ended and are counted
/// `unknown_port` or `stale`. Returns the packets missing from each track.
fn check_recording(dir: &Path, meta: &Value, call_secs: u64) -> Result<Vec<u64>, String> {
    if meta["complete"] != true {
        return Err("not complete".into());
    }
    if meta["extensions"]["ended_by"] != "bye" {
        return Err(format!("ended by {}", meta["extensions"]["ended_by"]));
    }
    let tracks = meta["tracks"].as_array().ok_or("no tracks")?;
    if tracks.len() != 2 {
        return Err(format!("{} tracks", tracks.len()));
    }
    let sent = call_secs * PPS;
    let mut short = Vec::new();
    for t in tracks {
        let packets = t["packets"].as_u64().unwrap_or(0);
        if packets > sent
            || packets + TAIL_PACKETS < sent
            || t["lost"] != 0
            || t["late"] != 0
            || t["duplicates"] != 0
            || t["ring_drops"] != 0
            || t["samples"] != packets * 160
        {
            return Err(format!(
                "track {}: packets {} lost {} late {} duplicates {} ring drops {} samples {}; \
                 expected {sent} packets (at least {}), none lost or dropped, samples = 160 × packets",
                t["label"],
                t["packets"],
                t["lost"],
                t["late"],
                t["duplicates"],
                t["ring_drops"],
                t["samples"],
                sent - TAIL_PACKETS
            ));
        }
        short.push(sent - packets);
        let file = t["file"].as_str().ok_or("track without file")?;
        let len = std::fs::metadata(dir.join(file))
            .map_err(|e| format!("{file}: {e}"))?
            .len();
        // 16-bit PCM after a RIFF header of 44 bytes or more.
        if len < 44 + packets * 160 * 2 {
            return Err(format!("{file}: {len} bytes, short of {packets} packets"));
        }
    }
    Ok(short)
}

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "median of nothing");
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Least-squares slope of y over x.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

struct Check {
    name: String,
    pass: bool,
    detail: String,
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait until the server is idle: no calls, no ports in use, no open
/// recordings, and (if given) fds and threads back down to a baseline.
/// Returns the last sample, idle or not, after `timeout` at most.
///
/// Ports in quarantine are not waited for here: they come back once the
/// quarantine is over, which the caller checks separately.
fn settle(
    server: &Server,
    admin: &str,
    t0: Instant,
    started: bool,
    baseline: Option<&Sample>,
    timeout: Duration,
    samples: &mut Vec<Sample>,
) -> Sample {
    let deadline = Instant::now() + timeout;
    loop {
        let s = sample(server, admin, t0, started, "idle");
        let idle = s.active_calls == 0 && s.ports_in_use == 0 && s.writer_open_calls == 0;
        let back = baseline.map_or(true, |b| {
            s.fds as i64 <= b.fds as i64 + FD_SLACK
                && s.threads as i64 <= b.threads as i64 + THREAD_SLACK
        });
        if (idle && back) || Instant::now() >= deadline {
            samples.push(s.clone());
            return s;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Call-ID prefix of the probe calls (no media; not checked as recordings).
const PROBE: &str = "soak-probe";

/// One call without media, INVITE to BYE: the port pool reclaims every
/// port whose quarantine is over when it allocates, so the status after
/// the probe shows what really came back. The status then, or why the
/// probe call failed.
fn probe(server: &Server, admin: &str, t0: Instant, n: u32) -> Result<Sample, String> {
    let call_id = format!("{PROBE}-{n}@127.0.0.1");
    let sip = server.sip;
    let placed = std::panic::catch_unwind(move || {
        let call = RawCall::place(sip, &call_id, 1, &[]);
        call.bye()
    });
    match placed {
        Ok(Some(200)) => Ok(sample(server, admin, t0, true, "probe")),
        Ok(code) => Err(format!("the probe call's BYE got {code:?}")),
        Err(_) => Err("the probe call was not answered 200 (see the log above)".into()),
    }
}

fn report(plan: &Plan, samples: &[Sample], checks: &[Check], extra: &str) -> String {
    let mut r = String::new();
    let pass = checks.iter().all(|c| c.pass);
    let _ = writeln!(r, "# mediafork soak report\n");
    let _ = writeln!(r, "Verdict: **{}**\n", if pass { "PASS" } else { "FAIL" });
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(
        r,
        "- run: {} s of new calls, {} calls up, {} s each, {:.1} calls/s, {} calls in all\n\
         - media ports {}-{}, quarantine {} s, ring {} MiB; sample every {} s; warm-up {:.0} s\n\
         - machine: {} CPUs, load average at the end {}",
        plan.secs,
        plan.calls,
        plan.call_secs,
        plan.rate(),
        plan.total(),
        PORTS.0,
        PORTS.1,
        QUARANTINE_SECS,
        plan.ring_bytes() >> 20,
        plan.sample_secs,
        plan.warmup_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg.trim()
    );
    let _ = writeln!(r, "{extra}");
    let _ = writeln!(r, "## Checks\n\n| check | result | detail |\n|---|---|---|");
    for c in checks {
        let _ = writeln!(
            r,
            "| {} | {} | {} |",
            c.name,
            if c.pass { "pass" } else { "**FAIL**" },
            c.detail.replace('\n', " ").replace('|', "\\|")
        );
    }
    let _ = writeln!(
        r,
        "\n## Samples\n\n`t` is seconds since the loadgen started. fds: all open fds \
         (sockets of them); ports: in use / in quarantine / free.\n\n\
         | t (s) | phase | calls up | ports | fds (sockets) | threads | RSS MiB | HWM MiB | started | ended | rejected | rx packets | recorded | drops |\n\
         |---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for s in samples {
        let drops = if s.drops.is_empty() {
            "0".to_string()
        } else {
            s.drops
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            r,
            "| {:.0} | {} | {} | {}/{}/{} | {} ({}) | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} |",
            s.t,
            s.phase,
            s.active_calls,
            s.ports_in_use,
            s.ports_quarantined,
            s.ports_free,
            s.fds,
            s.sockets,
            s.threads,
            s.rss_mib(),
            s.hwm_kib as f64 / 1024.0,
            s.calls_started,
            s.calls_ended,
            s.calls_rejected,
            s.rx_packets,
            s.recorded,
            drops
        );
    }
    r
}

#[test]
fn soak_constant_churn_leaks_nothing() {
    let plan = Plan::from_env();
    eprintln!(
        "soak: {plan:?}, {:.1} calls/s, {} calls",
        plan.rate(),
        plan.total()
    );
    // Default: target/tmp/soak-report.md, which outlives the test.
    let report_path = plan
        .report
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak-report.md"));
    let mut server = Server::start_with(
        SLOT_SOAK,
        ServerOptions {
            config: Some(format!(
                "[limits]\nmax_calls = {}\n[media]\nport_quarantine = \"{QUARANTINE_SECS}s\"\n\
                 ring_bytes = {}\n",
                plan.calls * 2,
                plan.ring_bytes()
            )),
            // Per-call debug lines for tens of thousands of calls would
            // only slow the server down and fill the disk.
            log: Some("info".into()),
            rtp_ports: Some(PORTS),
            ..Default::default()
        },
    );
    let admin = server.admin_url();
    let load_args = |calls: u64, rate: f64, secs: u64, total: u64| -> Vec<String> {
        [
            "loadgen",
            "--target",
            &server.sip.to_string(),
            "--calls",
            &calls.to_string(),
            "--rate",
            &format!("{rate}"),
            "--duration",
            &format!("{secs}s"),
            "--total",
            &total.to_string(),
            "--style",
            "cube",
            "--json",
            "--quiet",
        ]
        .map(String::from)
        .to_vec()
    };
    let mut samples = Vec::new();
    let mut recs = Recordings::default();
    let t0 = Instant::now();

    // Priming wave: 10 short calls, so that whatever is set up once on the
    // first calls (lazily grown tables, runtime threads) is in the idle
    // baseline that the end of the run is compared with.
    let primed = Command::new(mediafork_bin())
        .args(load_args(PRIME_CALLS, 20.0, PRIME_SECS, PRIME_CALLS))
        .output()
        .expect("spawn mediafork loadgen");
    assert!(primed.status.success(), "priming loadgen: {primed:?}");
    let baseline = settle(
        &server,
        &admin,
        t0,
        false,
        None,
        Duration::from_secs(30),
        &mut samples,
    );
    recs.sweep(&server.recordings, PRIME_SECS);
    let primed_calls = PRIME_CALLS;

    // The soak.
    let t0 = Instant::now();
    let stderr = std::fs::File::create(server.dir.join("loadgen.err")).expect("loadgen.err");
    let mut load = Kill(
        Command::new(mediafork_bin())
            .args(load_args(
                plan.calls,
                plan.rate(),
                plan.call_secs,
                plan.total(),
            ))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn mediafork loadgen"),
    );
    let limit = Duration::from_secs(plan.secs + plan.call_secs + 120);
    let mut next = Instant::now();
    let load_status = loop {
        if let Some(st) = load.0.try_wait().expect("try_wait loadgen") {
            break st;
        }
        assert!(
            t0.elapsed() < limit,
            "the loadgen did not finish within {limit:?}"
        );
        if Instant::now() >= next {
            let phase = if t0.elapsed().as_secs_f64() < plan.warmup_secs() {
                "warm-up"
            } else if t0.elapsed().as_secs() < plan.secs {
                "steady"
            } else {
                "ending"
            };
            let s = sample(&server, &admin, t0, true, phase);
            eprintln!(
                "soak t={:.0}s {phase}: calls {} ports {}/{}/{} fds {} threads {} rss {:.1} MiB drops {}",
                s.t,
                s.active_calls,
                s.ports_in_use,
                s.ports_quarantined,
                s.ports_free,
                s.fds,
                s.threads,
                s.rss_mib(),
                s.drops_total()
            );
            samples.push(s);
            recs.sweep(&server.recordings, plan.call_secs);
            next += Duration::from_secs(plan.sample_secs);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(load.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    let summary: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "loadgen ({load_status}) printed no JSON summary ({e}): {out}\n{}",
            std::fs::read_to_string(server.dir.join("loadgen.err")).unwrap_or_default()
        )
    });

    // Idle again: everything back to the baseline (the wait bounds how
    // long a slow release may take, not whether it happens).
    let idle = settle(
        &server,
        &admin,
        t0,
        true,
        Some(&baseline),
        Duration::from_secs(QUARANTINE_SECS + 30),
        &mut samples,
    );
    let sweep_deadline = Instant::now() + Duration::from_secs(20);
    loop {
        recs.sweep(&server.recordings, plan.call_secs);
        if recs.checked >= primed_calls + plan.total() || Instant::now() >= sweep_deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Past the quarantine, every port is free again without any new call;
    // then a probe call shows that new calls are taken at once.
    std::thread::sleep(Duration::from_secs(QUARANTINE_SECS + 1));
    let rested = sample(&server, &admin, t0, true, "rested");
    samples.push(rested.clone());
    let probed = probe(&server, &admin, t0, 1);
    if let Ok(p) = &probed {
        samples.push(p.clone());
    }

    // Verdicts.
    let mut checks = Vec::new();
    let mut check = |name: &str, pass: bool, detail: String| {
        checks.push(Check {
            name: name.to_string(),
            pass,
            detail,
        })
    };
    let total = plan.total();
    let u = |k: &str| summary[k].as_u64().unwrap_or(u64::MAX);
    check(
        "loadgen: every call answered and ended by its BYE",
        load_status.success()
            && u("calls_answered") == total
            && u("calls_completed") == total
            && u("calls_failed") == 0
            && u("send_errors") == 0,
        format!(
            "exit {load_status}; attempted {}, answered {}, completed {}, failed {} {}, \
             send errors {}, max up {}, late sends {}, lag p99 {} µs",
            summary["calls_attempted"],
            summary["calls_answered"],
            summary["calls_completed"],
            summary["calls_failed"],
            summary["failures"],
            summary["send_errors"],
            summary["max_calls_up"],
            summary["late_sends"],
            summary["lag_p99_us"]
        ),
    );
    let expected_packets = total * 2 * plan.call_secs * PPS;
    check(
        "recordings: one per call, each complete, without a gap",
        recs.checked == primed_calls + total && recs.bad.is_empty(),
        format!(
            "{} recordings checked (expected {} + {primed_calls} priming), {} bad{}",
            recs.checked,
            total,
            recs.bad.len(),
            recs.bad
                .iter()
                .take(3)
                .map(|b| format!("; {b}"))
                .collect::<String>()
        ),
    );
    // Every packet received is in its recording, or was dropped because
    // it came after its call's BYE; nothing else is dropped, and the
    // recordings miss at most 1 % of the packets planned (tails: sent
    // after the BYE, or not sent at all by a loadgen behind schedule).
    let primed_packets = primed_calls * 2 * PRIME_SECS * PPS;
    let planned = expected_packets + primed_packets;
    let sent = u("packets_sent").saturating_add(primed_packets);
    let tail: u64 = TAIL_DROPS
        .iter()
        .map(|r| idle.drops.get(*r).copied().unwrap_or(0))
        .sum();
    let other_drops = idle.drops_total() - tail;
    let missing = planned.saturating_sub(recs.packets);
    check(
        "packets: every one received is recorded, or came after its call's BYE",
        other_drops == 0
            && idle.rx_packets <= sent
            && recs.packets + tail == idle.rx_packets
            && idle.recorded == recs.packets
            && missing * 100 <= planned,
        format!(
            "planned {planned}, sent {sent}, received {}, in the recordings {} (server: {} recorded); \
             {tail} after their call's BYE; {missing} missing from the recordings ({} tracks short, \
             by {} at most); drops by reason {:?}",
            idle.rx_packets,
            recs.packets,
            idle.recorded,
            recs.short_tracks,
            recs.max_short,
            idle.drops
        ),
    );
    check(
        "server: no call refused, every call ended, no write errors",
        idle.calls_rejected == 0
            && idle.calls_started == idle.calls_ended
            && idle.calls_started == primed_calls + total
            && idle.writer_io_errors == 0,
        format!(
            "started {}, ended {}, rejected {}, io errors {}",
            idle.calls_started, idle.calls_ended, idle.calls_rejected, idle.writer_io_errors
        ),
    );
    let all_ports = u64::from(PORTS.1 - PORTS.0 + 1);
    check(
        "ports: none in use once idle",
        idle.active_calls == 0
            && idle.ports_in_use == 0
            && idle.ports_in_use + idle.ports_quarantined + idle.ports_free == all_ports,
        format!(
            "calls up {}, in use {}, quarantined {}, free {} of {all_ports}",
            idle.active_calls, idle.ports_in_use, idle.ports_quarantined, idle.ports_free,
        ),
    );
    check(
        "ports: quarantine over while idle",
        rested.ports_in_use == 0 && rested.ports_quarantined == 0 && rested.ports_free == all_ports,
        format!(
            "{} s after the last call: in use {}, quarantined {}, free {} of {all_ports}",
            QUARANTINE_SECS + 1,
            rested.ports_in_use,
            rested.ports_quarantined,
            rested.ports_free
        ),
    );
    // After the probe only its own two ports (RTP, RTCP) are in quarantine.
    check(
        "ports: all back in the pool after the quarantine",
        probed.as_ref().is_ok_and(|p| {
            p.ports_in_use == 0 && p.ports_quarantined <= 2 && p.ports_free + 2 >= all_ports
        }),
        match &probed {
            Ok(p) => format!(
                "after a probe call: in use {}, quarantined {}, free {} of {all_ports}",
                p.ports_in_use, p.ports_quarantined, p.ports_free
            ),
            Err(e) => e.clone(),
        },
    );
    check(
        "fds: idle count back to the baseline",
        idle.fds as i64 <= baseline.fds as i64 + FD_SLACK,
        format!(
            "baseline {} ({} sockets), after {} ({} sockets), slack {FD_SLACK}",
            baseline.fds, baseline.sockets, idle.fds, idle.sockets
        ),
    );
    check(
        "threads: idle count back to the baseline",
        idle.threads as i64 <= baseline.threads as i64 + THREAD_SLACK,
        format!(
            "baseline {}, after {}, slack {THREAD_SLACK}",
            baseline.threads, idle.threads
        ),
    );

    // Steady state: from the end of the warm-up to the last call start.
    let steady: Vec<&Sample> = samples.iter().filter(|s| s.phase == "steady").collect();
    let mut extra = String::new();
    if steady.len() >= 6 {
        let third = steady.len() / 3;
        let (first, last) = (&steady[..third], &steady[steady.len() - third..]);
        let med =
            |v: &[&Sample], f: &dyn Fn(&Sample) -> f64| median(v.iter().map(|s| f(s)).collect());
        let rss_first = med(first, &|s| s.rss_mib());
        let rss_last = med(last, &|s| s.rss_mib());
        let rss_limit = RSS_SLACK_MIB.max(rss_first * RSS_SLACK_PERCENT / 100.0);
        let pts: Vec<(f64, f64)> = steady.iter().map(|s| (s.t, s.rss_kib as f64)).collect();
        let kib_per_s = slope(&pts);
        let bytes_per_call = kib_per_s * 1024.0 / plan.rate();
        check(
            "RSS: no growth over the steady state",
            rss_last - rss_first <= rss_limit,
            format!(
                "median first third {rss_first:.1} MiB, last third {rss_last:.1} MiB \
                 (+{:.1}, limit +{rss_limit:.1}); trend {kib_per_s:.2} KiB/s = {bytes_per_call:.0} B/call; \
                 peak (HWM) {:.1} MiB",
                rss_last - rss_first,
                idle.hwm_kib as f64 / 1024.0
            ),
        );
        let fd_first = med(first, &|s| s.fds as f64);
        let fd_last = med(last, &|s| s.fds as f64);
        check(
            "fds: no growth over the steady state",
            fd_last - fd_first <= FD_STEADY_SLACK,
            format!("median first third {fd_first}, last third {fd_last}, slack {FD_STEADY_SLACK}"),
        );
        let th_first = first.iter().map(|s| s.threads).max().unwrap();
        let th_last = last.iter().map(|s| s.threads).max().unwrap();
        check(
            "threads: no growth over the steady state",
            th_last <= th_first,
            format!("most in first third {th_first}, in last third {th_last}"),
        );
        let min_free = steady.iter().map(|s| s.ports_free).min().unwrap();
        let max_up = steady.iter().map(|s| s.active_calls).max().unwrap();
        let min_up = steady.iter().map(|s| s.active_calls).min().unwrap();
        check(
            "load: calls kept starting and ending at the planned level",
            min_free > 0 && max_up <= plan.calls && min_up * 10 >= plan.calls * 8,
            format!(
                "calls up {min_up}..{max_up} (plan {}), fewest free ports {min_free}",
                plan.calls
            ),
        );
        let _ = writeln!(
            extra,
            "- steady state: {} samples from t={:.0} s to t={:.0} s",
            steady.len(),
            steady[0].t,
            steady[steady.len() - 1].t
        );
    } else {
        check(
            "steady state long enough to judge",
            false,
            format!("{} steady samples, need 6", steady.len()),
        );
    }
    let text = report(&plan, &samples, &checks, &extra);
    if let Some(dir) = report_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&report_path, &text).expect("write the soak report");
    eprintln!("{text}\nsoak report: {}", report_path.display());
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.pass).collect();
    assert!(
        failed.is_empty(),
        "soak failed: {}\nreport: {}",
        failed
            .iter()
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("\n"),
        report_path.display()
    );
    server.stop();
}
