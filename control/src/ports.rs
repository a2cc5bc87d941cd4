//! The media port allocator: which local UDP ports a new call's streams get.
//!
//! RTP goes on an even port and its RTCP on the next one (RFC 3550 §11), so
//! the pool hands out aligned *pairs*; a stream that multiplexes RTCP on the
//! RTP port (RFC 5761, `a=rtcp-mux`) needs a single port. Pairs and single
//! ports come from the same range.
//!
//! A released port is not reused at once: it sits in quarantine for a
//! configured time, so that the late packets of an ended call (or a
//! retransmitting peer that missed the BYE) are never recorded into the
//! next call that gets the port. After quarantine, ports are reused least
//! recently released first, which stretches the time between two uses of a
//! port even further.
//!
//! Pure bookkeeping: no sockets, no clock reads. The caller passes `now`, so
//! tests can drive time. Allocation and release are O(1) (amortized): free
//! ports wait in FIFO queues; nothing scans the range per call.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use mediafork_dataplane::config::PortRange;

/// An RTP port and its RTCP port (`rtcp == rtp + 1`, `rtp` even).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortPair {
    pub rtp: u16,
    pub rtcp: u16,
}

impl fmt::Display for PortPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.rtp, self.rtcp)
    }
}

/// What one allocation handed out, and what is given back to release it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ports {
    Pair(PortPair),
    /// One port for RTP and RTCP together (rtcp-mux).
    Single(u16),
}

impl Ports {
    /// The port RTP goes to.
    pub fn rtp(&self) -> u16 {
        match self {
            Ports::Pair(p) => p.rtp,
            Ports::Single(p) => *p,
        }
    }

    /// Number of ports (2 or 1).
    pub fn len(&self) -> usize {
        match self {
            Ports::Pair(_) => 2,
            Ports::Single(_) => 1,
        }
    }

    /// Never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl From<PortPair> for Ports {
    fn from(p: PortPair) -> Ports {
        Ports::Pair(p)
    }
}

impl From<u16> for Ports {
    fn from(p: u16) -> Ports {
        Ports::Single(p)
    }
}

/// No free pair (or port) right now; says how the range is used, which is
/// what an operator sizing the range needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("media port range {range} has no free {what}: {in_use} ports in use, {quarantined} in quarantine, {free} free")]
pub struct Exhausted {
    pub range: PortRange,
    /// `RTP/RTCP pair` or `port`.
    pub what: &'static str,
    pub in_use: usize,
    pub quarantined: usize,
    pub free: usize,
}

/// A release the pool refused; nothing changed. These are control-plane
/// bugs (a double BYE handled twice, a port from elsewhere), reported rather
/// than trusted, because accepting them would hand one port to two calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("port {port} is outside the media port range {range}")]
    OutOfRange { port: u16, range: PortRange },
    #[error("port {port} is not allocated")]
    NotAllocated { port: u16 },
    #[error("port {port} was already released (it is in quarantine)")]
    AlreadyReleased { port: u16 },
    #[error("port {port} was allocated as part of a pair; release the pair")]
    PartOfPair { port: u16 },
    #[error("port {port} was allocated alone, not as part of a pair")]
    NotPartOfPair { port: u16 },
    #[error("{0} is not an RTP/RTCP pair (even RTP port, RTCP = RTP + 1)")]
    NotAPair(PortPair),
}

/// Where a port stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortStatus {
    Free,
    /// Handed out in a pair.
    InPair,
    /// Handed out alone.
    Single,
    /// Released, not yet reusable.
    Quarantined,
}

/// The ports of one media range and who has them. See the module docs.
#[derive(Debug)]
pub struct PortPool {
    range: PortRange,
    lo: u32,
    quarantine: Duration,
    status: Vec<PortStatus>,
    /// Bumped whenever a port's entry in `free_singles` goes stale, so stale
    /// entries are skipped instead of searched for and removed.
    epoch: Vec<u32>,
    /// Even ports whose pair is entirely free, least recently released
    /// first. Only complete blocks are here, and never stale.
    free_blocks: VecDeque<u16>,
    /// Free ports whose partner is not free, and ports with no partner in
    /// the range (an odd first port, an even last port); entries whose
    /// epoch is behind are stale.
    free_singles: VecDeque<(u16, u32)>,
    /// Released allocations in release order, with their release time.
    quarantined_q: VecDeque<(Instant, Ports)>,
    free: usize,
    in_use: usize,
    quarantined: usize,
    pairs: usize,
}

impl PortPool {
    /// A pool of every port in `range`, all free. A pair needs an even port
    /// whose successor is in the range, so an odd first port and an even
    /// last port can only be had alone. Released ports return after
    /// `quarantine`.
    pub fn new(range: PortRange, quarantine: Duration) -> PortPool {
        let lo = u32::from(range.lo);
        let hi = u32::from(range.hi);
        // The fields are public: an inverted range makes an empty pool, not a panic.
        let len = if hi >= lo { (hi - lo + 1) as usize } else { 0 };
        let mut pool = PortPool {
            range,
            lo,
            quarantine,
            status: vec![PortStatus::Free; len],
            epoch: vec![0; len],
            free_blocks: VecDeque::with_capacity(len / 2 + 1),
            free_singles: VecDeque::with_capacity(len.min(64)),
            quarantined_q: VecDeque::new(),
            free: len,
            in_use: 0,
            quarantined: 0,
            pairs: 0,
        };
        let mut p = lo;
        while p <= hi {
            if p % 2 == 0 && p < hi {
                pool.free_blocks.push_back(p as u16);
                pool.pairs += 1;
                p += 2;
            } else {
                pool.free_singles.push_back((p as u16, 0));
                p += 1;
            }
        }
        pool
    }

    /// Take the free pair released longest ago (never-used pairs first).
    pub fn allocate_pair(&mut self, now: Instant) -> Result<PortPair, Exhausted> {
        self.reclaim(now);
        let Some(rtp) = self.free_blocks.pop_front() else {
            return Err(self.exhausted("RTP/RTCP pair"));
        };
        let rtcp = rtp + 1;
        self.set(rtp, PortStatus::InPair);
        self.set(rtcp, PortStatus::InPair);
        self.free -= 2;
        self.in_use += 2;
        Ok(PortPair { rtp, rtcp })
    }

    /// Take one port. Ports that cannot be part of a pair right now (whose
    /// partner is taken, or that have none) go first, so that single ports
    /// do not eat into the pair capacity; a pair is split only when no such
    /// port is left, and then its RTP (even) port is used.
    pub fn allocate_single(&mut self, now: Instant) -> Result<u16, Exhausted> {
        self.reclaim(now);
        while let Some((port, epoch)) = self.free_singles.pop_front() {
            let Some(i) = self.index(port) else { continue };
            if self.epoch[i] == epoch && self.status[i] == PortStatus::Free {
                self.status[i] = PortStatus::Single;
                self.free -= 1;
                self.in_use += 1;
                return Ok(port);
            }
        }
        let Some(rtp) = self.free_blocks.pop_front() else {
            return Err(self.exhausted("port"));
        };
        self.set(rtp, PortStatus::Single);
        self.free -= 1;
        self.in_use += 1;
        // Its partner is now a free single; the next single takes it.
        let partner = rtp + 1;
        if let Some(i) = self.index(partner) {
            self.epoch[i] = self.epoch[i].wrapping_add(1);
            self.free_singles.push_front((partner, self.epoch[i]));
        }
        Ok(rtp)
    }

    /// Give back what an allocation handed out (a [`PortPair`] or a single
    /// port). The ports go into quarantine and become free again once
    /// `quarantine` has passed since `now`. A release that does not match
    /// an allocation is refused with nothing changed.
    pub fn release(&mut self, now: Instant, ports: impl Into<Ports>) -> Result<(), ReleaseError> {
        self.reclaim(now);
        let ports = ports.into();
        match ports {
            Ports::Pair(pair) => {
                if pair.rtp % 2 != 0 || u32::from(pair.rtcp) != u32::from(pair.rtp) + 1 {
                    return Err(ReleaseError::NotAPair(pair));
                }
                self.check(pair.rtp, PortStatus::InPair)?;
                self.check(pair.rtcp, PortStatus::InPair)?;
                self.set(pair.rtp, PortStatus::Quarantined);
                self.set(pair.rtcp, PortStatus::Quarantined);
            }
            Ports::Single(port) => {
                self.check(port, PortStatus::Single)?;
                self.set(port, PortStatus::Quarantined);
            }
        }
        self.in_use -= ports.len();
        self.quarantined += ports.len();
        self.quarantined_q.push_back((now, ports));
        Ok(())
    }

    /// Return every allocation whose quarantine is over at `now` to the
    /// free queues; returns how many ports came back. Allocation and release
    /// do this themselves; call it before reading the counts for exact
    /// metrics. Quarantine ends in release order: should `now` ever go
    /// backwards between calls, a port is released late, never early.
    pub fn reclaim(&mut self, now: Instant) -> usize {
        let mut back = 0;
        while let Some(&(at, ports)) = self.quarantined_q.front() {
            if now.saturating_duration_since(at) < self.quarantine {
                break;
            }
            self.quarantined_q.pop_front();
            match ports {
                Ports::Pair(pair) => {
                    self.set(pair.rtp, PortStatus::Free);
                    self.set(pair.rtcp, PortStatus::Free);
                    self.free_blocks.push_back(pair.rtp);
                }
                Ports::Single(port) => self.free_single(port),
            }
            self.quarantined -= ports.len();
            self.free += ports.len();
            back += ports.len();
        }
        back
    }

    /// Ports free now (as of the last call that took `now`).
    pub fn free(&self) -> usize {
        self.free
    }

    /// Ports handed out.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Ports released and waiting out their quarantine (as of the last call
    /// that took `now`).
    pub fn quarantined(&self) -> usize {
        self.quarantined
    }

    /// Ports in the range: `free + in_use + quarantined`.
    pub fn total(&self) -> usize {
        self.status.len()
    }

    /// Pairs that [`PortPool::allocate_pair`] could hand out now.
    pub fn free_pairs(&self) -> usize {
        self.free_blocks.len()
    }

    /// Pairs the range holds when nothing is allocated.
    pub fn pair_capacity(&self) -> usize {
        self.pairs
    }

    /// Where `port` stands; `None` outside the range.
    pub fn status(&self, port: u16) -> Option<PortStatus> {
        self.index(port).map(|i| self.status[i])
    }

    pub fn range(&self) -> PortRange {
        self.range
    }

    pub fn quarantine(&self) -> Duration {
        self.quarantine
    }

    fn index(&self, port: u16) -> Option<usize> {
        let i = u32::from(port).checked_sub(self.lo)? as usize;
        (i < self.status.len()).then_some(i)
    }

    /// Set the status of a port known to be in the range.
    fn set(&mut self, port: u16, s: PortStatus) {
        if let Some(i) = self.index(port) {
            self.status[i] = s;
        }
    }

    /// The port `port` pairs with, if the pair fits in the range.
    fn partner(&self, port: u16) -> Option<u16> {
        let p = if port % 2 == 0 {
            port.checked_add(1)?
        } else {
            port - 1
        };
        self.index(p).map(|_| p)
    }

    /// `port` leaves quarantine alone: rejoin its partner as a free pair if
    /// the partner is free, or wait as a free single.
    fn free_single(&mut self, port: u16) {
        self.set(port, PortStatus::Free);
        if let Some(partner) = self.partner(port) {
            if let Some(j) = self.index(partner) {
                if self.status[j] == PortStatus::Free {
                    // The partner is a free single (a free block port has a
                    // free partner, and this port was not free): its queue
                    // entry goes stale and the pair is whole again.
                    self.epoch[j] = self.epoch[j].wrapping_add(1);
                    self.free_blocks.push_back(port.min(partner));
                    return;
                }
            }
        }
        if let Some(i) = self.index(port) {
            self.epoch[i] = self.epoch[i].wrapping_add(1);
            self.free_singles.push_back((port, self.epoch[i]));
        }
    }

    fn check(&self, port: u16, want: PortStatus) -> Result<(), ReleaseError> {
        let Some(status) = self.status(port) else {
            return Err(ReleaseError::OutOfRange {
                port,
                range: self.range,
            });
        };
        match (status, want) {
            (s, w) if s == w => Ok(()),
            (PortStatus::Free, _) => Err(ReleaseError::NotAllocated { port }),
            (PortStatus::Quarantined, _) => Err(ReleaseError::AlreadyReleased { port }),
            (PortStatus::InPair, _) => Err(ReleaseError::PartOfPair { port }),
            (PortStatus::Single, _) => Err(ReleaseError::NotPartOfPair { port }),
        }
    }

    fn exhausted(&self, what: &'static str) -> Exhausted {
        Exhausted {
            range: self.range,
            what,
            in_use: self.in_use,
            quarantined: self.quarantined,
            free: self.free,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    const Q: Duration = Duration::from_secs(10);

    fn range(lo: u16, hi: u16) -> PortRange {
        PortRange::new(lo, hi).expect("range")
    }

    fn counts(p: &PortPool) -> (usize, usize, usize) {
        (p.free(), p.in_use(), p.quarantined())
    }

    #[test]
    fn ten_ports_make_exactly_five_pairs() {
        let t = Instant::now();
        let mut pool = PortPool::new(range(40000, 40009), Q);
        assert_eq!(
            (pool.total(), pool.pair_capacity(), pool.free_pairs()),
            (10, 5, 5)
        );
        let pairs: Vec<PortPair> = (0..5)
            .map(|_| pool.allocate_pair(t).expect("pair"))
            .collect();
        let rtps: Vec<u16> = pairs.iter().map(|p| p.rtp).collect();
        assert_eq!(rtps, [40000, 40002, 40004, 40006, 40008]);
        assert!(pairs.iter().all(|p| p.rtcp == p.rtp + 1));
        let e = pool.allocate_pair(t).expect_err("exhausted");
        assert_eq!(
            e.to_string(),
            "media port range 40000-40009 has no free RTP/RTCP pair: \
             10 ports in use, 0 in quarantine, 0 free"
        );
        assert_eq!(pool.allocate_single(t).map_err(|e| e.what), Err("port"));
        assert_eq!(counts(&pool), (0, 10, 0));
    }

    #[test]
    fn odd_ranges_keep_unpairable_ports_for_singles() {
        let t = Instant::now();
        // 40001 has no even partner below it; 40010's partner is outside.
        let mut pool = PortPool::new(range(40001, 40010), Q);
        assert_eq!((pool.total(), pool.pair_capacity()), (10, 4));
        let rtps: Vec<u16> = (0..4)
            .map(|_| pool.allocate_pair(t).expect("pair").rtp)
            .collect();
        assert_eq!(rtps, [40002, 40004, 40006, 40008]);
        assert!(pool.allocate_pair(t).is_err());
        assert_eq!(pool.allocate_single(t), Ok(40001));
        assert_eq!(pool.allocate_single(t), Ok(40010));
        assert!(pool.allocate_single(t).is_err());

        let mut one = PortPool::new(range(40000, 40000), Q);
        assert_eq!(one.pair_capacity(), 0);
        assert!(one.allocate_pair(t).is_err());
        assert_eq!(one.allocate_single(t), Ok(40000));

        // The top of the port space does not overflow.
        let mut top = PortPool::new(range(65533, 65535), Q);
        assert_eq!(
            top.allocate_pair(t),
            Ok(PortPair {
                rtp: 65534,
                rtcp: 65535
            })
        );
        assert_eq!(top.allocate_single(t), Ok(65533));
        assert_eq!(top.status(65535), Some(PortStatus::InPair));
        assert_eq!(top.status(65532), None);

        // An inverted range built by hand is an empty pool, not a panic.
        let mut empty = PortPool::new(PortRange { lo: 5000, hi: 4000 }, Q);
        assert_eq!(empty.total(), 0);
        assert!(empty.allocate_single(t).is_err());
        assert!(empty.release(t, 4500).is_err());
    }

    #[test]
    fn released_ports_wait_out_the_quarantine() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut pool = PortPool::new(range(40000, 40003), Q);
        let a = pool.allocate_pair(at(0)).expect("a");
        let b = pool.allocate_pair(at(0)).expect("b");
        pool.release(at(1_000), a).expect("release");
        assert_eq!(counts(&pool), (0, 2, 2));
        assert_eq!(pool.status(a.rtp), Some(PortStatus::Quarantined));
        assert!(
            pool.allocate_pair(at(10_999)).is_err(),
            "still in quarantine"
        );
        assert_eq!(pool.quarantined(), 2);
        assert_eq!(
            pool.allocate_pair(at(11_000)),
            Ok(a),
            "back exactly at 10 s"
        );
        pool.release(at(12_000), b).expect("release");
        assert_eq!(pool.reclaim(at(21_999)), 0);
        assert_eq!(pool.reclaim(at(22_000)), 2);
        assert_eq!(counts(&pool), (2, 2, 0));
        // A clock that goes backwards delays, never hastens, a return.
        pool.release(at(30_000), a).expect("release");
        assert_eq!(pool.reclaim(at(25_000)), 0);
        assert_eq!(pool.reclaim(at(40_000)), 2);
    }

    #[test]
    fn least_recently_released_first() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut pool = PortPool::new(range(40000, 40009), Q);
        let a = pool.allocate_pair(at(0)).expect("a");
        let b = pool.allocate_pair(at(0)).expect("b");
        let _c = pool.allocate_pair(at(0)).expect("c");
        pool.release(at(1), b).expect("b");
        pool.release(at(2), a).expect("a");
        let order: Vec<u16> = (0..4)
            .map(|_| pool.allocate_pair(at(100)).expect("pair").rtp)
            .collect();
        // Never-used pairs first, then b (released first), then a.
        assert_eq!(order, [40006, 40008, b.rtp, a.rtp]);

        let mut singles = PortPool::new(range(40001, 40001), Duration::ZERO);
        let p = singles.allocate_single(at(0)).expect("single");
        singles.release(at(0), p).expect("release");
        assert_eq!(singles.allocate_single(at(0)), Ok(p), "zero quarantine");
    }

    #[test]
    fn singles_use_split_pairs_first_and_pairs_heal() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut pool = PortPool::new(range(40000, 40009), Q);
        assert_eq!(
            pool.allocate_single(at(0)),
            Ok(40000),
            "splits the first pair"
        );
        assert_eq!(pool.free_pairs(), 4);
        assert_eq!(
            pool.allocate_single(at(0)),
            Ok(40001),
            "its other half next"
        );
        assert_eq!(pool.free_pairs(), 4);
        assert_eq!(pool.allocate_pair(at(0)).map(|p| p.rtp), Ok(40002));
        assert_eq!(pool.allocate_single(at(0)), Ok(40004));
        // 40001 comes back while 40000 is in use: a single, not a pair.
        pool.release(at(1), 40001).expect("release");
        assert_eq!(pool.reclaim(at(11)), 1);
        assert_eq!(pool.free_pairs(), 2);
        assert_eq!(
            pool.allocate_single(at(11)),
            Ok(40005),
            "the newer split half"
        );
        assert_eq!(pool.allocate_single(at(11)), Ok(40001));
        // Both halves back: the pair is whole again and goes last in line.
        pool.release(at(12), 40000).expect("release");
        pool.release(at(12), 40001).expect("release");
        pool.reclaim(at(22));
        assert_eq!(pool.free_pairs(), 3);
        let rtps: Vec<u16> = (0..3)
            .map(|_| pool.allocate_pair(at(22)).expect("pair").rtp)
            .collect();
        assert_eq!(rtps, [40006, 40008, 40000]);
        assert_eq!(counts(&pool), (0, 10, 0));
    }

    #[test]
    fn bad_releases_are_errors_and_change_nothing() {
        let t = Instant::now();
        let mut pool = PortPool::new(range(40000, 40009), Q);
        let pair = pool.allocate_pair(t).expect("pair");
        let single = pool.allocate_single(t).expect("single");
        let before = counts(&pool);
        assert_eq!(
            pool.release(t, 40008),
            Err(ReleaseError::NotAllocated { port: 40008 })
        );
        assert_eq!(
            pool.release(t, 50000),
            Err(ReleaseError::OutOfRange {
                port: 50000,
                range: range(40000, 40009)
            })
        );
        assert_eq!(
            pool.release(t, pair.rtcp),
            Err(ReleaseError::PartOfPair { port: pair.rtcp })
        );
        let fake = PortPair {
            rtp: single,
            rtcp: single + 1,
        };
        assert_eq!(
            pool.release(t, fake),
            Err(ReleaseError::NotPartOfPair { port: single })
        );
        let odd = PortPair {
            rtp: 40001,
            rtcp: 40002,
        };
        assert_eq!(pool.release(t, odd), Err(ReleaseError::NotAPair(odd)));
        assert_eq!(counts(&pool), before);

        pool.release(t, pair).expect("release");
        let e = pool.release(t, pair).expect_err("double release");
        assert_eq!(e, ReleaseError::AlreadyReleased { port: pair.rtp });
        assert_eq!(
            e.to_string(),
            "port 40000 was already released (it is in quarantine)"
        );
        pool.reclaim(t + Q);
        assert_eq!(
            pool.release(t + Q, pair),
            Err(ReleaseError::NotAllocated { port: pair.rtp }),
            "and again once it is free"
        );
        assert_eq!(counts(&pool), (9, 1, 0));
    }

    #[test]
    fn a_busy_day_never_hands_a_port_to_two_calls() {
        let t0 = Instant::now();
        let mut pool = PortPool::new(range(40000, 40099), Duration::from_secs(5));
        let mut held: VecDeque<Ports> = VecDeque::new();
        let mut owned: HashSet<u16> = HashSet::new();
        for step in 0..20_000u64 {
            let now = t0 + Duration::from_millis(step * 7);
            let single = step % 3 == 0;
            let got = if single {
                pool.allocate_single(now).map(Ports::Single)
            } else {
                pool.allocate_pair(now).map(Ports::Pair)
            };
            match got {
                Ok(p) => {
                    for port in ports_of(p) {
                        assert!(owned.insert(port), "port {port} handed out twice");
                    }
                    held.push_back(p);
                }
                Err(_) => {
                    // Exhausted only when nothing suitable is free (the rest
                    // may all be in quarantine).
                    if single {
                        assert_eq!(pool.free(), 0);
                    } else {
                        assert_eq!(pool.free_pairs(), 0);
                    }
                    if let Some(p) = held.pop_front() {
                        pool.release(now, p).expect("release");
                        for port in ports_of(p) {
                            owned.remove(&port);
                        }
                    }
                }
            }
            if held.len() > 30 {
                let p = held.pop_front().expect("held");
                pool.release(now, p).expect("release");
                for port in ports_of(p) {
                    owned.remove(&port);
                }
            }
            assert_eq!(pool.in_use(), owned.len());
            assert_eq!(pool.free() + pool.in_use() + pool.quarantined(), 100);
        }
    }

    fn ports_of(p: Ports) -> Vec<u16> {
        match p {
            Ports::Pair(pp) => vec![pp.rtp, pp.rtcp],
            Ports::Single(s) => vec![s],
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Pair,
        Single,
        Release(usize),
        /// Release a port that may or may not be held, as a single port.
        Stray(u16),
        /// Release a held allocation a second time.
        Again(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Pair),
            2 => Just(Op::Single),
            3 => any::<usize>().prop_map(Op::Release),
            1 => (39_995u16..40_035).prop_map(Op::Stray),
            1 => any::<usize>().prop_map(Op::Again),
            2 => (0u64..1_500).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #[test]
        fn random_sequences_never_duplicate_or_lose_ports(
            lo in 40_000u16..40_004,
            len in 1u16..24,
            ops in proptest::collection::vec(op(), 0..400),
        ) {
            let r = range(lo, lo + len - 1);
            let q = Duration::from_secs(1);
            let mut pool = PortPool::new(r, q);
            let t0 = Instant::now();
            let mut now = t0;
            let mut held: Vec<Ports> = Vec::new();
            let mut released: Vec<Ports> = Vec::new();
            let mut owned: HashSet<u16> = HashSet::new();
            let mut released_at: HashMap<u16, Instant> = HashMap::new();
            let take = |p: Ports, now: Instant, owned: &mut HashSet<u16>, released_at: &HashMap<u16, Instant>| {
                for port in ports_of(p) {
                    prop_assert!(r.contains(port), "{port} outside {r}");
                    prop_assert!(owned.insert(port), "{port} handed out twice");
                    if let Some(at) = released_at.get(&port) {
                        prop_assert!(now.duration_since(*at) >= q, "{port} reused during quarantine");
                    }
                }
                Ok(())
            };
            for op in ops {
                match op {
                    Op::Pair => match pool.allocate_pair(now) {
                        Ok(pp) => {
                            prop_assert!(pp.rtp % 2 == 0 && pp.rtcp == pp.rtp + 1);
                            take(Ports::Pair(pp), now, &mut owned, &released_at)?;
                            held.push(Ports::Pair(pp));
                        }
                        Err(_) => {
                            // No aligned pair is entirely free.
                            for p in (r.lo..r.hi).filter(|p| p % 2 == 0) {
                                let both = pool.status(p) == Some(PortStatus::Free)
                                    && pool.status(p + 1) == Some(PortStatus::Free);
                                prop_assert!(!both, "pair {p} free but refused");
                            }
                        }
                    },
                    Op::Single => match pool.allocate_single(now) {
                        Ok(s) => {
                            take(Ports::Single(s), now, &mut owned, &released_at)?;
                            held.push(Ports::Single(s));
                        }
                        Err(_) => prop_assert_eq!(pool.free(), 0),
                    },
                    Op::Release(i) if !held.is_empty() => {
                        let p = held.swap_remove(i % held.len());
                        prop_assert_eq!(pool.release(now, p), Ok(()));
                        for port in ports_of(p) {
                            owned.remove(&port);
                            released_at.insert(port, now);
                        }
                        released.push(p);
                    }
                    Op::Again(i) if !released.is_empty() => {
                        let p = released[i % released.len()];
                        if ports_of(p).iter().all(|x| !owned.contains(x)) {
                            prop_assert!(pool.release(now, p).is_err());
                        }
                    }
                    Op::Stray(port) => {
                        if !held.contains(&Ports::Single(port)) {
                            prop_assert!(pool.release(now, port).is_err());
                        }
                    }
                    Op::Advance(ms) => now += Duration::from_millis(ms),
                    Op::Release(_) | Op::Again(_) => {}
                }
                prop_assert_eq!(pool.free() + pool.in_use() + pool.quarantined(), r.len());
                prop_assert_eq!(pool.in_use(), owned.len());
            }
            // Give everything back: every port and every pair returns.
            for p in held.drain(..) {
                prop_assert_eq!(pool.release(now, p), Ok(()));
            }
            now += q;
            pool.reclaim(now);
            prop_assert_eq!((pool.free(), pool.in_use(), pool.quarantined()), (r.len(), 0, 0));
            prop_assert_eq!(pool.free_pairs(), pool.pair_capacity());
        }
    }
}
