//! The server loop's side of the admin API: answers [`AdminRequest`]s from
//! the recorder, the engine and the storage monitor, and numbers the call
//! events integrations follow. Runs on the control loop between SIP
//! messages; nothing here touches the data plane's hot path.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use mediafork_dataplane::engine::Engine;
use mediafork_dataplane::recording::meta::{now_ns, rfc3339, CallMeta};
use mediafork_dataplane::DropReason;
use tokio::sync::broadcast;

use super::recorder::{PendingEvent, Recorder};
use crate::admin::api::{
    AdminRequest, CallCounters, CallEvent, DrainStatus, NicStats, PortsStatus, Stats, Status,
    StorageStatus, WorkerInfo, WorkerStatsView, WriterStatsView,
};

/// Events kept for slow subscribers before they see a `lagged` line.
pub const EVENT_BACKLOG: usize = 4096;

/// The recordings volume as the storage monitor last saw it.
#[derive(Clone, Debug, Default)]
pub struct StorageView {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub state: &'static str,
}

/// What `status` reports that the recorder does not know.
pub struct Ops {
    pub started_at_ns: u64,
    pub started: Instant,
    pub backend: String,
    pub worker_cores: Vec<usize>,
    pub workers: usize,
    pub writers: usize,
    pub port_range: String,
    pub recordings_dir: PathBuf,
    pub storage: StorageView,
    pub events: broadcast::Sender<CallEvent>,
    seq: u64,
}

impl Ops {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        backend: String,
        worker_cores: Vec<usize>,
        workers: usize,
        writers: usize,
        port_range: String,
        recordings_dir: PathBuf,
        events: broadcast::Sender<CallEvent>,
    ) -> Self {
        Ops {
            started_at_ns: now_ns(),
            started: Instant::now(),
            backend,
            worker_cores,
            workers,
            writers,
            port_range,
            recordings_dir,
            storage: StorageView {
                state: "ok",
                ..StorageView::default()
            },
            events,
            seq: 0,
        }
    }

    /// Number, stamp and broadcast an event. Nobody listening is normal.
    pub fn publish(&mut self, e: PendingEvent) {
        self.seq += 1;
        let _ = self.events.send(CallEvent {
            seq: self.seq,
            at: rfc3339(e.at_ns),
            event: e.event.to_string(),
            recording_id: e.recording_id,
            call_id: e.call_id,
            data: e.data,
        });
    }

    /// `call_ended`, from the writer's account of the closed recording.
    pub fn call_ended(&mut self, dir: &std::path::Path, meta: &CallMeta) {
        let mut data = serde_json::Map::new();
        data.insert("dir".into(), dir.display().to_string().into());
        data.insert("complete".into(), meta.complete.into());
        data.insert("source".into(), meta.source.clone().into());
        if let Some(e) = &meta.ended_at {
            data.insert("ended_at".into(), e.clone().into());
        }
        if let Some(why) = meta.extensions.get("ended_by") {
            data.insert("ended_by".into(), why.clone());
        }
        let tracks: Vec<serde_json::Value> = meta
            .tracks
            .iter()
            .map(|t| {
                serde_json::json!({
                    "index": t.index,
                    "label": t.label,
                    "file": t.file,
                    "codec": t.codec,
                    "packets": t.packets,
                    "lost": t.lost,
                    "duration_seconds": t.duration_seconds,
                })
            })
            .collect();
        data.insert("tracks".into(), tracks.into());
        if !meta.errors.is_empty() {
            data.insert("errors".into(), meta.errors.clone().into());
        }
        self.publish(PendingEvent {
            event: "call_ended",
            at_ns: now_ns(),
            recording_id: Some(meta.recording_id.clone()),
            call_id: meta.call.sip_call_id.clone(),
            data,
        });
    }

    /// `storage_state`, on each transition of the storage monitor.
    pub fn storage_event(&mut self, from: &str, to: &str) {
        let mut data = serde_json::Map::new();
        data.insert("from".into(), from.into());
        data.insert("state".into(), to.into());
        data.insert("free_bytes".into(), self.storage.free_bytes.into());
        data.insert("free_percent".into(), self.free_percent().into());
        self.publish(PendingEvent {
            event: "storage_state",
            at_ns: now_ns(),
            recording_id: None,
            call_id: None,
            data,
        });
    }

    fn free_percent(&self) -> f64 {
        if self.storage.total_bytes == 0 {
            return 0.0;
        }
        let p = self.storage.free_bytes as f64 * 100.0 / self.storage.total_bytes as f64;
        (p * 100.0).round() / 100.0
    }

    fn status(&self, recorder: &Recorder) -> Status {
        let ports = recorder.port_usage();
        let c = recorder.counters();
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: rfc3339(self.started_at_ns),
            uptime_seconds: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            backend: self.backend.clone(),
            workers: (0..self.workers)
                .map(|id| WorkerInfo {
                    id,
                    core: self.worker_cores.get(id).copied(),
                })
                .collect(),
            writers: self.writers,
            ports: PortsStatus {
                range: self.port_range.clone(),
                total: ports.total,
                in_use: ports.in_use,
                quarantined: ports.quarantined,
                free: ports.free,
            },
            active_calls: recorder.active_recordings(),
            active_dialogs: recorder.active_dialogs(),
            draining: recorder.is_draining(),
            refusing_because: recorder.refusing_because(),
            storage: StorageStatus {
                dir: self.recordings_dir.display().to_string(),
                total_bytes: self.storage.total_bytes,
                free_bytes: self.storage.free_bytes,
                free_percent: self.free_percent(),
                state: self.storage.state.to_string(),
            },
            calls: CallCounters {
                started: c.calls_started,
                ended: c.calls_ended,
                rejected: c.calls_rejected,
                session_expired: c.session_expired,
            },
        }
    }

    /// Answer one request. `reload` re-reads the configuration (as SIGHUP).
    pub fn handle(
        &mut self,
        req: AdminRequest,
        recorder: &mut Recorder,
        engine: &Engine,
        nic: Option<NicStats>,
        reload: &mut dyn FnMut(&mut Recorder) -> crate::admin::api::ReloadResult,
    ) {
        let now = now_ns();
        match req {
            AdminRequest::Status(tx) => {
                let _ = tx.send(self.status(recorder));
            }
            AdminRequest::ListCalls(tx) => {
                let _ = tx.send(recorder.list_calls(now));
            }
            AdminRequest::ShowCall(sel, tx) => {
                let _ = tx.send(recorder.show_call(&sel, now));
            }
            AdminRequest::Control(sel, action, body, tx) => {
                let r = recorder.control(&sel, action, &body, now);
                self.drain_events(recorder);
                let _ = tx.send(r);
            }
            AdminRequest::Tag(sel, body, tx) => {
                let r = recorder.tag(&sel, &body, now);
                self.drain_events(recorder);
                let _ = tx.send(r);
            }
            AdminRequest::Stats(tx) => {
                let _ = tx.send(stats(engine, nic));
            }
            AdminRequest::Drain(on, tx) => {
                if on != recorder.is_draining() {
                    tracing::info!(
                        calls = recorder.active_dialogs(),
                        "{}",
                        if on {
                            "admin API: draining: new calls get 503; calls in progress go on"
                        } else {
                            "admin API: undrained: accepting new calls"
                        }
                    );
                }
                recorder.set_draining(on);
                let _ = tx.send(DrainStatus {
                    draining: recorder.is_draining(),
                    active_calls: recorder.active_recordings(),
                });
            }
            AdminRequest::Reload(tx) => {
                let _ = tx.send(reload(recorder));
            }
        }
    }

    /// Forward the recorder's pending events.
    pub fn drain_events(&mut self, recorder: &mut Recorder) {
        while let Some(e) = recorder.poll_event() {
            self.publish(e);
        }
    }
}

/// `stats`: per worker counters and ring fill, per writer totals.
pub fn stats(engine: &Engine, nic: Option<NicStats>) -> Stats {
    let rings = engine.ring_occupancy();
    let workers = engine
        .worker_counters()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mine = rings.iter().filter(|r| r.worker == i);
            WorkerStatsView {
                worker: i,
                rx_packets: c.rx_packets,
                rx_bytes: c.rx_bytes,
                recorded: c.recorded,
                rtcp: c.rtcp,
                drops: DropReason::ALL
                    .iter()
                    .map(|r| (r.name().to_string(), c.dropped(*r)))
                    .collect::<BTreeMap<_, _>>(),
                ring_used_bytes: mine.clone().map(|r| r.used_bytes).sum(),
                ring_capacity_bytes: mine.map(|r| r.capacity_bytes).sum(),
            }
        })
        .collect();
    let writers = engine
        .writer_stats()
        .iter()
        .map(|w| WriterStatsView {
            writer: w.writer,
            records: w.records,
            bytes_written: w.bytes_written,
            io_errors: w.io_errors,
            open_calls: w.open_calls,
        })
        .collect();
    Stats {
        workers,
        writers,
        nic,
    }
}
