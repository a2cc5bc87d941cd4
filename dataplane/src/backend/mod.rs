//! Live packet backends that need neither root nor DPDK.
//!
//! [`socket`] is the embedded default: one kernel UDP socket per allocated
//! media port, read in batches with `recvmmsg` behind an `epoll` readiness
//! set, one [`socket::SocketSource`] per worker. It costs system calls per
//! ready socket rather than per packet, and the kernel has already checked
//! and stripped the IP/UDP headers, so it hands the workers
//! [`crate::source::Frame::Udp`] payloads.

pub mod socket;

pub use socket::{SocketBackend, SocketConfig, SocketError, SocketSource, SocketStats};

#[cfg(test)]
mod tests;
