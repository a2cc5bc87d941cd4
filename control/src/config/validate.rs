//! Checks that a well-formed configuration also makes a working server.
//!
//! Parsing already guarantees each value's form (an address is an address);
//! this is about ranges and about keys that must agree with each other. All
//! problems are collected so an operator fixes the file in one go.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::duration::format_duration;
use super::error::Problem;
use super::net::MediaAddr;
use super::sections::{Backend, Transport};
use super::Config;

/// The RFC 4028 floor for Min-SE: a session interval below 90 s is never
/// valid.
pub const MIN_SE_FLOOR: Duration = Duration::from_secs(90);

/// Most workers or writers: more than any box has cores for.
pub const MAX_THREADS: usize = 256;

/// Ports one call needs at least: RTP and RTCP for each of its two streams.
pub const PORTS_PER_CALL: usize = 4;

const MIN_MESSAGE_BYTES: usize = 4 * 1024;
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// 64 bytes of per-worker state per track: 4M tracks is 256 MiB per worker.
const MAX_TRACKS: usize = 1 << 22;
/// The engine refuses smaller rings.
const MIN_RING_BYTES: usize = 64 * 1024;
const MAX_RING_BYTES: usize = 1 << 30;
const MIN_RCVBUF: usize = 4 * 1024;
const MAX_RCVBUF: usize = 1 << 30;
const MAX_REORDER_WINDOW: Duration = Duration::from_secs(10);
const MAX_GRACE_PERIOD: Duration = Duration::from_secs(24 * 3600);
const MIN_TOKEN_LEN: usize = 16;
/// DPDK's `RTE_MEMPOOL_CACHE_MAX_SIZE`.
const MAX_MEMPOOL_CACHE: u32 = 512;
/// Receive descriptors per queue the DPDK backend sets up.
const RX_DESC_PER_QUEUE: u64 = 1024;
/// Room for bursts in flight and the main core's cache.
const MEMPOOL_SLACK: u64 = 512;
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Facts about the machine a configuration is checked against.
#[derive(Clone, Debug)]
pub(crate) struct Host {
    /// Online CPU ids, sorted.
    pub(crate) online_cpus: Vec<usize>,
    /// Whether an IPv6 wildcard socket also takes IPv4
    /// (`net.ipv6.bindv6only = 0`, Linux's default), which makes `[::]:P`
    /// and `0.0.0.0:P` collide.
    pub(crate) dual_stack: bool,
}

impl Host {
    /// The running machine. Core ids come from
    /// `/sys/devices/system/cpu/online`, not from the process's affinity
    /// mask: on a DPDK box the worker cores are usually `isolcpus`, outside
    /// the mask the server starts with, and must still be accepted.
    pub(crate) fn detect() -> Host {
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|s| parse_cpu_list(&s));
        let online_cpus = online.unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n).collect()
        });
        // Without the file IPv6 is off: `[::]` cannot be bound at all, and
        // that bind error says so better than a collision would.
        let dual_stack =
            std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|v| v.trim() == "0");
        Host {
            online_cpus,
            dual_stack,
        }
    }
}

/// Parses the kernel's CPU list format (`0-3,8,10-11`).
pub(crate) fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 65_536 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    (!cpus.is_empty()).then_some(cpus)
}

/// Formats CPU ids back in the kernel's list format.
fn format_cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// Collects problems by key.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem once (a duplicate SIP address is found on both the
    /// UDP and the TCP side, but is one mistake).
    fn add(&mut self, key: &str, message: impl Into<String>) {
        let problem = Problem {
            key: key.to_string(),
            line: None,
            message: message.into(),
        };
        if !self.0.contains(&problem) {
            self.0.push(problem);
        }
    }
}

fn d(v: Duration) -> String {
    format!("\"{}\"", format_duration(v))
}

/// Every problem with `cfg` on `host`, in file order.
pub(crate) fn check(cfg: &Config, host: &Host) -> Vec<Problem> {
    let mut p = Problems::default();
    check_sip(cfg, &mut p);
    check_media(cfg, host, &mut p);
    check_recordings(cfg, &mut p);
    check_limits(cfg, &mut p);
    check_listeners(cfg, host, &mut p);
    check_admin(cfg, &mut p);
    check_log(cfg, &mut p);
    check_encryption(cfg, &mut p);
    for (key, message) in cfg
        .storage
        .validate()
        .err()
        .into_iter()
        .chain(cfg.retention.validate().err())
        .flatten()
    {
        p.add(&key, message);
    }
    if cfg.media.backend == Backend::Dpdk {
        check_dpdk(cfg, &mut p);
    }
    p.0
}

fn check_sip(cfg: &Config, p: &mut Problems) {
    let sip = &cfg.sip;
    if sip.flood_rate > 1_000_000 {
        p.add(
            "sip.flood_rate",
            format!("{} messages/s per source is beyond any SBC; use at most 1000000, or 0 to turn flood protection off", sip.flood_rate),
        );
    }
    if sip.flood_rate > 0 && sip.flood_burst < 1 {
        p.add(
            "sip.flood_burst",
            "must be at least 1 while sip.flood_rate is set (0 would drop every message)",
        );
    }
    for (i, t) in sip.transports.iter().enumerate() {
        if sip.transports[..i].contains(t) {
            p.add("sip.transports", format!("\"{t}\" is listed twice"));
        }
    }
    if sip.transports.is_empty() && !sip.tls.enabled() {
        p.add(
            "sip.transports",
            "is empty and TLS is off, so nothing would accept SIP: list \"udp\" and/or \"tcp\", or set sip.tls.cert and sip.tls.key",
        );
    }
    if !sip.transports.is_empty() && sip.listen.is_empty() {
        p.add(
            "sip.listen",
            "is empty but sip.transports is not: add an address such as \"0.0.0.0:5060\", or set sip.transports = [] to accept SIP over TLS only",
        );
    }
    for addr in &sip.listen {
        check_port("sip.listen", *addr, "5060", p);
    }

    let tls = &sip.tls;
    match (&tls.cert, &tls.key) {
        (Some(_), None) => p.add(
            "sip.tls.key",
            "is missing: TLS needs both sip.tls.cert and sip.tls.key (set both, or neither to turn TLS off)",
        ),
        (None, Some(_)) => p.add(
            "sip.tls.cert",
            "is missing: TLS needs both sip.tls.cert and sip.tls.key (set both, or neither to turn TLS off)",
        ),
        _ => {}
    }
    if tls.client_ca.is_some() && !tls.enabled() {
        p.add(
            "sip.tls.client_ca",
            "is set but TLS is off: set sip.tls.cert and sip.tls.key too, or remove client_ca",
        );
    }
    for (key, path) in [
        ("sip.tls.cert", &tls.cert),
        ("sip.tls.key", &tls.key),
        ("sip.tls.client_ca", &tls.client_ca),
    ] {
        if let Some(path) = path {
            check_file(key, path, p);
        }
    }
    if tls.enabled() {
        check_port("sip.tls.listen", tls.listen, "5061", p);
    }

    if sip.user_agent.trim().is_empty() {
        p.add(
            "sip.user_agent",
            "is empty: the Server and User-Agent headers need a value, e.g. \"mediafork\"",
        );
    } else if sip.user_agent.chars().any(char::is_control) {
        p.add(
            "sip.user_agent",
            "contains a control character (a line break?), which would break the SIP header",
        );
    } else if sip.user_agent.len() > 256 {
        p.add("sip.user_agent", "is longer than 256 characters");
    }

    if sip.min_se < MIN_SE_FLOOR {
        p.add(
            "sip.min_se",
            format!(
                "{} is below {}, the smallest Min-SE RFC 4028 allows",
                d(sip.min_se),
                d(MIN_SE_FLOOR)
            ),
        );
    }
    if sip.session_expires_default < sip.min_se.max(MIN_SE_FLOOR) {
        p.add(
            "sip.session_expires_default",
            format!(
                "{} is shorter than sip.min_se ({}): RFC 4028 requires Session-Expires to be at least Min-SE",
                d(sip.session_expires_default),
                d(sip.min_se.max(MIN_SE_FLOOR))
            ),
        );
    }
    if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&sip.max_message_bytes) {
        p.add(
            "sip.max_message_bytes",
            format!(
                "{} is out of range: use {MIN_MESSAGE_BYTES} to {MAX_MESSAGE_BYTES} (SIPREC INVITEs with metadata need tens of KiB; the default is 262144)",
                sip.max_message_bytes
            ),
        );
    }
}

fn check_port(key: &str, addr: SocketAddr, usual: &str, p: &mut Problems) {
    if addr.port() == 0 {
        p.add(
            key,
            format!("\"{addr}\": port 0 would pick a random port that nothing could find; use a fixed port (usually {usual})"),
        );
    }
}

fn check_file(key: &str, path: &Path, p: &mut Problems) {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => p.add(key, format!("{} is not a regular file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            p.add(key, format!("file {} does not exist", path.display()))
        }
        Err(e) => p.add(key, format!("cannot read {}: {e}", path.display())),
    }
}

fn check_media(cfg: &Config, host: &Host, p: &mut Problems) {
    let m = &cfg.media;
    if let MediaAddr::Ip(ip) = m.address {
        if ip.is_unspecified() {
            p.add(
                "media.address",
                format!("\"{ip}\" cannot be put in an SDP answer: use \"auto\" or this host's media address"),
            );
        } else if ip.is_multicast() {
            p.add(
                "media.address",
                format!(
                    "\"{ip}\" is a multicast address: use \"auto\" or this host's media address"
                ),
            );
        }
    }

    let r = m.rtp_ports;
    if r.lo > r.hi {
        p.add(
            "media.rtp_ports",
            format!("\"{r}\": the low port is above the high port"),
        );
    } else if r.lo < 1024 {
        p.add(
            "media.rtp_ports",
            format!("\"{r}\": ports below 1024 are not allowed for media (they are reserved for system services)"),
        );
    } else if r.len() < PORTS_PER_CALL {
        p.add(
            "media.rtp_ports",
            format!(
                "\"{r}\" has {} port(s): a call needs at least {PORTS_PER_CALL} (RTP and RTCP for each of its two streams)",
                r.len()
            ),
        );
    } else if cfg.sip.transports.contains(&Transport::Udp) {
        if let Some(a) = cfg.sip.listen.iter().find(|a| r.contains(a.port())) {
            p.add(
                "media.rtp_ports",
                format!(
                    "\"{r}\" includes UDP port {} of sip.listen (\"{a}\"): move the media range or the SIP port",
                    a.port()
                ),
            );
        }
    }

    for (key, n) in [("media.workers", m.workers), ("media.writers", m.writers)] {
        if !(1..=MAX_THREADS).contains(&n) {
            p.add(key, format!("{n} is out of range: use 1 to {MAX_THREADS}"));
        }
    }
    if !m.worker_cores.is_empty() {
        if m.worker_cores.len() != m.workers {
            p.add(
                "media.worker_cores",
                format!(
                    "lists {} core(s) for {} worker(s) (media.workers): list one core per worker, or none to leave workers unpinned",
                    m.worker_cores.len(),
                    m.workers
                ),
            );
        }
        for (i, core) in m.worker_cores.iter().enumerate() {
            if m.worker_cores[..i].contains(core) {
                p.add(
                    "media.worker_cores",
                    format!(
                        "core {core} is listed twice: two workers polling one core would slow both"
                    ),
                );
            } else if host.online_cpus.binary_search(core).is_err() {
                p.add(
                    "media.worker_cores",
                    format!(
                        "core {core} is not an online CPU of this host (online: {})",
                        format_cpu_list(&host.online_cpus)
                    ),
                );
            }
        }
    }

    if m.reorder_window.is_zero() || m.reorder_window > MAX_REORDER_WINDOW {
        p.add(
            "media.reorder_window",
            format!(
                "{} is out of range: use more than 0 and at most {} (audio is held in memory this long; the default is \"200ms\")",
                d(m.reorder_window),
                d(MAX_REORDER_WINDOW)
            ),
        );
    }
    if m.max_gap.is_zero() {
        p.add(
            "media.max_gap",
            "must be more than 0 (the default is \"30s\")",
        );
    }
    if !(1..=MAX_TRACKS).contains(&m.max_tracks) {
        p.add(
            "media.max_tracks",
            format!(
                "{} is out of range: use 1 to {MAX_TRACKS} (each track costs 64 bytes per worker up front)",
                m.max_tracks
            ),
        );
    }
    if !(MIN_RING_BYTES..=MAX_RING_BYTES).contains(&m.ring_bytes) {
        p.add(
            "media.ring_bytes",
            format!(
                "{} is out of range: use {MIN_RING_BYTES} to {MAX_RING_BYTES} (there is one ring per worker and writer)",
                m.ring_bytes
            ),
        );
    }
    if !(MIN_RCVBUF..=MAX_RCVBUF).contains(&m.socket_rcvbuf) {
        p.add(
            "media.socket_rcvbuf",
            format!(
                "{} is out of range: use {MIN_RCVBUF} to {MAX_RCVBUF}",
                m.socket_rcvbuf
            ),
        );
    }
}

fn check_recordings(cfg: &Config, p: &mut Problems) {
    let r = &cfg.recordings;
    if r.dir.as_os_str().is_empty() {
        p.add(
            "recordings.dir",
            "is empty: set the directory recordings go under, e.g. \"/var/lib/mediafork/recordings\"",
        );
    } else if let Ok(meta) = std::fs::metadata(&r.dir) {
        if !meta.is_dir() {
            p.add(
                "recordings.dir",
                format!("{} exists and is not a directory", r.dir.display()),
            );
        }
    }
    if r.flush_interval.is_zero() {
        p.add(
            "recordings.flush_interval",
            "must be more than 0 (the default is \"1s\")",
        );
    }
}

/// Longest `encryption.key_id` and `encryption.tenant`: each is stored in
/// every sealed file's header.
const MAX_ENCRYPTION_LABEL: usize = 128;

fn check_label(key: &str, value: &str, p: &mut Problems) {
    if value.is_empty() {
        p.add(key, "is empty: leave it out for the default");
    } else if value.len() > MAX_ENCRYPTION_LABEL {
        p.add(
            key,
            format!(
                "is {} bytes long: at most {MAX_ENCRYPTION_LABEL}",
                value.len()
            ),
        );
    } else if !value.chars().all(|c| c.is_ascii_graphic()) {
        p.add(
            key,
            format!("\"{value}\": use printable ASCII without spaces, e.g. \"tenant-a-2024\""),
        );
    }
}

fn check_encryption(cfg: &Config, p: &mut Problems) {
    let e = &cfg.encryption;
    if let Some(id) = &e.key_id {
        check_label("encryption.key_id", id, p);
    }
    check_label("encryption.tenant", &e.tenant, p);
    if !e.enabled {
        return;
    }
    // Reading the key is the check: a missing file, a private key, another
    // algorithm or a short RSA key each get their own message.
    if let Err(problem) = e.recipient() {
        p.add(&problem.key, problem.message);
    }
}

fn check_limits(cfg: &Config, p: &mut Problems) {
    if cfg.limits.max_calls == 0 {
        p.add(
            "limits.max_calls",
            "must be at least 1 (to refuse all calls, stop the server or drain it)",
        );
    }
    let per_source = cfg.limits.max_calls_per_source;
    if cfg.limits.max_calls > 0 && per_source > cfg.limits.max_calls {
        p.add(
            "limits.max_calls_per_source",
            format!(
                "{per_source} is more than limits.max_calls = {}, so it would never apply: set it at most {}, or 0 for no per-source limit",
                cfg.limits.max_calls, cfg.limits.max_calls
            ),
        );
    }
    if cfg.limits.no_media_timeout.is_some_and(|t| t.is_zero()) {
        p.add(
            "limits.no_media_timeout",
            "must be more than 0; remove the key to never end a call for lack of media",
        );
    }
    if cfg.shutdown.grace_period > MAX_GRACE_PERIOD {
        p.add(
            "shutdown.grace_period",
            format!(
                "{} is longer than {}: check the unit",
                d(cfg.shutdown.grace_period),
                d(MAX_GRACE_PERIOD)
            ),
        );
    }
}

/// Whether two listeners of one protocol would collide: same port, and the
/// same address or a wildcard covering the other. On a dual-stack host a
/// `[::]` socket also takes IPv4, so it collides with `0.0.0.0` too.
fn overlaps(a: SocketAddr, b: SocketAddr, dual_stack: bool) -> bool {
    if a.port() != b.port() {
        return false;
    }
    let covers = |x: SocketAddr, y: SocketAddr| {
        x.ip().is_unspecified() && (x.is_ipv4() == y.is_ipv4() || (x.is_ipv6() && dual_stack))
    };
    a.ip() == b.ip() || covers(a, b) || covers(b, a)
}

fn check_listeners(cfg: &Config, host: &Host, p: &mut Problems) {
    let mut tcp: Vec<(&str, SocketAddr)> = Vec::new();
    let mut udp: Vec<(&str, SocketAddr)> = Vec::new();
    for a in &cfg.sip.listen {
        if cfg.sip.transports.contains(&Transport::Tcp) {
            tcp.push(("sip.listen", *a));
        }
        if cfg.sip.transports.contains(&Transport::Udp) {
            udp.push(("sip.listen", *a));
        }
    }
    if cfg.sip.tls.enabled() {
        tcp.push(("sip.tls.listen", cfg.sip.tls.listen));
    }
    if let Some(a) = cfg.metrics.listen {
        check_port("metrics.listen", a, "9464", p);
        tcp.push(("metrics.listen", a));
    }
    check_port("admin.listen", cfg.admin.listen, "8960", p);
    tcp.push(("admin.listen", cfg.admin.listen));

    for list in [&tcp, &udp] {
        for (i, (key, a)) in list.iter().enumerate() {
            let Some((other_key, b)) = list[..i]
                .iter()
                .find(|(_, b)| overlaps(*a, *b, host.dual_stack))
            else {
                continue;
            };
            let what = if a == b && key == other_key {
                "is listed twice".to_string()
            } else if a.is_ipv4() != b.is_ipv4() {
                format!(
                    "conflicts with {other_key} (\"{b}\"): on this host an IPv6 wildcard socket also takes IPv4 (net.ipv6.bindv6only = 0), so \"[::]:{}\" alone covers both; remove the other",
                    a.port()
                )
            } else {
                format!(
                    "conflicts with {other_key} (\"{b}\"): both would listen on port {}",
                    a.port()
                )
            };
            p.add(key, format!("\"{a}\" {what}"));
        }
    }
}

fn check_admin(cfg: &Config, p: &mut Problems) {
    let admin = &cfg.admin;
    match &admin.token {
        None if !admin.listen.ip().is_loopback() => p.add(
            "admin.token",
            format!(
                "is required because admin.listen (\"{}\") is not a loopback address: set a random string of at least {MIN_TOKEN_LEN} characters (e.g. from `openssl rand -hex 32`), or listen on 127.0.0.1",
                admin.listen
            ),
        ),
        Some(t) if t.len() < MIN_TOKEN_LEN => p.add(
            "admin.token",
            format!("is shorter than {MIN_TOKEN_LEN} characters: use a random string, e.g. from `openssl rand -hex 32`"),
        ),
        Some(t) if !t.bytes().all(|b| b.is_ascii_graphic()) => p.add(
            "admin.token",
            "may only hold printable ASCII without spaces (it is sent in an HTTP header)",
        ),
        _ => {}
    }
}

fn check_log(cfg: &Config, p: &mut Problems) {
    let level = cfg.log.level.trim();
    let simple = !level.contains(',') && !level.contains('=');
    let bad = |what: &str| {
        let problem = if simple {
            what.to_string()
        } else {
            format!("\"{}\": {what}", cfg.log.level)
        };
        format!(
            "{problem}: use one of error, warn, info, debug, trace or off, optionally with per-module levels such as \"info,mediafork_control::sip=debug\""
        )
    };
    if level.is_empty() {
        p.add("log.level", bad("is empty"));
        return;
    }
    for part in level.split(',').map(str::trim) {
        let (target, lvl) = match part.split_once('=') {
            Some((t, l)) => (Some(t.trim()), l.trim()),
            None => (None, part),
        };
        if let Some(t) = target {
            if t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            {
                p.add("log.level", bad(&format!("\"{t}\" is not a module path")));
                return;
            }
        }
        if !LOG_LEVELS.contains(&lvl.to_ascii_lowercase().as_str()) {
            p.add("log.level", bad(&format!("\"{lvl}\" is not a level")));
            return;
        }
    }
}

fn check_dpdk(cfg: &Config, p: &mut Problems) {
    let dpdk = &cfg.dpdk;
    let workers = cfg.media.workers.max(1);
    let port_missing = match dpdk.port.as_deref() {
        None => true,
        Some(s) => s.trim().is_empty(),
    };
    if port_missing {
        p.add(
            "dpdk.port",
            "is required with media.backend = \"dpdk\": the NIC's PCI address (e.g. \"0000:3b:00.0\"), a DPDK port id, or a vdev name",
        );
    }
    if let Some(q) = dpdk.rx_queues {
        if usize::from(q) != workers {
            p.add(
                "dpdk.rx_queues",
                format!(
                    "is {q} but there are {workers} worker(s) (media.workers): each worker polls one queue, so set it to {workers} or remove it"
                ),
            );
        }
    }
    if dpdk.eal_args.iter().any(|a| a.contains('\0')) {
        p.add("dpdk.eal_args", "an argument contains a NUL character");
    }
    if dpdk.mempool_cache > MAX_MEMPOOL_CACHE {
        p.add(
            "dpdk.mempool_cache",
            format!(
                "{} is above DPDK's limit of {MAX_MEMPOOL_CACHE} (256 is usual)",
                dpdk.mempool_cache
            ),
        );
    } else if u64::from(dpdk.mempool_cache) * 3 > u64::from(dpdk.mempool_mbufs) * 2 {
        p.add(
            "dpdk.mempool_cache",
            format!(
                "{} is more than dpdk.mempool_mbufs / 1.5, which DPDK refuses",
                dpdk.mempool_cache
            ),
        );
    }
    let queues = u64::from(dpdk.rx_queues.unwrap_or(0)).max(workers as u64);
    let needed = queues * RX_DESC_PER_QUEUE
        + u64::from(dpdk.mempool_cache) * (workers as u64 + 1)
        + MEMPOOL_SLACK;
    if u64::from(dpdk.mempool_mbufs) < needed {
        let suggest = (needed + 1).next_power_of_two() - 1;
        p.add(
            "dpdk.mempool_mbufs",
            format!(
                "{} is too few for {queues} rx queue(s) of {RX_DESC_PER_QUEUE} descriptors plus the per-core caches: the NIC would drop packets when the pool runs dry; use at least {needed} (e.g. {suggest})",
                dpdk.mempool_mbufs
            ),
        );
    }
}

/// Things that work but are probably not what the operator wants.
pub(crate) fn warnings(cfg: &Config) -> Vec<Problem> {
    let mut p = Problems::default();
    if cfg.sip.allowed_sources.is_empty() {
        p.add(
            "sip.allowed_sources",
            "is empty: SIP is accepted from any address; list your SBCs' and CUCM's addresses",
        );
    }
    if let MediaAddr::Ip(ip) = cfg.media.address {
        if ip.is_loopback() {
            p.add(
                "media.address",
                format!(
                    "\"{ip}\" is a loopback address: SBCs on other hosts cannot send media to it"
                ),
            );
        }
    }
    let ports = cfg.media.rtp_ports.len();
    if cfg.media.rtp_ports.lo <= cfg.media.rtp_ports.hi
        && cfg.limits.max_calls.saturating_mul(PORTS_PER_CALL) > ports
    {
        p.add(
            "limits.max_calls",
            format!(
                "{} calls need up to {} media ports but media.rtp_ports has {ports}: calls beyond about {} will be refused for lack of ports",
                cfg.limits.max_calls,
                cfg.limits.max_calls.saturating_mul(PORTS_PER_CALL),
                ports / PORTS_PER_CALL
            ),
        );
    }
    if cfg.media.max_tracks < cfg.limits.max_calls.saturating_mul(2) {
        p.add(
            "media.max_tracks",
            format!(
                "{} is fewer than two tracks per call for limits.max_calls = {}: calls will be refused before max_calls is reached",
                cfg.media.max_tracks, cfg.limits.max_calls
            ),
        );
    }
    if let Some(a) = cfg.metrics.listen {
        if !a.ip().is_loopback() {
            p.add(
                "metrics.listen",
                format!(
                    "\"{a}\" is not a loopback address: metrics are served without authentication"
                ),
            );
        }
    }
    if !cfg.encryption.enabled && cfg.encryption.public_key.is_some() {
        p.add(
            "encryption.public_key",
            "is set but encryption.enabled is false: recordings are written in the clear",
        );
    }
    if cfg.media.backend == Backend::Socket && cfg.dpdk.port.is_some() {
        p.add(
            "dpdk.port",
            "is set but media.backend is \"socket\": the [dpdk] section is ignored",
        );
    }
    p.0
}
