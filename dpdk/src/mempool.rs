//! Packet-buffer pools and the mbufs drawn from them.

use std::ffi::CString;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys::{rte_mbuf, rte_mempool};

use crate::eal::Eal;
use crate::error::{rte_errno, strerror, DpdkError};

/// A pool of packet buffers (`rte_pktmbuf_pool_create`), each with DPDK's
/// default 2 KiB data room plus headroom: enough for any standard Ethernet
/// frame in one segment. Clones share the pool; `rte_mempool_free` runs when
/// the last clone drops. Ports keep their pool alive, so dropping the
/// application's handle early is harmless.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<MempoolInner>,
}

struct MempoolInner {
    ptr: NonNull<rte_mempool>,
    name: String,
    capacity: u32,
    socket: Option<u32>,
    _eal: Eal,
}

// SAFETY: a pktmbuf pool uses DPDK's default "ring_mp_mc" handler, whose get
// and put are safe from any number of threads at once (per-lcore caches are
// used only by the lcore they belong to). The pointer is freed once, by the
// drop of the last handle.
unsafe impl Send for MempoolInner {}
// SAFETY: see Send.
unsafe impl Sync for MempoolInner {}

impl Drop for MempoolInner {
    fn drop(&mut self) {
        // SAFETY: the pool was created by rte_pktmbuf_pool_create and is freed
        // only here. Every user of its mbufs keeps the pool alive: `Mbuf`
        // borrows a `Mempool`, ports and TxQueues hold clones for the mbufs in
        // their rings. The EAL is still up (we hold an `Eal`, dropped after).
        unsafe { dpdk_sys::rte_mempool_free(self.ptr.as_ptr()) };
    }
}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.inner.name)
            .field("capacity", &self.inner.capacity)
            .field("socket", &self.inner.socket)
            .finish()
    }
}

impl Mempool {
    /// Creates a pool of `n_mbufs` packet buffers named `name` (unique in the
    /// process; at most 25 bytes), with a per-lcore cache of `cache_size`
    /// (at most 512 and at most `n_mbufs / 1.5`; 256 is usual) on NUMA
    /// `socket` (`None`: any; pass the port's socket for speed). DPDK sizes
    /// rings best when `n_mbufs` is a power of two minus one.
    ///
    /// Size it for every rx descriptor of every queue using it, plus each
    /// worker's burst, plus `cache_size` per lcore: a pool that runs dry makes
    /// the NIC drop (counted as `rx_nombuf`).
    pub fn new(
        eal: &Eal,
        name: &str,
        n_mbufs: u32,
        cache_size: u32,
        socket: Option<u32>,
    ) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::InvalidArgument {
            what: format!("mempool name {name:?}"),
            why: "it contains a NUL byte".into(),
        })?;
        let socket_arg = match socket {
            None => dpdk_sys::SOCKET_ID_ANY,
            Some(s) => i32::try_from(s).map_err(|_| DpdkError::InvalidArgument {
                what: format!("NUMA socket {s}"),
                why: "out of range".into(),
            })?,
        };
        // SAFETY: constant read through the shim.
        let data_room = unsafe { dpdk_sys::mf_mbuf_default_buf_size() };
        // SAFETY: EAL is initialised (`eal` exists); cname is NUL-terminated
        // and outlives the call (DPDK copies the name).
        let ptr = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n_mbufs,
                cache_size,
                0,
                data_room,
                socket_arg,
            )
        };
        let Some(ptr) = NonNull::new(ptr) else {
            let errno = rte_errno();
            return Err(DpdkError::Call {
                call: "rte_pktmbuf_pool_create",
                target: format!("mempool {name} ({n_mbufs} mbufs, cache {cache_size})"),
                errno,
                reason: strerror(errno),
                hint: mempool_hint(errno, name, n_mbufs, cache_size, data_room),
            });
        };
        tracing::debug!(name, n_mbufs, cache_size, ?socket, "mempool created");
        Ok(Mempool {
            inner: Arc::new(MempoolInner {
                ptr,
                name: name.to_owned(),
                capacity: n_mbufs,
                socket,
                _eal: eal.clone(),
            }),
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Number of mbufs the pool was created with.
    pub fn capacity(&self) -> u32 {
        self.inner.capacity
    }

    /// The NUMA socket asked for at creation (`None`: any).
    pub fn socket(&self) -> Option<u32> {
        self.inner.socket
    }

    /// Mbufs free right now (including those in per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive (we hold it); the count is a racy but
        // memory-safe read.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.inner.ptr.as_ptr()) }
    }

    /// Mbufs taken from the pool right now: held by the application, in rx
    /// rings, or waiting in tx rings.
    pub fn in_use(&self) -> u32 {
        // SAFETY: as for `available`.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.inner.ptr.as_ptr()) }
    }

    /// Takes one mbuf, empty (length 0), to be filled with
    /// [`Mbuf::extend_from_slice`]. Not for the per-packet path of a worker:
    /// one FFI call per mbuf.
    pub fn alloc(&self) -> Result<Mbuf<'_>, DpdkError> {
        // SAFETY: the pool is alive; rte_pktmbuf_alloc is thread-safe.
        let m = unsafe { dpdk_sys::mf_pktmbuf_alloc(self.inner.ptr.as_ptr()) };
        match NonNull::new(m) {
            Some(ptr) => Ok(Mbuf { ptr, pool: self }),
            None => Err(DpdkError::MempoolExhausted {
                pool: self.inner.name.clone(),
            }),
        }
    }

    /// Takes one mbuf holding a copy of `bytes`.
    pub fn alloc_with(&self, bytes: &[u8]) -> Result<Mbuf<'_>, DpdkError> {
        let mut m = self.alloc()?;
        m.extend_from_slice(bytes)?;
        Ok(m)
    }

    pub(crate) fn as_ptr(&self) -> *mut rte_mempool {
        self.inner.ptr.as_ptr()
    }

    /// Identity of the pool, for cheap comparisons.
    pub(crate) fn key(&self) -> *const () {
        Arc::as_ptr(&self.inner).cast()
    }

    /// Whether two handles are the same pool.
    pub fn same_pool(&self, other: &Mempool) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// What to do about a failed `rte_pktmbuf_pool_create`.
fn mempool_hint(errno: i32, name: &str, n: u32, cache: u32, data_room: u16) -> String {
    // Object size is roughly the mbuf header (128) + data room, rounded.
    let mib = (u64::from(n) * (128 + u64::from(data_room) + 64)).div_ceil(1 << 20);
    match errno {
        libc::ENOMEM => format!(
            "not enough DPDK memory for {n} mbufs (about {mib} MiB): reserve more hugepages \
             (hugepage-setup/hugepage-setup --pages N) or raise -m/--socket-mem (with --no-huge, \
             raise -m), or ask for fewer mbufs"
        ),
        libc::EEXIST => format!(
            "a mempool named {name:?} already exists in this process (or in the primary process \
             sharing this --file-prefix): give each pool a unique name"
        ),
        libc::ENAMETOOLONG => format!("the name {name:?} is too long: DPDK allows 25 bytes"),
        libc::EINVAL => format!(
            "cache size {cache} is invalid for {n} mbufs: it must be at most 512 and at most \
             n_mbufs / 1.5"
        ),
        libc::ENOSPC => {
            "DPDK's table of memory zones is full (RTE_MAX_MEMZONE): create fewer pools".into()
        }
        _ => "see DPDK's log lines above".into(),
    }
}

/// One packet buffer owned by the application; returned to its pool on
/// drop, or handed to the NIC by [`crate::TxQueue::tx_burst`].
///
/// The receive path does not use `Mbuf` (a worker frees a whole burst at
/// once); this is for building packets to send.
pub struct Mbuf<'pool> {
    ptr: NonNull<rte_mbuf>,
    pool: &'pool Mempool,
}

// SAFETY: an Mbuf is owned exclusively; freeing it from another thread is
// safe (the pool is multi-producer), and `&Mempool` is Send because Mempool is
// Sync.
unsafe impl Send for Mbuf<'_> {}

impl Mbuf<'_> {
    /// The frame's bytes (the first and only segment).
    pub fn data(&self) -> &[u8] {
        // SAFETY: the mbuf is valid and owned by us; mtod points at data_len
        // initialised bytes inside the buffer, which nobody else can write
        // while we own it.
        unsafe {
            let m = self.ptr.as_ptr();
            let len = usize::from(dpdk_sys::mf_pktmbuf_data_len(m));
            if len == 0 {
                return &[];
            }
            std::slice::from_raw_parts(dpdk_sys::mf_pktmbuf_mtod(m).cast::<u8>(), len)
        }
    }

    /// The frame's bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `data`; `&mut self` makes the access exclusive.
        unsafe {
            let m = self.ptr.as_ptr();
            let len = usize::from(dpdk_sys::mf_pktmbuf_data_len(m));
            if len == 0 {
                return &mut [];
            }
            std::slice::from_raw_parts_mut(dpdk_sys::mf_pktmbuf_mtod(m).cast::<u8>(), len)
        }
    }

    /// Length of the frame in bytes.
    pub fn len(&self) -> usize {
        // SAFETY: the mbuf is valid; reads a field.
        unsafe { dpdk_sys::mf_pktmbuf_pkt_len(self.ptr.as_ptr()) as usize }
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room left at the end of the buffer.
    pub fn tailroom(&self) -> usize {
        // SAFETY: the mbuf is valid; reads fields.
        usize::from(unsafe { dpdk_sys::mf_pktmbuf_tailroom(self.ptr.as_ptr()) })
    }

    /// Appends `bytes` to the frame.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> Result<(), DpdkError> {
        let too_small = || DpdkError::MbufTooSmall {
            pool: self.pool.name().to_owned(),
            tailroom: self.tailroom(),
            wanted: bytes.len(),
        };
        let len = u16::try_from(bytes.len()).map_err(|_| too_small())?;
        // SAFETY: the mbuf is valid and ours; rte_pktmbuf_append checks the
        // tailroom and returns NULL (changing nothing) when it is too small.
        let dst = unsafe { dpdk_sys::mf_pktmbuf_append(self.ptr.as_ptr(), len) };
        if dst.is_null() {
            return Err(too_small());
        }
        // SAFETY: dst points at `len` freshly reserved bytes of our buffer,
        // which cannot overlap `bytes` (a Rust slice we were lent).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), bytes.len()) };
        Ok(())
    }

    /// The pool this mbuf came from.
    pub fn pool(&self) -> &Mempool {
        self.pool
    }

    pub(crate) fn as_raw(&self) -> *mut rte_mbuf {
        self.ptr.as_ptr()
    }

    /// Gives up ownership: the caller must free the mbuf or hand it to DPDK.
    pub(crate) fn into_raw(self) -> *mut rte_mbuf {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and its pool is alive (borrowed for 'pool).
        unsafe { dpdk_sys::mf_pktmbuf_free(self.ptr.as_ptr()) };
    }
}

impl fmt::Debug for Mbuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("pool", &self.pool.name())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mempool_hint_for_enomem_gives_size_and_fix() {
        let h = mempool_hint(libc::ENOMEM, "rx0", 8191, 256, 2176);
        assert!(h.contains("hugepage-setup"), "{h}");
        assert!(h.contains("MiB"), "{h}");
    }

    #[test]
    fn mempool_hint_for_eexist_names_the_pool() {
        let h = mempool_hint(libc::EEXIST, "rx0", 8191, 256, 2176);
        assert!(h.contains("\"rx0\""), "{h}");
    }
}
