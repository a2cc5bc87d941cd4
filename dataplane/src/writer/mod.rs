//! Writer threads: drain the worker rings, turn records into WAV files,
//! `call.pcap` and `meta.json`. All file I/O of the data plane happens here,
//! off the workers' cores.
//!
//! With `[encryption]` every file but `meta.json` is written sealed
//! (`crate::recording::sealed`) under a data key made when the call opens,
//! and `meta.json` leaves out what `meta.json.sealed` holds.

pub mod controls;
pub mod pcap_out;
pub mod stats;
pub mod timeline;
pub mod wav;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use crate::codec::Codec;
use crate::demux::TrackRef;
use crate::recording::layout::track_file;
use crate::recording::meta::{
    now_ns, rfc3339, CallMeta, EncryptionMeta, LossMeta, SegmentMeta, TrackMeta,
};
use crate::recording::recovery::write_meta;
use crate::recording::sealed::restore::META_SEALED;
use crate::recording::sealed::{seal_file, Content, Recipient, RecordingKey, SealedWriter, SUFFIX};
use crate::report::TrackReport;
use crate::ring::{Header, Kind, RecordConsumer};
use crate::specs::{CallRef, MediaSeen};
use crate::track::{codec_from_u8, SegmentReason};
use crate::DropReason;
pub use controls::RecordingControl;
use controls::{Applied, Controls, Mode};
use pcap_out::PcapOut;
use stats::{latency_ns, Published, WriterStats};
use timeline::{Placement, Timeline};
use wav::{AudioOut, WavFile};

/// Sample rate of every WAV (all recordable codecs are 8 kHz today).
const SAMPLE_RATE: u32 = 8000;
/// Audio buffered per track before it is written even between flushes:
/// half a second. Per-track buffers are most of a call's memory, so they
/// are kept small (BENCHMARKS.md, memory per call) at the cost of two
/// writes per track per second instead of one.
const MAX_BUFFERED: usize = 4096;
/// Room for one more packet of the longest ptime past `MAX_BUFFERED`.
const OUT_CAPACITY: usize = MAX_BUFFERED + 960;
/// Segment reason of the first audio after a Start.
const RECORDING_START: &str = "recording_start";

/// What the control plane asks of a writer.
pub enum WriterCommand {
    OpenCall {
        call: CallRef,
        dir: PathBuf,
        meta: Box<CallMeta>,
        pcap: bool,
        /// Start time of a call that begins stopped (on-demand recording).
        stopped_from: Option<u64>,
    },
    AddTrack {
        call: CallRef,
        track: TrackRef,
        index: u32,
        label: Option<String>,
        /// Counted on every media record of the track.
        media: Arc<MediaSeen>,
    },
    /// Store a file next to the recording (SIPREC metadata versions).
    WriteFile {
        call: CallRef,
        name: String,
        bytes: Vec<u8>,
    },
    /// Change call-level metadata (participants, ids, tags).
    UpdateMeta {
        call: CallRef,
        update: Box<dyn FnOnce(&mut CallMeta) + Send>,
    },
    /// Pause, resume, stop or start the recording as of `at_ns` (arrival
    /// time of the records it applies to).
    Control {
        call: CallRef,
        control: RecordingControl,
        at_ns: u64,
        by: Option<String>,
        reason: Option<String>,
    },
    /// The call is over: close it once every worker has reported its tracks.
    EndCall { call: CallRef, ended_at_ns: u64 },
    /// Stop once the rings are drained and the workers are gone.
    Shutdown,
}

/// A recording that was closed.
#[derive(Clone, Debug)]
pub struct ClosedCall {
    pub call: CallRef,
    pub dir: PathBuf,
    pub meta: CallMeta,
}

/// What writers tell the control plane.
#[derive(Clone, Debug)]
pub enum WriterEvent {
    Closed(ClosedCall),
}

struct TrackRec {
    call: CallRef,
    index: u32,
    wav: Option<AudioOut>,
    timeline: Timeline,
    out: Vec<i16>,
    report: TrackReport,
    ends: usize,
    segments: Vec<SegmentMeta>,
    first_codec: Option<Codec>,
    /// Samples in the WAV file (stays put once a write failed).
    file_samples: u64,
    paused_samples: u64,
    stopped_packets: u64,
    losses: Vec<LossMeta>,
    /// The worker's number for the segment the timeline has open.
    worker_segment: u32,
    /// After a Start: audio arriving from this time on opens a new segment.
    restart_after: Option<u64>,
    /// Shared with the track's spec: the no-media timeout reads it.
    media: Arc<MediaSeen>,
}

struct CallRec {
    dir: PathBuf,
    meta: CallMeta,
    tracks: Vec<TrackRef>,
    open_tracks: usize,
    ending: Option<u64>,
    pcap: Option<PcapOut>,
    controls: Controls,
    seal: Sealing,
}

/// How a call's files are written.
enum Sealing {
    Plain,
    Sealed(RecordingKey),
    /// Encryption is on but no data key could be made: nothing of the call
    /// is stored rather than anything in the clear.
    Failed,
}

impl CallRec {
    /// Lists sealed file `name` in `meta.json` (`encryption.files`).
    fn note_sealed(&mut self, name: &str) {
        if let Some(e) = self.meta.encryption.as_mut() {
            if !e.files.iter().any(|f| f == name) {
                e.files.push(name.to_string());
            }
        }
    }
}

/// Counters a writer keeps about itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriterCounters {
    pub records: u64,
    pub unknown_track: u64,
    pub bytes_written: u64,
    pub io_errors: u64,
}

struct State {
    n_workers: usize,
    window: u64,
    calls: HashMap<CallRef, CallRec>,
    tracks: HashMap<TrackRef, TrackRec>,
    commands: Receiver<WriterCommand>,
    events: Sender<WriterEvent>,
    shutdown: bool,
    scratch: Vec<i16>,
    counters: WriterCounters,
    /// ns from a record's arrival to the writer placing its audio in the
    /// track's timeline; merged into `shared_latency` every flush.
    latency: Histogram<u64>,
    /// Whom recordings are sealed for (`[encryption]`); `None`: plain files.
    recipient: Option<Arc<Recipient>>,
}

/// A writer thread's whole state.
pub struct Writer {
    consumers: Vec<RecordConsumer>,
    state: State,
    flush_interval: Duration,
    stats: Arc<WriterStats>,
    shared_latency: Arc<Mutex<Histogram<u64>>>,
}

/// Where a writer publishes its statistics.
pub(crate) struct WriterSinks {
    pub stats: Arc<WriterStats>,
    /// Shared by all writers; its bounds are those of every local histogram.
    pub latency: Arc<Mutex<Histogram<u64>>>,
}

impl Writer {
    pub(crate) fn new(
        consumers: Vec<RecordConsumer>,
        commands: Receiver<WriterCommand>,
        events: Sender<WriterEvent>,
        reorder_window: Duration,
        flush_interval: Duration,
        sinks: WriterSinks,
    ) -> Self {
        let n_workers = consumers.len();
        let mut latency = sinks
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        latency.reset();
        Writer {
            consumers,
            flush_interval,
            stats: sinks.stats,
            shared_latency: sinks.latency,
            state: State {
                n_workers,
                window: (reorder_window.as_secs_f64() * SAMPLE_RATE as f64) as u64,
                calls: HashMap::new(),
                tracks: HashMap::new(),
                commands,
                events,
                shutdown: false,
                scratch: Vec::with_capacity(1024),
                counters: WriterCounters::default(),
                latency,
                recipient: None,
            },
        }
    }

    /// Seal every recording for `to` (`[encryption]`); `None` writes plain
    /// files.
    pub(crate) fn sealing(mut self, to: Option<Recipient>) -> Self {
        self.state.recipient = to.map(Arc::new);
        self
    }

    fn publish(&self) {
        let s = &self.state;
        self.stats.publish(&Published {
            records: s.counters.records,
            bytes_written: s.counters.bytes_written,
            io_errors: s.counters.io_errors,
            open_calls: s.calls.len() as u64,
            open_tracks: s.tracks.len() as u64,
        });
    }

    fn merge_latency(&mut self) {
        if self.state.latency.is_empty() {
            return;
        }
        let mut shared = self
            .shared_latency
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Err(e) = shared.add(&self.state.latency) {
            tracing::warn!(error = %e, "writer latency histogram not merged");
        }
        self.state.latency.reset();
    }

    /// Run until shut down.
    pub fn run(mut self) {
        let mut last_flush = Instant::now();
        loop {
            match self.step(&mut last_flush) {
                Step::Done => break,
                Step::Worked => {}
                Step::Idle => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    /// One pass: commands, every ring, a flush when one is due, statistics.
    fn step(&mut self, last_flush: &mut Instant) -> Step {
        let mut work = self.state.drain_commands();
        for (i, c) in self.consumers.iter_mut().enumerate() {
            self.stats.set_ring_used(i, c.used());
            for _ in 0..8192 {
                match c.pop(|h, p| self.state.on_record(h, p)) {
                    Ok(Some(())) => work = true,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "writer ring corrupt; abandoning it");
                        break;
                    }
                }
            }
        }
        if last_flush.elapsed() >= self.flush_interval {
            self.state.flush_all();
            self.merge_latency();
            *last_flush = Instant::now();
        }
        self.publish();
        if self.state.shutdown
            && self
                .consumers
                .iter()
                .all(|c| c.used() == 0 && c.is_abandoned())
        {
            self.state.drain_commands();
            self.state.abort_open_calls();
            self.merge_latency();
            self.publish();
            return Step::Done;
        }
        if work {
            Step::Worked
        } else {
            Step::Idle
        }
    }
}

/// What one pass of the writer loop did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Worked,
    Idle,
    Done,
}

impl State {
    fn drain_commands(&mut self) -> bool {
        let mut any = false;
        while let Ok(cmd) = self.commands.try_recv() {
            any = true;
            self.on_command(cmd);
        }
        any
    }

    fn on_command(&mut self, cmd: WriterCommand) {
        match cmd {
            WriterCommand::OpenCall {
                call,
                dir,
                meta,
                pcap,
                stopped_from,
            } => {
                let controls = stopped_from.map(Controls::stopped_from).unwrap_or_default();
                let (seal, seal_error) = match &self.recipient {
                    None => (Sealing::Plain, None),
                    Some(to) => match RecordingKey::new(to, &meta.recording_id) {
                        Ok(k) => (Sealing::Sealed(k), None),
                        Err(e) => (Sealing::Failed, Some(e)),
                    },
                };
                let mut rec = CallRec {
                    dir,
                    meta: *meta,
                    tracks: Vec::new(),
                    open_tracks: 0,
                    ending: None,
                    pcap: None,
                    controls,
                    seal,
                };
                rec.meta.controls = rec.controls.to_meta(None);
                if let Some(to) = &self.recipient {
                    rec.meta.encryption = Some(EncryptionMeta {
                        key_id: to.key_id.clone(),
                        key_fingerprint: to.public_key.fingerprint().to_string(),
                        algorithm: to.public_key.algorithm().name().to_string(),
                        tenant: to.tenant.clone(),
                        files: Vec::new(),
                    });
                }
                if matches!(rec.seal, Sealing::Sealed(_)) {
                    rec.note_sealed(META_SEALED);
                }
                if let Some(e) = seal_error {
                    self.fail(
                        &mut rec,
                        format!("encryption: {e}; nothing of this call is stored"),
                    );
                }
                if let Err(e) = std::fs::create_dir_all(&rec.dir) {
                    let msg = format!("cannot create {}: {e}", rec.dir.display());
                    self.fail(&mut rec, msg);
                }
                if pcap {
                    let created = match &rec.seal {
                        Sealing::Plain => Some(PcapOut::create(&rec.dir.join("call.pcap"))),
                        Sealing::Sealed(k) => Some(PcapOut::create_sealed(
                            &rec.dir.join(format!("call.pcap{SUFFIX}")),
                            k,
                        )),
                        Sealing::Failed => None,
                    };
                    match created {
                        Some(Ok(p)) => {
                            rec.pcap = Some(p);
                            rec.meta.pcap = Some("call.pcap".into());
                            rec.note_sealed(&format!("call.pcap{SUFFIX}"));
                        }
                        Some(Err(e)) => self.fail(&mut rec, format!("call.pcap: {e}")),
                        None => {}
                    }
                }
                self.save_meta(&mut rec);
                self.calls.insert(call, rec);
            }
            WriterCommand::AddTrack {
                call,
                track,
                index,
                label,
                media,
            } => {
                let Some(mut rec) = self.calls.remove(&call) else {
                    return;
                };
                let file = track_file(index);
                let sealed_name = format!("{file}{SUFFIX}");
                let created = match &rec.seal {
                    Sealing::Plain => {
                        Some(WavFile::create(&rec.dir.join(&file), SAMPLE_RATE).map(AudioOut::Wav))
                    }
                    Sealing::Sealed(k) => Some(
                        SealedWriter::create(
                            &rec.dir.join(&sealed_name),
                            k,
                            &file,
                            Content::Pcm16Mono {
                                sample_rate: SAMPLE_RATE,
                            },
                        )
                        .map(AudioOut::Sealed),
                    ),
                    Sealing::Failed => None,
                };
                let wav = match created {
                    Some(Ok(w)) => {
                        rec.note_sealed(&sealed_name);
                        Some(w)
                    }
                    Some(Err(e)) => {
                        self.fail(&mut rec, format!("{file}: {e}"));
                        None
                    }
                    None => None,
                };
                rec.meta.tracks.push(TrackMeta {
                    index,
                    label,
                    file,
                    codec: "none".into(),
                    clock_rate: SAMPLE_RATE,
                    no_media: true,
                    ..TrackMeta::default()
                });
                // Listed by index whatever order the tracks were added in
                // (CUCM's far-end leg may come first but is track 1).
                rec.meta.tracks.sort_by_key(|t| t.index);
                rec.tracks.push(track);
                rec.open_tracks += 1;
                self.save_meta(&mut rec);
                self.calls.insert(call, rec);
                self.tracks.insert(
                    track,
                    TrackRec {
                        call,
                        index,
                        wav,
                        timeline: Timeline::new(self.window),
                        out: Vec::with_capacity(OUT_CAPACITY),
                        report: TrackReport::default(),
                        ends: 0,
                        segments: Vec::new(),
                        first_codec: None,
                        file_samples: 0,
                        paused_samples: 0,
                        stopped_packets: 0,
                        losses: Vec::new(),
                        worker_segment: 0,
                        restart_after: None,
                        media,
                    },
                );
            }
            WriterCommand::WriteFile { call, name, bytes } => {
                let Some(mut rec) = self.calls.remove(&call) else {
                    return;
                };
                let sealed_name = format!("{name}{SUFFIX}");
                let res = match &rec.seal {
                    Sealing::Plain => std::fs::write(rec.dir.join(&name), &bytes),
                    Sealing::Sealed(k) => seal_file(
                        &rec.dir.join(&sealed_name),
                        k,
                        &name,
                        Content::Bytes,
                        &bytes,
                    ),
                    Sealing::Failed => Err(std::io::Error::other("not stored: no data key")),
                };
                match res {
                    Ok(()) => {
                        rec.meta.metadata_files.push(name);
                        rec.note_sealed(&sealed_name);
                        self.save_meta(&mut rec);
                    }
                    Err(e) => self.fail(&mut rec, format!("{name}: {e}")),
                }
                self.calls.insert(call, rec);
            }
            WriterCommand::UpdateMeta { call, update } => {
                let Some(mut rec) = self.calls.remove(&call) else {
                    return;
                };
                update(&mut rec.meta);
                self.save_meta(&mut rec);
                self.calls.insert(call, rec);
            }
            WriterCommand::Control {
                call,
                control,
                at_ns,
                by,
                reason,
            } => self.on_control(call, control, at_ns, by, reason),
            WriterCommand::EndCall { call, ended_at_ns } => {
                if let Some(rec) = self.calls.get_mut(&call) {
                    rec.ending = Some(ended_at_ns);
                }
                self.maybe_close(call);
            }
            WriterCommand::Shutdown => self.shutdown = true,
        }
    }

    fn on_control(
        &mut self,
        call: CallRef,
        control: RecordingControl,
        at_ns: u64,
        by: Option<String>,
        reason: Option<String>,
    ) {
        let Some(mut rec) = self.calls.remove(&call) else {
            return;
        };
        let applied = rec.controls.apply(control, at_ns, by, reason);
        tracing::info!(
            recording_id = %rec.meta.recording_id,
            ?control,
            at = %rfc3339(at_ns),
            ignored = applied == Applied::Ignored,
            "recording control"
        );
        if let Applied::Started(from) = applied {
            for t in &rec.tracks {
                if let Some(t) = self.tracks.get_mut(t) {
                    t.restart_after = Some(from);
                }
            }
        }
        if applied != Applied::Ignored {
            rec.meta.controls = rec.controls.to_meta(None);
            self.save_meta(&mut rec);
        }
        self.calls.insert(call, rec);
    }

    fn on_record(&mut self, h: &Header, payload: &[u8]) {
        self.counters.records += 1;
        // A control sent before this record was pushed must apply to it:
        // take it now rather than at the next loop.
        if !self.commands.is_empty() {
            self.drain_commands();
        }
        if !self.tracks.contains_key(&h.track) {
            // The AddTrack command may still be in the channel: it was sent
            // before the track's table entry was published, but this thread
            // may have looked at the channel before it arrived.
            self.drain_commands();
        }
        let call = self.tracks.get(&h.track).map(|t| {
            // Media arrived, whatever becomes of it (paused, stopped, pcap).
            if h.kind != Kind::TrackEnd {
                t.media.note();
            }
            t.call
        });
        let rec = call.and_then(|c| self.calls.get_mut(&c));
        let mode = match h.kind {
            Kind::TrackEnd => None,
            _ => rec.as_ref().and_then(|r| r.controls.mode_at(h.arrival_ns)),
        };
        if h.kind == Kind::Packet {
            // Neither paused nor stopped packets may reach the disk: a
            // pause hides card numbers, DTMF digits included.
            if mode.is_some() {
                return;
            }
            if let Some(rec) = rec {
                if let Some(p) = rec.pcap.as_mut() {
                    if let Err(e) = p.write(h.arrival_ns, h.aux, payload) {
                        tracing::error!(recording_id = %rec.meta.recording_id, "call.pcap: {e}");
                        rec.pcap = None;
                        rec.meta.errors.push(format!(
                            "call.pcap: {e}; packets after this point were not written"
                        ));
                        rec.meta.complete = false;
                        self.counters.io_errors += 1;
                    }
                }
            }
            return;
        }
        let Some(t) = self.tracks.get_mut(&h.track) else {
            self.counters.unknown_track += 1;
            return;
        };
        if mode == Some(Mode::Stopped) {
            // Segment starts go too: the first audio after the Start opens
            // the segment, with no gap for the stopped time.
            if h.kind == Kind::Audio {
                t.stopped_packets += 1;
            }
            return;
        }
        if !matches!(h.kind, Kind::TrackEnd | Kind::Loss)
            && t.restart_after.is_some_and(|from| h.arrival_ns >= from)
        {
            t.restart_after = None;
            let codec = codec_from_u8(h.codec);
            t.timeline.start_segment(0, &mut t.out);
            if t.first_codec.is_none() {
                t.first_codec = codec;
            }
            t.segments.push(SegmentMeta {
                ssrc: h.ssrc,
                codec: codec.map_or("none", Codec::name).to_string(),
                reason: RECORDING_START.to_string(),
                started_at: rfc3339(h.arrival_ns),
                ..SegmentMeta::default()
            });
            if h.kind == Kind::SegmentStart {
                // Replaced by the segment just opened: the worker's gap
                // would bring the stopped time back.
                return;
            }
        }
        match h.kind {
            Kind::Audio => {
                let Some(codec) = codec_from_u8(h.codec) else {
                    return;
                };
                self.scratch.clear();
                codec.decode_into(payload, &mut self.scratch);
                let paused = mode == Some(Mode::Paused);
                if paused {
                    // Decoded first so the silence has the packet's length.
                    self.scratch.fill(0);
                }
                if let Some(d) = latency_ns(h.arrival_ns, now_ns()) {
                    self.latency.saturating_record(d);
                }
                if t.timeline.push(h.rel, &self.scratch, &mut t.out) == Placement::Late {
                    t.report.late += 1;
                } else if paused {
                    t.paused_samples += self.scratch.len() as u64;
                }
                if t.out.len() >= MAX_BUFFERED {
                    let call = t.call;
                    self.write_out(h.track, call);
                }
            }
            Kind::Loss => {
                let last = payload
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(h.arrival_ns, u64::from_le_bytes);
                let at = if h.segment == t.worker_segment {
                    t.timeline.position(h.rel)
                } else {
                    // The run began in a segment whose start was lost too.
                    t.timeline.written()
                };
                note_loss(&mut t.losses, h.aux as u64, at, h.arrival_ns, last);
            }
            Kind::SegmentStart => {
                t.worker_segment = h.segment;
                let codec = codec_from_u8(h.codec);
                t.timeline.start_segment(h.rel.max(0) as u64, &mut t.out);
                if t.first_codec.is_none() {
                    t.first_codec = codec;
                }
                t.segments.push(SegmentMeta {
                    ssrc: h.ssrc,
                    codec: codec.map_or("none", Codec::name).to_string(),
                    reason: SegmentReason::from_u32(h.aux).name().to_string(),
                    started_at: rfc3339(h.arrival_ns),
                    ..SegmentMeta::default()
                });
            }
            Kind::TrackEnd => {
                if let Some(r) = TrackReport::decode(payload) {
                    t.report.merge(&r);
                }
                t.ends += 1;
                if t.ends >= self.n_workers {
                    self.finish_track(h.track);
                }
            }
            Kind::Packet => {}
        }
    }

    fn write_out(&mut self, track: TrackRef, call: CallRef) {
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        if t.out.is_empty() {
            return;
        }
        let n = t.out.len();
        let res = match t.wav.as_mut() {
            Some(w) => w.append(&t.out, SAMPLE_RATE).map(|()| {
                t.file_samples = w.samples();
                n
            }),
            // The file failed earlier: the audio has nowhere to go.
            None => Ok(0),
        };
        t.out.clear();
        // A segment's silent gap can be seconds long: give that memory back
        // rather than keep it for the rest of the call.
        if t.out.capacity() > 2 * OUT_CAPACITY {
            t.out.shrink_to(OUT_CAPACITY);
        }
        match res {
            Ok(written) => self.counters.bytes_written += written as u64 * 2,
            Err(e) => {
                t.wav = None;
                let file = track_file(t.index);
                self.counters.io_errors += 1;
                if let Some(mut rec) = self.calls.remove(&call) {
                    self.fail(
                        &mut rec,
                        format!("{file}: {e}; audio after this point was not written"),
                    );
                    self.save_meta(&mut rec);
                    self.calls.insert(call, rec);
                }
            }
        }
    }

    fn flush_all(&mut self) {
        let ids: Vec<(TrackRef, CallRef)> = self.tracks.iter().map(|(k, t)| (*k, t.call)).collect();
        for (t, c) in ids {
            self.write_out(t, c);
        }
        for rec in self.calls.values_mut() {
            let Some(p) = rec.pcap.as_mut() else {
                continue;
            };
            if let Err(e) = p.flush() {
                // The buffered packets are lost; later ones would be torn.
                tracing::error!(recording_id = %rec.meta.recording_id, "call.pcap: {e}");
                rec.pcap = None;
                rec.meta.errors.push(format!(
                    "call.pcap: {e}; packets after this point were not written"
                ));
                rec.meta.complete = false;
                self.counters.io_errors += 1;
            }
        }
    }

    fn finish_track(&mut self, track: TrackRef) {
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        t.timeline.flush_all(&mut t.out);
        let call = t.call;
        self.write_out(track, call);
        let Some(mut t) = self.tracks.remove(&track) else {
            return;
        };
        let synced = t.wav.as_mut().map_or(Ok(()), AudioOut::finish);
        let Some(rec) = self.calls.get_mut(&call) else {
            return;
        };
        if let Err(e) = synced {
            // Some file systems report a full disk only here.
            let msg = format!("{}: {e}", track_file(t.index));
            tracing::error!(recording_id = %rec.meta.recording_id, "{msg}");
            rec.meta.errors.push(msg);
            rec.meta.complete = false;
            self.counters.io_errors += 1;
        }
        if let Some(m) = rec.meta.tracks.iter_mut().find(|m| m.index == t.index) {
            fill_track_meta(m, &t);
        }
        rec.open_tracks = rec.open_tracks.saturating_sub(1);
        self.maybe_close(call);
    }

    fn maybe_close(&mut self, call: CallRef) {
        let ready = self
            .calls
            .get(&call)
            .is_some_and(|r| r.ending.is_some() && r.open_tracks == 0);
        if !ready {
            return;
        }
        let Some(mut rec) = self.calls.remove(&call) else {
            return;
        };
        if let Some(p) = rec.pcap.as_mut() {
            if let Err(e) = p.finish() {
                rec.meta.errors.push(format!("call.pcap: {e}"));
                rec.meta.complete = false;
                self.counters.io_errors += 1;
            }
        }
        let end = rec.ending.unwrap_or(0);
        rec.meta.ended_at = Some(rfc3339(end));
        rec.meta.controls = rec.controls.to_meta(Some(end));
        if rec.meta.errors.is_empty() {
            rec.meta.complete = true;
        }
        if let Err(e) = self.try_save_meta(&mut rec) {
            // The file on disk stays open; recovery closes it at the next
            // start. The control plane learns of it now.
            rec.meta.errors.push(format!(
                "meta.json: {e}; the file on disk is from an earlier save"
            ));
            rec.meta.complete = false;
        }
        let _ = self.events.send(WriterEvent::Closed(ClosedCall {
            call,
            dir: rec.dir,
            meta: rec.meta,
        }));
    }

    /// At shutdown, close calls the control plane never ended.
    fn abort_open_calls(&mut self) {
        let open: Vec<CallRef> = self.calls.keys().copied().collect();
        for call in open {
            let tracks = self
                .calls
                .get(&call)
                .map(|r| r.tracks.clone())
                .unwrap_or_default();
            for t in tracks {
                self.finish_track(t);
            }
            if let Some(rec) = self.calls.get_mut(&call) {
                if rec.ending.is_none() {
                    rec.meta
                        .errors
                        .push("the recorder shut down before the call ended".into());
                    rec.meta.complete = false;
                    rec.ending = Some(crate::recording::meta::now_ns());
                }
            }
            self.maybe_close(call);
        }
    }

    fn fail(&mut self, rec: &mut CallRec, msg: String) {
        tracing::error!(recording_id = %rec.meta.recording_id, "{msg}");
        rec.meta.complete = false;
        rec.meta.errors.push(msg);
    }

    /// Save `meta.json`; a failure is counted and logged, and the next save
    /// (at the latest when the call closes) tries again.
    fn save_meta(&mut self, rec: &mut CallRec) {
        let _ = self.try_save_meta(rec);
    }

    fn try_save_meta(&mut self, rec: &mut CallRec) -> std::io::Result<()> {
        let res = match &rec.seal {
            Sealing::Plain => write_meta(&rec.dir, &rec.meta),
            Sealing::Sealed(k) => {
                // The full snapshot first: the plaintext file never runs
                // ahead of a sealed copy that has what it leaves out.
                serde_json::to_vec_pretty(&rec.meta)
                    .map_err(std::io::Error::other)
                    .and_then(|json| {
                        seal_file(
                            &rec.dir.join(META_SEALED),
                            k,
                            "meta.json",
                            Content::Bytes,
                            &json,
                        )
                    })
                    .and_then(|()| write_meta(&rec.dir, &rec.meta.without_sealed_fields()))
            }
            Sealing::Failed => write_meta(&rec.dir, &rec.meta.without_sealed_fields()),
        };
        if let Err(e) = &res {
            self.counters.io_errors += 1;
            tracing::error!(recording_id = %rec.meta.recording_id, "meta.json: {e}");
        }
        res
    }
}

/// Most loss runs listed per track; later runs are folded into the last
/// entry so a writer that stays behind for hours cannot grow `meta.json`
/// without bound.
const MAX_LOSSES: usize = 100;

fn note_loss(losses: &mut Vec<LossMeta>, packets: u64, at: u64, first_ns: u64, last_ns: u64) {
    if losses.len() >= MAX_LOSSES {
        if let Some(l) = losses.last_mut() {
            l.packets += packets;
            l.to = rfc3339(last_ns);
        }
        return;
    }
    losses.push(LossMeta {
        reason: DropReason::RingFull.name().to_string(),
        packets,
        at_sample: at,
        at_seconds: at as f64 / SAMPLE_RATE as f64,
        from: rfc3339(first_ns),
        to: rfc3339(last_ns),
    });
}

fn fill_track_meta(m: &mut TrackMeta, t: &TrackRec) {
    let r = &t.report;
    let samples = t.file_samples;
    m.codec = t.first_codec.map_or("none", Codec::name).to_string();
    m.ssrc = r.seen.then_some(r.ssrc);
    m.packets = r.packets;
    m.lost = r.lost();
    m.duplicates = r.duplicates;
    m.srtp_auth_failed = r.srtp_auth_failed;
    m.srtp_replay = r.srtp_replay;
    m.reordered = r.reordered;
    m.late = r.late;
    m.ring_drops = r.ring_drops;
    m.pcap_drops = r.pcap_drops;
    m.unsupported_packets = r.unsupported;
    m.dtmf_packets = r.events;
    m.rtcp_packets = r.rtcp_packets;
    m.ssrc_changes = r.ssrc_changes;
    m.jitter_ms = (r.jitter_ns / 1e3).round() / 1e3;
    m.samples = samples;
    m.duration_seconds = samples as f64 / SAMPLE_RATE as f64;
    m.no_media = !r.seen;
    if r.seen {
        m.first_seq = Some(r.first_seq);
        m.last_seq = Some(r.last_seq);
        m.first_timestamp = Some(r.first_timestamp);
        m.last_timestamp = Some(r.last_timestamp);
    }
    m.paused_samples = t.paused_samples;
    m.stopped_packets = t.stopped_packets;
    m.wrong_source = r.wrong_source;
    m.losses = t.losses.clone();
    m.segments = t.segments.clone();
    for (meta, span) in m.segments.iter_mut().zip(t.timeline.segments()) {
        meta.start_sample = span.start;
        meta.samples = span.samples;
        meta.gap_samples = span.gap;
    }
}

#[cfg(test)]
mod tests;
