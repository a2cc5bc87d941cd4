//! Where packets come from. A backend (kernel sockets, DPDK, a capture file)
//! implements [`PacketSource`]; a worker polls it in a loop, as DPDK's l2fwd
//! polls `rte_eth_rx_burst`.

use std::net::SocketAddr;

/// Largest burst a source hands over at once (DPDK's customary 32).
pub const MAX_BURST: usize = 32;

/// What the bytes of an [`RxPacket`] start with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A full Ethernet II frame (DPDK, AF_PACKET, Ethernet captures).
    Ethernet,
    /// An IPv4 or IPv6 packet with no link header (raw-IP captures, tun).
    Ip,
    /// The payload of a UDP datagram whose addresses the kernel already
    /// decoded (socket backend).
    Udp { src: SocketAddr, dst: SocketAddr },
}

/// One received packet, valid for the duration of the sink call.
#[derive(Clone, Copy, Debug)]
pub struct RxPacket<'a> {
    pub frame: Frame,
    pub data: &'a [u8],
    /// Arrival time, nanoseconds since the Unix epoch. Live backends read the
    /// clock once per burst; captures give each packet's recorded time.
    pub arrival_ns: u64,
}

/// A packet source polled by one worker. Implementations own their receive
/// queue exclusively (one queue per worker, no sharing).
pub trait PacketSource: Send {
    /// Receive up to [`MAX_BURST`] packets and pass them to `sink` in one call.
    /// The slices stay valid only during that call; the source releases them
    /// (e.g. frees the mbufs in bulk) when it returns. Returns the number of
    /// packets received, 0 when none were waiting. Must not block for long:
    /// the worker also services its command queue between bursts.
    fn poll_burst<F: FnMut(&[RxPacket<'_>])>(&mut self, sink: F) -> usize;

    /// Whether the source has reached its end (a finished capture). Live
    /// sources return false.
    fn is_exhausted(&self) -> bool {
        false
    }

    /// Name for logs and metrics (`socket`, `dpdk:0/1`, `pcap:FILE`).
    fn name(&self) -> &str;
}
