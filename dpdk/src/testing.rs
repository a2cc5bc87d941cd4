//! Support for tests that start a real EAL without hugepages or a NIC
//! (this crate's tests and the end-to-end tests). No `unsafe` here.
//!
//! The EAL starts once per process, so every DPDK test runs in its own
//! process (`cargo nextest` does that) with its own `--file-prefix`; the
//! runtime folder DPDK leaves behind is removed by [`RuntimeDir`]'s drop,
//! also when the test fails.

use std::path::{Path, PathBuf};

/// A unique `--file-prefix` (`mf-<test>-<pid>`) whose runtime folder goes
/// away on drop. Create it before the `Eal` so it drops after it.
pub struct RuntimeDir {
    pub prefix: String,
}

impl RuntimeDir {
    pub fn new(test: &str) -> RuntimeDir {
        RuntimeDir {
            prefix: format!("mf-{test}-{}", std::process::id()),
        }
    }

    /// Where DPDK may have put the folder: `/var/run/dpdk` as root, else
    /// `$XDG_RUNTIME_DIR/dpdk` or `/tmp/dpdk`.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut dirs = vec![PathBuf::from("/var/run/dpdk"), PathBuf::from("/tmp/dpdk")];
        if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
            dirs.push(Path::new(&xdg).join("dpdk"));
        }
        dirs.into_iter().map(|d| d.join(&self.prefix)).collect()
    }

    /// EAL options for a test: no hugepages, no PCI scan, 256 MB of ordinary
    /// memory, no telemetry socket, lcore 0 allowed on every CPU (so parallel
    /// test processes are not all pinned to CPU 0), this test's prefix, then
    /// `extra` (typically `--vdev=...`).
    pub fn eal_args(&self, extra: &[&str]) -> Vec<String> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut args: Vec<String> = [
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
        args.push(format!("--lcores=0@(0-{})", cpus - 1));
        args.push(format!("--file-prefix={}", self.prefix));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        for dir in self.candidates() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
