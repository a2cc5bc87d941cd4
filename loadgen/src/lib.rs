//! `mediafork loadgen`: a SIPREC recording client (SRC) simulator that an
//! operator points at any recorder, mediafork or another.
//!
//! A run opens `--calls` concurrent recording sessions at `--rate` new calls
//! per second, each an INVITE in a vendor's shape (CUBE, Acme Packet,
//! Ribbon, generic RFC 7866) with two labelled `a=sendonly` streams and
//! recording metadata, then sends both streams at real-time pacing to the
//! answered ports and ends with a BYE after `--duration`. `--rtp-only` skips
//! SIP and sends to given ports; `--pcap` writes the same traffic to a
//! capture file instead, with the recorder's answers synthesized, for
//! `mediafork replay` and DPDK `net_pcap` runs.
//!
//! The SIP side is a sans-IO state machine per call ([`call`]) driven by the
//! calling thread. RTP goes out from one thread ([`sender`]) that keeps every
//! stream in a timer wheel ([`wheel`]) and sends each tick's packets in
//! `sendmmsg` batches (about 9,000 streams per core, the kernel's transmit
//! path being most of the cost) or, with `--tx dpdk` and the `dpdk`
//! feature, as whole frames ([`frame`]) through a DPDK transmit queue (40,000
//! streams on time per core; BENCHMARKS.md §6). The
//! payload is the testkit's verifiable G.711 pattern, so the recordings a
//! load run leaves can be checked sample by sample.
//!
//! ```no_run
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     loadgen: mediafork_loadgen::LoadgenArgs,
//! }
//! let cli = Cli::parse();
//! let summary = mediafork_loadgen::run(&cli.loadgen).unwrap();
//! println!("{}", summary.render());
//! ```

#![forbid(unsafe_code)]
// With `--tx dpdk` the frames go through mediafork-dpdk, whose unsafe code
// is the project's one DPDK wrapper; this crate adds none.
#![warn(missing_docs)]

pub mod args;
pub mod call;
#[cfg(feature = "dpdk")]
mod dpdk_tx;
mod egress;
pub mod frame;
mod live;
mod pcap_mode;
pub mod sender;
pub mod sipmsg;
pub mod stream;
pub mod summary;
pub mod wheel;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

pub use args::{Codec, LoadgenArgs, Mac, PortList, PortRange, Style, TxKind};
pub use summary::Summary;

/// Why a run could not be carried out. Failed calls are not errors: they
/// are counted in the [`Summary`].
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The options do not make sense together.
    #[error("{0}")]
    Args(String),
    /// A socket could not be bound.
    #[error("cannot bind the {0} socket to {1}: {2}")]
    Bind(&'static str, SocketAddr, #[source] std::io::Error),
    /// A system call failed.
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// The capture file could not be written.
    #[error("cannot write {path}: {source}", path = .0.display(), source = .1)]
    Pcap(PathBuf, #[source] std::io::Error),
    /// A bug: a thread died.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Run the load described by `args` to completion: every call started,
/// answered or failed, and hung up. Blocks; prints the progress line on
/// stderr unless `--quiet`, and leaves printing the summary (text or
/// `--json`) to the caller.
pub fn run(args: &LoadgenArgs) -> Result<Summary, LoadgenError> {
    run_until(args, &AtomicBool::new(false))
}

/// [`run`], ending early when `stop` becomes true (e.g. from a Ctrl-C
/// handler): no new calls, BYE for the calls up, then the summary. Calls
/// still ringing are hung up as soon as they are answered.
pub fn run_until(args: &LoadgenArgs, stop: &AtomicBool) -> Result<Summary, LoadgenError> {
    let plan = args.plan()?;
    if plan.pcap.is_some() {
        pcap_mode::run(&plan)
    } else {
        live::run(&plan, stop)
    }
}

/// Print `summary` the way the command line does: JSON on stdout with
/// `--json`, else the text report.
pub fn print_summary(args: &LoadgenArgs, summary: &Summary) {
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(summary).expect("a summary serializes")
        );
    } else {
        println!("{}", summary.render());
    }
}
