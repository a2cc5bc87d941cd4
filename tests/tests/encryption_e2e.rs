//! Encryption at rest end to end: `mediafork run` with `[encryption]`
//! writes no plaintext audio, `mediafork recordings decrypt` with the
//! private key gives back WAVs holding exactly the audio sent, a wrong key
//! is refused with the key id it needs, and a `kill -9` mid-call leaves
//! chunks that decrypt (reported incomplete, exit 3) both before and after
//! the restart's crash recovery.
//!
//! Keys are made with the `openssl` command line, as an operator would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use mediafork_e2e::admin::RawCall;
use mediafork_e2e::server::{send_rtp, wait_for, RtpStream, Server, ServerOptions, Slot};
use mediafork_e2e::{mediafork, wav_blocks};
use mediafork_testkit::payload::{Block, Law};
use serde_json::Value;

const SLOT_X25519: Slot = Slot(34);
const SLOT_KILL: Slot = Slot(35);
const PACE: Duration = Duration::from_millis(5);

/// `openssl ARGS`, which must succeed.
fn openssl(args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl is needed by this test ({e})"));
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A key pair in `dir`: (private key, public key).
fn key_pair(dir: &Path, name: &str, rsa: bool) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let (k, p) = (key.to_str().unwrap(), public.to_str().unwrap());
    if rsa {
        openssl(&["genrsa", "-out", k, "2048"]);
    } else {
        openssl(&["genpkey", "-algorithm", "X25519", "-out", k]);
    }
    openssl(&["pkey", "-in", k, "-pubout", "-out", p]);
    (key, public)
}

fn options(public: &Path, recordings: Option<PathBuf>) -> ServerOptions {
    ServerOptions {
        config: Some(format!(
            "[recordings]\npcap = true\nflush_interval = \"200ms\"\n\
             [encryption]\nenabled = true\npublic_key = \"{}\"\nkey_id = \"tenant-a-2024\"\n",
            public.display()
        )),
        recordings,
        ..Default::default()
    }
}

fn streams_for(call: &RawCall, ssrc_base: u32) -> Vec<RtpStream> {
    call.ports
        .iter()
        .enumerate()
        .map(|(i, p)| RtpStream::new(*p, ssrc_base + i as u32, 0))
        .collect()
}

fn decrypt(dir: &Path, key: &Path, out: &Path) -> Output {
    mediafork(&[
        "recordings",
        "decrypt",
        dir.to_str().unwrap(),
        "--private-key",
        key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn files(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    n.sort();
    n
}

/// The pattern indices of a restored track's blocks, with silence and
/// mixed blocks as `None`.
fn packets(dir: &Path, track: &Value) -> Vec<Option<u32>> {
    wav_blocks(dir, track, Law::Ulaw)
        .into_iter()
        .map(|b| match b {
            Block::Packet(i) => Some(i),
            _ => None,
        })
        .collect()
}

#[test]
fn encrypted_recording_decrypts_to_the_audio_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = key_pair(tmp.path(), "tenant", false);
    let (other_key, _) = key_pair(tmp.path(), "other", true);
    let mut server = Server::start_with(SLOT_X25519, options(&public, None));
    let call = RawCall::place(server.sip, "sealed-1@127.0.0.1", 2, &[]);
    let mut streams = streams_for(&call, 0x5EA1_0001);
    send_rtp(&mut streams, 50, PACE);
    // Let the last packets pass the reorder window before the BYE.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(call.bye(), Some(200));
    let (dir, meta) = server.only_recording();
    server.stop();

    assert_eq!(meta["complete"], true, "{meta:#}");
    assert_eq!(meta["encryption"]["key_id"], "tenant-a-2024", "{meta:#}");
    assert_eq!(meta["encryption"]["tenant"], "default", "{meta:#}");
    assert_eq!(
        files(&dir),
        [
            "call.pcap.sealed",
            "meta.json",
            "meta.json.sealed",
            "track-0.wav.sealed",
            "track-1.wav.sealed"
        ],
        "no plaintext audio or packets on disk"
    );
    for f in ["track-0.wav.sealed", "call.pcap.sealed"] {
        let raw = std::fs::read(dir.join(f)).unwrap();
        assert!(raw.starts_with(b"MFSEAL"), "{f}");
        assert!(!raw.windows(4).any(|w| w == b"RIFF"), "{f}");
    }

    // The wrong private key: refused, naming the key id the recording needs.
    let wrong = decrypt(&dir, &other_key, &tmp.path().join("wrong"));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tenant-a-2024"), "{stderr}");

    let out = tmp.path().join("restored");
    let o = decrypt(&dir, &key, &out);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        files(&out),
        ["call.pcap", "meta.json", "track-0.wav", "track-1.wav"]
    );
    let restored: Value =
        serde_json::from_slice(&std::fs::read(out.join("meta.json")).unwrap()).unwrap();
    assert!(restored.get("encryption").is_none(), "{restored:#}");
    assert_eq!(restored["recording_id"], meta["recording_id"]);
    for t in restored["tracks"].as_array().unwrap() {
        let p = packets(&out, t);
        let sent: Vec<Option<u32>> = (0..50).map(Some).collect();
        assert_eq!(p, sent, "{}: the audio sent, in order", t["file"]);
    }
    let pcap = std::fs::read(out.join("call.pcap")).unwrap();
    assert_eq!(&pcap[..4], &0xa1b2_3c4du32.to_le_bytes());
    // 100 packets of 172 bytes (RTP) in synthetic Ethernet/IPv4/UDP frames.
    assert!(pcap.len() > 100 * 172, "{}", pcap.len());
}

#[test]
fn kill_9_mid_call_leaves_chunks_that_decrypt() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = key_pair(tmp.path(), "tenant", true);
    let recordings = tmp.path().join("recordings");
    let mut server = Server::start_with(SLOT_KILL, options(&public, Some(recordings.clone())));
    let call = RawCall::place(server.sip, "sealed-kill@127.0.0.1", 1, &[]);
    let mut streams = streams_for(&call, 0x5EA1_0100);
    // Real time, so several 200 ms flushes happen during the call.
    send_rtp(&mut streams, 60, Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(600));
    let st = Command::new("kill")
        .args(["-KILL", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    server.wait_exit(Duration::from_secs(5));
    let (dir, meta) = wait_for(Duration::from_secs(1), "the open recording", || {
        let r = server.recordings();
        (r.len() == 1).then(|| r[0].clone())
    });
    assert!(meta.get("ended_at").is_none(), "left open: {meta:#}");

    let check = |out: &Path| -> Value {
        let o = decrypt(&dir, &key, out);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(3),
            "incomplete: {stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout.contains("incomplete") && stdout.contains("chunks recovered"),
            "{stdout}"
        );
        let restored: Value =
            serde_json::from_slice(&std::fs::read(out.join("meta.json")).unwrap()).unwrap();
        let t = &restored["tracks"][0];
        let p = packets(out, t);
        // Everything flushed before the kill: at least all but the last
        // flush interval and reorder window of the 60 packets, in order.
        let audio: Vec<u32> = p.iter().flatten().copied().collect();
        assert!(
            audio.len() >= 40,
            "{} packets recovered: {p:?}",
            audio.len()
        );
        assert_eq!(audio, (0..audio.len() as u32).collect::<Vec<_>>());
        restored
    };
    let before = check(&tmp.path().join("before-recovery"));
    assert!(before.get("ended_at").is_none());

    // The restart's crash recovery closes meta.json and leaves the sealed
    // files as they were: they still decrypt, and the same.
    let sealed_before = std::fs::read(dir.join("track-0.wav.sealed")).unwrap();
    let mut server = Server::start_with(SLOT_KILL, options(&public, Some(recordings)));
    server.stop();
    assert_eq!(
        std::fs::read(dir.join("track-0.wav.sealed")).unwrap(),
        sealed_before
    );
    let closed: Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(closed["complete"], false, "{closed:#}");
    assert!(closed["ended_at"].is_string(), "{closed:#}");
    assert!(closed["tracks"][0]["samples"].as_u64().unwrap() >= 40 * 160);
    let after = check(&tmp.path().join("after-recovery"));
    assert_eq!(after["ended_at"], closed["ended_at"]);
    assert_eq!(after["complete"], false);
}

#[test]
fn config_check_refuses_unusable_keys_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (private, _) = key_pair(tmp.path(), "tenant", false);
    let cfg = tmp.path().join("mediafork.toml");
    std::fs::write(
        &cfg,
        format!(
            "[encryption]\nenabled = true\npublic_key = \"{}\"\n",
            private.display()
        ),
    )
    .unwrap();
    let o = mediafork(&["config", "check", cfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("encryption.public_key") && stderr.contains("private key"),
        "{stderr}"
    );
}
