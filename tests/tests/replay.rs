//! `mediafork replay` end to end: generated captures in, WAV files and
//! `meta.json` out, checked exactly.

use std::net::SocketAddr;
use std::path::Path;

use mediafork_e2e::{mediafork, metas, replay, tool, track, wav_blocks};
use mediafork_testkit::capture_builder::Capture;
use mediafork_testkit::frame::{self, FrameSpec};
use mediafork_testkit::payload::{Block, Law};
use mediafork_testkit::sip::{self as tsip, CallSpec, CucmRecording, CucmStream, Vendor};
use mediafork_testkit::stream::{generate, Impairments, StreamSpec, DEFAULT_START_NS};
use serde_json::Value;

const MS: u64 = 1_000_000;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Write `cap` (sorted by time) as a pcap under `dir` and replay it into
/// `dir/rec`; the summary.
fn replay_capture(dir: &Path, cap: &Capture, extra: &[&str]) -> Value {
    let pcap = dir.join("in.pcap");
    cap.sorted().write_pcap(&pcap).unwrap();
    replay(&pcap, &dir.join("rec"), extra)
}

/// The SIP of one SIPREC call (INVITE, 200, ACK at `t0`; BYE at `t_end`)
/// plus its two RTP streams of `packets` packets each.
fn siprec_call(
    cap: &mut Capture,
    call: &CallSpec,
    t0: u64,
    packets: u32,
    imps: [Impairments; 2],
) -> u64 {
    cap.add_sip(t0, call.src_sip, call.dst_sip, &tsip::siprec_invite(call));
    cap.add_sip(t0 + MS, call.dst_sip, call.src_sip, &tsip::ok_200(call));
    cap.add_sip(t0 + 2 * MS, call.src_sip, call.dst_sip, &tsip::ack(call));
    for (i, imp) in imps.into_iter().enumerate() {
        let mut s = StreamSpec::new(
            SocketAddr::new(call.src_sip.ip(), call.streams[i].port),
            SocketAddr::new(call.media_addr, call.answer_ports[i]),
            0x1111_0000 + i as u32,
        );
        s.start_ns = t0 + 10 * MS;
        s.packets = packets;
        s.payload_type = call.streams[i].payload_type;
        cap.add_frames(generate(&s, imp));
    }
    let t_end = t0 + 10 * MS + packets as u64 * 20 * MS + 100 * MS;
    cap.add_sip(t_end, call.src_sip, call.dst_sip, &tsip::bye(call));
    cap.add_sip(
        t_end + MS,
        call.dst_sip,
        call.src_sip,
        &tsip::ok_200_bye(call),
    );
    t_end
}

#[test]
fn siprec_call_gives_two_exact_tracks_playable_by_sox() {
    let tmp = tempfile::tempdir().unwrap();
    let call = CallSpec::two_streams(
        "cube-1@192.0.2.10",
        sa("127.0.0.10:5060"),
        sa("127.0.0.1:5060"),
        Vendor::CiscoCube,
    );
    let mut cap = Capture::new();
    siprec_call(&mut cap, &call, DEFAULT_START_NS, 250, Default::default());
    let pcap = tmp.path().join("in.pcap");
    cap.sorted().write_pcap(&pcap).unwrap();
    let out = tmp.path().join("rec");
    let summary = replay(&pcap, &out, &[]);
    assert_eq!(
        summary["recordings"].as_array().unwrap().len(),
        1,
        "{summary:#}"
    );
    let (dir, meta) = &metas(&summary)[0];
    assert_eq!(meta["source"], "siprec");
    assert_eq!(meta["call"]["sip_call_id"], "cube-1@192.0.2.10");
    assert!(meta["call"]["cisco_guid"].is_string(), "{meta:#}");
    assert!(meta["ended_at"].is_string());
    assert_eq!(meta["complete"], true);
    assert!(dir.join("metadata.xml").exists());
    assert_eq!(meta["tracks"].as_array().unwrap().len(), 2);
    let participants = meta["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 2, "{meta:#}");
    for (label, ssrc) in [("1", 0x1111_0000u32), ("2", 0x1111_0001)] {
        let t = track(meta, label);
        assert_eq!(t["codec"], "PCMU");
        assert_eq!(t["clock_rate"], 8000);
        assert_eq!(t["ssrc"], ssrc);
        assert_eq!(t["packets"], 250);
        assert_eq!(t["lost"], 0);
        assert_eq!(t["duplicates"], 0);
        assert_eq!(t["reordered"], 0);
        assert_eq!(t["samples"], 250 * 160);
        assert_eq!(t["first_seq"], 0);
        assert_eq!(t["last_seq"], 249);
        let b = wav_blocks(dir, t, Law::Ulaw);
        assert_eq!(b.len(), 250);
        assert!(
            b.iter()
                .enumerate()
                .all(|(i, x)| *x == Block::Packet(i as u32 % 200)),
            "{b:?}"
        );
        // Each participant sends exactly one labelled stream.
        assert_eq!(
            participants
                .iter()
                .filter(|p| p["sends"] == serde_json::json!([label]))
                .count(),
            1,
            "{meta:#}"
        );
        let info = tool(
            "sox",
            &[
                "--i",
                dir.join(t["file"].as_str().unwrap()).to_str().unwrap(),
            ],
        );
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.status.success(),
            "sox --i failed: {}",
            String::from_utf8_lossy(&info.stderr)
        );
        assert!(text.contains("Sample Rate    : 8000"), "{text}");
        assert!(text.contains("40000 samples"), "{text}");
    }
    assert_eq!(summary["drops"]["unknown_port"], 0);
}

#[test]
fn loss_duplicates_and_reordering_are_counted_and_placed() {
    let tmp = tempfile::tempdir().unwrap();
    let call = CallSpec::two_streams(
        "imp-1@192.0.2.10",
        sa("127.0.0.10:5060"),
        sa("127.0.0.1:5060"),
        Vendor::Generic,
    );
    let mut cap = Capture::new();
    let imp = Impairments {
        drop: vec![10, 11, 50],
        duplicate: vec![20, 30],
        reorder: vec![40, 60],
        ..Default::default()
    };
    siprec_call(
        &mut cap,
        &call,
        DEFAULT_START_NS,
        100,
        [imp, Impairments::default()],
    );
    let summary = replay_capture(tmp.path(), &cap, &[]);
    let (dir, meta) = &metas(&summary)[0];
    let t = track(meta, "1");
    assert_eq!(t["packets"], 97);
    assert_eq!(t["lost"], 3);
    assert_eq!(t["duplicates"], 2);
    assert_eq!(t["reordered"], 2);
    assert_eq!(t["late"], 0);
    assert_eq!(
        t["samples"],
        100 * 160,
        "timeline spans every timestamp, lost ones as silence"
    );
    let b = wav_blocks(dir, t, Law::Ulaw);
    for (i, blk) in b.iter().enumerate() {
        let want = if [10, 11, 50].contains(&i) {
            Block::Silence
        } else {
            Block::Packet(i as u32)
        };
        assert_eq!(*blk, want, "block {i}");
    }
    assert_eq!(summary["drops"]["duplicate"], 2);
}

#[test]
fn reordering_beyond_the_window_is_late_and_silent() {
    let tmp = tempfile::tempdir().unwrap();
    let call = CallSpec::two_streams(
        "late-1@x",
        sa("127.0.0.10:5060"),
        sa("127.0.0.1:5060"),
        Vendor::Generic,
    );
    let mut cap = Capture::new();
    // Packet 30 arrives 500 ms late: beyond the 200 ms reorder window.
    let imp = Impairments {
        jitter_ns: vec![(30, 500 * MS as i64)],
        ..Default::default()
    };
    siprec_call(
        &mut cap,
        &call,
        DEFAULT_START_NS,
        100,
        [imp, Impairments::default()],
    );
    let summary = replay_capture(tmp.path(), &cap, &[]);
    let (dir, meta) = &metas(&summary)[0];
    let t = track(meta, "1");
    assert_eq!(t["packets"], 100);
    assert_eq!(t["lost"], 0);
    assert_eq!(t["reordered"], 1);
    assert_eq!(t["late"], 1);
    assert_eq!(t["samples"], 100 * 160);
    assert_eq!(wav_blocks(dir, t, Law::Ulaw)[30], Block::Silence);
}

#[test]
fn sequence_wraparound_and_alaw_dynamic_payload_type() {
    let tmp = tempfile::tempdir().unwrap();
    let mut call = CallSpec::two_streams(
        "wrap-1@x",
        sa("127.0.0.10:5060"),
        sa("127.0.0.1:5060"),
        Vendor::AcmePacket,
    );
    for s in &mut call.streams {
        s.payload_type = 101;
        s.rtpmap = Some("PCMA/8000".into());
    }
    let mut cap = Capture::new();
    cap.add_sip(
        DEFAULT_START_NS,
        call.src_sip,
        call.dst_sip,
        &tsip::siprec_invite(&call),
    );
    cap.add_sip(
        DEFAULT_START_NS + MS,
        call.dst_sip,
        call.src_sip,
        &tsip::ok_200(&call),
    );
    let mut s = StreamSpec::new(sa("127.0.0.10:20000"), sa("127.0.0.1:40000"), 7);
    s.payload_type = 101;
    s.first_seq = 65500;
    s.first_ts = u32::MAX - 8000;
    s.packets = 100;
    s.start_ns = DEFAULT_START_NS + 10 * MS;
    cap.add_frames(generate(
        &s,
        Impairments {
            drop: vec![36],
            ..Default::default()
        },
    ));
    let summary = replay_capture(tmp.path(), &cap, &[]);
    let (dir, meta) = &metas(&summary)[0];
    assert_eq!(meta["source"], "siprec");
    let t = track(meta, &call.streams[0].label);
    assert_eq!(t["codec"], "PCMA");
    assert_eq!(t["first_seq"], 65500);
    assert_eq!(t["last_seq"], 63, "65500 + 99 wraps to 63");
    assert_eq!(t["packets"], 99);
    assert_eq!(t["lost"], 1);
    assert_eq!(t["samples"], 100 * 160);
    let b = wav_blocks(dir, t, Law::Alaw);
    assert_eq!(b[36], Block::Silence);
    assert_eq!(b[37], Block::Packet(37));
    // The capture ended without BYE: still closed, and says so.
    assert!(meta["ended_at"].is_string());
    assert_eq!(meta["extensions"]["ended_by"], "capture_end");
    // The other stream never sent RTP: a silent file that says so.
    let other = track(meta, &call.streams[1].label);
    assert_eq!(other["no_media"], true);
    assert_eq!(other["samples"], 0);
    assert!(dir.join(other["file"].as_str().unwrap()).exists());
}

#[test]
fn ssrc_change_and_timestamp_jump_start_segments_without_inventing_silence() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cap = Capture::new();
    let mut s = StreamSpec::new(sa("127.0.0.10:20000"), sa("127.0.0.1:40010"), 0xA);
    s.packets = 300;
    // At packet 100 the SBC fails over: new SSRC, sequence and timestamps.
    // At packet 200 the timestamp jumps by one hour (beyond --max-gap-secs).
    let imp = Impairments {
        ssrc_change_at: Some((100, 0xB, 5000, 123_456)),
        ts_jump_at: Some((200, 3600 * 8000)),
        ..Default::default()
    };
    cap.add_frames(generate(&s, imp));
    let summary = replay_capture(tmp.path(), &cap, &[]);
    // No signalling: one recording for the destination, one track per SSRC.
    let ms = metas(&summary);
    assert_eq!(ms.len(), 1, "{summary:#}");
    let (_, meta) = &ms[0];
    assert_eq!(meta["source"], "rtp");
    let tracks = meta["tracks"].as_array().unwrap();
    assert_eq!(
        tracks.len(),
        2,
        "a track per SSRC on an unsignalled port: {meta:#}"
    );
    let b = track(meta, "ssrc-0000000b");
    assert_eq!(b["packets"], 200);
    assert_eq!(b["lost"], 0);
    let segs = b["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 2, "{b:#}");
    assert_eq!(segs[1]["reason"], "timestamp_jump");
    assert_eq!(
        segs[1]["gap_samples"], 0,
        "contiguous in wall time: no silence"
    );
    assert_eq!(
        b["samples"],
        200 * 160,
        "an hour's jump must not become an hour of silence"
    );
}

#[test]
fn ssrc_change_on_a_signalled_track_is_a_new_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let call = CallSpec::two_streams(
        "ssrc-1@x",
        sa("127.0.0.10:5060"),
        sa("127.0.0.1:5060"),
        Vendor::Generic,
    );
    let mut cap = Capture::new();
    let imp = Impairments {
        ssrc_change_at: Some((60, 0xBEEF, 100, 9_999)),
        ..Default::default()
    };
    siprec_call(
        &mut cap,
        &call,
        DEFAULT_START_NS,
        120,
        [imp, Impairments::default()],
    );
    let summary = replay_capture(tmp.path(), &cap, &[]);
    let (dir, meta) = &metas(&summary)[0];
    let t = track(meta, "1");
    assert_eq!(t["ssrc"], 0x1111_0000u32);
    assert_eq!(t["ssrc_changes"], 1);
    assert_eq!(t["packets"], 120);
    assert_eq!(t["lost"], 0);
    assert_eq!(t["samples"], 120 * 160);
    let segs = t["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[1]["reason"], "ssrc_change");
    assert_eq!(segs[1]["ssrc"], 0xBEEF);
    assert_eq!(segs[1]["start_sample"], 60 * 160);
    let b = wav_blocks(dir, t, Law::Ulaw);
    assert!(
        b.iter()
            .enumerate()
            .all(|(i, x)| *x == Block::Packet(i as u32)),
        "{b:?}"
    );
}

#[test]
fn vlans_qinq_and_ipv6_without_signalling() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cap = Capture::new();
    let mut v4 = StreamSpec::new(sa("127.0.0.10:20000"), sa("127.0.0.1:40100"), 1);
    v4.vlans = vec![100];
    v4.packets = 50;
    let mut qinq = StreamSpec::new(sa("127.0.0.10:20002"), sa("127.0.0.1:40102"), 2);
    qinq.vlans = vec![200, 300];
    qinq.packets = 50;
    let mut v6 = StreamSpec::new(sa("[::1]:20004"), sa("[::1]:40104"), 3);
    v6.packets = 50;
    for s in [v4, qinq, v6] {
        cap.add_frames(generate(&s, Impairments::default()));
    }
    let pcap = tmp.path().join("in.pcapng");
    cap.sorted().write_pcapng(&pcap).unwrap();
    let summary = replay(&pcap, &tmp.path().join("rec"), &[]);
    let ms = metas(&summary);
    assert_eq!(ms.len(), 3, "{summary:#}");
    for (dir, meta) in &ms {
        let t = &meta["tracks"][0];
        assert_eq!(t["packets"], 50, "{meta:#}");
        assert_eq!(t["samples"], 50 * 160);
        let b = wav_blocks(dir, t, Law::Ulaw);
        assert!(b
            .iter()
            .enumerate()
            .all(|(i, x)| *x == Block::Packet(i as u32)));
    }
    let dests: Vec<_> = ms
        .iter()
        .map(|(_, m)| m["extensions"]["destination"].as_str().unwrap().to_string())
        .collect();
    assert!(dests.contains(&"[::1]:40104".to_string()), "{dests:?}");
}

#[test]
fn garbage_is_counted_never_recorded_and_never_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cap = Capture::new();
    let mut s = StreamSpec::new(sa("127.0.0.10:20000"), sa("127.0.0.1:40200"), 9);
    s.packets = 50;
    let good = generate(&s, Impairments::default());
    let t = DEFAULT_START_NS + 500 * MS;
    let rtp_frame = good[0].frame.clone();
    cap.add_frames(good);
    cap.add_raw(t, frame::arp_frame());
    cap.add_raw(
        t + 1,
        frame::tcp_frame(sa("127.0.0.10:1234"), sa("127.0.0.1:40200")),
    );
    for len in [0, 5, 14, 20, 33, 41, 45] {
        cap.add_raw(t + 2, frame::truncated(&rtp_frame, len));
    }
    // UDP into the range that is not RTP, and UDP outside the range.
    cap.add_raw(
        t + 3,
        FrameSpec::udp(sa("127.0.0.10:20000"), sa("127.0.0.1:40200")).build(b"\x00hello"),
    );
    cap.add_raw(
        t + 4,
        FrameSpec::udp(sa("127.0.0.10:20000"), sa("127.0.0.1:9999")).build(b"\x80\x00\x00\x01"),
    );
    // An IPv4 fragment.
    let mut frag = FrameSpec::udp(sa("127.0.0.10:20000"), sa("127.0.0.1:40200"));
    frag.ipv4_fragment = Some((true, 0));
    cap.add_raw(t + 5, frag.build(&[0x80; 40]));
    // Deterministic noise.
    let mut x = 0x1234_5678u32;
    for i in 0..200 {
        let len = (i * 7) % 300;
        let noise: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        cap.add_raw(t + 6 + i as u64, noise);
    }
    let summary = replay_capture(tmp.path(), &cap, &[]);
    let d = &summary["drops"];
    assert!(d["malformed"].as_u64().unwrap() >= 7, "{d}");
    assert!(d["not_ip"].as_u64().unwrap() >= 1, "{d}");
    assert!(d["not_udp"].as_u64().unwrap() >= 1, "{d}");
    assert_eq!(d["fragment"], 1, "{d}");
    assert!(d["outside_range"].as_u64().unwrap() >= 1, "{d}");
    assert!(d["not_rtp"].as_u64().unwrap() >= 1, "{d}");
    let ms = metas(&summary);
    assert_eq!(ms.len(), 1, "garbage never makes a recording: {summary:#}");
    assert_eq!(ms[0].1["tracks"][0]["packets"], 50);
}

fn cucm_recording() -> CucmRecording {
    use mediafork_testkit::sip::CucmParty;
    CucmRecording {
        call_ids: [
            "cucm-near-1@127.0.0.20".into(),
            "cucm-far-1@127.0.0.20".into(),
        ],
        from_tags: ["n1".into(), "f1".into()],
        cucm_sip: sa("127.0.0.20:5060"),
        recorder_sip: sa("127.0.0.1:5060"),
        recorder_dn: "9999".into(),
        cluster_id: "StandAloneCluster".into(),
        near: CucmParty {
            refci: 21001,
            device: "SEP001122334455".into(),
            dn: "1001".into(),
        },
        far: CucmParty {
            refci: 21002,
            device: "SEPAABBCCDDEEFF".into(),
            dn: "5551234".into(),
        },
        phone_media: "127.0.0.21".parse().unwrap(),
        media_ports: [24000, 24002],
        answer_ports: [40500, 40502],
        recorder_media: "127.0.0.1".parse().unwrap(),
        payload_type: 0,
        rtpmap: Some("PCMU/8000".into()),
    }
}

#[test]
fn cucm_two_invites_make_one_recording_near_end_first() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = cucm_recording();
    let mut cap = Capture::new();
    let t0 = DEFAULT_START_NS;
    // The far end's INVITE arrives first; the near end is still track 0.
    for (k, which) in [CucmStream::FarEnd, CucmStream::NearEnd]
        .into_iter()
        .enumerate()
    {
        let t = t0 + k as u64 * 5 * MS;
        cap.add_sip(t, rec.cucm_sip, rec.recorder_sip, &rec.invite(which));
        cap.add_sip(t + MS, rec.recorder_sip, rec.cucm_sip, &rec.ok_200(which));
        cap.add_sip(t + 2 * MS, rec.cucm_sip, rec.recorder_sip, &rec.ack(which));
        let spec = rec.call_spec(which);
        let mut s = StreamSpec::new(
            SocketAddr::new(rec.phone_media, spec.streams[0].port),
            SocketAddr::new(rec.recorder_media, spec.answer_ports[0]),
            0x3000 + k as u32,
        );
        s.start_ns = t0 + 20 * MS;
        s.packets = 50;
        s.payload_type = rec.payload_type;
        cap.add_frames(generate(&s, Impairments::default()));
    }
    for which in [CucmStream::NearEnd, CucmStream::FarEnd] {
        cap.add_sip(
            t0 + 2_000 * MS,
            rec.cucm_sip,
            rec.recorder_sip,
            &rec.bye(which),
        );
    }
    let summary = replay_capture(tmp.path(), &cap, &[]);
    let ms = metas(&summary);
    assert_eq!(ms.len(), 1, "{summary:#}");
    let (_, meta) = &ms[0];
    assert_eq!(meta["source"], "cucm");
    assert_eq!(meta["call"]["x_refci"], rec.near.refci.to_string());
    let tracks = meta["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 2);
    let t0 = tracks.iter().find(|t| t["index"] == 0).unwrap();
    assert_eq!(
        t0["ssrc"], 0x3001,
        "track 0 is the near end's stream: {meta:#}"
    );
    assert_eq!(t0["file"], "track-0.wav");
    let cucm = &meta["extensions"]["cucm"];
    assert!(
        cucm.to_string().contains(rec.near.device.as_str()),
        "{cucm}"
    );
    assert!(cucm.to_string().contains(rec.far.dn.as_str()), "{cucm}");
}

#[test]
fn late_rtp_after_bye_never_starts_a_new_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let call = CallSpec::two_streams(
        "bye-1@x",
        sa("127.0.0.10:5060"),
        sa("127.0.0.1:5060"),
        Vendor::Generic,
    );
    let mut cap = Capture::new();
    let t_end = siprec_call(&mut cap, &call, DEFAULT_START_NS, 50, Default::default());
    let mut s = StreamSpec::new(sa("127.0.0.10:20000"), sa("127.0.0.1:40000"), 0x1111_0000);
    s.start_ns = t_end + 10 * MS;
    s.first_seq = 50;
    s.packets = 5;
    cap.add_frames(generate(&s, Impairments::default()));
    let summary = replay_capture(tmp.path(), &cap, &[]);
    assert_eq!(metas(&summary).len(), 1, "{summary:#}");
    assert_eq!(summary["drops"]["unknown_port"], 5);
    assert_eq!(track(&metas(&summary)[0].1, "1")["packets"], 50);
}

#[test]
fn call_pcap_is_readable_by_tshark() {
    let tmp = tempfile::tempdir().unwrap();
    let call = CallSpec::two_streams(
        "pcap-1@x",
        sa("127.0.0.10:5060"),
        sa("127.0.0.1:5060"),
        Vendor::Generic,
    );
    let mut cap = Capture::new();
    siprec_call(&mut cap, &call, DEFAULT_START_NS, 40, Default::default());
    let summary = replay_capture(tmp.path(), &cap, &["--write-pcap"]);
    let (dir, meta) = &metas(&summary)[0];
    assert_eq!(meta["pcap"], "call.pcap");
    let o = tool(
        "tshark",
        &[
            "-r",
            dir.join("call.pcap").to_str().unwrap(),
            "-d",
            "udp.port==40000,rtp",
            "-d",
            "udp.port==40002,rtp",
            "-T",
            "fields",
            "-e",
            "rtp.seq",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seqs: Vec<_> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(seqs.len(), 80, "{seqs:?}");
}

#[test]
fn truncated_capture_keeps_what_was_read_and_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cap = Capture::new();
    let mut s = StreamSpec::new(sa("127.0.0.10:20000"), sa("127.0.0.1:40300"), 5);
    s.packets = 100;
    cap.add_frames(generate(&s, Impairments::default()));
    let pcap = tmp.path().join("in.pcap");
    cap.sorted().write_pcap(&pcap).unwrap();
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::write(&pcap, &bytes[..bytes.len() - 100]).unwrap();
    let out = tmp.path().join("rec");
    let o = mediafork(&[
        "replay",
        "--pcap",
        pcap.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--flat",
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        summary["capture_error"]
            .as_str()
            .unwrap()
            .contains("truncated"),
        "{summary:#}"
    );
    let (_, meta) = &metas(&summary)[0];
    assert_eq!(meta["tracks"][0]["packets"], 99);
}

#[test]
fn bad_input_files_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let out = tmp.path().join("rec");
    let o = mediafork(&[
        "replay",
        "--pcap",
        junk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
    let o = mediafork(&[
        "replay",
        "--pcap",
        "/nonexistent/x.pcap",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.pcap"));
    let o = mediafork(&[
        "replay",
        "--pcap",
        junk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--rtp-ports",
        "9-5",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--rtp-ports"));
}

#[test]
fn replay_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let call = CallSpec::two_streams(
        "det-1@x",
        sa("127.0.0.10:5060"),
        sa("127.0.0.1:5060"),
        Vendor::Ribbon,
    );
    let mut cap = Capture::new();
    let imp = Impairments::default()
        .with_random_jitter(7, 200, 30 * MS as i64)
        .with_random_loss(8, 200, 1, 20);
    siprec_call(
        &mut cap,
        &call,
        DEFAULT_START_NS,
        200,
        [imp, Impairments::default()],
    );
    let pcap = tmp.path().join("in.pcap");
    cap.sorted().write_pcap(&pcap).unwrap();
    let a = replay(&pcap, &tmp.path().join("a"), &[]);
    let b = replay(&pcap, &tmp.path().join("b"), &[]);
    let (da, ma) = &metas(&a)[0];
    let (db, mb) = &metas(&b)[0];
    assert_eq!(ma["tracks"], mb["tracks"]);
    for t in ma["tracks"].as_array().unwrap() {
        let f = t["file"].as_str().unwrap();
        assert_eq!(
            std::fs::read(da.join(f)).unwrap(),
            std::fs::read(db.join(f)).unwrap(),
            "{f} differs"
        );
    }
}
