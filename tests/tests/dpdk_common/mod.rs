//! Helpers shared by the DPDK end-to-end tests (`--features dpdk`).
//!
//! Every DPDK process gets its own `--file-prefix=mf-<test>-<pid>` and runs
//! without hugepages or PCI scan; the prefix's runtime folder is removed
//! when the guard drops, also when the test fails.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

use mediafork_e2e::mediafork_bin;

/// A unique `--file-prefix` whose runtime folder (`/var/run/dpdk/PREFIX` as
/// root, else under `$XDG_RUNTIME_DIR/dpdk` or `/tmp/dpdk`) goes away on drop.
pub struct RuntimeDir {
    pub prefix: String,
}

impl RuntimeDir {
    pub fn new(test: &str) -> RuntimeDir {
        RuntimeDir {
            prefix: format!("mf-{test}-{}", std::process::id()),
        }
    }

    fn candidates(&self) -> Vec<PathBuf> {
        let mut dirs = vec![PathBuf::from("/var/run/dpdk"), PathBuf::from("/tmp/dpdk")];
        if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
            dirs.push(Path::new(&xdg).join("dpdk"));
        }
        dirs.into_iter().map(|d| d.join(&self.prefix)).collect()
    }

    /// The EAL options of a test: no hugepages, no PCI scan, 256 MB of
    /// ordinary memory, no telemetry socket, this test's prefix, lcore 0
    /// allowed on every CPU (parallel tests are not all pinned to CPU 0),
    /// then `extra`.
    pub fn eal_args(&self, extra: &[&str]) -> Vec<String> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut a: Vec<String> = [
            "--no-huge",
            "--no-pci",
            "-m",
            "256",
            "--no-telemetry",
            "--log-level=lib.eal:notice",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(format!("--lcores=0@(0-{})", cpus - 1));
        a.push(format!("--file-prefix={}", self.prefix));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        for d in self.candidates() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Fails the test (never skips) unless the `mediafork` binary under test was
/// built with DPDK support.
pub fn require_dpdk_binary() {
    let out = Command::new(mediafork_bin())
        .arg("--version")
        .output()
        .expect("run mediafork --version");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dpdk"),
        "{} was built without DPDK support ({}): build it with \
         `cargo build -p mediafork-control --features dpdk` before running the DPDK tests, \
         or point MEDIAFORK_BIN at such a build",
        mediafork_bin().display(),
        text.trim()
    );
}

/// Fails the test (never skips) unless it runs as root.
pub fn require_root(what: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u32>().ok());
    assert_eq!(
        euid,
        Some(0),
        "this DPDK test needs root ({what}); run the DPDK tests as root (CI does: sudo bash .ci/run)"
    );
}
