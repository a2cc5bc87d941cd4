use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use mediafork_dataplane::stats::Counters;
use mediafork_dataplane::DropReason;
use metrics_exporter_prometheus::PrometheusRecorder;

use super::names::{self, Kind};
use super::*;

const DASHBOARD: &str = include_str!("../../../monitoring/grafana/mediafork-dashboard.json");
const ALERTS: &str = include_str!("../../../monitoring/prometheus/alerts.yml");
const ALERTS_TEST: &str = include_str!("../../../monitoring/prometheus/alerts_test.yml");
const MODULE_DOC: &str = include_str!("mod.rs");

fn recorder() -> PrometheusRecorder {
    builder().build_recorder()
}

/// Run `f` against a fresh local recorder and return the exposition.
fn render_with(f: impl FnOnce()) -> String {
    let rec = recorder();
    let handle = rec.handle();
    metrics::with_local_recorder(&rec, || {
        describe_all();
        f();
    });
    handle.render()
}

fn counters(base: u64) -> Counters {
    let mut c = Counters {
        rx_packets: base,
        rx_bytes: base * 200,
        recorded: base - 10,
        rtcp: 3,
        ..Counters::default()
    };
    for r in DropReason::ALL {
        c.drops[r.index()] = r.index() as u64 + 1;
    }
    c
}

/// A snapshot with every field set.
fn full_snapshot() -> Snapshot {
    Snapshot {
        backend: "dpdk:0000:3b:00.0".into(),
        workers: vec![
            WorkerSnapshot {
                worker: 0,
                counters: counters(100),
            },
            WorkerSnapshot {
                worker: 1,
                counters: counters(1000),
            },
        ],
        rings: vec![
            RingOccupancy {
                worker: 0,
                writer: 0,
                used_bytes: 4096,
                capacity_bytes: 1 << 20,
            },
            RingOccupancy {
                worker: 1,
                writer: 0,
                used_bytes: 0,
                capacity_bytes: 1 << 20,
            },
        ],
        writers: vec![WriterSnapshot {
            writer: 0,
            records: 1090,
            bytes_written: 123_456,
            io_errors: 2,
            open_calls: 5,
        }],
        nic: Some(crate::admin::api::NicStats {
            port: "0000:3b:00.0".into(),
            driver: "net_ice".into(),
            ipackets: 1200,
            ibytes: 240_000,
            imissed: 17,
            ierrors: 1,
            rx_nombuf: 4,
            queues: vec![
                crate::admin::api::NicQueueStats {
                    queue: 0,
                    packets: 600,
                    bytes: 120_000,
                    errors: 1,
                },
                crate::admin::api::NicQueueStats {
                    queue: 1,
                    packets: 600,
                    bytes: 120_000,
                    errors: 0,
                },
            ],
        }),
        active_calls: 5,
        active_tracks: 10,
        active_dialogs: 6,
        ports: PortPoolSnapshot {
            free: 3990,
            free_pairs: 1995,
            in_use: 8,
            quarantined: 2,
            total: 4000,
        },
        storage: Some(StorageSnapshot {
            free_bytes: 50 << 30,
            total_bytes: 100 << 30,
            level: StorageLevel::Warning,
        }),
        draining: true,
    }
}

fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    h.record_n(50_000, 10).unwrap(); // 50 µs
    h.record_n(2_000_000, 3).unwrap(); // 2 ms
    h.record(3_000_000_000).unwrap(); // 3 s
    h
}

/// Every publishing function, once.
fn exercise_everything() {
    publish(&full_snapshot());
    sip_request("INVITE");
    sip_request("invite");
    sip_request("FROB");
    sip_request_sent("BYE");
    sip_response("INVITE", 200);
    sip_response("INVITE", 503);
    sip_response("INVITE", 503);
    sip_response_received("BYE", 481);
    sip_dropped("rate_limited");
    call_started("siprec");
    call_started("cucm");
    call_ended("siprec", "bye");
    call_failed("sip", "no_ports");
    track_ended(0.004, 3, 1, 2, 0);
    track_ended(0.25, 0, 0, 0, 1);
    writer_latency(&latency_histogram());
    storage_transition("warning");
    recordings_deleted(7);
    build_info("socket");
    metrics::gauge!(names::START_TIME_SECONDS).set(1.7e9);
}

/// The sample lines of `name` (exact family, no histogram suffixes).
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

/// The value of the sample of `name` whose labels include every one of
/// `labels` (`k="v"`), or a panic listing what there is.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&str> = samples(text, name)
        .into_iter()
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{name} {labels:?}: expected one sample, found {found:?} in\n{}",
        samples(text, name).join("\n")
    );
    found[0].rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn publish_renders_worker_counters_and_drops() {
    let text = render_with(|| publish(&full_snapshot()));
    assert_eq!(value(&text, names::RX_PACKETS, &[("worker", "0")]), 100.0);
    assert_eq!(value(&text, names::RX_PACKETS, &[("worker", "1")]), 1000.0);
    assert_eq!(value(&text, names::RX_BYTES, &[("worker", "1")]), 200_000.0);
    assert_eq!(
        value(&text, names::RECORDED_PACKETS, &[("worker", "1")]),
        990.0
    );
    assert_eq!(value(&text, names::RTCP_PACKETS, &[("worker", "0")]), 3.0);
    for r in DropReason::ALL {
        assert_eq!(
            value(
                &text,
                names::DROPPED_PACKETS,
                &[("worker", "1"), ("reason", r.name())]
            ),
            r.index() as f64 + 1.0,
            "{}",
            r.name()
        );
    }
    // The NIC's drops are in the same family.
    let nic = [("worker", "nic")];
    for (reason, v) in [
        ("nic_missed", 17.0),
        ("nic_errors", 2.0),
        ("nic_no_mbuf", 4.0),
    ] {
        assert_eq!(
            value(&text, names::DROPPED_PACKETS, &[nic[0], ("reason", reason)]),
            v
        );
    }
    assert!(text.contains("# TYPE mediafork_dropped_packets_total counter"));
}

#[test]
fn publish_renders_gauges() {
    let text = render_with(|| publish(&full_snapshot()));
    let ring = [("worker", "0"), ("writer", "0")];
    assert_eq!(value(&text, names::RING_USED_BYTES, &ring), 4096.0);
    assert_eq!(value(&text, names::RING_CAPACITY_BYTES, &ring), 1048576.0);
    assert_eq!(
        value(&text, names::WRITER_RECORDS, &[("writer", "0")]),
        1090.0
    );
    assert_eq!(
        value(&text, names::WRITER_WRITTEN_BYTES, &[("writer", "0")]),
        123456.0
    );
    assert_eq!(
        value(&text, names::WRITER_IO_ERRORS, &[("writer", "0")]),
        2.0
    );
    assert_eq!(
        value(&text, names::WRITER_OPEN_CALLS, &[("writer", "0")]),
        5.0
    );
    assert_eq!(value(&text, names::ACTIVE_CALLS, &[]), 5.0);
    assert_eq!(value(&text, names::ACTIVE_TRACKS, &[]), 10.0);
    assert_eq!(value(&text, names::ACTIVE_DIALOGS, &[]), 6.0);
    assert_eq!(value(&text, names::DRAINING, &[]), 1.0);
    assert_eq!(value(&text, names::PORT_POOL_FREE, &[]), 3990.0);
    assert_eq!(value(&text, names::PORT_POOL_FREE_PAIRS, &[]), 1995.0);
    assert_eq!(value(&text, names::PORT_POOL_IN_USE, &[]), 8.0);
    assert_eq!(value(&text, names::PORT_POOL_QUARANTINED, &[]), 2.0);
    assert_eq!(value(&text, names::PORT_POOL_SIZE, &[]), 4000.0);
    assert_eq!(
        value(&text, names::STORAGE_FREE_BYTES, &[]),
        (50u64 << 30) as f64
    );
    assert_eq!(
        value(&text, names::STORAGE_SIZE_BYTES, &[]),
        (100u64 << 30) as f64
    );
    assert_eq!(value(&text, names::STORAGE_STATE, &[]), 1.0);
    let port = ("port", "0000:3b:00.0");
    assert_eq!(value(&text, names::NIC_MISSED_PACKETS, &[port]), 17.0);
    assert_eq!(value(&text, names::NIC_RX_PACKETS, &[port]), 1200.0);
    assert_eq!(
        value(&text, names::NIC_QUEUE_RX_ERRORS, &[port, ("queue", "0")]),
        1.0
    );
    assert_eq!(
        value(
            &text,
            names::BUILD_INFO,
            &[("backend", "dpdk"), ("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
}

#[test]
fn counters_follow_running_totals() {
    let rec = recorder();
    let handle = rec.handle();
    let mut s = full_snapshot();
    metrics::with_local_recorder(&rec, || publish(&s));
    s.workers[0].counters.rx_packets = 150;
    s.active_calls = 2;
    s.draining = false;
    metrics::with_local_recorder(&rec, || publish(&s));
    let text = handle.render();
    assert_eq!(value(&text, names::RX_PACKETS, &[("worker", "0")]), 150.0);
    assert_eq!(value(&text, names::ACTIVE_CALLS, &[]), 2.0);
    assert_eq!(value(&text, names::DRAINING, &[]), 0.0);
}

#[test]
fn snapshot_without_nic_or_storage_omits_them() {
    let mut s = full_snapshot();
    s.nic = None;
    s.storage = None;
    s.backend.clear();
    let text = render_with(|| publish(&s));
    assert!(samples(&text, names::NIC_MISSED_PACKETS).is_empty());
    assert!(samples(&text, names::STORAGE_FREE_BYTES).is_empty());
    assert!(samples(&text, names::BUILD_INFO).is_empty());
    assert!(samples(&text, names::DROPPED_PACKETS)
        .iter()
        .all(|l| !l.contains("worker=\"nic\"")));
}

#[test]
fn port_pool_snapshot_from_pool() {
    use crate::ports::PortPool;
    use mediafork_dataplane::config::PortRange;
    use std::time::Instant;
    let range = PortRange::new(40000, 40009).unwrap();
    let mut pool = PortPool::new(range, Duration::from_secs(10));
    let now = Instant::now();
    let pair = pool.allocate_pair(now).unwrap();
    let s = PortPoolSnapshot::from(&pool);
    assert_eq!(s.total, 10);
    assert_eq!(s.in_use, 2);
    assert_eq!(s.free, 8);
    assert_eq!(s.free_pairs, 4);
    pool.release(now, pair).unwrap();
    let s = PortPoolSnapshot::from(&pool);
    assert_eq!((s.in_use, s.quarantined, s.free), (0, 2, 8));
}

#[test]
fn sip_and_call_events() {
    let text = render_with(exercise_everything);
    let invite_in = [("method", "INVITE"), ("direction", "received")];
    assert_eq!(value(&text, names::SIP_REQUESTS, &invite_in), 2.0);
    assert_eq!(
        value(&text, names::SIP_REQUESTS, &[("method", "other")]),
        1.0
    );
    assert_eq!(
        value(
            &text,
            names::SIP_REQUESTS,
            &[("method", "BYE"), ("direction", "sent")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            names::SIP_RESPONSES,
            &[
                ("method", "INVITE"),
                ("code", "503"),
                ("class", "5xx"),
                ("direction", "sent")
            ]
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            names::SIP_RESPONSES,
            &[
                ("method", "BYE"),
                ("code", "481"),
                ("direction", "received")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(&text, names::CALLS_STARTED, &[("source", "siprec")]),
        1.0
    );
    assert_eq!(
        value(
            &text,
            names::CALLS_ENDED,
            &[("source", "siprec"), ("reason", "bye")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            names::CALLS_FAILED,
            &[("source", "sip"), ("reason", "no_ports")]
        ),
        1.0
    );
    assert_eq!(
        value(&text, names::STORAGE_TRANSITIONS, &[("state", "warning")]),
        1.0
    );
    assert_eq!(value(&text, names::RECORDINGS_DELETED, &[]), 7.0);
}

#[test]
fn track_ended_feeds_jitter_histogram_and_rtp_counters() {
    let text = render_with(exercise_everything);
    assert!(
        text.contains("# TYPE mediafork_rtp_jitter_seconds histogram"),
        "{text}"
    );
    let b = "mediafork_rtp_jitter_seconds_bucket";
    assert_eq!(value(&text, b, &[("le", "0.002")]), 0.0);
    assert_eq!(value(&text, b, &[("le", "0.005")]), 1.0);
    assert_eq!(value(&text, b, &[("le", "0.2")]), 1.0);
    assert_eq!(value(&text, b, &[("le", "0.5")]), 2.0);
    assert_eq!(value(&text, b, &[("le", "+Inf")]), 2.0);
    assert_eq!(value(&text, "mediafork_rtp_jitter_seconds_count", &[]), 2.0);
    assert_eq!(value(&text, names::TRACKS_ENDED, &[]), 2.0);
    assert_eq!(value(&text, names::RTP_LOST_PACKETS, &[]), 3.0);
    assert_eq!(value(&text, names::RTP_DUPLICATE_PACKETS, &[]), 1.0);
    assert_eq!(value(&text, names::RTP_REORDERED_PACKETS, &[]), 2.0);
    assert_eq!(value(&text, names::RTP_LATE_PACKETS, &[]), 1.0);
}

#[test]
fn writer_latency_from_hdrhistogram_nanoseconds() {
    let text = render_with(|| writer_latency(&latency_histogram()));
    let b = "mediafork_writer_latency_seconds_bucket";
    assert_eq!(value(&text, b, &[("le", "0.0001")]), 10.0);
    assert_eq!(value(&text, b, &[("le", "0.001")]), 10.0);
    assert_eq!(value(&text, b, &[("le", "0.0025")]), 13.0);
    assert_eq!(value(&text, b, &[("le", "2.5")]), 13.0);
    assert_eq!(value(&text, b, &[("le", "5")]), 14.0);
    assert_eq!(
        value(&text, "mediafork_writer_latency_seconds_count", &[]),
        14.0
    );
    let sum = value(&text, "mediafork_writer_latency_seconds_sum", &[]);
    let want = 10.0 * 50e-6 + 3.0 * 2e-3 + 3.0;
    assert!((sum - want).abs() / want < 0.01, "sum {sum}, want {want}");
}

#[test]
fn event_functions_are_noops_without_recorder() {
    // No recorder installed in this scope: nothing to observe, nothing panics.
    exercise_everything();
}

#[test]
fn label_values_are_bounded() {
    assert_eq!(method_label("invite"), "INVITE");
    assert_eq!(method_label("X-FOO"), "other");
    assert_eq!(source_label("SIPREC"), "siprec");
    assert_eq!(source_label("whatever"), "other");
    assert_eq!(reason_label("Bad SDP!"), "bad_sdp_");
    assert_eq!(reason_label(""), "unknown");
    assert_eq!(reason_label(&"x".repeat(100)).len(), 40);
    let text = render_with(|| {
        sip_response("INVITE", 42);
        sip_response("INVITE", 180);
    });
    assert_eq!(
        value(
            &text,
            names::SIP_RESPONSES,
            &[("code", "other"), ("class", "other")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            names::SIP_RESPONSES,
            &[("code", "180"), ("class", "1xx")]
        ),
        1.0
    );
}

#[test]
fn names_follow_prometheus_conventions() {
    let mut seen = BTreeSet::new();
    for d in names::ALL {
        assert!(seen.insert(d.name), "{} defined twice", d.name);
        assert!(d.name.starts_with("mediafork_"), "{}", d.name);
        assert!(
            d.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}",
            d.name
        );
        assert_eq!(
            d.kind == Kind::Counter,
            d.name.ends_with("_total"),
            "{}: counters, and only counters, end in _total",
            d.name
        );
        match d.unit {
            metrics::Unit::Seconds => assert!(d.name.contains("_seconds"), "{}", d.name),
            metrics::Unit::Bytes => assert!(d.name.contains("_bytes"), "{}", d.name),
            metrics::Unit::Count => {
                assert!(
                    !d.name.contains("_seconds") && !d.name.contains("_bytes"),
                    "{}",
                    d.name
                )
            }
            u => panic!("{}: unit {u:?} is not a base unit", d.name),
        }
        for l in d.labels {
            assert!(
                !["call_id", "recording_id", "ssrc", "peer"].contains(l),
                "{}: per-call label {l}",
                d.name
            );
        }
        assert!(!d.help.is_empty(), "{}", d.name);
    }
}

#[test]
fn exposition_has_every_metric_with_help_and_type() {
    let text = render_with(exercise_everything);
    for d in names::ALL {
        assert!(
            text.contains(&format!("# HELP {} ", d.name)),
            "no HELP for {}",
            d.name
        );
        assert!(
            text.contains(&format!("# TYPE {} {}\n", d.name, d.kind.name())),
            "no TYPE {} for {}",
            d.kind.name(),
            d.name
        );
    }
    // Every family in the exposition is one we define.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(names::find(name).is_some(), "undocumented family {name}");
    }
}

#[test]
fn module_doc_table_lists_every_metric() {
    let documented: BTreeSet<String> = metric_tokens(
        &MODULE_DOC
            .lines()
            .filter(|l| l.starts_with("//! | `"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let defined: BTreeSet<String> = names::ALL.iter().map(|d| d.name.to_string()).collect();
    assert_eq!(documented, defined);
}

/// Every `mediafork_...` identifier in `text` (PromQL, YAML, Markdown).
fn metric_tokens(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut out = BTreeSet::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find("mediafork_") {
        let start = i + pos;
        let mut end = start + "mediafork_".len();
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        if start == 0 || !is_ident(bytes[start - 1]) {
            out.insert(text[start..end].to_string());
        }
        i = end;
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn dashboard_uses_only_defined_metrics() {
    let dash: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");
    let mut all = Vec::new();
    exprs(&dash, &mut all);
    assert!(all.len() >= 12, "only {} queries", all.len());
    let mut used = BTreeSet::new();
    for e in &all {
        let tokens = metric_tokens(e);
        assert!(!tokens.is_empty(), "query names no mediafork metric: {e}");
        for t in tokens {
            assert!(
                names::family_of(&t).is_some(),
                "dashboard query uses {t}, which mediafork does not export: {e}"
            );
            used.insert(names::family_of(&t).unwrap().name);
        }
    }
    // Histogram quantiles need the bucket series.
    for e in all.iter().filter(|e| e.contains("histogram_quantile")) {
        assert!(e.contains("_bucket"), "{e}");
    }
    for want in [
        names::ACTIVE_CALLS,
        names::CALLS_STARTED,
        names::CALLS_FAILED,
        names::RX_PACKETS,
        names::DROPPED_PACKETS,
        names::RING_USED_BYTES,
        names::WRITER_LATENCY_SECONDS,
        names::RTP_JITTER_SECONDS,
        names::RTP_LOST_PACKETS,
        names::SIP_RESPONSES,
        names::STORAGE_FREE_BYTES,
        names::PORT_POOL_FREE,
        names::NIC_MISSED_PACKETS,
    ] {
        assert!(used.contains(want), "dashboard has no panel on {want}");
    }
    // Panels have unique ids and use the datasource variable.
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for p in panels {
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {id}");
        }
    }
}

#[test]
fn alert_rules_use_only_defined_metrics() {
    let tokens = metric_tokens(ALERTS);
    assert!(!tokens.is_empty());
    for t in &tokens {
        assert!(
            names::family_of(t).is_some(),
            "alerts.yml uses {t}, which mediafork does not export"
        );
    }
    for t in metric_tokens(ALERTS_TEST) {
        assert!(
            names::family_of(&t).is_some(),
            "alerts_test.yml uses {t}, which mediafork does not export"
        );
    }
    for alert in [
        "MediaforkDown",
        "MediaforkRecordingsDiskCritical",
        "MediaforkRecordingsDiskLow",
        "MediaforkPacketDrops",
        "MediaforkRingFull",
        "MediaforkSipServerErrors",
        "MediaforkWriterIoErrors",
        "MediaforkPortPoolExhausted",
    ] {
        assert!(
            ALERTS.contains(&format!("alert: {alert}\n")),
            "alerts.yml has no {alert}"
        );
    }
}

/// Run `promtool` with `args` on `stdin`; `None` when it is not installed.
fn promtool(args: &[&str], stdin: &str) -> Option<(bool, String)> {
    let mut child = match Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

const NO_PROMTOOL: &str =
    "promtool is not installed: `apt-get install --no-install-recommends prometheus` \
     (CI installs it; .ci/run does)";

/// `promtool check metrics` must pass: it fails on lint problems too
/// (naming, missing HELP, counters without _total, non-base units).
fn assert_promtool_accepts(exposition: &str) {
    let (ok, out) = promtool(&["check", "metrics"], exposition).expect(NO_PROMTOOL);
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}\nexposition:\n{exposition}"
    );
}

#[test]
fn promtool_accepts_rendered_exposition() {
    assert_promtool_accepts(&render_with(exercise_everything));
}

#[test]
fn promtool_rejects_bad_exposition() {
    // Guards the check above: promtool must actually complain.
    let bad = "# HELP mediafork_bad_counter x\n# TYPE mediafork_bad_counter counter\nmediafork_bad_counter 1\n";
    let (ok, out) = promtool(&["check", "metrics"], bad).expect(NO_PROMTOOL);
    assert!(
        !ok || !out.trim().is_empty(),
        "promtool found nothing in {bad}"
    );
}

/// `promtool check rules` and `promtool test rules` (alerts_test.yml) pass.
#[test]
fn promtool_checks_and_tests_alert_rules() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../monitoring/prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts_test.yml"][..],
    ] {
        let out = match Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
        {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{NO_PROMTOOL}"),
            Err(e) => panic!("cannot run promtool: {e}"),
        };
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn free_local_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("HTTP response");
    (head.to_string(), body.to_string())
}

/// Binding errors name the address; a live scrape passes promtool; a second
/// install is refused. One test, because the recorder is process-global.
#[test]
fn install_serves_a_scrape_that_promtool_accepts() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // An address in use: a clear error naming it, no panic.
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = install(addr).unwrap_err();
        assert!(matches!(err, MetricsError::Bind { .. }), "{err:?}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        drop(taken);

        let addr = free_local_addr();
        let handle = install(addr).expect("install");
        assert_eq!(handle.listen(), addr);
        exercise_everything();

        let err = install(free_local_addr()).unwrap_err();
        assert!(matches!(err, MetricsError::AlreadyInstalled), "{err:?}");

        let (head, body) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
            .await
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(body.contains("mediafork_build_info{"), "{body}");
        assert!(
            body.contains("# TYPE mediafork_start_time_seconds gauge"),
            "{body}"
        );
        assert!(
            body.contains("mediafork_writer_latency_seconds_bucket{le=\"0.0001\"} 10"),
            "{body}"
        );
        assert_promtool_accepts(&body);
        assert!(handle.render().contains("mediafork_active_calls 5"));
    });
}

const CHILD_ENV: &str = "MEDIAFORK_METRICS_TEST_CHILD";

/// `install` outside any tokio runtime runs the exporter on a thread of its
/// own. Runs in a child process (this test binary, re-executed), because the
/// recorder is process-global.
#[test]
fn install_outside_a_runtime_serves_metrics() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "metrics::tests::child_install_outside_runtime",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "child ran no test:\n{text}");
}

#[test]
#[ignore = "run by install_outside_a_runtime_serves_metrics in a child process"]
fn child_install_outside_runtime() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    assert!(tokio::runtime::Handle::try_current().is_err());
    let addr = free_local_addr();
    let handle = install(addr).expect("install");
    call_started("cucm");
    let (head, body) = http_get(addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        body.contains("mediafork_calls_started_total{source=\"cucm\"} 1"),
        "{body}"
    );
    assert!(handle
        .render()
        .contains("# TYPE mediafork_start_time_seconds gauge"));
}
