//! Why a packet did not reach a recording. Every drop is counted under one of
//! these reasons, per worker; the names are the `reason` label of the metrics
//! and the keys of `mediafork replay`'s summary, so keep them stable.

/// A counted reason for not recording a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// Frame or header shorter than its fields say, bad lengths or versions.
    Malformed,
    /// Not IPv4/IPv6 (ARP, LLDP, ...), or a link type we do not decode.
    NotIp,
    /// IP, but not UDP (TCP, ICMP, ...).
    NotUdp,
    /// An IPv4 or IPv6 fragment: RTP is never fragmented, so these are dropped.
    Fragment,
    /// UDP to a port outside the recording range.
    OutsideRange,
    /// UDP in the range whose payload is not RTP or RTCP version 2.
    NotRtp,
    /// RTP to an address/port (and SSRC) that no active call owns.
    UnknownPort,
    /// The table entry belonged to a call that had just ended.
    Stale,
    /// The packet arrived after its place in the timeline was written out.
    Late,
    /// A packet with a sequence number already recorded.
    Duplicate,
    /// RTP whose payload type the track cannot record (not in its SDP, or a
    /// codec mediafork does not decode yet).
    UnsupportedCodec,
    /// The ring to the writer was full (the writer cannot keep up).
    RingFull,
    /// SRTP/SRTCP whose authentication tag did not verify: forged,
    /// corrupted, or sent with another key than the SDP's.
    SrtpAuthFailed,
    /// SRTP/SRTCP already received, or older than the 64-packet replay
    /// window (on SRTP tracks this is where duplicates are counted).
    SrtpReplay,
    /// From another source address than the one the track is locked to
    /// (`media.source_policy`): spoofed, or a stray stream.
    WrongSource,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 15] = [
        DropReason::Malformed,
        DropReason::NotIp,
        DropReason::NotUdp,
        DropReason::Fragment,
        DropReason::OutsideRange,
        DropReason::NotRtp,
        DropReason::UnknownPort,
        DropReason::Stale,
        DropReason::Late,
        DropReason::Duplicate,
        DropReason::UnsupportedCodec,
        DropReason::RingFull,
        DropReason::SrtpAuthFailed,
        DropReason::SrtpReplay,
        DropReason::WrongSource,
    ];
    /// Number of reasons (length of a per-reason counter array).
    pub const COUNT: usize = Self::ALL.len();

    /// The stable snake_case name used in metrics labels and summaries.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NotIp => "not_ip",
            DropReason::NotUdp => "not_udp",
            DropReason::Fragment => "fragment",
            DropReason::OutsideRange => "outside_range",
            DropReason::NotRtp => "not_rtp",
            DropReason::UnknownPort => "unknown_port",
            DropReason::Stale => "stale",
            DropReason::Late => "late",
            DropReason::Duplicate => "duplicate",
            DropReason::UnsupportedCodec => "unsupported_codec",
            DropReason::RingFull => "ring_full",
            DropReason::SrtpAuthFailed => "srtp_auth_failed",
            DropReason::SrtpReplay => "srtp_replay",
            DropReason::WrongSource => "wrong_source",
        }
    }

    /// Index into a per-reason counter array.
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_order_of_all() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{}", r.name());
        }
    }
}
