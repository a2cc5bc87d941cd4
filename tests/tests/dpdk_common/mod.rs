//! Helpers shared by the DPDK end-to-end tests (`--features dpdk`).
//!
//! Every DPDK process gets its own `--file-prefix=mf-<test>-<pid>` and runs
//! without hugepages or PCI scan; the prefix's runtime folder is removed
//! when the guard drops, also when the test fails.
#![allow(dead_code)] // each test binary uses a different subset

use std::process::{Child, Command};

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

/// Runs `ip ARGS`, failing the test with ip's message if it fails.
pub fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("`ip` (iproute2) is needed by this test: {e}"));
    assert!(
        o.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Network namespaces that are deleted when the test ends, also on failure
/// (a veth pair between them goes with them).
pub struct Namespaces(Vec<String>);

impl Namespaces {
    pub fn create(names: &[&str]) -> Namespaces {
        let mut ns = Namespaces(Vec::new());
        for n in names {
            // A namespace left by an earlier, killed run of the same pid.
            let _ = Command::new("ip").args(["netns", "del", n]).output();
            ip(&["netns", "add", n]);
            ns.0.push(n.to_string());
        }
        ns
    }

    /// Two namespaces joined by a veth pair: `dev_a` with `addr_a` (an
    /// `IP/PREFIX`) in `a`, `dev_b` with `addr_b` in `b`, both up, and each
    /// namespace's loopback up.
    pub fn veth_pair(a: (&str, &str, &str), b: (&str, &str, &str)) -> Namespaces {
        let ((ns_a, dev_a, addr_a), (ns_b, dev_b, addr_b)) = (a, b);
        let ns = Namespaces::create(&[ns_a, ns_b]);
        ip(&[
            "-n", ns_a, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b,
        ]);
        ip(&["-n", ns_a, "addr", "add", addr_a, "dev", dev_a]);
        ip(&["-n", ns_b, "addr", "add", addr_b, "dev", dev_b]);
        for (n, dev) in [(ns_a, dev_a), (ns_b, dev_b), (ns_a, "lo"), (ns_b, "lo")] {
            ip(&["-n", n, "link", "set", dev, "up"]);
        }
        ns
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// A child process killed when the test ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
