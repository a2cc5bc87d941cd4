//! mediafork as the system under test: `mediafork run` (release build) with
//! the socket backend, in a fresh directory, and what its `meta.json` files
//! say was recorded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The release binary built with `--features dpdk`: `MEDIAFORK_DPDK_BIN`,
/// else [`find_binary`]'s, if its `--version` names DPDK.
pub fn find_dpdk_binary() -> Result<PathBuf, String> {
    let p = match std::env::var("MEDIAFORK_DPDK_BIN") {
        Ok(p) => PathBuf::from(p),
        Err(_) => find_binary()?,
    };
    let v = std::process::Command::new(&p)
        .arg("--version")
        .output()
        .map_err(|e| format!("{}: {e}", p.display()))?;
    if String::from_utf8_lossy(&v.stdout).contains("dpdk") {
        Ok(p)
    } else {
        Err(format!(
            "{} was built without DPDK: `cargo build --release -p mediafork-control --features dpdk`, or set MEDIAFORK_DPDK_BIN",
            p.display()
        ))
    }
}

/// The release binary: `MEDIAFORK_BIN`, else `target/release/mediafork`
/// under `CARGO_TARGET_DIR` or the workspace.
pub fn find_binary() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("MEDIAFORK_BIN") {
        return Ok(PathBuf::from(p));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let p = target.join("release").join("mediafork");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: run `cargo build --release -p mediafork-control` first (same CARGO_TARGET_DIR), or set MEDIAFORK_BIN",
            p.display()
        ))
    }
}

/// The configuration file of a run: one worker and one writer (they share
/// the SUT's core with the control loop), storage thresholds off, the call
/// limit and track table above `calls`, no port quarantine (the instance
/// is fresh for each step), UDP SIP only.
pub fn config(calls: u32, worker_core: usize, rcvbuf: usize) -> String {
    config_with(calls, worker_core, rcvbuf, "socket", "")
}

/// [`config`] with `media.backend` = `backend` and `extra` (more tables,
/// e.g. `[dpdk]`) appended.
pub fn config_with(
    calls: u32,
    worker_core: usize,
    rcvbuf: usize,
    backend: &str,
    extra: &str,
) -> String {
    format!(
        r#"[sip]
transports = ["udp"]

[media]
backend = "{backend}"
workers = 1
writers = 1
worker_cores = [{worker_core}]
port_quarantine = "0s"
max_tracks = {tracks}
socket_rcvbuf = {rcvbuf}

[recordings]
date_partitions = false

[limits]
max_calls = {max_calls}

[storage]
warn_free_percent = 0
critical_free_percent = 0
critical_free_bytes = 0

[shutdown]
grace_period = "5s"

[log]
level = "warn"
{extra}"#,
        tracks = (4 * calls).max(1024),
        max_calls = calls + 16,
    )
}

/// Wait for the admin API's `/v1/health`.
pub fn wait_ready(admin: &str, secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match http_get(admin, "/v1/health") {
            Ok(body) if body.contains("true") => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(format!("mediafork's admin API on {admin} did not come up"))
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// GET `path` from the admin API; the response body.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// What the recordings under `dir` say.
#[derive(Debug, Default)]
pub struct Recorded {
    pub recordings: u64,
    pub complete: u64,
    pub packets: u64,
    pub lost: u64,
    pub min_track_packets: u64,
}

pub fn read_recordings(dir: &Path) -> Recorded {
    let mut r = Recorded {
        min_track_packets: u64::MAX,
        ..Default::default()
    };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.file_name() != Some(std::ffi::OsStr::new("meta.json")) {
                continue;
            }
            let Some(meta) = std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            else {
                r.recordings += 1;
                continue;
            };
            r.recordings += 1;
            if meta["complete"].as_bool() == Some(true) {
                r.complete += 1;
            }
            for t in meta["tracks"].as_array().into_iter().flatten() {
                let n = t["packets"].as_u64().unwrap_or(0);
                r.packets += n;
                r.lost += t["lost"].as_u64().unwrap_or(0);
                r.min_track_packets = r.min_track_packets.min(n);
            }
        }
    }
    if r.min_track_packets == u64::MAX {
        r.min_track_packets = 0;
    }
    r
}
