//! The thin tokio layer of `mediafork run`: starts the data plane, binds
//! the SIP transports, and runs the loop that feeds received messages and
//! time into the transaction layer and the recorder, and sends what they
//! produce. One task owns all protocol state; nothing here blocks it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediafork_dataplane::backend::{SocketBackend, SocketConfig};
use mediafork_dataplane::engine::Engine;
use mediafork_dataplane::recording::recovery;
use mediafork_dataplane::writer::WriterEvent;
use tokio::sync::mpsc;

use super::admin_ops::{Ops, EVENT_BACKLOG};
use super::answer::Ports;
use super::housekeeping::Housekeeping;
use super::recorder::{MediaReceivers, PortAllocator, PortUsage, Recorder, RecorderConfig};
use super::transport::{self, Acl, Inbound, Prefix, Sender, TlsSettings};
use crate::admin::api::{AdminRequest, NicStats, ReloadResult};
use crate::config::{Backend, CallAssignment, Config, MediaAddr, Transport as CfgTransport};
use crate::ports::{PortPool, Ports as PoolPorts};
use crate::sip::txn::{ServerTransactions, Timers, TuEvent, TxnId};
use crate::sip::{Method, SipMessage};

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServerError(pub String);

fn err(e: impl std::fmt::Display) -> ServerError {
    ServerError(e.to_string())
}

/// `PortAllocator` over the control plane's pool.
struct Pool(PortPool);

impl PortAllocator for Pool {
    fn allocate(&mut self, now: Instant, mux: bool) -> Option<Ports> {
        if mux {
            self.0
                .allocate_single(now)
                .ok()
                .map(|p| Ports { rtp: p, rtcp: None })
        } else {
            self.0.allocate_pair(now).ok().map(|p| Ports {
                rtp: p.rtp,
                rtcp: Some(p.rtcp),
            })
        }
    }

    fn release(&mut self, now: Instant, ports: Ports) {
        let r = match ports.rtcp {
            Some(rtcp) => self.0.release(
                now,
                PoolPorts::Pair(crate::ports::PortPair {
                    rtp: ports.rtp,
                    rtcp,
                }),
            ),
            None => self.0.release(now, PoolPorts::Single(ports.rtp)),
        };
        if let Err(e) = r {
            tracing::error!(error = %e, "port release refused");
        }
    }

    fn free(&self) -> usize {
        self.0.free()
    }

    fn reclaim(&mut self, now: Instant) {
        self.0.reclaim(now);
    }

    fn usage(&self) -> PortUsage {
        PortUsage {
            total: self.0.total(),
            in_use: self.0.in_use(),
            quarantined: self.0.quarantined(),
            free: self.0.free(),
            free_pairs: self.0.free_pairs(),
        }
    }
}

/// `MediaReceivers` over the socket backend: one socket per port, given to
/// a worker round-robin or to the least loaded one.
struct Sockets {
    backend: Arc<SocketBackend>,
    assignment: CallAssignment,
    next: usize,
    load: Vec<usize>,
    owner: HashMap<SocketAddr, usize>,
}

impl MediaReceivers for Sockets {
    fn open(&mut self, addr: SocketAddr) -> std::io::Result<()> {
        let n = self.load.len().max(1);
        let worker = match self.assignment {
            CallAssignment::RoundRobin => {
                // RTP and its RTCP port go to the same worker.
                let w = if addr.port() % 2 == 1 {
                    self.next.wrapping_sub(1) % n
                } else {
                    self.next % n
                };
                if addr.port() % 2 == 0 {
                    self.next = self.next.wrapping_add(1);
                }
                w
            }
            CallAssignment::LeastLoaded => (0..n)
                .min_by_key(|w| self.load.get(*w).copied().unwrap_or(0))
                .unwrap_or(0),
        };
        self.backend
            .open(addr, worker)
            .map_err(std::io::Error::from)?;
        if let Some(l) = self.load.get_mut(worker) {
            *l += 1;
        }
        self.owner.insert(addr, worker);
        Ok(())
    }

    fn close(&mut self, addr: SocketAddr) {
        if let Some(w) = self.owner.remove(&addr) {
            if let Some(l) = self.load.get_mut(w) {
                *l = l.saturating_sub(1);
            }
        }
        let _ = self.backend.close(addr);
    }
}

/// The media address when the configuration says `auto`: the SIP listen
/// address if it is a specific one, else the first non-loopback IPv4
/// address of an interface that is up, else loopback.
pub fn resolve_media_addr(config: &Config) -> IpAddr {
    if let MediaAddr::Ip(ip) = config.media.address {
        return ip;
    }
    if let Some(a) = config.sip.listen.iter().find(|a| !a.ip().is_unspecified()) {
        return a.ip();
    }
    use nix::net::if_::InterfaceFlags;
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            if !ifa.flags.contains(InterfaceFlags::IFF_UP)
                || ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK)
            {
                continue;
            }
            if let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
                return IpAddr::V4(sin.ip());
            }
        }
    }
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// Changes the log filter at run time (`log.level` on SIGHUP).
pub type SetLogLevel = Box<dyn Fn(&str) -> Result<(), String> + Send>;

/// What SIGHUP needs to reload the configuration.
pub struct Reload {
    /// The file to read again (none: embedded defaults, nothing to reload).
    pub path: Option<std::path::PathBuf>,
    /// Command-line values, applied again over the file.
    pub overrides: crate::config::Overrides,
    /// Changes the log filter (`log.level`).
    pub set_log_level: SetLogLevel,
}

fn acl_of(config: &Config) -> Acl {
    Acl {
        allow: config
            .sip
            .allowed_sources
            .iter()
            .map(|n| Prefix {
                addr: n.addr(),
                len: n.prefix_len(),
            })
            .collect(),
    }
}

/// The packet backend of a running server, kept alive until the engine
/// has shut down.
enum Media {
    Socket(Arc<SocketBackend>),
    #[cfg(feature = "dpdk")]
    Dpdk {
        backend: crate::dpdk_backend::DpdkBackend,
        stats: crate::dpdk_backend::StatsLogger,
    },
}

/// `MediaReceivers` for a NIC polled by DPDK: the NIC hands every packet to
/// a worker (spread by RSS), so a port needs nothing opened; the demux
/// table, which the recorder fills either way, decides what is recorded.
#[cfg(feature = "dpdk")]
struct NicSeesAll;

#[cfg(feature = "dpdk")]
impl MediaReceivers for NicSeesAll {
    fn open(&mut self, _addr: SocketAddr) -> std::io::Result<()> {
        Ok(())
    }

    fn close(&mut self, _addr: SocketAddr) {}
}

/// The DPDK settings of `config`.
#[cfg(feature = "dpdk")]
pub fn dpdk_options(config: &Config) -> Result<crate::dpdk_backend::DpdkOptions, ServerError> {
    let queues = u16::try_from(config.media.workers).map_err(|_| {
        ServerError(format!(
            "media.workers {} is too many",
            config.media.workers
        ))
    })?;
    Ok(crate::dpdk_backend::DpdkOptions {
        eal_args: config.dpdk.eal_args.clone(),
        port: config.dpdk.port.clone().unwrap_or_default(),
        rx_queues: config.dpdk.rx_queues.unwrap_or(queues),
        mempool_mbufs: config.dpdk.mempool_mbufs,
        mempool_cache: config.dpdk.mempool_cache,
    })
}

/// Start the configured packet backend and the workers polling it.
fn start_media(
    config: &Config,
    engine: &Engine,
    cores: Vec<mediafork_dataplane::worker::WorkerCore>,
    workers: usize,
) -> Result<(Media, Box<dyn MediaReceivers>), ServerError> {
    match config.media.backend {
        Backend::Socket => {
            let sock_cfg = SocketConfig {
                recv_buffer: config.media.socket_rcvbuf,
                ..SocketConfig::default()
            };
            let (backend, sources) = SocketBackend::with_config(workers, sock_cfg).map_err(err)?;
            engine.spawn_workers(cores, sources).map_err(err)?;
            let backend = Arc::new(backend);
            let sockets = Sockets {
                backend: backend.clone(),
                assignment: config.media.call_assignment,
                next: 0,
                load: vec![0; workers],
                owner: HashMap::new(),
            };
            Ok((Media::Socket(backend), Box::new(sockets)))
        }
        #[cfg(feature = "dpdk")]
        Backend::Dpdk => {
            use crate::dpdk_backend::{DpdkBackend, STATS_INTERVAL};
            let opts = dpdk_options(config)?;
            let (backend, sources) = DpdkBackend::start(&opts)
                .map_err(|e| ServerError(format!("--backend dpdk: {e}")))?;
            // Workers stop on an empty poll; a busy NIC never gives one.
            let stop = engine.shared().stop.clone();
            let sources: Vec<_> = sources
                .into_iter()
                .map(|s| s.with_stop(stop.clone()))
                .collect();
            engine.spawn_workers(cores, sources).map_err(err)?;
            let stats = backend
                .spawn_stats_logger(STATS_INTERVAL)
                .map_err(|e| ServerError(format!("starting the DPDK stats thread: {e}")))?;
            Ok((Media::Dpdk { backend, stats }, Box::new(NicSeesAll)))
        }
        #[cfg(not(feature = "dpdk"))]
        Backend::Dpdk => Err(no_dpdk()),
    }
}

#[cfg(not(feature = "dpdk"))]
fn no_dpdk() -> ServerError {
    ServerError(
        "--backend dpdk: this mediafork was built without DPDK support; rebuild with \
         `cargo build --release -p mediafork-control --features dpdk` (needs libdpdk-dev)"
            .into(),
    )
}

/// Run the recording server until SIGTERM/SIGINT and a clean drain.
pub async fn run(config: Config, reload: Reload) -> Result<(), ServerError> {
    #[cfg(not(feature = "dpdk"))]
    if config.media.backend == Backend::Dpdk {
        return Err(no_dpdk());
    }
    let media_ip = resolve_media_addr(&config);
    let dp = config.try_dataplane().map_err(err)?;
    std::fs::create_dir_all(&dp.recordings_dir).map_err(|e| {
        ServerError(format!(
            "recordings.dir {}: {e}",
            dp.recordings_dir.display()
        ))
    })?;
    let (recovered, problems) = recovery::recover(&dp.recordings_dir);
    for r in &recovered {
        tracing::warn!(dir = %r.dir.display(), tracks = r.tracks, "recording left open by an earlier run repaired and marked incomplete");
    }
    for p in problems {
        tracing::error!("recovery: {p}");
    }

    if config.media.backend == Backend::Dpdk && config.media.address == MediaAddr::Auto {
        tracing::warn!(
            media = %media_ip,
            "media.address is \"auto\", taken from a kernel interface: with the DPDK backend set \
             it to the address the DPDK port receives media on (docs/dpdk.md)"
        );
    }
    let (engine, cores) = Engine::start(dp.clone()).map_err(err)?;
    let (media, receivers) = match start_media(&config, &engine, cores, dp.workers) {
        Ok(m) => m,
        Err(e) => {
            // Writers stop cleanly; nothing was recorded.
            drop(engine.shutdown());
            return Err(e);
        }
    };
    let engine = Arc::new(engine);

    let pool = Pool(PortPool::new(
        config.media.rtp_ports,
        config.media.port_quarantine,
    ));
    let first_listen = config
        .sip
        .listen
        .first()
        .copied()
        .unwrap_or_else(|| SocketAddr::new(media_ip, 5060));
    let contact_host = if first_listen.ip().is_unspecified() {
        media_ip
    } else {
        first_listen.ip()
    };
    let contact = SocketAddr::new(contact_host, first_listen.port()).to_string();
    let recorder_cfg = RecorderConfig {
        media_addr: media_ip,
        max_calls: config.limits.max_calls,
        max_calls_per_source: config.limits.max_calls_per_source,
        pcap: config.recordings.pcap,
        options_always_ok: config.sip.options_response == crate::config::OptionsResponse::AlwaysOk,
        user_agent: config.sip.user_agent.clone(),
        min_se: config.sip.min_se,
        session_expires: config.sip.session_expires_default,
        contact,
        on_demand: config.recordings.mode == crate::config::RecordingMode::OnDemand,
        source_policy: config.media.source_policy,
        no_media_timeout: config.limits.no_media_timeout,
    };
    let mut recorder = Recorder::new(engine.clone(), recorder_cfg, Box::new(pool), receivers);

    let acl: transport::SharedAcl = Arc::new(std::sync::RwLock::new(acl_of(&config)));
    let tls = match (&config.sip.tls.cert, &config.sip.tls.key) {
        (Some(c), Some(k)) => Some(TlsSettings {
            listen: config.sip.tls.listen,
            acceptor: transport::tls_acceptor(c, k, config.sip.tls.client_ca.as_deref())
                .map_err(ServerError)?,
        }),
        _ => None,
    };
    let tcp = config.sip.transports.contains(&CfgTransport::Tcp);
    let (tx, rx) = mpsc::channel::<Inbound>(4096);
    let flood_guard: transport::SharedGuard = Arc::new(std::sync::Mutex::new(
        super::flood::FloodGuard::new(flood_limits(&config), Instant::now()),
    ));
    let listeners = transport::listen(
        &config.sip.listen,
        tcp,
        tls,
        acl.clone(),
        flood_guard.clone(),
        tx,
    )
    .await
    .map_err(err)?;
    for (t, a) in &listeners.local {
        tracing::info!(transport = ?t, addr = %a, "SIP listening");
    }
    let _metrics = match config.metrics.listen {
        Some(addr) => {
            let h = crate::metrics::install(addr).map_err(|e| {
                ServerError(format!(
                    "metrics.listen {addr}: {e}; set [metrics] listen or --metrics-listen to a free address"
                ))
            })?;
            tracing::info!(addr = %h.listen(), "Prometheus metrics on http://{}/metrics", h.listen());
            Some(h)
        }
        None => None,
    };
    let (events_tx, _) = tokio::sync::broadcast::channel(EVENT_BACKLOG);
    let (admin_tx, admin_rx) = mpsc::channel::<AdminRequest>(256);
    let admin_listener = tokio::net::TcpListener::bind(config.admin.listen)
        .await
        .map_err(|e| {
            ServerError(format!(
                "admin.listen {}: {e}; set [admin] listen or --admin-listen to a free address",
                config.admin.listen
            ))
        })?;
    let admin_addr = admin_listener.local_addr().map_err(err)?;
    let admin_state = crate::admin::http::AdminState {
        requests: admin_tx,
        events: events_tx.clone(),
        token: config.admin.token.clone(),
        recordings_dir: dp.recordings_dir.clone(),
    };
    tokio::spawn(async move {
        if let Err(e) = crate::admin::http::serve(admin_listener, admin_state).await {
            tracing::error!(error = %e, "admin API stopped");
        }
    });
    tracing::info!(addr = %admin_addr, "admin API listening");
    let backend_name = match &media {
        Media::Socket(_) => "socket".to_string(),
        #[cfg(feature = "dpdk")]
        Media::Dpdk { backend, .. } => format!("dpdk:{}", backend.port_name()),
    };
    tracing::info!(media = %media_ip, ports = %config.media.rtp_ports, workers = dp.workers, backend = %backend_name, recordings = %dp.recordings_dir.display(), "mediafork recording server started");
    let mut ops = Ops::new(
        backend_name.clone(),
        config.media.worker_cores.clone(),
        dp.workers,
        dp.writers,
        config.media.rtp_ports.to_string(),
        dp.recordings_dir.clone(),
        events_tx,
    );
    let nic = || nic_stats(&media);
    let mut housekeeping = Housekeeping::new(
        dp.recordings_dir.clone(),
        &config.storage,
        backend_name.clone(),
    );
    // Know the volume's state before the first call: a recorder started on
    // a full disk refuses calls from the start.
    housekeeping.measure_now(&mut recorder, &mut ops);
    // Signal handlers exist before the ready line: a SIGTERM sent as soon
    // as the line appears must drain, not kill.
    let signals = Signals::install()?;
    // A line tests and operators can wait for.
    println!(
        "mediafork: ready: sip {} media {} ports {} admin http://{}{}",
        listeners
            .local
            .iter()
            .map(|(t, a)| format!("{t:?}/{a}").to_lowercase())
            .collect::<Vec<_>>()
            .join(","),
        media_ip,
        config.media.rtp_ports,
        admin_addr,
        _metrics
            .as_ref()
            .map(|h| format!(" metrics http://{}/metrics", h.listen()))
            .unwrap_or_default()
    );
    // After crash recovery: recordings it closed are eligible.
    let retention = tokio::spawn(crate::storage::retention_task(
        dp.recordings_dir.clone(),
        config.retention.clone(),
        |r: &crate::storage::SweepReport| crate::metrics::recordings_deleted(r.deleted.len() as u64),
    ));

    let grace = config.shutdown.grace_period;
    let reloader = Reloader {
        reload,
        current: config,
        acl,
        flood: flood_guard,
    };
    let result = event_loop(
        engine.clone(),
        recorder,
        Channels {
            sender: listeners.sender,
            rx,
            admin: admin_rx,
            signals,
        },
        grace,
        reloader,
        ops,
        housekeeping,
        &nic,
    )
    .await;
    retention.abort();
    // Workers and writers finish: every file is closed and every meta.json
    // written before the process exits.
    let engine = Arc::try_unwrap(engine)
        .map_err(|_| ServerError("engine still in use at shutdown".into()))?;
    for e in engine.shutdown() {
        log_closed(&e);
    }
    // The workers are gone: now the DPDK port can stop and the EAL end.
    match media {
        Media::Socket(backend) => drop(backend),
        #[cfg(feature = "dpdk")]
        Media::Dpdk { backend, stats } => {
            drop(stats);
            if let Some(c) = backend.latest_counters() {
                tracing::info!(port = %c.port, ipackets = c.ipackets, imissed = c.imissed, ierrors = c.ierrors, rx_nombuf = c.rx_nombuf, "DPDK port totals");
            }
            drop(backend);
        }
    }
    tracing::info!("mediafork stopped");
    result
}

/// The DPDK port's counters, for `stats` and metrics.
fn nic_stats(media: &Media) -> Option<NicStats> {
    match media {
        Media::Socket(_) => None,
        #[cfg(feature = "dpdk")]
        Media::Dpdk { backend, .. } => backend.latest_counters().map(|c| NicStats {
            port: c.port,
            driver: c.driver,
            ipackets: c.ipackets,
            ibytes: c.ibytes,
            imissed: c.imissed,
            ierrors: c.ierrors,
            rx_nombuf: c.rx_nombuf,
            queues: c
                .queues
                .iter()
                .map(|q| crate::admin::api::NicQueueStats {
                    queue: q.queue,
                    packets: q.packets,
                    bytes: q.bytes,
                    errors: q.errors,
                })
                .collect(),
        }),
    }
}

/// What the loop receives and sends on.
struct Channels {
    sender: Sender,
    rx: mpsc::Receiver<Inbound>,
    admin: mpsc::Receiver<AdminRequest>,
    signals: Signals,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self, ServerError> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(err)?,
            int: signal(SignalKind::interrupt()).map_err(err)?,
            hup: signal(SignalKind::hangup()).map_err(err)?,
        })
    }
}

fn log_closed(e: &WriterEvent) {
    let WriterEvent::Closed(c) = e;
    tracing::info!(recording_id = %c.meta.recording_id, call_id = c.meta.call.sip_call_id.as_deref().unwrap_or(""), dir = %c.dir.display(), complete = c.meta.complete, tracks = c.meta.tracks.len(), "recording closed");
}

#[allow(clippy::too_many_arguments)]
async fn event_loop(
    engine: Arc<Engine>,
    mut recorder: Recorder,
    channels: Channels,
    grace: Duration,
    mut reloader: Reloader,
    mut ops: Ops,
    mut housekeeping: Housekeeping,
    nic: &dyn Fn() -> Option<NicStats>,
) -> Result<(), ServerError> {
    let Channels {
        sender,
        mut rx,
        admin: mut admin_rx,
        signals:
            Signals {
                term: mut sigterm,
                int: mut sigint,
                hup: mut sighup,
            },
    } = channels;
    let mut txns = ServerTransactions::new(Timers::default());
    // INVITE transactions whose dialog the recorder created, to undo on
    // CANCEL or a missing ACK.
    let mut invites: HashMap<TxnId, String> = HashMap::new();
    let mut drain_deadline: Option<Instant> = None;
    // Malformed SIP is logged once per source per window.
    let mut malformed_log = super::log_window::LogWindow::default();
    // Closed recordings come from the writers over a channel the loop
    // cannot await; the tick bounds how late `call_ended` is reported.
    let tick = Duration::from_millis(100);
    loop {
        let now = Instant::now();
        let mut wake = now + tick;
        for t in [
            txns.poll_timeout(),
            recorder.poll_timeout(),
            drain_deadline,
            Some(housekeeping.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        {
            wake = wake.min(t);
        }
        tokio::select! {
            m = rx.recv() => {
                let Some(m) = m else { break };
                if let Some(resp) = on_inbound(&mut txns, &sender, &mut malformed_log, m).await {
                    if let (Some(code), Ok((_, method))) = (resp.status(), resp.cseq()) {
                        crate::metrics::sip_response_received(method.as_str(), code);
                    }
                    recorder.on_response(Instant::now(), &resp);
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            _ = sigterm.recv() => drain_deadline = Some(begin_drain(&mut recorder, grace, "SIGTERM")),
            _ = sigint.recv() => drain_deadline = Some(begin_drain(&mut recorder, grace, "SIGINT")),
            _ = sighup.recv() => {
                reloader.reload(&mut recorder);
            }
            Some(req) = admin_rx.recv() => {
                ops.handle(req, &mut recorder, &engine, nic(), &mut |r| reloader.reload(r));
            }
        }
        let now = Instant::now();
        txns.handle_timeout(now);
        for ob in recorder.handle_timeout(now) {
            let peer = crate::sip::txn::Peer {
                addr: ob.to,
                transport: if ob.reliable_conn.is_some() {
                    crate::sip::txn::Transport::Tcp
                } else {
                    crate::sip::txn::Transport::Udp
                },
                conn: ob.reliable_conn,
            };
            if let Some(m) = ob.request.method() {
                crate::metrics::sip_request_sent(m.as_str());
            }
            sender.send(&peer, ob.request.to_bytes()).await;
        }
        while let Some(ev) = txns.poll_event() {
            match ev {
                TuEvent::Request { id, request, peer } => {
                    let is_invite = request.method() == Some(&Method::Invite);
                    // Every line logged about this request names its call.
                    let _span = tracing::info_span!(
                        "sip",
                        call_id = request.call_id().unwrap_or(""),
                        method = request.method().map_or("", |m| m.as_str()),
                    )
                    .entered();
                    let method = request.method().map_or("", |m| m.as_str()).to_string();
                    crate::metrics::sip_request(&method);
                    if let Some(resp) = recorder.on_request(now, &request, peer.addr, peer.conn) {
                        if let Some(code) = resp.status() {
                            crate::metrics::sip_response(&method, code);
                        }
                        if is_invite && resp.status().is_some_and(|c| (200..300).contains(&c)) {
                            if let Ok(c) = request.call_id() {
                                invites.insert(id, c.to_string());
                            }
                        }
                        if let Err(e) = txns.respond(now, id, resp) {
                            tracing::debug!(error = %e, "response not sent");
                        }
                    }
                }
                TuEvent::Ack { request, .. } => {
                    if let Ok(c) = request.call_id() {
                        invites.retain(|_, v| v != c);
                    }
                }
                TuEvent::Cancelled { invite } | TuEvent::AckTimeout { id: invite } => {
                    if let Some(call_id) = invites.remove(&invite) {
                        recorder.abort_dialog(now, &call_id, "no_ack");
                    }
                }
                TuEvent::TransportError { id } => {
                    invites.remove(&id);
                }
            }
        }
        while let Some(t) = txns.poll_transmit() {
            sender.send(&t.peer, t.bytes).await;
        }
        housekeeping.run(now, &mut recorder, &engine, &mut ops, nic());
        ops.drain_events(&mut recorder);
        for e in engine.closed() {
            log_closed(&e);
            let WriterEvent::Closed(c) = &e;
            for t in &c.meta.tracks {
                crate::metrics::track_ended(
                    t.jitter_ms / 1000.0,
                    t.lost,
                    t.duplicates,
                    t.reordered,
                    t.late,
                );
            }
            ops.call_ended(&c.dir, &c.meta);
        }
        if let Some(deadline) = drain_deadline {
            if recorder.active_dialogs() == 0 || now >= deadline {
                if recorder.active_dialogs() > 0 {
                    tracing::warn!(
                        calls = recorder.active_dialogs(),
                        "grace period over: closing the remaining recordings"
                    );
                }
                recorder.end_all(now, "shutdown");
                while let Some(t) = txns.poll_transmit() {
                    sender.send(&t.peer, t.bytes).await;
                }
                break;
            }
        }
    }
    Ok(())
}

struct Reloader {
    reload: Reload,
    current: Config,
    acl: transport::SharedAcl,
    flood: transport::SharedGuard,
}

/// The flood guard's limits from `sip.flood_rate` / `sip.flood_burst`.
fn flood_limits(config: &Config) -> super::flood::FloodLimits {
    super::flood::FloodLimits {
        rate: f64::from(config.sip.flood_rate),
        burst: f64::from(config.sip.flood_burst),
        ..super::flood::FloodLimits::default()
    }
}

impl Reloader {
    /// SIGHUP: read the file again, apply what can change at run time, and
    /// name what needs a restart. A bad file changes nothing.
    fn reload(&mut self, recorder: &mut Recorder) -> ReloadResult {
        let refused = |message: String| {
            tracing::error!("reload: {message}");
            ReloadResult {
                applied: false,
                message,
                needs_restart: Vec::new(),
            }
        };
        let Some(path) = &self.reload.path else {
            let message =
                "running on embedded defaults (no --config): nothing to reload".to_string();
            tracing::info!("reload: {message}");
            return ReloadResult {
                applied: false,
                message,
                needs_restart: Vec::new(),
            };
        };
        let mut new = match Config::load(path) {
            Ok(c) => c,
            Err(e) => return refused(format!("{e}; keeping the running configuration")),
        };
        if let Err(e) = new.apply(self.reload.overrides.clone()) {
            return refused(format!("{e}; keeping the running configuration"));
        }
        let needs_restart = match self.current.changes_needing_restart(&new) {
            Ok(keys) if !keys.is_empty() => {
                tracing::warn!(keys = %keys.join(", "), "reload: these changes need a restart and were not applied");
                keys
            }
            _ => Vec::new(),
        };
        *self.acl.write().unwrap_or_else(|p| p.into_inner()) = acl_of(&new);
        self.flood
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_limits(flood_limits(&new));
        recorder.reload(
            new.limits.max_calls,
            new.limits.max_calls_per_source,
            new.recordings.pcap,
            new.limits.no_media_timeout,
        );
        if let Err(e) = (self.reload.set_log_level)(&new.log.level) {
            tracing::error!("reload: log.level {:?}: {e}", new.log.level);
        }
        // Keys that need a restart keep their running values.
        self.current.sip.allowed_sources = new.sip.allowed_sources;
        self.current.sip.flood_rate = new.sip.flood_rate;
        self.current.sip.flood_burst = new.sip.flood_burst;
        self.current.limits = new.limits;
        self.current.recordings.pcap = new.recordings.pcap;
        self.current.log.level = new.log.level;
        let message = format!(
            "configuration reloaded from {} (allowed sources, flood limits, limits, pcap, log level)",
            path.display()
        );
        tracing::info!("reload: {message}");
        ReloadResult {
            applied: true,
            message,
            needs_restart,
        }
    }
}

fn begin_drain(recorder: &mut Recorder, grace: Duration, why: &str) -> Instant {
    tracing::info!(
        signal = why,
        calls = recorder.active_dialogs(),
        grace_s = grace.as_secs(),
        "draining: new calls get 503; waiting for calls in progress"
    );
    recorder.set_draining(true);
    Instant::now() + grace
}

/// Parse and hand a message to the transaction layer; answer what cannot
/// be parsed with a 400 naming the problem, when there is enough of a
/// request to answer, and drop (and count) the rest. Either is logged once
/// per source per window (`logs`).
/// Responses (to our own BYEs) are handed back to the caller.
async fn on_inbound(
    txns: &mut ServerTransactions,
    sender: &Sender,
    logs: &mut super::log_window::LogWindow,
    m: Inbound,
) -> Option<SipMessage> {
    let now = Instant::now();
    match SipMessage::parse(&m.bytes) {
        Ok(msg) if msg.is_request() => {
            if let Err(e) = txns.on_request(now, msg, m.peer) {
                tracing::debug!(error = %e, "request not matchable");
            }
        }
        Ok(resp) => return Some(resp),
        Err(e) => {
            let limits = crate::sip::ParseLimits::default();
            let error: String = e
                .to_string()
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            let answered = match SipMessage::parse_unvalidated(&m.bytes, &limits) {
                Ok(msg)
                    if msg.is_request()
                        && msg.method() != Some(&Method::Ack)
                        && msg.header("Via").is_some() =>
                {
                    let reason: String = format!("Bad Request: {e}")
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(200)
                        .collect();
                    let resp = SipMessage::response(&msg, 400, &reason);
                    let method = msg.method().map_or("", |m| m.as_str()).to_string();
                    crate::metrics::sip_request(&method);
                    crate::metrics::sip_response(&method, 400);
                    sender.send(&m.peer, resp.to_bytes()).await;
                    true
                }
                _ => {
                    crate::metrics::sip_dropped("unparseable");
                    false
                }
            };
            if let Some(suppressed) = logs.check("unparseable", m.peer.addr.ip(), now) {
                tracing::warn!(
                    source = %m.peer.addr.ip(),
                    peer = %m.peer.addr,
                    error = %error,
                    action = if answered { "answered 400" } else { "dropped" },
                    suppressed,
                    "unparseable SIP (logged once per source per 10 s)"
                );
            }
        }
    }
    None
}
