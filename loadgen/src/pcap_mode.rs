//! `--pcap`: the run's traffic written to a capture in simulated time, with
//! the recorder's side of the SIP synthesized (a 200 OK whose SDP answer
//! picks ports from `--pcap-ports`, and a 200 OK to the BYE), so that
//! `mediafork replay`, which sets calls up from the INVITE and its answer,
//! rebuilds every call.
//!
//! Scheduling here uses a binary heap, not the live sender's timer wheel:
//! a capture needs exact nanosecond order between SIP and every stream's
//! packets, there is no clock to keep up with, and the heap holds only one
//! entry per stream or pending message.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;

use mediafork_testkit::frame::FrameSpec;
use mediafork_testkit::pcap::{PcapWriter, LINKTYPE_ETHERNET};
use mediafork_testkit::sip::{self as tsip, CallSpec};
use mediafork_testkit::stream::DEFAULT_START_NS;

use crate::args::{Mode, Plan};
use crate::call::{call_spec, invite_text, CallParams};
use crate::stream::{mix, RtpStream, MAX_PACKET};
use crate::summary::Summary;
use crate::LoadgenError;

const MS: u64 = 1_000_000;
/// When each message of a call's set-up goes out, after its INVITE.
const ANSWER_AFTER: u64 = 2 * MS;
const ACK_AFTER: u64 = 3 * MS;
const MEDIA_AFTER: u64 = 5 * MS;
/// The recorder's 200 OK to the BYE, after the BYE.
const BYE_OK_AFTER: u64 = MS;
/// Where the SRC's RTP comes from: one port pair per stream slot.
const SRC_RTP_BASE: u16 = 20_000;
const SRC_RTP_SLOTS: u64 = 10_000;

/// What happens at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Start(u64),
    Answer(u64),
    Ack(u64),
    Media(u64),
    Rtp(u64, usize),
    Bye(u64),
    ByeOk(u64),
}

struct PcapCall {
    spec: CallSpec,
    streams: Vec<(RtpStream, SocketAddr, SocketAddr, u64)>,
}

/// Write the run to `plan.pcap`.
pub(crate) fn run(plan: &Plan) -> Result<Summary, LoadgenError> {
    let path = plan.pcap.clone().expect("pcap mode has a path");
    let file = File::create(&path).map_err(|e| LoadgenError::Pcap(path.clone(), e))?;
    let io = |e| LoadgenError::Pcap(path.clone(), e);
    let mut w = PcapWriter::new(BufWriter::new(file), LINKTYPE_ETHERNET).map_err(io)?;
    let mut sim = Sim::new(plan);
    let interval = (1e9 / plan.rate) as u64;
    let calls = u64::from(plan.calls);
    // Calls all last the same, so they end in start order: call k may
    // start once call k - calls has ended.
    let length = MEDIA_AFTER + plan.duration.as_nanos() as u64 + BYE_OK_AFTER;
    let mut starts: Vec<u64> = Vec::with_capacity(plan.total as usize);
    for k in 0..plan.total {
        let by_rate = k * interval;
        let by_limit = if k >= calls {
            starts[(k - calls) as usize] + length + 1
        } else {
            0
        };
        starts.push(by_rate.max(by_limit));
    }
    for (k, &t) in starts.iter().enumerate() {
        sim.push(t, Ev::Start(k as u64));
    }
    let mut buf = [0u8; MAX_PACKET];
    let mut last = 0;
    while let Some(Reverse((t, _, ev))) = sim.heap.pop() {
        last = t;
        for (src, dst, payload) in sim.step(t, ev, &mut buf) {
            let frame = FrameSpec::udp(src, dst).build(&payload);
            w.write_packet(DEFAULT_START_NS + t, &frame).map_err(io)?;
        }
    }
    w.finish().map_err(io)?;
    let s = &sim.summary;
    Ok(Summary {
        duration_secs: last as f64 / 1e9,
        achieved_pps: if last > 0 {
            s.packets_sent as f64 / (last as f64 / 1e9)
        } else {
            0.0
        },
        pcap: Some(path),
        tx: "pcap".into(),
        ..s.clone()
    })
}

struct Sim<'a> {
    plan: &'a Plan,
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    calls: HashMap<u64, PcapCall>,
    summary: Summary,
    up: u64,
}

type Datagram = (SocketAddr, SocketAddr, Vec<u8>);

impl<'a> Sim<'a> {
    fn new(plan: &'a Plan) -> Self {
        let rtp_only = matches!(plan.mode, Mode::RtpOnly(_));
        Sim {
            plan,
            heap: BinaryHeap::new(),
            seq: 0,
            calls: HashMap::new(),
            summary: Summary {
                mode: if rtp_only {
                    "pcap-rtp-only"
                } else {
                    "pcap-sip"
                }
                .into(),
                target: plan.target.to_string(),
                ..Summary::default()
            },
            up: 0,
        }
    }

    fn push(&mut self, t: u64, ev: Ev) {
        // The sequence number keeps equal times in scheduling order.
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, ev)));
    }

    fn sip(&mut self, src: SocketAddr, dst: SocketAddr, text: String) -> Datagram {
        self.summary.sip_sent += 1;
        (src, dst, text.into_bytes())
    }

    fn step(&mut self, t: u64, ev: Ev, buf: &mut [u8; MAX_PACKET]) -> Vec<Datagram> {
        let plan = self.plan;
        let mut out = Vec::new();
        match ev {
            Ev::Start(k) => {
                let spec = self.spec(k);
                self.summary.calls_attempted += 1;
                let streams = self.streams(k, &spec, t + MEDIA_AFTER);
                if matches!(plan.mode, Mode::Sip) {
                    let invite = invite_text(&spec, plan.ptime_ms);
                    out.push(self.sip(spec.src_sip, spec.dst_sip, invite));
                    self.push(t + ANSWER_AFTER, Ev::Answer(k));
                    self.push(t + ACK_AFTER, Ev::Ack(k));
                }
                self.push(t + MEDIA_AFTER, Ev::Media(k));
                self.calls.insert(k, PcapCall { spec, streams });
            }
            Ev::Answer(k) => {
                let spec = self.calls[&k].spec.clone();
                out.push(self.sip(spec.dst_sip, spec.src_sip, tsip::ok_200(&spec)));
            }
            Ev::Ack(k) => {
                let spec = self.calls[&k].spec.clone();
                out.push(self.sip(spec.src_sip, spec.dst_sip, tsip::ack(&spec)));
            }
            Ev::Media(k) => {
                self.summary.calls_answered += 1;
                self.up += 1;
                self.summary.max_calls_up = self.summary.max_calls_up.max(self.up);
                let n = self.calls[&k].streams.len();
                for j in 0..n {
                    self.summary.streams += 1;
                    self.push(t, Ev::Rtp(k, j));
                }
                self.push(t + plan.duration.as_nanos() as u64, Ev::Bye(k));
            }
            Ev::Rtp(k, j) => {
                if let Some(c) = self.calls.get_mut(&k) {
                    let (stream, src, dst, left) = &mut c.streams[j];
                    if *left > 0 {
                        *left -= 1;
                        let len = stream.write_next(buf);
                        let next = stream.due_ns;
                        out.push((*src, *dst, buf[..len].to_vec()));
                        self.summary.packets_sent += 1;
                        self.summary.bytes_sent += len as u64;
                        self.push(next, Ev::Rtp(k, j));
                    }
                }
            }
            Ev::Bye(k) => {
                self.up -= 1;
                if matches!(plan.mode, Mode::Sip) {
                    let spec = self.calls[&k].spec.clone();
                    out.push(self.sip(spec.src_sip, spec.dst_sip, tsip::bye(&spec)));
                    self.push(t + BYE_OK_AFTER, Ev::ByeOk(k));
                } else {
                    self.calls.remove(&k);
                    self.summary.calls_completed += 1;
                }
            }
            Ev::ByeOk(k) => {
                if let Some(c) = self.calls.remove(&k) {
                    let spec = c.spec;
                    out.push(self.sip(spec.dst_sip, spec.src_sip, tsip::ok_200_bye(&spec)));
                    self.summary.calls_completed += 1;
                }
            }
        }
        out
    }

    /// Call `k`'s description. Answer ports cycle through `--pcap-ports`:
    /// with at least two per concurrent stream, a port comes round again
    /// only after the call that had it has ended.
    fn spec(&self, k: u64) -> CallSpec {
        let plan = self.plan;
        let ports = &plan.pcap_ports;
        let answer = [0, 1].map(|j| ports[((2 * k + j) % ports.len() as u64) as usize]);
        let params = CallParams {
            index: k,
            run_tag: "pcap".into(),
            local: SocketAddr::new(plan.local_ip, 5060),
            target: plan.target,
            rtp_ports: [0, 1].map(src_port(k)),
            answer_ports: answer,
            codec: plan.codec,
            ptime_ms: plan.ptime_ms,
            style: plan.style,
        };
        call_spec(&params)
    }

    fn streams(
        &self,
        k: u64,
        spec: &CallSpec,
        start: u64,
    ) -> Vec<(RtpStream, SocketAddr, SocketAddr, u64)> {
        let plan = self.plan;
        let dsts: Vec<SocketAddr> = match &plan.mode {
            Mode::Sip => spec
                .answer_ports
                .iter()
                .map(|&p| SocketAddr::new(spec.media_addr, p))
                .collect(),
            Mode::RtpOnly(ports) => (0..2u64)
                .map(|j| {
                    let p = ports[((2 * k + j) % ports.len() as u64) as usize];
                    SocketAddr::new(plan.target.ip(), p)
                })
                .collect(),
        };
        dsts.into_iter()
            .enumerate()
            .map(|(j, dst)| {
                let src = SocketAddr::new(plan.local_ip, src_port(k)(j as u64));
                let s = RtpStream::new(
                    mix(&[k, j as u64]),
                    plan.codec.payload_type(),
                    plan.ptime_ms,
                    start,
                );
                (s, src, dst, plan.packets_per_stream())
            })
            .collect()
    }
}

/// The SRC's RTP port of stream `j` of call `k`.
fn src_port(k: u64) -> impl Fn(u64) -> u16 {
    move |j| SRC_RTP_BASE + 2 * ((2 * k + j) % SRC_RTP_SLOTS) as u16
}
