//! A worker: one packet source, one core, one set of track states. The loop
//! is DPDK's l2fwd shape: poll a burst, handle each packet, service commands
//! between bursts, publish counters.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::demux::{Lookup, TrackRef};
use crate::packet::{self, Datagram, Media, RtpHeader};
use crate::report::TrackReport;
use crate::ring::{Header, Kind, RecordProducer};
use crate::source::{Frame, PacketSource, RxPacket, MAX_BURST};
use crate::stats::Counters;
use crate::track::{LossRun, TrackCold, TrackEnv, TrackLimits, TrackState};
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
    /// Audio dropped for a full ring and not yet reported: goes first.
    loss: Option<LossRun>,
}

/// The per-core state of a worker, separate from its source so replay can
/// drive it inline.
pub struct WorkerCore {
    pub id: usize,
    shared: Arc<Shared>,
    tracks: Vec<TrackState>,
    cold: Vec<TrackCold>,
    rings: Vec<RecordProducer>,
    commands: rtrb::Consumer<WorkerCommand>,
    pending: VecDeque<PendingEnd>,
    counters: Counters,
    limits: TrackLimits,
    /// Where SRTP packets are authenticated and decrypted: received buffers
    /// are read-only (mbufs, recvmmsg buffers, capture files), so an SRTP
    /// packet is copied here first. Allocated once, at start; the largest
    /// UDP payload fits.
    scratch: Box<[u8]>,
}

/// Size of [`WorkerCore`]'s SRTP scratch buffer: any UDP payload.
const SCRATCH_LEN: usize = 65_536;

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
            cold: (0..n).map(|_| TrackCold::default()).collect(),
            rings,
            commands,
            pending: VecDeque::with_capacity(1024),
            counters: Counters::default(),
            limits,
            scratch: vec![0u8; SCRATCH_LEN].into_boxed_slice(),
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
        let (dgram, media) = self.decode(pkt)?;
        match self.lookup(&dgram, &media) {
            Ok(track) => {
                let src = self.shared.source_key.tag(&dgram.src.ip());
                self.deliver(pkt, &dgram, media, track, src)
            }
            Err(unknown) => Ok(unknown),
        }
    }

    /// Parse down to RTP/RTCP and check the port range.
    #[inline(always)]
    fn decode<'a>(&self, pkt: &RxPacket<'a>) -> Result<(Datagram<'a>, Media<'a>), DropReason> {
        let dgram = packet::parse_frame(pkt.frame, pkt.data)?;
        if !self.shared.demux.range().contains(dgram.dst.port()) {
            return Err(DropReason::OutsideRange);
        }
        let media = packet::classify(dgram.payload)?;
        Ok((dgram, media))
    }

    /// The track a decoded packet belongs to, or the `Unknown` outcome.
    #[inline(always)]
    fn lookup(&self, dgram: &Datagram<'_>, media: &Media<'_>) -> Result<TrackRef, Outcome> {
        let (ssrc, rtcp) = match media {
            Media::Rtp(h) => (h.ssrc, false),
            Media::Rtcp { ssrc, .. } => (*ssrc, true),
        };
        match self.shared.demux.lookup(&dgram.dst, ssrc) {
            Lookup::Track(t) => Ok(t),
            Lookup::Miss => Err(Outcome::Unknown {
                dst: dgram.dst,
                ssrc,
                rtcp,
            }),
        }
    }

    /// Per-track work for a packet whose track is known.
    #[inline(always)]
    fn deliver(
        &mut self,
        pkt: &RxPacket<'_>,
        dgram: &Datagram<'_>,
        media: Media<'_>,
        track: TrackRef,
        src: u32,
    ) -> Result<Outcome, DropReason> {
        let slot = track.slot as usize;
        let (Some(state), Some(cold)) = (self.tracks.get_mut(slot), self.cold.get_mut(slot)) else {
            return Err(DropReason::Stale);
        };
        if !state.is(track) {
            // First packet of this track on this worker: fetch its spec (cold).
            match self.shared.tracks.get(track) {
                Some(spec) => state.reset(cold, spec),
                None => return Err(DropReason::Stale),
            }
        }
        // Before SRTP: a spoofed packet costs a compare, not a decryption.
        state.check_source(cold, src)?;
        if state.is_srtp() {
            return self.deliver_srtp(pkt, dgram, media, track);
        }
        let ring = &mut self.rings[state.writer as usize];
        if state.capture_pcap() && !push_raw(ring, track, pkt, &dgram.src, &dgram.dst) {
            cold.note_pcap_drop();
        }
        let env = TrackEnv {
            limits: self.limits,
            specs: &self.shared.tracks,
        };
        account(
            state,
            cold,
            &mut self.counters,
            track,
            media,
            pkt.arrival_ns,
            env,
            ring,
        )
    }

    /// [`WorkerCore::deliver`] for an SRTP track: copy the packet to the
    /// scratch buffer, authenticate, replay-check and decrypt it there, then
    /// go on with the plaintext as with any packet. A packet that fails
    /// touches neither the track's sequence state nor the recording (its
    /// raw copy for `call.pcap` included). Kept out of line so that plain
    /// RTP's path stays as it was.
    #[inline(never)]
    fn deliver_srtp(
        &mut self,
        pkt: &RxPacket<'_>,
        dgram: &Datagram<'_>,
        media: Media<'_>,
        track: TrackRef,
    ) -> Result<Outcome, DropReason> {
        // The burst path hands over no datagram (it keeps only the RTP
        // fields between passes): find the UDP payload again.
        let wire = if dgram.payload.is_empty() {
            packet::parse_frame(pkt.frame, pkt.data)?.payload
        } else {
            dgram.payload
        };
        let Some(buf) = self.scratch.get_mut(..wire.len()) else {
            return Err(DropReason::Malformed);
        };
        buf.copy_from_slice(wire);
        let slot = track.slot as usize;
        let (Some(state), Some(cold)) = (self.tracks.get_mut(slot), self.cold.get_mut(slot)) else {
            return Err(DropReason::Stale);
        };
        let rtcp = matches!(media, Media::Rtcp { .. });
        let len = cold.unprotect(rtcp, buf, &self.shared.tracks, track)?;
        let plain = &self.scratch[..len];
        let ring = &mut self.rings[state.writer as usize];
        // As received (encrypted), and only once authenticated.
        if state.capture_pcap() && !push_raw(ring, track, pkt, &dgram.src, &dgram.dst) {
            cold.note_pcap_drop();
        }
        let media = if rtcp {
            media
        } else {
            // The header is unchanged; parsing again finds the plaintext
            // payload and its real padding (hidden under encryption before).
            match packet::classify(plain)? {
                rtp @ Media::Rtp(_) => rtp,
                Media::Rtcp { .. } => return Err(DropReason::Malformed),
            }
        };
        let env = TrackEnv {
            limits: self.limits,
            specs: &self.shared.tracks,
        };
        account(
            state,
            cold,
            &mut self.counters,
            track,
            media,
            pkt.arrival_ns,
            env,
            ring,
        )
    }

    /// Handle a burst the way l3fwd does, in passes: decode and look up
    /// every packet, then touch every packet's track state, then do the
    /// per-track work. The touch pass is a tight loop of independent loads,
    /// so the cache misses of 32 packets overlap instead of following one
    /// another: this is what keeps the cost per packet nearly flat at
    /// 200,000 tracks. Between passes a packet is a 32-byte [`Staged`], not
    /// its parsed headers, so staging costs no more than it saves.
    /// Packets no track owns are counted as `unknown_port`.
    pub fn handle_burst(&mut self, pkts: &[RxPacket<'_>]) {
        let mut staged = [Staged::EMPTY; MAX_BURST];
        let mut dsts = [UNSPECIFIED; MAX_BURST];
        let mut n = 0;
        for (i, pkt) in pkts.iter().enumerate().take(MAX_BURST) {
            self.counters.rx_packets += 1;
            self.counters.rx_bytes += pkt.data.len() as u64;
            match self.decode(pkt) {
                Ok((dgram, media)) => {
                    staged[n] = Staged::new(i as u8, pkt.data, &media);
                    staged[n].src = self.shared.source_key.tag(&dgram.src.ip());
                    dsts[n] = dgram.dst;
                    n += 1;
                }
                Err(r) => self.counters.drop(r),
            }
        }
        // Table entries are spread over MBs at 200k tracks: look them all up
        // in one loop so their loads overlap.
        let mut m = 0;
        for i in 0..n {
            match self.shared.demux.lookup(&dsts[i], staged[i].ssrc) {
                Lookup::Track(t) => {
                    staged[m] = staged[i];
                    staged[m].track = t;
                    m += 1;
                }
                Lookup::Miss => self.counters.drop(DropReason::UnknownPort),
            }
        }
        let n = m;
        let mut touch = 0u64;
        for s in &staged[..n] {
            if let Some(t) = self.tracks.get(s.track.slot as usize) {
                touch = touch.wrapping_add(t.gen as u64);
            }
        }
        std::hint::black_box(touch);
        for s in &staged[..n] {
            let Some(pkt) = pkts.get(s.idx as usize) else {
                continue;
            };
            if let Err(r) = self.deliver_staged(pkt, s) {
                self.counters.drop(r);
            }
        }
    }

    #[inline(always)]
    fn deliver_staged(&mut self, pkt: &RxPacket<'_>, s: &Staged) -> Result<Outcome, DropReason> {
        let media = s.media(pkt.data);
        if self
            .tracks
            .get(s.track.slot as usize)
            .is_some_and(TrackState::capture_pcap)
        {
            // Rare: re-parse for the addresses the pcap record needs.
            let (dgram, _) = self.decode(pkt)?;
            return self.deliver(pkt, &dgram, media, s.track, s.src);
        }
        let none = Datagram {
            src: UNSPECIFIED,
            dst: UNSPECIFIED,
            vlan_outer: 0,
            vlan_inner: 0,
            payload: &[],
        };
        self.deliver(pkt, &none, media, s.track, s.src)
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
                    let slot = track.slot as usize;
                    let (report, loss) = match (self.tracks.get_mut(slot), self.cold.get_mut(slot))
                    {
                        (Some(s), Some(c)) if s.is(track) => {
                            let loss = s.take_loss(c);
                            (s.finish(c), loss)
                        }
                        _ => (TrackReport::default(), None),
                    };
                    self.pending.push_back(PendingEnd {
                        writer,
                        track,
                        report,
                        loss,
                    });
                    self.flush_pending();
                }
            }
            stats.commands_done.fetch_add(1, Ordering::Release);
        }
        stats.publish(&self.counters);
    }

    fn flush_pending(&mut self) {
        while let Some(end) = self.pending.front_mut() {
            if let Some(loss) = end.loss {
                let Some(ring) = self.rings.get_mut(end.writer) else {
                    self.pending.pop_front();
                    continue;
                };
                let (h, p) = loss.header(end.track, end.report.ssrc);
                if !ring.push(&h, &[&p]) {
                    return;
                }
                end.loss = None;
            }
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
                for chunk in pkts.chunks(MAX_BURST) {
                    self.handle_burst(chunk);
                }
            });
            self.service();
            // Checked on every iteration, not only when idle: a port under
            // constant traffic must still stop. One load per burst; the
            // service() after the loop takes commands sent just before stop.
            if stop.load(Ordering::Acquire) && self.pending.is_empty() {
                break;
            }
            if n == 0 {
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

/// The per-track work once a packet may be recorded (source checked,
/// SRTP decrypted): RTCP is accounted, RTP's audio goes onto the ring.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn account(
    state: &mut TrackState,
    cold: &mut TrackCold,
    counters: &mut Counters,
    track: TrackRef,
    media: Media<'_>,
    arrival_ns: u64,
    env: TrackEnv<'_>,
    ring: &mut RecordProducer,
) -> Result<Outcome, DropReason> {
    match media {
        Media::Rtcp { .. } => {
            state.on_rtcp(cold);
            counters.rtcp += 1;
            Ok(Outcome::Accounted)
        }
        Media::Rtp(h) => {
            if state.on_rtp(cold, track, &h, arrival_ns, env, ring)? {
                counters.recorded += 1;
                Ok(Outcome::Recorded)
            } else {
                Ok(Outcome::Accounted)
            }
        }
    }
}

const UNSPECIFIED: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// A decoded, looked-up packet between the passes of a burst: the RTP
/// fields the track needs and where its payload sits in the frame.
#[derive(Clone, Copy)]
struct Staged {
    track: TrackRef,
    timestamp: u32,
    ssrc: u32,
    payload_at: u16,
    payload_len: u16,
    sequence: u16,
    idx: u8,
    /// RTP payload type, or `RTCP` for an RTCP packet.
    payload_type: u8,
    flags: u8,
    /// Tag of the source address ([`crate::source_lock::SourceKey::tag`]).
    src: u32,
}

impl Staged {
    const EMPTY: Staged = Staged {
        track: TrackRef { slot: 0, gen: 0 },
        timestamp: 0,
        ssrc: 0,
        payload_at: 0,
        payload_len: 0,
        sequence: 0,
        idx: 0,
        payload_type: 0,
        flags: 0,
        src: 0,
    };
    const RTCP: u8 = 1;
    const MARKER: u8 = 2;
    const EXTENSION: u8 = 4;

    #[inline(always)]
    fn new(idx: u8, frame: &[u8], media: &Media<'_>) -> Staged {
        let track = TrackRef { slot: 0, gen: 0 };
        match media {
            Media::Rtp(h) => Staged {
                track,
                timestamp: h.timestamp,
                ssrc: h.ssrc,
                // Both slices come from `frame`; the offset survives the
                // passes where the borrow cannot.
                payload_at: (h.payload.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize)
                    as u16,
                payload_len: h.payload.len() as u16,
                sequence: h.sequence,
                idx,
                payload_type: h.payload_type,
                flags: (if h.marker { Self::MARKER } else { 0 })
                    | (if h.has_extension { Self::EXTENSION } else { 0 })
                    | ((h.csrc_count & 0x0F) << 4),
                src: 0,
            },
            Media::Rtcp { packet_type, ssrc } => Staged {
                track,
                ssrc: *ssrc,
                idx,
                payload_type: *packet_type,
                flags: Self::RTCP,
                ..Staged::EMPTY
            },
        }
    }

    #[inline(always)]
    fn media<'a>(&self, frame: &'a [u8]) -> Media<'a> {
        if self.flags & Self::RTCP != 0 {
            return Media::Rtcp {
                packet_type: self.payload_type,
                ssrc: self.ssrc,
            };
        }
        let at = self.payload_at as usize;
        let payload = frame.get(at..at + self.payload_len as usize).unwrap_or(&[]);
        Media::Rtp(RtpHeader {
            marker: self.flags & Self::MARKER != 0,
            payload_type: self.payload_type,
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            csrc_count: self.flags >> 4,
            has_extension: self.flags & Self::EXTENSION != 0,
            payload,
        })
    }
}

/// Copy a raw packet for the call's pcap. Socket frames lack headers, so
/// their addresses travel in front of the payload and the writer rebuilds
/// IP/UDP headers. False when the copy did not fit in the ring (the
/// caller counts it for the track's `meta.json`).
#[inline]
#[must_use]
fn push_raw(
    ring: &mut RecordProducer,
    track: TrackRef,
    pkt: &RxPacket<'_>,
    src: &SocketAddr,
    dst: &SocketAddr,
) -> bool {
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
        return false;
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
    true
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::config::{DataplaneConfig, PortRange};
    use crate::engine::{Binding, CallSetup, Engine, TrackSetup};
    use crate::packet::testutil::{ether, ipv4, rtp_packet, udp};
    use crate::ring::RecordConsumer;

    /// Frames for two tracks with loss, duplicates, reordering, an SSRC
    /// change, RTCP, garbage and unknown ports mixed in.
    fn traffic() -> Vec<Vec<u8>> {
        let frame = |dport: u16, payload: Vec<u8>| {
            ether(
                0x0800,
                &[],
                &ipv4(
                    [127, 0, 0, 9],
                    [127, 0, 0, 1],
                    17,
                    &udp(20000, dport, &payload),
                ),
            )
        };
        let mut out = Vec::new();
        let mut seqs: Vec<u16> = (0..120).collect();
        seqs.retain(|s| *s != 7 && *s != 8);
        seqs.swap(20, 22);
        seqs.insert(30, 29);
        for (k, s) in seqs.iter().enumerate() {
            let ssrc = if *s < 90 { 0xAAAA } else { 0xBBBB };
            out.push(frame(
                40000,
                rtp_packet(0x80, 0, *s, *s as u32 * 160, ssrc, &[k as u8; 160]),
            ));
            out.push(frame(
                40002,
                rtp_packet(0x80, 8, *s, *s as u32 * 160, 0xCCCC, &[k as u8; 160]),
            ));
            if k % 17 == 0 {
                out.push(frame(
                    40001,
                    vec![0x81, 200, 0, 6, 0, 0, 0xAA, 0xAA, 0, 0, 0, 0],
                ));
                out.push(frame(40100, rtp_packet(0x80, 0, 1, 1, 1, &[0; 160])));
                out.push(vec![0xde, 0xad]);
            }
        }
        out
    }

    fn run(burst: bool) -> (Vec<(Header, Vec<u8>)>, Counters) {
        let config = DataplaneConfig {
            port_range: PortRange::new(40000, 40200).unwrap(),
            max_tracks: 64,
            ..DataplaneConfig::default()
        };
        let (engine, mut cores, mut rings) = Engine::start_without_writers(config).unwrap();
        let mut core = cores.pop().unwrap();
        let call = engine.open_call(CallSetup::default()).unwrap();
        for (rtp, pt, codec) in [(40000u16, 0u8, Codec::Pcmu), (40002, 8, Codec::Pcma)] {
            let a = |p: u16| Binding::Port(format!("127.0.0.1:{p}").parse().unwrap());
            let setup = TrackSetup {
                index: None,
                label: None,
                payload_types: vec![(pt, codec)],
                bindings: vec![a(rtp), a(rtp + 1)],
                srtp: None,
                ..TrackSetup::default()
            };
            engine.add_track(&call, setup).unwrap();
        }
        feed(&mut core, burst, &traffic(), 1_000_000_000, 10_000_000);
        engine.end_call(&call, 0).unwrap();
        core.service();
        let consumer: &mut RecordConsumer = &mut rings[0][0];
        let mut records = Vec::new();
        while let Some(r) = consumer.pop(|h, p| (*h, p.to_vec())).unwrap() {
            records.push(r);
        }
        (records, *core.counters())
    }

    #[test]
    fn burst_path_writes_exactly_what_the_packet_path_writes() {
        let (per_packet, c1) = run(false);
        let (burst, c2) = run(true);
        assert_eq!(c1, c2);
        assert_eq!(c1.dropped(DropReason::Duplicate), 2);
        assert!(c1.dropped(DropReason::UnknownPort) > 0 && c1.dropped(DropReason::Malformed) > 0);
        assert!(c1.rtcp > 0);
        assert_eq!(per_packet.len(), burst.len());
        assert_eq!(per_packet, burst);
        let segments = burst
            .iter()
            .filter(|(h, _)| h.kind == Kind::SegmentStart)
            .count();
        assert_eq!(segments, 3, "two track starts and one SSRC change");
        let ends = burst
            .iter()
            .filter(|(h, _)| h.kind == Kind::TrackEnd)
            .count();
        assert_eq!(ends, 2);
    }

    /// SRTP through the worker, per packet and in bursts: audio reaches the
    /// ring decrypted; a tampered RTP and SRTCP packet and a replay are
    /// dropped, counted per worker and per track, and change nothing;
    /// a re-keyed track carries on under the new key.
    #[test]
    fn srtp_is_authenticated_and_decrypted_before_recording() {
        use crate::srtp::{MasterKey, SrtpContext, Suite};
        let key = |b: u8| MasterKey::new(Suite::AesCm128HmacSha1_80, &[b; 30]).unwrap();
        for burst in [false, true] {
            let (engine, mut core, mut rings, call) = one_call(None);
            let track = engine
                .add_track(
                    &call,
                    TrackSetup {
                        payload_types: vec![(0, Codec::Pcmu)],
                        bindings: vec![a(40000), a(40001)],
                        srtp: Some(key(7)),
                        ..TrackSetup::default()
                    },
                )
                .unwrap();
            let mut tx = SrtpContext::from_master(&key(7));
            let frame = |dport: u16, payload: &[u8]| {
                ether(
                    0x0800,
                    &[],
                    &ipv4(
                        [127, 0, 0, 9],
                        [127, 0, 0, 1],
                        17,
                        &udp(20000, dport, payload),
                    ),
                )
            };
            let protect = |tx: &mut SrtpContext, seq: u16| {
                let plain = rtp_packet(0x80, 0, seq, seq as u32 * 160, 0xABCD, &[seq as u8; 160]);
                let mut buf = plain.clone();
                buf.resize(plain.len() + 10, 0);
                let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
                buf.truncate(n);
                buf
            };
            let mut frames = Vec::new();
            let mut wires: Vec<Vec<u8>> = Vec::new();
            for seq in 0..50u16 {
                let w = protect(&mut tx, seq);
                if seq == 10 {
                    let mut forged = w.clone();
                    forged[40] ^= 1;
                    frames.push(frame(40000, &forged));
                }
                frames.push(frame(40000, &w));
                if seq == 6 {
                    frames.push(frame(40000, &wires[5]));
                }
                wires.push(w);
            }
            let rtcp = [0x81, 200, 0, 1, 0, 0, 0xAB, 0xCD, 1, 2, 3, 4];
            let mut buf = [0u8; 64];
            buf[..12].copy_from_slice(&rtcp);
            let n = tx.protect_rtcp(1, &mut buf, 12).unwrap();
            // The forgery first: after the real one, its index would be
            // refused as a replay before its tag is even checked.
            let mut forged = buf[..n].to_vec();
            forged[n - 1] ^= 1;
            frames.push(frame(40001, &forged));
            frames.push(frame(40001, &buf[..n]));
            feed(&mut core, burst, &frames, 1_000_000_000, 20_000_000);
            // Re-key: the sender goes on under a new master key.
            engine.rekey_track(&call, track, &key(9)).unwrap();
            let mut tx2 = tx.rekeyed(SrtpContext::from_master(&key(9)).session().clone());
            let more: Vec<Vec<u8>> = (50..60u16)
                .map(|seq| frame(40000, &protect(&mut tx2, seq)))
                .collect();
            feed(&mut core, burst, &more, 3_000_000_000, 20_000_000);
            engine.end_call(&call, 0).unwrap();
            core.service();
            let c = *core.counters();
            assert_eq!(c.recorded, 60, "burst {burst}: {c:?}");
            assert_eq!(c.dropped(DropReason::SrtpAuthFailed), 2, "{c:?}");
            assert_eq!(c.dropped(DropReason::SrtpReplay), 1, "{c:?}");
            assert_eq!(c.dropped(DropReason::Duplicate), 0, "{c:?}");
            assert_eq!(c.rtcp, 1);
            let consumer: &mut RecordConsumer = &mut rings[0][0];
            let mut audio = Vec::new();
            let mut report = None;
            while let Some((h, p)) = consumer.pop(|h, p| (*h, p.to_vec())).unwrap() {
                match h.kind {
                    Kind::Audio => audio.push((h.aux as u16, p)),
                    Kind::TrackEnd => report = TrackReport::decode(&p),
                    _ => {}
                }
            }
            assert_eq!(audio.len(), 60);
            for (seq, payload) in &audio {
                assert_eq!(payload, &vec![*seq as u8; 160], "decrypted, seq {seq}");
            }
            let r = report.expect("track report");
            assert_eq!((r.srtp_auth_failed, r.srtp_replay), (2, 1), "{r:?}");
            assert_eq!(
                (r.packets, r.duplicates, r.rtcp_packets),
                (60, 0, 1),
                "{r:?}"
            );
        }
    }

    fn a(port: u16) -> Binding {
        Binding::Port(format!("127.0.0.1:{port}").parse().unwrap())
    }

    /// An engine without writers, its one worker and rings, and one call.
    fn one_call(
        ring_bytes: Option<usize>,
    ) -> (
        Engine,
        WorkerCore,
        Vec<Vec<RecordConsumer>>,
        crate::engine::CallHandle,
    ) {
        one_call_with(ring_bytes, CallSetup::default())
    }

    fn one_call_with(
        ring_bytes: Option<usize>,
        setup: CallSetup,
    ) -> (
        Engine,
        WorkerCore,
        Vec<Vec<RecordConsumer>>,
        crate::engine::CallHandle,
    ) {
        let dflt = DataplaneConfig::default();
        let config = DataplaneConfig {
            port_range: PortRange::new(40000, 40200).unwrap(),
            max_tracks: 8,
            ring_bytes: ring_bytes.unwrap_or(dflt.ring_bytes),
            ..dflt
        };
        let (engine, mut cores, rings) = Engine::start_without_writers(config).unwrap();
        let core = cores.pop().unwrap();
        let call = engine.open_call(setup).unwrap();
        (engine, core, rings, call)
    }

    fn rtp_from(src: [u8; 4], dport: u16, seq: u16) -> Vec<u8> {
        ether(
            0x0800,
            &[],
            &ipv4(
                src,
                [127, 0, 0, 1],
                17,
                &udp(
                    20000,
                    dport,
                    &rtp_packet(0x80, 0, seq, seq as u32 * 160, 0x5150, &[seq as u8; 160]),
                ),
            ),
        )
    }

    /// Hand `frames` to the worker, per packet or in bursts, arriving
    /// `step` ns apart from `t0`; packets no track owns count as unknown.
    fn feed(core: &mut WorkerCore, burst: bool, frames: &[Vec<u8>], t0: u64, step: u64) {
        let rx: Vec<RxPacket<'_>> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| RxPacket {
                frame: Frame::Ethernet,
                data: f,
                arrival_ns: t0 + i as u64 * step,
            })
            .collect();
        if burst {
            for chunk in rx.chunks(MAX_BURST) {
                core.handle_burst(chunk);
            }
        } else {
            for p in &rx {
                if let Outcome::Unknown { .. } = core.handle(p) {
                    core.count_unknown();
                }
            }
        }
    }

    fn drain(consumer: &mut RecordConsumer) -> Vec<(Header, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(r) = consumer.pop(|h, p| (*h, p.to_vec())).unwrap() {
            out.push(r);
        }
        out
    }

    /// Each policy, per packet and in bursts: packets from a source the
    /// track is not locked to never reach the ring and are counted per
    /// worker and per track; a re-INVITE's new address moves the lock.
    #[test]
    fn source_lock_keeps_spoofed_packets_out_of_the_recording() {
        use crate::source_lock::SourcePolicy;
        let sbc = [127, 0, 0, 9];
        let spoofer = [127, 0, 0, 66];
        for burst in [false, true] {
            for (policy, recorded_from_sbc) in [
                (SourcePolicy::First, true),
                (SourcePolicy::Expect("127.0.0.66".parse().unwrap()), false),
                (SourcePolicy::Any, true),
            ] {
                let (engine, mut core, mut rings, call) = one_call(None);
                let track = engine
                    .add_track(
                        &call,
                        TrackSetup {
                            payload_types: vec![(0, Codec::Pcmu)],
                            bindings: vec![a(40000)],
                            source: policy,
                            ..TrackSetup::default()
                        },
                    )
                    .unwrap();
                // The SBC speaks first; every third packet is the spoofer's.
                let frames: Vec<Vec<u8>> = (0..60u16)
                    .map(|seq| rtp_from(if seq % 3 == 2 { spoofer } else { sbc }, 40000, seq))
                    .collect();
                feed(&mut core, burst, &frames, 1_000_000_000, 20_000_000);
                let c = *core.counters();
                let what = format!("{policy:?} burst {burst}: {c:?}");
                let (from_sbc, from_spoofer) = (40, 20);
                let expect_wrong = match policy {
                    SourcePolicy::Any => 0,
                    _ if recorded_from_sbc => from_spoofer,
                    _ => from_sbc,
                };
                assert_eq!(c.dropped(DropReason::WrongSource), expect_wrong, "{what}");
                assert_eq!(c.recorded, 60 - expect_wrong, "{what}");
                let audio: Vec<u16> = drain(&mut rings[0][0])
                    .iter()
                    .filter(|(h, _)| h.kind == Kind::Audio)
                    .map(|(h, _)| h.aux as u16)
                    .collect();
                let from_spoofer_seq = |s: &u16| s % 3 == 2;
                match policy {
                    SourcePolicy::Any => assert_eq!(audio.len(), 60),
                    SourcePolicy::First => {
                        assert!(audio.iter().all(|s| !from_spoofer_seq(s)), "{what}")
                    }
                    SourcePolicy::Expect(_) => {
                        assert!(audio.iter().all(from_spoofer_seq), "{what}")
                    }
                }
                // A re-INVITE moves the stream to the other address.
                let moved = "127.0.0.66".parse().unwrap();
                engine
                    .relock_source(&call, track, SourcePolicy::Expect(moved))
                    .unwrap();
                let later: Vec<Vec<u8>> = (60..70u16)
                    .map(|seq| rtp_from(spoofer, 40000, seq))
                    .collect();
                feed(&mut core, burst, &later, 3_000_000_000, 20_000_000);
                let before = c.dropped(DropReason::WrongSource);
                assert_eq!(core.counters().dropped(DropReason::WrongSource), before);
                engine.end_call(&call, 0).unwrap();
                core.service();
                let report = drain(&mut rings[0][0])
                    .into_iter()
                    .find(|(h, _)| h.kind == Kind::TrackEnd)
                    .and_then(|(_, p)| TrackReport::decode(&p))
                    .expect("track report");
                assert_eq!(report.wrong_source, expect_wrong, "{what}");
            }
        }
    }

    /// A full ring drops audio, and the writer is told how many packets
    /// and from where, before the next record of the track; a run still
    /// open when the track ends goes out before the track's report.
    #[test]
    fn ring_drops_are_reported_as_loss_runs_in_order() {
        for burst in [false, true] {
            // The smallest ring: 327 records of a 160-byte packet.
            let (engine, mut core, mut rings, call) = one_call(Some(64 << 10));
            engine
                .add_track(
                    &call,
                    TrackSetup {
                        payload_types: vec![(0, Codec::Pcmu)],
                        bindings: vec![a(40000)],
                        ..TrackSetup::default()
                    },
                )
                .unwrap();
            let frames = |r: std::ops::Range<u16>| {
                r.map(|s| rtp_from([127, 0, 0, 9], 40000, s))
                    .collect::<Vec<_>>()
            };
            // 400 packets into a ring with room for 326 after the segment
            // start: the rest is dropped, then the writer catches up.
            feed(&mut core, burst, &frames(0..400), 1_000_000_000, 20_000_000);
            let first = drain(&mut rings[0][0]);
            let audio = first.iter().filter(|(h, _)| h.kind == Kind::Audio).count();
            let dropped = core.counters().dropped(DropReason::RingFull);
            assert_eq!(audio as u64 + dropped, 400, "burst {burst}");
            assert!(dropped > 50, "{dropped}");
            feed(
                &mut core,
                burst,
                &frames(400..405),
                9_000_000_000,
                20_000_000,
            );
            let second = drain(&mut rings[0][0]);
            let (h, p) = &second[0];
            assert_eq!(h.kind, Kind::Loss, "loss first: {second:?}");
            assert_eq!(h.aux as u64, dropped);
            assert_eq!(h.rel, audio as i64 * 160, "offset of the first lost packet");
            assert_eq!(h.arrival_ns, 1_000_000_000 + audio as u64 * 20_000_000);
            assert_eq!(
                u64::from_le_bytes(p[..8].try_into().unwrap()),
                1_000_000_000 + 399 * 20_000_000
            );
            assert_eq!(second[1].0.kind, Kind::Audio);
            assert_eq!(second[1].0.aux, 400);
            // Fill again and end the call while the run is open.
            feed(
                &mut core,
                burst,
                &frames(405..800),
                20_000_000_000,
                20_000_000,
            );
            drain(&mut rings[0][0]);
            feed(
                &mut core,
                burst,
                &frames(800..1200),
                40_000_000_000,
                20_000_000,
            );
            engine.end_call(&call, 0).unwrap();
            core.service();
            let mut tail = drain(&mut rings[0][0]);
            core.service();
            tail.extend(drain(&mut rings[0][0]));
            let kinds: Vec<Kind> = tail.iter().map(|(h, _)| h.kind).collect();
            let at = kinds
                .iter()
                .position(|k| *k == Kind::TrackEnd)
                .expect("report");
            assert_eq!(kinds[at - 1], Kind::Loss, "{kinds:?}");
            let report = TrackReport::decode(&tail[at].1).unwrap();
            assert_eq!(
                report.ring_drops,
                core.counters().dropped(DropReason::RingFull)
            );
        }
    }

    #[test]
    fn pcap_copies_that_miss_the_ring_are_counted_for_the_track() {
        for burst in [false, true] {
            let setup = CallSetup {
                pcap: Some(true),
                ..CallSetup::default()
            };
            let (engine, mut core, mut rings, call) = one_call_with(Some(64 << 10), setup);
            engine
                .add_track(
                    &call,
                    TrackSetup {
                        payload_types: vec![(0, Codec::Pcmu)],
                        bindings: vec![a(40000)],
                        ..TrackSetup::default()
                    },
                )
                .unwrap();
            let frames: Vec<_> = (0..400)
                .map(|s| rtp_from([127, 0, 0, 9], 40000, s))
                .collect();
            feed(&mut core, burst, &frames, 1_000_000_000, 20_000_000);
            let got = drain(&mut rings[0][0]);
            let copies = got.iter().filter(|(h, _)| h.kind == Kind::Packet).count() as u64;
            assert!(
                copies < 400,
                "the ring cannot hold 400 copies and their audio"
            );
            engine.end_call(&call, 0).unwrap();
            core.service();
            let mut tail = drain(&mut rings[0][0]);
            core.service();
            tail.extend(drain(&mut rings[0][0]));
            let (_, p) = tail
                .iter()
                .find(|(h, _)| h.kind == Kind::TrackEnd)
                .expect("report");
            let report = TrackReport::decode(p).unwrap();
            assert_eq!(report.pcap_drops, 400 - copies, "burst {burst}");
        }
    }
}
