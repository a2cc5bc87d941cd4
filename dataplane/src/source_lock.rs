//! Which source address may feed a track: the defence against packets
//! spoofed to an allocated port from elsewhere on the media network.
//!
//! A track's lock is a [`SourceLatch`] shared by every worker through the
//! track's spec: the address it is locked to, as a 32-bit [`SourceKey`]
//! tag, or nothing yet. The worker keeps a copy of the tag in the track's
//! hot state and compares one `u32` per packet; only a mismatch goes back
//! to the latch (first packet, or a re-INVITE that moved the stream).
//!
//! Only the IP address is locked, not the port: SBCs send RTCP from
//! another port than RTP, and some send RTP from a port other than their
//! SDP's. An attacker who can forge the SBC's own address is stopped by
//! SRTP's authentication, not by this.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

/// How a track picks the one source address it records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SourcePolicy {
    /// Record from any source (no lock).
    Any,
    /// Lock to the first source address any worker sees for the track.
    #[default]
    First,
    /// Lock to this address (the SDP's connection address); packets from
    /// elsewhere are dropped even before the first legitimate one.
    Expect(IpAddr),
}

/// The secret behind IPv6 tags, drawn once per engine: an attacker cannot
/// compute which of their addresses share a tag with the SBC's.
#[derive(Clone, Copy, Debug)]
pub struct SourceKey([u64; 4]);

impl SourceKey {
    /// A fresh random key.
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // `RandomState` is seeded from the OS once per process and then
        // per instance; four instances give four independent words.
        let word = || {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x6d66_736c_6f63_6b00);
            h.finish() | 1
        };
        SourceKey([word(), word(), word(), word()])
    }

    /// The tag of an address; never 0 (0 means "not locked yet").
    /// IPv4 addresses are their own tag, so they never collide with each
    /// other; IPv6 addresses get a keyed multiply-shift hash.
    #[inline(always)]
    pub fn tag(&self, ip: &IpAddr) -> u32 {
        let t = match ip {
            IpAddr::V4(v4) => u32::from(*v4),
            IpAddr::V6(v6) => {
                let b = u128::from(*v6);
                let (hi, lo) = ((b >> 64) as u64, b as u64);
                let [k0, k1, k2, k3] = self.0;
                // Multiply-shift, then a fold so low input bits reach the
                // high half that is kept.
                let h = (hi ^ k0).wrapping_mul(k1) ^ (lo ^ k2).wrapping_mul(k3);
                ((h ^ (h >> 32)).wrapping_mul(k1) >> 32) as u32
            }
        };
        if t == 0 {
            1
        } else {
            t
        }
    }
}

/// A track's lock, shared by the workers (through the track's spec) and
/// the control plane.
#[derive(Debug)]
pub struct SourceLatch {
    enabled: bool,
    /// The locked tag; 0 while a `First` lock waits for its first packet.
    tag: AtomicU32,
}

impl SourceLatch {
    pub fn new(policy: SourcePolicy, key: &SourceKey) -> Self {
        let (enabled, tag) = match policy {
            SourcePolicy::Any => (false, 0),
            SourcePolicy::First => (true, 0),
            SourcePolicy::Expect(ip) if ip.is_unspecified() => (true, 0),
            SourcePolicy::Expect(ip) => (true, key.tag(&ip)),
        };
        SourceLatch {
            enabled,
            tag: AtomicU32::new(tag),
        }
    }

    /// Whether packets are checked at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The current tag (0: none yet).
    pub fn current(&self) -> u32 {
        self.tag.load(Ordering::Acquire)
    }

    /// The tag packets must carry, locking to `seen` when nothing is locked
    /// yet. Workers race here only on a track's first packets; the first
    /// one wins for every worker.
    pub fn lock_or_current(&self, seen: u32) -> u32 {
        match self
            .tag
            .compare_exchange(0, seen, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => seen,
            Err(current) => current,
        }
    }

    /// Move the lock (a re-INVITE announced another address), or with
    /// `None` forget it so the next packet's source is locked.
    pub fn relock(&self, to: Option<u32>) {
        self.tag.store(to.unwrap_or(0), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SourceKey {
        SourceKey([
            0x9E37_79B9_7F4A_7C15,
            0xBF58_476D_1CE4_E5B9,
            0x94D0_49BB_1331_11EB,
            0xD6E8_FEB8_6659_FD93,
        ])
    }

    #[test]
    fn ipv4_tags_are_the_address_and_never_zero() {
        let k = key();
        assert_eq!(k.tag(&"192.0.2.1".parse().unwrap()), 0xC000_0201);
        assert_eq!(k.tag(&"0.0.0.0".parse().unwrap()), 1);
    }

    #[test]
    fn ipv6_tags_differ_for_neighbouring_addresses_and_keys() {
        let k = key();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert_ne!(k.tag(&a), k.tag(&b));
        assert_eq!(k.tag(&a), k.tag(&a));
        let other = SourceKey::random();
        let third = SourceKey::random();
        // Two random keys agreeing on a tag by chance: 2^-32.
        assert!(other.tag(&a) != third.tag(&a) || other.tag(&b) != third.tag(&b));
    }

    #[test]
    fn first_policy_locks_to_the_first_caller_for_everyone() {
        let l = SourceLatch::new(SourcePolicy::First, &key());
        assert!(l.enabled());
        assert_eq!(l.current(), 0);
        assert_eq!(l.lock_or_current(42), 42);
        assert_eq!(l.lock_or_current(7), 42);
        l.relock(None);
        assert_eq!(l.lock_or_current(7), 7);
        l.relock(Some(9));
        assert_eq!(l.lock_or_current(7), 9);
    }

    #[test]
    fn expect_policy_is_locked_before_any_packet() {
        let k = key();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let l = SourceLatch::new(SourcePolicy::Expect(ip), &k);
        assert_eq!(
            l.lock_or_current(k.tag(&"203.0.113.9".parse().unwrap())),
            k.tag(&ip)
        );
        // An SDP with c=0.0.0.0 says nothing: lock to the first source.
        let l = SourceLatch::new(SourcePolicy::Expect("0.0.0.0".parse().unwrap()), &k);
        assert_eq!(l.lock_or_current(5), 5);
        assert!(!SourceLatch::new(SourcePolicy::Any, &k).enabled());
    }
}
