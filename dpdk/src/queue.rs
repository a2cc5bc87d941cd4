//! Per-worker queue handles: the receive hot path ([`RxQueue`], a
//! [`PacketSource`]) and a small transmit side ([`TxQueue`]).

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dpdk_sys::{mf_pkt_view, rte_mbuf};
use mediafork_dataplane::source::{Frame, PacketSource, RxPacket, MAX_BURST};

use crate::mempool::Mbuf;
use crate::port::PortInner;

// rx_burst takes a u16 count.
const BURST_U16: u16 = MAX_BURST as u16;
const _: () = assert!(MAX_BURST <= u16::MAX as usize);

/// One receive queue of a started port, owned by one worker. `Send` (move it
/// to the worker's thread), not `Sync`: DPDK's rx queues are single-consumer.
///
/// Each [`PacketSource::poll_burst`] makes one `rte_eth_rx_burst` of up to
/// [`MAX_BURST`] frames, reads the clock once, hands the frames to the sink
/// as a slice built on the stack, and then returns all the mbufs with one
/// `rte_pktmbuf_free_bulk`: no allocation, lock or system call per packet or
/// per burst.
pub struct RxQueue {
    port: Arc<PortInner>,
    port_id: u16,
    queue_id: u16,
    mbufs: [*mut rte_mbuf; MAX_BURST],
    views: [mf_pkt_view; MAX_BURST],
    clock: BurstClock,
    multi_segment: u64,
    name: String,
}

// SAFETY: the queue is used by one thread at a time (not Sync; methods take
// `&mut self`), which is all DPDK asks of an rx queue: it may move between
// threads. The raw pointers in `mbufs`/`views` are scratch space, only valid
// during a `poll_burst` call and never dereferenced outside it.
unsafe impl Send for RxQueue {}

impl RxQueue {
    pub(crate) fn new(port: Arc<PortInner>, queue_id: u16) -> RxQueue {
        let port_id = port.id;
        RxQueue {
            port,
            port_id,
            queue_id,
            mbufs: [std::ptr::null_mut(); MAX_BURST],
            views: [mf_pkt_view::default(); MAX_BURST],
            clock: BurstClock::new(),
            multi_segment: 0,
            name: format!("dpdk:{port_id}/{queue_id}"),
        }
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port_id
    }

    /// The queue id within the port.
    pub fn queue_id(&self) -> u16 {
        self.queue_id
    }

    /// Frames received in more than one segment (larger than the mbuf's
    /// 2 KiB data room: jumbo frames). Only their first segment was handed
    /// out; RTP never gets there, so a non-zero count means the port sees
    /// traffic this recorder does not expect.
    pub fn multi_segment_frames(&self) -> u64 {
        self.multi_segment
    }
}

impl std::fmt::Debug for RxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxQueue")
            .field("port_id", &self.port_id)
            .field("queue_id", &self.queue_id)
            .finish()
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.port.release_rx(self.queue_id);
    }
}

/// Returns a burst's mbufs to their pool when dropped, so a panicking sink
/// does not leak them.
struct FreeBurst<'a> {
    mbufs: &'a mut [*mut rte_mbuf],
}

impl Drop for FreeBurst<'_> {
    fn drop(&mut self) {
        // SAFETY: the slice holds exactly the mbufs rx_burst just gave us,
        // each exactly once; nothing refers to their data any more (the
        // packet slices handed to the sink did not outlive its call).
        unsafe { dpdk_sys::mf_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), self.mbufs.len() as u32) };
    }
}

impl PacketSource for RxQueue {
    fn poll_burst<F: FnMut(&[RxPacket<'_>])>(&mut self, mut sink: F) -> usize {
        // SAFETY: the port is started and alive (we hold it; it cannot be
        // stopped while we exist) and this queue is ours alone. Both arrays
        // have room for BURST_U16 entries.
        let n = usize::from(unsafe {
            dpdk_sys::mf_rx_burst_view(
                self.port_id,
                self.queue_id,
                self.mbufs.as_mut_ptr(),
                self.views.as_mut_ptr(),
                BURST_U16,
            )
        });
        if n == 0 {
            return 0;
        }
        let _free = FreeBurst {
            mbufs: &mut self.mbufs[..n],
        };
        let arrival_ns = self.clock.now_ns();

        // Uninitialised, not zeroed: filling 32 entries of ~100 bytes would
        // cost more than the rest of the burst's bookkeeping.
        let mut pkts: [MaybeUninit<RxPacket<'_>>; MAX_BURST] =
            [const { MaybeUninit::uninit() }; MAX_BURST];
        for (slot, v) in pkts.iter_mut().zip(&self.views[..n]) {
            self.multi_segment += u64::from(v.nb_segs > 1);
            let data: &[u8] = if v.data_len == 0 || v.data.is_null() {
                &[]
            } else {
                // SAFETY: the view points at the first segment's data_len
                // bytes inside an mbuf we own until `_free` drops, after the
                // sink has returned; the driver wrote them before handing the
                // mbuf over, and no one writes them while we own it.
                unsafe { std::slice::from_raw_parts(v.data, usize::from(v.data_len)) }
            };
            slot.write(RxPacket {
                frame: Frame::Ethernet,
                data,
                arrival_ns,
            });
        }
        // SAFETY: the first n entries were initialised just above, and
        // MaybeUninit<T> has T's layout.
        let pkts = unsafe { std::slice::from_raw_parts(pkts.as_ptr().cast::<RxPacket<'_>>(), n) };
        sink(pkts);
        n
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// One transmit queue of a started port, for one thread (`Send`, not `Sync`).
pub struct TxQueue {
    port: Arc<PortInner>,
    port_id: u16,
    queue_id: u16,
    /// The last mempool whose mbufs we sent and made the port keep alive;
    /// checking it is a pointer compare, so the lock in `keep_tx_pool` is
    /// taken only when the pool changes.
    last_pool: *const (),
}

// SAFETY: one thread at a time (methods take `&mut self`), which is what DPDK
// asks of a tx queue. `last_pool` is only compared, never dereferenced.
unsafe impl Send for TxQueue {}

impl TxQueue {
    pub(crate) fn new(port: Arc<PortInner>, queue_id: u16) -> TxQueue {
        let port_id = port.id;
        TxQueue {
            port,
            port_id,
            queue_id,
            last_pool: std::ptr::null(),
        }
    }

    /// Sends up to [`MAX_BURST`] mbufs from the front of `pkts`
    /// (`rte_eth_tx_burst`). The ones the driver took are removed from `pkts`
    /// (DPDK frees them once sent); the rest stay, in order, for a retry.
    /// Returns how many were taken.
    pub fn tx_burst(&mut self, pkts: &mut Vec<Mbuf<'_>>) -> usize {
        let n = pkts.len().min(MAX_BURST);
        if n == 0 {
            return 0;
        }
        let mut raw = [std::ptr::null_mut::<rte_mbuf>(); MAX_BURST];
        for (r, m) in raw.iter_mut().zip(&pkts[..n]) {
            let key = m.pool().key();
            if key != self.last_pool {
                // The driver may hold the mbuf until the port closes: its
                // pool must live that long, whatever the caller drops.
                self.port.keep_tx_pool(m.pool());
                self.last_pool = key;
            }
            *r = m.as_raw();
        }
        // SAFETY: the port is started and alive (we hold it), the queue is
        // ours alone, and raw[..n] are valid mbufs we own; the driver takes
        // ownership of the first `sent`.
        let sent = usize::from(unsafe {
            dpdk_sys::mf_tx_burst(self.port_id, self.queue_id, raw.as_mut_ptr(), n as u16)
        });
        for m in pkts.drain(..sent) {
            // Ownership passed to the driver: do not free.
            let _ = m.into_raw();
        }
        sent
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port_id
    }

    /// The queue id within the port.
    pub fn queue_id(&self) -> u16 {
        self.queue_id
    }
}

impl std::fmt::Debug for TxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxQueue")
            .field("port_id", &self.port_id)
            .field("queue_id", &self.queue_id)
            .finish()
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.port.release_tx(self.queue_id);
    }
}

/// Wall-clock nanoseconds for a burst, from the TSC: one `rdtsc` per burst
/// instead of a clock read. Re-anchored to `SystemTime` (vDSO, no syscall on
/// a TSC clocksource) when a second of ticks has passed, so the error stays
/// within what NTP slews in a second; never goes backwards.
pub(crate) struct BurstClock {
    hz: u64,
    /// ns per tick as a 32.32 fixed-point number.
    mult: u64,
    anchor_tsc: u64,
    anchor_ns: u64,
    last_ns: u64,
}

impl BurstClock {
    pub(crate) fn new() -> BurstClock {
        // SAFETY: reads the rate the EAL calibrated (0 before Eal::init, which
        // `now_ns` handles by using SystemTime alone).
        let hz = unsafe { dpdk_sys::mf_get_tsc_hz() };
        BurstClock::with_hz(hz, rdtsc(), system_ns())
    }

    pub(crate) fn with_hz(hz: u64, anchor_tsc: u64, anchor_ns: u64) -> BurstClock {
        let mult = if hz == 0 {
            0
        } else {
            (((1_000_000_000u128 << 32) + u128::from(hz / 2)) / u128::from(hz)) as u64
        };
        BurstClock {
            hz,
            mult,
            anchor_tsc,
            anchor_ns,
            last_ns: anchor_ns,
        }
    }

    #[inline]
    pub(crate) fn now_ns(&mut self) -> u64 {
        let ns = if self.hz == 0 {
            system_ns()
        } else {
            self.at(rdtsc(), system_ns)
        };
        let ns = ns.max(self.last_ns);
        self.last_ns = ns;
        ns
    }

    /// Wall time at TSC value `tsc`; `wall` is read only to re-anchor.
    #[inline]
    fn at(&mut self, tsc: u64, wall: impl FnOnce() -> u64) -> u64 {
        // A TSC behind the anchor wraps to a huge delta and re-anchors too.
        let delta = tsc.wrapping_sub(self.anchor_tsc);
        if delta >= self.hz {
            self.anchor_tsc = tsc;
            self.anchor_ns = wall();
            return self.anchor_ns;
        }
        // Rounded to the nearest ns; a u128 product cannot overflow (delta < hz).
        self.anchor_ns + ((u128::from(delta) * u128::from(self.mult) + (1 << 31)) >> 32) as u64
    }
}

fn rdtsc() -> u64 {
    // SAFETY: reads the CPU's timestamp counter (or the platform's
    // equivalent); no preconditions.
    unsafe { dpdk_sys::mf_rdtsc() }
}

fn system_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_clock_converts_ticks_to_ns() {
        // 2.5 GHz: 2.5 ticks per ns.
        let mut c = BurstClock::with_hz(2_500_000_000, 1_000, 1_700_000_000_000_000_000);
        let ns = c.at(1_000 + 2_500_000, || {
            unreachable!("no re-anchor within a second")
        });
        assert_eq!(ns, 1_700_000_000_000_000_000 + 1_000_000);
        let ns = c.at(1_000 + 2_499_999_999, || unreachable!());
        let err = (ns as i128 - (1_700_000_000_000_000_000i128 + 999_999_999)).abs();
        assert!(err <= 1, "error {err} ns");
    }

    #[test]
    fn burst_clock_reanchors_after_a_second_and_when_tsc_goes_back() {
        let mut c = BurstClock::with_hz(1_000_000_000, 5_000, 10);
        assert_eq!(c.at(5_000 + 1_000_000_000, || 77), 77);
        assert_eq!(c.anchor_tsc, 5_000 + 1_000_000_000);
        assert_eq!(c.at(4_000, || 99), 99);
    }

    #[test]
    fn burst_clock_never_goes_backwards_and_tracks_system_time() {
        let mut c = BurstClock::with_hz(0, 0, 0);
        let a = c.now_ns();
        let b = c.now_ns();
        assert!(b >= a);
        let sys = system_ns();
        assert!(sys.abs_diff(b) < 1_000_000_000);
    }
}
