//! Timed RTP streams with network impairments.
//!
//! [`generate`] turns a [`StreamSpec`] into the frames a capture or a replay
//! would deliver, each with its arrival time, and [`Impairments`] bends that
//! ideal stream the ways real networks and SBCs do. Every frame remembers its
//! packet index, so a test can predict exactly what the recording must hold
//! (see [`crate::payload`]).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use crate::frame::FrameSpec;
use crate::payload;
use crate::rng::SplitMix64;
use crate::rtp::RtpPacket;

/// An ideal RTP stream: constant packet time, consecutive sequence numbers
/// and timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Where the packets come from (the SBC's media address).
    pub src: SocketAddr,
    /// Where they go (mediafork's RTP port, 39500..=43500).
    pub dst: SocketAddr,
    /// SSRC of the stream.
    pub ssrc: u32,
    /// RTP payload type (0 PCMU, 8 PCMA, ...).
    pub payload_type: u8,
    /// Packet time in milliseconds (usually 20).
    pub ptime_ms: u32,
    /// RTP clock rate in Hz (8000 for G.711).
    pub clock_rate: u32,
    /// Sequence number of packet 0; numbers wrap modulo 2^16.
    pub first_seq: u16,
    /// RTP timestamp of packet 0; timestamps wrap modulo 2^32.
    pub first_ts: u32,
    /// Arrival time of packet 0, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// Number of packets (indices `0..packets`), before impairments.
    pub packets: u32,
    /// VLAN tags of every frame (see [`FrameSpec::vlans`]).
    pub vlans: Vec<u16>,
}

/// 2023-11-14T22:13:20Z: a fixed, obviously synthetic start time.
pub const DEFAULT_START_NS: u64 = 1_700_000_000_000_000_000;

impl StreamSpec {
    /// A 1-second PCMU stream (50 packets of 20 ms at 8 kHz) starting at
    /// [`DEFAULT_START_NS`] with sequence 0 and timestamp 0; adjust fields
    /// with struct-update syntax.
    pub fn new(src: SocketAddr, dst: SocketAddr, ssrc: u32) -> Self {
        Self {
            src,
            dst,
            ssrc,
            payload_type: 0,
            ptime_ms: 20,
            clock_rate: 8000,
            first_seq: 0,
            first_ts: 0,
            start_ns: DEFAULT_START_NS,
            packets: 50,
            vlans: Vec::new(),
        }
    }

    /// Samples (and, for G.711, payload bytes) per packet.
    pub fn samples_per_packet(&self) -> u32 {
        (u64::from(self.clock_rate) * u64::from(self.ptime_ms) / 1000) as u32
    }

    /// Packet interval in nanoseconds.
    pub fn ptime_ns(&self) -> u64 {
        u64::from(self.ptime_ms) * 1_000_000
    }

    /// The RTP packet with index `index` under `imp` (ignoring whether it is
    /// dropped): SSRC, sequence, timestamp and marker as [`generate`] sends
    /// them, payload [`payload::pattern`].
    pub fn rtp_packet(&self, index: u32, imp: &Impairments) -> RtpPacket {
        let spp = self.samples_per_packet();
        let (ssrc, seq, mut ts, marker) = match imp.ssrc_change_at {
            Some((at, new_ssrc, new_seq, new_ts)) if index >= at => {
                let k = index - at;
                (
                    new_ssrc,
                    new_seq.wrapping_add(k as u16),
                    new_ts.wrapping_add(k.wrapping_mul(spp)),
                    index == at,
                )
            }
            _ => (
                self.ssrc,
                self.first_seq.wrapping_add(index as u16),
                self.first_ts.wrapping_add(index.wrapping_mul(spp)),
                index == 0,
            ),
        };
        if let Some((at, delta)) = imp.ts_jump_at {
            if index >= at {
                ts = ts.wrapping_add(delta);
            }
        }
        RtpPacket {
            marker,
            ..RtpPacket::new(
                self.payload_type,
                seq,
                ts,
                ssrc,
                payload::pattern(index, spp as usize),
            )
        }
    }
}

/// What the network (or the SBC) does to an ideal stream. All lists hold
/// packet indices; indices beyond the stream are ignored. The default is no
/// impairment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Impairments {
    /// Packets never sent.
    pub drop: Vec<u32>,
    /// Packets sent twice; the copy arrives [`DUPLICATE_GAP_NS`] after the
    /// original.
    pub duplicate: Vec<u32>,
    /// Packet `i` arrives after packet `i + 1` (by [`REORDER_GAP_NS`]). The
    /// rule is applied from the end of the stream backwards, so `[3, 4]`
    /// gives the order 5, 4, 3. No effect on the last packet. If `i + 1` is
    /// dropped, `i` still arrives after the time `i + 1` would have.
    pub reorder: Vec<u32>,
    /// From this index on, the stream continues with a new SSRC, sequence
    /// and timestamp base `(index, ssrc, seq, ts)`, marker set on the first
    /// packet: what an SBC does when the call is transferred or re-anchored.
    pub ssrc_change_at: Option<(u32, u32, u16, u32)>,
    /// From this index on, `delta` is added to every RTP timestamp (wrapping),
    /// with no marker: a sender clock jump or a silence-suppression gap that
    /// the sequence numbers do not show.
    pub ts_jump_at: Option<(u32, u32)>,
    /// Arrival-time offsets `(index, ns)`, positive late, negative early.
    /// Offsets large enough to overtake a neighbour reorder the output; the
    /// frames always come back sorted by arrival.
    pub jitter_ns: Vec<(u32, i64)>,
}

impl Impairments {
    /// Add a deterministic jitter offset in `-max_abs_ns..=max_abs_ns` to each
    /// of `packets` packets, drawn from a SplitMix64 seeded with `seed`.
    pub fn with_random_jitter(mut self, seed: u64, packets: u32, max_abs_ns: i64) -> Self {
        let mut rng = SplitMix64::new(seed);
        self.jitter_ns
            .extend((0..packets).map(|i| (i, rng.range_i64(-max_abs_ns, max_abs_ns))));
        self
    }

    /// Drop each of `packets` packets with probability `num/den`, drawn from
    /// a SplitMix64 seeded with `seed` (a reproducible "2 % loss").
    pub fn with_random_loss(mut self, seed: u64, packets: u32, num: u64, den: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        self.drop
            .extend((0..packets).filter(|_| rng.chance(num, den)));
        self
    }
}

/// How long after the original a duplicate arrives.
pub const DUPLICATE_GAP_NS: u64 = 1_000;
/// How long after packet `i + 1` a reordered packet `i` arrives. Larger than
/// [`DUPLICATE_GAP_NS`] so a reordered packet also follows a duplicate of its
/// successor.
pub const REORDER_GAP_NS: u64 = 2_000;

/// One frame of a generated stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedFrame {
    /// Arrival time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The Ethernet frame.
    pub frame: Vec<u8>,
    /// Packet index in the ideal stream (a duplicate shares its original's).
    pub index: u32,
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub rtp_ts: u32,
}

/// The frames of `spec` under `imp`, sorted by arrival time (stable: equal
/// times keep generation order). Accepts the spec and impairments by value or
/// by reference.
pub fn generate<S: Borrow<StreamSpec>, I: Borrow<Impairments>>(spec: S, imp: I) -> Vec<TimedFrame> {
    let spec = spec.borrow();
    let imp = imp.borrow();
    let n = spec.packets;
    let dropped: BTreeSet<u32> = imp.drop.iter().copied().collect();
    let duplicated: BTreeSet<u32> = imp.duplicate.iter().copied().collect();
    let reordered: BTreeSet<u32> = imp.reorder.iter().copied().collect();
    let jitter: BTreeMap<u32, i64> = imp.jitter_ns.iter().copied().collect();

    // Arrival of every index, dropped ones included (they still define the
    // slot a reordered predecessor waits for). Computed backwards so chains
    // of reorders compose.
    let nominal = |i: u32| -> u64 {
        let t = i128::from(spec.start_ns)
            + i128::from(i) * i128::from(spec.ptime_ns())
            + i128::from(jitter.get(&i).copied().unwrap_or(0));
        t.clamp(0, i128::from(u64::MAX)) as u64
    };
    let mut arrival = vec![0u64; n as usize];
    for i in (0..n).rev() {
        let mut t = nominal(i);
        if reordered.contains(&i) && i + 1 < n {
            t = t.max(arrival[(i + 1) as usize].saturating_add(REORDER_GAP_NS));
        }
        arrival[i as usize] = t;
    }

    let frame_spec = FrameSpec {
        vlans: spec.vlans.clone(),
        ..FrameSpec::udp(spec.src, spec.dst)
    };
    let mut out = Vec::with_capacity(n as usize + duplicated.len());
    for i in (0..n).filter(|i| !dropped.contains(i)) {
        let pkt = spec.rtp_packet(i, imp);
        let f = TimedFrame {
            ts_ns: arrival[i as usize],
            frame: frame_spec.build(&pkt.to_bytes()),
            index: i,
            seq: pkt.sequence,
            rtp_ts: pkt.timestamp,
        };
        if duplicated.contains(&i) {
            let copy = TimedFrame {
                ts_ns: f.ts_ns.saturating_add(DUPLICATE_GAP_NS),
                ..f.clone()
            };
            out.push(f);
            out.push(copy);
        } else {
            out.push(f);
        }
    }
    out.sort_by_key(|f| f.ts_ns);
    out
}

/// Interleave several streams into one arrival-ordered list, as a capture of
/// a whole call holds them. Stable: frames with equal times keep the order of
/// `streams` and their order within each stream.
pub fn merge(streams: Vec<Vec<TimedFrame>>) -> Vec<TimedFrame> {
    let mut all: Vec<TimedFrame> = streams.into_iter().flatten().collect();
    all.sort_by_key(|f| f.ts_ns);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(packets: u32) -> StreamSpec {
        StreamSpec {
            packets,
            ..StreamSpec::new(
                "192.0.2.10:20000".parse().unwrap(),
                "192.0.2.20:40000".parse().unwrap(),
                0x1234,
            )
        }
    }

    fn indices(frames: &[TimedFrame]) -> Vec<u32> {
        frames.iter().map(|f| f.index).collect()
    }

    #[test]
    fn ideal_stream_is_regular() {
        let s = spec(5);
        let f = generate(&s, Impairments::default());
        assert_eq!(indices(&f), vec![0, 1, 2, 3, 4]);
        for (i, fr) in f.iter().enumerate() {
            assert_eq!(fr.ts_ns, DEFAULT_START_NS + i as u64 * 20_000_000);
            assert_eq!(fr.seq, i as u16);
            assert_eq!(fr.rtp_ts, i as u32 * 160);
        }
    }

    #[test]
    fn reorder_chain_runs_backwards() {
        let imp = Impairments {
            reorder: vec![3, 4],
            ..Default::default()
        };
        assert_eq!(indices(&generate(spec(7), imp)), vec![0, 1, 2, 5, 4, 3, 6]);
    }

    #[test]
    fn jitter_can_overtake() {
        let imp = Impairments {
            jitter_ns: vec![(1, 25_000_000)],
            ..Default::default()
        };
        assert_eq!(indices(&generate(spec(4), imp)), vec![0, 2, 1, 3]);
    }

    #[test]
    fn random_helpers_are_reproducible() {
        let a = Impairments::default().with_random_loss(9, 1000, 2, 100);
        let b = Impairments::default().with_random_loss(9, 1000, 2, 100);
        assert_eq!(a, b);
        assert!(a.drop.len() > 5 && a.drop.len() < 50, "{}", a.drop.len());
        let j = Impairments::default().with_random_jitter(1, 10, 3_000_000);
        assert!(j.jitter_ns.iter().all(|&(_, o)| o.abs() <= 3_000_000));
    }
}
