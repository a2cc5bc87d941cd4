//! The mediafork data plane.
//!
//! Packets flow `source → worker → ring → writer → recording`:
//! - a [`source::PacketSource`] hands bursts of frames to a worker;
//! - the [`worker`] parses them ([`packet`]), finds their track through the
//!   lock-free [`demux`] table, updates the per-track state it owns ([`track`])
//!   and copies the payload into an SPSC [`ring`];
//! - a [`writer`] thread drains the rings and writes the [`recording`] files.
//!
//! Nothing on the per-packet path allocates, locks or makes a system call.

pub mod backend;
pub mod capture;
pub mod codec;
pub mod config;
pub mod demux;
pub mod drop_reason;
pub mod engine;
pub mod jitter;
pub mod packet;
pub mod recording;
pub mod report;
pub mod ring;
pub mod seq;
pub mod source;
pub mod source_lock;
pub mod specs;
pub mod srtp;
pub mod stats;
pub mod track;
pub mod worker;
pub mod writer;

pub use drop_reason::DropReason;
pub use hdrhistogram;
pub use writer::stats::{RingOccupancy, WriterStatsSnapshot};
pub use writer::RecordingControl;
