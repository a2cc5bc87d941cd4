//! Where the sender's packets leave: kernel UDP sockets (`sendmmsg`) or,
//! with the `dpdk` feature, a DPDK transmit queue.
//!
//! The sender fills one [`Batch`] per lane with due packets and hands it
//! here; a lane is a socket, or the one transmit queue.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};

use crate::frame::{FrameHeader, MAX_HEADER};
use crate::stream::MAX_PACKET;
use crate::LoadgenError;

/// Packets per batch (`sendmmsg` call, or two DPDK bursts).
pub const BATCH: usize = 64;
/// Largest packet a batch slot holds: a frame header and the RTP.
pub const MAX_FRAME: usize = MAX_HEADER + MAX_PACKET;

/// One lane's pending packets.
pub(crate) struct Batch {
    pub bufs: Vec<[u8; MAX_FRAME]>,
    pub lens: Vec<usize>,
    pub addrs: Vec<Option<SockaddrStorage>>,
    pub dues: Vec<u64>,
}

impl Batch {
    pub fn new() -> Self {
        Self {
            bufs: vec![[0u8; MAX_FRAME]; BATCH],
            lens: Vec::with_capacity(BATCH),
            addrs: Vec::with_capacity(BATCH),
            dues: Vec::with_capacity(BATCH),
        }
    }

    pub fn clear(&mut self) {
        self.lens.clear();
        self.addrs.clear();
        self.dues.clear();
    }
}

/// What one send did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sent {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
}

/// What the sender thread builds its egress from (this part is `Send`;
/// the egress itself may not be).
pub(crate) enum EgressSetup {
    Sockets(Vec<UdpSocket>),
    /// The sockets stay bound to reserve the source ports the frames carry.
    #[cfg(feature = "dpdk")]
    Dpdk(crate::args::DpdkTxPlan, Vec<UdpSocket>),
}

impl EgressSetup {
    /// Refuse `--tx dpdk` in a build without DPDK, before anything starts.
    pub fn from_plan(
        plan: &crate::args::Plan,
        sockets: Vec<UdpSocket>,
    ) -> Result<Self, LoadgenError> {
        match &plan.dpdk {
            None => Ok(EgressSetup::Sockets(sockets)),
            #[cfg(feature = "dpdk")]
            Some(d) => Ok(EgressSetup::Dpdk(d.clone(), sockets)),
            #[cfg(not(feature = "dpdk"))]
            Some(_) => Err(LoadgenError::Args(
                "--tx dpdk: this mediafork was built without DPDK support; rebuild with \
                 `cargo build --release -p mediafork-control --features dpdk` (needs libdpdk-dev)"
                    .into(),
            )),
        }
    }
}

pub(crate) enum Egress {
    Sockets {
        sockets: Vec<UdpSocket>,
        // Raw pointers inside: built on the sender thread and kept there.
        headers: Vec<MultiHeaders<SockaddrStorage>>,
    },
    #[cfg(feature = "dpdk")]
    Dpdk(crate::dpdk_tx::DpdkTx),
}

impl Egress {
    /// Build on the thread that will send.
    pub fn open(setup: EgressSetup) -> Result<Egress, LoadgenError> {
        match setup {
            EgressSetup::Sockets(sockets) => {
                let headers = (0..sockets.len())
                    .map(|_| MultiHeaders::preallocate(BATCH, None))
                    .collect();
                Ok(Egress::Sockets { sockets, headers })
            }
            #[cfg(feature = "dpdk")]
            EgressSetup::Dpdk(plan, sockets) => {
                Ok(Egress::Dpdk(crate::dpdk_tx::DpdkTx::open(&plan, sockets)?))
            }
        }
    }

    /// How many batches the sender keeps.
    pub fn lanes(&self) -> usize {
        match self {
            Egress::Sockets { sockets, .. } => sockets.len(),
            #[cfg(feature = "dpdk")]
            Egress::Dpdk(_) => 1,
        }
    }

    /// The lane of a stream whose source is socket `sock` of the pool.
    pub fn lane(&self, sock: usize) -> usize {
        sock % self.lanes()
    }

    /// The header a stream's packets need in front of their RTP.
    pub fn header(&self, src: SocketAddr, dst: SocketAddr, rtp_len: usize) -> FrameHeader {
        match self {
            Egress::Sockets { .. } => {
                let _ = (src, dst, rtp_len);
                FrameHeader::none()
            }
            #[cfg(feature = "dpdk")]
            Egress::Dpdk(d) => d.header(src, dst, rtp_len),
        }
    }

    /// Send everything in `b`; the caller empties it.
    pub fn send(&mut self, lane: usize, b: &mut Batch) -> Sent {
        match self {
            Egress::Sockets { sockets, headers } => {
                send_sockets(&sockets[lane], &mut headers[lane], b)
            }
            #[cfg(feature = "dpdk")]
            Egress::Dpdk(d) => d.send(b),
        }
    }

    /// Port counters worth a line in the summary, if any.
    pub fn close(self) -> Option<String> {
        match self {
            Egress::Sockets { .. } => None,
            #[cfg(feature = "dpdk")]
            Egress::Dpdk(d) => Some(d.close()),
        }
    }
}

fn send_sockets(sock: &UdpSocket, headers: &mut MultiHeaders<SockaddrStorage>, b: &Batch) -> Sent {
    let n = b.lens.len();
    let fd = sock.as_raw_fd();
    let iovs: Vec<[std::io::IoSlice<'_>; 1]> = b
        .bufs
        .iter()
        .zip(&b.lens)
        .map(|(buf, &len)| [std::io::IoSlice::new(&buf[..len])])
        .collect();
    let no_cmsgs: [ControlMessage<'_>; 0] = [];
    let mut out = Sent::default();
    let mut start = 0;
    while start < n {
        match sendmmsg(
            fd,
            headers,
            &iovs[start..],
            &b.addrs[start..n],
            no_cmsgs,
            MsgFlags::empty(),
        ) {
            Ok(results) => {
                let k = results.count();
                if k == 0 {
                    out.errors += 1;
                    start += 1;
                } else {
                    out.bytes += b.lens[start..start + k].iter().sum::<usize>() as u64;
                    out.packets += k as u64;
                    start += k;
                }
            }
            Err(Errno::EINTR) => {}
            // The datagram at `start` was refused (EAGAIN: the socket
            // buffer is full; others: no route, ...): count and move on.
            Err(_) => {
                out.errors += 1;
                start += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[cfg(not(feature = "dpdk"))]
    #[test]
    fn tx_dpdk_without_the_feature_says_how_to_get_it() {
        use clap::{Args, Command, FromArgMatches};
        let cmd = crate::LoadgenArgs::augment_args(Command::new("loadgen"));
        let argv = [
            "loadgen",
            "--target",
            "127.0.0.1",
            "--rtp-only",
            "40000",
            "--quiet",
            "--tx",
            "dpdk",
            "--dpdk-eal",
            "--no-huge -l 0 --vdev=net_null0",
            "--dst-mac",
            "02:00:00:00:00:02",
        ];
        let args =
            crate::LoadgenArgs::from_arg_matches(&cmd.try_get_matches_from(argv).unwrap()).unwrap();
        let e = crate::run(&args).unwrap_err().to_string();
        assert!(e.contains("built without DPDK"), "{e}");
        assert!(e.contains("--features dpdk"), "{e}");
    }
}
