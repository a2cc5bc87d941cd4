//! The demultiplexing table: which track a packet to (local address, local
//! port) — or, on a port shared by several streams, (address, port, SSRC) —
//! belongs to.
//!
//! Readers are the workers, on the hot path: a lookup is two or three atomic
//! loads, takes no lock and costs the same at 100 or 200,000 tracks, because
//! ports are indexed directly (the recording range is a few thousand ports
//! per media address) rather than hashed. Writers are the control plane,
//! serialised by a mutex only they take.
//!
//! Every entry is a single `AtomicU64` holding the track's slot *and*
//! generation, so a reader never sees half of an update. A reader that loses
//! a race with a removal gets the generation of the call that owned the port
//! an instant before; the worker's per-track state is keyed by generation, so
//! such a packet can only go to that call or be dropped as stale, never to
//! the call that reuses the slot next.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::config::PortRange;

/// A track as seen by the data plane: index into the per-track tables, and
/// the generation that distinguishes successive owners of that index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackRef {
    pub slot: u32,
    /// Never 0 for a live track (0 marks unused state).
    pub gen: u32,
}

const GEN_BITS: u32 = 30;
/// Largest generation; generations wrap back to 1 after it.
pub const MAX_GEN: u32 = (1 << GEN_BITS) - 1;

const KIND_SHIFT: u32 = 62;
const KIND_TRACK: u64 = 1;
const KIND_SHARED: u64 = 2;

#[inline]
fn encode(kind: u64, r: TrackRef) -> u64 {
    (kind << KIND_SHIFT) | ((r.gen as u64 & MAX_GEN as u64) << 32) | r.slot as u64
}

#[inline]
fn decode(v: u64) -> TrackRef {
    TrackRef {
        slot: v as u32,
        gen: ((v >> 32) as u32) & MAX_GEN,
    }
}

/// Why the control plane could not change a binding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BindError {
    #[error("port {0} is outside the recording range {1}")]
    OutsideRange(u16, PortRange),
    #[error("{0} is already bound to another track")]
    Occupied(SocketAddr),
    #[error("too many media addresses (limit {0}); is the capture full of unrelated traffic?")]
    TooManyAddresses(usize),
    #[error("the SSRC table is full ({0} entries)")]
    SsrcTableFull(usize),
    #[error("{0} is not shared by SSRC")]
    NotShared(SocketAddr),
}

/// Result of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Track(TrackRef),
    /// No track owns this destination.
    Miss,
}

/// The table. Shared by reference between the control plane and workers.
pub struct DemuxTable {
    range: PortRange,
    addrs: AddrTable,
    /// One port array per media address index, allocated when the address is
    /// first bound; `OnceLock::get` is a single acquire load for readers.
    ports: Box<[OnceLock<Box<[AtomicU64]>>]>,
    ssrc: SsrcTable,
    write: Mutex<()>,
}

impl DemuxTable {
    /// A table for `max_addresses` media addresses and `max_shared` streams
    /// on SSRC-shared ports.
    pub fn new(range: PortRange, max_addresses: usize, max_shared: usize) -> Self {
        DemuxTable {
            range,
            addrs: AddrTable::new(max_addresses),
            ports: (0..max_addresses).map(|_| OnceLock::new()).collect(),
            ssrc: SsrcTable::new(max_shared),
            write: Mutex::new(()),
        }
    }

    /// The recording port range.
    pub fn range(&self) -> PortRange {
        self.range
    }

    /// Find the track for a packet to `dst` with RTP/RTCP SSRC `ssrc`.
    #[inline]
    pub fn lookup(&self, dst: &SocketAddr, ssrc: u32) -> Lookup {
        let Some(port_index) = self.range.index(dst.port()) else {
            return Lookup::Miss;
        };
        let Some(addr) = self.addrs.find(&dst.ip()) else {
            return Lookup::Miss;
        };
        let Some(ports) = self.ports.get(addr as usize).and_then(OnceLock::get) else {
            return Lookup::Miss;
        };
        let v = ports[port_index].load(Ordering::Acquire);
        match v >> KIND_SHIFT {
            KIND_TRACK => Lookup::Track(decode(v)),
            KIND_SHARED => match self.ssrc.find(ssrc_key(addr, dst.port(), ssrc)) {
                Some(r) => Lookup::Track(r),
                None => Lookup::Miss,
            },
            _ => Lookup::Miss,
        }
    }

    fn port_cell(&self, dst: &SocketAddr, create: bool) -> Result<(u32, &AtomicU64), BindError> {
        let index = self
            .range
            .index(dst.port())
            .ok_or(BindError::OutsideRange(dst.port(), self.range))?;
        let addr = if create {
            self.addrs
                .insert(&dst.ip())
                .ok_or(BindError::TooManyAddresses(self.ports.len()))?
        } else {
            self.addrs
                .find(&dst.ip())
                .ok_or(BindError::NotShared(*dst))?
        };
        let ports = self.ports[addr as usize]
            .get_or_init(|| (0..self.range.len()).map(|_| AtomicU64::new(0)).collect());
        Ok((addr, &ports[index]))
    }

    /// Give every packet to `dst` to `track`.
    pub fn bind(&self, dst: SocketAddr, track: TrackRef) -> Result<(), BindError> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let (_, cell) = self.port_cell(&dst, true)?;
        if cell.load(Ordering::Relaxed) != 0 {
            return Err(BindError::Occupied(dst));
        }
        cell.store(encode(KIND_TRACK, track), Ordering::Release);
        Ok(())
    }

    /// Mark `dst` as shared: packets go to the track bound to their SSRC.
    pub fn share(&self, dst: SocketAddr) -> Result<(), BindError> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let (_, cell) = self.port_cell(&dst, true)?;
        match cell.load(Ordering::Relaxed) >> KIND_SHIFT {
            0 => {
                cell.store(KIND_SHARED << KIND_SHIFT, Ordering::Release);
                Ok(())
            }
            KIND_SHARED => Ok(()),
            _ => Err(BindError::Occupied(dst)),
        }
    }

    /// On a shared `dst`, give packets with `ssrc` to `track`.
    pub fn bind_ssrc(&self, dst: SocketAddr, ssrc: u32, track: TrackRef) -> Result<(), BindError> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let (addr, cell) = self.port_cell(&dst, false)?;
        if cell.load(Ordering::Relaxed) >> KIND_SHIFT != KIND_SHARED {
            return Err(BindError::NotShared(dst));
        }
        self.ssrc
            .insert(ssrc_key(addr, dst.port(), ssrc), track)
            .map_err(|e| match e {
                SsrcInsertError::Occupied => BindError::Occupied(dst),
                SsrcInsertError::Full => BindError::SsrcTableFull(self.ssrc.capacity()),
            })
    }

    /// Remove whatever `dst` is bound to (for a shared port, the port itself;
    /// its SSRC bindings must be removed with [`unbind_ssrc`](Self::unbind_ssrc)).
    pub fn unbind(&self, dst: SocketAddr) {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok((_, cell)) = self.port_cell(&dst, false) {
            cell.store(0, Ordering::Release);
        }
    }

    /// Remove one SSRC binding of a shared port.
    pub fn unbind_ssrc(&self, dst: SocketAddr, ssrc: u32) {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(addr) = self.addrs.find(&dst.ip()) {
            self.ssrc.remove(ssrc_key(addr, dst.port(), ssrc));
        }
    }
}

#[inline]
fn ssrc_key(addr: u32, port: u16, ssrc: u32) -> u64 {
    // Bit 63 set so that no key is 0 (empty) or 1 (tombstone).
    (1 << 63) | ((addr as u64 & 0x7FFF) << 48) | ((port as u64) << 32) | ssrc as u64
}

/// Media addresses → small dense indices. Insert-only: addresses are
/// configuration (or discovered once in a capture), never removed.
struct AddrTable {
    slots: Box<[AddrSlot]>,
    mask: usize,
    count: AtomicU32,
    limit: usize,
}

struct AddrSlot {
    /// 0 empty, else index + 1; published after `hi`/`lo`.
    index: AtomicU32,
    hi: AtomicU64,
    lo: AtomicU64,
}

#[inline]
fn addr_words(ip: &IpAddr) -> (u64, u64) {
    match ip {
        // An all-ones high word marks IPv4. The only IPv6 addresses with that
        // high word are in ff00::/8, multicast, never a local media address.
        IpAddr::V4(v4) => (u64::MAX, u32::from(*v4) as u64),
        IpAddr::V6(v6) => {
            let b = u128::from(*v6);
            ((b >> 64) as u64, b as u64)
        }
    }
}

#[inline]
fn mix(hi: u64, lo: u64) -> usize {
    let h = (hi ^ lo.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 32) as usize
}

impl AddrTable {
    fn new(limit: usize) -> Self {
        let cap = (limit.max(1) * 2).next_power_of_two();
        AddrTable {
            slots: (0..cap)
                .map(|_| AddrSlot {
                    index: AtomicU32::new(0),
                    hi: AtomicU64::new(0),
                    lo: AtomicU64::new(0),
                })
                .collect(),
            mask: cap - 1,
            count: AtomicU32::new(0),
            limit,
        }
    }

    #[inline]
    fn find(&self, ip: &IpAddr) -> Option<u32> {
        let (hi, lo) = addr_words(ip);
        let mut i = mix(hi, lo) & self.mask;
        loop {
            let s = &self.slots[i];
            let idx = s.index.load(Ordering::Acquire);
            if idx == 0 {
                return None;
            }
            if s.hi.load(Ordering::Relaxed) == hi && s.lo.load(Ordering::Relaxed) == lo {
                return Some(idx - 1);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Caller holds the table's write mutex.
    fn insert(&self, ip: &IpAddr) -> Option<u32> {
        if let Some(i) = self.find(ip) {
            return Some(i);
        }
        let n = self.count.load(Ordering::Relaxed);
        if n as usize >= self.limit {
            return None;
        }
        let (hi, lo) = addr_words(ip);
        let mut i = mix(hi, lo) & self.mask;
        while self.slots[i].index.load(Ordering::Relaxed) != 0 {
            i = (i + 1) & self.mask;
        }
        let s = &self.slots[i];
        s.hi.store(hi, Ordering::Relaxed);
        s.lo.store(lo, Ordering::Relaxed);
        s.index.store(n + 1, Ordering::Release);
        self.count.store(n + 1, Ordering::Relaxed);
        Some(n)
    }
}

enum SsrcInsertError {
    Occupied,
    Full,
}

/// (address, port, SSRC) → track, for ports shared by several streams.
/// Open addressing with linear probing and tombstones; sized at twice the
/// configured maximum so probes stay short. Shared ports are the exception
/// (streams without signalling); signalled calls use the direct port index. Each slot is a key word and a
/// value word; removal writes the key first and insertion the value first,
/// and readers re-check the key after reading the value, so a reader never
/// pairs a key with a value that was not bound to it.
struct SsrcTable {
    keys: Box<[AtomicU64]>,
    vals: Box<[AtomicU64]>,
    mask: usize,
    live: AtomicU32,
    limit: usize,
}

const EMPTY: u64 = 0;
const TOMBSTONE: u64 = 1;

impl SsrcTable {
    fn new(limit: usize) -> Self {
        let cap = (limit.max(1) * 2).next_power_of_two();
        SsrcTable {
            keys: (0..cap).map(|_| AtomicU64::new(EMPTY)).collect(),
            vals: (0..cap).map(|_| AtomicU64::new(0)).collect(),
            mask: cap - 1,
            live: AtomicU32::new(0),
            limit,
        }
    }

    fn capacity(&self) -> usize {
        self.limit
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    #[inline]
    fn find(&self, key: u64) -> Option<TrackRef> {
        let mut i = self.home(key);
        for _ in 0..=self.mask {
            let k = self.keys[i].load(Ordering::Acquire);
            if k == EMPTY {
                return None;
            }
            if k == key {
                let v = self.vals[i].load(Ordering::Acquire);
                if v != 0 && self.keys[i].load(Ordering::Acquire) == key {
                    return Some(decode(v));
                }
                return None;
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Caller holds the table's write mutex.
    fn insert(&self, key: u64, track: TrackRef) -> Result<(), SsrcInsertError> {
        if self.find(key).is_some() {
            return Err(SsrcInsertError::Occupied);
        }
        if self.live.load(Ordering::Relaxed) as usize >= self.limit {
            return Err(SsrcInsertError::Full);
        }
        let mut i = self.home(key);
        loop {
            let k = self.keys[i].load(Ordering::Relaxed);
            if k == EMPTY || k == TOMBSTONE {
                self.vals[i].store(encode(KIND_TRACK, track), Ordering::Release);
                self.keys[i].store(key, Ordering::Release);
                self.live.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Caller holds the table's write mutex.
    fn remove(&self, key: u64) {
        let mut i = self.home(key);
        for _ in 0..=self.mask {
            let k = self.keys[i].load(Ordering::Relaxed);
            if k == EMPTY {
                return;
            }
            if k == key {
                self.keys[i].store(TOMBSTONE, Ordering::Release);
                self.vals[i].store(0, Ordering::Release);
                self.live.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn table() -> DemuxTable {
        DemuxTable::new(PortRange::new(40000, 40999).unwrap(), 16, 64)
    }
    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }
    const T1: TrackRef = TrackRef { slot: 7, gen: 3 };
    const T2: TrackRef = TrackRef { slot: 9, gen: 1 };

    #[test]
    fn bind_lookup_unbind() {
        let t = table();
        assert_eq!(t.lookup(&sa("127.0.0.1:40000"), 1), Lookup::Miss);
        t.bind(sa("127.0.0.1:40000"), T1).unwrap();
        assert_eq!(t.lookup(&sa("127.0.0.1:40000"), 1), Lookup::Track(T1));
        assert_eq!(t.lookup(&sa("127.0.0.2:40000"), 1), Lookup::Miss);
        assert_eq!(t.lookup(&sa("127.0.0.1:40001"), 1), Lookup::Miss);
        assert_eq!(
            t.bind(sa("127.0.0.1:40000"), T2),
            Err(BindError::Occupied(sa("127.0.0.1:40000")))
        );
        t.unbind(sa("127.0.0.1:40000"));
        assert_eq!(t.lookup(&sa("127.0.0.1:40000"), 1), Lookup::Miss);
        t.bind(sa("127.0.0.1:40000"), T2).unwrap();
        assert_eq!(t.lookup(&sa("127.0.0.1:40000"), 1), Lookup::Track(T2));
    }

    #[test]
    fn ipv6_and_ipv4_are_distinct() {
        let t = table();
        t.bind(sa("[::1]:40010"), T1).unwrap();
        t.bind(sa("[::ffff:127.0.0.1]:40010"), T2).unwrap();
        assert_eq!(t.lookup(&sa("[::1]:40010"), 0), Lookup::Track(T1));
        assert_eq!(
            t.lookup(&sa("[::ffff:127.0.0.1]:40010"), 0),
            Lookup::Track(T2)
        );
        assert_eq!(t.lookup(&sa("127.0.0.1:40010"), 0), Lookup::Miss);
    }

    #[test]
    fn out_of_range_is_refused() {
        let t = table();
        assert!(matches!(
            t.bind(sa("127.0.0.1:5060"), T1),
            Err(BindError::OutsideRange(5060, _))
        ));
        assert_eq!(t.lookup(&sa("127.0.0.1:5060"), 0), Lookup::Miss);
    }

    #[test]
    fn shared_port_by_ssrc() {
        let t = table();
        let d = sa("127.0.0.1:40100");
        assert_eq!(t.bind_ssrc(d, 5, T1), Err(BindError::NotShared(d)));
        t.share(d).unwrap();
        t.bind_ssrc(d, 5, T1).unwrap();
        t.bind_ssrc(d, 6, T2).unwrap();
        assert_eq!(t.bind_ssrc(d, 6, T1), Err(BindError::Occupied(d)));
        assert_eq!(t.lookup(&d, 5), Lookup::Track(T1));
        assert_eq!(t.lookup(&d, 6), Lookup::Track(T2));
        assert_eq!(t.lookup(&d, 7), Lookup::Miss);
        t.unbind_ssrc(d, 5);
        assert_eq!(t.lookup(&d, 5), Lookup::Miss);
        assert_eq!(t.lookup(&d, 6), Lookup::Track(T2));
        // The tombstone left by 5 is reused and the chain still finds 6.
        t.bind_ssrc(d, 5, T1).unwrap();
        assert_eq!(t.lookup(&d, 5), Lookup::Track(T1));
        assert!(
            t.bind(d, T1).is_err(),
            "a shared port cannot be bound whole"
        );
    }

    #[test]
    fn address_limit_is_an_error() {
        let t = DemuxTable::new(PortRange::new(40000, 40001).unwrap(), 2, 4);
        t.bind(sa("127.0.0.1:40000"), T1).unwrap();
        t.bind(sa("127.0.0.2:40000"), T1).unwrap();
        assert_eq!(
            t.bind(sa("127.0.0.3:40000"), T1),
            Err(BindError::TooManyAddresses(2))
        );
    }

    #[test]
    fn ssrc_table_full_is_an_error() {
        let t = DemuxTable::new(PortRange::new(40000, 40001).unwrap(), 2, 3);
        let d = sa("127.0.0.1:40000");
        t.share(d).unwrap();
        for s in 0..3 {
            t.bind_ssrc(d, s, T1).unwrap();
        }
        assert_eq!(t.bind_ssrc(d, 3, T1), Err(BindError::SsrcTableFull(3)));
    }

    /// A reader racing rebinding of the same port only ever sees a complete
    /// entry that some writer stored: (slot, gen) pairs are never mixed.
    #[test]
    fn concurrent_readers_never_see_torn_entries() {
        let t = Arc::new(table());
        let d = sa("127.0.0.1:40500");
        let shared = sa("127.0.0.1:40501");
        t.share(shared).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (t, stop) = (t.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut hits = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for target in [d, shared] {
                        if let Lookup::Track(r) = t.lookup(&target, 42) {
                            // Writers only ever store slot == gen * 2.
                            assert_eq!(r.slot, r.gen * 2, "torn entry {r:?}");
                            hits += 1;
                        }
                    }
                }
                hits
            })
        };
        for gen in 1..20_000u32 {
            let r = TrackRef { slot: gen * 2, gen };
            t.bind(d, r).unwrap();
            t.bind_ssrc(shared, 42, r).unwrap();
            t.unbind(d);
            t.unbind_ssrc(shared, 42);
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
    }
}
