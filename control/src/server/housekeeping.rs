//! Periodic work of the server loop: measure the recordings volume and act
//! on the storage monitor's transitions (refuse calls at critical), and
//! publish the metrics snapshot. Runs between SIP messages on the control
//! loop, never on a worker.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mediafork_dataplane::engine::Engine;

use super::admin_ops::{Ops, StorageView};
use super::recorder::Recorder;
use crate::admin::api::NicStats;
use crate::metrics::{
    self, PortPoolSnapshot, RingOccupancy, Snapshot, StorageLevel, StorageSnapshot, WorkerSnapshot,
    WriterSnapshot,
};
use crate::storage::{disk_usage, DiskUsage, StorageConfig, StorageMonitor, StorageState};

/// The latest reading of the recordings volume: statvfs may block (NFS),
/// so a task measures on a blocking thread and the loop only reads this.
type Reading = Option<Result<DiskUsage, String>>;

/// How often the loop looks for a new reading of the volume (a cheap
/// check; the measuring itself follows `storage.check_interval`).
const READING_POLL: Duration = Duration::from_millis(250);
/// How often the metrics snapshot is published.
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

pub struct Housekeeping {
    dir: PathBuf,
    monitor: StorageMonitor,
    readings: tokio::sync::watch::Receiver<Reading>,
    measure: tokio::task::JoinHandle<()>,
    next_check: Instant,
    next_metrics: Instant,
    /// The volume could not be measured: logged once per run of failures.
    usage_error: bool,
    backend: String,
}

impl Housekeeping {
    /// Starts the measuring task: call inside the tokio runtime.
    pub fn new(dir: PathBuf, cfg: &StorageConfig, backend: String) -> Self {
        let now = Instant::now();
        let (tx, readings) = tokio::sync::watch::channel(None);
        let measure = tokio::spawn(measure(dir.clone(), cfg.check_interval, tx));
        Housekeeping {
            dir,
            monitor: StorageMonitor::new(cfg),
            readings,
            measure,
            next_check: now,
            next_metrics: now,
            usage_error: false,
            backend,
        }
    }

    /// When the loop must wake for the next piece of work.
    pub fn poll_timeout(&self) -> Instant {
        self.next_check.min(self.next_metrics)
    }

    pub fn run(
        &mut self,
        now: Instant,
        recorder: &mut Recorder,
        engine: &Engine,
        ops: &mut Ops,
        nic: Option<NicStats>,
    ) {
        if now >= self.next_check {
            self.next_check = now + READING_POLL;
            self.check_storage(now, recorder, ops);
        }
        if now >= self.next_metrics {
            self.next_metrics = now + METRICS_INTERVAL;
            metrics::writer_latency(&engine.take_writer_latency());
            metrics::publish(&self.snapshot(recorder, engine, ops, nic));
        }
    }

    /// Measure the volume at once, on this thread (start-up).
    pub fn measure_now(&mut self, recorder: &mut Recorder, ops: &mut Ops) {
        let reading = disk_usage(&self.dir).map_err(|e| e.to_string());
        self.apply(Instant::now(), reading, recorder, ops);
    }

    fn check_storage(&mut self, now: Instant, recorder: &mut Recorder, ops: &mut Ops) {
        if !self.readings.has_changed().unwrap_or(false) {
            return;
        }
        let Some(reading) = self.readings.borrow_and_update().clone() else {
            return;
        };
        self.apply(now, reading, recorder, ops);
    }

    fn apply(
        &mut self,
        now: Instant,
        reading: Result<DiskUsage, String>,
        recorder: &mut Recorder,
        ops: &mut Ops,
    ) {
        let usage = match reading {
            Ok(u) => {
                if self.usage_error {
                    tracing::info!(dir = %self.dir.display(), "recordings volume can be measured again");
                }
                self.usage_error = false;
                u
            }
            Err(e) => {
                if !self.usage_error {
                    tracing::error!(dir = %self.dir.display(), error = %e, "cannot measure the recordings volume (statvfs); keeping the last storage state");
                }
                self.usage_error = true;
                return;
            }
        };
        ops.storage = StorageView {
            total_bytes: usage.total_bytes,
            free_bytes: usage.free_bytes,
            state: self.monitor.state().name(),
        };
        let Some(t) = self.monitor.observe(now, usage) else {
            return;
        };
        ops.storage.state = t.to.name();
        let critical = t.to == StorageState::Critical;
        recorder.set_storage_critical(critical);
        let free_pct = (usage.free_percent() * 100.0).round() / 100.0;
        match t.to {
            StorageState::Critical => tracing::error!(
                dir = %self.dir.display(), free_bytes = usage.free_bytes, free_percent = free_pct,
                "recordings volume critically full: new calls and OPTIONS get 503 so SBCs fail over; calls in progress go on"
            ),
            StorageState::Warning => tracing::warn!(
                dir = %self.dir.display(), free_bytes = usage.free_bytes, free_percent = free_pct,
                from = t.from.name(), "recordings volume low on space"
            ),
            StorageState::Ok => tracing::info!(
                dir = %self.dir.display(), free_bytes = usage.free_bytes, free_percent = free_pct,
                from = t.from.name(), "recordings volume has room again; accepting calls"
            ),
        }
        metrics::storage_transition(t.to.name());
        ops.storage_event(t.from.name(), t.to.name());
    }

    fn snapshot(
        &self,
        recorder: &Recorder,
        engine: &Engine,
        ops: &Ops,
        nic: Option<NicStats>,
    ) -> Snapshot {
        let ports = recorder.port_usage();
        Snapshot {
            backend: self.backend.clone(),
            workers: engine
                .worker_counters()
                .into_iter()
                .enumerate()
                .map(|(worker, counters)| WorkerSnapshot { worker, counters })
                .collect(),
            rings: engine
                .ring_occupancy()
                .into_iter()
                .map(|r| RingOccupancy {
                    worker: r.worker,
                    writer: r.writer,
                    used_bytes: r.used_bytes,
                    capacity_bytes: r.capacity_bytes,
                })
                .collect(),
            writers: engine
                .writer_stats()
                .into_iter()
                .map(|w| WriterSnapshot {
                    writer: w.writer,
                    records: w.records,
                    bytes_written: w.bytes_written,
                    io_errors: w.io_errors,
                    open_calls: w.open_calls,
                })
                .collect(),
            nic,
            active_calls: recorder.active_recordings() as u64,
            active_tracks: recorder.active_tracks() as u64,
            active_dialogs: recorder.active_dialogs() as u64,
            ports: PortPoolSnapshot {
                free: ports.free as u64,
                free_pairs: ports.free_pairs as u64,
                in_use: ports.in_use as u64,
                quarantined: ports.quarantined as u64,
                total: ports.total as u64,
            },
            storage: (ops.storage.total_bytes > 0).then(|| StorageSnapshot {
                free_bytes: ops.storage.free_bytes,
                total_bytes: ops.storage.total_bytes,
                level: StorageLevel::parse(ops.storage.state).unwrap_or_default(),
            }),
            draining: recorder.is_draining(),
        }
    }
}

impl Drop for Housekeeping {
    fn drop(&mut self) {
        self.measure.abort();
    }
}

/// Measure the volume every `interval` on a blocking thread.
async fn measure(dir: PathBuf, interval: Duration, tx: tokio::sync::watch::Sender<Reading>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let d = dir.clone();
        let r = tokio::task::spawn_blocking(move || disk_usage(&d))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if tx.send(Some(r)).is_err() {
            return;
        }
    }
}
