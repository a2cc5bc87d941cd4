//! Where a request came from and where its responses go: the only transport
//! knowledge the transaction layer has. The driver owns the sockets.

use std::net::SocketAddr;

/// The transport a message arrived on.
///
/// Reliability decides the timers (RFC 3261 §17.2.1, §17.2.2): over a
/// reliable transport the layer never retransmits a response, and Timers I
/// and J are zero because no request retransmission can still be in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Whether the transport delivers in order and without loss (TCP, TLS).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// The other end of a request: its source address, the transport, and for
/// TCP/TLS the driver's id of the connection it arrived on.
///
/// Responses are sent back to this peer: to the source address over UDP
/// (RFC 3581 symmetric response, which is what SBCs behind NAT expect), and
/// on the same connection over TCP/TLS (RFC 3261 §18.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
    /// The TCP/TLS connection id assigned by the driver; `None` for UDP.
    pub conn: Option<u64>,
}

impl Peer {
    pub fn udp(addr: SocketAddr) -> Peer {
        Peer {
            addr,
            transport: Transport::Udp,
            conn: None,
        }
    }

    pub fn tcp(addr: SocketAddr, conn: u64) -> Peer {
        Peer {
            addr,
            transport: Transport::Tcp,
            conn: Some(conn),
        }
    }

    pub fn tls(addr: SocketAddr, conn: u64) -> Peer {
        Peer {
            addr,
            transport: Transport::Tls,
            conn: Some(conn),
        }
    }

    pub fn is_reliable(&self) -> bool {
        self.transport.is_reliable()
    }

    /// Whether a transport error reported for `failed` concerns messages to
    /// this peer: the same connection when the failure names one, otherwise
    /// the same address on the same transport (an ICMP error for UDP).
    pub(crate) fn affected_by(&self, failed: &Peer) -> bool {
        if self.transport != failed.transport {
            return false;
        }
        match failed.conn {
            Some(conn) => self.conn == Some(conn),
            None => self.addr == failed.addr,
        }
    }
}

/// A datagram or stream write the driver must perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub bytes: Vec<u8>,
}
