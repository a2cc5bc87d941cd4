//! `mediafork run --backend dpdk` starting and stopping: errors that name
//! the missing piece, and a clean SIGTERM while the NIC never goes quiet.
#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use dpdk_common::{require_dpdk_binary, require_root, RuntimeDir};
use mediafork_e2e::mediafork_bin;
use serde_json::Value;

/// `[dpdk]` with `port` and `eal_args`, SIP on loopback port `sip_port`.
fn write_config(path: &Path, rec: &Path, sip_port: u16, port: &str, eal: &[String]) {
    let text = format!(
        "[sip]\nlisten = [\"127.0.0.1:{sip_port}\"]\ntransports = [\"udp\"]\n\
         [media]\naddress = \"127.0.0.1\"\nbackend = \"dpdk\"\nworkers = 1\nrtp_ports = \"40000-40099\"\n\
         [recordings]\ndir = \"{}\"\n\
         [dpdk]\nport = \"{port}\"\nmempool_mbufs = 4095\nmempool_cache = 128\neal_args = {}\n",
        rec.display(),
        serde_json::to_string(eal).unwrap()
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

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
