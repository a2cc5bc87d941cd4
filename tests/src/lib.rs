//! Support for the end-to-end tests: find the `mediafork` binary, run it,
//! and read what it wrote.

pub mod admin;
pub mod server;
pub mod srtp_call;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The `mediafork` binary under test: `$MEDIAFORK_BIN`, else the one cargo
/// built next to this test executable.
pub fn mediafork_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MEDIAFORK_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/mediafork
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps");
    let bin = profile_dir.join("mediafork");
    assert!(
        bin.exists(),
        "{} does not exist: build it first with `cargo build -p mediafork-control` \
         (the README's test command does), or set MEDIAFORK_BIN",
        bin.display()
    );
    bin
}

/// Run `mediafork ARGS`, returning its output.
pub fn mediafork(args: &[&str]) -> Output {
    Command::new(mediafork_bin())
        .args(args)
        .output()
        .expect("spawn mediafork")
}

/// Run `mediafork replay --pcap CAPTURE --out OUT --flat --json EXTRA...`
/// and return the parsed summary; panics with stderr if it fails.
pub fn replay(capture: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "replay",
        "--pcap",
        capture.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--flat",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = mediafork(&args);
    assert!(
        o.status.success(),
        "mediafork {args:?} failed ({}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("replay --json prints JSON")
}

/// The `meta.json` of every recording in a replay summary, in its order.
pub fn metas(summary: &Value) -> Vec<(PathBuf, Value)> {
    summary["recordings"]
        .as_array()
        .expect("recordings array")
        .iter()
        .map(|r| {
            let dir = PathBuf::from(r["dir"].as_str().expect("dir"));
            let text = std::fs::read_to_string(dir.join("meta.json")).expect("meta.json");
            (dir, serde_json::from_str(&text).expect("meta.json is JSON"))
        })
        .collect()
}

/// The track of `meta` with label `label`.
pub fn track<'a>(meta: &'a Value, label: &str) -> &'a Value {
    meta["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .find(|t| t["label"] == label)
        .unwrap_or_else(|| panic!("no track labelled {label} in {meta:#}"))
}

/// Run an external tool that the test suite needs (installed by `.ci/run`).
pub fn tool(name: &str, args: &[&str]) -> Output {
    Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} is needed by this test ({e}); install it: apt-get install -y sox tshark")
    })
}

/// The 20 ms blocks of a track's WAV (checked to be 16-bit PCM mono
/// 8 kHz), as packet pattern indices or silence.
pub fn wav_blocks(
    dir: &Path,
    track: &Value,
    law: mediafork_testkit::payload::Law,
) -> Vec<mediafork_testkit::payload::Block> {
    let file = track["file"].as_str().expect("track file");
    let wav = mediafork_testkit::wav::read_wav(dir.join(file)).expect("readable WAV");
    assert_eq!(
        (
            wav.format_tag,
            wav.channels,
            wav.sample_rate,
            wav.bits_per_sample
        ),
        (1, 1, 8000, 16),
        "{file}: 16-bit PCM mono 8 kHz"
    );
    wav.pattern_blocks(160, law).expect("PCM samples")
}

/// Send SIGTERM to `child` and wait for it to exit, at most `timeout`;
/// returns its exit code. Panics with `what` if it does not stop in time.
pub fn sigterm_and_wait(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
    what: &str,
) -> Option<i32> {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -TERM failed");
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not stop within {timeout:?} of SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Wait (at most `timeout`) for a spawned `mediafork run` to print its
/// `mediafork: ready: ...` line on stdout (which must be piped); the line,
/// or None if it never came. Later output keeps being drained.
pub fn ready_line(child: &mut std::process::Child, timeout: std::time::Duration) -> Option<String> {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("mediafork: ready") {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(timeout).ok()
}
