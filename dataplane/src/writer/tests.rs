//! The writer driven record by record on the test thread: controls, write
//! errors and statistics, with exact arrival times and no timing races.

use std::path::{Path, PathBuf};

use crossbeam_channel::unbounded;

use super::*;
use crate::ring::{self, RecordProducer};
use stats::RingOccupancy;

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;
/// Samples in one 20 ms G.711 packet.
const P: usize = 160;
const T1: TrackRef = TrackRef { slot: 1, gen: 1 };
const T2: TrackRef = TrackRef { slot: 2, gen: 1 };

struct Harness {
    w: Writer,
    events: Receiver<WriterEvent>,
    _commands: Sender<WriterCommand>,
    producer: RecordProducer,
    stats: Arc<WriterStats>,
    latency: Arc<Mutex<Histogram<u64>>>,
    root: tempfile::TempDir,
}

fn harness() -> Harness {
    let (producer, consumer) = ring::ring(1 << 16);
    let (cmd_tx, cmd_rx) = unbounded();
    let (ev_tx, ev_rx) = unbounded();
    let stats = Arc::new(WriterStats::new(1, 1 << 16));
    let latency = Arc::new(Mutex::new(
        Histogram::new_with_bounds(1, stats::MAX_LATENCY_NS, 3).unwrap(),
    ));
    let w = Writer::new(
        vec![consumer],
        cmd_rx,
        ev_tx,
        Duration::from_millis(200),
        // Flushes only when a test asks, so what is on disk is known.
        Duration::from_secs(3600),
        WriterSinks {
            stats: stats.clone(),
            latency: latency.clone(),
        },
    );
    Harness {
        w,
        events: ev_rx,
        _commands: cmd_tx,
        producer,
        stats,
        latency,
        root: tempfile::tempdir().unwrap(),
    }
}

/// Payload of packet `i`: a constant non-silent level per packet, so the
/// WAV shows which packet each stretch came from.
fn tone(i: u64) -> [u8; P] {
    [(i % 100) as u8 + 1; P]
}

fn level(i: u64) -> i16 {
    crate::codec::ULAW_TO_LINEAR[tone(i)[0] as usize]
}

fn header(kind: Kind, track: TrackRef, rel: i64, arrival_ns: u64, len: usize) -> Header {
    Header {
        kind,
        codec: 0, // PCMU
        payload_len: len as u16,
        track,
        segment: 0,
        rel,
        arrival_ns,
        ssrc: 0x1234,
        aux: 0,
    }
}

impl Harness {
    fn open(&mut self, call: u64, pcap: bool, stopped_from: Option<u64>) -> PathBuf {
        let dir = self.root.path().join(format!("call-{call}"));
        self.w.state.on_command(WriterCommand::OpenCall {
            call: CallRef(call),
            dir: dir.clone(),
            meta: Box::new(CallMeta {
                recording_id: format!("rec-{call}"),
                ..CallMeta::default()
            }),
            pcap,
            stopped_from,
        });
        dir
    }

    fn add_track(&mut self, call: u64, track: TrackRef, index: u32) {
        self.w.state.on_command(WriterCommand::AddTrack {
            call: CallRef(call),
            track,
            index,
            label: None,
            media: Default::default(),
        });
    }

    fn control(&mut self, call: u64, control: RecordingControl, at_ns: u64) {
        self.w.state.on_command(WriterCommand::Control {
            call: CallRef(call),
            control,
            at_ns,
            by: Some("agent-7".into()),
            reason: Some(format!("{control:?}")),
        });
    }

    fn segment(&mut self, track: TrackRef, reason: SegmentReason, arrival_ns: u64) {
        let mut h = header(Kind::SegmentStart, track, 0, arrival_ns, 0);
        h.aux = reason as u32;
        self.w.state.on_record(&h, &[]);
    }

    /// Packet `i` of a 20 ms stream: its pcap copy, then its audio at `rel`.
    fn packet(&mut self, track: TrackRef, i: u64, rel: i64, arrival_ns: u64) {
        let frame = [0xAB; 60];
        self.w
            .state
            .on_record(&header(Kind::Packet, track, 0, arrival_ns, 60), &frame);
        self.w
            .state
            .on_record(&header(Kind::Audio, track, rel, arrival_ns, P), &tone(i));
    }

    /// The workers' reports, the end of the call, and its closed meta.
    fn end(&mut self, call: u64, tracks: &[TrackRef], at_ns: u64) -> CallMeta {
        for t in tracks {
            let report = TrackReport {
                seen: true,
                ssrc: 0x1234,
                ..TrackReport::default()
            }
            .encode();
            let h = header(Kind::TrackEnd, *t, 0, 0, report.len());
            self.w.state.on_record(&h, &report);
        }
        self.w.state.on_command(WriterCommand::EndCall {
            call: CallRef(call),
            ended_at_ns: at_ns,
        });
        let WriterEvent::Closed(c) = self.events.try_recv().expect("call closed");
        let on_disk: CallMeta =
            serde_json::from_slice(&std::fs::read(c.dir.join("meta.json")).unwrap()).unwrap();
        let expected = match c.meta.encryption {
            Some(_) => c.meta.without_sealed_fields(),
            None => c.meta.clone(),
        };
        assert_eq!(on_disk, expected, "meta.json matches the event");
        c.meta
    }
}

/// The samples of a WAV whose header covers exactly its data.
fn wav(path: &Path) -> Vec<i16> {
    let b = std::fs::read(path).unwrap();
    let data = u32::from_le_bytes([b[40], b[41], b[42], b[43]]) as usize;
    assert_eq!(data, b.len() - 44, "header covers the data");
    b[44..]
        .chunks(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Timestamps (ns) of the packets of a nanosecond pcap.
fn pcap_times(path: &Path) -> Vec<u64> {
    let b = std::fs::read(path).unwrap();
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= b.len() {
        let u = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as u64;
        out.push(u(at) * 1_000_000_000 + u(at + 4));
        at += 16 + u(at + 8) as usize;
    }
    out
}

fn arrival(i: u64) -> u64 {
    T0 + i * 20 * MS
}

#[test]
fn pause_becomes_silence_of_its_length_and_leaves_no_packets() {
    let mut h = harness();
    let dir = h.open(1, true, None);
    h.add_track(1, T1, 0);
    h.segment(T1, SegmentReason::Start, arrival(0));
    let (pause, resume) = (arrival(25) - MS, arrival(45) - MS);
    for i in 0..100u64 {
        if i == 25 {
            h.control(1, RecordingControl::Pause, pause);
        }
        if i == 45 {
            h.control(1, RecordingControl::Resume, resume);
            // Now open on disk, so a crash leaves the pause documented.
            let m: CallMeta =
                serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
            assert_eq!(m.controls.len(), 1);
        }
        h.packet(T1, i, i as i64 * P as i64, arrival(i));
    }
    let meta = h.end(1, &[T1], arrival(100));

    let s = wav(&dir.join("track-0.wav"));
    assert_eq!(s.len(), 100 * P, "the WAV keeps its length");
    let zeros: Vec<usize> = (0..s.len()).filter(|&k| s[k] == 0).collect();
    assert_eq!(zeros.len(), 20 * P, "400 ms of silence");
    assert_eq!((zeros[0], *zeros.last().unwrap()), (25 * P, 45 * P - 1));
    assert_eq!(s[25 * P - 1], level(24));
    assert_eq!(s[45 * P], level(45));

    let times = pcap_times(&dir.join("call.pcap"));
    assert_eq!(times.len(), 80);
    assert!(times.iter().all(|t| *t < pause || *t >= resume));

    let t = &meta.tracks[0];
    assert_eq!(
        (t.samples, t.paused_samples, t.stopped_packets),
        (16000, 3200, 0)
    );
    assert_eq!(meta.controls.len(), 1);
    let c = &meta.controls[0];
    assert_eq!(c.kind, "pause");
    assert_eq!(c.started_at, rfc3339(pause));
    assert_eq!(c.ended_at, Some(rfc3339(resume)));
    assert_eq!(c.by.as_deref(), Some("agent-7"));
    assert_eq!(c.reason.as_deref(), Some("Pause"));
    assert!(meta.complete);
}

#[test]
fn stop_cuts_the_stretch_out_and_start_opens_a_segment() {
    let mut h = harness();
    let dir = h.open(1, true, None);
    h.add_track(1, T1, 0);
    h.segment(T1, SegmentReason::Start, arrival(0));
    for i in 0..100u64 {
        if i == 30 {
            h.control(1, RecordingControl::Stop, arrival(30));
        }
        if i == 40 {
            // A new SSRC while stopped: its worker segment (with a gap)
            // must not bring stopped time into the file.
            h.segment(T1, SegmentReason::SsrcChange, arrival(40));
        }
        if i == 60 {
            h.control(1, RecordingControl::Start, arrival(60));
        }
        let rel = if i < 40 { i } else { i - 40 } as i64 * P as i64;
        h.packet(T1, i, rel, arrival(i));
    }
    let meta = h.end(1, &[T1], arrival(100));

    let s = wav(&dir.join("track-0.wav"));
    assert_eq!(s.len(), 70 * P, "30 stopped packets are not in the WAV");
    assert!(s.iter().all(|v| *v != 0), "no silence for the stop");
    assert_eq!(s[30 * P - 1], level(29));
    assert_eq!(s[30 * P], level(60));

    let times = pcap_times(&dir.join("call.pcap"));
    assert_eq!(times.len(), 70);
    assert!(times.iter().all(|t| *t < arrival(30) || *t >= arrival(60)));

    let t = &meta.tracks[0];
    assert_eq!((t.stopped_packets, t.paused_samples), (30, 0));
    let seg: Vec<(&str, u64, u64, u64)> = t
        .segments
        .iter()
        .map(|g| (g.reason.as_str(), g.start_sample, g.gap_samples, g.samples))
        .collect();
    assert_eq!(
        seg,
        vec![("start", 0, 0, 4800), ("recording_start", 4800, 0, 6400)]
    );
    assert_eq!(t.segments[1].started_at, rfc3339(arrival(60)));
    assert_eq!(meta.controls.len(), 1);
    assert_eq!(meta.controls[0].kind, "stop");
    assert_eq!(meta.controls[0].ended_at, Some(rfc3339(arrival(60))));
}

#[test]
fn a_call_started_stopped_stores_nothing_until_start() {
    let mut h = harness();
    let dir = h.open(1, true, Some(T0));
    h.add_track(1, T1, 0);
    h.segment(T1, SegmentReason::Start, arrival(0));
    for i in 0..50u64 {
        h.packet(T1, i, i as i64 * P as i64, arrival(i));
    }
    h.w.state.flush_all();
    assert!(wav(&dir.join("track-0.wav")).is_empty());
    assert_eq!(pcap_times(&dir.join("call.pcap")), Vec::<u64>::new());
    let open: CallMeta =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(open.controls.len(), 1);
    assert_eq!(open.controls[0].kind, "stop");
    assert_eq!(open.controls[0].started_at, rfc3339(T0));
    assert_eq!(open.controls[0].ended_at, None);

    h.control(1, RecordingControl::Start, arrival(50));
    for i in 50..60u64 {
        h.packet(T1, i, i as i64 * P as i64, arrival(i));
    }
    let meta = h.end(1, &[T1], arrival(60));
    let s = wav(&dir.join("track-0.wav"));
    assert_eq!(s.len(), 10 * P);
    assert_eq!(s[0], level(50));
    assert_eq!(pcap_times(&dir.join("call.pcap")).len(), 10);
    let t = &meta.tracks[0];
    assert_eq!(t.stopped_packets, 50);
    assert_eq!(t.codec, "PCMU");
    assert_eq!(t.segments.len(), 1);
    assert_eq!(
        (t.segments[0].reason.as_str(), t.segments[0].gap_samples),
        ("recording_start", 0)
    );
    assert_eq!(meta.controls[0].ended_at, Some(rfc3339(arrival(50))));
}

#[test]
fn controls_that_do_not_fit_the_state_change_nothing() {
    let run = |controls: bool| {
        let mut h = harness();
        let dir = h.open(1, false, None);
        h.add_track(1, T1, 0);
        h.segment(T1, SegmentReason::Start, arrival(0));
        for i in 0..50u64 {
            if controls && i == 10 {
                h.control(1, RecordingControl::Resume, arrival(10));
                h.control(1, RecordingControl::Start, arrival(10));
            }
            h.packet(T1, i, i as i64 * P as i64, arrival(i));
        }
        let meta = h.end(1, &[T1], arrival(50));
        (std::fs::read(dir.join("track-0.wav")).unwrap(), meta)
    };
    let (plain, _) = run(false);
    let (ignored, meta) = run(true);
    assert_eq!(plain.len(), 44 + 50 * P * 2);
    assert_eq!(plain, ignored);
    assert!(meta.controls.is_empty());
    assert_eq!(meta.tracks[0].segments.len(), 1);
}

#[test]
fn open_interval_ends_with_the_call_and_tags_merge() {
    let mut h = harness();
    h.open(1, false, None);
    h.add_track(1, T1, 0);
    h.control(1, RecordingControl::Pause, arrival(3));
    let mut tags = std::collections::BTreeMap::new();
    tags.insert("crm".to_string(), "case-1".to_string());
    tags.insert("queue".to_string(), "sales".to_string());
    h.w.state.on_command(WriterCommand::UpdateMeta {
        call: CallRef(1),
        update: Box::new(move |m: &mut CallMeta| m.merge_tags(tags)),
    });
    let mut tags = std::collections::BTreeMap::new();
    tags.insert("queue".to_string(), String::new());
    tags.insert("crm".to_string(), "case-2".to_string());
    h.w.state.on_command(WriterCommand::UpdateMeta {
        call: CallRef(1),
        update: Box::new(move |m: &mut CallMeta| m.merge_tags(tags)),
    });
    let meta = h.end(1, &[T1], arrival(9));
    assert_eq!(meta.controls[0].ended_at, Some(rfc3339(arrival(9))));
    assert_eq!(
        serde_json::to_value(&meta.tags).unwrap(),
        serde_json::json!({"crm": "case-2"})
    );
}

#[test]
fn a_full_disk_closes_that_call_incomplete_and_spares_the_others() {
    let mut h = harness();
    let dir_a = h.open(1, false, None);
    let dir_b = h.open(2, false, None);
    h.add_track(1, T1, 0);
    h.add_track(2, T2, 0);
    h.w.state
        .tracks
        .get_mut(&T1)
        .and_then(|t| t.wav.as_mut())
        .unwrap()
        .fail_after(10 * P as u64 * 2);
    for i in 0..50u64 {
        h.packet(T1, i, i as i64 * P as i64, arrival(i));
        h.packet(T2, i, i as i64 * P as i64, arrival(i));
        if i % 8 == 7 {
            h.w.state.flush_all();
        }
    }
    let a = h.end(1, &[T1], arrival(50));
    let b = h.end(2, &[T2], arrival(50));

    assert!(!a.complete);
    assert_eq!(a.errors.len(), 1, "{:?}", a.errors);
    assert!(
        a.errors[0].starts_with("track-0.wav: No space left on device"),
        "{}",
        a.errors[0]
    );
    // The reorder window holds 10 packets back: the flush after packet 15
    // wrote 6, the next one (8 more) hit the limit and was cut back.
    let s = wav(&dir_a.join("track-0.wav"));
    assert_eq!(s.len(), 6 * P);
    assert_eq!(a.tracks[0].samples, 6 * P as u64);

    assert!(b.complete && b.errors.is_empty());
    assert_eq!(wav(&dir_b.join("track-0.wav")).len(), 50 * P);
    assert_eq!(h.w.state.counters.io_errors, 1);
}

#[test]
fn a_failing_pcap_or_meta_json_is_reported_without_stopping_the_call() {
    let mut h = harness();
    let dir = h.open(1, true, None);
    h.add_track(1, T1, 0);
    h.w.state.calls.get_mut(&CallRef(1)).unwrap().pcap =
        Some(PcapOut::create(Path::new("/dev/full")).expect("/dev/full"));
    for i in 0..10u64 {
        h.packet(T1, i, i as i64 * P as i64, arrival(i));
    }
    h.w.state.flush_all();
    // The directory vanishes (and a file takes its name): meta.json cannot
    // be saved, the open WAV still takes audio.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    for i in 10..20u64 {
        h.packet(T1, i, i as i64 * P as i64, arrival(i));
    }
    let report = TrackReport::default().encode();
    h.w.state
        .on_record(&header(Kind::TrackEnd, T1, 0, 0, report.len()), &report);
    h.w.state.on_command(WriterCommand::EndCall {
        call: CallRef(1),
        ended_at_ns: arrival(20),
    });
    let WriterEvent::Closed(c) = h.events.try_recv().expect("closed despite errors");
    assert!(!c.meta.complete);
    assert!(
        c.meta.errors[0].starts_with("call.pcap: No space left on device"),
        "{:?}",
        c.meta.errors
    );
    assert!(
        c.meta.errors.last().unwrap().starts_with("meta.json: "),
        "{:?}",
        c.meta.errors
    );
    assert_eq!(c.meta.tracks[0].samples, 20 * P as u64);
    assert!(h.w.state.counters.io_errors >= 2);
}

#[test]
fn a_pass_publishes_counters_ring_backlog_and_latency() {
    let mut h = harness();
    h.open(1, false, None);
    h.add_track(1, T1, 0);
    let now = now_ns();
    let mut pushed = 0;
    for i in 0..10u64 {
        let hd = header(Kind::Audio, T1, i as i64 * P as i64, now - (10 - i) * MS, P);
        assert!(h.producer.push(&hd, &[&tone(i)]));
        pushed += ring::HEADER_LEN + P;
    }
    // An arrival from a replayed capture is no latency.
    let old = header(Kind::Audio, T1, 10 * P as i64, T0, P);
    assert!(h.producer.push(&old, &[&tone(10)]));
    pushed += ring::HEADER_LEN + P;

    h.w.flush_interval = Duration::ZERO;
    let mut last_flush = Instant::now();
    assert_eq!(h.w.step(&mut last_flush), Step::Worked);
    let s = h.stats.snapshot(0);
    assert_eq!(
        (s.records, s.open_calls, s.open_tracks, s.io_errors),
        (11, 1, 1, 0)
    );
    // Flushed (the flush was due): all but the reorder window is on disk.
    assert!(s.bytes_written > 0 && s.bytes_written < 11 * P as u64 * 2);
    let rings: Vec<RingOccupancy> = h.stats.rings(0).collect();
    assert_eq!(
        rings,
        vec![RingOccupancy {
            worker: 0,
            writer: 0,
            used_bytes: pushed as u64,
            capacity_bytes: 1 << 16,
        }]
    );
    let lat = h.latency.lock().unwrap().clone();
    assert_eq!(lat.len(), 10);
    assert!(lat.min() >= MS && lat.max() < 60_000 * MS, "{}", lat.max());
    assert!(h.w.state.latency.is_empty(), "local histogram reset");

    assert_eq!(h.w.step(&mut last_flush), Step::Idle);
    assert_eq!(h.stats.rings(0).next().unwrap().used_bytes, 0);
}

mod sealed {
    //! With `[encryption]`: nothing in the clear on disk, everything back
    //! with the private key, and a writer that dies mid-call leaves chunks
    //! that decrypt.

    use super::*;
    use crate::recording::meta::ParticipantMeta;
    use crate::recording::sealed::keys::tests::{X25519_KEY, X25519_PUB};
    use crate::recording::sealed::restore::restore;
    use crate::recording::sealed::{PrivateKey, PublicKey, Recipient};

    fn sealed_harness() -> Harness {
        let mut h = harness();
        let public_key = PublicKey::from_pem(X25519_PUB).unwrap();
        h.w.state.recipient = Some(Arc::new(Recipient {
            key_id: "tenant-a-2024".into(),
            public_key,
            tenant: "tenant-a".into(),
        }));
        h
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        n.sort();
        n
    }

    fn with_participant(h: &mut Harness, call: u64) {
        h.w.state.on_command(WriterCommand::UpdateMeta {
            call: CallRef(call),
            update: Box::new(|m: &mut CallMeta| {
                m.participants.push(ParticipantMeta {
                    aor: Some("sip:+15551234567@example.com".into()),
                    ..ParticipantMeta::default()
                });
                m.tags.insert("customer".into(), "C-1009".into());
            }),
        });
    }

    #[test]
    fn an_encrypted_recording_round_trips() {
        let mut h = sealed_harness();
        let dir = h.open(1, true, None);
        h.add_track(1, T1, 0);
        with_participant(&mut h, 1);
        h.w.state.on_command(WriterCommand::WriteFile {
            call: CallRef(1),
            name: "metadata.xml".into(),
            bytes: b"<recording>+15551234567</recording>".to_vec(),
        });
        h.segment(T1, SegmentReason::Start, arrival(0));
        h.control(1, RecordingControl::Pause, arrival(10) - MS);
        h.control(1, RecordingControl::Resume, arrival(12) - MS);
        for i in 0..60u64 {
            h.packet(T1, i, i as i64 * P as i64, arrival(i));
            if i % 20 == 19 {
                h.w.state.flush_all();
            }
        }
        let meta = h.end(1, &[T1], arrival(60));
        assert!(meta.complete, "{:?}", meta.errors);
        assert_eq!(
            names(&dir),
            [
                "call.pcap.sealed",
                "meta.json",
                "meta.json.sealed",
                "metadata.xml.sealed",
                "track-0.wav.sealed"
            ]
        );
        let plain = std::fs::read_to_string(dir.join("meta.json")).unwrap();
        assert!(
            !plain.contains("5551234567") && !plain.contains("C-1009"),
            "{plain}"
        );
        assert!(!plain.contains("agent-7"), "{plain}");
        let enc = meta.encryption.as_ref().unwrap();
        assert_eq!(
            (enc.key_id.as_str(), enc.tenant.as_str()),
            ("tenant-a-2024", "tenant-a")
        );
        assert_eq!(
            enc.files,
            [
                "meta.json.sealed",
                "call.pcap.sealed",
                "track-0.wav.sealed",
                "metadata.xml.sealed"
            ]
        );
        for f in &enc.files {
            let raw = std::fs::read(dir.join(f)).unwrap();
            assert!(!raw.windows(10).any(|w| w == b"5551234567"), "{f}");
        }

        let key = PrivateKey::from_pem(X25519_KEY).unwrap();
        let out = h.root.path().join("restored");
        let r = restore(&dir, &out, &key).unwrap();
        assert!(!r.failed() && !r.incomplete(), "{r:?}");
        assert_eq!(r.key_id.as_deref(), Some("tenant-a-2024"));
        assert_eq!(
            names(&out),
            ["call.pcap", "meta.json", "metadata.xml", "track-0.wav"]
        );
        let s = wav(&out.join("track-0.wav"));
        assert_eq!(s.len(), 60 * P);
        assert_eq!((s[0], s[59 * P]), (level(0), level(59)));
        assert!(s[10 * P..12 * P].iter().all(|v| *v == 0), "the pause");
        assert_eq!(pcap_times(&out.join("call.pcap")).len(), 58);
        assert_eq!(
            std::fs::read(out.join("metadata.xml")).unwrap(),
            b"<recording>+15551234567</recording>"
        );
        let mut restored: CallMeta =
            serde_json::from_slice(&std::fs::read(out.join("meta.json")).unwrap()).unwrap();
        assert!(restored.encryption.is_none());
        restored.encryption = meta.encryption.clone();
        assert_eq!(restored, meta, "meta.json as if never sealed");
    }

    #[test]
    fn a_writer_killed_mid_call_leaves_decryptable_chunks() {
        let mut h = sealed_harness();
        let dir = h.open(1, true, None);
        h.add_track(1, T1, 0);
        with_participant(&mut h, 1);
        h.segment(T1, SegmentReason::Start, arrival(0));
        for i in 0..50u64 {
            h.packet(T1, i, i as i64 * P as i64, arrival(i));
            if i == 29 {
                // Everything up to packet 29 less the reorder window is
                // flushed; the rest dies with the process.
                h.w.state.flush_all();
            }
        }
        let root = h.root.path().to_path_buf();
        // kill -9: no final chunks, no closing meta.json.
        let Harness { w, root: tmp, .. } = h;
        drop(w);

        let (done, errors) = crate::recording::recovery::recover(&root);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(done.len(), 1);
        let meta: CallMeta =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
        assert!(!meta.complete && meta.ended_at.is_some());
        let flushed = meta.tracks[0].samples;
        assert!(flushed > 0 && flushed < 30 * P as u64, "{flushed}");
        assert!(meta.participants.is_empty());

        let key = PrivateKey::from_pem(X25519_KEY).unwrap();
        let out = root.join("restored");
        let r = restore(&dir, &out, &key).unwrap();
        assert!(r.incomplete() && !r.failed(), "{r:?}");
        let track = r
            .files
            .iter()
            .find(|f| f.sealed == "track-0.wav.sealed")
            .unwrap();
        assert_eq!((track.chunks, track.complete), (1, false));
        let s = wav(&out.join("track-0.wav"));
        assert_eq!(s.len() as u64, flushed);
        assert_eq!(s[0], level(0));
        assert_eq!(pcap_times(&out.join("call.pcap")).len(), 30);
        let restored: CallMeta =
            serde_json::from_slice(&std::fs::read(out.join("meta.json")).unwrap()).unwrap();
        assert_eq!(restored.ended_at, meta.ended_at, "closed by recovery");
        assert_eq!(restored.participants.len(), 1, "from the sealed snapshot");
        drop(tmp);
    }
}

/// Packets a worker had to drop for a full ring: the WAV keeps its length
/// (silence there) and `meta.json` says how many and where.
#[test]
fn ring_loss_is_silence_listed_with_its_position() {
    let mut h = harness();
    let dir = h.open(1, false, None);
    h.add_track(1, T1, 0);
    h.segment(T1, SegmentReason::Start, arrival(0));
    for i in 0..100u64 {
        if (40..55).contains(&i) {
            continue;
        }
        if i == 55 {
            let mut l = header(Kind::Loss, T1, 40 * P as i64, arrival(40), 8);
            l.aux = 15;
            h.w.state.on_record(&l, &arrival(54).to_le_bytes());
        }
        h.packet(T1, i, i as i64 * P as i64, arrival(i));
    }
    let meta = h.end(1, &[T1], arrival(100));
    let s = wav(&dir.join("track-0.wav"));
    assert_eq!(s.len(), 100 * P);
    assert!(s[40 * P..55 * P].iter().all(|v| *v == 0));
    assert_eq!(s[55 * P], level(55));
    let t = &meta.tracks[0];
    assert_eq!(t.losses.len(), 1, "{:?}", t.losses);
    let l = &t.losses[0];
    assert_eq!(
        (l.reason.as_str(), l.packets, l.at_sample),
        ("ring_full", 15, 40 * P as u64)
    );
    assert_eq!(l.at_seconds, 0.8);
    assert_eq!(
        (l.from.clone(), l.to.clone()),
        (rfc3339(arrival(40)), rfc3339(arrival(54)))
    );
}
