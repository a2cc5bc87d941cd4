//! `mediafork replay --backend dpdk`: the replay pipeline fed from a DPDK rx
//! queue instead of the capture reader. With `--pcap FILE` the queue is a
//! `net_pcap` vdev reading that file, so the same capture goes through
//! DPDK's receive path (mbufs, bursts, bulk free) and must give the same
//! audio; with `--dpdk-port` it is any port the EAL arguments create (a
//! `net_af_packet` on a live interface, a NIC), recorded until it goes quiet.
//!
//! End of input: DPDK has no end-of-file, so the queue is taken to be
//! finished once it has been empty for `idle` (200 ms by default) after at
//! least one packet, or when no packet came at all within `start_timeout`.
//! `net_pcap` delivers a file as fast as it is polled and never drops (it
//! reads only when polled, and the replay waits for ring space), so 200 ms
//! of silence means the file is done.
//!
//! Timestamps are DPDK's arrival times (one clock reading per burst), not
//! the capture's: `started_at`/`ended_at`, segment times and jitter in
//! `meta.json` differ from a plain replay; the audio, which follows RTP
//! timestamps, does not.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mediafork_dataplane::capture::{CaptureReader, LinkType};
use mediafork_dataplane::config::DataplaneConfig;
use mediafork_dataplane::source::PacketSource;

use super::{run, Input, Item, ReplayError, ReplaySummary};
use crate::dpdk_backend::{
    allowed_cpus, has_eal_option, DpdkBackend, DpdkOptions, DpdkSetupError, DpdkSource,
    RuntimeDirGuard,
};

/// Quiet time that ends a DPDK replay.
pub const DEFAULT_IDLE: Duration = Duration::from_millis(200);
/// How long to wait for the first packet.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// The vdev created for `--pcap`.
const PCAP_PORT: &str = "net_pcap0";

/// Where a DPDK replay reads from.
#[derive(Clone, Debug)]
pub struct DpdkReplay {
    /// A capture file to read through `net_pcap` (the port is created).
    pub pcap: Option<PathBuf>,
    /// Or a port the EAL arguments create (`--vdev=...`) or a bound NIC.
    pub port: Option<String>,
    /// EAL options. `None`: no hugepages, no PCI scan, 256 MB
    /// (`--no-huge --no-pci -m 256 --no-telemetry`).
    pub eal_args: Option<Vec<String>>,
    /// Quiet time after the last packet that ends the replay.
    pub idle: Duration,
    /// How long to wait for the first packet.
    pub start_timeout: Duration,
}

impl Default for DpdkReplay {
    fn default() -> Self {
        DpdkReplay {
            pcap: None,
            port: None,
            eal_args: None,
            idle: DEFAULT_IDLE,
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }
}

impl DpdkReplay {
    /// The EAL arguments and port to use, plus the `--file-prefix` we
    /// chose (whose runtime folder is ours to remove).
    fn plan(&self) -> Result<(Vec<String>, String, Option<String>), DpdkSetupError> {
        let mut args: Vec<String> = match &self.eal_args {
            Some(a) => a.clone(),
            None => ["--no-huge", "--no-pci", "-m", "256", "--no-telemetry"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        if !has_eal_option(&args, "--log-level") {
            args.push("--log-level=lib.eal:notice".into());
        }
        if !["-l", "-c", "--lcores"]
            .iter()
            .any(|o| has_eal_option(&args, o))
        {
            // One lcore, allowed on every CPU this process may use: nothing
            // gets pinned, and no idle lcore threads are started.
            args.push(format!("--lcores=0@({})", allowed_cpus()));
        }
        let mut own_prefix = None;
        if !has_eal_option(&args, "--file-prefix") && !has_eal_option(&args, "--in-memory") {
            let prefix = format!("mf-replay-{}", std::process::id());
            args.push(format!("--file-prefix={prefix}"));
            own_prefix = Some(prefix);
        }
        let port = match (&self.pcap, &self.port) {
            (Some(_), Some(_)) => return Err(DpdkSetupError::Invalid(
                "give either a capture (--pcap, read through net_pcap) or --dpdk-port, not both"
                    .into(),
            )),
            (None, None) => {
                return Err(DpdkSetupError::Invalid(
                    "nothing to read: give --pcap FILE or --dpdk-port PORT".into(),
                ))
            }
            (None, Some(p)) => p.clone(),
            (Some(file), None) => {
                // DPDK's device arguments are comma-separated key=value pairs.
                let path = file.to_str().ok_or_else(|| {
                    DpdkSetupError::Invalid(format!(
                        "the capture path {} is not UTF-8, which DPDK's vdev arguments need",
                        file.display()
                    ))
                })?;
                if path.contains(',') {
                    return Err(DpdkSetupError::Invalid(format!(
                        "the capture path {path:?} contains a comma, which DPDK's vdev arguments \
                         cannot hold: rename or link the file"
                    )));
                }
                if !file.is_file() {
                    return Err(DpdkSetupError::Invalid(format!(
                        "{path}: no such capture file"
                    )));
                }
                if args.iter().any(|a| a.contains(PCAP_PORT)) {
                    return Err(DpdkSetupError::Invalid(format!(
                        "the EAL arguments already create {PCAP_PORT}; with --pcap mediafork \
                         creates it: drop that --vdev, or use --dpdk-port instead of --pcap"
                    )));
                }
                args.push(format!("--vdev={PCAP_PORT},rx_pcap={path}"));
                PCAP_PORT.to_string()
            }
        };
        Ok((args, port, own_prefix))
    }
}

/// A DPDK rx queue as replay input.
struct DpdkInput {
    source: DpdkSource,
    idle: Duration,
    start_timeout: Duration,
    started: Instant,
    last_packet: Option<Instant>,
}

impl Input for DpdkInput {
    fn next(&mut self, sink: &mut dyn FnMut(Item<'_>)) -> bool {
        loop {
            let n = self.source.poll_burst(|pkts| {
                for p in pkts {
                    sink(Item::Frame(*p));
                }
            });
            let now = Instant::now();
            if n > 0 {
                self.last_packet = Some(now);
                return true;
            }
            let quiet = match self.last_packet {
                Some(t) => now.duration_since(t) >= self.idle,
                None => now.duration_since(self.started) >= self.start_timeout,
            };
            if quiet {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    fn oversize_frames(&self) -> u64 {
        self.source.multi_segment_frames()
    }
}

/// What net_pcap cannot be given. Its own complaint about a bad file is a
/// log line and a missing port, so the header is read here to fail as the
/// plain replay does; and it hands DPDK the captured bytes as they are,
/// which the workers take for Ethernet frames.
fn check_capture(file: &std::path::Path) -> Result<(), ReplayError> {
    let mut reader = CaptureReader::open(file)?;
    if let Some(Ok(pkt)) = reader.next_packet() {
        if pkt.link != LinkType::Ethernet {
            return Err(DpdkSetupError::Invalid(format!(
                "{}: link type {:?}: only Ethernet captures can go through DPDK's net_pcap; \
                 replay this one with --backend file",
                file.display(),
                pkt.link
            ))
            .into());
        }
    }
    Ok(())
}

/// Replay frames received on a DPDK port (see the module documentation).
pub fn replay_dpdk(
    opts: &DpdkReplay,
    config: DataplaneConfig,
) -> Result<ReplaySummary, ReplayError> {
    let (eal_args, port, own_prefix) = opts.plan()?;
    if let Some(file) = &opts.pcap {
        check_capture(file)?;
    }
    // Declared first so it is dropped last, after the EAL is cleaned up.
    let _runtime_dir = own_prefix.map(RuntimeDirGuard::new);
    let (backend, mut sources) = DpdkBackend::start(&DpdkOptions {
        eal_args,
        port: port.clone(),
        rx_queues: 1,
        mempool_mbufs: 8191,
        mempool_cache: 256,
    })?;
    let source = sources
        .pop()
        .ok_or_else(|| DpdkSetupError::Invalid("the port gave no rx queue".into()))?;
    let label = opts
        .pcap
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("dpdk:{port}")));
    let mut input = DpdkInput {
        source,
        idle: opts.idle,
        start_timeout: opts.start_timeout,
        started: Instant::now(),
        last_packet: None,
    };
    let summary = run(&mut input, label, config);
    drop(input);
    if let Ok(s) = &summary {
        if s.oversize_frames > 0 {
            tracing::warn!(
                frames = s.oversize_frames,
                "frames larger than a DPDK mbuf (2 KiB) were cut to their first 2 KiB: \
                 over-MTU frames (loopback or jumbo captures) replay exactly only from the file \
                 (--backend file)"
            );
        }
    }
    match backend.read_counters() {
        Ok(c) if c.drops() > 0 => tracing::warn!(
            imissed = c.imissed,
            rx_nombuf = c.rx_nombuf,
            ierrors = c.ierrors,
            "the DPDK port dropped packets during the replay"
        ),
        Ok(c) => tracing::debug!(ipackets = c.ipackets, "DPDK port counters"),
        Err(e) => tracing::debug!(error = %e, "reading DPDK port counters"),
    }
    drop(backend);
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_for_a_capture_adds_the_vdev_prefix_and_lcores() {
        let tmp = std::env::temp_dir().join(format!("mf-plan-{}.pcap", std::process::id()));
        std::fs::write(&tmp, b"x").unwrap();
        let r = DpdkReplay {
            pcap: Some(tmp.clone()),
            ..DpdkReplay::default()
        };
        let (args, port, prefix) = r.plan().unwrap();
        std::fs::remove_file(&tmp).unwrap();
        assert_eq!(port, "net_pcap0");
        assert!(args.contains(&"--no-huge".to_string()), "{args:?}");
        assert!(
            args.iter()
                .any(|a| a == &format!("--vdev=net_pcap0,rx_pcap={}", tmp.display())),
            "{args:?}"
        );
        let prefix = prefix.expect("own prefix");
        assert!(
            args.contains(&format!("--file-prefix={prefix}")),
            "{args:?}"
        );
        assert!(
            args.iter().any(|a| a.starts_with("--lcores=0@(")),
            "{args:?}"
        );
    }

    #[test]
    fn plan_keeps_the_callers_prefix_and_lcores() {
        let r = DpdkReplay {
            port: Some("net_null0".into()),
            eal_args: Some(vec![
                "-l".into(),
                "0".into(),
                "--file-prefix=mine".into(),
                "--vdev=net_null0".into(),
            ]),
            ..DpdkReplay::default()
        };
        let (args, port, prefix) = r.plan().unwrap();
        assert_eq!(port, "net_null0");
        assert_eq!(prefix, None);
        assert!(!args.iter().any(|a| a.starts_with("--lcores")), "{args:?}");
        assert_eq!(
            args.iter()
                .filter(|a| a.starts_with("--file-prefix"))
                .count(),
            1
        );
    }

    #[test]
    fn plan_refuses_what_dpdk_cannot_take() {
        let both = DpdkReplay {
            pcap: Some("a.pcap".into()),
            port: Some("net_null0".into()),
            ..DpdkReplay::default()
        };
        assert!(both.plan().unwrap_err().to_string().contains("not both"));
        let none = DpdkReplay::default();
        assert!(none.plan().unwrap_err().to_string().contains("--pcap"));
        let comma = DpdkReplay {
            pcap: Some("/tmp/a,b.pcap".into()),
            ..DpdkReplay::default()
        };
        assert!(comma.plan().unwrap_err().to_string().contains("comma"));
        let missing = DpdkReplay {
            pcap: Some("/nonexistent/x.pcap".into()),
            ..DpdkReplay::default()
        };
        assert!(missing
            .plan()
            .unwrap_err()
            .to_string()
            .contains("no such capture"));
    }
}
