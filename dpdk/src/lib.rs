//! The one safe layer over DPDK (`dpdk-sys`) for mediafork.
//!
//! Setup, in order:
//! 1. [`Eal::init`] once per process (EAL options such as `-l`, `--vdev`,
//!    `--file-prefix`);
//! 2. a [`Mempool`] per port (or per NUMA socket);
//! 3. [`Port::configure`] with one rx queue per worker, then [`Port::start`];
//! 4. [`Port::rx_queue`] for each worker: an [`RxQueue`] is a
//!    [`PacketSource`](mediafork_dataplane::source::PacketSource), moved to
//!    the worker's thread and polled there.
//!
//! Handles keep what they depend on alive (queue → port → mempool → EAL), so
//! dropping them in any order is safe; DPDK resources are released when the
//! last user goes. A port cannot be stopped while a queue handle exists.
//!
//! ```no_run
//! use mediafork_dataplane::source::PacketSource;
//! use mediafork_dpdk::{Eal, Mempool, Port};
//!
//! # fn main() -> Result<(), mediafork_dpdk::DpdkError> {
//! let eal = Eal::init(&["-l", "0-1", "--file-prefix=mf", "--vdev=net_pcap0,rx_pcap=in.pcap"])?;
//! let pool = Mempool::new(&eal, "rx0", 8191, 256, None)?;
//! let mut port = Port::configure("net_pcap0", 1, 1024, &pool)?;
//! port.start()?;
//! let mut rxq = port.rx_queue(0)?;
//! let n = rxq.poll_burst(|pkts| {
//!     for p in pkts {
//!         println!("{} bytes at {}", p.data.len(), p.arrival_ns);
//!     }
//! });
//! # let _ = n;
//! # Ok(())
//! # }
//! ```

mod eal;
mod error;
mod mempool;
mod port;
mod queue;
pub mod testing;

pub use eal::{version, Eal, LcoreRegistration};
pub use error::DpdkError;
pub use mempool::{Mbuf, Mempool};
pub use port::{rss_ip_udp, Port, PortConfig, PortSpec, PortStats, QueueStats};
pub use queue::{RxQueue, TxQueue};

/// The data plane's burst size, re-exported for callers sizing their arrays.
pub use mediafork_dataplane::source::MAX_BURST;
