//! The RTP sender: one thread pacing every stream of the run.
//!
//! Each stream sits in a [`TimerWheel`] keyed by its next packet's due
//! time. Every wake-up fires what is due, writes those packets into
//! per-socket batches and sends each batch with one `sendmmsg` (up to
//! [`BATCH`] datagrams per system call), so the cost per packet is a header
//! write, a payload fill and a share of one system call. Sockets are
//! non-blocking: a full send buffer is counted as a send error rather than
//! stalling every other stream's schedule.
//!
//! Lag is measured per packet from its due time to the return of the
//! `sendmmsg` that carried it, which is what a receiver's jitter sees.

use std::collections::HashMap;
use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nix::errno::Errno;
use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};

use crate::stream::{RtpStream, MAX_PACKET};
use crate::summary::{RtpCounters, LATE_NS};
use crate::wheel::TimerWheel;

/// Datagrams per `sendmmsg`.
pub const BATCH: usize = 64;
/// Wheel granularity: a tenth of the late threshold.
pub const TICK_NS: u64 = 100_000;
/// Slots: 1024 × 100 µs covers a 40 ms ptime without wrapping.
const WHEEL_SLOTS: usize = 1024;
/// Longest sleep, so commands are never waited on long when idle.
const MAX_IDLE: Duration = Duration::from_millis(2);
/// Below this, sleeping (with the kernel's ~50 µs timer slack) would
/// overshoot: yield instead.
const SPIN_BELOW_NS: u64 = 120_000;
/// What the kernel's timer slack adds to a sleep.
const SLEEP_SLACK_NS: u64 = 60_000;

/// What the call driver tells the sender.
#[derive(Debug)]
pub(crate) enum Command {
    /// Start streams of call `call`.
    Add {
        call: u64,
        streams: Vec<StreamStart>,
    },
    /// Stop every stream of call `call`.
    Remove { call: u64 },
    /// Stop the thread and report.
    Stop,
}

/// One stream to start.
#[derive(Debug)]
pub(crate) struct StreamStart {
    pub stream: RtpStream,
    pub dst: SocketAddr,
    /// Index into the socket pool.
    pub sock: usize,
    /// Packets to send: the call's duration / ptime, so a recording holds
    /// exactly that however late the BYE's Remove arrives.
    pub packets: u64,
}

/// What the sender measured.
#[derive(Debug)]
pub(crate) struct SenderReport {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
    pub late: u64,
    pub streams: u64,
    /// Lag in microseconds.
    pub lag_us: Histogram<u64>,
    pub first_send_ns: Option<u64>,
    pub last_send_ns: u64,
}

struct Live {
    stream: RtpStream,
    dst: SockaddrStorage,
    sock: usize,
    left: u64,
}

/// A slab slot; the generation tells a stale wheel entry (its stream was
/// removed, the slot reused) from a live one.
struct Slot {
    gen: u32,
    live: Option<Live>,
}

/// One socket's pending datagrams.
struct Batch {
    bufs: Vec<[u8; MAX_PACKET]>,
    lens: Vec<usize>,
    addrs: Vec<Option<SockaddrStorage>>,
    dues: Vec<u64>,
}

impl Batch {
    fn new() -> Self {
        Self {
            bufs: vec![[0u8; MAX_PACKET]; BATCH],
            lens: Vec::with_capacity(BATCH),
            addrs: Vec::with_capacity(BATCH),
            dues: Vec::with_capacity(BATCH),
        }
    }
}

struct Sender {
    sockets: Vec<UdpSocket>,
    epoch: Instant,
    counters: Arc<RtpCounters>,
    wheel: TimerWheel<(u32, u32)>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_call: HashMap<u64, Vec<u32>>,
    batches: Vec<Batch>,
    report: SenderReport,
}

/// Start the sender thread over `sockets`; its clock is `epoch`.
pub(crate) fn spawn(
    sockets: Vec<UdpSocket>,
    epoch: Instant,
    commands: Receiver<Command>,
    counters: Arc<RtpCounters>,
) -> std::io::Result<JoinHandle<SenderReport>> {
    std::thread::Builder::new()
        .name("loadgen-rtp".into())
        .spawn(move || {
            let n = sockets.len();
            let mut s = Sender {
                sockets,
                epoch,
                counters,
                wheel: TimerWheel::new(TICK_NS, WHEEL_SLOTS),
                slots: Vec::new(),
                free: Vec::new(),
                by_call: HashMap::new(),
                batches: (0..n).map(|_| Batch::new()).collect(),
                report: SenderReport {
                    packets: 0,
                    bytes: 0,
                    errors: 0,
                    late: 0,
                    streams: 0,
                    lag_us: Histogram::new_with_bounds(1, 3_600_000_000, 2)
                        .expect("valid histogram bounds"),
                    first_send_ns: None,
                    last_send_ns: 0,
                },
            };
            s.run(&commands);
            s.report
        })
}

impl Sender {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn run(&mut self, commands: &Receiver<Command>) {
        let mut due = Vec::new();
        // MultiHeaders holds raw pointers, so it lives on this thread only.
        let mut headers: Vec<MultiHeaders<SockaddrStorage>> = (0..self.sockets.len())
            .map(|_| MultiHeaders::preallocate(BATCH, None))
            .collect();
        loop {
            // Commands first, so a stream added now is due now.
            loop {
                match commands.try_recv() {
                    Ok(Command::Stop) => return,
                    Ok(c) => self.apply(c),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                }
            }
            let now = self.now_ns();
            due.clear();
            self.wheel.advance(now, &mut due);
            for &(idx, gen) in &due {
                let slot = &mut self.slots[idx as usize];
                if slot.gen != gen {
                    continue;
                }
                let Some(live) = slot.live.as_mut().filter(|l| l.left > 0) else {
                    continue;
                };
                live.left -= 1;
                let b = &mut self.batches[live.sock];
                let i = b.lens.len();
                b.dues.push(live.stream.due_ns);
                let len = live.stream.write_next(&mut b.bufs[i]);
                b.lens.push(len);
                b.addrs.push(Some(live.dst));
                let next = live.stream.due_ns;
                let sock = live.sock;
                if live.left > 0 {
                    self.wheel.insert(next, (idx, gen));
                }
                if self.batches[sock].lens.len() == BATCH {
                    self.flush(sock, &mut headers[sock]);
                }
            }
            for (sock, h) in headers.iter_mut().enumerate() {
                if !self.batches[sock].lens.is_empty() {
                    self.flush(sock, h);
                }
            }
            // Wait for the next due slot, or a command.
            let now = self.now_ns();
            let wake = self
                .wheel
                .next_wakeup_ns()
                .unwrap_or(u64::MAX)
                .min(now + MAX_IDLE.as_nanos() as u64);
            let wait = wake.saturating_sub(now);
            if wait >= SPIN_BELOW_NS {
                let d = Duration::from_nanos(wait - SLEEP_SLACK_NS);
                match commands.recv_timeout(d) {
                    Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    Ok(c) => self.apply(c),
                    Err(RecvTimeoutError::Timeout) => {}
                }
            } else if wait > 0 {
                std::thread::yield_now();
            }
        }
    }

    fn apply(&mut self, c: Command) {
        match c {
            Command::Add { call, streams } => {
                let ids = self.by_call.entry(call).or_default();
                for StreamStart {
                    stream,
                    dst,
                    sock,
                    packets,
                } in streams
                {
                    let idx = match self.free.pop() {
                        Some(i) => i,
                        None => {
                            self.slots.push(Slot { gen: 0, live: None });
                            (self.slots.len() - 1) as u32
                        }
                    };
                    let slot = &mut self.slots[idx as usize];
                    slot.gen = slot.gen.wrapping_add(1);
                    let due = stream.due_ns;
                    slot.live = Some(Live {
                        stream,
                        dst: SockaddrStorage::from(dst),
                        sock: sock % self.sockets.len(),
                        left: packets,
                    });
                    self.wheel.insert(due, (idx, slot.gen));
                    ids.push(idx);
                    self.report.streams += 1;
                }
            }
            Command::Remove { call } => {
                for idx in self.by_call.remove(&call).unwrap_or_default() {
                    let slot = &mut self.slots[idx as usize];
                    slot.live = None;
                    // The wheel entry goes stale and is dropped when it fires.
                    slot.gen = slot.gen.wrapping_add(1);
                    self.free.push(idx);
                }
            }
            Command::Stop => {}
        }
    }

    fn flush(&mut self, sock: usize, headers: &mut MultiHeaders<SockaddrStorage>) {
        let b = &mut self.batches[sock];
        let n = b.lens.len();
        let fd = self.sockets[sock].as_raw_fd();
        let iovs: Vec<[IoSlice<'_>; 1]> = b
            .bufs
            .iter()
            .zip(&b.lens)
            .map(|(buf, &len)| [IoSlice::new(&buf[..len])])
            .collect();
        let no_cmsgs: [ControlMessage<'_>; 0] = [];
        let (mut start, mut sent, mut errors, mut bytes) = (0, 0u64, 0u64, 0u64);
        while start < n {
            match sendmmsg(
                fd,
                headers,
                &iovs[start..],
                &b.addrs[start..n],
                no_cmsgs,
                MsgFlags::empty(),
            ) {
                Ok(results) => {
                    let k = results.count();
                    if k == 0 {
                        errors += 1;
                        start += 1;
                    } else {
                        bytes += b.lens[start..start + k].iter().sum::<usize>() as u64;
                        sent += k as u64;
                        start += k;
                    }
                }
                Err(Errno::EINTR) => {}
                // The datagram at `start` was refused (EAGAIN: the socket
                // buffer is full; others: no route, ...): count and move on.
                Err(_) => {
                    errors += 1;
                    start += 1;
                }
            }
        }
        drop(iovs);
        let now = self.epoch.elapsed().as_nanos() as u64;
        let mut late = 0;
        for &due in &b.dues {
            let lag = now.saturating_sub(due);
            if lag > LATE_NS {
                late += 1;
            }
            self.report.lag_us.saturating_record((lag / 1000).max(1));
        }
        b.lens.clear();
        b.addrs.clear();
        b.dues.clear();
        let r = &mut self.report;
        r.packets += sent;
        r.bytes += bytes;
        r.errors += errors;
        r.late += late;
        if sent > 0 {
            r.first_send_ns.get_or_insert(now);
            r.last_send_ns = now;
        }
        self.counters.packets.fetch_add(sent, Relaxed);
        self.counters.bytes.fetch_add(bytes, Relaxed);
        self.counters.errors.fetch_add(errors, Relaxed);
        self.counters.late.fetch_add(late, Relaxed);
    }
}
