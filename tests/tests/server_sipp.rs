//! `mediafork run` end to end, driven by real `sipp` (scenarios in
//! `tests/sipp/`): SIPREC calls in CUBE and Acme shapes, CUCM's two
//! INVITEs, hold/resume, CANCEL, BYE, UDP retransmissions, a large TCP
//! INVITE, OPTIONS and drain, session-timer expiry and malformed requests.
//! Each test starts its own server on its own ports ([`Slot`]), sends RTP
//! from the test to the ports the recorder answered, and checks the files
//! and `meta.json` it wrote.
//!
//! Needs `sipp` (Debian `sip-tester`) and `sox`. Build the binary first:
//! `cargo build -p mediafork-control --bin mediafork`.

use std::path::Path;
use std::time::{Duration, Instant};

use mediafork_e2e::server::{
    sdp_media, send_rtp, simple_sdp, RtpStream, Server, ServerOptions, SipText, Slot,
};
use mediafork_e2e::{tool, track, wav_blocks};
use mediafork_testkit::payload::{Block, Law};
use serde_json::Value;

// One slot (block of ports) per test; see `Slot`.
const SLOT_CUBE: Slot = Slot(1);
const SLOT_ACME: Slot = Slot(2);
const SLOT_CUCM: Slot = Slot(3);
const SLOT_HOLD: Slot = Slot(4);
const SLOT_CANCEL: Slot = Slot(5);
const SLOT_BYE: Slot = Slot(6);
const SLOT_RETRANS: Slot = Slot(7);
const SLOT_TCP_LARGE: Slot = Slot(8);
const SLOT_OPTIONS: Slot = Slot(9);
const SLOT_DRAIN: Slot = Slot(10);
const SLOT_TIMER: Slot = Slot(11);
const SLOT_MALFORMED: Slot = Slot(12);
const SLOT_NO_MEDIA: Slot = Slot(41);

/// RTP pacing: one packet per stream every 5 ms (4× real time).
const PACE: Duration = Duration::from_millis(5);
/// How long a scenario pauses for RTP after logging its ports.
const RTP_WINDOW: Duration = Duration::from_millis(2500);
const LOG_WAIT: Duration = Duration::from_secs(10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Send `packets` on each stream right after the scenario logged its
/// ports, and check it all went out well inside the scenario's pause.
fn send_within_window(
    streams: &mut [RtpStream],
    packets: u32,
    logged_at: Instant,
    window: Duration,
) {
    send_rtp(streams, packets, PACE);
    let used = logged_at.elapsed();
    assert!(
        used + ms(300) < window,
        "sending RTP took {used:?} of the scenario's {window:?} pause: the machine is too loaded for this test"
    );
}

/// Track `t` holds exactly `packets` packets of stream `s`, pattern
/// indices `first..first+packets`, nothing lost and no gap.
fn assert_track_exact(dir: &Path, t: &Value, s: &RtpStream, first: u32, law: Law, codec: &str) {
    let packets = s.sent;
    assert_eq!(t["packets"], packets, "packets of {t:#}");
    assert_eq!(t["lost"], 0, "{t:#}");
    assert_eq!(t["duplicates"], 0, "{t:#}");
    assert_eq!(t["late"], 0, "{t:#}");
    assert_eq!(
        t["samples"],
        u64::from(packets) * 160,
        "samples = packets × 160: {t:#}"
    );
    assert_eq!(t["ssrc"], s.ssrc, "{t:#}");
    assert_eq!(t["codec"], codec, "{t:#}");
    assert_eq!(t["no_media"], false, "{t:#}");
    assert_eq!(t["segments"].as_array().unwrap().len(), 1, "{t:#}");
    let want: Vec<Block> = (first..first + packets)
        .map(|i| Block::Packet(i % 200))
        .collect();
    assert_eq!(
        wav_blocks(dir, t, law),
        want,
        "audio of track {}",
        t["label"]
    );
}

/// Closed cleanly: ended_at present, complete, ended by `why`.
fn assert_closed(meta: &Value, why: &str) {
    assert!(meta["ended_at"].is_string(), "ended_at: {meta:#}");
    assert_eq!(meta["complete"], true, "{meta:#}");
    assert_eq!(meta["extensions"]["ended_by"], why, "{meta:#}");
    assert_eq!(meta["errors"].as_array().map(Vec::len), Some(0), "{meta:#}");
}

/// The responses sipp received with this status and CSeq (`"2 INVITE"`), with their times.
fn traced_responses(
    run: &mediafork_e2e::server::SippRun,
    code: u16,
    cseq: &str,
) -> Vec<(f64, SipText)> {
    run.traced()
        .into_iter()
        .filter(|t| {
            !t.sent && t.message.status() == Some(code) && t.message.header("CSeq") == Some(cseq)
        })
        .map(|t| (t.at, t.message))
        .collect()
}

// 1. Cisco CUBE SIPREC: two streams with RTP, Cisco-Guid, Session-ID,
// three-part body (SDP, metadata, application/gtd).
#[test]
fn cube_siprec_call_records_two_labelled_tracks() {
    let mut server = Server::start(SLOT_CUBE);
    let mut sipp = server.sipp("cube_siprec.xml", 0).spawn();
    let ports = sipp.wait_ports("PORTS", LOG_WAIT);
    let logged = Instant::now();
    let call_id = sipp.wait_log("CALLID", LOG_WAIT)[0].clone();
    assert_eq!(ports.len(), 2);
    assert_ne!(ports[0], ports[1]);
    for p in &ports {
        assert!(
            (server.rtp.0..=server.rtp.1).contains(p),
            "port {p} outside --rtp-ports {:?}",
            server.rtp
        );
    }
    let mut streams = [
        RtpStream::new(ports[0], 0x0C1B_E001, 0),
        RtpStream::new(ports[1], 0x0C1B_E002, 0),
    ];
    send_within_window(&mut streams, 100, logged, RTP_WINDOW);
    let run = sipp.finish();
    run.assert_passed();

    let (dir, meta) = server.only_recording();
    assert_eq!(meta["schema_version"], 1);
    assert_eq!(meta["source"], "siprec");
    assert_eq!(
        meta["recording_id"].as_str(),
        dir.file_name().unwrap().to_str()
    );
    assert_eq!(meta["call"]["sip_call_id"], call_id.as_str());
    assert_eq!(
        meta["call"]["cisco_guid"],
        "2116681300-3661238766-2148922575-3797695020"
    );
    assert_eq!(
        meta["call"]["siprec_session_id"],
        "fb8GnNoqEe6AEfTP4ls6DA=="
    );
    assert_closed(&meta, "bye");
    // YYYY/MM/DD/<uuid>
    let rel = dir.strip_prefix(&server.recordings).unwrap();
    assert_eq!(
        rel.components().count(),
        4,
        "date-partitioned path: {}",
        rel.display()
    );

    let tracks = meta["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 2, "{meta:#}");
    for (i, (label, s)) in [("1", &streams[0]), ("2", &streams[1])]
        .into_iter()
        .enumerate()
    {
        let t = track(&meta, label);
        assert_eq!(t["index"], i);
        assert_eq!(t["file"], format!("track-{i}.wav"));
        assert_track_exact(&dir, t, s, 0, Law::Ulaw, "PCMU");
    }
    let parts = meta["participants"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{meta:#}");
    assert_eq!(parts[0]["aor"], "sip:+14085550100@192.0.2.50");
    assert_eq!(parts[0]["sends"], serde_json::json!(["1"]));
    assert_eq!(parts[0]["receives"], serde_json::json!(["2"]));
    assert_eq!(parts[1]["aor"], "sip:3001@198.51.100.60");
    assert_eq!(parts[1]["sends"], serde_json::json!(["2"]));
    assert_eq!(meta["metadata_files"], serde_json::json!(["metadata.xml"]));
    let md = std::fs::read_to_string(dir.join("metadata.xml")).unwrap();
    assert!(
        md.starts_with("<?xml") && md.trim_end().ends_with("</recording>"),
        "{md}"
    );
    assert!(
        !md.contains("IAM,"),
        "the application/gtd part is not metadata"
    );

    let o = tool("sox", &["--i", dir.join("track-0.wav").to_str().unwrap()]);
    let info = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "sox --i: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(info.contains("Channels       : 1"), "{info}");
    assert!(info.contains("Sample Rate    : 8000"), "{info}");
    assert!(info.contains("16-bit"), "{info}");
    assert!(info.contains("16000 samples"), "{info}");
    server.stop();
}

// 2. Oracle/Acme Packet SIPREC over TCP: pre-RFC metadata namespace,
// apkt:ucid extension, large numeric labels, PCMA.
#[test]
fn acme_siprec_call_over_tcp_keeps_ucid_and_numeric_labels() {
    let mut server = Server::start(SLOT_ACME);
    let mut sipp = server.sipp("acme_siprec.xml", 0).tcp().spawn();
    let ports = sipp.wait_ports("PORTS", LOG_WAIT);
    let logged = Instant::now();
    let mut streams = [
        RtpStream::new(ports[0], 0xACE0_0001, 8),
        RtpStream::new(ports[1], 0xACE0_0002, 8),
    ];
    send_within_window(&mut streams, 100, logged, RTP_WINDOW);
    sipp.finish().assert_passed();

    let (dir, meta) = server.only_recording();
    assert_eq!(meta["source"], "siprec");
    assert_closed(&meta, "bye");
    assert_eq!(
        meta["call"]["siprec_session_id"],
        "QUNNRS1zZXNzaW9uLTAwMDE="
    );
    assert!(meta["call"]["cisco_guid"].is_null(), "{meta:#}");
    assert_eq!(
        meta["extensions"]["apkt:ucid"], "00FA080018803B69810C3D;encoding=hex",
        "{meta:#}"
    );
    assert_eq!(meta["extensions"]["apkt:callerOrig"], "true", "{meta:#}");
    for (i, (label, s)) in [("16777227", &streams[0]), ("16777228", &streams[1])]
        .into_iter()
        .enumerate()
    {
        let t = track(&meta, label);
        assert_eq!(t["index"], i);
        assert_track_exact(&dir, t, s, 0, Law::Alaw, "PCMA");
    }
    let parts = meta["participants"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{meta:#}");
    assert_eq!(parts[0]["name"], "Alice & Co");
    assert_eq!(parts[0]["aor"], "sip:+15555550101@192.0.2.40");
    assert_eq!(parts[0]["sends"], serde_json::json!(["16777227"]));
    assert_eq!(parts[0]["receives"], serde_json::json!(["16777228"]));
    assert_eq!(parts[1]["name"], "Agent 2001");
    assert_eq!(parts[1]["sends"], serde_json::json!(["16777228"]));
    server.stop();
}

// 3. CUCM network-based recording: two plain INVITEs (far end first, then
// near end) with x-refci / x-nearend / x-farend From parameters make ONE
// recording whose track 0 is the near end.
#[test]
fn cucm_two_invites_make_one_recording_with_near_end_as_track_0() {
    let mut server = Server::start(SLOT_CUCM);
    let mut far = server
        .sipp("cucm_leg.xml", 0)
        .tcp()
        .key("leg", "farend")
        .key("refci", "25463731")
        .spawn();
    let far_port = far.wait_ports("PORTS", LOG_WAIT)[0];
    let far_logged = Instant::now();
    let far_call = far.wait_log("CALLID", LOG_WAIT)[0].clone();
    let mut near = server
        .sipp("cucm_leg.xml", 1)
        .tcp()
        .key("leg", "nearend")
        .key("refci", "25463731")
        .spawn();
    let near_port = near.wait_ports("PORTS", LOG_WAIT)[0];
    let near_call = near.wait_log("CALLID", LOG_WAIT)[0].clone();
    assert_ne!(near_port, far_port);
    let mut streams = [
        RtpStream::new(near_port, 0xCC00_0001, 0),
        RtpStream::new(far_port, 0xCC00_0002, 0),
    ];
    send_within_window(&mut streams, 100, far_logged, RTP_WINDOW);
    far.finish().assert_passed();
    near.finish().assert_passed();

    let (dir, meta) = server.only_recording();
    assert_eq!(meta["source"], "cucm");
    assert_eq!(meta["call"]["x_refci"], "25463731");
    let call_id = meta["call"]["sip_call_id"].as_str().unwrap_or_default();
    assert!(call_id == far_call || call_id == near_call, "{meta:#}");
    assert_closed(&meta, "bye");
    let tracks = meta["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 2, "{meta:#}");
    let t0 = tracks.iter().find(|t| t["index"] == 0).expect("track 0");
    let t1 = tracks.iter().find(|t| t["index"] == 1).expect("track 1");
    assert_eq!(
        t0["ssrc"], streams[0].ssrc,
        "track 0 is the near end's stream: {meta:#}"
    );
    assert_eq!(t0["file"], "track-0.wav");
    assert_eq!(t1["ssrc"], streams[1].ssrc, "{meta:#}");
    assert_eq!(t0["label"], "near", "{meta:#}");
    assert_eq!(t1["label"], "far", "{meta:#}");
    assert_eq!(tracks[0]["index"], 0, "tracks are listed by index");
    assert!(
        meta["extensions"]["cucm"].get("stream").is_none(),
        "{meta:#}"
    );
    assert_track_exact(&dir, t0, &streams[0], 0, Law::Ulaw, "PCMU");
    assert_track_exact(&dir, t1, &streams[1], 0, Law::Ulaw, "PCMU");
    let cucm = &meta["extensions"]["cucm"];
    assert_eq!(cucm["refci"], "25463731", "{cucm:#}");
    assert_eq!(cucm["near_end"]["device"], "SEP0022905C7710", "{cucm:#}");
    assert_eq!(cucm["near_end"]["addr"], "2000", "{cucm:#}");
    assert_eq!(
        cucm["near_end"]["cluster_id"], "StandAloneCluster",
        "{cucm:#}"
    );
    assert_eq!(cucm["far_end"]["device"], "SEP003094C2D343", "{cucm:#}");
    assert_eq!(cucm["far_end"]["addr"], "1000", "{cucm:#}");
    assert_eq!(cucm["far_end"]["refci"], "25463730", "{cucm:#}");
    server.stop();
}

// 4. Hold (re-INVITE a=inactive → answer a=inactive) and resume
// (a=sendonly → a=recvonly): same ports, one recording, audio from before
// and after the hold.
#[test]
fn hold_and_resume_reinvites_keep_ports_and_one_recording() {
    let mut server = Server::start(SLOT_HOLD);
    let mut sipp = server.sipp("hold_resume.xml", 0).spawn();
    let ports = sipp.wait_ports("PORTS", LOG_WAIT);
    let logged = Instant::now();
    let mut streams = [
        RtpStream::new(ports[0], 0x401D_0001, 0),
        RtpStream::new(ports[1], 0x401D_0002, 0),
    ];
    send_within_window(&mut streams, 50, logged, ms(2000));
    let hold = sipp.wait_ports("HOLD", LOG_WAIT);
    let resume = sipp.wait_ports("RESUME", LOG_WAIT);
    let resumed = Instant::now();
    assert_eq!(hold, ports, "hold answer keeps the ports");
    assert_eq!(resume, ports, "resume answer keeps the ports");
    // Timestamps and sequence numbers continue where they stopped.
    send_within_window(&mut streams, 50, resumed, ms(2000));
    let run = sipp.finish();
    run.assert_passed();

    let hold_ok = traced_responses(&run, 200, "2 INVITE");
    let resume_ok = traced_responses(&run, 200, "3 INVITE");
    assert!(
        !hold_ok.is_empty() && !resume_ok.is_empty(),
        "{}",
        run.messages
    );
    assert_eq!(
        sdp_media(&hold_ok[0].1.body),
        vec![
            (ports[0], "inactive".to_string()),
            (ports[1], "inactive".to_string())
        ],
        "hold answer:\n{}",
        hold_ok[0].1.body
    );
    assert_eq!(
        sdp_media(&resume_ok[0].1.body),
        vec![
            (ports[0], "recvonly".to_string()),
            (ports[1], "recvonly".to_string())
        ],
        "resume answer:\n{}",
        resume_ok[0].1.body
    );

    let (dir, meta) = server.only_recording();
    assert_closed(&meta, "bye");
    for (label, s) in [("1", &streams[0]), ("2", &streams[1])] {
        assert_track_exact(&dir, track(&meta, label), s, 0, Law::Ulaw, "PCMU");
    }
    server.stop();
}

// 5. CANCEL right behind the INVITE: either outcome is fine, but nothing
// stays open and the server keeps answering.
#[test]
fn cancel_right_after_invite_leaves_no_open_recording() {
    let mut server = Server::start(SLOT_CANCEL);
    let run = server.sipp("cancel.xml", 0).spawn().finish();
    run.assert_passed();
    let outcome = run.log_words("OUTCOME").expect("OUTCOME logged")[0].clone();
    let recs = server.wait_recordings(Duration::from_secs(5), |r| {
        r.iter().all(|(_, m)| m["ended_at"].is_string())
    });
    match outcome.as_str() {
        "200" => {
            assert_eq!(recs.len(), 1, "the answered INVITE made one recording");
            assert_closed(&recs[0].1, "bye");
        }
        "487" => assert!(recs.len() <= 1, "{recs:#?}"),
        o => panic!("unexpected outcome {o}"),
    }
    let ok = server.udp_client().options("after-cancel");
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    server.stop();
    for (_, m) in server.recordings() {
        assert!(m["ended_at"].is_string(), "{m:#}");
    }
}

// 6. BYE with a To tag the recorder never gave → 481, the session goes
// on; the right BYE → 200; a BYE for an unknown Call-ID → 481.
#[test]
fn bye_with_unknown_tag_or_call_id_gets_481() {
    let mut server = Server::start(SLOT_BYE);
    let run = server.sipp("bye_unknown_tag.xml", 0).spawn().finish();
    run.assert_passed();
    let bad = traced_responses(&run, 481, "2 BYE");
    assert_eq!(bad.len(), 1, "{}", run.messages);
    assert!(
        bad[0].1.reason().contains("Does Not Exist"),
        "481 reason: {:?}",
        bad[0].1.reason()
    );
    assert_eq!(
        traced_responses(&run, 200, "3 BYE").len(),
        1,
        "the real BYE ends the call: {}",
        run.messages
    );
    let (_, meta) = server.only_recording();
    assert_closed(&meta, "bye");

    let c = server.udp_client();
    let bye = c
        .request(
            "BYE",
            "no-such-call@127.0.0.1",
            "z9hG4bK-bye-unknown",
            &[],
            None,
        )
        .replacen("\r\nCall-ID:", ";tag=x\r\nCall-ID:", 1);
    let r = c.transact(&bye);
    assert_eq!(r.status(), Some(481), "{r:?}");
    server.stop();
}

// 7. UDP retransmissions: a duplicate INVITE (same branch) makes no second
// recording; the 200 is retransmitted (T1, 2·T1, ...) until the ACK.
#[test]
fn udp_invite_retransmission_and_2xx_retransmission_until_ack() {
    let mut server = Server::start(SLOT_RETRANS);
    let mut sipp = server.sipp("retransmit_2xx.xml", 0).spawn();
    let ports = sipp.wait_ports("PORTS", LOG_WAIT);
    let logged = Instant::now();
    let mut streams = [RtpStream::new(ports[0], 0x2E72_0001, 0)];
    send_within_window(&mut streams, 50, logged, RTP_WINDOW);
    let run = sipp.finish();
    run.assert_passed();

    let trace = run.traced();
    let invites: Vec<&str> = trace
        .iter()
        .filter(|t| t.sent && t.message.method() == Some("INVITE"))
        .map(|t| t.message.header("Via").unwrap())
        .collect();
    assert!(
        invites.len() >= 2,
        "the INVITE went out twice: {}",
        run.messages
    );
    assert!(
        invites.iter().all(|v| *v == invites[0]),
        "same branch: {invites:?}"
    );
    let ack_at = trace
        .iter()
        .find(|t| t.sent && t.message.method() == Some("ACK"))
        .map(|t| t.at)
        .expect("ACK sent");
    let oks = traced_responses(&run, 200, "1 INVITE");
    let first = oks[0].0;
    let tag = oks[0].1.to_tag().expect("200 has a To tag").to_string();
    for (_, m) in &oks {
        assert_eq!(
            m.to_tag(),
            Some(tag.as_str()),
            "every 200 is the same answer (same To tag)"
        );
        assert_eq!(m.body, oks[0].1.body, "every 200 carries the same SDP");
    }
    let offsets: Vec<f64> = oks.iter().map(|(t, _)| t - first).collect();
    let has = |lo: f64, hi: f64| offsets.iter().any(|o| (lo..=hi).contains(o));
    assert!(
        has(0.35, 0.8),
        "a retransmission T1 (500 ms) after the first 200: {offsets:?}"
    );
    assert!(
        has(1.25, 1.9),
        "a retransmission 2·T1 later (at 1.5 s): {offsets:?}"
    );
    let after_ack: Vec<f64> = oks
        .iter()
        .map(|(t, _)| t - ack_at)
        .filter(|d| *d > 0.1)
        .collect();
    assert!(
        after_ack.is_empty(),
        "200s kept coming after the ACK: {after_ack:?} s after it"
    );

    let (dir, meta) = server.only_recording();
    assert_closed(&meta, "bye");
    let tracks = meta["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 1, "one m-line, one track: {meta:#}");
    assert_track_exact(&dir, &tracks[0], &streams[0], 0, Law::Ulaw, "PCMU");
    server.stop();
}

/// Ribbon-style metadata (`tns:` prefix, `callData`) for a conference of
/// `participants` people, one line per element, no indentation (sipp strips
/// leading white space and ends every line with CRLF).
fn ribbon_metadata(participants: usize) -> Vec<String> {
    let sid = "UmliYm9uU2Vzc2lvbjAwMDAwMQ==";
    let mut l = vec![
        r#"<?xml version="1.0" encoding="UTF-8"?>"#.to_string(),
        r#"<tns:recording xmlns:tns="urn:ietf:params:xml:ns:recording">"#.to_string(),
        "<tns:datamode>complete</tns:datamode>".to_string(),
        r#"<tns:group group_id="UmliYm9uR3JvdXAwMDAwMDAwMQ==">"#.to_string(),
        "<tns:associate-time>2024-03-05T14:22:31.000Z</tns:associate-time>".to_string(),
        "</tns:group>".to_string(),
        format!(r#"<tns:session session_id="{sid}">"#),
        "<tns:group-ref>UmliYm9uR3JvdXAwMDAwMDAwMQ==</tns:group-ref>".to_string(),
        "<tns:start-time>2024-03-05T14:22:31.000Z</tns:start-time>".to_string(),
        "<tns:extensiondata>".to_string(),
        "<tns:callData>".to_string(),
        "<tns:gcid>0x00a1b2c3</tns:gcid>".to_string(),
        "</tns:callData>".to_string(),
        "</tns:extensiondata>".to_string(),
        "</tns:session>".to_string(),
    ];
    for i in 0..participants {
        l.push(format!(
            r#"<tns:participant participant_id="UmliYm9uUGFydGljaXBhbnQ{i:04}">"#
        ));
        l.push(format!(r#"<tns:nameID aor="+1555010{i:04}@203.0.113.5">"#));
        l.push(format!(
            "<tns:name>Conference participant {i:04}</tns:name>"
        ));
        l.push("</tns:nameID>".to_string());
        l.push("</tns:participant>".to_string());
    }
    for label in 1..=2 {
        l.push(format!(
            r#"<tns:stream stream_id="UmliYm9uU3RyZWFtMDAwMDAw{label}" session_id="{sid}">"#
        ));
        l.push(format!("<tns:label>{label}</tns:label>"));
        l.push("</tns:stream>".to_string());
    }
    for i in 0..participants {
        // Participant 0 (the agent) sends stream 1; everyone else is mixed into stream 2.
        let (send, recv) = if i == 0 { (1, 2) } else { (2, 1) };
        l.push(format!(
            r#"<tns:participantstreamassoc participant_id="UmliYm9uUGFydGljaXBhbnQ{i:04}">"#
        ));
        l.push(format!(
            "<tns:send>UmliYm9uU3RyZWFtMDAwMDAw{send}</tns:send>"
        ));
        l.push(format!(
            "<tns:recv>UmliYm9uU3RyZWFtMDAwMDAw{recv}</tns:recv>"
        ));
        l.push("</tns:participantstreamassoc>".to_string());
    }
    l.push("</tns:recording>".to_string());
    l
}

// 8. SIP over TCP with a ~20 KB SIPREC INVITE (Ribbon shape): recorded,
// metadata.xml byte-identical to what was sent.
#[test]
fn tcp_invite_with_20_kb_metadata_is_recorded() {
    let mut server = Server::start(SLOT_TCP_LARGE);
    let mut n = 40;
    let lines = loop {
        let l = ribbon_metadata(n);
        if l.iter().map(|x| x.len() + 2).sum::<usize>() >= 20 * 1024 {
            break l;
        }
        n += 5;
    };
    let expected = lines.join("\r\n");
    assert!(expected.len() >= 20 * 1024);
    let template =
        std::fs::read_to_string(mediafork_e2e::server::scenario_path("ribbon_large_tcp.xml"))
            .unwrap();
    assert!(template.contains("@@METADATA@@"));
    let scenario = server.dir.join("ribbon_large_tcp.xml");
    std::fs::write(
        &scenario,
        template.replace("@@METADATA@@", &lines.join("\n")),
    )
    .unwrap();

    let mut sipp = server.sipp(scenario.to_str().unwrap(), 0).tcp().spawn();
    let ports = sipp.wait_ports("PORTS", LOG_WAIT);
    let logged = Instant::now();
    let mut streams = [
        RtpStream::new(ports[0], 0x2B00_0001, 0),
        RtpStream::new(ports[1], 0x2B00_0002, 0),
    ];
    send_within_window(&mut streams, 50, logged, RTP_WINDOW);
    let run = sipp.finish();
    run.assert_passed();
    let invite = run
        .traced()
        .into_iter()
        .find(|t| t.sent && t.message.method() == Some("INVITE"))
        .unwrap();
    let len: usize = invite
        .message
        .header("Content-Length")
        .unwrap()
        .parse()
        .unwrap();
    assert!(len > expected.len(), "Content-Length {len}");

    let (dir, meta) = server.only_recording();
    assert_closed(&meta, "bye");
    let stored = std::fs::read(dir.join("metadata.xml")).unwrap();
    assert_eq!(stored.len(), expected.len(), "metadata.xml size");
    assert!(
        stored == expected.as_bytes(),
        "metadata.xml is the metadata part byte for byte"
    );
    assert_eq!(
        meta["participants"].as_array().unwrap().len(),
        n,
        "every participant"
    );
    assert_eq!(meta["participants"][0]["sends"], serde_json::json!(["1"]));
    assert_eq!(
        meta["participants"][n - 1]["sends"],
        serde_json::json!(["2"])
    );
    assert_eq!(
        meta["participants"][7]["name"],
        "Conference participant 0007"
    );
    assert_eq!(
        meta["call"]["siprec_session_id"],
        "UmliYm9uU2Vzc2lvbjAwMDAwMQ=="
    );
    for (label, s) in [("1", &streams[0]), ("2", &streams[1])] {
        assert_track_exact(&dir, track(&meta, label), s, 0, Law::Ulaw, "PCMU");
    }
    server.stop();
}

// 9a. OPTIONS ping → 200 with Allow, Accept and Supported.
#[test]
fn options_ping_gets_200_with_allow_accept_supported() {
    let mut server = Server::start(SLOT_OPTIONS);
    let run = server.sipp("options_ping.xml", 0).spawn().finish();
    run.assert_passed();
    let allow = run.log_words("ALLOW").expect("Allow").join(" ");
    for m in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"] {
        assert!(allow.contains(m), "Allow: {allow}");
    }
    let accept = run.log_words("ACCEPT").expect("Accept").join(" ");
    for t in [
        "application/sdp",
        "multipart/mixed",
        "application/rs-metadata+xml",
    ] {
        assert!(accept.contains(t), "Accept: {accept}");
    }
    let supported = run.log_words("SUPPORTED").expect("Supported").join(" ");
    assert!(supported.contains("timer"), "Supported: {supported}");
    assert!(server.recordings().is_empty(), "OPTIONS records nothing");
    server.stop();
}

// 9b. SIGTERM while a call is up: OPTIONS → 503, new INVITE → 503 with
// Retry-After, the call in progress still ends with BYE, exit code 0.
#[test]
fn sigterm_drains_503_for_new_calls_while_call_in_progress_ends_cleanly() {
    let mut server = Server::start(SLOT_DRAIN);
    let mut sipp = server.sipp("cube_siprec.xml", 0).spawn();
    let ports = sipp.wait_ports("PORTS", LOG_WAIT);
    let logged = Instant::now();
    let c = server.udp_client();
    assert_eq!(c.options("before-drain").status(), Some(200));
    server.sigterm();
    // The signal is handled asynchronously: poll until OPTIONS says 503.
    let mut k = 0;
    let busy = mediafork_e2e::server::wait_for(
        Duration::from_secs(2),
        "OPTIONS 503 while draining",
        || {
            k += 1;
            let r = c.options(&format!("drain-{k}"));
            (r.status() == Some(503)).then_some(r)
        },
    );
    assert!(busy.header("Retry-After").is_some(), "{busy:?}");
    let sdp = simple_sdp(30000);
    let invite = c.request(
        "INVITE",
        "drain-invite@127.0.0.1",
        "z9hG4bK-drain-invite",
        &["Supported: timer"],
        Some(("application/sdp", &sdp)),
    );
    let r = c.transact(&invite);
    assert_eq!(r.status(), Some(503), "{r:?}");
    assert!(
        r.header("Retry-After").is_some(),
        "503 to INVITE carries Retry-After: {r:?}"
    );
    assert!(
        server.exited().is_none(),
        "the server waits for the call in progress"
    );

    let mut streams = [
        RtpStream::new(ports[0], 0xD2A1_0001, 0),
        RtpStream::new(ports[1], 0xD2A1_0002, 0),
    ];
    send_within_window(&mut streams, 50, logged, RTP_WINDOW);
    sipp.finish().assert_passed();
    let st = server.wait_exit(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "clean exit after the last call: {st}");

    let (dir, meta) = server.only_recording();
    assert_closed(&meta, "bye");
    for (label, s) in [("1", &streams[0]), ("2", &streams[1])] {
        assert_track_exact(&dir, track(&meta, label), s, 0, Law::Ulaw, "PCMU");
    }
}

// 10. Session timer: Session-Expires 90;refresher=uac, never refreshed →
// after 90 − min(32, 30) = 60 s the recorder ends the recording and BYEs
// the SRC. Slow (~60 s) by nature.
#[test]
fn slow_session_timer_expiry_after_60_s_ends_recording_and_sends_bye() {
    // The defaults, stated: the 90 s interval is accepted because it is
    // not below min_se.
    let opts = ServerOptions {
        config: Some("[sip]\nmin_se = \"90s\"\n".into()),
        ..Default::default()
    };
    let mut server = Server::start_with(SLOT_TIMER, opts);
    let mut sipp = server
        .sipp("session_timer.xml", 0)
        .timeout(Duration::from_secs(100))
        .spawn();
    let ports = sipp.wait_ports("PORTS", LOG_WAIT);
    let mut streams = [
        RtpStream::new(ports[0], 0x5E55_0001, 0),
        RtpStream::new(ports[1], 0x5E55_0002, 0),
    ];
    send_rtp(&mut streams, 50, PACE);
    let run = sipp.finish();
    run.assert_passed();
    assert_eq!(run.log_words("SE").unwrap().join(" "), "90;refresher=uac");

    let trace = run.traced();
    let ok = trace
        .iter()
        .find(|t| {
            !t.sent && t.message.status() == Some(200) && t.message.cseq_method() == Some("INVITE")
        })
        .expect("200 to the INVITE");
    let bye = trace
        .iter()
        .find(|t| !t.sent && t.message.method() == Some("BYE"))
        .expect("BYE from the recorder");
    let after = bye.at - ok.at;
    assert!(
        (59.0..=63.0).contains(&after),
        "BYE {after:.2} s after the 200 OK; expected 60 s"
    );
    let b = &bye.message;
    assert_eq!(b.header("Call-ID"), ok.message.header("Call-ID"));
    assert_eq!(
        b.header("From").and_then(mediafork_e2e::server::tag_of),
        ok.message.to_tag(),
        "the BYE's From tag is the recorder's tag"
    );
    assert!(
        b.start.contains(&format!(":{}", server.slot.sipp_port(0))),
        "BYE goes to the SRC's Contact: {}",
        b.start
    );

    let (dir, meta) = server.only_recording();
    assert_closed(&meta, "session_expired");
    for (label, s) in [("1", &streams[0]), ("2", &streams[1])] {
        assert_track_exact(&dir, track(&meta, label), s, 0, Law::Ulaw, "PCMU");
    }
    server.stop();
}

// 10b. limits.no_media_timeout: the SRC sends media, then none (it lost the
// call without a BYE, or its media path broke) → the recorder ends the
// recording within 1–1.25 timeouts of the last packet and BYEs the SRC.
#[test]
fn no_media_timeout_ends_the_call_with_bye_after_the_media_stops() {
    let opts = ServerOptions {
        config: Some("[sip]\nmin_se = \"90s\"\n[limits]\nno_media_timeout = \"2s\"\n".into()),
        ..Default::default()
    };
    let mut server = Server::start_with(SLOT_NO_MEDIA, opts);
    // The session-timer scenario waits for the recorder's BYE; its own
    // timer (60 s) is far off.
    let mut sipp = server
        .sipp("session_timer.xml", 0)
        .timeout(Duration::from_secs(30))
        .spawn();
    let ports = sipp.wait_ports("PORTS", LOG_WAIT);
    let mut streams = [
        RtpStream::new(ports[0], 0x0ED1_0001, 0),
        RtpStream::new(ports[1], 0x0ED1_0002, 0),
    ];
    send_rtp(&mut streams, 50, PACE);
    let run = sipp.finish();
    run.assert_passed();
    let trace = run.traced();
    let ok = trace
        .iter()
        .find(|t| {
            !t.sent && t.message.status() == Some(200) && t.message.cseq_method() == Some("INVITE")
        })
        .expect("200 to the INVITE");
    let bye = trace
        .iter()
        .find(|t| !t.sent && t.message.method() == Some("BYE"))
        .expect("BYE from the recorder");
    // 0.25 s of media from about when the answer came, then 2–2.5 s of
    // silence (plus the writer's and the test's own delays).
    let after = bye.at - ok.at;
    assert!(
        (2.0..=4.5).contains(&after),
        "BYE {after:.2} s after the 200 OK; expected about 2.5-3 s"
    );
    assert_eq!(
        bye.message.header("Reason"),
        Some("Q.850;cause=102;text=\"no media\""),
        "{}",
        bye.message.start
    );
    let (dir, meta) = server.only_recording();
    assert_closed(&meta, "no_media");
    for (label, s) in [("1", &streams[0]), ("2", &streams[1])] {
        assert_track_exact(&dir, track(&meta, label), s, 0, Law::Ulaw, "PCMU");
    }
    server.stop();
}

// 11. Malformed or unacceptable INVITEs get the right error, and nothing
// is recorded.
#[test]
fn malformed_invites_get_400_420_415_488() {
    let mut server = Server::start(SLOT_MALFORMED);
    let c = server.udp_client();
    let sdp = simple_sdp(30000);

    let broken = c
        .request(
            "INVITE",
            "bad-cseq@127.0.0.1",
            "z9hG4bK-bad-cseq",
            &[],
            Some(("application/sdp", &sdp)),
        )
        .replace("CSeq: 1 INVITE", "CSeq: abc INVITE");
    let r = c.transact(&broken);
    assert_eq!(r.status(), Some(400), "{r:?}");
    assert!(
        r.reason().contains("CSeq"),
        "the reason names the CSeq: {:?}",
        r.reason()
    );

    let req = c.request(
        "INVITE",
        "require-foo@127.0.0.1",
        "z9hG4bK-require-foo",
        &["Require: foo"],
        Some(("application/sdp", &sdp)),
    );
    let r = c.transact(&req);
    assert_eq!(r.status(), Some(420), "{r:?}");
    assert_eq!(r.header("Unsupported"), Some("foo"), "{r:?}");

    let req = c.request(
        "INVITE",
        "text-plain@127.0.0.1",
        "z9hG4bK-text-plain",
        &[],
        Some(("text/plain", "record me, please\r\n")),
    );
    let r = c.transact(&req);
    assert_eq!(r.status(), Some(415), "{r:?}");
    assert!(
        r.header("Accept")
            .is_some_and(|a| a.contains("application/sdp")),
        "415 says what is accepted: {r:?}"
    );

    let video = "v=0\r\no=SRC 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=video 30002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=sendonly\r\n";
    let req = c.request(
        "INVITE",
        "video-only@127.0.0.1",
        "z9hG4bK-video-only",
        &[],
        Some(("application/sdp", video)),
    );
    let r = c.transact(&req);
    assert_eq!(r.status(), Some(488), "{r:?}");

    assert!(
        server.recordings().is_empty(),
        "nothing recorded: {:#?}",
        server.recordings()
    );
    assert_eq!(c.options("after-malformed").status(), Some(200));
    server.stop();
}
