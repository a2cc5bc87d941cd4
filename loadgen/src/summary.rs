//! What a run measured: the live counters the progress line reads, and the
//! final [`Summary`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// A send this far behind its schedule counts as late.
pub const LATE_NS: u64 = 1_000_000;

/// Counters shared between the RTP sender and the progress line.
#[derive(Debug, Default)]
pub(crate) struct RtpCounters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub late: AtomicU64,
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// `"sip"`, `"rtp-only"`, or with `--pcap` `"pcap-sip"` / `"pcap-rtp-only"`.
    pub mode: String,
    /// The recorder's address.
    pub target: String,
    /// Calls started (INVITEs sent; RTP-only: stream pairs started).
    pub calls_attempted: u64,
    /// Calls whose INVITE got a 2xx (RTP-only: all started).
    pub calls_answered: u64,
    /// Calls that failed: non-2xx, no answer, or a 2xx accepting no stream.
    pub calls_failed: u64,
    /// Failures by final status code (`"503"`), `"timeout"` (no final
    /// response in 32 s, or ringing over 3 min) or `"no-media"`.
    pub failures: BTreeMap<String, u64>,
    /// Calls ended by our BYE and a 2xx to it (RTP-only: calls that ran
    /// their duration).
    pub calls_completed: u64,
    /// BYEs that got an error response or none.
    pub bye_failures: u64,
    /// Calls the recorder ended with its own BYE.
    pub ended_by_recorder: u64,
    /// Most calls up (answered, not yet hung up) at once.
    pub max_calls_up: u64,
    /// SIP datagrams sent, retransmissions included.
    pub sip_sent: u64,
    /// SIP datagrams received.
    pub sip_received: u64,
    /// RTP streams started.
    pub streams: u64,
    /// RTP packets sent (or written, with `--pcap`).
    pub packets_sent: u64,
    /// RTP bytes sent (UDP payload).
    pub bytes_sent: u64,
    /// RTP packets the kernel refused (full socket buffer, no route, ...).
    pub send_errors: u64,
    /// RTP packets sent more than 1 ms after their scheduled time.
    pub late_sends: u64,
    /// Send lag (time from schedule to the return of the `sendmmsg` or
    /// DPDK burst that carried the packet), median, µs.
    pub lag_p50_us: u64,
    /// Send lag, 99th percentile, µs.
    pub lag_p99_us: u64,
    /// Largest send lag, µs.
    pub lag_max_us: u64,
    /// Share of the run the RTP sender spent working (firing timers,
    /// building and sending) rather than waiting, 0–1. Its CPU time is no
    /// measure: it polls when the next packet is near.
    pub sender_busy: f64,
    /// The sender's working time per packet sent, ns.
    pub sender_ns_per_packet: f64,
    /// Wall-clock length of the run (simulated time with `--pcap`), s.
    pub duration_secs: f64,
    /// RTP packets per second between the first and the last packet.
    pub achieved_pps: f64,
    /// The capture written, with `--pcap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap: Option<PathBuf>,
    /// How the RTP left: `socket`, `dpdk`, or `pcap` (written to a file).
    pub tx: String,
    /// With `--tx dpdk`: the port's own transmit counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_port: Option<String>,
}

impl Summary {
    /// No call failed and no packet was refused: what an exit status of 0
    /// should mean.
    pub fn is_success(&self) -> bool {
        self.calls_failed == 0 && self.send_errors == 0 && self.bye_failures == 0
    }

    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "loadgen {} -> {}", self.mode, self.target);
        let _ = writeln!(
            s,
            "  calls:   {} attempted, {} answered, {} failed, {} completed, {} ended by recorder, {} BYE failures, max {} up",
            self.calls_attempted,
            self.calls_answered,
            self.calls_failed,
            self.calls_completed,
            self.ended_by_recorder,
            self.bye_failures,
            self.max_calls_up
        );
        if !self.failures.is_empty() {
            let f: Vec<String> = self
                .failures
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(s, "  failures: {}", f.join(", "));
        }
        if self.sip_sent > 0 {
            let _ = writeln!(
                s,
                "  sip:     {} sent, {} received",
                self.sip_sent, self.sip_received
            );
        }
        let _ = writeln!(
            s,
            "  rtp:     {} streams, {} packets ({} bytes), {} send errors, {:.0} pps",
            self.streams, self.packets_sent, self.bytes_sent, self.send_errors, self.achieved_pps
        );
        let _ = writeln!(
            s,
            "  pacing:  {} late (>1 ms), lag p50 {} us, p99 {} us, max {} us",
            self.late_sends, self.lag_p50_us, self.lag_p99_us, self.lag_max_us
        );
        if self.sender_busy > 0.0 {
            let _ = writeln!(
                s,
                "  sender:  busy {:.1}% of the run, {:.0} ns per packet",
                100.0 * self.sender_busy,
                self.sender_ns_per_packet
            );
        }
        if let Some(p) = &self.tx_port {
            let _ = writeln!(s, "  tx:      {p}");
        }
        let _ = write!(s, "  time:    {:.1} s", self.duration_secs);
        if let Some(p) = &self.pcap {
            let _ = write!(s, "\n  capture: {}", p.display());
        }
        s
    }
}

/// The once-a-second status line on stderr: rewritten in place on a
/// terminal, one line per second otherwise (logs, CI).
pub(crate) struct Progress {
    enabled: bool,
    tty: bool,
    last_ns: u64,
    last_packets: u64,
    wrote: bool,
}

/// What the progress line shows.
pub(crate) struct ProgressSnapshot {
    pub elapsed_ns: u64,
    pub up: u64,
    pub started: u64,
    pub total: u64,
    pub answered: u64,
    pub failed: u64,
    pub completed: u64,
    pub packets: u64,
    pub errors: u64,
    pub late: u64,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            tty: std::io::stderr().is_terminal(),
            last_ns: 0,
            last_packets: 0,
            wrote: false,
        }
    }

    /// When the next line is due.
    pub fn next_ns(&self) -> u64 {
        if self.enabled {
            self.last_ns + 1_000_000_000
        } else {
            u64::MAX
        }
    }

    pub fn tick(&mut self, s: &ProgressSnapshot) {
        if !self.enabled || s.elapsed_ns < self.next_ns() {
            return;
        }
        let dt = (s.elapsed_ns - self.last_ns) as f64 / 1e9;
        let pps = (s.packets - self.last_packets) as f64 / dt.max(1e-9);
        self.last_ns = s.elapsed_ns;
        self.last_packets = s.packets;
        let line = format!(
            "[{:>5.0}s] calls up {} started {}/{} answered {} failed {} done {} | rtp {:.0} pps sent {} errors {} late {}",
            s.elapsed_ns as f64 / 1e9,
            s.up,
            s.started,
            s.total,
            s.answered,
            s.failed,
            s.completed,
            pps,
            s.packets,
            s.errors,
            s.late
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.wrote = true;
    }

    /// End the in-place line so the summary starts on a fresh one.
    pub fn finish(&self) {
        if self.enabled && self.tty && self.wrote {
            let _ = writeln!(std::io::stderr());
        }
    }
}

impl RtpCounters {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.packets.load(Relaxed),
            self.errors.load(Relaxed),
            self.late.load(Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_json() {
        let mut s = Summary {
            mode: "sip".into(),
            target: "127.0.0.1:5060".into(),
            calls_attempted: 3,
            calls_answered: 2,
            calls_failed: 1,
            ..Summary::default()
        };
        s.failures.insert("503".into(), 1);
        assert!(!s.is_success());
        let text = s.render();
        assert!(text.contains("3 attempted, 2 answered, 1 failed"), "{text}");
        assert!(text.contains("503: 1"));
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["failures"]["503"], 1);
        assert!(j.get("pcap").is_none());
    }
}
