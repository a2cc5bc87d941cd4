//! What each writer publishes about itself for metrics and the admin API.
//! A writer counts in plain integers and stores them into its own atomics
//! once per loop, as workers do (`stats.rs`); readers never block it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Audio later than this after its arrival is not a writer latency: the
/// arrival time came from a capture (replay) or a clock step.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// A writer's counters as the control plane reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriterStatsSnapshot {
    pub writer: usize,
    /// Ring records handled (audio, segment starts, packets, track ends).
    pub records: u64,
    /// Bytes of audio appended to WAV files.
    pub bytes_written: u64,
    /// Failed writes of WAV, pcap or `meta.json` files.
    pub io_errors: u64,
    pub open_calls: u64,
    pub open_tracks: u64,
}

/// How full one worker → writer ring is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RingOccupancy {
    pub worker: usize,
    pub writer: usize,
    /// Bytes waiting when the writer last began draining this ring: the
    /// backlog it found, which is what approaches capacity before drops.
    pub used_bytes: u64,
    pub capacity_bytes: u64,
}

/// The published copy of one writer's counters.
#[repr(align(64))]
pub struct WriterStats {
    records: AtomicU64,
    bytes_written: AtomicU64,
    io_errors: AtomicU64,
    open_calls: AtomicU64,
    open_tracks: AtomicU64,
    /// Per worker ring.
    ring_used: Box<[AtomicU64]>,
    ring_capacity: u64,
}

/// The values a writer publishes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Published {
    pub records: u64,
    pub bytes_written: u64,
    pub io_errors: u64,
    pub open_calls: u64,
    pub open_tracks: u64,
}

impl WriterStats {
    pub fn new(workers: usize, ring_capacity: usize) -> WriterStats {
        WriterStats {
            records: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            io_errors: AtomicU64::new(0),
            open_calls: AtomicU64::new(0),
            open_tracks: AtomicU64::new(0),
            ring_used: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            ring_capacity: ring_capacity as u64,
        }
    }

    /// Single writer: plain stores.
    pub(crate) fn publish(&self, p: &Published) {
        self.records.store(p.records, Ordering::Relaxed);
        self.bytes_written.store(p.bytes_written, Ordering::Relaxed);
        self.io_errors.store(p.io_errors, Ordering::Relaxed);
        self.open_calls.store(p.open_calls, Ordering::Relaxed);
        self.open_tracks.store(p.open_tracks, Ordering::Relaxed);
    }

    pub(crate) fn set_ring_used(&self, worker: usize, bytes: usize) {
        if let Some(a) = self.ring_used.get(worker) {
            a.store(bytes as u64, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self, writer: usize) -> WriterStatsSnapshot {
        WriterStatsSnapshot {
            writer,
            records: self.records.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            io_errors: self.io_errors.load(Ordering::Relaxed),
            open_calls: self.open_calls.load(Ordering::Relaxed),
            open_tracks: self.open_tracks.load(Ordering::Relaxed),
        }
    }

    /// This writer's rings, one per worker.
    pub fn rings(&self, writer: usize) -> impl Iterator<Item = RingOccupancy> + '_ {
        self.ring_used
            .iter()
            .enumerate()
            .map(move |(worker, used)| RingOccupancy {
                worker,
                writer,
                used_bytes: used.load(Ordering::Relaxed),
                capacity_bytes: self.ring_capacity,
            })
    }
}

/// Writer latency in ns from `arrival_ns` to `now_ns`, or `None` when the
/// arrival time is not a live one (see [`MAX_LATENCY_NS`]).
#[inline]
pub fn latency_ns(arrival_ns: u64, now_ns: u64) -> Option<u64> {
    now_ns
        .checked_sub(arrival_ns)
        .filter(|d| *d <= MAX_LATENCY_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_and_future_arrivals_are_not_latencies() {
        assert_eq!(latency_ns(100, 150), Some(50));
        assert_eq!(latency_ns(150, 100), None);
        assert_eq!(latency_ns(0, MAX_LATENCY_NS + 1), None);
        assert_eq!(latency_ns(1, MAX_LATENCY_NS + 1), Some(MAX_LATENCY_NS));
    }
}
