//! `kill -9` of the recorder during 100 active calls (driven by `mediafork
//! loadgen`), then a restart: every recording already started is present,
//! every WAV is playable (sox reads it) up to its last flushed second, every
//! `meta.json` is closed and marked incomplete, and the restarted server
//! accepts a new call at once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mediafork_e2e::admin::{cli_json, RawCall};
use mediafork_e2e::server::{wait_for, Server, ServerOptions, Slot};
use mediafork_e2e::{mediafork_bin, tool};

const SLOT_CRASH: Slot = Slot(29);
/// 100 two-stream calls with RTCP need 400 ports; outside every slot's.
const PORTS: (u16, u16) = (29000, 29599);
const CALLS: usize = 100;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn options(recordings: &std::path::Path) -> ServerOptions {
    ServerOptions {
        config: Some(format!("[limits]\nmax_calls = {}\n", CALLS + 10)),
        rtp_ports: Some(PORTS),
        recordings: Some(recordings.to_path_buf()),
        ..Default::default()
    }
}

#[test]
fn kill_9_during_100_calls_then_restart_keeps_every_recording() {
    let base = tempfile::Builder::new()
        .prefix("mf-e2e-crash-")
        .tempdir()
        .unwrap();
    let recordings = base.path().join("recordings");
    let mut server = Server::start_with(SLOT_CRASH, options(&recordings));
    let admin = server.admin_url();
    let _load = Kill(
        Command::new(mediafork_bin())
            .args(["loadgen", "--target", &server.sip.to_string()])
            .args(["--calls", &CALLS.to_string(), "--rate", "100"])
            .args(["--duration", "60s", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mediafork loadgen"),
    );
    wait_for(Duration::from_secs(30), "100 active calls", || {
        (cli_json(&admin, &["status"])["active_calls"] == CALLS).then_some(())
    });
    // Every call's media started within the last second; after 3.5 s each
    // track has at least two flushed seconds on disk.
    let crash_at = Instant::now() + Duration::from_millis(3500);
    std::thread::sleep(crash_at - Instant::now());
    let st = Command::new("kill")
        .args(["-KILL", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    server.wait_exit(Duration::from_secs(5));
    drop(_load);

    let before = server.recordings();
    assert_eq!(before.len(), CALLS, "every started recording is on disk");
    assert!(before.iter().all(|(_, m)| m.get("ended_at").is_none()));
    let mut short = Vec::new();
    for (dir, meta) in &before {
        for t in meta["tracks"].as_array().unwrap() {
            let wav = dir.join(t["file"].as_str().unwrap());
            let info = tool("sox", &["--i", "-s", wav.to_str().unwrap()]);
            assert!(
                info.status.success(),
                "sox cannot read {} after kill -9: {}",
                wav.display(),
                String::from_utf8_lossy(&info.stderr)
            );
            let samples: u64 = String::from_utf8_lossy(&info.stdout)
                .trim()
                .parse()
                .unwrap();
            // At least one flushed second of audio per track.
            if samples < 8000 {
                short.push(format!("{}: {samples} samples", wav.display()));
            }
        }
    }
    assert!(
        short.is_empty(),
        "{} tracks short of a second: {short:#?}",
        short.len()
    );

    // Restart on the same recordings: all repaired and closed, incomplete.
    let t0 = Instant::now();
    let mut server = Server::start_with(SLOT_CRASH, options(&recordings));
    let call = RawCall::place(server.sip, "after-crash@127.0.0.1", 1, &[]);
    let accepted_in = t0.elapsed();
    assert!(
        accepted_in < Duration::from_secs(10),
        "first call after restart took {accepted_in:?}"
    );
    assert_eq!(call.bye(), Some(200));
    // The writer opens and closes the new call's recording after the SIP
    // answers: wait for it rather than race it.
    let after = server.wait_recordings(Duration::from_secs(10), |r| {
        r.len() == CALLS + 1 && r.iter().all(|(_, m)| m["ended_at"].is_string())
    });
    assert_eq!(after.len(), CALLS + 1);
    let repaired: Vec<_> = after
        .iter()
        .filter(|(_, m)| m["call"]["sip_call_id"] != "after-crash@127.0.0.1")
        .collect();
    assert_eq!(repaired.len(), CALLS);
    for (dir, meta) in repaired {
        assert!(meta["ended_at"].is_string(), "{}: {meta:#}", dir.display());
        assert_eq!(meta["complete"], false, "{meta:#}");
        for t in meta["tracks"].as_array().unwrap() {
            assert!(t["samples"].as_u64().unwrap() >= 8000, "{t:#}");
        }
    }
    server.stop();
}
