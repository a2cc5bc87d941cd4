//! A SIP flood from one source (garbage and INVITEs, as fast as one
//! thread can send) is cut to that source's rate at the transport, while
//! an SBC at another address places and completes a call as usual.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediafork_e2e::admin::{http_get, RawCall};
use mediafork_e2e::server::{send_rtp, wait_for, RtpStream, Server, ServerOptions, Slot};

const SLOT_FLOOD: Slot = Slot(28);

#[test]
fn a_flooding_source_is_limited_without_hurting_other_sbcs() {
    let metrics_port = SLOT_FLOOD.sip_port() + 18;
    let opts = ServerOptions {
        args: vec![
            "--metrics-listen".into(),
            format!("127.0.0.1:{metrics_port}"),
        ],
        ..Default::default()
    };
    let mut server = Server::start_with(SLOT_FLOOD, opts);
    let target = server.sip;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            // Another loopback address: another "source".
            let sock = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
            let invite = format!(
                "INVITE sip:srs@{target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKflood\r\n\
                 From: <sip:x@127.0.0.2>;tag=f\r\nTo: <sip:srs@{target}>\r\nCall-ID: flood\r\nCSeq: 1 INVITE\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            let garbage = b"\x16\x03\x01 not SIP at all \xff\xfe".to_vec();
            // About 20,000 messages/s: twenty times the per-source limit,
            // without starving the tests running beside this one.
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..200 {
                    let msg: &[u8] = if i % 2 == 0 {
                        invite.as_bytes()
                    } else {
                        &garbage
                    };
                    if sock.send_to(msg, target).is_ok() {
                        i += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            sent.store(i, Ordering::Relaxed);
        })
    };
    std::thread::sleep(Duration::from_millis(500));

    // The SBC's call goes through promptly while the flood lasts.
    let t0 = Instant::now();
    let call = RawCall::place(server.sip, "sbc-call@127.0.0.1", 2, &[]);
    let setup = t0.elapsed();
    let mut streams: Vec<RtpStream> = call
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| RtpStream::new(*p, 0xF100_0001 + i as u32, 0))
        .collect();
    send_rtp(&mut streams, 50, Duration::from_millis(5));
    assert_eq!(call.bye(), Some(200));
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    let flood = sent.load(Ordering::Relaxed);
    assert!(
        setup < Duration::from_secs(2),
        "call setup took {setup:?} under the flood"
    );
    assert!(flood > 10_000, "the flooder sent only {flood} messages");

    let (_, meta) = wait_for(Duration::from_secs(10), "the recording to close", || {
        let r = server.recordings();
        (r.len() == 1 && r[0].1["ended_at"].is_string()).then(|| r[0].clone())
    });
    assert_eq!(meta["complete"], true, "{meta:#}");
    for t in meta["tracks"].as_array().unwrap() {
        assert_eq!(t["packets"], 50, "{t:#}");
    }

    // Most of the flood was dropped at the transport, counted, and logged
    // once (not once per message).
    let addr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let (_, expo) = http_get(addr, "/metrics");
    let dropped: f64 = expo
        .lines()
        .find(|l| l.starts_with("mediafork_sip_dropped_messages_total{reason=\"rate_limited\"}"))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no rate_limited drops counted:\n{expo}"));
    assert!(
        dropped > flood as f64 / 2.0,
        "{dropped} of {flood} flood messages dropped"
    );
    let log = server.log();
    let lines = log.matches("SIP flood").count();
    assert!(
        (1..=2).contains(&lines),
        "one flood log line per source per 10 s, got {lines}:\n{log}"
    );
    assert!(log.contains("127.0.0.2"), "the log names the source");
    server.stop();
}
