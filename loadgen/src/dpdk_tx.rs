//! `--tx dpdk`: RTP frames through a DPDK transmit queue.
//!
//! The sender thread initialises the EAL itself, so it becomes the main
//! lcore, pinned where `-l` says, and owns the queue alone. Each batch is
//! copied into mbufs and handed over in bursts of 32; the driver frees
//! them once sent. A queue that stays full for [`FULL_RETRIES`] tries in a
//! row drops the rest of the batch as send errors, as a full socket buffer
//! does, so one slow moment never shifts every later packet's schedule.

use std::net::{SocketAddr, UdpSocket};

use mediafork_dpdk::{Eal, Mbuf, Mempool, Port, PortConfig, PortSpec, TxQueue};

use crate::args::DpdkTxPlan;
use crate::egress::{Batch, Sent};
use crate::frame::FrameHeader;
use crate::LoadgenError;

/// Tries of a burst the queue did not take before giving up on the batch.
const FULL_RETRIES: u32 = 256;
/// Mbufs: the tx ring (1024), a batch in flight, the lcore cache (256), with
/// room to spare; 2^n - 1 suits DPDK's ring.
const POOL_MBUFS: u32 = 8191;
const POOL_CACHE: u32 = 256;

pub(crate) struct DpdkTx {
    // Declared first, dropped first: the queue before its port.
    txq: TxQueue,
    port: Port,
    pool: Mempool,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    /// Keeps the source ports the frames carry reserved on this host.
    _reserved: Vec<UdpSocket>,
    _eal: Eal,
}

fn dpdk_error(what: &str, e: impl std::fmt::Display) -> LoadgenError {
    LoadgenError::Args(format!("--tx dpdk: {what}: {e}"))
}

/// Where the UDP payload starts in a frame this module built (untagged
/// Ethernet, IPv4 without options or IPv6 without extension headers).
fn udp_payload_offset(frame: &[u8]) -> usize {
    match frame.get(12..14) {
        Some([0x08, 0x00]) => 14 + 20 + 8,
        _ => 14 + 40 + 8,
    }
}

impl DpdkTx {
    pub fn open(plan: &DpdkTxPlan, reserved: Vec<UdpSocket>) -> Result<DpdkTx, LoadgenError> {
        let eal = Eal::init(&plan.eal_args).map_err(|e| dpdk_error("EAL", e))?;
        if eal.port_count() == 0 {
            return Err(LoadgenError::Args(
                "--tx dpdk: the EAL found no port: add a device to --dpdk-eal (-a PCI-ADDRESS, \
                 or --vdev=net_af_packet0,iface=IF for a kernel interface)"
                    .into(),
            ));
        }
        let pool = Mempool::new(&eal, "loadgen_tx", POOL_MBUFS, POOL_CACHE, None)
            .map_err(|e| dpdk_error("mempool", e))?;
        let spec: PortSpec = plan
            .port
            .parse()
            .map_err(|e| dpdk_error(&format!("--dpdk-port {}", plan.port), e))?;
        let config = PortConfig {
            n_rx_queues: 1,
            n_tx_queues: 1,
            rx_desc: 128,
            tx_desc: 1024,
            rss_hf: None,
            promiscuous: false,
        };
        let mut port = Port::configure_with(spec, &config, &pool)
            .map_err(|e| dpdk_error(&format!("port {}", plan.port), e))?;
        port.start()
            .map_err(|e| dpdk_error(&format!("port {}", plan.port), e))?;
        let src_mac = port
            .mac_address()
            .map_err(|e| dpdk_error(&format!("port {}", plan.port), e))?;
        let txq = port
            .tx_queue(0)
            .map_err(|e| dpdk_error(&format!("port {}", plan.port), e))?;
        Ok(DpdkTx {
            txq,
            port,
            pool,
            src_mac,
            dst_mac: plan.dst_mac,
            _reserved: reserved,
            _eal: eal,
        })
    }

    pub fn header(&self, src: SocketAddr, dst: SocketAddr, rtp_len: usize) -> FrameHeader {
        FrameHeader::udp(self.src_mac, self.dst_mac, src, dst, rtp_len)
    }

    pub fn send(&mut self, b: &Batch) -> Sent {
        let mut out = Sent::default();
        let mut pkts: Vec<Mbuf<'_>> = Vec::with_capacity(b.lens.len());
        // UDP payload lengths, for `bytes` (which counts RTP bytes, as the
        // socket path does).
        let mut payload = [0usize; crate::egress::BATCH];
        for (buf, &len) in b.bufs.iter().zip(&b.lens) {
            match self.pool.alloc_with(&buf[..len]) {
                Ok(m) => {
                    payload[pkts.len()] = len - udp_payload_offset(&buf[..len]);
                    pkts.push(m);
                }
                // The pool is dry: the NIC is not draining its ring.
                Err(_) => out.errors += 1,
            }
        }
        let (mut misses, mut done) = (0, 0);
        while !pkts.is_empty() {
            let sent = self.txq.tx_burst(&mut pkts);
            if sent == 0 {
                misses += 1;
                if misses >= FULL_RETRIES {
                    break;
                }
                std::hint::spin_loop();
                continue;
            }
            misses = 0;
            out.packets += sent as u64;
            out.bytes += payload[done..done + sent].iter().sum::<usize>() as u64;
            done += sent;
        }
        // Given up: freed when `pkts` drops.
        out.errors += pkts.len() as u64;
        out
    }

    /// The port's own counters, for the summary.
    pub fn close(self) -> String {
        match self.port.stats() {
            Ok(s) => format!(
                "dpdk port {} ({}): {} frames sent, {} failed",
                self.port.id(),
                self.port.driver(),
                s.opackets,
                s.oerrors
            ),
            Err(e) => format!("dpdk port {}: no stats ({e})", self.port.id()),
        }
    }
}
