//! The RTP sender: one thread pacing every stream of the run.
//!
//! Each stream sits in a [`TimerWheel`] keyed by its next packet's due
//! time. Every wake-up fires what is due, writes those packets into
//! per-lane batches and hands each batch to the [`Egress`]: with sockets,
//! one `sendmmsg` (up to [`BATCH`] datagrams per system call), so the cost
//! per packet is a header write, a payload fill and a share of one system
//! call; with `--tx dpdk`, whole frames into a NIC queue and no system
//! call. Sockets are non-blocking and a full queue is not waited on: what
//! does not fit is counted as a send error rather than stalling every other
//! stream's schedule.
//!
//! Lag is measured per packet from its due time to the return of the send
//! that carried it, which is what a receiver's jitter sees.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nix::sys::socket::SockaddrStorage;

pub use crate::egress::BATCH;
use crate::egress::{Batch, Egress, EgressSetup};
use crate::frame::FrameHeader;
use crate::stream::RtpStream;
use crate::summary::{RtpCounters, LATE_NS};
use crate::wheel::TimerWheel;
use crate::LoadgenError;
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
    /// Our address and port (socket `sock`'s): what a frame says it is from.
    pub src: SocketAddr,
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
    /// Time spent firing timers, building and sending packets, not
    /// waiting: the sender's real cost, which its CPU time (it polls when
    /// the next packet is near) does not show.
    pub busy_ns: u64,
    /// What the egress had to say at the end (the DPDK port's counters).
    pub egress_note: Option<String>,
}

struct Live {
    stream: RtpStream,
    dst: SockaddrStorage,
    hdr: FrameHeader,
    lane: usize,
    left: u64,
}

/// A slab slot; the generation tells a stale wheel entry (its stream was
/// removed, the slot reused) from a live one.
struct Slot {
    gen: u32,
    live: Option<Live>,
}

struct Sender {
    egress: Egress,
    epoch: Instant,
    counters: Arc<RtpCounters>,
    wheel: TimerWheel<(u32, u32)>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_call: HashMap<u64, Vec<u32>>,
    batches: Vec<Batch>,
    report: SenderReport,
}

/// Start the sender thread; its clock is `epoch`. Returns once the thread
/// has opened its egress (for DPDK: EAL, port and queue), or with the
/// reason it could not.
pub(crate) fn spawn(
    setup: EgressSetup,
    epoch: Instant,
    commands: Receiver<Command>,
    counters: Arc<RtpCounters>,
) -> Result<JoinHandle, LoadgenError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name("loadgen-rtp".into())
        .spawn(move || {
            let egress = match Egress::open(setup) {
                Ok(e) => {
                    let _ = ready_tx.send(Ok(()));
                    e
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return None;
                }
            };
            let n = egress.lanes();
            let mut s = Sender {
                egress,
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
                    busy_ns: 0,
                    egress_note: None,
                },
            };
            s.run(&commands);
            s.report.egress_note = s.egress.close();
            Some(s.report)
        })
        .map_err(|e| LoadgenError::Io("spawn", e))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(JoinHandle(handle)),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => Err(LoadgenError::Internal(
            "the RTP sender thread died while opening its egress",
        )),
    }
}

/// The running sender thread.
pub(crate) struct JoinHandle(std::thread::JoinHandle<Option<SenderReport>>);

impl JoinHandle {
    /// Wait for the thread's report (after [`Command::Stop`]).
    pub fn join(self) -> Result<SenderReport, LoadgenError> {
        self.0
            .join()
            .ok()
            .flatten()
            .ok_or(LoadgenError::Internal("the RTP sender thread panicked"))
    }
}

impl Sender {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn run(&mut self, commands: &Receiver<Command>) {
        let mut due = Vec::new();
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
            let busy_from = now;
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
                let b = &mut self.batches[live.lane];
                let buf = &mut b.bufs[b.lens.len()];
                b.dues.push(live.stream.due_ns);
                let h = live.hdr.len();
                let len = h + live.stream.write_next(&mut buf[h..]);
                live.hdr.finish(&mut buf[..len]);
                b.lens.push(len);
                b.addrs.push(Some(live.dst));
                let next = live.stream.due_ns;
                let lane = live.lane;
                if live.left > 0 {
                    self.wheel.insert(next, (idx, gen));
                }
                if self.batches[lane].lens.len() == BATCH {
                    self.flush(lane);
                }
            }
            for lane in 0..self.batches.len() {
                if !self.batches[lane].lens.is_empty() {
                    self.flush(lane);
                }
            }
            // Wait for the next due slot, or a command.
            let now = self.now_ns();
            if !due.is_empty() {
                // Polls that found nothing due are waiting, not work.
                self.report.busy_ns += now - busy_from;
            }
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
                    src,
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
                    let hdr = self.egress.header(src, dst, stream.packet_len());
                    slot.live = Some(Live {
                        stream,
                        dst: SockaddrStorage::from(dst),
                        hdr,
                        lane: self.egress.lane(sock),
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

    fn flush(&mut self, lane: usize) {
        let b = &mut self.batches[lane];
        let out = self.egress.send(lane, b);
        let (sent, bytes, errors) = (out.packets, out.bytes, out.errors);
        let now = self.epoch.elapsed().as_nanos() as u64;
        let mut late = 0;
        for &due in &b.dues {
            let lag = now.saturating_sub(due);
            if lag > LATE_NS {
                late += 1;
            }
            self.report.lag_us.saturating_record((lag / 1000).max(1));
        }
        b.clear();
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
