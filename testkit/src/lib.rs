//! Builders for everything mediafork's end-to-end tests and benchmarks feed it:
//! Ethernet/IP/UDP frames ([`frame`]), RTP and RTCP packets ([`rtp`]), a
//! verifiable audio pattern ([`payload`]), timed RTP streams with network
//! impairments ([`stream`]), SIP and SIPREC messages ([`sip`]), capture files
//! ([`pcap`], [`capture_builder`]) and a WAV reader to check what mediafork
//! wrote ([`wav`]).
//!
//! Two rules hold throughout, because the tests built on this crate must give
//! the same verdict on every run and every machine:
//! - everything is deterministic: identifiers, tags and "random" choices are
//!   derived from the caller's inputs or from an explicit seed ([`rng`]);
//! - nothing here talks to the network: the addresses are whatever the caller
//!   passes (use documentation or loopback ranges), and the output is bytes.
//!
//! An SRTP sender ([`srtp`]) protects streams with the data plane's SRTP
//! contexts. The crate has no unsafe code and no dependency beyond
//! `thiserror` and, for [`srtp`], `mediafork-dataplane`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture_builder;
pub mod frame;
pub mod payload;
pub mod pcap;
pub mod rng;
pub mod rtp;
pub mod sip;
pub mod srtp;
pub mod stream;
pub mod wav;

pub use capture_builder::Capture;
pub use frame::FrameSpec;
pub use rtp::RtpPacket;
pub use sip::{CallSpec, OfferedStream, Vendor};
pub use stream::{Impairments, StreamSpec, TimedFrame};
