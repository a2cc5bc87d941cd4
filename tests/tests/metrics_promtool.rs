//! Prometheus monitoring end to end: scrape `/metrics` from a running
//! server during a call, check the exposition with `promtool check
//! metrics` (Debian package `prometheus`), check the values a dashboard
//! relies on, and check the alert rules with `promtool check rules` and
//! their unit tests with `promtool test rules`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use mediafork_e2e::admin::{http_get, RawCall};
use mediafork_e2e::server::{send_rtp, wait_for, RtpStream, Server, ServerOptions, Slot};

const SLOT_METRICS: Slot = Slot(25);
const PACE: Duration = Duration::from_millis(5);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

fn promtool() -> &'static str {
    let ok = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "promtool not found: install Debian's `prometheus` package (the README's test command does)"
    );
    "promtool"
}

/// The value of the series `name{labels}` (labels as written in the
/// exposition, e.g. `source="sip"`), summed over series that match.
fn value(expo: &str, name: &str, label: &str) -> Option<f64> {
    let mut found = None;
    for line in expo.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, v)) = line.rsplit_once(' ') else {
            continue;
        };
        let base = series.split('{').next().unwrap_or("");
        if base != name || !series.contains(label) {
            continue;
        }
        let v: f64 = v.parse().ok()?;
        found = Some(found.unwrap_or(0.0) + v);
    }
    found
}

fn promtool_check_metrics(expo: &str) {
    use std::io::Write;
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(expo.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{expo}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn live_scrape_passes_promtool_and_counts_the_call() {
    let port = SLOT_METRICS.sip_port() + 18;
    let opts = ServerOptions {
        args: vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")],
        ..Default::default()
    };
    let mut server = Server::start_with(SLOT_METRICS, opts);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(
        server
            .ready_line
            .contains(&format!("metrics http://127.0.0.1:{port}/metrics")),
        "{}",
        server.ready_line
    );

    let call = RawCall::place(server.sip, "metrics-1@127.0.0.1", 2, &[]);
    let mut streams: Vec<RtpStream> = call
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| RtpStream::new(*p, 0x3E7_0001 + i as u32, 0))
        .collect();
    send_rtp(&mut streams, 100, PACE);
    // Garbage to a port outside the range counts as a drop by reason.
    let refused = server.udp_client().options("metrics-opt");
    assert_eq!(refused.status(), Some(200));

    // During the call.
    let expo = wait_for(
        Duration::from_secs(10),
        "a scrape that saw the packets",
        || {
            let (status, body) = http_get(addr, "/metrics");
            assert_eq!(status, 200, "{body}");
            (value(&body, "mediafork_rx_packets_total", "worker=") >= Some(200.0)).then_some(body)
        },
    );
    promtool_check_metrics(&expo);
    assert_eq!(
        value(&expo, "mediafork_active_calls", ""),
        Some(1.0),
        "{expo}"
    );
    assert_eq!(
        value(&expo, "mediafork_active_tracks", ""),
        Some(2.0),
        "{expo}"
    );
    assert_eq!(
        value(&expo, "mediafork_calls_started_total", "source=\"sip\""),
        Some(1.0),
        "{expo}"
    );
    assert_eq!(
        value(&expo, "mediafork_sip_requests_total", "method=\"INVITE\""),
        Some(1.0),
        "{expo}"
    );
    assert_eq!(
        value(&expo, "mediafork_sip_responses_total", "code=\"200\""),
        Some(2.0),
        "INVITE and OPTIONS: {expo}"
    );
    assert_eq!(
        value(&expo, "mediafork_port_pool_in_use", ""),
        Some(4.0),
        "{expo}"
    );
    assert!(value(&expo, "mediafork_storage_free_bytes", "").unwrap_or(0.0) > 0.0);
    assert!(value(&expo, "mediafork_ring_capacity_bytes", "").unwrap_or(0.0) > 0.0);
    assert!(value(
        &expo,
        "mediafork_dropped_packets_total",
        "reason=\"ring_full\""
    )
    .is_some());
    assert!(expo.contains("mediafork_build_info{"), "{expo}");
    assert!(
        expo.contains("mediafork_writer_latency_seconds_bucket"),
        "{expo}"
    );

    // After the call: ended, its tracks' RTP statistics counted.
    assert_eq!(call.bye(), Some(200));
    let expo = wait_for(
        Duration::from_secs(10),
        "the call to be counted as ended",
        || {
            let (_, body) = http_get(addr, "/metrics");
            (value(&body, "mediafork_calls_ended_total", "") == Some(1.0)
                && value(&body, "mediafork_active_calls", "") == Some(0.0))
            .then_some(body)
        },
    );
    promtool_check_metrics(&expo);
    assert_eq!(
        value(&expo, "mediafork_rtp_jitter_seconds_count", ""),
        Some(2.0),
        "one jitter sample per track: {expo}"
    );
    assert_eq!(
        value(&expo, "mediafork_rtp_lost_packets_total", ""),
        Some(0.0)
    );
    assert!(
        value(&expo, "mediafork_writer_written_bytes_total", "").unwrap_or(0.0)
            >= 2.0 * 100.0 * 320.0,
        "{expo}"
    );
    server.stop();
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let rules = repo().join("monitoring/prometheus/alerts.yml");
    let o = Command::new(promtool())
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let tests = repo().join("monitoring/prometheus/alerts_test.yml");
    let o = Command::new(promtool())
        .args(["test", "rules"])
        .arg(&tests)
        .current_dir(repo().join("monitoring/prometheus"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
