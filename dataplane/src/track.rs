//! Per-track state owned by one worker, and what one RTP or RTCP packet does
//! to it. This is the per-packet work after the table lookup: sequence and
//! jitter accounting, segment decisions, and the copy onto the ring.

use std::sync::Arc;

use crate::codec::Codec;
use crate::demux::TrackRef;
use crate::jitter::Jitter;
use crate::packet::RtpHeader;
use crate::report::TrackReport;
use crate::ring::{Header, Kind, RecordProducer, HEADER_LEN};
use crate::seq::{SeqTracker, SeqVerdict};
use crate::specs::TrackSpec;
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

/// State of one track on one worker. `gen == 0` marks an unused slot.
#[derive(Default)]
pub struct TrackState {
    pub gen: u32,
    spec: Option<Arc<TrackSpec>>,
    /// Writer ring index, copied out of the spec to save a pointer chase.
    pub writer: usize,
    pub capture_pcap: bool,
    ssrc: u32,
    started: bool,
    seq: SeqTracker,
    jitter: Jitter,
    /// Segment number; its first audio is announced with a SegmentStart.
    segment: u32,
    /// A SegmentStart that still has to go on the ring: (reason, gap).
    announce: Option<(SegmentReason, u64)>,
    /// Audio codec and payload type of the current segment.
    codec: Option<Codec>,
    last_pt: u8,
    last_pt_codec: Option<Codec>,
    /// Timeline anchor: RTP timestamp of the furthest packet and its offset
    /// in samples from the start of the segment.
    anchored: bool,
    ts_at_max: u32,
    rel_max: i64,
    max_gap_ticks: i64,
    ns_per_tick: f64,
    last_audio_arrival_ns: u64,
    last_audio_duration_ns: u64,
    report: TrackReport,
}

impl TrackState {
    /// Take over the slot for `spec`'s track.
    pub fn reset(&mut self, spec: Arc<TrackSpec>) {
        *self = TrackState {
            gen: spec.track.gen,
            writer: spec.writer,
            capture_pcap: spec.capture_pcap,
            last_pt: u8::MAX,
            spec: Some(spec),
            ..TrackState::default()
        };
    }

    /// Whether this state belongs to `track`.
    #[inline]
    pub fn is(&self, track: TrackRef) -> bool {
        self.gen == track.gen && self.gen != 0
    }

    /// Final account of the track; leaves the slot unused.
    pub fn finish(&mut self) -> TrackReport {
        self.fold_seq();
        let mut r = self.report;
        r.jitter_ns = self.jitter.millis() * 1e6;
        *self = TrackState::default();
        r
    }

    /// Move the current sequence tracker's counts into the report.
    fn fold_seq(&mut self) {
        if self.seq.started() {
            self.report.packets += self.seq.received();
            self.report.expected += self.seq.expected();
            if self.report.packets == self.seq.received() {
                self.report.first_seq = self.seq.first_seq();
            }
            self.report.last_seq = self.seq.last_seq();
        }
        self.seq = SeqTracker::default();
    }

    fn new_segment(&mut self, reason: SegmentReason, arrival_ns: u64) {
        let gap = if reason == SegmentReason::Start || self.ns_per_tick == 0.0 {
            0
        } else {
            // Silence between segments follows the wall clock, capped so a
            // long gap never turns into hours of invented silence.
            let wall = arrival_ns
                .saturating_sub(self.last_audio_arrival_ns)
                .saturating_sub(self.last_audio_duration_ns);
            ((wall as f64 / self.ns_per_tick) as i64).clamp(0, self.max_gap_ticks) as u64
        };
        if self.started || self.announce.is_some() {
            self.segment += 1;
        }
        self.announce = Some((reason, gap));
        self.anchored = false;
        self.jitter.resync();
    }

    /// Account for an RTCP packet.
    #[inline]
    pub fn on_rtcp(&mut self) {
        self.report.rtcp_packets += 1;
    }

    /// Account for one RTP packet and put its audio on the ring. Ok(true)
    /// when audio went onto the ring, Ok(false) for packets without samples.
    #[inline]
    pub fn on_rtp(
        &mut self,
        track: TrackRef,
        rtp: &RtpHeader<'_>,
        arrival_ns: u64,
        limits: TrackLimits,
        ring: &mut RecordProducer,
    ) -> Result<bool, DropReason> {
        if !self.report.seen {
            self.report.seen = true;
            self.report.ssrc = rtp.ssrc;
            self.report.first_timestamp = rtp.timestamp;
            self.report.first_arrival_ns = arrival_ns;
            self.ssrc = rtp.ssrc;
        } else if rtp.ssrc != self.ssrc {
            self.fold_seq();
            self.ssrc = rtp.ssrc;
            self.report.ssrc_changes += 1;
            if self.started {
                self.new_segment(SegmentReason::SsrcChange, arrival_ns);
            }
        }
        let mut verdict = self.seq.observe(rtp.sequence);
        if verdict == SeqVerdict::Restart {
            self.fold_seq();
            verdict = self.seq.observe(rtp.sequence);
            if self.started {
                self.new_segment(SegmentReason::Restart, arrival_ns);
            }
        }
        match verdict {
            SeqVerdict::Duplicate => {
                self.report.duplicates += 1;
                return Err(DropReason::Duplicate);
            }
            SeqVerdict::TooOld => {
                self.report.late += 1;
                return Err(DropReason::Late);
            }
            SeqVerdict::Reordered => self.report.reordered += 1,
            SeqVerdict::InOrder | SeqVerdict::Restart => {}
        }
        if verdict == SeqVerdict::InOrder {
            self.report.last_timestamp = rtp.timestamp;
        }
        self.report.last_arrival_ns = arrival_ns;

        let codec = if rtp.payload_type == self.last_pt {
            self.last_pt_codec
        } else {
            let c = self
                .spec
                .as_ref()
                .and_then(|s| s.codec_for(rtp.payload_type));
            self.last_pt = rtp.payload_type;
            self.last_pt_codec = c;
            c
        };
        let Some(codec) = codec else {
            self.report.unsupported += 1;
            return Err(DropReason::UnsupportedCodec);
        };
        if !codec.is_audio() {
            if codec == Codec::TelephoneEvent {
                self.report.events += 1;
            }
            return Ok(false);
        }

        if !self.started {
            self.started = true;
            self.ns_per_tick = 1e9 / codec.clock_rate() as f64;
            self.max_gap_ticks = (limits.max_gap_ns as f64 / self.ns_per_tick) as i64;
            self.codec = Some(codec);
            self.new_segment(SegmentReason::Start, arrival_ns);
        } else if self.codec != Some(codec) && verdict == SeqVerdict::InOrder {
            self.codec = Some(codec);
            self.new_segment(SegmentReason::CodecChange, arrival_ns);
        }

        let rel = if !self.anchored {
            self.anchored = true;
            self.ts_at_max = rtp.timestamp;
            self.rel_max = 0;
            0
        } else {
            let d = rtp.timestamp.wrapping_sub(self.ts_at_max) as i32 as i64;
            if verdict == SeqVerdict::InOrder && (d < 0 || d > self.max_gap_ticks) {
                let reason = if d < 0 {
                    SegmentReason::Restart
                } else {
                    SegmentReason::TimestampJump
                };
                self.new_segment(reason, arrival_ns);
                self.anchored = true;
                self.ts_at_max = rtp.timestamp;
                self.rel_max = 0;
                0
            } else if d < -self.max_gap_ticks {
                self.report.late += 1;
                return Err(DropReason::Late);
            } else {
                self.rel_max + d
            }
        };
        if rel > self.rel_max {
            self.rel_max = rel;
            self.ts_at_max = rtp.timestamp;
        }
        let samples = codec.samples_in(rtp.payload.len());
        self.jitter
            .observe(arrival_ns as i64, (rel as f64 * self.ns_per_tick) as i64);
        if verdict == SeqVerdict::InOrder {
            self.last_audio_arrival_ns = arrival_ns;
            self.last_audio_duration_ns = (samples as f64 * self.ns_per_tick) as u64;
        }

        let announce_len = if self.announce.is_some() {
            HEADER_LEN
        } else {
            0
        };
        if ring.free() < announce_len + RecordProducer::size_of(rtp.payload.len()) {
            self.report.ring_drops += 1;
            return Err(DropReason::RingFull);
        }
        let codec_byte = codec_to_u8(codec);
        if let Some((reason, gap)) = self.announce.take() {
            let h = Header {
                kind: Kind::SegmentStart,
                codec: codec_byte,
                payload_len: 0,
                track,
                segment: self.segment,
                rel: gap as i64,
                arrival_ns,
                ssrc: self.ssrc,
                aux: reason as u32,
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
        self.report.payload_bytes += rtp.payload.len() as u64;
        Ok(true)
    }
}
