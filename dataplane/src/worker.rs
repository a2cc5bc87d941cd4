//! A worker: one packet source, one core, one set of track states. The loop
//! is DPDK's l2fwd shape: poll a burst, handle each packet, service commands
//! between bursts, publish counters.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::demux::{Lookup, TrackRef};
use crate::packet::{self, Media};
use crate::report::TrackReport;
use crate::ring::{Header, Kind, RecordProducer};
use crate::source::{Frame, PacketSource, RxPacket};
use crate::stats::Counters;
use crate::track::{TrackLimits, TrackState};
use crate::{engine::Shared, DropReason};

/// What the control plane asks of a worker.
#[derive(Clone, Copy, Debug)]
pub enum WorkerCommand {
    /// The track ended: send its final report to `writer`, free its state.
    EndTrack { track: TrackRef, writer: usize },
}

/// What became of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its audio is on a ring.
    Recorded,
    /// Accounted for without audio (RTCP, DTMF event, comfort noise).
    Accounted,
    /// Dropped and counted.
    Dropped(DropReason),
    /// RTP/RTCP in the range that no track owns; not yet counted, so that
    /// replay can create a track for it. Count it with
    /// [`WorkerCore::count_unknown`] otherwise.
    Unknown {
        dst: SocketAddr,
        ssrc: u32,
        rtcp: bool,
    },
}

struct PendingEnd {
    writer: usize,
    track: TrackRef,
    report: TrackReport,
}

/// The per-core state of a worker, separate from its source so replay can
/// drive it inline.
pub struct WorkerCore {
    pub id: usize,
    shared: Arc<Shared>,
    tracks: Vec<TrackState>,
    rings: Vec<RecordProducer>,
    commands: rtrb::Consumer<WorkerCommand>,
    pending: VecDeque<PendingEnd>,
    counters: Counters,
    limits: TrackLimits,
}

impl WorkerCore {
    pub(crate) fn new(
        id: usize,
        shared: Arc<Shared>,
        rings: Vec<RecordProducer>,
        commands: rtrb::Consumer<WorkerCommand>,
    ) -> Self {
        let n = shared.tracks.capacity();
        let limits = TrackLimits {
            max_gap_ns: shared.config.max_gap.as_nanos() as u64,
        };
        WorkerCore {
            id,
            shared,
            tracks: (0..n).map(|_| TrackState::default()).collect(),
            rings,
            commands,
            pending: VecDeque::with_capacity(1024),
            counters: Counters::default(),
            limits,
        }
    }

    /// Handle one packet: parse, look up, account, copy to the ring.
    #[inline]
    pub fn handle(&mut self, pkt: &RxPacket<'_>) -> Outcome {
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += pkt.data.len() as u64;
        match self.route(pkt) {
            Ok(o) => o,
            Err(r) => {
                self.counters.drop(r);
                Outcome::Dropped(r)
            }
        }
    }

    #[inline]
    fn route(&mut self, pkt: &RxPacket<'_>) -> Result<Outcome, DropReason> {
        let dgram = packet::parse_frame(pkt.frame, pkt.data)?;
        if !self.shared.demux.range().contains(dgram.dst.port()) {
            return Err(DropReason::OutsideRange);
        }
        let media = packet::classify(dgram.payload)?;
        let (ssrc, rtcp) = match &media {
            Media::Rtp(h) => (h.ssrc, false),
            Media::Rtcp { ssrc, .. } => (*ssrc, true),
        };
        let track = match self.shared.demux.lookup(&dgram.dst, ssrc) {
            Lookup::Track(t) => t,
            Lookup::Miss => {
                return Ok(Outcome::Unknown {
                    dst: dgram.dst,
                    ssrc,
                    rtcp,
                })
            }
        };
        let Some(state) = self.tracks.get_mut(track.slot as usize) else {
            return Err(DropReason::Stale);
        };
        if !state.is(track) {
            // First packet of this track on this worker: fetch its spec (cold).
            match self.shared.tracks.get(track) {
                Some(spec) => state.reset(spec),
                None => return Err(DropReason::Stale),
            }
        }
        let ring = &mut self.rings[state.writer];
        if state.capture_pcap {
            push_raw(ring, track, pkt, &dgram.src, &dgram.dst);
        }
        match media {
            Media::Rtcp { .. } => {
                state.on_rtcp();
                self.counters.rtcp += 1;
                Ok(Outcome::Accounted)
            }
            Media::Rtp(h) => {
                if state.on_rtp(track, &h, pkt.arrival_ns, self.limits, ring)? {
                    self.counters.recorded += 1;
                    Ok(Outcome::Recorded)
                } else {
                    Ok(Outcome::Accounted)
                }
            }
        }
    }

    /// Handle a packet again after [`Outcome::Unknown`] made the caller
    /// create its track (replay); receive counters are not bumped twice.
    pub fn retry(&mut self, pkt: &RxPacket<'_>) -> Outcome {
        match self.route(pkt) {
            Ok(o) => o,
            Err(r) => {
                self.counters.drop(r);
                Outcome::Dropped(r)
            }
        }
    }

    /// Free bytes on the fullest ring. Offline replay waits on this instead
    /// of dropping, so a capture always replays completely.
    pub fn min_ring_free(&self) -> usize {
        self.rings
            .iter()
            .map(RecordProducer::free)
            .min()
            .unwrap_or(0)
    }

    /// Count a packet [`Outcome::Unknown`] left uncounted.
    #[inline]
    pub fn count_unknown(&mut self) {
        self.counters.drop(DropReason::UnknownPort);
    }

    /// Between bursts: finish commands, retry pending reports, publish counters.
    pub fn service(&mut self) {
        self.flush_pending();
        let shared = self.shared.clone();
        let stats = &shared.worker_stats[self.id];
        while let Ok(cmd) = self.commands.pop() {
            match cmd {
                WorkerCommand::EndTrack { track, writer } => {
                    let report = match self.tracks.get_mut(track.slot as usize) {
                        Some(s) if s.is(track) => s.finish(),
                        _ => TrackReport::default(),
                    };
                    self.pending.push_back(PendingEnd {
                        writer,
                        track,
                        report,
                    });
                    self.flush_pending();
                }
            }
            stats.commands_done.fetch_add(1, Ordering::Release);
        }
        stats.publish(&self.counters);
    }

    fn flush_pending(&mut self) {
        while let Some(end) = self.pending.front() {
            let bytes = end.report.encode();
            let h = Header {
                kind: Kind::TrackEnd,
                codec: 0,
                payload_len: bytes.len() as u16,
                track: end.track,
                segment: 0,
                rel: 0,
                arrival_ns: 0,
                ssrc: end.report.ssrc,
                aux: self.id as u32,
            };
            let Some(ring) = self.rings.get_mut(end.writer) else {
                self.pending.pop_front();
                continue;
            };
            if !ring.push(&h, &[&bytes]) {
                return;
            }
            self.pending.pop_front();
        }
    }

    /// Reports still waiting for ring space.
    pub fn pending_reports(&self) -> usize {
        self.pending.len()
    }

    /// This worker's running totals.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Poll `source` until the engine stops, as a pinned thread does.
    pub fn run<S: PacketSource>(mut self, mut source: S) {
        let idle_after = 1024u32;
        let mut empty = 0u32;
        let stop = self.shared.stop.clone();
        loop {
            let n = source.poll_burst(|pkts| {
                for p in pkts {
                    if let Outcome::Unknown { .. } = self.handle(p) {
                        self.count_unknown();
                    }
                }
            });
            self.service();
            if n == 0 {
                if stop.load(Ordering::Acquire) && self.pending.is_empty() {
                    break;
                }
                // Poll-mode cores spin; after a long idle stretch, back off
                // briefly so a quiet recorder does not burn a core.
                empty = empty.saturating_add(1);
                if empty > idle_after {
                    std::thread::sleep(self.shared.config.idle_sleep);
                } else {
                    std::hint::spin_loop();
                }
            } else {
                empty = 0;
            }
        }
        self.service();
    }
}

/// Copy a raw packet for the call's pcap. Socket frames lack headers, so
/// their addresses travel in front of the payload and the writer rebuilds
/// IP/UDP headers.
#[inline]
fn push_raw(
    ring: &mut RecordProducer,
    track: TrackRef,
    pkt: &RxPacket<'_>,
    src: &SocketAddr,
    dst: &SocketAddr,
) {
    let (aux, addr_block) = match pkt.frame {
        Frame::Ethernet => (0u32, None),
        Frame::Ip => (1, None),
        Frame::Udp { .. } => (2, Some(encode_addrs(src, dst))),
    };
    let prefix: &[u8] = match &addr_block {
        Some(b) => b,
        None => &[],
    };
    let len = prefix.len() + pkt.data.len();
    if len > u16::MAX as usize || ring.free() < RecordProducer::size_of(len) {
        return;
    }
    let h = Header {
        kind: Kind::Packet,
        codec: 0,
        payload_len: len as u16,
        track,
        segment: 0,
        rel: 0,
        arrival_ns: pkt.arrival_ns,
        ssrc: 0,
        aux,
    };
    ring.push(&h, &[prefix, pkt.data]);
}

/// Size of the address block in front of a socket frame's pcap record.
pub const ADDR_BLOCK: usize = 36;

fn encode_addrs(src: &SocketAddr, dst: &SocketAddr) -> [u8; ADDR_BLOCK] {
    let mut b = [0u8; ADDR_BLOCK];
    let ip16 = |a: &SocketAddr| match a.ip() {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    };
    b[0..16].copy_from_slice(&ip16(src));
    b[16..32].copy_from_slice(&ip16(dst));
    b[32..34].copy_from_slice(&src.port().to_be_bytes());
    b[34..36].copy_from_slice(&dst.port().to_be_bytes());
    b
}

/// Inverse of the address block: (src, dst, was IPv4).
pub fn decode_addrs(b: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    if b.len() < ADDR_BLOCK {
        return None;
    }
    let ip = |s: &[u8]| {
        let mut o = [0u8; 16];
        o.copy_from_slice(s);
        let v6 = std::net::Ipv6Addr::from(o);
        match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => std::net::IpAddr::V6(v6),
        }
    };
    let sp = u16::from_be_bytes([b[32], b[33]]);
    let dp = u16::from_be_bytes([b[34], b[35]]);
    Some((
        SocketAddr::new(ip(&b[0..16]), sp),
        SocketAddr::new(ip(&b[16..32]), dp),
    ))
}
