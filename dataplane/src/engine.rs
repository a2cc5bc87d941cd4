//! The data plane as the control plane sees it: start workers and writers,
//! open and close calls, add tracks and bind them to addresses. Every method
//! here is slow-path; the workers never wait on any of it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use crate::codec::Codec;
use crate::config::DataplaneConfig;
use crate::demux::{BindError, DemuxTable, TrackRef};
use crate::recording::layout::{new_recording_id, recording_dir};
use crate::recording::meta::{rfc3339, CallIds, CallMeta, ParticipantMeta, SCHEMA_VERSION};
use crate::ring;
use crate::source::PacketSource;
use crate::source_lock::{SourceKey, SourceLatch, SourcePolicy};
use crate::specs::{CallRef, MediaSeen, TrackSpec, TrackTable, TracksExhausted};
use crate::srtp::{MasterKey, SrtpSession};
use crate::stats::{Counters, WorkerStats};
use crate::worker::{WorkerCommand, WorkerCore};
use crate::writer::stats::{RingOccupancy, WriterStats, WriterStatsSnapshot, MAX_LATENCY_NS};
use crate::writer::{RecordingControl, Writer, WriterCommand, WriterEvent, WriterSinks};

/// State the workers read: tables and counters. Everything in it is either
/// read-mostly (tables) or written by exactly one thread (a worker's stats).
pub struct Shared {
    pub config: DataplaneConfig,
    pub demux: DemuxTable,
    pub tracks: TrackTable,
    pub worker_stats: Vec<WorkerStats>,
    pub stop: Arc<AtomicBool>,
    /// Keys the source tags of IPv6 addresses (see [`SourceKey`]).
    pub source_key: SourceKey,
}

/// Errors of the engine's control API.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Tracks(#[from] TracksExhausted),
    #[error("unknown call {0:?} (already ended?)")]
    UnknownCall(CallRef),
    #[error("invalid data plane configuration: {0}")]
    Config(String),
    #[error("cannot start thread: {0}")]
    Thread(std::io::Error),
    #[error("{0} packet sources for {1} workers")]
    SourceCount(usize, usize),
}

/// What a new recording starts with.
#[derive(Clone, Debug, Default)]
pub struct CallSetup {
    /// `siprec`, `cucm`, `sip` or `rtp`.
    pub source: String,
    pub ids: CallIds,
    pub participants: Vec<ParticipantMeta>,
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// Start time, ns since the epoch (capture time in replay).
    pub started_at_ns: u64,
    /// Write `call.pcap`; `None` follows the configuration.
    pub pcap: Option<bool>,
    /// Record on demand: store nothing until [`RecordingControl::Start`].
    pub start_stopped: bool,
}

/// A track to add to a call.
#[derive(Clone, Debug, Default)]
pub struct TrackSetup {
    /// Position of the track in its call (names its file); `None` takes the
    /// next free one. CUCM's near-end leg is track 0 whichever INVITE came first.
    pub index: Option<u32>,
    pub label: Option<String>,
    /// Payload types from the SDP (dynamic ones included).
    pub payload_types: Vec<(u8, Codec)>,
    pub bindings: Vec<Binding>,
    /// The SDES master key when the stream is SRTP: packets are then
    /// authenticated, replay-checked and decrypted before recording, and
    /// packets that fail are dropped and counted.
    pub srtp: Option<MasterKey>,
    /// Which source address the track records from.
    pub source: SourcePolicy,
}

/// How packets find a track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Everything to this local address and port.
    Port(SocketAddr),
    /// On a shared local port, packets with this SSRC.
    Ssrc(SocketAddr, u32),
}

/// An open recording.
#[derive(Clone, Debug)]
pub struct CallHandle {
    pub call: CallRef,
    pub recording_id: String,
    pub dir: PathBuf,
    writer: usize,
}

struct CallEntry {
    writer: usize,
    next_index: u32,
    tracks: Vec<(TrackRef, Vec<Binding>)>,
    pcap: bool,
}

/// A slot waiting for every worker to finish with it.
struct Quarantined {
    track: TrackRef,
    /// Per worker, the `commands_done` value that means "done with it".
    targets: Vec<u64>,
}

/// The consumer ends of the rings, `[writer][worker]`.
pub type DetachedRings = Vec<Vec<ring::RecordConsumer>>;

/// The running data plane.
pub struct Engine {
    shared: Arc<Shared>,
    worker_cmds: Mutex<Vec<rtrb::Producer<WorkerCommand>>>,
    cmds_sent: Mutex<Vec<u64>>,
    writer_cmds: Vec<Sender<WriterCommand>>,
    events: Receiver<WriterEvent>,
    writer_threads: Mutex<Vec<JoinHandle<()>>>,
    worker_threads: Mutex<Vec<JoinHandle<()>>>,
    calls: Mutex<HashMap<CallRef, CallEntry>>,
    quarantine: Mutex<VecDeque<Quarantined>>,
    next_call: AtomicU64,
    next_writer: AtomicUsize,
    writer_stats: Vec<Arc<WriterStats>>,
    writer_latency: Arc<Mutex<Histogram<u64>>>,
}

impl Engine {
    /// Build the tables, rings and writer threads. Returns the worker cores
    /// for the caller to run ([`Engine::spawn_workers`]) or drive inline.
    pub fn start(config: DataplaneConfig) -> Result<(Engine, Vec<WorkerCore>), EngineError> {
        Self::build(config, true).map(|(e, c, _)| (e, c))
    }

    /// Like [`Engine::start`] but without writer threads: the caller gets
    /// the rings' consumer ends (`[writer][worker]`). For benchmarks that
    /// measure the workers alone, and for tests that inspect records.
    pub fn start_without_writers(
        config: DataplaneConfig,
    ) -> Result<(Engine, Vec<WorkerCore>, DetachedRings), EngineError> {
        Self::build(config, false)
    }

    fn build(
        config: DataplaneConfig,
        with_writers: bool,
    ) -> Result<(Engine, Vec<WorkerCore>, DetachedRings), EngineError> {
        if config.workers == 0 || config.writers == 0 {
            return Err(EngineError::Config(
                "workers and writers must be at least 1".into(),
            ));
        }
        if config.max_tracks == 0 || config.max_tracks > u32::MAX as usize / 2 {
            return Err(EngineError::Config(format!(
                "max_tracks {} is out of range",
                config.max_tracks
            )));
        }
        if config.ring_bytes < 64 * 1024 {
            return Err(EngineError::Config(format!(
                "ring_bytes {} is below 64 KiB",
                config.ring_bytes
            )));
        }
        let (nw, nwr) = (config.workers, config.writers);
        let shared = Arc::new(Shared {
            demux: DemuxTable::new(
                config.port_range,
                config.max_addresses,
                config.max_shared_streams,
            ),
            tracks: TrackTable::new(config.max_tracks),
            worker_stats: (0..nw).map(|_| WorkerStats::default()).collect(),
            stop: Arc::new(AtomicBool::new(false)),
            source_key: SourceKey::random(),
            config,
        });
        // rings[worker][writer]
        let mut producers: Vec<Vec<ring::RecordProducer>> = (0..nw).map(|_| Vec::new()).collect();
        let mut consumers: Vec<Vec<ring::RecordConsumer>> = (0..nwr).map(|_| Vec::new()).collect();
        for p in producers.iter_mut() {
            for c in consumers.iter_mut() {
                let (tx, rx) = ring::ring(shared.config.ring_bytes);
                p.push(tx);
                c.push(rx);
            }
        }
        let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
        // Three significant digits: 1 µs resolution at 1 ms, 1 ms at 1 s.
        let latency = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .map_err(|e| EngineError::Config(format!("writer latency histogram: {e}")))?;
        let writer_latency = Arc::new(Mutex::new(latency));
        let writer_stats: Vec<Arc<WriterStats>> = (0..nwr)
            .map(|_| Arc::new(WriterStats::new(nw, shared.config.ring_bytes)))
            .collect();
        let mut writer_cmds = Vec::new();
        let mut writer_threads = Vec::new();
        let mut detached = Vec::new();
        for (i, cons) in consumers.into_iter().enumerate() {
            let (tx, rx) = crossbeam_channel::unbounded();
            writer_cmds.push(tx);
            if !with_writers {
                detached.push(cons);
                continue;
            }
            let w = Writer::new(
                cons,
                rx,
                ev_tx.clone(),
                shared.config.reorder_window,
                shared.config.flush_interval,
                WriterSinks {
                    stats: writer_stats[i].clone(),
                    latency: writer_latency.clone(),
                },
            )
            .sealing(shared.config.encryption.clone());
            let h = std::thread::Builder::new()
                .name(format!("mf-writer-{i}"))
                .spawn(move || w.run())
                .map_err(EngineError::Thread)?;
            writer_threads.push(h);
        }
        let mut cores = Vec::new();
        let mut worker_cmds = Vec::new();
        for (i, rings) in producers.into_iter().enumerate() {
            let (tx, rx) = rtrb::RingBuffer::new(65_536);
            worker_cmds.push(tx);
            cores.push(WorkerCore::new(i, shared.clone(), rings, rx));
        }
        let engine = Engine {
            shared,
            cmds_sent: Mutex::new(vec![0; nw]),
            worker_cmds: Mutex::new(worker_cmds),
            writer_cmds,
            events: ev_rx,
            writer_threads: Mutex::new(writer_threads),
            worker_threads: Mutex::new(Vec::new()),
            calls: Mutex::new(HashMap::new()),
            quarantine: Mutex::new(VecDeque::new()),
            next_call: AtomicU64::new(1),
            next_writer: AtomicUsize::new(0),
            writer_stats,
            writer_latency,
        };
        Ok((engine, cores, detached))
    }

    /// Run each core on its own thread with its source, pinned to the
    /// configured core when there is one.
    pub fn spawn_workers<S: PacketSource + 'static>(
        &self,
        cores: Vec<WorkerCore>,
        sources: Vec<S>,
    ) -> Result<(), EngineError> {
        if cores.len() != sources.len() {
            return Err(EngineError::SourceCount(sources.len(), cores.len()));
        }
        let pins = self.shared.config.worker_cores.clone();
        let mut threads = self
            .worker_threads
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (core, source) in cores.into_iter().zip(sources) {
            let pin = pins.get(core.id).copied();
            let h = std::thread::Builder::new()
                .name(format!("mf-worker-{}", core.id))
                .spawn(move || {
                    if let Some(id) = pin {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                            tracing::warn!(
                                worker = core.id,
                                core = id,
                                "could not pin worker to core"
                            );
                        }
                    }
                    core.run(source)
                })
                .map_err(EngineError::Thread)?;
            threads.push(h);
        }
        Ok(())
    }

    /// The shared tables and counters.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Open a recording: its directory and `meta.json` appear at once.
    pub fn open_call(&self, setup: CallSetup) -> Result<CallHandle, EngineError> {
        let call = CallRef(self.next_call.fetch_add(1, Ordering::Relaxed));
        let writer = self.next_writer.fetch_add(1, Ordering::Relaxed) % self.writer_cmds.len();
        let recording_id = new_recording_id();
        let cfg = &self.shared.config;
        let dir = recording_dir(
            &cfg.recordings_dir,
            cfg.date_partitions,
            setup.started_at_ns,
            &recording_id,
        );
        let pcap = setup.pcap.unwrap_or(cfg.write_pcap);
        let meta = CallMeta {
            schema_version: SCHEMA_VERSION,
            recording_id: recording_id.clone(),
            source: setup.source,
            call: setup.ids,
            started_at: rfc3339(setup.started_at_ns),
            participants: setup.participants,
            extensions: setup.extensions,
            ..CallMeta::default()
        };
        let _ = self.writer_cmds[writer].send(WriterCommand::OpenCall {
            call,
            dir: dir.clone(),
            meta: Box::new(meta),
            pcap,
            stopped_from: setup.start_stopped.then_some(setup.started_at_ns),
        });
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).insert(
            call,
            CallEntry {
                writer,
                next_index: 0,
                tracks: Vec::new(),
                pcap,
            },
        );
        Ok(CallHandle {
            call,
            recording_id,
            dir,
            writer,
        })
    }

    /// Add a track and bind it. On a bind error nothing stays bound.
    pub fn add_track(
        &self,
        handle: &CallHandle,
        setup: TrackSetup,
    ) -> Result<TrackRef, EngineError> {
        self.reclaim();
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let entry = calls
            .get_mut(&handle.call)
            .ok_or(EngineError::UnknownCall(handle.call))?;
        let track = self.shared.tracks.allocate()?;
        let index = setup.index.unwrap_or(entry.next_index);
        entry.next_index = entry.next_index.max(index + 1);
        // Order matters: the writer learns of the track, then the spec is
        // published, then the table points at it. A worker that finds the
        // entry always finds the spec, and the writer the track.
        let media = Arc::new(MediaSeen::default());
        let _ = self.writer_cmds[entry.writer].send(WriterCommand::AddTrack {
            call: handle.call,
            track,
            index,
            label: setup.label.clone(),
            media: media.clone(),
        });
        self.shared.tracks.publish(TrackSpec {
            track,
            call: handle.call,
            index,
            writer: entry.writer,
            payload_types: setup.payload_types,
            capture_pcap: entry.pcap,
            // Derived here, on the control plane, so that no worker ever
            // runs key derivation or key schedules.
            srtp: setup.srtp.as_ref().map(|m| Arc::new(SrtpSession::new(m))),
            source: Arc::new(SourceLatch::new(setup.source, &self.shared.source_key)),
            media,
        });
        let mut bound = Vec::new();
        for b in &setup.bindings {
            if let Err(e) = self.bind_one(*b, track) {
                for done in &bound {
                    self.unbind_one(*done);
                }
                // The track exists for the writer (an empty WAV says "this
                // stream could not be received"); end it like any other.
                entry.tracks.push((track, Vec::new()));
                return Err(e.into());
            }
            bound.push(*b);
        }
        entry.tracks.push((track, bound));
        Ok(track)
    }

    /// Media records the writer has taken for `track` so far (`None`: no
    /// such track any more). Compare two readings to tell whether media is
    /// still arriving.
    pub fn media_seen(&self, track: TrackRef) -> Option<u64> {
        self.shared.tracks.get(track).map(|s| s.media.count())
    }

    /// Bind another address to an existing track (e.g. after a re-INVITE).
    pub fn bind(
        &self,
        handle: &CallHandle,
        track: TrackRef,
        b: Binding,
    ) -> Result<(), EngineError> {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let entry = calls
            .get_mut(&handle.call)
            .ok_or(EngineError::UnknownCall(handle.call))?;
        let Some((_, binds)) = entry.tracks.iter_mut().find(|(t, _)| *t == track) else {
            return Err(EngineError::UnknownCall(handle.call));
        };
        self.bind_one(b, track)?;
        binds.push(b);
        Ok(())
    }

    /// Run `f` on the current spec of `track`, a track of `handle`'s call,
    /// with the call table locked so the track cannot end meanwhile.
    fn with_spec<R>(
        &self,
        handle: &CallHandle,
        track: TrackRef,
        f: impl FnOnce(&TrackSpec) -> R,
    ) -> Result<R, EngineError> {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let unknown = EngineError::UnknownCall(handle.call);
        let Some(entry) = calls.get(&handle.call) else {
            return Err(unknown);
        };
        if !entry.tracks.iter().any(|(t, _)| *t == track) {
            return Err(unknown);
        }
        let spec = self.shared.tracks.get(track).ok_or(unknown)?;
        Ok(f(&spec))
    }

    /// Change the payload types a track may carry (re-INVITE with another
    /// codec). Workers pick the new spec up when they meet a payload type
    /// the old one lacked.
    pub fn update_track(
        &self,
        handle: &CallHandle,
        track: TrackRef,
        payload_types: Vec<(u8, Codec)>,
    ) -> Result<(), EngineError> {
        self.with_spec(handle, track, |old| {
            let mut spec = old.clone();
            spec.payload_types = payload_types;
            self.shared.tracks.publish(spec);
        })
    }

    /// Move a track's source lock: a re-INVITE announced another address
    /// (`Expect`), or with `First` the next packet's source is locked
    /// afresh. `Any` leaves the track as it is: a lock is not lifted
    /// mid-call. Workers pick the change up on the next packet that does
    /// not match their copy.
    pub fn relock_source(
        &self,
        handle: &CallHandle,
        track: TrackRef,
        policy: SourcePolicy,
    ) -> Result<(), EngineError> {
        self.with_spec(handle, track, |spec| match policy {
            SourcePolicy::Any => {}
            SourcePolicy::First => spec.source.relock(None),
            SourcePolicy::Expect(ip) if ip.is_unspecified() => spec.source.relock(None),
            SourcePolicy::Expect(ip) => spec.source.relock(Some(self.shared.source_key.tag(&ip))),
        })
    }

    /// Give a track a new SDES master key (a re-INVITE re-keyed the
    /// stream). Nothing is published when the key is unchanged. A worker
    /// switches to the new key when a packet fails with the old one and
    /// authenticates with the new one, keeping its rollover counter and
    /// replay window, so packets in flight under the old key still count.
    /// A track cannot change between RTP and SRTP: the caller makes a new
    /// track for that.
    pub fn rekey_track(
        &self,
        handle: &CallHandle,
        track: TrackRef,
        master: &MasterKey,
    ) -> Result<(), EngineError> {
        self.with_spec(handle, track, |old| {
            if old.srtp.as_ref().is_some_and(|s| s.is_keyed_by(master)) {
                return;
            }
            let mut spec = old.clone();
            spec.srtp = Some(Arc::new(SrtpSession::new(master)));
            self.shared.tracks.publish(spec);
        })
    }

    /// Stop receiving a track (its m-line was removed) without ending the
    /// call; the track's file closes with the call.
    pub fn unbind_track(
        &self,
        handle: &CallHandle,
        track: TrackRef,
    ) -> Result<Vec<Binding>, EngineError> {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let entry = calls
            .get_mut(&handle.call)
            .ok_or(EngineError::UnknownCall(handle.call))?;
        let Some((_, binds)) = entry.tracks.iter_mut().find(|(t, _)| *t == track) else {
            return Err(EngineError::UnknownCall(handle.call));
        };
        let removed = std::mem::take(binds);
        for b in &removed {
            self.unbind_one(*b);
        }
        Ok(removed)
    }

    fn bind_one(&self, b: Binding, track: TrackRef) -> Result<(), BindError> {
        match b {
            Binding::Port(a) => self.shared.demux.bind(a, track),
            Binding::Ssrc(a, ssrc) => {
                self.shared.demux.share(a)?;
                self.shared.demux.bind_ssrc(a, ssrc, track)
            }
        }
    }

    fn unbind_one(&self, b: Binding) {
        match b {
            Binding::Port(a) => self.shared.demux.unbind(a),
            Binding::Ssrc(a, ssrc) => self.shared.demux.unbind_ssrc(a, ssrc),
        }
    }

    /// Store a file beside the recording (e.g. `metadata.xml`).
    pub fn write_call_file(&self, handle: &CallHandle, name: &str, bytes: Vec<u8>) {
        let _ = self.writer_cmds[handle.writer].send(WriterCommand::WriteFile {
            call: handle.call,
            name: name.to_string(),
            bytes,
        });
    }

    /// Change call-level metadata.
    pub fn update_call(
        &self,
        handle: &CallHandle,
        update: impl FnOnce(&mut CallMeta) + Send + 'static,
    ) {
        let _ = self.writer_cmds[handle.writer].send(WriterCommand::UpdateMeta {
            call: handle.call,
            update: Box::new(update),
        });
    }

    /// Pause, resume, stop or start recording `handle` as of `at_ns` (wall
    /// clock, ns since the epoch; capture time in replay). The writer
    /// applies it to every record by arrival time, so packets still in
    /// flight when this is called are treated by when they arrived. A
    /// control that does not fit the state (Resume when not paused) is
    /// logged and ignored. `by` and `reason` go into `meta.json`.
    pub fn control(
        &self,
        handle: &CallHandle,
        control: RecordingControl,
        at_ns: u64,
        by: Option<String>,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        self.check_open(handle)?;
        let _ = self.writer_cmds[handle.writer].send(WriterCommand::Control {
            call: handle.call,
            control,
            at_ns,
            by,
            reason,
        });
        Ok(())
    }

    /// Merge `tags` into the recording's `meta.json` tags; an empty value
    /// removes its key.
    pub fn tag(
        &self,
        handle: &CallHandle,
        tags: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.check_open(handle)?;
        self.update_call(handle, move |m| m.merge_tags(tags));
        Ok(())
    }

    fn check_open(&self, handle: &CallHandle) -> Result<(), EngineError> {
        if self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&handle.call)
        {
            Ok(())
        } else {
            Err(EngineError::UnknownCall(handle.call))
        }
    }

    /// End the call: its ports stop matching at once, every worker hands in
    /// its account of the tracks, and the writer closes the files.
    pub fn end_call(&self, handle: &CallHandle, ended_at_ns: u64) -> Result<(), EngineError> {
        let entry = self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&handle.call)
            .ok_or(EngineError::UnknownCall(handle.call))?;
        {
            let mut cmds = self.worker_cmds.lock().unwrap_or_else(|p| p.into_inner());
            let mut sent = self.cmds_sent.lock().unwrap_or_else(|p| p.into_inner());
            let mut q = self.quarantine.lock().unwrap_or_else(|p| p.into_inner());
            for (track, binds) in &entry.tracks {
                for b in binds {
                    self.unbind_one(*b);
                }
                self.shared.tracks.withdraw(*track);
                for (w, tx) in cmds.iter_mut().enumerate() {
                    let mut cmd = WorkerCommand::EndTrack {
                        track: *track,
                        writer: entry.writer,
                    };
                    // The command ring holds 64k entries; if a worker is
                    // wedged we wait rather than lose the end of a track.
                    loop {
                        match tx.push(cmd) {
                            Ok(()) => break,
                            Err(rtrb::PushError::Full(c)) => {
                                cmd = c;
                                std::thread::yield_now();
                            }
                        }
                    }
                    sent[w] += 1;
                }
                q.push_back(Quarantined {
                    track: *track,
                    targets: sent.clone(),
                });
            }
        }
        let _ = self.writer_cmds[entry.writer].send(WriterCommand::EndCall {
            call: handle.call,
            ended_at_ns,
        });
        Ok(())
    }

    /// Return slots every worker is done with to the free list.
    fn reclaim(&self) {
        let mut q = self.quarantine.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(front) = q.front() {
            let done = front
                .targets
                .iter()
                .zip(&self.shared.worker_stats)
                .all(|(target, s)| s.commands_done.load(Ordering::Acquire) >= *target);
            if !done {
                break;
            }
            self.shared.tracks.release(front.track);
            q.pop_front();
        }
    }

    /// Calls currently open.
    pub fn open_calls(&self) -> Vec<CallRef> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Recordings closed since the last call (non-blocking).
    pub fn closed(&self) -> Vec<WriterEvent> {
        self.events.try_iter().collect()
    }

    /// Wait for the next closed recording.
    pub fn recv_closed(&self, timeout: std::time::Duration) -> Option<WriterEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Per-worker counters.
    pub fn worker_counters(&self) -> Vec<Counters> {
        self.shared
            .worker_stats
            .iter()
            .map(WorkerStats::snapshot)
            .collect()
    }

    /// Each writer's counters, as published at its last loop (at most a
    /// few ms old).
    pub fn writer_stats(&self) -> Vec<WriterStatsSnapshot> {
        self.writer_stats
            .iter()
            .enumerate()
            .map(|(i, s)| s.snapshot(i))
            .collect()
    }

    /// Writer latency since the last call, in ns: for each audio record
    /// the writer kept, the time from its arrival to the writer placing its
    /// samples in the track's timeline (before the reorder window and the
    /// file write). Writers merge their samples every flush interval, so
    /// the last interval's may come with the next call. Arrivals more than
    /// 60 s old (replayed captures) are left out.
    pub fn take_writer_latency(&self) -> Histogram<u64> {
        let mut shared = self
            .writer_latency
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let taken = shared.clone();
        shared.reset();
        taken
    }

    /// Every worker → writer ring: bytes waiting when its writer last
    /// began draining it, and its size.
    pub fn ring_occupancy(&self) -> Vec<RingOccupancy> {
        self.writer_stats
            .iter()
            .enumerate()
            .flat_map(|(w, s)| s.rings(w))
            .collect()
    }

    /// Stop workers, then writers once the rings are drained. Open calls are
    /// closed and marked incomplete. Returns the recordings closed during
    /// shutdown.
    pub fn shutdown(self) -> Vec<WriterEvent> {
        self.shared.stop.store(true, Ordering::Release);
        for h in self
            .worker_threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = h.join();
        }
        // Dropping the command producers lets nothing else reach workers.
        self.worker_cmds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        for tx in &self.writer_cmds {
            let _ = tx.send(WriterCommand::Shutdown);
        }
        for h in self
            .writer_threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = h.join();
        }
        self.events.try_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::config::PortRange;
    use crate::packet::testutil::{ether, ipv4, rtp_packet, udp};
    use crate::recording::meta::now_ns;
    use crate::source::{Frame, RxPacket};
    use crate::worker::Outcome;

    /// Through the public API, with a real writer thread and the worker
    /// driven inline (as replay does): a pause, tags, and the statistics.
    #[test]
    fn controls_tags_and_writer_statistics_through_the_engine() {
        let root = tempfile::tempdir().unwrap();
        let config = DataplaneConfig {
            port_range: PortRange::new(40000, 40200).unwrap(),
            max_tracks: 16,
            recordings_dir: root.path().to_path_buf(),
            date_partitions: false,
            flush_interval: Duration::from_millis(10),
            ring_bytes: 1 << 20,
            ..DataplaneConfig::default()
        };
        let (engine, mut cores) = Engine::start(config).unwrap();
        let mut core = cores.pop().unwrap();
        let call = engine
            .open_call(CallSetup {
                source: "rtp".into(),
                started_at_ns: now_ns(),
                pcap: Some(true),
                ..CallSetup::default()
            })
            .unwrap();
        let dst: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        engine
            .add_track(
                &call,
                TrackSetup {
                    payload_types: vec![(0, Codec::Pcmu)],
                    bindings: vec![Binding::Port(dst)],
                    ..TrackSetup::default()
                },
            )
            .unwrap();
        let tags = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        engine
            .tag(&call, tags(&[("crm", "case-1"), ("queue", "sales")]))
            .unwrap();
        engine.tag(&call, tags(&[("queue", "")])).unwrap();

        let deadline = Instant::now() + Duration::from_secs(10);
        while engine.writer_stats()[0].open_tracks != 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let open = engine.writer_stats()[0];
        assert_eq!((open.open_calls, open.open_tracks), (1, 1));

        for i in 0..60u16 {
            // Taken before the packets that follow arrive: they are paused
            // exactly, although the writer may see them before the command.
            if i == 20 {
                engine
                    .control(
                        &call,
                        RecordingControl::Pause,
                        now_ns(),
                        Some("api".into()),
                        None,
                    )
                    .unwrap();
            }
            if i == 40 {
                engine
                    .control(&call, RecordingControl::Resume, now_ns(), None, None)
                    .unwrap();
            }
            let rtp = rtp_packet(0x80, 0, i, i as u32 * 160, 0xAAAA, &[0x20; 160]);
            let frame = ether(
                0x0800,
                &[],
                &ipv4([127, 0, 0, 9], [127, 0, 0, 1], 17, &udp(20000, 40000, &rtp)),
            );
            let pkt = RxPacket {
                frame: Frame::Ethernet,
                data: &frame,
                arrival_ns: now_ns(),
            };
            assert_eq!(core.handle(&pkt), Outcome::Recorded);
            core.service();
        }
        engine.end_call(&call, now_ns()).unwrap();
        core.service();
        let Some(WriterEvent::Closed(closed)) = engine.recv_closed(Duration::from_secs(10)) else {
            panic!("call not closed");
        };
        assert!(matches!(
            engine.control(&call, RecordingControl::Resume, now_ns(), None, None),
            Err(EngineError::UnknownCall(_))
        ));

        let meta = closed.meta;
        assert!(meta.complete, "{:?}", meta.errors);
        assert_eq!(meta.tags, tags(&[("crm", "case-1")]));
        assert_eq!(meta.controls.len(), 1);
        assert_eq!(meta.controls[0].by.as_deref(), Some("api"));
        assert!(meta.controls[0].ended_at.is_some());
        let t = &meta.tracks[0];
        assert_eq!((t.samples, t.paused_samples), (60 * 160, 20 * 160));
        let wav = std::fs::read(closed.dir.join("track-0.wav")).unwrap();
        let zero = |k: usize| wav[44 + 2 * k] == 0 && wav[45 + 2 * k] == 0;
        assert!((0..60 * 160).all(|k| zero(k) == (20 * 160..40 * 160).contains(&k)));
        // call.pcap: header, then 40 records of 16 + frame bytes.
        let pcap = std::fs::metadata(closed.dir.join("call.pcap"))
            .unwrap()
            .len();
        let frame_len = 14 + 20 + 8 + 12 + 160;
        assert_eq!(pcap, 24 + 40 * (16 + frame_len));

        // Every audio record the writer kept, paused ones included, has a
        // latency sample; writers merge theirs every flush interval.
        let mut latency = engine.take_writer_latency();
        while latency.len() < 60 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            latency.add(engine.take_writer_latency()).unwrap();
        }
        assert_eq!(latency.len(), 60);
        assert!(latency.max() < 10_000_000_000);
        std::thread::sleep(Duration::from_millis(30));
        assert!(engine.take_writer_latency().is_empty(), "taking resets");

        let s = engine.writer_stats();
        assert_eq!(s.len(), 1);
        // 60 audio + 60 pcap copies + the segment start + the track end.
        assert_eq!(
            (s[0].records, s[0].bytes_written, s[0].io_errors),
            (122, 60 * 160 * 2, 0)
        );
        assert_eq!((s[0].open_calls, s[0].open_tracks), (0, 0));
        let rings = engine.ring_occupancy();
        assert_eq!(rings.len(), 1);
        assert_eq!((rings[0].worker, rings[0].writer), (0, 0));
        assert_eq!(rings[0].capacity_bytes, 1 << 20);
        // The writer stops once the worker's ends of its rings are gone.
        drop(core);
        assert!(engine.shutdown().is_empty());
    }
}
