//! Per-track state owned by one worker, and what one RTP or RTCP packet does
//! to it. This is the per-packet work after the table lookup: sequence and
//! jitter accounting, segment decisions, and the copy onto the ring.

use std::sync::Arc;

use crate::codec::Codec;
use crate::demux::TrackRef;
use crate::jitter::Jitter;
use crate::packet::RtpHeader;
use crate::report::TrackReport;
use crate::ring::{Header, Kind, RecordProducer, HEADER_LEN, LOSS_PAYLOAD};
use crate::seq::{SeqTracker, SeqVerdict};
use crate::specs::{TrackSpec, TrackTable};
use crate::srtp::{SrtpContext, SrtpError};
use crate::DropReason;

/// Why a new segment began. Written into `meta.json` by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SegmentReason {
    /// The track's first audio.
    Start = 0,
    /// A new SSRC (transfer, SBC failover).
    SsrcChange = 1,
    /// The sender restarted its sequence numbers or moved its timestamps
    /// backwards.
    Restart = 2,
    /// The timestamp jumped further than `max_gap`.
    TimestampJump = 3,
    /// The audio codec changed (e.g. PCMU → PCMA after a transfer).
    CodecChange = 4,
}

impl SegmentReason {
    pub fn from_u32(v: u32) -> SegmentReason {
        match v {
            1 => SegmentReason::SsrcChange,
            2 => SegmentReason::Restart,
            3 => SegmentReason::TimestampJump,
            4 => SegmentReason::CodecChange,
            _ => SegmentReason::Start,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            SegmentReason::Start => "start",
            SegmentReason::SsrcChange => "ssrc_change",
            SegmentReason::Restart => "restart",
            SegmentReason::TimestampJump => "timestamp_jump",
            SegmentReason::CodecChange => "codec_change",
        }
    }
}

/// Codec numbering on the ring.
pub fn codec_to_u8(c: Codec) -> u8 {
    match c {
        Codec::Pcmu => 0,
        Codec::Pcma => 1,
        Codec::TelephoneEvent => 2,
        Codec::ComfortNoise => 3,
    }
}

/// Inverse of [`codec_to_u8`].
pub fn codec_from_u8(v: u8) -> Option<Codec> {
    match v {
        0 => Some(Codec::Pcmu),
        1 => Some(Codec::Pcma),
        2 => Some(Codec::TelephoneEvent),
        3 => Some(Codec::ComfortNoise),
        _ => None,
    }
}

/// Settings every track of a worker shares.
#[derive(Clone, Copy, Debug)]
pub struct TrackLimits {
    /// Largest timestamp jump filled with silence, ns.
    pub max_gap_ns: u64,
}

/// What a track's packet processing reads besides its own state.
#[derive(Clone, Copy)]
pub struct TrackEnv<'a> {
    pub limits: TrackLimits,
    /// Where a newer spec is found after a re-INVITE changed codecs.
    pub specs: &'a TrackTable,
}

impl TrackLimits {
    /// `max_gap` in 8 kHz timestamp ticks.
    #[inline]
    pub fn max_gap_ticks(&self) -> u32 {
        (self.max_gap_ns / NS_PER_TICK as u64).min(i32::MAX as u64) as u32
    }
}

const F_SEEN: u8 = 1;
const F_STARTED: u8 = 2;
const F_ANCHORED: u8 = 4;
const F_ANNOUNCE: u8 = 8;
const F_PCAP: u8 = 16;
const F_SRTP: u8 = 32;
/// Packets must come from `TrackState::source`.
const F_LOCK: u8 = 64;
/// Audio was dropped for a full ring; a Loss record is owed to the writer.
const F_LOST: u8 = 128;
const NO_CODEC: u8 = u8::MAX;

/// What one worker touches for every packet of a track: one cache line, so
/// 200,000 tracks cost one line fill per packet and nothing more. Counters
/// of rare events (duplicates, late, SSRC changes, ...) live in
/// [`TrackCold`]. `gen == 0` marks an unused slot.
#[repr(C, align(64))]
#[derive(Default)]
pub struct TrackState {
    pub gen: u32,
    /// Writer ring index.
    pub writer: u16,
    flags: u8,
    last_pt: u8,
    ssrc: u32,
    /// Segment number; its first audio is announced with a SegmentStart.
    segment: u32,
    seq: SeqTracker,
    /// Timeline anchor: RTP timestamp of the furthest packet and its offset
    /// in samples from the start of the segment (a segment is cut before
    /// this overflows: 74 hours at 8 kHz).
    ts_at_max: u32,
    rel_max: i32,
    /// Audio codec of the current segment, and the codec of `last_pt`.
    codec: u8,
    last_pt_codec: u8,
    last_audio_samples: u16,
    jitter: Jitter,
    /// Tag of the source address packets must come from (with `F_LOCK`);
    /// 0 until the lock is known.
    source: u32,
    last_audio_arrival_ns: u64,
}

/// A run of packets dropped for a full ring, waiting to be reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossRun {
    pub segment: u32,
    /// Timeline offset of the first dropped packet in its segment.
    pub rel: i64,
    pub first_arrival_ns: u64,
    pub last_arrival_ns: u64,
    pub packets: u32,
}

impl LossRun {
    /// The run as a ring record.
    pub fn header(&self, track: TrackRef, ssrc: u32) -> (Header, [u8; LOSS_PAYLOAD]) {
        (
            Header {
                kind: Kind::Loss,
                codec: 0,
                payload_len: LOSS_PAYLOAD as u16,
                track,
                segment: self.segment,
                rel: self.rel,
                arrival_ns: self.first_arrival_ns,
                ssrc,
                aux: self.packets,
            },
            self.last_arrival_ns.to_le_bytes(),
        )
    }
}

/// The rarely touched part of a track's state.
#[derive(Default)]
pub struct TrackCold {
    spec: Option<Arc<TrackSpec>>,
    report: TrackReport,
    /// The SegmentStart waiting to go on the ring: (reason, gap in samples).
    announce: (u8, u32),
    /// This worker's SRTP context for the track: the spec's shared session
    /// keys and this worker's own rollover counter and replay windows.
    /// Made on the track's first packet: an `Arc` clone, no allocation.
    srtp: Option<SrtpContext>,
    /// Audio dropped for a full ring since the last record that fitted.
    loss: LossRun,
}

impl TrackCold {
    /// A raw copy for `call.pcap` did not fit in the ring.
    #[cold]
    pub fn note_pcap_drop(&mut self) {
        self.report.pcap_drops += 1;
    }

    #[cold]
    fn note_loss(&mut self, segment: u32, rel: i64, arrival_ns: u64) {
        let l = &mut self.loss;
        if l.packets == 0 {
            *l = LossRun {
                segment,
                rel,
                first_arrival_ns: arrival_ns,
                last_arrival_ns: arrival_ns,
                packets: 0,
            };
        }
        l.packets = l.packets.saturating_add(1);
        l.last_arrival_ns = arrival_ns;
    }

    /// Authenticate, replay-check and decrypt an SRTP (or, with `rtcp`,
    /// SRTCP) packet in place; the plaintext length. Nothing about the
    /// stream changes unless the packet authenticates, so a forged packet
    /// cannot move the replay window, the rollover counter, or (later, in
    /// [`TrackState::on_rtp`]) the sequence tracker. Refusals are counted
    /// in the track's report.
    ///
    /// When a packet fails with the current key and the control plane has
    /// since published another one (a re-INVITE re-keyed the stream), it is
    /// tried with that key and the new key is adopted if it works. Only
    /// failures pay for this check.
    #[inline]
    pub fn unprotect(
        &mut self,
        rtcp: bool,
        packet: &mut [u8],
        specs: &TrackTable,
        track: TrackRef,
    ) -> Result<usize, DropReason> {
        let Some(ctx) = self.srtp.as_mut() else {
            return Err(DropReason::SrtpAuthFailed);
        };
        let mut r = if rtcp {
            ctx.unprotect_rtcp(packet)
        } else {
            ctx.unprotect_rtp(packet)
        };
        if r == Err(SrtpError::AuthFailed) {
            if let Some(rekeyed) = self.try_new_key(rtcp, packet, specs, track) {
                r = rekeyed;
            }
        }
        r.map_err(|e| match e {
            SrtpError::AuthFailed => {
                self.report.srtp_auth_failed += 1;
                DropReason::SrtpAuthFailed
            }
            SrtpError::Replay => {
                self.report.srtp_replay += 1;
                DropReason::SrtpReplay
            }
            SrtpError::Malformed | SrtpError::NoRoom | SrtpError::KeyLength(_) => {
                DropReason::Malformed
            }
        })
    }

    /// Retry a packet that failed authentication with the newest published
    /// key, if it differs from ours; `None` when there is no other key.
    #[cold]
    fn try_new_key(
        &mut self,
        rtcp: bool,
        packet: &mut [u8],
        specs: &TrackTable,
        track: TrackRef,
    ) -> Option<Result<usize, SrtpError>> {
        let newer = specs.get(track)?;
        let session = newer.srtp.as_ref()?;
        let current = self.srtp.as_ref()?;
        if Arc::ptr_eq(session, current.session()) {
            return None;
        }
        let mut ctx = current.rekeyed(session.clone());
        let r = if rtcp {
            ctx.unprotect_rtcp(packet)
        } else {
            ctx.unprotect_rtp(packet)
        };
        if r.is_ok() {
            self.srtp = Some(ctx);
            self.spec = Some(newer);
        }
        Some(r)
    }
}

impl TrackState {
    /// Take over the slot for `spec`'s track.
    pub fn reset(&mut self, cold: &mut TrackCold, spec: Arc<TrackSpec>) {
        let srtp = spec.srtp.clone().map(SrtpContext::new);
        *self = TrackState {
            gen: spec.track.gen,
            writer: spec.writer as u16,
            flags: (if spec.capture_pcap { F_PCAP } else { 0 })
                | (if srtp.is_some() { F_SRTP } else { 0 })
                | (if spec.source.enabled() { F_LOCK } else { 0 }),
            source: spec.source.current(),
            last_pt: u8::MAX,
            codec: NO_CODEC,
            last_pt_codec: NO_CODEC,
            ..TrackState::default()
        };
        *cold = TrackCold {
            spec: Some(spec),
            srtp,
            ..TrackCold::default()
        };
    }

    /// Whether this state belongs to `track`.
    #[inline]
    pub fn is(&self, track: TrackRef) -> bool {
        self.gen == track.gen && self.gen != 0
    }

    /// Whether the call wants raw packets in its pcap.
    #[inline]
    pub fn capture_pcap(&self) -> bool {
        self.flags & F_PCAP != 0
    }

    /// Whether the track's packets are SRTP/SRTCP.
    #[inline]
    pub fn is_srtp(&self) -> bool {
        self.flags & F_SRTP != 0
    }

    /// Whether a packet from source tag `src` may feed the track (see
    /// [`crate::source_lock`]). One compare per packet; the latch is read
    /// only on a mismatch.
    #[inline(always)]
    pub fn check_source(&mut self, cold: &mut TrackCold, src: u32) -> Result<(), DropReason> {
        if self.flags & F_LOCK == 0 || self.source == src {
            return Ok(());
        }
        self.relock(cold, src)
    }

    /// The lock is not known yet (first packet), or moved (re-INVITE), or
    /// the packet really is from elsewhere.
    #[cold]
    fn relock(&mut self, cold: &mut TrackCold, src: u32) -> Result<(), DropReason> {
        let Some(spec) = cold.spec.as_ref() else {
            return Ok(());
        };
        self.source = spec.source.lock_or_current(src);
        if self.source == src {
            Ok(())
        } else {
            cold.report.wrong_source += 1;
            Err(DropReason::WrongSource)
        }
    }

    /// The loss run not yet reported, if any (the track is ending).
    pub fn take_loss(&mut self, cold: &mut TrackCold) -> Option<LossRun> {
        if self.flags & F_LOST == 0 {
            return None;
        }
        self.flags &= !F_LOST;
        Some(std::mem::take(&mut cold.loss))
    }

    /// Final account of the track; leaves the slot unused.
    pub fn finish(&mut self, cold: &mut TrackCold) -> TrackReport {
        self.fold_seq(cold);
        let mut r = cold.report;
        r.jitter_ns = self.jitter.millis() * 1e6;
        if self.flags & F_ANCHORED != 0 {
            r.last_timestamp = self.ts_at_max;
        }
        r.last_arrival_ns = r.last_arrival_ns.max(self.last_audio_arrival_ns);
        *self = TrackState::default();
        *cold = TrackCold::default();
        r
    }

    /// Move the current sequence tracker's counts into the report.
    fn fold_seq(&mut self, cold: &mut TrackCold) {
        if self.seq.started() {
            let r = &mut cold.report;
            if r.packets == 0 && r.expected == 0 {
                r.first_seq = self.seq.first_seq();
            }
            r.packets += self.seq.received();
            r.expected += self.seq.expected();
            r.last_seq = self.seq.last_seq();
        }
        self.seq = SeqTracker::default();
    }

    fn new_segment(
        &mut self,
        cold: &mut TrackCold,
        reason: SegmentReason,
        arrival_ns: u64,
        limits: TrackLimits,
    ) {
        let gap = if reason == SegmentReason::Start || self.codec == NO_CODEC {
            0
        } else {
            // Silence between segments follows the wall clock, capped so a
            // long gap never turns into hours of invented silence.
            let duration_ns = (self.last_audio_samples as f64 * NS_PER_TICK) as u64;
            let wall = arrival_ns
                .saturating_sub(self.last_audio_arrival_ns)
                .saturating_sub(duration_ns);
            ((wall as f64 / NS_PER_TICK) as u64).min(limits.max_gap_ticks() as u64)
        };
        if self.flags & F_ANCHORED != 0 {
            self.segment += 1;
        }
        self.flags |= F_ANNOUNCE;
        self.flags &= !F_ANCHORED;
        cold.announce = (reason as u8, gap as u32);
        self.jitter.resync();
    }

    /// Account for an RTCP packet.
    #[inline]
    pub fn on_rtcp(&mut self, cold: &mut TrackCold) {
        cold.report.rtcp_packets += 1;
    }

    /// Account for one RTP packet and put its audio on the ring. Ok(true)
    /// when audio went onto the ring, Ok(false) for packets without samples.
    #[inline]
    pub fn on_rtp(
        &mut self,
        cold: &mut TrackCold,
        track: TrackRef,
        rtp: &RtpHeader<'_>,
        arrival_ns: u64,
        env: TrackEnv<'_>,
        ring: &mut RecordProducer,
    ) -> Result<bool, DropReason> {
        let TrackEnv { limits, specs } = env;
        if self.flags & F_SEEN == 0 {
            self.flags |= F_SEEN;
            let r = &mut cold.report;
            r.seen = true;
            r.ssrc = rtp.ssrc;
            r.first_timestamp = rtp.timestamp;
            r.first_arrival_ns = arrival_ns;
            self.ssrc = rtp.ssrc;
        } else if rtp.ssrc != self.ssrc {
            self.fold_seq(cold);
            self.ssrc = rtp.ssrc;
            cold.report.ssrc_changes += 1;
            if self.flags & F_STARTED != 0 {
                self.new_segment(cold, SegmentReason::SsrcChange, arrival_ns, limits);
            }
        }
        let mut verdict = self.seq.observe(rtp.sequence);
        if verdict == SeqVerdict::Restart {
            self.fold_seq(cold);
            verdict = self.seq.observe(rtp.sequence);
            if self.flags & F_STARTED != 0 {
                self.new_segment(cold, SegmentReason::Restart, arrival_ns, limits);
            }
        }
        match verdict {
            SeqVerdict::Duplicate => {
                cold.report.duplicates += 1;
                return Err(DropReason::Duplicate);
            }
            SeqVerdict::TooOld => {
                cold.report.late += 1;
                return Err(DropReason::Late);
            }
            SeqVerdict::Reordered => cold.report.reordered += 1,
            SeqVerdict::InOrder | SeqVerdict::Restart => {}
        }

        let codec_byte = if rtp.payload_type == self.last_pt {
            self.last_pt_codec
        } else {
            let mut c = cold
                .spec
                .as_ref()
                .and_then(|s| s.codec_for(rtp.payload_type));
            if c.is_none() {
                // A re-INVITE may have published new payload types.
                if let Some(newer) = specs.get(track) {
                    c = newer.codec_for(rtp.payload_type);
                    cold.spec = Some(newer);
                }
            }
            self.last_pt = rtp.payload_type;
            self.last_pt_codec = c.map_or(NO_CODEC, codec_to_u8);
            self.last_pt_codec
        };
        let Some(codec) = codec_from_u8(codec_byte) else {
            cold.report.unsupported += 1;
            return Err(DropReason::UnsupportedCodec);
        };
        if !codec.is_audio() {
            if codec == Codec::TelephoneEvent {
                cold.report.events += 1;
            }
            return Ok(false);
        }

        if self.flags & F_STARTED == 0 {
            self.flags |= F_STARTED;
            self.codec = codec_byte;
            self.new_segment(cold, SegmentReason::Start, arrival_ns, limits);
        } else if self.codec != codec_byte && verdict == SeqVerdict::InOrder {
            self.codec = codec_byte;
            self.new_segment(cold, SegmentReason::CodecChange, arrival_ns, limits);
        }

        let rel = if self.flags & F_ANCHORED == 0 {
            self.flags |= F_ANCHORED;
            self.ts_at_max = rtp.timestamp;
            self.rel_max = 0;
            0
        } else {
            let d = rtp.timestamp.wrapping_sub(self.ts_at_max) as i32 as i64;
            let max_gap = limits.max_gap_ticks() as i64;
            let overflow = self.rel_max as i64 + d > i32::MAX as i64;
            if verdict == SeqVerdict::InOrder && (d < 0 || d > max_gap || overflow) {
                let reason = if d < 0 {
                    SegmentReason::Restart
                } else {
                    SegmentReason::TimestampJump
                };
                self.new_segment(cold, reason, arrival_ns, limits);
                self.flags |= F_ANCHORED;
                self.ts_at_max = rtp.timestamp;
                self.rel_max = 0;
                0
            } else if d < -max_gap {
                cold.report.late += 1;
                return Err(DropReason::Late);
            } else {
                self.rel_max as i64 + d
            }
        };
        if rel > self.rel_max as i64 {
            self.rel_max = rel as i32;
            self.ts_at_max = rtp.timestamp;
        }
        let samples = codec.samples_in(rtp.payload.len());
        self.jitter
            .observe(arrival_ns as i64, (rel as f64 * NS_PER_TICK) as i64);
        if verdict == SeqVerdict::InOrder {
            self.last_audio_arrival_ns = arrival_ns;
            self.last_audio_samples = samples.min(u16::MAX as u32) as u16;
        }

        let announce = self.flags & F_ANNOUNCE != 0;
        let announce_len = if announce { HEADER_LEN } else { 0 };
        let lost = self.flags & F_LOST != 0;
        let loss_len = if lost {
            RecordProducer::size_of(LOSS_PAYLOAD)
        } else {
            0
        };
        if ring.free() < announce_len + loss_len + RecordProducer::size_of(rtp.payload.len()) {
            cold.report.ring_drops += 1;
            cold.note_loss(self.segment, rel, arrival_ns);
            self.flags |= F_LOST;
            return Err(DropReason::RingFull);
        }
        if lost {
            // Before the segment start: the run belongs to the segment the
            // writer has open.
            self.flags &= !F_LOST;
            let (h, p) = cold.loss.header(track, self.ssrc);
            cold.loss = LossRun::default();
            ring.push(&h, &[&p]);
        }
        if announce {
            self.flags &= !F_ANNOUNCE;
            let h = Header {
                kind: Kind::SegmentStart,
                codec: codec_byte,
                payload_len: 0,
                track,
                segment: self.segment,
                rel: cold.announce.1 as i64,
                arrival_ns,
                ssrc: self.ssrc,
                aux: cold.announce.0 as u32,
            };
            ring.push(&h, &[]);
        }
        let h = Header {
            kind: Kind::Audio,
            codec: codec_byte,
            payload_len: rtp.payload.len() as u16,
            track,
            segment: self.segment,
            rel,
            arrival_ns,
            ssrc: self.ssrc,
            aux: rtp.sequence as u32,
        };
        ring.push(&h, &[rtp.payload]);
        Ok(true)
    }
}

/// Nanoseconds per timestamp tick of the 8 kHz codecs recorded today.
const NS_PER_TICK: f64 = 125_000.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_state_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<TrackState>(), 64);
        assert_eq!(std::mem::align_of::<TrackState>(), 64);
    }
}
