//! The storage monitor on a real, small filesystem: a tmpfs the test
//! mounts for the recordings and fills up while a call is being recorded.
//! At the critical threshold new calls and OPTIONS get 503 while the call
//! in progress keeps recording; when the disk is really full its
//! recording is closed cleanly and marked incomplete; once space is back,
//! new calls are accepted. Needs root (mount); fails (never skips)
//! without it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mediafork_e2e::admin::{cli_json, RawCall};
use mediafork_e2e::server::{send_rtp, wait_for, RtpStream, Server, ServerOptions, Slot};

const SLOT_STORAGE: Slot = Slot(26);
const PACE: Duration = Duration::from_millis(5);
const TMPFS_BYTES: u64 = 8 * 1024 * 1024;

/// A tmpfs mounted for the test's life.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, bytes: u64) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(path)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs {} failed", path.display());
        Tmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Write zeros into `path` until the filesystem is full or `limit` bytes.
fn fill(path: &Path, limit: u64) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    while n < limit {
        let want = chunk.len().min((limit - n) as usize);
        match f.write(&chunk[..want]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k as u64,
        }
    }
    let _ = f.flush();
    n
}

fn require_root() {
    let uid = Command::new("id").arg("-u").output().expect("run id");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test mounts a tmpfs and needs root (CI runs as root)"
    );
}

#[test]
fn storage_critical_refuses_new_calls_and_a_full_disk_closes_the_recording_cleanly() {
    require_root();
    let base = tempfile::Builder::new()
        .prefix("mf-e2e-storage-")
        .tempdir()
        .unwrap();
    let fs = Tmpfs::mount(&base.path().join("vol"), TMPFS_BYTES);
    let recordings = fs.path.join("recordings");
    let opts = ServerOptions {
        config: Some(
            "[storage]\nwarn_free_percent = 60.0\ncritical_free_percent = 40.0\ncritical_free_bytes = 0\n\
             check_interval = \"1s\"\n\
             [recordings]\nflush_interval = \"100ms\"\n"
                .into(),
        ),
        recordings: Some(recordings.clone()),
        ..Default::default()
    };
    let mut server = Server::start_with(SLOT_STORAGE, opts);
    let admin = server.admin_url();
    let state = |admin: &str| cli_json(admin, &["status"])["storage"]["state"].clone();
    assert_eq!(state(&admin), "ok");

    let call = RawCall::place(server.sip, "disk-1@127.0.0.1", 1, &[]);
    let mut streams = vec![RtpStream::new(call.ports[0], 0xD15C_0001, 0)];
    send_rtp(&mut streams, 50, PACE);

    // Leave about 30% free: below the critical threshold.
    let filler = fs.path.join("filler-1");
    fill(&filler, TMPFS_BYTES * 70 / 100);
    wait_for(Duration::from_secs(10), "storage state critical", || {
        (state(&admin) == "critical").then_some(())
    });
    let c = server.udp_client();
    let opt = c.options("disk-opt-1");
    assert_eq!(opt.status(), Some(503), "{opt:?}");
    let refused = RawCall::try_place(server.sip, "disk-2@127.0.0.1", 1);
    assert_eq!(
        refused.0,
        Some(503),
        "new call at critical: {:?}",
        refused.1
    );
    assert!(
        refused.1.contains("disk"),
        "reason names the disk: {}",
        refused.1
    );
    // The call in progress still records.
    send_rtp(&mut streams, 50, PACE);
    let st = cli_json(&admin, &["status"]);
    assert_eq!(st["active_calls"], 1, "{st:#}");
    assert_eq!(
        st["refusing_because"],
        serde_json::json!(["storage_critical"])
    );

    // Really full: the WAV cannot grow any more.
    let filler2 = fs.path.join("filler-2");
    fill(&filler2, TMPFS_BYTES);
    send_rtp(&mut streams, 100, PACE);
    wait_for(Duration::from_secs(10), "a writer I/O error", || {
        let s = cli_json(&admin, &["stats"]);
        let errors: u64 = s["writers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["io_errors"].as_u64().unwrap())
            .sum();
        (errors > 0).then_some(())
    });
    // Some room again for meta.json, then the call ends.
    std::fs::remove_file(&filler2).unwrap();
    assert_eq!(call.bye(), Some(200));
    let (dir, meta) = wait_for(Duration::from_secs(10), "the recording to close", || {
        let recs = server.recordings();
        (recs.len() == 1 && recs[0].1["ended_at"].is_string()).then(|| recs[0].clone())
    });
    assert_eq!(meta["complete"], false, "{meta:#}");
    let errors = meta["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| {
            let e = e.as_str().unwrap();
            e.contains("track-0.wav") && e.contains("No space left")
        }),
        "{meta:#}"
    );
    // What was on disk before it filled is a valid, playable WAV: at least
    // the first 50 packets (flushed long before). How much more depends on
    // where in a write the last free page ran out (tmpfs fills by pages).
    let samples = meta["tracks"][0]["samples"].as_u64().unwrap();
    assert!((50 * 160..200 * 160).contains(&samples), "{meta:#}");
    let wav = mediafork_testkit::wav::read_wav(dir.join("track-0.wav")).expect("readable WAV");
    assert_eq!(wav.data.len() as u64, samples * 2);

    // Space is back: the monitor leaves critical and calls are accepted.
    std::fs::remove_file(&filler).unwrap();
    wait_for(Duration::from_secs(10), "storage state ok", || {
        (state(&admin) == "ok").then_some(())
    });
    assert_eq!(c.options("disk-opt-2").status(), Some(200));
    let again = RawCall::place(server.sip, "disk-3@127.0.0.1", 1, &[]);
    assert_eq!(again.bye(), Some(200));
    server.stop();
    drop(fs);
}
