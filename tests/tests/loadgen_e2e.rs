//! `mediafork loadgen` against `mediafork run`: SIPREC calls in CUBE shape
//! with real-time RTP, every one answered, recorded completely and ended
//! by BYE.

use std::process::Command;

use mediafork_e2e::mediafork_bin;
use mediafork_e2e::server::{Server, Slot};
use serde_json::Value;

const SLOT_LOADGEN: Slot = Slot(27);

#[test]
fn loadgen_calls_are_all_recorded_completely() {
    let mut server = Server::start(SLOT_LOADGEN);
    let o = Command::new(mediafork_bin())
        .args(["loadgen", "--target", &server.sip.to_string()])
        // The slot's 40 ports hold 8 calls' RTP and RTCP: released ports
        // stay in quarantine (10 s), so 8 calls in all, 4 at a time.
        .args(["--calls", "4", "--total", "8", "--rate", "20"])
        .args(["--duration", "2s", "--style", "cube", "--json", "--quiet"])
        .output()
        .expect("spawn mediafork loadgen");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: Value = serde_json::from_str(&out).expect("--json summary");
    assert_eq!(summary["calls_answered"], 8, "{summary:#}");
    assert_eq!(summary["calls_completed"], 8, "{summary:#}");
    assert_eq!(summary["send_errors"], 0, "{summary:#}");
    assert_eq!(summary["packets_sent"], 8 * 2 * 100, "{summary:#}");

    let recs = mediafork_e2e::server::wait_for(
        std::time::Duration::from_secs(10),
        "8 closed recordings",
        || {
            let r = server.recordings();
            (r.len() == 8 && r.iter().all(|(_, m)| m["ended_at"].is_string())).then_some(r)
        },
    );
    for (_, meta) in &recs {
        assert_eq!(meta["source"], "siprec", "{meta:#}");
        assert_eq!(meta["complete"], true, "{meta:#}");
        assert_eq!(meta["extensions"]["ended_by"], "bye", "{meta:#}");
        let tracks = meta["tracks"].as_array().unwrap();
        assert_eq!(tracks.len(), 2, "{meta:#}");
        for t in tracks {
            assert_eq!(t["packets"], 100, "{t:#}");
            assert_eq!(t["lost"], 0, "{t:#}");
            assert_eq!(t["samples"], 100 * 160, "{t:#}");
        }
    }
    server.stop();
}
