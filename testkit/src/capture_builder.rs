//! Assemble a whole call (signalling, media, garbage) into one capture file.
//!
//! ```no_run
//! use mediafork_testkit::{sip, stream, Capture, CallSpec, Vendor};
//! let call = CallSpec::two_streams(
//!     "c1@192.0.2.1",
//!     "192.0.2.1:5060".parse().unwrap(),
//!     "198.51.100.7:5060".parse().unwrap(),
//!     Vendor::Generic,
//! );
//! let t0 = stream::DEFAULT_START_NS;
//! let mut cap = Capture::new();
//! cap.add_sip(t0 - 50_000_000, call.src_sip, call.dst_sip, &sip::siprec_invite(&call));
//! cap.add_sip(t0 - 40_000_000, call.dst_sip, call.src_sip, &sip::ok_200(&call));
//! let spec = stream::StreamSpec::new(
//!     "192.0.2.1:20000".parse().unwrap(),
//!     "198.51.100.7:40000".parse().unwrap(),
//!     0x1111,
//! );
//! cap.add_frames(stream::generate(&spec, stream::Impairments::default()));
//! cap.sorted().write_pcap("/tmp/call.pcap").unwrap();
//! ```

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use crate::frame::FrameSpec;
use crate::pcap::{self, LINKTYPE_ETHERNET};
use crate::stream::TimedFrame;

/// A list of timestamped Ethernet frames, kept in insertion order until
/// [`Capture::sorted`] (so a test can also write out-of-order captures on
/// purpose, as some capture tools produce).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    frames: Vec<(u64, Vec<u8>)>,
}

impl Capture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a SIP message sent over UDP from `src` to `dst` at `ts_ns`, in a
    /// single (possibly over-MTU) frame.
    pub fn add_sip(
        &mut self,
        ts_ns: u64,
        src: SocketAddr,
        dst: SocketAddr,
        text: &str,
    ) -> &mut Self {
        self.frames
            .push((ts_ns, FrameSpec::udp(src, dst).build(text.as_bytes())));
        self
    }

    /// Add a SIP message as IP fragments carrying at most
    /// `max_fragment_data` bytes each, all at `ts_ns` (in offset order), as
    /// a large SIPREC INVITE over UDP arrives. `id` is the IP identification.
    pub fn add_sip_fragmented(
        &mut self,
        ts_ns: u64,
        src: SocketAddr,
        dst: SocketAddr,
        text: &str,
        max_fragment_data: usize,
        id: u16,
    ) -> &mut Self {
        for f in FrameSpec::udp(src, dst).build_fragments(text.as_bytes(), max_fragment_data, id) {
            self.frames.push((ts_ns, f));
        }
        self
    }

    /// Add generated stream frames (see [`crate::stream::generate`]).
    pub fn add_frames(&mut self, frames: Vec<TimedFrame>) -> &mut Self {
        self.frames
            .extend(frames.into_iter().map(|f| (f.ts_ns, f.frame)));
        self
    }

    /// Add arbitrary bytes as one Ethernet-link record (garbage, ARP,
    /// truncated frames, hand-made packets).
    pub fn add_raw(&mut self, ts_ns: u64, bytes: Vec<u8>) -> &mut Self {
        self.frames.push((ts_ns, bytes));
        self
    }

    /// A copy with the frames sorted by time (stable: equal times keep
    /// insertion order). Takes `&self` so it works at the end of a chain of
    /// `add_*` calls as well as on an owned capture.
    pub fn sorted(&self) -> Capture {
        let mut c = self.clone();
        c.frames.sort_by_key(|(ts, _)| *ts);
        c
    }

    /// The frames, in their current order.
    pub fn frames(&self) -> &[(u64, Vec<u8>)] {
        &self.frames
    }

    /// The frames, consuming the capture.
    pub fn into_frames(self) -> Vec<(u64, Vec<u8>)> {
        self.frames
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Write a classic microsecond pcap (link type Ethernet), frames in
    /// their current order.
    pub fn write_pcap(&self, path: impl AsRef<Path>) -> io::Result<()> {
        pcap::write_pcap(path, LINKTYPE_ETHERNET, &self.frames)
    }

    /// Write a pcapng (one Ethernet interface, µs resolution), frames in
    /// their current order.
    pub fn write_pcapng(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let recs: Vec<(u64, u32, &[u8])> = self
            .frames
            .iter()
            .map(|(ts, f)| (*ts, LINKTYPE_ETHERNET, f.as_slice()))
            .collect();
        pcap::write_pcapng(path, &recs)
    }
}

impl Extend<TimedFrame> for Capture {
    fn extend<T: IntoIterator<Item = TimedFrame>>(&mut self, iter: T) {
        self.frames
            .extend(iter.into_iter().map(|f| (f.ts_ns, f.frame)));
    }
}
