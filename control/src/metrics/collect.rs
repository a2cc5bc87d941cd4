//! Snapshot-to-metrics: what the server loop publishes about once a second.
//!
//! The data plane never touches the `metrics` crate: workers publish plain
//! running totals (`mediafork_dataplane::stats::WorkerStats`), and the
//! control plane copies them into a [`Snapshot`] and calls [`publish`].
//! Running totals become counters with `absolute`; levels become gauges.

use mediafork_dataplane::stats::Counters;
use mediafork_dataplane::DropReason;
use metrics::{counter, gauge};

use super::names as n;
use crate::admin::api::NicStats;
use crate::ports::PortPool;

/// One worker's running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerSnapshot {
    pub worker: usize,
    pub counters: Counters,
}

/// How full the ring from one worker to one writer is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingOccupancy {
    pub worker: usize,
    pub writer: usize,
    pub used_bytes: u64,
    pub capacity_bytes: u64,
}

/// One writer's running totals and open calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterSnapshot {
    pub writer: usize,
    pub records: u64,
    pub bytes_written: u64,
    pub io_errors: u64,
    pub open_calls: u64,
}

/// The media port pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortPoolSnapshot {
    pub free: u64,
    pub free_pairs: u64,
    pub in_use: u64,
    pub quarantined: u64,
    pub total: u64,
}

impl From<&PortPool> for PortPoolSnapshot {
    fn from(p: &PortPool) -> Self {
        PortPoolSnapshot {
            free: p.free() as u64,
            free_pairs: p.free_pairs() as u64,
            in_use: p.in_use() as u64,
            quarantined: p.quarantined() as u64,
            total: p.total() as u64,
        }
    }
}

/// State of the recordings volume; the gauge value is the discriminant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum StorageLevel {
    #[default]
    Ok = 0,
    Warning = 1,
    Critical = 2,
}

impl StorageLevel {
    /// From the names `status` uses: `ok`, `warning`, `critical`.
    pub fn parse(s: &str) -> Option<StorageLevel> {
        match s {
            "ok" => Some(StorageLevel::Ok),
            "warning" => Some(StorageLevel::Warning),
            "critical" => Some(StorageLevel::Critical),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StorageLevel::Ok => "ok",
            StorageLevel::Warning => "warning",
            StorageLevel::Critical => "critical",
        }
    }
}

/// The recordings volume.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageSnapshot {
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub level: StorageLevel,
}

/// Everything [`publish`] turns into metrics. Plain data: the server loop
/// fills it from the engine, the recorder and the port pool.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// `socket` or `dpdk`; sets `mediafork_build_info{backend}` when not
    /// empty.
    pub backend: String,
    pub workers: Vec<WorkerSnapshot>,
    /// One entry per (worker, writer) ring.
    pub rings: Vec<RingOccupancy>,
    pub writers: Vec<WriterSnapshot>,
    /// DPDK port counters (`dpdk` backend only).
    pub nic: Option<NicStats>,
    pub active_calls: u64,
    pub active_tracks: u64,
    pub active_dialogs: u64,
    pub ports: PortPoolSnapshot,
    /// `None` until the volume was first measured.
    pub storage: Option<StorageSnapshot>,
    pub draining: bool,
}

/// Publish `s` to the installed recorder (a no-op without one). Cheap
/// enough to call every second: one registry lookup per series.
pub fn publish(s: &Snapshot) {
    if !s.backend.is_empty() {
        super::build_info(&s.backend);
    }

    for w in &s.workers {
        let worker = w.worker.to_string();
        let c = &w.counters;
        counter!(n::RX_PACKETS, "worker" => worker.clone()).absolute(c.rx_packets);
        counter!(n::RX_BYTES, "worker" => worker.clone()).absolute(c.rx_bytes);
        counter!(n::RECORDED_PACKETS, "worker" => worker.clone()).absolute(c.recorded);
        counter!(n::RTCP_PACKETS, "worker" => worker.clone()).absolute(c.rtcp);
        for r in DropReason::ALL {
            counter!(n::DROPPED_PACKETS, "worker" => worker.clone(), "reason" => r.name())
                .absolute(c.dropped(r));
        }
    }

    for r in &s.rings {
        let labels = [
            ("worker", r.worker.to_string()),
            ("writer", r.writer.to_string()),
        ];
        gauge!(n::RING_USED_BYTES, &labels).set(r.used_bytes as f64);
        gauge!(n::RING_CAPACITY_BYTES, &labels).set(r.capacity_bytes as f64);
    }

    for w in &s.writers {
        let writer = w.writer.to_string();
        counter!(n::WRITER_RECORDS, "writer" => writer.clone()).absolute(w.records);
        counter!(n::WRITER_WRITTEN_BYTES, "writer" => writer.clone()).absolute(w.bytes_written);
        counter!(n::WRITER_IO_ERRORS, "writer" => writer.clone()).absolute(w.io_errors);
        gauge!(n::WRITER_OPEN_CALLS, "writer" => writer).set(w.open_calls as f64);
    }

    if let Some(nic) = &s.nic {
        publish_nic(nic);
    }

    gauge!(n::ACTIVE_CALLS).set(s.active_calls as f64);
    gauge!(n::ACTIVE_TRACKS).set(s.active_tracks as f64);
    gauge!(n::ACTIVE_DIALOGS).set(s.active_dialogs as f64);
    gauge!(n::DRAINING).set(if s.draining { 1.0 } else { 0.0 });

    let p = &s.ports;
    gauge!(n::PORT_POOL_FREE).set(p.free as f64);
    gauge!(n::PORT_POOL_FREE_PAIRS).set(p.free_pairs as f64);
    gauge!(n::PORT_POOL_IN_USE).set(p.in_use as f64);
    gauge!(n::PORT_POOL_QUARANTINED).set(p.quarantined as f64);
    gauge!(n::PORT_POOL_SIZE).set(p.total as f64);

    if let Some(st) = &s.storage {
        gauge!(n::STORAGE_FREE_BYTES).set(st.free_bytes as f64);
        gauge!(n::STORAGE_SIZE_BYTES).set(st.total_bytes as f64);
        gauge!(n::STORAGE_STATE).set(st.level as u8 as f64);
    }
}

fn publish_nic(nic: &NicStats) {
    let port = nic.port.clone();
    counter!(n::NIC_RX_PACKETS, "port" => port.clone()).absolute(nic.ipackets);
    counter!(n::NIC_RX_BYTES, "port" => port.clone()).absolute(nic.ibytes);
    counter!(n::NIC_MISSED_PACKETS, "port" => port.clone()).absolute(nic.imissed);
    counter!(n::NIC_RX_ERRORS, "port" => port.clone()).absolute(nic.ierrors);
    counter!(n::NIC_RX_NO_MBUF, "port" => port.clone()).absolute(nic.rx_nombuf);
    let queue_errors: u64 = nic.queues.iter().map(|q| q.errors).sum();
    // The NIC's drops also go into the one drops family, so that
    // `sum by (reason) (rate(mediafork_dropped_packets_total[5m]))` shows
    // every packet that did not make it into a recording.
    for (reason, v) in [
        ("nic_missed", nic.imissed),
        ("nic_errors", nic.ierrors + queue_errors),
        ("nic_no_mbuf", nic.rx_nombuf),
    ] {
        counter!(n::DROPPED_PACKETS, "worker" => "nic", "reason" => reason).absolute(v);
    }
    for q in &nic.queues {
        let labels = [("port", port.clone()), ("queue", q.queue.to_string())];
        counter!(n::NIC_QUEUE_RX_PACKETS, &labels).absolute(q.packets);
        counter!(n::NIC_QUEUE_RX_BYTES, &labels).absolute(q.bytes);
        counter!(n::NIC_QUEUE_RX_ERRORS, &labels).absolute(q.errors);
    }
}
