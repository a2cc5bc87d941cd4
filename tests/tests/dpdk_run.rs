//! `mediafork run --backend dpdk` starting and stopping: errors that name
//! the missing piece, a clean SIGTERM while the NIC never goes quiet, and
//! the port's counters (per queue) exported as Prometheus metrics.
#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dpdk_common::{require_dpdk_binary, require_root, Proc, RuntimeDir};
use mediafork_e2e::mediafork_bin;
use serde_json::Value;

/// `[dpdk]` with `port` and `eal_args`, SIP on loopback port `sip_port`.
fn write_config(path: &Path, rec: &Path, sip_port: u16, port: &str, eal: &[String]) {
    let text = format!(
        "[sip]\nlisten = [\"127.0.0.1:{sip_port}\"]\ntransports = [\"udp\"]\n\
         [media]\naddress = \"127.0.0.1\"\nbackend = \"dpdk\"\nworkers = 1\nrtp_ports = \"40000-40099\"\n\
         [recordings]\ndir = \"{}\"\n\
         [storage]\nwarn_free_percent = 0.0\ncritical_free_percent = 0.0\ncritical_free_bytes = 0\n\
         [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
         [dpdk]\nport = \"{port}\"\nmempool_mbufs = 4095\nmempool_cache = 128\neal_args = {}\n",
        rec.display(),
        serde_json::to_string(eal).unwrap(),
        // Tests run in parallel: each server's admin API beside its SIP port.
        admin_port = sip_port + 1,
    );
    std::fs::write(path, text).unwrap();
}

fn run_config(cfg: &Path) -> Output {
    Command::new(mediafork_bin())
        .args(["run", "--config"])
        .arg(cfg)
        .output()
        .expect("spawn mediafork")
}

#[test]
fn dpdk_run_stops_on_sigterm_under_constant_traffic() {
    require_dpdk_binary();
    let runtime = RuntimeDir::new("run-sigterm");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("mediafork.toml");
    // net_null hands out frames on every poll: the worker is never idle.
    write_config(
        &cfg,
        &tmp.path().join("rec"),
        16181,
        "net_null0",
        &runtime.eal_args(&["--vdev=net_null0"]),
    );
    let log_path = tmp.path().join("log.json");
    let mut server = Proc(
        Command::new(mediafork_bin())
            .args(["--log-format", "json", "run", "--config"])
            .arg(&cfg)
            .env("MEDIAFORK_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("spawn mediafork run"),
    );
    assert!(
        mediafork_e2e::ready_line(&mut server.0, Duration::from_secs(30)).is_some(),
        "not ready; log:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_millis(500));
    let code = mediafork_e2e::sigterm_and_wait(
        &mut server.0,
        Duration::from_secs(15),
        "mediafork (its port kept receiving)",
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(code, Some(0), "{log}");
    let totals = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["fields"]["message"] == "DPDK port totals")
        .unwrap_or_else(|| panic!("no DPDK port totals logged:\n{log}"));
    assert!(
        totals["fields"]["ipackets"].as_u64().unwrap_or(0) > 1000,
        "{totals}"
    );
}

#[test]
fn dpdk_run_exports_port_and_queue_counters_as_metrics() {
    require_dpdk_binary();
    let runtime = RuntimeDir::new("run-metrics");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("mediafork.toml");
    let sip_port = 16184;
    let metrics_port = sip_port + 2;
    write_config(
        &cfg,
        &tmp.path().join("rec"),
        sip_port,
        "net_null0",
        &runtime.eal_args(&["--vdev=net_null0"]),
    );
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"
    ));
    std::fs::write(&cfg, text).unwrap();
    let log_path = tmp.path().join("log.txt");
    let mut server = Proc(
        Command::new(mediafork_bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .env("MEDIAFORK_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("spawn mediafork run"),
    );
    assert!(
        mediafork_e2e::ready_line(&mut server.0, Duration::from_secs(30)).is_some(),
        "not ready; log:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    let addr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    // The counters are read every second; net_null delivers on every poll.
    // The value of the series `name` whose labels include all of `labels`.
    let value = |expo: &str, name: &str, labels: &[&str]| -> Option<f64> {
        expo.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .find(|l| labels.iter().all(|x| l.contains(x)))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let expo = loop {
        let (status, body) = mediafork_e2e::admin::http_get(addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        let port = ["port=\"net_null0\""];
        if value(&body, "mediafork_nic_rx_packets_total", &port).unwrap_or(0.0) > 0.0 {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no NIC counters in the metrics:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let port = "port=\"net_null0\"";
    for (name, labels) in [
        ("mediafork_nic_missed_packets_total", vec![port]),
        ("mediafork_nic_rx_errors_total", vec![port]),
        ("mediafork_nic_rx_no_mbuf_total", vec![port]),
        (
            "mediafork_dropped_packets_total",
            vec!["worker=\"nic\"", "reason=\"nic_missed\""],
        ),
    ] {
        assert!(
            value(&expo, name, &labels).is_some(),
            "{name}{labels:?} missing:\n{expo}"
        );
    }
    let queued = value(
        &expo,
        "mediafork_nic_queue_rx_packets_total",
        &[port, "queue=\"0\""],
    );
    assert!(queued.unwrap_or(0.0) > 0.0, "per-queue counter:\n{expo}");
    // The worker polling the queue counts the same frames.
    assert!(
        value(&expo, "mediafork_rx_packets_total", &["worker=\"0\""]).unwrap_or(0.0) > 0.0,
        "{expo}"
    );
    let _ = mediafork_e2e::sigterm_and_wait(&mut server.0, Duration::from_secs(15), "mediafork");
}

#[test]
fn dpdk_run_names_a_missing_port() {
    require_dpdk_binary();
    let runtime = RuntimeDir::new("run-no-port");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("mediafork.toml");
    // The EAL creates net_null0; the configuration asks for net_pcap7.
    write_config(
        &cfg,
        &tmp.path().join("rec"),
        16182,
        "net_pcap7",
        &runtime.eal_args(&["--vdev=net_null0"]),
    );
    let o = run_config(&cfg);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("dpdk.port"), "{err}");
    assert!(err.contains("no DPDK port named \"net_pcap7\""), "{err}");
    assert!(
        err.contains("net_null0"),
        "lists the ports there are: {err}"
    );
    assert!(err.contains("--vdev=net_pcap7"), "{err}");
    assert!(err.contains("dpdk.eal_args"), "{err}");
}

#[test]
fn dpdk_run_as_non_root_names_root() {
    require_root("it drops to uid 65534 with setpriv");
    require_dpdk_binary();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("mediafork.toml");
    write_config(
        &cfg,
        &tmp.path().join("rec"),
        16183,
        "0000:3b:00.0",
        &["-l".to_string(), "0".to_string()],
    );
    // Readable and writable by the unprivileged user.
    Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(tmp.path())
        .status()
        .unwrap();
    let o = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(mediafork_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("setpriv (util-linux) is needed by this test");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("needs root") && err.contains("uid 65534"),
        "{err}"
    );
}

#[test]
fn dpdk_run_without_hugepages_names_them() {
    require_root("without root the error is about root, not hugepages");
    require_dpdk_binary();
    let free: u64 = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    std::fs::read_to_string(e.path().join("free_hugepages"))
                        .ok()?
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .sum()
        })
        .unwrap_or(0);
    let runtime = RuntimeDir::new("run-no-huge");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("mediafork.toml");
    // Hugepages are not disabled: the host's must be used.
    let eal = vec![
        "--no-pci".to_string(),
        "--no-telemetry".to_string(),
        format!("--file-prefix={}", runtime.prefix),
        "--in-memory".to_string(),
    ];
    write_config(&cfg, &tmp.path().join("rec"), 16184, "net_pcap7", &eal);
    let o = run_config(&cfg);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let mounted = std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"));
    if free == 0 || !mounted {
        assert!(err.contains("no hugepages"), "{err}");
        assert!(err.contains("hugepage-setup"), "{err}");
        assert!(err.contains("--no-huge"), "{err}");
    } else {
        // This host has hugepages: the EAL starts, and the missing port is
        // what is reported.
        assert!(err.contains("net_pcap7"), "{err}");
    }
}
