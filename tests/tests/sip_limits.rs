//! Per-source SIP limits: `limits.max_calls_per_source` refuses a source's
//! call over its limit with 503 while another source's call goes through,
//! and malformed SIP from one source is counted but logged once per rate
//! window, while the server keeps answering.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use mediafork_e2e::admin::{http_get, RawCall};
use mediafork_e2e::server::{simple_sdp, wait_for, Server, ServerOptions, SipClient, Slot};

const SLOT_LIMITS: Slot = Slot(40);

/// A raw SIP client on another loopback address: another "source".
fn client_from(ip: &str, server: SocketAddr) -> SipClient {
    let sock = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
    let local = sock.local_addr().unwrap();
    SipClient {
        sock,
        server,
        local,
    }
}

/// The sum of the series of `name` that have every label of `labels`
/// (`key="value"`), if there is one.
fn metric(expo: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let values: Vec<f64> = expo
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[test]
fn calls_per_source_are_limited_and_malformed_sip_is_logged_once_per_window() {
    let metrics_port = SLOT_LIMITS.sip_port() + 18;
    let opts = ServerOptions {
        config: Some("[limits]\nmax_calls_per_source = 2\n".into()),
        args: vec![
            "--metrics-listen".into(),
            format!("127.0.0.1:{metrics_port}"),
        ],
        ..Default::default()
    };
    let mut server = Server::start_with(SLOT_LIMITS, opts);
    let metrics: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();

    // Two calls from 127.0.0.1 fill its quota; the third is refused.
    let a1 = RawCall::place(server.sip, "limit-a1@127.0.0.1", 1, &[]);
    let a2 = RawCall::place(server.sip, "limit-a2@127.0.0.1", 1, &[]);
    let (code, reason) = RawCall::try_place(server.sip, "limit-a3@127.0.0.1", 1);
    assert_eq!(code, Some(503), "third call from one source: {reason}");
    assert!(
        reason.contains("too many calls from this source"),
        "the reason says why: {reason:?}"
    );

    // Another source is not affected.
    let b = client_from("127.0.0.2", server.sip);
    let sdp = simple_sdp(b.local.port() + 2);
    let b1 = RawCall::place_sdp(b, "limit-b1@127.0.0.2", &sdp, &[]);
    assert_eq!(b1.ok.status(), Some(200));

    // A call that ends frees a slot of its source.
    assert_eq!(a1.bye(), Some(200));
    let a4 = RawCall::place(server.sip, "limit-a4@127.0.0.1", 1, &[]);
    for c in [&a2, &b1, &a4] {
        assert_eq!(c.bye(), Some(200));
    }
    let log = server.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refused") && l.contains("max_calls_per_source"))
        .filter(|l| l.contains("127.0.0.1"))
        .collect();
    assert_eq!(refusals.len(), 1, "the refusal is logged:\n{log}");

    // 200 malformed datagrams from one source: half too broken to answer,
    // half requests that get a 400.
    let bad = client_from("127.0.0.3", server.sip);
    let garbage = b"\x16\x03\x01 not SIP at all \xff\xfe";
    for i in 0..100 {
        bad.sock.send_to(garbage, server.sip).unwrap();
        let no_call_id = format!(
            "OPTIONS sip:srs@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-bad-{i}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            srv = server.sip,
            me = bad.local,
        );
        bad.send(&no_call_id);
    }
    // Every one is counted, and the broken requests answered.
    wait_for(
        Duration::from_secs(10),
        "200 malformed messages counted",
        || {
            let (_, expo) = http_get(metrics, "/metrics");
            let dropped = metric(
                &expo,
                "mediafork_sip_dropped_messages_total",
                &["reason=\"unparseable\""],
            )?;
            let answered = metric(
                &expo,
                "mediafork_sip_responses_total",
                &["method=\"OPTIONS\"", "code=\"400\"", "direction=\"sent\""],
            )?;
            (dropped >= 100.0 && answered >= 100.0).then_some(())
        },
    );
    let first = bad
        .recv(Duration::from_secs(2))
        .expect("a 400 to a broken request");
    assert_eq!(first.status(), Some(400), "{first:?}");

    // The server still answers, that source included.
    assert_eq!(
        server.udp_client().options("limit-opt-1").status(),
        Some(200)
    );
    let again = client_from("127.0.0.3", server.sip);
    assert_eq!(again.options("limit-opt-3").status(), Some(200));

    let from_bad = |log: &str| -> usize {
        log.lines()
            .filter(|l| l.contains("suppressed") && l.contains("127.0.0.3"))
            .count()
    };
    let log = server.log();
    assert_eq!(
        from_bad(&log),
        1,
        "one line for 200 malformed messages from one source:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("unparseable") && l.contains("127.0.0.3") && l.contains("WARN")),
        "logged at warn with the source:\n{log}"
    );

    // After the window the next one is logged with how many were not.
    std::thread::sleep(Duration::from_secs(10));
    bad.sock.send_to(garbage, server.sip).unwrap();
    let log = wait_for(Duration::from_secs(5), "the next window's line", || {
        let log = server.log();
        (from_bad(&log) == 2).then_some(log)
    });
    assert!(
        log.lines()
            .any(|l| l.contains("127.0.0.3") && l.contains("suppressed=199")),
        "the second line counts the 199 suppressed:\n{log}"
    );

    let (_, expo) = http_get(metrics, "/metrics");
    let refused = metric(
        &expo,
        "mediafork_calls_failed_total",
        &["reason=\"source_limit\""],
    );
    assert_eq!(refused, Some(1.0), "the refusal is counted:\n{expo}");
    server.stop();
}
