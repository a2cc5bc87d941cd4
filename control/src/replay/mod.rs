//! `mediafork replay`: the live pipeline (parse → demux → tracks → writers)
//! run over a capture file, as fast as the disk allows and deterministically:
//! one inline worker, call setup from the SIP in the capture, and a worker
//! that waits for ring space instead of dropping.

mod auto;
#[cfg(feature = "dpdk")]
mod dpdk;
mod passive;
mod summary;

use std::path::{Path, PathBuf};
use std::time::Duration;

use mediafork_dataplane::capture::{strip_link, CaptureReader};
use mediafork_dataplane::config::DataplaneConfig;
use mediafork_dataplane::engine::Engine;
use mediafork_dataplane::packet;
use mediafork_dataplane::source::RxPacket;
use mediafork_dataplane::worker::{Outcome, WorkerCore};
use mediafork_dataplane::writer::WriterEvent;

#[cfg(feature = "dpdk")]
pub use dpdk::{replay_dpdk, DpdkReplay, DEFAULT_IDLE, DEFAULT_START_TIMEOUT};
pub use passive::metadata_file_name;
pub use summary::{RecordingSummary, ReplaySummary};

/// Ring space kept free before each packet: the largest record twice over.
const RING_HEADROOM: usize = 2 * (64 * 1024 + 64);

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Capture(#[from] mediafork_dataplane::capture::CaptureError),
    #[error("cannot create the output directory {0}: {1}")]
    Output(PathBuf, std::io::Error),
    #[error(transparent)]
    Engine(#[from] mediafork_dataplane::engine::EngineError),
    /// The DPDK source could not be set up.
    #[cfg(feature = "dpdk")]
    #[error(transparent)]
    Dpdk(#[from] crate::dpdk_backend::DpdkSetupError),
}

/// One item of replay input.
enum Item<'a> {
    /// A frame, with its link header already removed.
    Frame(RxPacket<'a>),
    /// A captured frame whose link layer could not be decoded.
    LinkError,
}

/// Where the frames of a replay come from: a capture file read directly, or
/// a DPDK rx queue (`dpdk.rs`).
trait Input {
    /// Hand the next frame(s) to `sink`, in order. Returns false at the end
    /// of the input (nothing was handed over then).
    fn next(&mut self, sink: &mut dyn FnMut(Item<'_>)) -> bool;

    /// Why the input ended early (a truncated or corrupt capture).
    fn error(&self) -> Option<String> {
        None
    }

    /// Frames handed over cut short because they did not fit a buffer.
    fn oversize_frames(&self) -> u64 {
        0
    }
}

/// A capture file, packet by packet, with the capture's timestamps.
struct CaptureInput {
    reader: CaptureReader,
    error: Option<String>,
}

impl Input for CaptureInput {
    fn next(&mut self, sink: &mut dyn FnMut(Item<'_>)) -> bool {
        let pkt = match self.reader.next_packet() {
            None => return false,
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                tracing::warn!("{e}; recordings keep what was read before it");
                self.error = Some(e.to_string());
                return false;
            }
        };
        match strip_link(pkt.link, pkt.data) {
            Ok((frame, data)) => sink(Item::Frame(RxPacket {
                frame,
                data,
                arrival_ns: pkt.timestamp_ns,
            })),
            Err(_) => sink(Item::LinkError),
        }
        true
    }

    fn error(&self) -> Option<String> {
        self.error.clone()
    }
}

/// Replay `capture` into recordings under `config.recordings_dir`.
pub fn replay(capture: &Path, config: DataplaneConfig) -> Result<ReplaySummary, ReplayError> {
    let reader = CaptureReader::open(capture)?;
    let mut input = CaptureInput {
        reader,
        error: None,
    };
    run(&mut input, capture.to_path_buf(), config)
}

/// The replay pipeline over any [`Input`]: the same passive SIP observer,
/// the same inline worker, the same wait for ring space.
fn run(
    input: &mut dyn Input,
    label: PathBuf,
    mut config: DataplaneConfig,
) -> Result<ReplaySummary, ReplayError> {
    std::fs::create_dir_all(&config.recordings_dir)
        .map_err(|e| ReplayError::Output(config.recordings_dir.clone(), e))?;
    // Determinism: one worker, driven on this thread.
    config.workers = 1;
    config.worker_cores.clear();
    let (engine, mut cores) = Engine::start(config)?;
    let mut core = cores
        .pop()
        .ok_or_else(|| mediafork_dataplane::engine::EngineError::Config("no worker core".into()))?;
    let mut summary = ReplaySummary {
        capture: label,
        ..ReplaySummary::default()
    };
    let mut sip = passive::PassiveSip::default();
    let mut auto = auto::AutoRecordings::default();
    let range = engine.shared().demux.range();
    let mut last_ts = 0u64;
    let mut closed = Vec::new();

    let mut on_item = |item: Item<'_>| {
        summary.frames += 1;
        let rx = match item {
            Item::Frame(rx) => rx,
            Item::LinkError => {
                summary.link_errors += 1;
                return;
            }
        };
        last_ts = last_ts.max(rx.arrival_ns);
        if let Ok(d) = packet::parse_frame(rx.frame, rx.data) {
            if !range.contains(d.dst.port()) && looks_like_sip(d.payload) {
                // Control actions act on the worker through its command
                // ring: service it first so it sees them in capture order.
                sip.on_datagram(&engine, &mut auto, d.payload, rx.arrival_ns);
                core.service();
                return;
            }
        }
        wait_for_ring(&mut core);
        if let Outcome::Unknown { dst, ssrc, rtcp } = core.handle(&rx) {
            let adopted = !rtcp && auto.adopt(&engine, dst, ssrc, rx.arrival_ns);
            let again = if adopted {
                core.retry(&rx)
            } else {
                Outcome::Unknown { dst, ssrc, rtcp }
            };
            if let Outcome::Unknown { .. } = again {
                core.count_unknown();
            }
        }
        if summary.frames % 256 == 0 {
            core.service();
            closed.extend(engine.closed());
        }
    };
    while input.next(&mut on_item) {}
    summary.capture_error = input.error();
    summary.oversize_frames = input.oversize_frames();

    sip.end_all(&engine, last_ts);
    auto.end_all(&engine, last_ts);
    core.service();
    while core.pending_reports() > 0 {
        std::thread::sleep(Duration::from_millis(1));
        core.service();
    }
    summary.add_counters(core.counters());
    summary.sip_messages = sip.counters.messages;
    summary.sip_malformed = sip.counters.malformed;
    drop(core);
    closed.extend(engine.closed());
    closed.extend(engine.shutdown());
    let mut recs: Vec<_> = closed
        .into_iter()
        .map(|e| match e {
            WriterEvent::Closed(c) => c,
        })
        .collect();
    recs.sort_by(|a, b| {
        (&a.meta.started_at, &a.meta.recording_id).cmp(&(&b.meta.started_at, &b.meta.recording_id))
    });
    for c in recs {
        summary.add_recording(c.dir, &c.meta);
    }
    Ok(summary)
}

fn wait_for_ring(core: &mut WorkerCore) {
    while core.min_ring_free() < RING_HEADROOM {
        core.service();
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// A SIP request or response: starts with a method token and a SIP URI, or
/// with the SIP version. Leading CRLF keep-alives are allowed.
pub fn looks_like_sip(payload: &[u8]) -> bool {
    let p = payload.strip_prefix(b"\r\n").unwrap_or(payload);
    if p.starts_with(b"SIP/2.0 ") {
        return true;
    }
    let Some(sp) = p.iter().take(16).position(|&b| b == b' ') else {
        return false;
    };
    sp > 0
        && p[..sp].iter().all(|b| b.is_ascii_uppercase())
        && (p[sp + 1..].starts_with(b"sip:")
            || p[sp + 1..].starts_with(b"sips:")
            || p[sp + 1..].starts_with(b"tel:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_sniffing() {
        assert!(looks_like_sip(b"INVITE sip:srs@192.0.2.1 SIP/2.0\r\n"));
        assert!(looks_like_sip(b"SIP/2.0 200 OK\r\n"));
        assert!(looks_like_sip(b"\r\nBYE sips:x SIP/2.0\r\n"));
        assert!(!looks_like_sip(b"\x80\x00\x00\x01"));
        assert!(!looks_like_sip(b"GET / HTTP/1.1\r\n"));
        assert!(!looks_like_sip(b""));
    }
}
