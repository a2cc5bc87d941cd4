//! The operating surface end to end: every `mediafork` CLI subcommand
//! against a running `mediafork run` through its admin API, the recording
//! controls (pause/resume/stop/start/tag) with what they leave in the WAV
//! and `meta.json`, `recordings.mode = "on_demand"`, and the call-event
//! stream.
//!
//! Calls are placed by hand over UDP ([`RawCall`]) so a test can act on a
//! call while it lasts; RTP is sent from the test.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use mediafork_e2e::admin::{cli, cli_json, RawCall};
use mediafork_e2e::server::{
    send_rtp, wait_for, RtpStream, Server, ServerOptions, Slot, STORAGE_OFF,
};
use mediafork_e2e::{mediafork_bin, wav_blocks};
use mediafork_testkit::payload::{Block, Law};
use serde_json::Value;

const SLOT_CLI: Slot = Slot(20);
const SLOT_PAUSE: Slot = Slot(21);
const SLOT_STOP: Slot = Slot(22);
const SLOT_EVENTS: Slot = Slot(23);
const SLOT_ON_DEMAND: Slot = Slot(24);

const PACE: Duration = Duration::from_millis(5);

fn streams_for(call: &RawCall, ssrc_base: u32) -> Vec<RtpStream> {
    call.ports
        .iter()
        .enumerate()
        .map(|(i, p)| RtpStream::new(*p, ssrc_base + i as u32, 0))
        .collect()
}

/// The single recording once closed.
fn closed_recording(server: &Server) -> (std::path::PathBuf, Value) {
    wait_for(Duration::from_secs(10), "the recording to close", || {
        let recs = server.recordings();
        (recs.len() == 1 && recs[0].1["ended_at"].is_string()).then(|| recs[0].clone())
    })
}

/// Wait until the workers have received `n` packets in all: controls then
/// fall exactly between packets, whatever the machine's load.
fn wait_rx(admin: &str, n: u64) {
    wait_for(
        Duration::from_secs(10),
        "the packets to be received",
        || {
            let s = cli_json(admin, &["stats"]);
            let rx: u64 = s["workers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["rx_packets"].as_u64().unwrap())
                .sum();
            (rx >= n).then_some(())
        },
    );
}

fn blocks_summary(blocks: &[Block]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for b in blocks {
        let k = match b {
            Block::Packet(_) => "audio",
            Block::Silence => "silence",
            Block::Mixed => "mixed",
        };
        match out.last_mut() {
            Some((last, n)) if last == k => *n += 1,
            _ => out.push((k.to_string(), 1)),
        }
    }
    out
}

// status, calls list/show, stats, drain/undrain, reload, recordings
// list/show, config check, and the exit codes for "not found" and "no
// server".
#[test]
fn cli_subcommands_against_a_running_server() {
    let opts = ServerOptions {
        config: Some("[limits]\nmax_calls = 100\n".into()),
        ..Default::default()
    };
    let mut server = Server::start_with(SLOT_CLI, opts);
    let admin = server.admin_url();

    let st = cli_json(&admin, &["status"]);
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"), "{st:#}");
    assert_eq!(st["backend"], "socket", "{st:#}");
    assert_eq!(st["active_calls"], 0, "{st:#}");
    assert_eq!(st["ports"]["total"], 40, "{st:#}");
    assert_eq!(st["ports"]["free"], 40, "{st:#}");
    assert_eq!(st["draining"], false, "{st:#}");
    assert_eq!(st["storage"]["state"], "ok", "{st:#}");
    assert!(st["storage"]["total_bytes"].as_u64().unwrap() > 0, "{st:#}");
    let human = cli(&admin, &["status"]).ok();
    assert!(human.stdout.contains("socket"), "{}", human.stdout);

    let call = RawCall::place(server.sip, "cli-call-1@127.0.0.1", 2, &[]);
    let mut streams = streams_for(&call, 0xC11_0001);
    send_rtp(&mut streams, 50, PACE);

    let calls = cli_json(&admin, &["calls", "list"]);
    let calls = calls.as_array().expect("array");
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0]["call_id"], call.call_id.as_str());
    assert_eq!(calls[0]["state"], "recording");
    assert_eq!(calls[0]["tracks"], 2);
    assert_eq!(calls[0]["source"], "sip");
    let rec_id = calls[0]["recording_id"].as_str().unwrap().to_string();
    let human = cli(&admin, &["calls", "list"]).ok();
    assert!(human.stdout.contains(&rec_id), "{}", human.stdout);

    let show = cli_json(&admin, &["calls", "show", &call.call_id]);
    assert_eq!(show["recording_id"], rec_id.as_str(), "{show:#}");
    let locals: Vec<String> = show["track_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["local"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        locals,
        call.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
    );
    let by_rec = cli_json(&admin, &["calls", "show", &rec_id, "--by", "recording_id"]);
    assert_eq!(by_rec["call_id"], call.call_id.as_str());
    let missing = cli(&admin, &["calls", "show", "no-such-call"]);
    assert_eq!(missing.code, Some(4), "{missing:#?}");

    let st = cli_json(&admin, &["status"]);
    assert_eq!(st["active_calls"], 1, "{st:#}");
    assert_eq!(st["ports"]["in_use"], 4, "{st:#}");

    let stats = wait_for(Duration::from_secs(5), "stats to count 100 packets", || {
        let s = cli_json(&admin, &["stats"]);
        let rx: u64 = s["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["rx_packets"].as_u64().unwrap())
            .sum();
        (rx >= 100).then_some(s)
    });
    let w0 = &stats["workers"][0];
    assert!(w0["drops"]["ring_full"].is_u64(), "{stats:#}");
    assert!(w0["ring_capacity_bytes"].as_u64().unwrap() > 0, "{stats:#}");
    let human = cli(&admin, &["stats"]).ok();
    assert!(
        human.stdout.contains("RX_PKTS") && human.stdout.contains("WRITER"),
        "{}",
        human.stdout
    );

    // drain: OPTIONS and new INVITEs get 503, the call goes on; undrain.
    let d = cli_json(&admin, &["drain"]);
    assert_eq!(d["draining"], true, "{d:#}");
    assert_eq!(d["active_calls"], 1, "{d:#}");
    let c = server.udp_client();
    assert_eq!(c.options("cli-opt-1").status(), Some(503));
    let d = cli_json(&admin, &["undrain"]);
    assert_eq!(d["draining"], false, "{d:#}");
    assert_eq!(c.options("cli-opt-2").status(), Some(200));

    // reload: a lower max_calls applies to new calls at once.
    let write =
        |text: &str| std::fs::write(server.config_path(), format!("{text}{STORAGE_OFF}")).unwrap();
    write("[limits]\nmax_calls = 1\n");
    let r = cli_json(&admin, &["reload"]);
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(
        c.options("cli-opt-3").status(),
        Some(503),
        "at capacity after reload"
    );
    write("[limits]\nmax_calls = 100\n[media]\nworkers = 7\n");
    let r = cli_json(&admin, &["reload"]);
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(
        r["needs_restart"],
        serde_json::json!(["media.workers"]),
        "{r:#}"
    );
    write("[limits]\nmax_calls = \"many\"\n");
    let bad = cli(&admin, &["reload"]);
    assert_eq!(bad.code, Some(1), "a refused reload is an error: {bad:#?}");
    assert!(bad.stderr.contains("limits.max_calls"), "{bad:#?}");

    assert_eq!(call.bye(), Some(200));
    let (_, meta) = closed_recording(&server);
    assert_eq!(meta["recording_id"], rec_id.as_str());

    let list = cli_json(&admin, &["recordings", "list", "--since", "1h"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["recording_id"], rec_id.as_str());
    assert_eq!(list[0]["complete"], true);
    assert_eq!(list[0]["tracks"], 2);
    let future = cli_json(
        &admin,
        &["recordings", "list", "--since", "2999-01-01T00:00:00Z"],
    );
    assert_eq!(future.as_array().unwrap().len(), 0);
    let shown = cli_json(&admin, &["recordings", "show", &rec_id]);
    assert_eq!(shown["tracks"].as_array().unwrap().len(), 2, "{shown:#}");
    assert_eq!(shown["call"]["sip_call_id"], call.call_id.as_str());
    let human = cli(&admin, &["recordings", "list"]).ok();
    assert!(human.stdout.contains(&rec_id), "{}", human.stdout);
    assert_eq!(cli(&admin, &["recordings", "show", "nope"]).code, Some(4));

    // `config check` is local; a good and a bad file.
    let good = server.dir.join("good.toml");
    std::fs::write(&good, "[limits]\nmax_calls = 5\n").unwrap();
    let o = Command::new(mediafork_bin())
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");

    // No server there: exit code 3 and a message saying what to do.
    let gone = cli("http://127.0.0.1:1", &["status"]);
    assert_eq!(gone.code, Some(3), "{gone:#?}");
    assert!(gone.stderr.contains("mediafork run"), "{gone:#?}");
    server.stop();
}

// pause → silence of exactly the paused packets, WAV length unchanged,
// meta.json lists the pause; resume → audio again.
#[test]
fn pause_and_resume_write_silence_of_the_paused_length() {
    let mut server = Server::start(SLOT_PAUSE);
    let admin = server.admin_url();
    let call = RawCall::place(server.sip, "pause-1@127.0.0.1", 2, &[]);
    let mut streams = streams_for(&call, 0x9A05_0001);
    send_rtp(&mut streams, 50, PACE);
    wait_rx(&admin, 100);
    let p = cli_json(
        &admin,
        &[
            "pause",
            &call.call_id,
            "--who",
            "agent-7",
            "--reason",
            "card number",
        ],
    );
    assert_eq!(p["state"], "paused", "{p:#}");
    // A second pause is refused, naming the state.
    let again = cli(&admin, &["pause", &call.call_id]);
    assert_eq!(again.code, Some(1), "{again:#?}");
    assert!(again.stderr.contains("paused"), "{again:#?}");
    send_rtp(&mut streams, 100, PACE);
    wait_rx(&admin, 300);
    let r = cli_json(&admin, &["resume", &call.call_id]);
    assert_eq!(r["state"], "recording", "{r:#}");
    send_rtp(&mut streams, 50, PACE);
    wait_rx(&admin, 400);
    assert_eq!(call.bye(), Some(200));

    let (dir, meta) = closed_recording(&server);
    assert_eq!(meta["complete"], true, "{meta:#}");
    let controls = meta["controls"].as_array().expect("controls listed");
    assert_eq!(controls.len(), 1, "{meta:#}");
    assert_eq!(controls[0]["kind"], "pause");
    assert_eq!(controls[0]["by"], "agent-7");
    assert_eq!(controls[0]["reason"], "card number");
    assert!(controls[0]["ended_at"].is_string(), "{meta:#}");
    for t in meta["tracks"].as_array().unwrap() {
        assert_eq!(
            t["samples"],
            200 * 160,
            "WAV keeps the call's length: {t:#}"
        );
        assert_eq!(t["paused_samples"], 100 * 160, "{t:#}");
        let blocks = wav_blocks(&dir, t, Law::Ulaw);
        assert_eq!(
            blocks_summary(&blocks),
            vec![
                ("audio".to_string(), 50),
                ("silence".to_string(), 100),
                ("audio".to_string(), 50)
            ],
            "{t:#}"
        );
        // The audio after the pause is the stream's own, in place.
        assert_eq!(blocks[150], Block::Packet(150));
    }
    server.stop();
}

// stop → nothing stored (the stopped time is not in the WAV); start → a
// new segment.
#[test]
fn stop_and_start_leave_the_stopped_time_out() {
    let mut server = Server::start(SLOT_STOP);
    let admin = server.admin_url();
    let call = RawCall::place(server.sip, "stop-1@127.0.0.1", 1, &[]);
    let mut streams = streams_for(&call, 0x5709_0001);
    send_rtp(&mut streams, 40, PACE);
    wait_rx(&admin, 40);
    let rec_id = cli_json(&admin, &["calls", "show", &call.call_id])["recording_id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = cli_json(&admin, &["stop", &rec_id, "--by", "recording_id"]);
    assert_eq!(s["state"], "stopped", "{s:#}");
    assert_eq!(
        cli(&admin, &["resume", &rec_id]).code,
        Some(1),
        "resume is not start"
    );
    send_rtp(&mut streams, 60, PACE);
    wait_rx(&admin, 100);
    let s = cli_json(&admin, &["start", &rec_id]);
    assert_eq!(s["state"], "recording", "{s:#}");
    send_rtp(&mut streams, 30, PACE);
    wait_rx(&admin, 130);
    assert_eq!(call.bye(), Some(200));

    let (dir, meta) = closed_recording(&server);
    let t = &meta["tracks"][0];
    assert_eq!(t["samples"], 70 * 160, "only stored audio: {t:#}");
    assert_eq!(t["stopped_packets"], 60, "{t:#}");
    let segs = t["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 2, "{t:#}");
    assert_eq!(segs[1]["reason"], "recording_start", "{t:#}");
    let blocks = wav_blocks(&dir, t, Law::Ulaw);
    assert_eq!(blocks.len(), 70);
    assert_eq!(blocks[39], Block::Packet(39));
    assert_eq!(
        blocks[40],
        Block::Packet(100),
        "audio resumes with the packet after start"
    );
    let controls = meta["controls"].as_array().unwrap();
    assert_eq!(controls.len(), 1, "{meta:#}");
    assert_eq!(controls[0]["kind"], "stop");
    server.stop();
}

// `recordings.mode = "on_demand"`: nothing stored until `start`.
#[test]
fn on_demand_mode_stores_nothing_until_start() {
    let opts = ServerOptions {
        config: Some("[recordings]\nmode = \"on_demand\"\n".into()),
        ..Default::default()
    };
    let mut server = Server::start_with(SLOT_ON_DEMAND, opts);
    let admin = server.admin_url();
    let call = RawCall::place(server.sip, "od-1@127.0.0.1", 1, &[]);
    let listed = cli_json(&admin, &["calls", "list"]);
    assert_eq!(listed[0]["state"], "stopped", "{listed:#}");
    let mut streams = streams_for(&call, 0x0D0D_0001);
    send_rtp(&mut streams, 30, PACE);
    wait_rx(&admin, 30);
    cli(&admin, &["start", &call.call_id]).ok();
    send_rtp(&mut streams, 20, PACE);
    wait_rx(&admin, 50);
    assert_eq!(call.bye(), Some(200));
    let (dir, meta) = closed_recording(&server);
    let t = &meta["tracks"][0];
    assert_eq!(t["samples"], 20 * 160, "{t:#}");
    let blocks = wav_blocks(&dir, t, Law::Ulaw);
    assert_eq!(blocks.first(), Some(&Block::Packet(30)), "{t:#}");
    assert_eq!(meta["controls"][0]["reason"], "on_demand", "{meta:#}");
    server.stop();
}

// Tags land in meta.json; the event stream reports the call's life.
#[test]
fn tags_and_the_event_stream() {
    let mut server = Server::start(SLOT_EVENTS);
    let admin = server.admin_url();
    let mut events = Command::new(mediafork_bin())
        .args(["events", "--json", "--count", "7", "--admin", &admin])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn mediafork events");
    // Let the subscriber connect before the call starts.
    std::thread::sleep(Duration::from_millis(500));

    let call = RawCall::place(server.sip, "ev-1@127.0.0.1", 2, &[]);
    let mut streams = streams_for(&call, 0xE7E7_0001);
    send_rtp(&mut streams, 20, PACE);
    let t = cli_json(
        &admin,
        &[
            "tag",
            &call.call_id,
            "agent_id=4711",
            "ucid=00001234561700000000",
        ],
    );
    assert_eq!(t["tags"]["agent_id"], "4711", "{t:#}");
    cli(&admin, &["tag", &call.call_id, "ucid="]).ok();
    let bad = cli(&admin, &["tag", &call.call_id, "not a key=1"]);
    assert_eq!(bad.code, Some(1), "{bad:#?}");
    cli(&admin, &["pause", &call.call_id]).ok();
    cli(&admin, &["resume", &call.call_id]).ok();
    assert_eq!(call.bye(), Some(200));
    let (dir, meta) = closed_recording(&server);
    assert_eq!(
        meta["tags"],
        serde_json::json!({"agent_id": "4711"}),
        "an empty value removes a tag: {meta:#}"
    );

    let out = events.stdout.take().unwrap();
    let lines: Vec<Value> = BufReader::new(out)
        .lines()
        .map(|l| serde_json::from_str(&l.expect("line")).expect("event is JSON"))
        .collect();
    let st = events.wait().expect("events exits after --count");
    assert!(st.success(), "{st:?}");
    let kinds: Vec<&str> = lines.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(!kinds.contains(&"storage_state"), "{lines:#?}");
    assert_eq!(
        kinds,
        [
            "call_started",
            "stream_added",
            "stream_added",
            "tagged",
            "tagged",
            "paused",
            "resumed"
        ],
        "{lines:#?}"
    );
    for w in lines.windows(2) {
        assert_eq!(
            w[1]["seq"].as_u64().unwrap(),
            w[0]["seq"].as_u64().unwrap() + 1
        );
    }
    assert!(lines.iter().all(
        |e| e["call_id"] == call.call_id.as_str() && e["recording_id"] == meta["recording_id"]
    ));
    assert_eq!(lines[0]["dir"], dir.display().to_string());

    // call_ended carries the recording's path and stats. Follow the stream
    // until the second call's end (events of the first call may still come).
    let mut follow = Command::new(mediafork_bin())
        .args(["events", "--json", "--admin", &admin])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let call2 = RawCall::place(server.sip, "ev-2@127.0.0.1", 1, &[]);
    assert_eq!(call2.bye(), Some(200));
    let mut seen = Vec::new();
    for line in BufReader::new(follow.stdout.take().unwrap()).lines() {
        let e: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let done = e["event"] == "call_ended" && e["call_id"] == "ev-2@127.0.0.1";
        seen.push(e);
        if done {
            break;
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    let mine: Vec<&Value> = seen
        .iter()
        .filter(|e| e["call_id"] == "ev-2@127.0.0.1")
        .collect();
    let kinds: Vec<&str> = mine.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["call_started", "stream_added", "call_ended"],
        "{seen:#?}"
    );
    let end = mine[2];
    assert_eq!(end["complete"], true, "{end:#}");
    assert_eq!(end["ended_by"], "bye", "{end:#}");
    assert!(end["dir"]
        .as_str()
        .unwrap()
        .starts_with(server.recordings.to_str().unwrap()));
    assert_eq!(end["tracks"].as_array().unwrap().len(), 1, "{end:#}");
    server.stop();
}
