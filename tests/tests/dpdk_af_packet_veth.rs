//! `mediafork run --backend dpdk` receiving a live SIPREC call's RTP through
//! DPDK's `net_af_packet` driver on one end of a veth pair.
//!
//! Two network namespaces made for the test: the recorder's (`v0`,
//! 10.250.7.1/30) and the SRC's (`v1`, 10.250.7.2/30), so traffic really
//! crosses the veth pair. SIP goes to the recorder's kernel socket on v0;
//! RTP is read off v0 by DPDK. sipp places the call (tests/sipp's scenario,
//! with both answered ports logged and a longer pause), the test sends RTP
//! to the answered ports from the SRC's namespace, and the recording must
//! hold every packet. Needs root; fails (never skips) without it.
#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dpdk_common::{require_dpdk_binary, require_root, Namespaces, Proc, RuntimeDir};
use mediafork_e2e::mediafork_bin;
use mediafork_testkit::payload::{Block, Law};
use mediafork_testkit::stream::{Impairments, StreamSpec};
use mediafork_testkit::wav::read_wav;
use serde_json::Value;

const REC_IP: &str = "10.250.7.1";
const SRC_IP: &str = "10.250.7.2";
/// RTP packets per stream.
const PACKETS: u32 = 100;

/// A UDP socket bound in network namespace `ns`: a thread enters the
/// namespace (setns affects only the calling thread) and opens it there;
/// the socket stays in that namespace wherever it is used from.
fn udp_socket_in(ns: &str, bind: SocketAddr) -> UdpSocket {
    let path = PathBuf::from("/var/run/netns").join(ns);
    std::thread::spawn(move || {
        let f = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("setns into the SRC's namespace");
        UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind} in the SRC namespace: {e}"))
    })
    .join()
    .expect("namespace thread")
}

/// tests/sipp/siprec_basic.xml, changed to log both answered ports and to
/// hold the call for 3 s so the RTP is sent well before the BYE.
fn scenario(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sipp/siprec_basic.xml");
    let text = std::fs::read_to_string(&src).expect("read the sipp scenario");
    let one_port =
        r#"<ereg regexp="m=audio ([0-9]+)" search_in="body" check_it="true" assign_to="p1"/>"#;
    let two_ports = r#"<ereg regexp="m=audio ([0-9]+).*m=audio ([0-9]+)" search_in="body" check_it="true" assign_to="all,p1,p2"/>"#;
    assert!(
        text.contains(one_port),
        "scenario changed: update this test"
    );
    let text = text
        .replace(one_port, two_ports)
        .replace(
            r#"<log message="PORTS [$p1]"/>"#,
            r#"<log message="PORTS [$p1] [$p2] [$all]"/>"#,
        )
        .replace(
            r#"<pause milliseconds="1000"/>"#,
            r#"<pause milliseconds="3000"/>"#,
        );
    let out = dir.join("siprec_two_ports.xml");
    std::fs::write(&out, text).unwrap();
    out
}

/// Waits for `PORTS a b` in sipp's log.
fn answered_ports(log: &Path, sipp: &mut Child) -> (u16, u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(log) {
            if let Some(rest) = text.lines().find_map(|l| l.strip_prefix("PORTS ")) {
                let mut it = rest.split_whitespace().map(|p| p.parse::<u16>());
                if let (Some(Ok(a)), Some(Ok(b))) = (it.next(), it.next()) {
                    return (a, b);
                }
            }
        }
        if let Ok(Some(status)) = sipp.try_wait() {
            panic!(
                "sipp ended ({status}) before the call was answered; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no answer logged by sipp within 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn recordings(dir: &Path) -> Vec<(PathBuf, Value)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("meta.json")).ok()?;
            Some((e.path(), serde_json::from_str(&text).ok()?))
        })
        .collect()
}

#[test]
fn dpdk_af_packet_veth_live_siprec_call() {
    require_root("it creates network namespaces and DPDK opens an AF_PACKET socket");
    require_dpdk_binary();
    let pid = std::process::id();
    let (ns_rec, ns_src) = (format!("mfrec-{pid}"), format!("mfsrc-{pid}"));
    let _namespaces = Namespaces::veth_pair(
        (&ns_rec, "v0", &format!("{REC_IP}/30")),
        (&ns_src, "v1", &format!("{SRC_IP}/30")),
    );

    let runtime = RuntimeDir::new("af-packet-veth");
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let eal: Vec<String> = runtime.eal_args(&["--vdev=net_af_packet0,iface=v0"]);
    let config = format!(
        "[sip]\nlisten = [\"{REC_IP}:5060\"]\ntransports = [\"udp\"]\n\
         [media]\naddress = \"{REC_IP}\"\nbackend = \"dpdk\"\nworkers = 1\nrtp_ports = \"40000-40099\"\n\
         [recordings]\ndir = \"{}\"\ndate_partitions = false\n\
         [storage]\nwarn_free_percent = 0.0\ncritical_free_percent = 0.0\ncritical_free_bytes = 0\n\
         [dpdk]\nport = \"net_af_packet0\"\nmempool_mbufs = 4095\nmempool_cache = 128\neal_args = {}\n",
        rec.display(),
        serde_json::to_string(&eal).unwrap(),
    );
    let cfg = tmp.path().join("mediafork.toml");
    std::fs::write(&cfg, config).unwrap();

    let log_path = tmp.path().join("mediafork.log");
    let mut server = Proc(
        Command::new("ip")
            .args(["netns", "exec", &ns_rec])
            .arg(mediafork_bin())
            .args(["--log-format", "json", "run", "--config"])
            .arg(&cfg)
            .env("MEDIAFORK_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(File::create(&log_path).unwrap())
            .spawn()
            .expect("spawn mediafork run in the recorder's namespace"),
    );
    if mediafork_e2e::ready_line(&mut server.0, Duration::from_secs(30)).is_none() {
        panic!(
            "mediafork run --backend dpdk did not become ready; its log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    let scen = scenario(tmp.path());
    let sipp_log = tmp.path().join("sipp.log");
    let mut sipp = Proc(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns_src,
                "sipp",
                &format!("{REC_IP}:5060"),
                "-sf",
            ])
            .arg(&scen)
            .args([
                "-m",
                "1",
                "-i",
                SRC_IP,
                "-p",
                "5070",
                "-trace_logs",
                "-log_file",
            ])
            .arg(&sipp_log)
            .args(["-timeout", "30", "-nostdin"])
            .current_dir(tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp is needed by this test: apt-get install -y sip-tester"),
    );
    let (p1, p2) = answered_ports(&sipp_log, &mut sipp.0);

    // RTP for both streams from the SRC's side, paced at 1 ms.
    let mut sent = 0;
    for (i, port) in [p1, p2].into_iter().enumerate() {
        let from: SocketAddr = format!("{SRC_IP}:{}", 21_000 + 2 * i).parse().unwrap();
        let to: SocketAddr = format!("{REC_IP}:{port}").parse().unwrap();
        let sock = udp_socket_in(&ns_src, from);
        let spec = StreamSpec::new(from, to, 0x5150_0000 + i as u32);
        for n in 0..PACKETS {
            let pkt = spec.rtp_packet(n, &Impairments::default()).to_bytes();
            sock.send_to(&pkt, to).expect("send RTP");
            sent += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(sent, 2 * PACKETS);

    let status = sipp.0.wait().expect("wait for sipp");
    assert!(
        status.success(),
        "the sipp call failed ({status}); its log:\n{}",
        std::fs::read_to_string(&sipp_log).unwrap_or_default()
    );
    // The BYE closed the recording: wait for its final meta.json.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (dir, meta) = loop {
        let recs = recordings(&rec);
        if let Some(r) = recs.into_iter().find(|(_, m)| m["ended_at"].is_string()) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the recording was not closed after the BYE"
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    // A clean stop: SIGTERM, exit 0, port counters in the log.
    let code = mediafork_e2e::sigterm_and_wait(&mut server.0, Duration::from_secs(20), "mediafork");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(code, Some(0), "mediafork exit status; its log:\n{log}");

    assert_eq!(meta["source"], "siprec", "{meta:#}");
    assert_eq!(meta["complete"], true, "{meta:#}");
    let tracks = meta["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 2, "{meta:#}");
    for (i, t) in tracks.iter().enumerate() {
        assert_eq!(t["ssrc"], 0x5150_0000u32 + i as u32, "{meta:#}");
        assert_eq!(
            t["packets"], PACKETS,
            "track {i}: every RTP packet recorded\n{meta:#}"
        );
        assert_eq!(t["lost"], 0, "{meta:#}");
        assert_eq!(t["samples"], PACKETS * 160, "{meta:#}");
        let wav = read_wav(dir.join(t["file"].as_str().unwrap())).unwrap();
        let blocks = wav.pattern_blocks(160, Law::Ulaw).unwrap();
        assert_eq!(blocks.len(), PACKETS as usize);
        for (n, b) in blocks.iter().enumerate() {
            assert_eq!(*b, Block::Packet(n as u32), "track {i} block {n}");
        }
    }

    // The media came through DPDK: the log names the port, and its counters
    // saw at least the RTP (plus SIP and ARP, which the worker drops).
    let events: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let field = |msg: &str, f: &str| -> Option<Value> {
        events
            .iter()
            .find(|e| e["fields"]["message"] == msg)
            .map(|e| e["fields"][f].clone())
    };
    assert_eq!(
        field("mediafork recording server started", "backend"),
        Some(Value::from("dpdk:net_af_packet0")),
        "{log}"
    );
    let ipackets = field("DPDK port totals", "ipackets")
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("no DPDK port totals in the log:\n{log}"));
    assert!(
        ipackets >= u64::from(2 * PACKETS),
        "ipackets {ipackets}\n{log}"
    );
    assert_eq!(
        field("DPDK port totals", "imissed"),
        Some(Value::from(0)),
        "{log}"
    );
}
