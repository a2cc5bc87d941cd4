//! The DPDK backend (`--features dpdk`): EAL, mempool and port set-up for
//! `mediafork run --backend dpdk` and `mediafork replay --backend dpdk`,
//! the packet source each worker polls, and the port's drop counters.
//!
//! Everything DPDK-specific that can go wrong at start is turned into an
//! error that names the missing piece (root, hugepages, the port, the
//! mempool) before or instead of DPDK's own log lines. All `unsafe` lives
//! in `dpdk-sys` and `mediafork-dpdk`; this module has none.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mediafork_dataplane::source::{PacketSource, RxPacket};
use mediafork_dpdk::{
    rss_ip_udp, DpdkError, Eal, LcoreRegistration, Mempool, Port, PortConfig, PortSpec, RxQueue,
};
use serde::Serialize;

/// Receive descriptors per queue (the configuration's mempool check assumes
/// this many).
pub const RX_DESC: u16 = 1024;

/// How often `mediafork run` reads the port's counters.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the counters are logged (metrics see every reading).
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What the DPDK backend needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkOptions {
    /// EAL options, without a program name.
    pub eal_args: Vec<String>,
    /// The port: PCI address, port id or vdev name.
    pub port: String,
    /// Receive queues, one per worker.
    pub rx_queues: u16,
    /// Packet buffers in the pool.
    pub mempool_mbufs: u32,
    /// Per-lcore cache of the pool.
    pub mempool_cache: u32,
}

/// Why the DPDK backend could not start. Each message names what is missing
/// and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpdkSetupError {
    #[error(
        "the DPDK backend needs root: this process runs as uid {uid}, and DPDK maps hugepages, \
         opens /dev/vfio and raw sockets. Run mediafork as root (systemd: User=root), or for a \
         test with virtual devices only add \"--no-huge\" to the EAL arguments"
    )]
    NotRoot { uid: u32 },

    #[error(
        "no hugepages for DPDK ({detail}): reserve them once per host with \
         `hugepage-setup/hugepage-setup --pages 1024` as root (see docs/dpdk.md), or for tests and \
         laptops add \"--no-huge\", \"-m\", \"512\" to the EAL arguments (dpdk.eal_args; \
         replay: --eal-args)"
    )]
    NoHugepages { detail: String },

    #[error("DPDK EAL initialisation with arguments {args:?} failed: {error}")]
    Eal {
        args: Vec<String>,
        error: Box<DpdkError>,
    },

    #[error("DPDK mempool of {mbufs} mbufs (cache {cache}): {error}")]
    Mempool {
        mbufs: u32,
        cache: u32,
        error: Box<DpdkError>,
    },

    #[error("DPDK port {port:?} (dpdk.port): {error}{extra}")]
    Port {
        port: String,
        error: Box<DpdkError>,
        extra: String,
    },

    #[error("invalid DPDK settings: {0}")]
    Invalid(String),
}

/// What the host offers DPDK.
#[derive(Clone, Debug, Default)]
struct Host {
    euid: u32,
    /// Free hugepages of every size, and whether any size is reserved.
    hugepages_free: u64,
    hugepages_total: u64,
    hugetlbfs_mounted: bool,
}

impl Host {
    fn read() -> Host {
        let (mut total, mut free) = (0u64, 0u64);
        // Every page size (2 MB and 1 GB), not only the default one that
        // /proc/meminfo reports.
        if let Ok(dirs) = std::fs::read_dir("/sys/kernel/mm/hugepages") {
            for d in dirs.flatten() {
                let read = |f: &str| -> u64 {
                    std::fs::read_to_string(d.path().join(f))
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(0)
                };
                total += read("nr_hugepages");
                free += read("free_hugepages");
            }
        }
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        Host {
            euid: nix::unistd::geteuid().as_raw(),
            hugepages_free: free,
            hugepages_total: total,
            hugetlbfs_mounted: mounts
                .lines()
                .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs")),
        }
    }
}

/// Whether `args` hold the EAL option `opt` (alone or as `opt=value`).
pub fn has_eal_option(args: &[String], opt: &str) -> bool {
    args.iter()
        .any(|a| a == opt || a.strip_prefix(opt).is_some_and(|r| r.starts_with('=')))
}

/// The checks DPDK would fail with a less helpful message.
fn preflight(args: &[String], host: &Host) -> Result<(), DpdkSetupError> {
    let no_huge = has_eal_option(args, "--no-huge");
    if host.euid != 0 && !no_huge {
        return Err(DpdkSetupError::NotRoot { uid: host.euid });
    }
    if !no_huge && (host.hugepages_free == 0 || !host.hugetlbfs_mounted) {
        return Err(DpdkSetupError::NoHugepages {
            detail: format!(
                "{} reserved, {} free, hugetlbfs {}",
                host.hugepages_total,
                host.hugepages_free,
                if host.hugetlbfs_mounted {
                    "mounted"
                } else {
                    "not mounted"
                }
            ),
        });
    }
    Ok(())
}

/// `rte_eal_init` pins the calling thread to the main lcore's CPU, and
/// threads spawned later inherit that. Put the caller back on the CPUs it
/// had, so writers and unpinned workers are not all squeezed onto one CPU
/// (`media.worker_cores` pins workers explicitly).
fn init_eal_keeping_affinity(args: &[String]) -> Result<Eal, DpdkError> {
    use nix::sched::{sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    let before = sched_getaffinity(Pid::from_raw(0)).ok();
    let eal = Eal::init(args)?;
    if let Some(set) = before {
        if let Err(e) = sched_setaffinity(Pid::from_raw(0), &set) {
            tracing::debug!(error = %e, "could not restore CPU affinity after EAL init");
        }
    }
    Ok(eal)
}

/// The CPUs this process may run on, as DPDK's cpuset syntax (`0-3,6`).
pub fn allowed_cpus() -> String {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    let cpus: Vec<usize> = match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    };
    if cpus.is_empty() {
        return "0".into();
    }
    let mut out: Vec<String> = Vec::new();
    let mut start = cpus[0];
    let mut prev = cpus[0];
    for &c in &cpus[1..] {
        if c == prev + 1 {
            prev = c;
            continue;
        }
        out.push(range_text(start, prev));
        start = c;
        prev = c;
    }
    out.push(range_text(start, prev));
    out.join(",")
}

fn range_text(a: usize, b: usize) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// A started DPDK port and what it needs kept alive: the EAL and the
/// mempool. Drop it after the workers have stopped (their queues keep the
/// port open until then anyway).
pub struct DpdkBackend {
    port: Arc<Port>,
    eal: Eal,
    latest: Arc<Mutex<Option<DpdkCounters>>>,
}

impl std::fmt::Debug for DpdkBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpdkBackend")
            .field("port", &self.port)
            .finish()
    }
}

impl DpdkBackend {
    /// Initialise the EAL, create the mempool, configure and start the
    /// port with one rx queue per worker (RSS on IP addresses and UDP
    /// ports), and hand out one source per queue.
    pub fn start(opts: &DpdkOptions) -> Result<(DpdkBackend, Vec<DpdkSource>), DpdkSetupError> {
        if opts.rx_queues == 0 {
            return Err(DpdkSetupError::Invalid(
                "at least one rx queue (worker) is needed".into(),
            ));
        }
        if opts.port.trim().is_empty() {
            return Err(DpdkSetupError::Invalid(
                "dpdk.port is empty: name the NIC's PCI address, a port id or a vdev".into(),
            ));
        }
        let host = Host::read();
        preflight(&opts.eal_args, &host)?;
        let eal =
            init_eal_keeping_affinity(&opts.eal_args).map_err(|error| DpdkSetupError::Eal {
                args: opts.eal_args.clone(),
                error: Box::new(error),
            })?;
        let pool = Mempool::new(&eal, "mf-rx", opts.mempool_mbufs, opts.mempool_cache, None)
            .map_err(|error| DpdkSetupError::Mempool {
                mbufs: opts.mempool_mbufs,
                cache: opts.mempool_cache,
                error: Box::new(error),
            })?;
        let spec: PortSpec = opts.port.parse().unwrap_or_else(|e| match e {});
        let config = PortConfig {
            n_rx_queues: opts.rx_queues,
            n_tx_queues: 1,
            rx_desc: RX_DESC,
            tx_desc: 256,
            rss_hf: Some(rss_ip_udp()),
            promiscuous: true,
        };
        let port_err = |error: DpdkError| {
            let mut extra = String::new();
            if matches!(error, DpdkError::PortNotFound { .. }) {
                extra.push_str(
                    " (mediafork passes dpdk.eal_args to the EAL; replay: --eal-args, which \
                     --pcap completes with its own net_pcap vdev)",
                );
            }
            if host.euid != 0 {
                extra.push_str(&format!(
                    " (this process runs as uid {}: NICs and raw-socket vdevs such as \
                     net_af_packet need root)",
                    host.euid
                ));
            }
            DpdkSetupError::Port {
                port: opts.port.clone(),
                error: Box::new(error),
                extra,
            }
        };
        let mut port = Port::configure_with(spec, &config, &pool).map_err(port_err)?;
        port.start().map_err(port_err)?;
        let mut sources = Vec::with_capacity(usize::from(opts.rx_queues));
        for q in 0..opts.rx_queues {
            let rxq = port.rx_queue(q).map_err(port_err)?;
            sources.push(DpdkSource::new(rxq, eal.clone()));
        }
        if opts.rx_queues > 1 && port.rss_hf() == 0 {
            tracing::warn!(
                port = %port.name(),
                driver = %port.driver(),
                "the port's driver cannot spread packets by RSS: with several rx queues, \
                 traffic may all land on one worker"
            );
        }
        tracing::info!(
            port = %port.name(),
            driver = %port.driver(),
            id = port.id(),
            rx_queues = port.n_rx_queues(),
            rx_desc = port.rx_desc(),
            rss_hf = format_args!("{:#x}", port.rss_hf()),
            mbufs = opts.mempool_mbufs,
            "DPDK port started"
        );
        Ok((
            DpdkBackend {
                port: Arc::new(port),
                eal,
                latest: Arc::new(Mutex::new(None)),
            },
            sources,
        ))
    }

    /// The port's name (PCI address or vdev).
    pub fn port_name(&self) -> &str {
        self.port.name()
    }

    /// The port's driver (`net_ixgbe`, `net_af_packet`, ...).
    pub fn driver(&self) -> &str {
        self.port.driver()
    }

    /// The EAL handle.
    pub fn eal(&self) -> &Eal {
        &self.eal
    }

    /// The port's counters now.
    pub fn read_counters(&self) -> Result<DpdkCounters, DpdkError> {
        read_counters(&self.port)
    }

    /// The counters as the stats thread last read them (for metrics).
    pub fn latest_counters(&self) -> Option<DpdkCounters> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A thread that reads the port's counters every `interval`, keeps the
    /// latest for [`DpdkBackend::latest_counters`], logs them, and warns
    /// when the NIC dropped packets. Stops when the returned guard drops.
    pub fn spawn_stats_logger(&self, interval: Duration) -> std::io::Result<StatsLogger> {
        let stop = Arc::new(AtomicBool::new(false));
        let port = Arc::clone(&self.port);
        let latest = Arc::clone(&self.latest);
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("mf-dpdk-stats".into())
            .spawn(move || {
                // The reading last logged: logs compare against it, every
                // LOG_INTERVAL, while metrics get every reading.
                let mut prev: Option<DpdkCounters> = None;
                let mut next = Instant::now() + interval;
                let mut next_log = Instant::now() + LOG_INTERVAL;
                while !stop2.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(100));
                    if Instant::now() < next {
                        continue;
                    }
                    next += interval;
                    match read_counters(&port) {
                        Ok(now) => {
                            if Instant::now() >= next_log {
                                next_log += LOG_INTERVAL;
                                log_counters(prev.as_ref(), &now);
                                prev = Some(now.clone());
                            }
                            *latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                        }
                        Err(e) => tracing::warn!(error = %e, "reading the DPDK port's counters"),
                    }
                }
                // The last reading, so the log shows the totals at shutdown.
                if let Ok(now) = read_counters(&port) {
                    log_counters(prev.as_ref(), &now);
                    *latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                }
            })?;
        Ok(StatsLogger {
            stop,
            thread: Some(thread),
        })
    }
}

/// Stops the stats thread when dropped.
pub struct StatsLogger {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for StatsLogger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Counters of one rx queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounters {
    pub queue: u16,
    pub packets: u64,
    pub bytes: u64,
    /// Packets dropped on this queue (drivers that report it).
    pub errors: u64,
}

/// A DPDK port's receive counters: what the later metrics endpoint exports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DpdkCounters {
    pub port: String,
    pub driver: String,
    /// Packets received.
    pub ipackets: u64,
    pub ibytes: u64,
    /// Dropped by the NIC for want of a free rx descriptor: the workers did
    /// not keep up.
    pub imissed: u64,
    /// Erroneous packets.
    pub ierrors: u64,
    /// Receive mbuf allocation failures: the mempool is too small.
    pub rx_nombuf: u64,
    /// Per rx queue.
    pub queues: Vec<QueueCounters>,
}

impl DpdkCounters {
    /// Packets lost before a worker saw them.
    pub fn drops(&self) -> u64 {
        self.imissed
            + self.ierrors
            + self.rx_nombuf
            + self.queues.iter().map(|q| q.errors).sum::<u64>()
    }
}

fn read_counters(port: &Port) -> Result<DpdkCounters, DpdkError> {
    let s = port.stats()?;
    let mut queues: Vec<QueueCounters> = s
        .rx_queues
        .iter()
        .enumerate()
        .map(|(q, c)| QueueCounters {
            queue: q as u16,
            packets: c.packets,
            bytes: c.bytes,
            errors: c.errors,
        })
        .collect();
    // Drivers that leave the basic per-queue fields empty report them as
    // xstats (`rx_q0_packets`, ...).
    let filled = queues.iter().map(|q| q.packets).sum::<u64>() > 0;
    if !filled && s.ipackets > 0 {
        if let Ok(x) = port.xstats() {
            queues = (0..port.n_rx_queues())
                .map(|q| {
                    let get = |what: &str| {
                        let name = format!("rx_q{q}_{what}");
                        x.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v)
                    };
                    QueueCounters {
                        queue: q,
                        packets: get("packets"),
                        bytes: get("bytes"),
                        errors: get("errors"),
                    }
                })
                .collect();
        }
    }
    Ok(DpdkCounters {
        port: port.name().to_owned(),
        driver: port.driver().to_owned(),
        ipackets: s.ipackets,
        ibytes: s.ibytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        rx_nombuf: s.rx_nombuf,
        queues,
    })
}

fn log_counters(prev: Option<&DpdkCounters>, now: &DpdkCounters) {
    let before = |f: fn(&DpdkCounters) -> u64| prev.map_or(0, f);
    let missed = now.imissed.saturating_sub(before(|c| c.imissed));
    let nombuf = now.rx_nombuf.saturating_sub(before(|c| c.rx_nombuf));
    let errors = now.ierrors.saturating_sub(before(|c| c.ierrors));
    let queue_errors = now
        .queues
        .iter()
        .map(|q| q.errors)
        .sum::<u64>()
        .saturating_sub(before(|c| c.queues.iter().map(|q| q.errors).sum()));
    let queues = now
        .queues
        .iter()
        .map(|q| format!("q{}={}/{}err", q.queue, q.packets, q.errors))
        .collect::<Vec<_>>()
        .join(" ");
    if missed + nombuf + errors + queue_errors > 0 {
        tracing::warn!(
            port = %now.port,
            imissed = missed,
            rx_nombuf = nombuf,
            ierrors = errors,
            queue_errors,
            queues = %queues,
            "DPDK port dropped packets since the last reading: imissed means the workers \
             did not keep up (more workers/queues, isolated cores), rx_nombuf that \
             dpdk.mempool_mbufs is too small"
        );
    } else if prev.map_or(true, |p| p.ipackets != now.ipackets) {
        tracing::info!(
            port = %now.port,
            ipackets = now.ipackets,
            imissed = now.imissed,
            ierrors = now.ierrors,
            rx_nombuf = now.rx_nombuf,
            queues = %queues,
            "DPDK port counters"
        );
    }
}

/// What a thread knows about its EAL registration.
enum Lcore {
    NotTried,
    Registered { _guard: LcoreRegistration },
    Unavailable,
}

thread_local! {
    /// The registration of the current thread, dropped (unregistered) when
    /// the thread exits.
    static LCORE: RefCell<Lcore> = const { RefCell::new(Lcore::NotTried) };
}

/// Registers the calling thread with the EAL, once: DPDK's mempools then use
/// a per-lcore cache on it instead of the shared ring.
fn register_current_thread(eal: &Eal) {
    LCORE.with(|l| {
        let mut l = l.borrow_mut();
        if !matches!(*l, Lcore::NotTried) {
            return;
        }
        *l = match eal.register_thread() {
            Ok(r) => {
                tracing::debug!(
                    lcore = r.lcore_id(),
                    "worker thread registered with the EAL"
                );
                Lcore::Registered { _guard: r }
            }
            Err(e) => {
                // The main lcore (replay's own thread) is registered already.
                tracing::debug!(error = %e, "thread not registered with the EAL");
                Lcore::Unavailable
            }
        };
    });
}

/// One rx queue as a worker's packet source. The first poll registers the
/// polling thread with the EAL (so the mempool cache works on it).
pub struct DpdkSource {
    rxq: RxQueue,
    eal: Eal,
    stop: Option<Arc<AtomicBool>>,
}

impl DpdkSource {
    fn new(rxq: RxQueue, eal: Eal) -> DpdkSource {
        DpdkSource {
            rxq,
            eal,
            stop: None,
        }
    }

    /// Stop receiving once `stop` is set (the engine's stop flag): a worker
    /// checks that flag only when a poll comes back empty, which a busy NIC
    /// never does, so without this a loaded recorder would not shut down.
    /// Frames still in the NIC's ring are left there.
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> DpdkSource {
        self.stop = Some(stop);
        self
    }

    /// Wrap a queue taken by the caller (tests, benchmarks).
    pub fn from_queue(rxq: RxQueue, eal: Eal) -> DpdkSource {
        DpdkSource::new(rxq, eal)
    }

    /// The queue id.
    pub fn queue_id(&self) -> u16 {
        self.rxq.queue_id()
    }

    /// Frames larger than an mbuf (2 KiB): only their first segment was
    /// handed to the worker.
    pub fn multi_segment_frames(&self) -> u64 {
        self.rxq.multi_segment_frames()
    }
}

impl std::fmt::Debug for DpdkSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpdkSource")
            .field("rxq", &self.rxq)
            .finish()
    }
}

impl PacketSource for DpdkSource {
    #[inline]
    fn poll_burst<F: FnMut(&[RxPacket<'_>])>(&mut self, sink: F) -> usize {
        if self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            return 0;
        }
        if LCORE.with(|l| matches!(*l.borrow(), Lcore::NotTried)) {
            register_current_thread(&self.eal);
        }
        self.rxq.poll_burst(sink)
    }

    fn name(&self) -> &str {
        self.rxq.name()
    }
}

/// The runtime folders DPDK may create for `--file-prefix=PREFIX`.
pub fn runtime_dirs(prefix: &str) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/var/run/dpdk"), PathBuf::from("/tmp/dpdk")];
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        dirs.push(Path::new(&xdg).join("dpdk"));
    }
    dirs.into_iter().map(|d| d.join(prefix)).collect()
}

/// Removes DPDK's runtime folder of a `--file-prefix` we chose, when dropped.
pub struct RuntimeDirGuard {
    prefix: String,
}

impl RuntimeDirGuard {
    pub fn new(prefix: impl Into<String>) -> RuntimeDirGuard {
        RuntimeDirGuard {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for RuntimeDirGuard {
    fn drop(&mut self) {
        for d in runtime_dirs(&self.prefix) {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn host(euid: u32, free: u64, mounted: bool) -> Host {
        Host {
            euid,
            hugepages_free: free,
            hugepages_total: free,
            hugetlbfs_mounted: mounted,
        }
    }

    #[test]
    fn eal_options_are_found_alone_or_with_a_value() {
        let a = args(&["-l", "0", "--no-huge", "--file-prefix=x"]);
        assert!(has_eal_option(&a, "--no-huge"));
        assert!(has_eal_option(&a, "--file-prefix"));
        assert!(!has_eal_option(&a, "--file"));
        assert!(!has_eal_option(&a, "--in-memory"));
    }

    #[test]
    fn preflight_names_root_then_hugepages() {
        let e = preflight(&args(&["-l", "0"]), &host(1000, 0, false)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("needs root") && msg.contains("uid 1000"),
            "{msg}"
        );
        let e = preflight(&args(&["-l", "0"]), &host(0, 0, true)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("hugepage-setup"), "{msg}");
        assert!(msg.contains("--no-huge"), "{msg}");
        assert!(msg.contains("0 free"), "{msg}");
        let e = preflight(&args(&[]), &host(0, 512, false)).unwrap_err();
        assert!(e.to_string().contains("not mounted"), "{e}");
        preflight(&args(&[]), &host(0, 512, true)).unwrap();
        // --no-huge needs neither hugepages nor (to try) root.
        preflight(&args(&["--no-huge"]), &host(0, 0, false)).unwrap();
        preflight(&args(&["--no-huge"]), &host(1000, 0, false)).unwrap();
    }

    #[test]
    fn allowed_cpus_is_a_cpuset() {
        let s = allowed_cpus();
        assert!(!s.is_empty());
        assert!(
            s.chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == ','),
            "{s}"
        );
        assert_eq!(range_text(3, 3), "3");
        assert_eq!(range_text(0, 7), "0-7");
    }

    #[test]
    fn counters_add_up_drops() {
        let c = DpdkCounters {
            imissed: 1,
            ierrors: 2,
            rx_nombuf: 3,
            queues: vec![QueueCounters {
                errors: 4,
                ..QueueCounters::default()
            }],
            ..DpdkCounters::default()
        };
        assert_eq!(c.drops(), 10);
    }
}
