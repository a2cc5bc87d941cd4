//! Helpers shared by the DPDK end-to-end tests (`--features dpdk`).
//!
//! Every DPDK process gets its own `--file-prefix=mf-<test>-<pid>` and runs
//! without hugepages or PCI scan; the prefix's runtime folder is removed
//! when the guard drops, also when the test fails.
#![allow(dead_code)] // each test binary uses a different subset

use std::process::Command;

use mediafork_e2e::mediafork_bin;

pub use mediafork_dpdk::testing::RuntimeDir;

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
