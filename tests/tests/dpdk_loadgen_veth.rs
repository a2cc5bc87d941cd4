//! `mediafork loadgen --tx dpdk`: SIPREC calls whose RTP leaves through a
//! DPDK transmit queue (`net_af_packet` on one end of a veth pair) and is
//! recorded, completely, by a recorder on the other end.
//!
//! Two network namespaces made for the test: the recorder's (`v0`,
//! 10.250.41.1/30, kernel sockets) and the SRC's (`v1`, 10.250.41.2/30).
//! The loadgen's SIP goes through the kernel; its RTP frames are built by
//! the loadgen and handed to DPDK, so addresses, MACs and checksums must be
//! right for the recorder's kernel to deliver them. Needs root; fails
//! (never skips) without it.
#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use dpdk_common::{require_dpdk_binary, require_root, Namespaces, Proc, RuntimeDir};
use mediafork_e2e::mediafork_bin;
use mediafork_e2e::server::{recordings_in, wait_for};
use mediafork_testkit::payload::{Block, Law};
use serde_json::Value;

const REC_IP: &str = "10.250.41.1";
const SRC_IP: &str = "10.250.41.2";
const CALLS: u64 = 4;
/// 2 s of 20 ms packets per stream.
const PACKETS: u64 = 100;

#[test]
fn dpdk_loadgen_tx_over_af_packet_is_recorded_completely() {
    require_root("it creates network namespaces and DPDK opens an AF_PACKET socket");
    require_dpdk_binary();
    let pid = std::process::id();
    let (ns_rec, ns_src) = (format!("mflgrec-{pid}"), format!("mflgsrc-{pid}"));
    let _namespaces = Namespaces::veth_pair(
        (&ns_rec, "v0", &format!("{REC_IP}/30")),
        (&ns_src, "v1", &format!("{SRC_IP}/30")),
    );
    let mac = Command::new("ip")
        .args(["netns", "exec", &ns_rec, "cat", "/sys/class/net/v0/address"])
        .output()
        .expect("read v0's MAC");
    let rec_mac = String::from_utf8(mac.stdout).unwrap().trim().to_string();
    assert_eq!(rec_mac.len(), 17, "v0's MAC: {rec_mac:?}");

    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let config = format!(
        "[sip]\nlisten = [\"{REC_IP}:5060\"]\ntransports = [\"udp\"]\n\
         [media]\naddress = \"{REC_IP}\"\nworkers = 1\nrtp_ports = \"40000-40099\"\n\
         [recordings]\ndir = \"{}\"\ndate_partitions = false\n\
         [storage]\nwarn_free_percent = 0.0\ncritical_free_percent = 0.0\ncritical_free_bytes = 0\n",
        rec.display(),
    );
    let cfg = tmp.path().join("mediafork.toml");
    std::fs::write(&cfg, config).unwrap();
    let log_path = tmp.path().join("mediafork.log");
    let mut server = Proc(
        Command::new("ip")
            .args(["netns", "exec", &ns_rec])
            .arg(mediafork_bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(File::create(&log_path).unwrap())
            .spawn()
            .expect("spawn mediafork run in the recorder's namespace"),
    );
    if mediafork_e2e::ready_line(&mut server.0, Duration::from_secs(30)).is_none() {
        panic!(
            "mediafork run did not become ready; its log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    let runtime = RuntimeDir::new("loadgen-veth");
    let eal = runtime
        .eal_args(&["--vdev=net_af_packet0,iface=v1"])
        .join(" ");
    let o = Command::new("ip")
        .args(["netns", "exec", &ns_src])
        .arg(mediafork_bin())
        .args(["loadgen", "--target", &format!("{REC_IP}:5060")])
        .args(["--local-ip", SRC_IP, "--calls", &CALLS.to_string()])
        .args(["--rate", "20", "--duration", "2s", "--json", "--quiet"])
        .args(["--tx", "dpdk", "--dpdk-port", "net_af_packet0"])
        .args(["--dst-mac", &rec_mac, "--dpdk-eal", &eal])
        .output()
        .expect("spawn mediafork loadgen in the SRC's namespace");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "loadgen: {out}\n{err}");
    let summary: Value = serde_json::from_str(&out).expect("--json summary");
    assert_eq!(summary["tx"], "dpdk", "{summary:#}");
    assert_eq!(summary["calls_completed"], CALLS, "{summary:#}");
    assert_eq!(summary["send_errors"], 0, "{summary:#}");
    assert_eq!(summary["packets_sent"], CALLS * 2 * PACKETS, "{summary:#}");
    let port = summary["tx_port"].as_str().unwrap_or_default();
    assert!(
        port.contains(&format!("{} frames sent, 0 failed", CALLS * 2 * PACKETS)),
        "{summary:#}"
    );

    let recs = wait_for(Duration::from_secs(15), "closed recordings", || {
        let r = recordings_in(&rec);
        (r.len() == CALLS as usize && r.iter().all(|(_, m)| m["ended_at"].is_string())).then_some(r)
    });
    for (dir, meta) in &recs {
        assert_eq!(meta["source"], "siprec", "{meta:#}");
        assert_eq!(meta["complete"], true, "{meta:#}");
        let tracks = meta["tracks"].as_array().unwrap();
        assert_eq!(tracks.len(), 2, "{meta:#}");
        for t in tracks {
            assert_eq!(t["packets"], PACKETS, "every frame recorded: {t:#}");
            assert_eq!(t["lost"], 0, "{t:#}");
            assert_eq!(t["samples"], PACKETS * 160, "{t:#}");
            let blocks = mediafork_e2e::wav_blocks(dir, t, Law::Ulaw);
            assert_eq!(blocks.len(), PACKETS as usize);
            for (n, b) in blocks.iter().enumerate() {
                assert_eq!(*b, Block::Packet(n as u32), "{dir:?} block {n}");
            }
        }
    }
    let code = mediafork_e2e::sigterm_and_wait(&mut server.0, Duration::from_secs(20), "mediafork");
    assert_eq!(
        code,
        Some(0),
        "mediafork exit status; its log:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
}
