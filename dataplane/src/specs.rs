//! What each track is, published by the control plane for the workers and
//! writers: codecs by payload type, label, writer. A worker reads a track's
//! spec once, when the track's first packet reaches it, never per packet.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

use crate::codec::Codec;
use crate::demux::{TrackRef, MAX_GEN};
use crate::source_lock::SourceLatch;
use crate::srtp::SrtpSession;

/// A recording (call) as the data plane knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

/// Description of one track.
#[derive(Clone, Debug)]
pub struct TrackSpec {
    pub track: TrackRef,
    pub call: CallRef,
    /// Index of the track within its call (0, 1, ...), names its file.
    pub index: u32,
    /// Writer thread that owns the call's files.
    pub writer: usize,
    /// Payload types the track may carry (SDP rtpmap, static types).
    pub payload_types: Vec<(u8, Codec)>,
    /// Whether to also copy every raw packet to the call's pcap.
    pub capture_pcap: bool,
    /// SRTP session keys when the SDP negotiated SDES (`RTP/SAVP` with
    /// `a=crypto`): derived once by the control plane and shared by every
    /// worker, each of which keeps its own replay window for the track.
    pub srtp: Option<Arc<SrtpSession>>,
    /// The source address lock, shared by every worker and carried over
    /// when the spec is republished (codec change, re-key).
    pub source: Arc<SourceLatch>,
    /// Media records the track's writer has taken, for the control plane's
    /// no-media timeout; carried over like `source`.
    pub media: Arc<MediaSeen>,
}

/// How many media records (audio, losses, segment starts) a track's writer
/// has taken. Counted by the writer, not the workers: no worker writes
/// shared memory per packet. The control plane only compares two readings.
#[derive(Debug, Default)]
pub struct MediaSeen(AtomicU64);

impl MediaSeen {
    /// One more record. Only the track's writer calls it, so a load and a
    /// store are enough (no read-modify-write instruction).
    #[inline]
    pub fn note(&self) {
        self.0
            .store(self.0.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Records so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl TrackSpec {
    /// Codec of payload type `pt` on this track: the SDP mapping first, the
    /// static assignment when the SDP does not mention it.
    pub fn codec_for(&self, pt: u8) -> Option<Codec> {
        self.payload_types
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, c)| *c)
            .or_else(|| Codec::from_static_payload_type(pt))
    }
}

/// Slots for every possible track, with free-slot management for the
/// control plane. Readers (`get`) are lock-free.
pub struct TrackTable {
    slots: Box<[ArcSwapOption<TrackSpec>]>,
    gens: Box<[AtomicU32]>,
    free: Mutex<Vec<u32>>,
}

/// No free track slot.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("all {0} track slots are in use (raise max_tracks)")]
pub struct TracksExhausted(pub usize);

impl TrackTable {
    pub fn new(capacity: usize) -> Self {
        TrackTable {
            slots: (0..capacity).map(|_| ArcSwapOption::empty()).collect(),
            gens: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
            // Pop from the end: hand out low slots first.
            free: Mutex::new((0..capacity as u32).rev().collect()),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Reserve a slot and give it a fresh generation.
    pub fn allocate(&self) -> Result<TrackRef, TracksExhausted> {
        let slot = self
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .ok_or(TracksExhausted(self.slots.len()))?;
        let g = &self.gens[slot as usize];
        let next = if g.load(Ordering::Relaxed) >= MAX_GEN {
            1
        } else {
            g.load(Ordering::Relaxed) + 1
        };
        g.store(next, Ordering::Relaxed);
        Ok(TrackRef { slot, gen: next })
    }

    /// Publish the spec of an allocated track.
    pub fn publish(&self, spec: TrackSpec) {
        let slot = spec.track.slot as usize;
        self.slots[slot].store(Some(Arc::new(spec)));
    }

    /// The spec of `track`, if that slot still holds that generation.
    pub fn get(&self, track: TrackRef) -> Option<Arc<TrackSpec>> {
        let spec = self.slots.get(track.slot as usize)?.load_full()?;
        (spec.track.gen == track.gen).then_some(spec)
    }

    /// Withdraw the spec (new packets of the track become stale).
    pub fn withdraw(&self, track: TrackRef) {
        if let Some(s) = self.slots.get(track.slot as usize) {
            if s.load().as_ref().is_some_and(|sp| sp.track == track) {
                s.store(None);
            }
        }
    }

    /// Return the slot for reuse. Only once every worker has let go of it.
    pub fn release(&self, track: TrackRef) {
        self.withdraw(track);
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(track.slot);
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.slots.len() - self.free.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(t: TrackRef) -> TrackSpec {
        TrackSpec {
            track: t,
            call: CallRef(1),
            index: 0,
            writer: 0,
            payload_types: vec![(96, Codec::Pcma)],
            capture_pcap: false,
            srtp: None,
            source: Arc::new(SourceLatch::new(
                crate::source_lock::SourcePolicy::Any,
                &crate::source_lock::SourceKey::random(),
            )),
            media: Arc::default(),
        }
    }

    #[test]
    fn generations_distinguish_reuse() {
        let table = TrackTable::new(1);
        let a = table.allocate().unwrap();
        table.publish(spec(a));
        assert!(table.get(a).is_some());
        assert_eq!(table.allocate(), Err(TracksExhausted(1)));
        table.release(a);
        let b = table.allocate().unwrap();
        assert_eq!(b.slot, a.slot);
        assert_ne!(b.gen, a.gen);
        table.publish(spec(b));
        assert!(table.get(a).is_none(), "old generation must not resolve");
        assert!(table.get(b).is_some());
    }

    #[test]
    fn codec_lookup_prefers_sdp() {
        let s = spec(TrackRef { slot: 0, gen: 1 });
        assert_eq!(s.codec_for(96), Some(Codec::Pcma));
        assert_eq!(s.codec_for(0), Some(Codec::Pcmu));
        assert_eq!(s.codec_for(18), None);
    }
}
