//! `--pcap` writes captures that `mediafork replay` turns back into the
//! calls: SIP set-up from the INVITE and the synthesized 200 OK, every RTP
//! packet recorded, every call ended by its BYE.

use std::path::Path;
use std::time::Duration;

use mediafork_control::replay::{replay, ReplaySummary};
use mediafork_dataplane::config::DataplaneConfig;
use mediafork_loadgen::{Codec, LoadgenArgs, PortList, Style};
use mediafork_testkit::pcap::read_pcap;

fn args(pcap: &Path) -> LoadgenArgs {
    LoadgenArgs {
        target: None,
        calls: 2,
        rate: 10.0,
        duration: Duration::from_secs(2),
        total: Some(3),
        codec: Codec::Pcma,
        ptime: 20,
        style: Style::Cube,
        local_ip: None,
        sip_port: 0,
        rtp_only: None,
        pcap: Some(pcap.to_path_buf()),
        pcap_ports: "39500-43500".parse().unwrap(),
        sockets: 4,
        tx: mediafork_loadgen::TxKind::Socket,
        dpdk_eal: None,
        dpdk_port: "0".into(),
        dst_mac: None,
        json: false,
        quiet: true,
    }
}

fn replay_into(pcap: &Path, out: &Path) -> ReplaySummary {
    let config = DataplaneConfig {
        recordings_dir: out.to_path_buf(),
        date_partitions: false,
        ..DataplaneConfig::default()
    };
    replay(pcap, config).unwrap()
}

#[test]
fn replay_rebuilds_every_call() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("load.pcap");
    for style in [Style::Cube, Style::Acme, Style::Ribbon, Style::Generic] {
        let mut a = args(&pcap);
        a.style = style;
        let s = mediafork_loadgen::run(&a).unwrap();
        assert_eq!(s.mode, "pcap-sip");
        assert_eq!(s.calls_attempted, 3);
        assert_eq!(s.calls_completed, 3);
        assert_eq!(s.max_calls_up, 2, "--calls holds in simulated time too");
        assert_eq!(s.packets_sent, 3 * 2 * 100);
        // INVITE, 200, ACK, BYE, 200 per call.
        assert_eq!(s.sip_sent, 15);

        let frames = read_pcap(&pcap).unwrap();
        assert_eq!(frames.len() as u64, s.packets_sent + s.sip_sent);
        assert!(
            frames.windows(2).all(|w| w[0].0 <= w[1].0),
            "timestamps in order"
        );

        let out = tmp.path().join(format!("rec-{style:?}"));
        let r = replay_into(&pcap, &out);
        assert_eq!(r.recordings.len(), 3, "{style:?}: {r:#?}");
        for rec in &r.recordings {
            assert_eq!(rec.tracks, 2, "{rec:?}");
            assert_eq!(rec.packets, 200, "{rec:?}");
            assert_eq!(rec.lost, 0, "{rec:?}");
        }
        assert_eq!(r.rtp_recorded, 600);
        assert!(r.drops.values().all(|&d| d == 0), "{:?}", r.drops);
        assert_eq!(r.sip_malformed, 0);
    }
}

#[test]
fn captures_are_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (p1, p2) = (tmp.path().join("a.pcap"), tmp.path().join("b.pcap"));
    mediafork_loadgen::run(&args(&p1)).unwrap();
    mediafork_loadgen::run(&args(&p2)).unwrap();
    assert_eq!(std::fs::read(p1).unwrap(), std::fs::read(p2).unwrap());
}

#[test]
fn rtp_only_capture_is_auto_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("rtp.pcap");
    let mut a = args(&pcap);
    a.rtp_only = Some(PortList(vec![40000, 40002, 40004, 40006]));
    a.total = Some(2);
    let s = mediafork_loadgen::run(&a).unwrap();
    assert_eq!(s.mode, "pcap-rtp-only");
    assert_eq!(s.sip_sent, 0);
    assert_eq!(s.packets_sent, 400);
    let r = replay_into(&pcap, &tmp.path().join("rec"));
    // Unsignalled RTP: one recording per destination port.
    assert_eq!(r.recordings.len(), 4, "{r:#?}");
    assert_eq!(r.rtp_recorded, 400);
}
