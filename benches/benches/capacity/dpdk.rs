//! The `dpdk` configuration: `mediafork run --backend dpdk` receiving the
//! load generator's RTP through DPDK's `net_af_packet` driver on one end of
//! a veth pair, as tests/tests/dpdk_af_packet_veth.rs does.
//!
//! Two network namespaces made by the bench (deleted when it ends, the veth
//! pair with them): the recorder's, holding `v0` (10.250.9.1/30), and the
//! SRC's, holding `v1` (10.250.9.2/30). SIP and the admin API use the
//! recorder's kernel sockets (SIP on v0's address, the admin API on the
//! namespace's loopback); the RTP is read off v0 by DPDK. The load
//! generator runs in this process, on a thread that entered the SRC's
//! namespace (its own threads inherit it), so its packets really cross
//! the veth pair. The kernel's transmit path and the veth hand-over run on
//! the sending core, as loopback's receive path does for the other
//! configurations; the recorder's kernel also sees every RTP packet on v0
//! (no socket: dropped), on the sending core too.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

pub const REC_IP: &str = "10.250.9.1";
pub const SRC_IP: &str = "10.250.9.2";
/// Media ports in the recorder's namespace (its own port space).
pub const RTP_PORTS: &str = "40000-59999";
/// Frames in the `net_af_packet` receive ring (2 KiB each: 32 MiB). The
/// default 512 is 2 ms at 250 kpps, less than one time slice of the
/// writer, which shares the recorder's core with the spinning worker.
pub const FRAMECNT: u32 = 16_384;

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("`ip` (iproute2): {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// The two namespaces and the veth pair between them.
pub struct Net {
    pub rec: String,
    pub src: String,
}

impl Net {
    pub fn create() -> Result<Net, String> {
        let pid = std::process::id();
        let net = Net {
            rec: format!("mfcap-rec-{pid}"),
            src: format!("mfcap-src-{pid}"),
        };
        for n in [&net.rec, &net.src] {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
            ip(&["netns", "add", n])?;
        }
        ip(&[
            "-n", &net.rec, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns",
            &net.src,
        ])?;
        ip(&[
            "-n",
            &net.rec,
            "addr",
            "add",
            &format!("{REC_IP}/30"),
            "dev",
            "v0",
        ])?;
        ip(&[
            "-n",
            &net.src,
            "addr",
            "add",
            &format!("{SRC_IP}/30"),
            "dev",
            "v1",
        ])?;
        for (ns, dev) in [
            (&net.rec, "v0"),
            (&net.src, "v1"),
            (&net.rec, "lo"),
            (&net.src, "lo"),
        ] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(net)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in [&self.rec, &self.src] {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// Runs `f` on a thread that entered network namespace `ns` (setns only
/// moves the calling thread; threads it starts inherit the namespace).
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let path = PathBuf::from("/var/run/netns").join(ns);
    std::thread::spawn(move || {
        let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns {}: {e}", path.display()))?;
        f()
    })
    .join()
    .map_err(|_| "namespace thread panicked".to_string())?
}

/// The EAL's runtime directory of `prefix`, removed when dropped.
pub struct Runtime {
    pub prefix: String,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

/// `[dpdk]`: `net_af_packet` on v0, no hugepages, no PCI, the main lcore on
/// `core`.
pub fn section(prefix: &str, core: usize) -> String {
    let eal = [
        "--no-huge".to_string(),
        "--no-pci".into(),
        "-m".into(),
        "256".into(),
        "--no-telemetry".into(),
        "--log-level=lib.eal:notice".into(),
        format!("--lcores=0@{core}"),
        format!("--file-prefix={prefix}"),
        format!("--vdev=net_af_packet0,iface=v0,framecnt={FRAMECNT}"),
    ];
    format!(
        "\n[dpdk]\nport = \"net_af_packet0\"\nmempool_mbufs = 16383\nmempool_cache = 256\neal_args = {}\n",
        serde_json::to_string(&eal).unwrap_or_default()
    )
}
