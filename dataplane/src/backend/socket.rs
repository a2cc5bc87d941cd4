//! The kernel-socket packet source: the default backend, for hosts without
//! DPDK and without root.
//!
//! The control plane binds one non-blocking UDP socket per allocated media
//! port ([`SocketBackend::open`]) and hands it to a worker; each worker's
//! [`SocketSource`] keeps its sockets in an `epoll` set and reads them in
//! batches with `recvmmsg`.
//!
//! # Cost per packet
//! A poll makes at most one `epoll_wait` (timeout 0) and one `recvmmsg` per
//! ready socket, reading up to [`MAX_BURST`] datagrams per call into buffers
//! allocated once. So the system calls are per *ready socket*, not per
//! packet, and nothing depends on how many sockets are open: a busy socket
//! yields 32 datagrams per call. With thousands of calls at 50 packets/s
//! each, though, a socket usually holds one datagram when it is read, and
//! the kernel backend then approaches one `recvmmsg` per packet: that is the
//! price of letting the kernel demultiplex ports, and the reason the DPDK
//! backend exists. Nothing here allocates after warm-up (the tables grow to
//! the largest number of sockets a worker has held, then stay), locks, or
//! reads the clock more than once per burst.
//!
//! # Fairness
//! Ready sockets wait in a FIFO queue. A socket that filled the rest of a
//! burst goes to the back (it may hold more); one that came up short is
//! drained and leaves the queue until epoll reports it again. New readiness
//! is fetched once per *round*, that is after every socket queued at the
//! previous fetch has been served once, so a flooded socket cannot starve
//! a quiet one: each ready socket is read at least once per round.
//!
//! # Opening and closing while the worker runs
//! [`SocketBackend::open`] binds the socket in the caller's thread (so a bind
//! error comes back at once, naming the address) and sends it to the worker
//! over a crossbeam channel. The worker drains that channel at the start of
//! every poll with `try_recv`, so it never waits on the control plane.
//! [`SocketBackend::close`] is asynchronous: the worker removes the socket
//! from its epoll set, reads what is still queued in it (up to
//! [`SocketConfig::close_drain_limit`] datagrams, delivered like any others),
//! then drops it; anything beyond that limit (only possible under a flood)
//! is discarded by the kernel with the socket. Until the worker has dropped
//! it the port stays bound, which is one more reason the port allocator
//! quarantines released ports before reusing them.
//!
//! At the end of a call, call [`SocketBackend::close`] right after
//! [`crate::engine::Engine::end_call`]: the worker reads its sockets
//! continuously, so what is still queued at that moment is at most a poll's
//! worth of traffic, and anything read after `end_call` is counted as
//! `unknown_port` rather than recorded into another call.
//!
//! # Addresses
//! `Frame::Udp::dst` is the socket's bound address. Bind the exact media
//! address the SDP advertises (not a wildcard) so that `dst` matches the
//! demultiplexer's binding; a wildcard-bound socket reports `0.0.0.0:port`.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{
    self as nsock, sockopt, AddressFamily, MsgFlags, MultiHeaders, SockFlag, SockProtocol,
    SockType, SockaddrIn, SockaddrIn6, SockaddrLike, SockaddrStorage,
};

use crate::source::{Frame, PacketSource, RxPacket, MAX_BURST};

/// Settings of the socket backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// `SO_RCVBUF` asked for each socket, in bytes. Best effort: Linux caps
    /// it at `net.core.rmem_max` (a warning is logged once when it does).
    /// A large buffer absorbs a worker's hiccups instead of dropping.
    pub recv_buffer: usize,
    /// Bytes per datagram buffer. 2048 holds any RTP audio packet; a longer
    /// datagram is counted as truncated and not delivered, because a cut
    /// RTP packet would record the wrong audio.
    pub datagram_capacity: usize,
    /// Readiness events fetched per `epoll_wait`, and the most sockets read
    /// in one poll: bounds how long a poll can take.
    pub max_events: usize,
    /// Datagrams still read from a socket after its close, before it is
    /// dropped (what was queued when the close arrived).
    pub close_drain_limit: usize,
    /// Sockets per worker to size the tables for up front; they grow past
    /// it if needed (on the control path, never per packet).
    pub expected_sockets: usize,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            recv_buffer: 1 << 20,
            datagram_capacity: 2048,
            max_events: 64,
            close_drain_limit: 256,
            expected_sockets: 4096,
        }
    }
}

/// Why a socket could not be opened or closed. Every message names the
/// address, so the operator can tell which port (and which call) failed.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot bind {addr}: {}", describe(.source))]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot set {option} on the socket for {addr}: {}", describe(.source))]
    SetOption {
        addr: SocketAddr,
        option: &'static str,
        source: io::Error,
    },
    #[error("{addr} is already open")]
    AlreadyOpen { addr: SocketAddr },
    #[error("{addr} is not open")]
    NotOpen { addr: SocketAddr },
    #[error("cannot open {addr} on worker {worker}: the socket backend has {workers} workers")]
    NoSuchWorker {
        addr: SocketAddr,
        worker: usize,
        workers: usize,
    },
    #[error("cannot open {addr}: worker {worker} has stopped")]
    WorkerGone { addr: SocketAddr, worker: usize },
    #[error("cannot create the epoll set of socket worker {worker}: {}", describe(.source))]
    Epoll { worker: usize, source: io::Error },
    #[error("the socket backend needs at least one worker")]
    NoWorkers,
    #[error("invalid socket backend configuration: {0}")]
    Config(String),
}

impl SocketError {
    /// The closest [`io::ErrorKind`], e.g. `AddrInUse` for a port taken by
    /// another process, so a caller can pick another port.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            SocketError::Bind { source, .. }
            | SocketError::SetOption { source, .. }
            | SocketError::Epoll { source, .. } => source.kind(),
            SocketError::AlreadyOpen { .. } => io::ErrorKind::AddrInUse,
            SocketError::NotOpen { .. } => io::ErrorKind::NotFound,
            SocketError::NoSuchWorker { .. } | SocketError::NoWorkers | SocketError::Config(_) => {
                io::ErrorKind::InvalidInput
            }
            SocketError::WorkerGone { .. } => io::ErrorKind::BrokenPipe,
        }
    }
}

impl From<SocketError> for io::Error {
    fn from(e: SocketError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// The OS's text for an error without Rust's `(os error N)` suffix:
/// `Address already in use`.
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// What one socket source has done, as a plain snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SocketStats {
    /// Datagrams handed to the worker.
    pub datagrams: u64,
    /// Their bytes (UDP payload).
    pub bytes: u64,
    /// Datagrams longer than [`SocketConfig::datagram_capacity`]: counted
    /// here and not delivered.
    pub truncated: u64,
    /// `recvmmsg` failures other than "nothing to read".
    pub recv_errors: u64,
    /// `epoll_wait` failures.
    pub poll_errors: u64,
    /// Sockets the worker could not add to its epoll set (dropped at once;
    /// the log names the address).
    pub watch_errors: u64,
    /// Sockets the worker serves now (closing ones included until dropped).
    pub sockets: u64,
    /// Sockets received from the control plane, and dropped, since start.
    pub opened: u64,
    pub closed: u64,
    /// `epoll_wait` and `recvmmsg` calls: `datagrams / recv_calls` is the
    /// batching the kernel backend achieves.
    pub epoll_waits: u64,
    pub recv_calls: u64,
}

impl SocketStats {
    /// Add another source's counters (for totals across workers).
    pub fn add(&mut self, o: &SocketStats) {
        self.datagrams += o.datagrams;
        self.bytes += o.bytes;
        self.truncated += o.truncated;
        self.recv_errors += o.recv_errors;
        self.poll_errors += o.poll_errors;
        self.watch_errors += o.watch_errors;
        self.sockets += o.sockets;
        self.opened += o.opened;
        self.closed += o.closed;
        self.epoll_waits += o.epoll_waits;
        self.recv_calls += o.recv_calls;
    }
}

/// The published copy of a source's counters: written only by its worker,
/// once per poll, read by the control plane and metrics. Aligned so that
/// two workers' copies never share a cache line.
#[repr(align(64))]
#[derive(Default)]
struct PublishedStats {
    datagrams: AtomicU64,
    bytes: AtomicU64,
    truncated: AtomicU64,
    recv_errors: AtomicU64,
    poll_errors: AtomicU64,
    watch_errors: AtomicU64,
    sockets: AtomicU64,
    opened: AtomicU64,
    closed: AtomicU64,
    epoll_waits: AtomicU64,
    recv_calls: AtomicU64,
}

impl PublishedStats {
    fn publish(&self, s: &SocketStats) {
        let r = Ordering::Relaxed;
        self.datagrams.store(s.datagrams, r);
        self.bytes.store(s.bytes, r);
        self.truncated.store(s.truncated, r);
        self.recv_errors.store(s.recv_errors, r);
        self.poll_errors.store(s.poll_errors, r);
        self.watch_errors.store(s.watch_errors, r);
        self.sockets.store(s.sockets, r);
        self.opened.store(s.opened, r);
        self.closed.store(s.closed, r);
        self.epoll_waits.store(s.epoll_waits, r);
        self.recv_calls.store(s.recv_calls, r);
    }

    fn snapshot(&self) -> SocketStats {
        let r = Ordering::Relaxed;
        SocketStats {
            datagrams: self.datagrams.load(r),
            bytes: self.bytes.load(r),
            truncated: self.truncated.load(r),
            recv_errors: self.recv_errors.load(r),
            poll_errors: self.poll_errors.load(r),
            watch_errors: self.watch_errors.load(r),
            sockets: self.sockets.load(r),
            opened: self.opened.load(r),
            closed: self.closed.load(r),
            epoll_waits: self.epoll_waits.load(r),
            recv_calls: self.recv_calls.load(r),
        }
    }
}

/// What the control plane sends a worker.
enum Control {
    Open {
        socket: UdpSocket,
        local: SocketAddr,
    },
    Close {
        local: SocketAddr,
    },
}

struct WorkerLink {
    tx: Sender<Control>,
    stats: Arc<PublishedStats>,
}

/// The control side of the socket backend: opens and closes the sockets of
/// media ports and routes them to workers. `Send + Sync`; its methods are
/// slow-path (system calls, a mutex) and never wait on a worker.
pub struct SocketBackend {
    config: SocketConfig,
    workers: Vec<WorkerLink>,
    /// Open address → the worker serving it, to route closes.
    open: Mutex<HashMap<SocketAddr, usize>>,
    rcvbuf_warned: AtomicBool,
}

impl SocketBackend {
    /// A backend with default settings and one [`SocketSource`] per worker,
    /// in worker order (ready for [`crate::engine::Engine::spawn_workers`]).
    pub fn new(workers: usize) -> Result<(SocketBackend, Vec<SocketSource>), SocketError> {
        Self::with_config(workers, SocketConfig::default())
    }

    /// Like [`SocketBackend::new`] with explicit settings.
    pub fn with_config(
        workers: usize,
        config: SocketConfig,
    ) -> Result<(SocketBackend, Vec<SocketSource>), SocketError> {
        if workers == 0 {
            return Err(SocketError::NoWorkers);
        }
        if config.datagram_capacity == 0 || config.datagram_capacity > 65_536 {
            return Err(SocketError::Config(format!(
                "datagram_capacity {} is not in 1..=65536",
                config.datagram_capacity
            )));
        }
        if config.max_events == 0 {
            return Err(SocketError::Config("max_events must be at least 1".into()));
        }
        let mut links = Vec::with_capacity(workers);
        let mut sources = Vec::with_capacity(workers);
        for id in 0..workers {
            let (tx, rx) = crossbeam_channel::unbounded();
            let stats = Arc::new(PublishedStats::default());
            sources.push(SocketSource::new(id, config.clone(), rx, stats.clone())?);
            links.push(WorkerLink { tx, stats });
        }
        let backend = SocketBackend {
            config,
            workers: links,
            open: Mutex::new(HashMap::new()),
            rcvbuf_warned: AtomicBool::new(false),
        };
        Ok((backend, sources))
    }

    /// Bind a non-blocking UDP socket to `local` and hand it to `worker`.
    /// `SO_REUSEADDR` is off (a port someone else holds is an error, not a
    /// silent share), IPv6 sockets are `IPV6_V6ONLY`, `SO_RCVBUF` is
    /// [`SocketConfig::recv_buffer`]. Returns the bound address, which
    /// differs from `local` only when `local` asks for port 0. The worker
    /// starts reading it at its next poll.
    pub fn open(&self, local: SocketAddr, worker: usize) -> Result<SocketAddr, SocketError> {
        let link = self.workers.get(worker).ok_or(SocketError::NoSuchWorker {
            addr: local,
            worker,
            workers: self.workers.len(),
        })?;
        if self.lock_open().contains_key(&local) {
            return Err(SocketError::AlreadyOpen { addr: local });
        }
        let (socket, bound) = self.bind(local)?;
        let mut open = self.lock_open();
        if open.contains_key(&bound) {
            return Err(SocketError::AlreadyOpen { addr: bound });
        }
        if link
            .tx
            .send(Control::Open {
                socket,
                local: bound,
            })
            .is_err()
        {
            return Err(SocketError::WorkerGone {
                addr: bound,
                worker,
            });
        }
        open.insert(bound, worker);
        Ok(bound)
    }

    /// Stop receiving on `local` (as returned by [`SocketBackend::open`]).
    /// Asynchronous: the worker reads what is still queued in the socket (up
    /// to [`SocketConfig::close_drain_limit`] datagrams) and then closes it,
    /// within a poll or two. A worker that has stopped has closed its sockets
    /// already, so that is not an error.
    pub fn close(&self, local: SocketAddr) -> Result<(), SocketError> {
        let worker = self
            .lock_open()
            .remove(&local)
            .ok_or(SocketError::NotOpen { addr: local })?;
        if let Some(link) = self.workers.get(worker) {
            // A send error means the source is gone, and its sockets with it.
            let _ = link.tx.send(Control::Close { local });
        }
        Ok(())
    }

    /// The worker serving `local`, if it is open.
    pub fn worker_of(&self, local: SocketAddr) -> Option<usize> {
        self.lock_open().get(&local).copied()
    }

    /// Addresses open now (from the control plane's point of view: a closed
    /// socket may still be draining on its worker).
    pub fn open_count(&self) -> usize {
        self.lock_open().len()
    }

    /// Number of workers (and sources).
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The counters `worker`'s source last published (once per poll).
    pub fn stats(&self, worker: usize) -> Option<SocketStats> {
        self.workers.get(worker).map(|w| w.stats.snapshot())
    }

    /// The sum over all workers.
    pub fn total_stats(&self) -> SocketStats {
        let mut t = SocketStats::default();
        for w in &self.workers {
            t.add(&w.stats.snapshot());
        }
        t
    }

    /// The settings the backend runs with.
    pub fn config(&self) -> &SocketConfig {
        &self.config
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bind(&self, local: SocketAddr) -> Result<(UdpSocket, SocketAddr), SocketError> {
        let bind_err = |e: Errno| SocketError::Bind {
            addr: local,
            source: e.into(),
        };
        let opt_err = |option: &'static str| {
            move |e: Errno| SocketError::SetOption {
                addr: local,
                option,
                source: e.into(),
            }
        };
        let family = match local {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let fd = nsock::socket(
            family,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::Udp,
        )
        .map_err(bind_err)?;
        nsock::setsockopt(&fd, sockopt::ReuseAddr, &false).map_err(opt_err("SO_REUSEADDR"))?;
        if local.is_ipv6() {
            nsock::setsockopt(&fd, sockopt::Ipv6V6Only, &true).map_err(opt_err("IPV6_V6ONLY"))?;
        }
        // Best effort: Linux silently caps the size at net.core.rmem_max.
        let want = self.config.recv_buffer;
        if want > 0 && nsock::setsockopt(&fd, sockopt::RcvBuf, &want).is_ok() {
            // Linux reports twice the size asked for (bookkeeping overhead).
            if let Ok(got) = nsock::getsockopt(&fd, sockopt::RcvBuf) {
                if got / 2 < want && !self.rcvbuf_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        requested = want,
                        granted = got / 2,
                        "SO_RCVBUF capped by the kernel; raise net.core.rmem_max for deeper socket queues"
                    );
                }
            }
        }
        nsock::bind(fd.as_raw_fd(), &SockaddrStorage::from(local)).map_err(bind_err)?;
        let socket = UdpSocket::from(fd);
        let bound = socket.local_addr().map_err(|source| SocketError::Bind {
            addr: local,
            source,
        })?;
        Ok((socket, bound))
    }
}

/// One socket a worker serves.
struct Sock {
    socket: UdpSocket,
    local: SocketAddr,
    /// In the ready queue (so it is never queued twice).
    queued: bool,
    /// Set by a close: datagrams it may still deliver before it is dropped.
    closing: Option<usize>,
}

#[derive(Default)]
struct Slot {
    /// Bumped on every reuse, so a stale epoll token cannot reach the new
    /// occupant.
    gen: u32,
    sock: Option<Sock>,
}

/// Where a received datagram sits in the burst.
#[derive(Clone, Copy)]
struct RxMeta {
    len: usize,
    src: SocketAddr,
    dst: SocketAddr,
    truncated: bool,
}

const UNSPECIFIED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl RxMeta {
    const EMPTY: RxMeta = RxMeta {
        len: 0,
        src: UNSPECIFIED,
        dst: UNSPECIFIED,
        truncated: false,
    };
}

/// Control messages handled per poll at most, so a storm of call setups
/// delays packets by a bounded amount.
const CONTROL_PER_POLL: usize = 64;

/// The packet source of one worker: its sockets, its epoll set, its
/// buffers. Created by [`SocketBackend::new`]; `Send`, so it can move to the
/// worker's thread.
pub struct SocketSource {
    id: usize,
    name: String,
    config: SocketConfig,
    epoll: Epoll,
    control: Receiver<Control>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    by_addr: HashMap<SocketAddr, u32>,
    /// Sockets with data to read, in service order.
    ready: VecDeque<u32>,
    /// Queue entries left in the current round; at zero, fetch readiness.
    round_left: usize,
    events: Vec<EpollEvent>,
    /// `MAX_BURST` datagram buffers of `datagram_capacity` bytes each.
    bufs: Vec<u8>,
    meta: [RxMeta; MAX_BURST],
    stats: SocketStats,
    published: Arc<PublishedStats>,
}

impl SocketSource {
    fn new(
        id: usize,
        config: SocketConfig,
        control: Receiver<Control>,
        published: Arc<PublishedStats>,
    ) -> Result<SocketSource, SocketError> {
        let epoll =
            Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| SocketError::Epoll {
                worker: id,
                source: e.into(),
            })?;
        let n = config.expected_sockets;
        Ok(SocketSource {
            id,
            name: format!("socket:{id}"),
            epoll,
            control,
            slots: Vec::with_capacity(n),
            free_slots: Vec::with_capacity(n),
            by_addr: HashMap::with_capacity(n),
            ready: VecDeque::with_capacity(n),
            round_left: 0,
            events: vec![EpollEvent::empty(); config.max_events],
            bufs: vec![0; MAX_BURST * config.datagram_capacity],
            meta: [RxMeta::EMPTY; MAX_BURST],
            stats: SocketStats::default(),
            published,
            config,
        })
    }

    /// The worker this source belongs to.
    pub fn worker(&self) -> usize {
        self.id
    }

    /// This source's running totals (the backend sees them as of the last
    /// poll through [`SocketBackend::stats`]).
    pub fn stats(&self) -> SocketStats {
        self.stats
    }

    /// Take the control plane's opens and closes.
    fn drain_control(&mut self) {
        for _ in 0..CONTROL_PER_POLL {
            match self.control.try_recv() {
                Ok(Control::Open { socket, local }) => self.add(socket, local),
                Ok(Control::Close { local }) => self.remove(local),
                Err(_) => break,
            }
        }
    }

    fn add(&mut self, socket: UdpSocket, local: SocketAddr) {
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let Some(entry) = self.slots.get_mut(slot as usize) else {
            return;
        };
        entry.gen = entry.gen.wrapping_add(1);
        let token = u64::from(slot) | (u64::from(entry.gen) << 32);
        if let Err(e) = self
            .epoll
            .add(&socket, EpollEvent::new(EpollFlags::EPOLLIN, token))
        {
            self.stats.watch_errors += 1;
            tracing::warn!(worker = self.id, %local, error = %e, "cannot watch socket; closing it");
            self.free_slots.push(slot);
            return;
        }
        entry.sock = Some(Sock {
            socket,
            local,
            queued: false,
            closing: None,
        });
        if let Some(old) = self.by_addr.insert(local, slot) {
            // The control plane refuses a second open of an open address;
            // should one slip through, serve both until each is closed.
            tracing::warn!(worker = self.id, %local, old, "address opened twice");
        }
        self.stats.sockets += 1;
        self.stats.opened += 1;
    }

    fn remove(&mut self, local: SocketAddr) {
        let Some(slot) = self.by_addr.remove(&local) else {
            return;
        };
        let limit = self.config.close_drain_limit;
        let Some(sock) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.sock.as_mut())
        else {
            return;
        };
        // No more readiness for it; what is queued is read below.
        let _ = self.epoll.delete(&sock.socket);
        sock.closing = Some(limit);
        if !sock.queued {
            if limit == 0 {
                self.drop_slot(slot);
            } else {
                sock.queued = true;
                self.ready.push_back(slot);
            }
        }
    }

    fn drop_slot(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if s.sock.take().is_some() {
                self.free_slots.push(slot);
                self.stats.sockets -= 1;
                self.stats.closed += 1;
            }
        }
    }

    /// Start a round: queue every socket epoll reports readable.
    fn refill(&mut self) {
        self.stats.epoll_waits += 1;
        let n = match self.epoll.wait(&mut self.events, EpollTimeout::ZERO) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(_) => {
                self.stats.poll_errors += 1;
                0
            }
        };
        for ev in self.events.iter().take(n) {
            let token = ev.data();
            let (slot, gen) = (token as u32, (token >> 32) as u32);
            let Some(s) = self.slots.get_mut(slot as usize) else {
                continue;
            };
            if s.gen != gen {
                continue;
            }
            if let Some(sock) = s.sock.as_mut() {
                if !sock.queued {
                    sock.queued = true;
                    self.ready.push_back(slot);
                }
            }
        }
        self.round_left = self.ready.len();
    }

    /// Read the socket in `slot` into burst positions `from..`; returns
    /// how many positions it used.
    fn service(&mut self, slot: u32, from: usize) -> usize {
        let cap = self.config.datagram_capacity;
        let Some(sock) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.sock.as_mut())
        else {
            return 0;
        };
        let mut want = MAX_BURST.saturating_sub(from);
        if let Some(left) = sock.closing {
            want = want.min(left);
        }
        let result = if want == 0 {
            Ok(0)
        } else {
            self.stats.recv_calls += 1;
            let bufs = self
                .bufs
                .get_mut(from * cap..(from + want) * cap)
                .unwrap_or_default();
            let meta = self.meta.get_mut(from..from + want).unwrap_or_default();
            recv(&sock.socket, sock.local, bufs, cap, meta)
        };
        // More may be waiting only if the call filled everything it asked for.
        let (n, more) = match result {
            Ok(n) => (n, n == want && want > 0),
            Err(Errno::EAGAIN) => (0, false),
            Err(Errno::EINTR) => (0, true),
            Err(e) => {
                self.stats.recv_errors += 1;
                tracing::debug!(worker = self.id, local = %sock.local, error = %e, "recvmmsg failed");
                (0, false)
            }
        };
        for m in self.meta.iter().skip(from).take(n) {
            if m.truncated {
                self.stats.truncated += 1;
            } else {
                self.stats.datagrams += 1;
                self.stats.bytes += m.len as u64;
            }
        }
        match sock.closing {
            Some(left) => {
                let left = left.saturating_sub(n);
                sock.closing = Some(left);
                if more && left > 0 {
                    self.ready.push_back(slot);
                } else {
                    self.drop_slot(slot);
                }
            }
            None if more => self.ready.push_back(slot),
            None => sock.queued = false,
        }
        n
    }

    /// Hand burst positions `..filled` to `sink`, truncated ones left out.
    fn deliver<F: FnMut(&[RxPacket<'_>])>(&self, filled: usize, sink: &mut F) -> usize {
        if filled == 0 {
            return 0;
        }
        let arrival_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let cap = self.config.datagram_capacity;
        let mut pkts = [RxPacket {
            frame: Frame::Ip,
            data: &[],
            arrival_ns: 0,
        }; MAX_BURST];
        let mut k = 0;
        for (i, m) in self.meta.iter().enumerate().take(filled) {
            if m.truncated {
                continue;
            }
            let (Some(data), Some(out)) =
                (self.bufs.get(i * cap..i * cap + m.len), pkts.get_mut(k))
            else {
                continue;
            };
            *out = RxPacket {
                frame: Frame::Udp {
                    src: m.src,
                    dst: m.dst,
                },
                data,
                arrival_ns,
            };
            k += 1;
        }
        if k > 0 {
            sink(&pkts[..k]);
        }
        k
    }
}

impl PacketSource for SocketSource {
    /// Take control messages, then read ready sockets round-robin until the
    /// burst is full or [`SocketConfig::max_events`] sockets were read, and
    /// hand the burst over. At most one `epoll_wait` per call.
    fn poll_burst<F: FnMut(&[RxPacket<'_>])>(&mut self, mut sink: F) -> usize {
        self.drain_control();
        let mut fetched = false;
        let mut filled = 0;
        let mut served = 0;
        while filled < MAX_BURST && served < self.config.max_events {
            if self.round_left == 0 {
                if fetched {
                    break;
                }
                self.refill();
                fetched = true;
            }
            let Some(slot) = self.ready.pop_front() else {
                break;
            };
            self.round_left = self.round_left.saturating_sub(1);
            served += 1;
            filled += self.service(slot, filled);
        }
        let n = self.deliver(filled, &mut sink);
        self.published.publish(&self.stats);
        n
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// Peer address types `recvmmsg` fills, one per address family.
trait Peer: SockaddrLike + Copy {
    fn std(self) -> SocketAddr;
}

impl Peer for SockaddrIn {
    fn std(self) -> SocketAddr {
        SocketAddr::V4(self.into())
    }
}

impl Peer for SockaddrIn6 {
    fn std(self) -> SocketAddr {
        SocketAddr::V6(self.into())
    }
}

/// `recvmmsg` headers, one set per address family. They hold raw pointers,
/// so they are not `Send` and cannot live in the (`Send`) source; each
/// worker thread allocates its own once, on its first receive. One set per
/// family because the kernel shrinks a header's address length to what it
/// wrote, so a set used for IPv4 would truncate IPv6 senders.
struct Headers {
    v4: MultiHeaders<SockaddrIn>,
    v6: MultiHeaders<SockaddrIn6>,
}

thread_local! {
    static HEADERS: RefCell<Option<Headers>> = const { RefCell::new(None) };
}

/// One `recvmmsg` on `socket` into `bufs` (`meta.len()` buffers of `cap`
/// bytes); fills `meta` for the datagrams received and returns their count.
fn recv(
    socket: &UdpSocket,
    local: SocketAddr,
    bufs: &mut [u8],
    cap: usize,
    meta: &mut [RxMeta],
) -> Result<usize, Errno> {
    let fd = socket.as_raw_fd();
    HEADERS
        .try_with(|cell| {
            let mut guard = cell.try_borrow_mut().map_err(|_| Errno::EBUSY)?;
            let h = guard.get_or_insert_with(|| Headers {
                v4: MultiHeaders::preallocate(MAX_BURST, None),
                v6: MultiHeaders::preallocate(MAX_BURST, None),
            });
            match local {
                SocketAddr::V4(_) => recv_batch(fd, &mut h.v4, bufs, cap, meta, local),
                SocketAddr::V6(_) => recv_batch(fd, &mut h.v6, bufs, cap, meta, local),
            }
        })
        .unwrap_or(Err(Errno::EBUSY))
}

fn recv_batch<S: Peer>(
    fd: RawFd,
    headers: &mut MultiHeaders<S>,
    bufs: &mut [u8],
    cap: usize,
    meta: &mut [RxMeta],
    local: SocketAddr,
) -> Result<usize, Errno> {
    let want = meta.len().min(MAX_BURST);
    let mut chunks = bufs.chunks_exact_mut(cap);
    let mut iovs: [[IoSliceMut<'_>; 1]; MAX_BURST] =
        std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
    let results = nsock::recvmmsg(
        fd,
        headers,
        iovs.iter_mut().take(want),
        MsgFlags::MSG_DONTWAIT,
        None,
    )?;
    let mut n = 0;
    for (msg, m) in results.zip(meta.iter_mut()) {
        *m = RxMeta {
            len: msg.bytes.min(cap),
            src: msg.address.map_or(UNSPECIFIED, Peer::std),
            dst: local,
            truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
        };
        n += 1;
    }
    Ok(n)
}
