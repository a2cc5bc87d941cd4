//! Per-worker counters. Each worker counts in plain integers and publishes
//! them to its own cache-line-aligned atomics between bursts; readers sum
//! the workers' snapshots. Nothing is shared between workers.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::DropReason;

/// Counters one worker accumulates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// RTP packets whose audio went onto a ring.
    pub recorded: u64,
    pub rtcp: u64,
    #[serde(serialize_with = "ser_drops")]
    pub drops: [u64; DropReason::COUNT],
}

fn ser_drops<S: serde::Serializer>(d: &[u64; DropReason::COUNT], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(DropReason::COUNT))?;
    for r in DropReason::ALL {
        m.serialize_entry(r.name(), &d[r.index()])?;
    }
    m.end()
}

impl Counters {
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r.index()] += 1;
    }

    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r.index()]
    }

    pub fn add(&mut self, o: &Counters) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.recorded += o.recorded;
        self.rtcp += o.rtcp;
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
    }
}

/// The published copy, read by the control plane and metrics.
#[repr(align(64))]
#[derive(Default)]
pub struct WorkerStats {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    recorded: AtomicU64,
    rtcp: AtomicU64,
    drops: [AtomicU64; DropReason::COUNT],
    /// Commands this worker has completed; the control plane waits on it
    /// before reusing a track slot.
    pub commands_done: AtomicU64,
}

impl WorkerStats {
    /// Publish the worker's running totals (single writer: plain stores).
    pub fn publish(&self, c: &Counters) {
        self.rx_packets.store(c.rx_packets, Ordering::Relaxed);
        self.rx_bytes.store(c.rx_bytes, Ordering::Relaxed);
        self.recorded.store(c.recorded, Ordering::Relaxed);
        self.rtcp.store(c.rtcp, Ordering::Relaxed);
        for (a, v) in self.drops.iter().zip(c.drops.iter()) {
            a.store(*v, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Counters {
        let mut c = Counters {
            rx_packets: self.rx_packets.load(Ordering::Relaxed),
            rx_bytes: self.rx_bytes.load(Ordering::Relaxed),
            recorded: self.recorded.load(Ordering::Relaxed),
            rtcp: self.rtcp.load(Ordering::Relaxed),
            ..Counters::default()
        };
        for (v, a) in c.drops.iter_mut().zip(self.drops.iter()) {
            *v = a.load(Ordering::Relaxed);
        }
        c
    }
}
