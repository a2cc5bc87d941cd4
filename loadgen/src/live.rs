//! The live run: the calling thread drives SIP (or, for `--rtp-only`, just
//! the call schedule) and the progress line; the sender thread paces RTP.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{setsockopt, sockopt};

use crate::args::{Mode, Plan};
use crate::call::{call_spec, invite_text, Action, Call, CallParams, Phase};
use crate::egress::EgressSetup;
use crate::sender::{self, Command, StreamStart};
use crate::sipmsg::Msg;
use crate::stream::{mix, RtpStream};
use crate::summary::{Progress, ProgressSnapshot, RtpCounters, Summary};
use crate::LoadgenError;

/// Longest the driver sleeps between looks at the clock.
const MAX_WAIT: Duration = Duration::from_millis(5);
/// Send buffer asked for on each RTP socket: bursts of thousands of
/// packets per tick must not hit EAGAIN.
const RTP_SNDBUF: usize = 8 << 20;

/// Counts of the call side, for the summary and the progress line.
#[derive(Debug, Default)]
struct CallStats {
    started: u64,
    answered: u64,
    failed: u64,
    failures: std::collections::BTreeMap<String, u64>,
    completed: u64,
    bye_failures: u64,
    ended_by_recorder: u64,
    up: u64,
    max_up: u64,
    sip_sent: u64,
    sip_received: u64,
}

struct Driver<'a> {
    plan: &'a Plan,
    epoch: Instant,
    run_tag: String,
    sip: Option<Arc<UdpSocket>>,
    local_sip: SocketAddr,
    rtp_ports: Vec<u16>,
    to_sender: mpsc::Sender<Command>,
    calls: HashMap<u64, Call>,
    by_call_id: HashMap<String, u64>,
    /// (when, call index): call timers; stale entries are skipped.
    timers: BinaryHeap<Reverse<(u64, u64)>>,
    /// Calls in INVITE or up: what `--calls` limits.
    active: u64,
    /// RTP-only calls: (end time, index).
    rtp_only_ends: BinaryHeap<Reverse<(u64, u64)>>,
    stats: CallStats,
    /// Calls whose RTP is running.
    with_media: std::collections::HashSet<u64>,
    actions: Vec<Action>,
}

fn bind(addr: SocketAddr, what: &'static str) -> Result<UdpSocket, LoadgenError> {
    UdpSocket::bind(addr).map_err(|e| LoadgenError::Bind(what, addr, e))
}

/// Run `plan` against the network until every call is over or `stop` is
/// set (then calls are hung up and the run ends when their BYEs are done).
pub(crate) fn run(plan: &Plan, stop: &AtomicBool) -> Result<Summary, LoadgenError> {
    let epoch = Instant::now();
    let mut rtp_sockets = Vec::with_capacity(plan.sockets);
    for _ in 0..plan.sockets {
        let s = bind(SocketAddr::new(plan.local_ip, 0), "RTP")?;
        s.set_nonblocking(true)
            .map_err(|e| LoadgenError::Io("set_nonblocking", e))?;
        // Best effort: the kernel caps it at net.core.wmem_max.
        let _ = setsockopt(&s, sockopt::SndBuf, &RTP_SNDBUF);
        rtp_sockets.push(s);
    }
    let rtp_ports = rtp_sockets
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LoadgenError::Io("local_addr", e))?;
    let (sip, local_sip) = match plan.mode {
        Mode::Sip => {
            let s = bind(SocketAddr::new(plan.local_ip, plan.sip_port), "SIP")?;
            let a = s
                .local_addr()
                .map_err(|e| LoadgenError::Io("local_addr", e))?;
            (Some(Arc::new(s)), a)
        }
        Mode::RtpOnly(_) => (None, SocketAddr::new(plan.local_ip, 0)),
    };
    let counters = Arc::new(RtpCounters::default());
    let (tx, rx) = mpsc::channel();
    let setup = EgressSetup::from_plan(plan, rtp_sockets)?;
    let sender = sender::spawn(setup, epoch, rx, counters.clone())?;
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let run_tag = format!(
        "{:08x}",
        mix(&[wall.as_nanos() as u64, u64::from(std::process::id())])
    );
    let mut d = Driver {
        plan,
        epoch,
        run_tag,
        sip,
        local_sip,
        rtp_ports,
        to_sender: tx,
        calls: HashMap::new(),
        by_call_id: HashMap::new(),
        timers: BinaryHeap::new(),
        active: 0,
        rtp_only_ends: BinaryHeap::new(),
        stats: CallStats::default(),
        with_media: Default::default(),
        actions: Vec::new(),
    };
    let mut progress = Progress::new(!plan.quiet);
    let result = d.drive(stop, &counters, &mut progress);
    let _ = d.to_sender.send(Command::Stop);
    let report = sender.join()?;
    progress.finish();
    result?;
    let st = &d.stats;
    let active_ns = report
        .first_send_ns
        .map_or(0, |f| report.last_send_ns.saturating_sub(f));
    Ok(Summary {
        mode: match plan.mode {
            Mode::Sip => "sip".into(),
            Mode::RtpOnly(_) => "rtp-only".into(),
        },
        target: plan.target.to_string(),
        calls_attempted: st.started,
        calls_answered: st.answered,
        calls_failed: st.failed,
        failures: st.failures.clone(),
        calls_completed: st.completed,
        bye_failures: st.bye_failures,
        ended_by_recorder: st.ended_by_recorder,
        max_calls_up: st.max_up,
        sip_sent: st.sip_sent,
        sip_received: st.sip_received,
        streams: report.streams,
        packets_sent: report.packets,
        bytes_sent: report.bytes,
        send_errors: report.errors,
        late_sends: report.late,
        lag_p50_us: report.lag_us.value_at_quantile(0.5),
        lag_p99_us: report.lag_us.value_at_quantile(0.99),
        lag_max_us: report.lag_us.max(),
        sender_busy: report.busy_ns as f64 / epoch.elapsed().as_nanos().max(1) as f64,
        sender_ns_per_packet: report.busy_ns as f64 / report.packets.max(1) as f64,
        duration_secs: epoch.elapsed().as_secs_f64(),
        achieved_pps: if active_ns > 0 {
            report.packets as f64 / (active_ns as f64 / 1e9)
        } else {
            0.0
        },
        pcap: None,
        tx: if plan.dpdk.is_some() {
            "dpdk"
        } else {
            "socket"
        }
        .into(),
        tx_port: report.egress_note,
    })
}

impl Driver<'_> {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn drive(
        &mut self,
        stop: &AtomicBool,
        counters: &RtpCounters,
        progress: &mut Progress,
    ) -> Result<(), LoadgenError> {
        let interval_ns = (1e9 / self.plan.rate) as u64;
        let mut next_start = 0u64;
        let mut stopping = false;
        let mut buf = vec![0u8; 65_536];
        loop {
            let now = self.now();
            if !stopping && stop.load(Relaxed) {
                stopping = true;
                self.hang_up_all(now);
            }
            // New calls, at --rate while under --calls.
            while !stopping
                && self.stats.started < self.plan.total
                && self.active < u64::from(self.plan.calls)
                && now >= next_start
            {
                self.start_call(now);
                next_start += interval_ns;
            }
            if self.active >= u64::from(self.plan.calls) && next_start < now {
                // Blocked by --calls: resume at --rate, not in a burst.
                next_start = now;
            }
            self.fire_timers(now);
            let (packets, errors, late) = counters.snapshot();
            progress.tick(&ProgressSnapshot {
                elapsed_ns: now,
                up: self.stats.up,
                started: self.stats.started,
                total: self.plan.total,
                answered: self.stats.answered,
                failed: self.stats.failed,
                completed: self.stats.completed + self.stats.ended_by_recorder,
                packets,
                errors,
                late,
            });
            let all_started = stopping || self.stats.started >= self.plan.total;
            if all_started && self.calls.is_empty() && self.rtp_only_ends.is_empty() {
                return Ok(());
            }
            // Sleep until the next thing to do.
            let mut wake = now + MAX_WAIT.as_nanos() as u64;
            if !all_started {
                wake = wake.min(next_start);
            }
            if let Some(Reverse((t, _))) = self.timers.peek() {
                wake = wake.min(*t);
            }
            if let Some(Reverse((t, _))) = self.rtp_only_ends.peek() {
                wake = wake.min(*t);
            }
            wake = wake.min(progress.next_ns());
            let wait = Duration::from_nanos(wake.saturating_sub(now).max(50_000));
            match self.sip.clone() {
                Some(sock) => self.receive(&sock, &mut buf, wait)?,
                None => std::thread::sleep(wait),
            }
        }
    }

    /// Wait up to `wait` for SIP, then handle what has arrived.
    fn receive(
        &mut self,
        sock: &UdpSocket,
        buf: &mut [u8],
        wait: Duration,
    ) -> Result<(), LoadgenError> {
        sock.set_read_timeout(Some(wait))
            .map_err(|e| LoadgenError::Io("set_read_timeout", e))?;
        let mut first = true;
        loop {
            let r = sock.recv_from(buf);
            let (n, from) = match r {
                Ok(x) => x,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                // ICMP errors of earlier sends surface here: the recorder
                // is down; timeouts will count the calls as failed.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LoadgenError::Io("recv", e)),
            };
            self.stats.sip_received += 1;
            let now = self.now();
            if let Some(msg) = Msg::parse(&buf[..n]) {
                self.on_message(sock, &msg, from, now);
            }
            if first {
                // Drain whatever else is queued without waiting.
                sock.set_read_timeout(Some(Duration::from_micros(1)))
                    .map_err(|e| LoadgenError::Io("set_read_timeout", e))?;
                first = false;
            }
        }
        Ok(())
    }

    fn on_message(&mut self, sock: &UdpSocket, msg: &Msg, from: SocketAddr, now: u64) {
        let idx = msg.call_id().and_then(|c| self.by_call_id.get(c)).copied();
        let Some(idx) = idx else {
            if let Some(m) = msg.method() {
                // Out of dialog: keep-alive OPTIONS are fine, anything else
                // is for a call we do not have (any more).
                let (code, reason) = match m {
                    "ACK" => return,
                    "OPTIONS" => (200, "OK"),
                    _ => (481, "Call/Transaction Does Not Exist"),
                };
                let r = crate::sipmsg::response_to(msg, code, reason);
                self.send_sip(sock, &r, from);
            }
            return;
        };
        let mut actions = std::mem::take(&mut self.actions);
        let Some(call) = self.calls.get_mut(&idx) else {
            return;
        };
        let before = call.phase;
        let dest = if msg.method().is_some() {
            call.on_request(msg, &mut actions);
            from
        } else {
            call.on_response(msg, now, &mut actions);
            self.plan.target
        };
        self.after(idx, before, &mut actions, dest, now);
        self.actions = actions;
    }

    fn fire_timers(&mut self, now: u64) {
        while let Some(&Reverse((t, idx))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let mut actions = std::mem::take(&mut self.actions);
            if let Some(call) = self.calls.get_mut(&idx) {
                if call.next_timer().is_some_and(|n| n <= now) {
                    let before = call.phase;
                    call.on_timer(now, &mut actions);
                    let target = self.plan.target;
                    self.after(idx, before, &mut actions, target, now);
                } else if let Some(n) = call.next_timer() {
                    self.timers.push(Reverse((n, idx)));
                }
            }
            self.actions = actions;
        }
        while let Some(&Reverse((t, idx))) = self.rtp_only_ends.peek() {
            if t > now {
                break;
            }
            self.rtp_only_ends.pop();
            self.stop_media(idx);
            self.stats.completed += 1;
            self.active -= 1;
        }
    }

    fn hang_up_all(&mut self, now: u64) {
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for idx in ids {
            let mut actions = std::mem::take(&mut self.actions);
            if let Some(call) = self.calls.get_mut(&idx) {
                let before = call.phase;
                call.hang_up(now, &mut actions);
                let target = self.plan.target;
                self.after(idx, before, &mut actions, target, now);
            }
            self.actions = actions;
        }
        // RTP-only calls just end now.
        while let Some(Reverse((_, idx))) = self.rtp_only_ends.pop() {
            self.stop_media(idx);
            self.stats.completed += 1;
            self.active -= 1;
        }
    }

    fn start_call(&mut self, now: u64) {
        let idx = self.stats.started;
        self.stats.started += 1;
        self.active += 1;
        let socks = self.sockets_of(idx);
        match &self.plan.mode {
            Mode::RtpOnly(ports) => {
                let n = ports.len() as u64;
                let dsts = [0, 1].map(|j| {
                    let p = ports[((2 * idx + j) % n) as usize];
                    Some(SocketAddr::new(self.plan.target.ip(), p))
                });
                self.start_media(idx, &dsts, socks, now);
                self.stats.answered += 1;
                self.rtp_only_ends
                    .push(Reverse((now + self.plan.duration.as_nanos() as u64, idx)));
            }
            Mode::Sip => {
                let params = CallParams {
                    index: idx,
                    run_tag: self.run_tag.clone(),
                    local: self.local_sip,
                    target: self.plan.target,
                    rtp_ports: socks.map(|s| self.rtp_ports[s]),
                    answer_ports: [0, 0],
                    codec: self.plan.codec,
                    ptime_ms: self.plan.ptime_ms,
                    style: self.plan.style,
                };
                let spec = call_spec(&params);
                let invite = invite_text(&spec, self.plan.ptime_ms);
                let mut actions = std::mem::take(&mut self.actions);
                let call = Call::start(
                    idx,
                    &spec,
                    invite,
                    self.plan.duration.as_nanos() as u64,
                    now,
                    &mut actions,
                );
                self.by_call_id.insert(call.call_id.clone(), idx);
                let before = call.phase;
                self.calls.insert(idx, call);
                let target = self.plan.target;
                self.after(idx, before, &mut actions, target, now);
                self.actions = actions;
            }
        }
    }

    /// The RTP sockets of call `idx`'s two streams: round-robin over the
    /// pool, so the offer (made before the answer) and the sender agree.
    fn sockets_of(&self, idx: u64) -> [usize; 2] {
        let n = self.rtp_ports.len() as u64;
        [((2 * idx) % n) as usize, ((2 * idx + 1) % n) as usize]
    }

    fn stop_media(&mut self, idx: u64) {
        if self.with_media.remove(&idx) {
            let _ = self.to_sender.send(Command::Remove { call: idx });
            self.stats.up = self.with_media.len() as u64;
        }
    }

    fn start_media(&mut self, idx: u64, dsts: &[Option<SocketAddr>], socks: [usize; 2], now: u64) {
        let pt = self.plan.codec.payload_type();
        let seed = u64::from_str_radix(&self.run_tag, 16).unwrap_or(0);
        let packets = self.plan.packets_per_stream();
        let streams: Vec<_> = dsts
            .iter()
            .enumerate()
            .filter_map(|(j, d)| {
                let dst = (*d)?;
                let ssrc = mix(&[seed, idx, j as u64]);
                let sock = socks[j.min(1)];
                Some(StreamStart {
                    stream: RtpStream::new(ssrc, pt, self.plan.ptime_ms, now),
                    src: SocketAddr::new(
                        self.plan.local_ip,
                        self.rtp_ports[sock % self.rtp_ports.len()],
                    ),
                    dst,
                    sock,
                    packets,
                })
            })
            .collect();
        self.with_media.insert(idx);
        self.stats.up = self.with_media.len() as u64;
        self.stats.max_up = self.stats.max_up.max(self.stats.up);
        let _ = self.to_sender.send(Command::Add { call: idx, streams });
    }

    /// Carry out a call's actions and keep the counts and timers right.
    fn after(
        &mut self,
        idx: u64,
        before: Phase,
        actions: &mut Vec<Action>,
        dest: SocketAddr,
        now: u64,
    ) {
        let socks = self.sockets_of(idx);
        for a in actions.drain(..) {
            match a {
                Action::Send(text) => {
                    if let Some(sock) = &self.sip {
                        if sock.send_to(text.as_bytes(), dest).is_ok() {
                            self.stats.sip_sent += 1;
                        }
                    }
                }
                Action::StartMedia(dsts) => self.start_media(idx, &dsts, socks, now),
                Action::StopMedia => self.stop_media(idx),
                Action::Answered => self.stats.answered += 1,
                Action::Failed(why) => {
                    self.stats.failed += 1;
                    *self.stats.failures.entry(why).or_default() += 1;
                }
                Action::ByeDone(ok) => {
                    if ok {
                        self.stats.completed += 1;
                    } else {
                        self.stats.bye_failures += 1;
                    }
                }
                Action::EndedByRecorder => self.stats.ended_by_recorder += 1,
            }
        }
        let Some(call) = self.calls.get(&idx) else {
            return;
        };
        let counts = |p: Phase| matches!(p, Phase::Inviting { .. } | Phase::Up { .. });
        if counts(before) && !counts(call.phase) {
            self.active -= 1;
        }
        if call.is_done() {
            if let Some(c) = self.calls.remove(&idx) {
                self.by_call_id.remove(&c.call_id);
            }
        } else if let Some(t) = call.next_timer() {
            self.timers.push(Reverse((t, idx)));
        }
    }

    fn send_sip(&mut self, sock: &UdpSocket, text: &str, to: SocketAddr) {
        if sock.send_to(text.as_bytes(), to).is_ok() {
            self.stats.sip_sent += 1;
        }
    }
}
