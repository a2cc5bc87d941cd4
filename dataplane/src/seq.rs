//! RTP sequence-number accounting for one stream (one SSRC segment):
//! extension past the 16-bit wrap, duplicates, reordering, and how many
//! packets were expected (RFC 3550 §6.4.1, appendix A.1).

/// Packets behind the highest sequence number that we still recognise as
/// reordered (and can tell apart from duplicates). At 20 ms ptime this is
/// 640 ms of reordering, beyond the writer's reorder window (200 ms by
/// default): anything older could not be placed anyway and counts as late.
pub const REORDER_WINDOW: u64 = 32;

/// A forward jump larger than this is not loss but a restarted stream
/// (RFC 3550 A.1 `MAX_DROPOUT`).
pub const MAX_DROPOUT: i64 = 3000;

/// What one packet's sequence number means for the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqVerdict {
    /// The first packet, or the next one after the highest seen (gaps allowed).
    InOrder,
    /// Behind the highest, not seen before, within the window.
    Reordered,
    /// Seen before.
    Duplicate,
    /// Further behind than the window can tell: neither placed nor counted
    /// as a duplicate.
    TooOld,
    /// A jump so large the sender must have restarted; the caller starts a
    /// new segment and a fresh tracker.
    Restart,
}

/// Sequence state of one stream: 16 bytes, owned by one worker. Extended
/// numbers are 32-bit, enough for 2^32 packets (two years at 50 pps).
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    /// Extended sequence number of the lowest packet seen (0: none yet).
    base: u32,
    /// Extended highest sequence number seen.
    max: u32,
    /// Unique packets received (in-order + reordered).
    received: u32,
    /// Bit i set: packet `max - i` has been received.
    window: u32,
}

impl SeqTracker {
    /// Account for one packet and say what it is.
    #[inline]
    pub fn observe(&mut self, seq: u16) -> SeqVerdict {
        if self.received == 0 {
            // Start at 2^16 so that reordered packets from before the first
            // one still have a non-negative extended number.
            self.base = (1 << 16) | seq as u32;
            self.max = self.base;
            self.window = 1;
            self.received = 1;
            return SeqVerdict::InOrder;
        }
        let delta = seq.wrapping_sub(self.max as u16) as i16 as i64;
        if delta > 0 {
            if delta > MAX_DROPOUT {
                return SeqVerdict::Restart;
            }
            self.max = self.max.wrapping_add(delta as u32);
            self.window = if delta as u64 >= REORDER_WINDOW {
                1
            } else {
                (self.window << delta) | 1
            };
            self.received += 1;
            SeqVerdict::InOrder
        } else if delta == 0 {
            SeqVerdict::Duplicate
        } else {
            let back = (-delta) as u32;
            if back as u64 >= REORDER_WINDOW {
                return if back as i64 > MAX_DROPOUT {
                    SeqVerdict::Restart
                } else {
                    SeqVerdict::TooOld
                };
            }
            let bit = 1u32 << back;
            if self.window & bit != 0 {
                return SeqVerdict::Duplicate;
            }
            self.window |= bit;
            self.received += 1;
            if self.max - back < self.base {
                self.base = self.max - back;
            }
            SeqVerdict::Reordered
        }
    }

    /// Whether any packet has been seen.
    pub fn started(&self) -> bool {
        self.received > 0
    }

    /// Packets between the lowest and highest sequence numbers seen, inclusive.
    pub fn expected(&self) -> u64 {
        if self.started() {
            (self.max - self.base) as u64 + 1
        } else {
            0
        }
    }

    /// Unique packets received.
    pub fn received(&self) -> u64 {
        self.received as u64
    }

    /// Packets expected but never received (never negative: duplicates are
    /// not counted as received).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received as u64)
    }

    /// Lowest sequence number seen (16-bit).
    pub fn first_seq(&self) -> u16 {
        self.base as u16
    }

    /// Highest sequence number seen (16-bit).
    pub fn last_seq(&self) -> u16 {
        self.max as u16
    }

    /// Times the 16-bit sequence number wrapped past the highest packet.
    pub fn cycles(&self) -> u64 {
        ((self.max >> 16).saturating_sub(self.base >> 16)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed(seqs: &[u16]) -> (SeqTracker, Vec<SeqVerdict>) {
        let mut t = SeqTracker::default();
        let v = seqs.iter().map(|&s| t.observe(s)).collect();
        (t, v)
    }

    #[test]
    fn in_order_across_wrap() {
        let seqs: Vec<u16> = (0..10u16).map(|i| 65530u16.wrapping_add(i)).collect();
        let (t, v) = feed(&seqs);
        assert!(v.iter().all(|&x| x == SeqVerdict::InOrder));
        assert_eq!(t.expected(), 10);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.first_seq(), 65530);
        assert_eq!(t.last_seq(), 3);
        assert_eq!(t.cycles(), 1);
    }

    #[test]
    fn loss_duplicate_and_reorder() {
        use SeqVerdict::*;
        let (t, v) = feed(&[10, 11, 13, 12, 12, 15, 15, 14]);
        assert_eq!(
            v,
            vec![InOrder, InOrder, InOrder, Reordered, Duplicate, InOrder, Duplicate, Reordered]
        );
        assert_eq!(t.expected(), 6);
        assert_eq!(t.received(), 6);
        assert_eq!(t.lost(), 0);
        let (t, _) = feed(&[10, 11, 14, 15]);
        assert_eq!(t.lost(), 2);
    }

    #[test]
    fn reorder_before_first_packet_extends_base() {
        let (t, v) = feed(&[5, 4, 6]);
        assert_eq!(v[1], SeqVerdict::Reordered);
        assert_eq!(t.first_seq(), 4);
        assert_eq!(t.expected(), 3);
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn reorder_across_wrap() {
        let (t, v) = feed(&[65534, 0, 65535, 1]);
        assert_eq!(v[2], SeqVerdict::Reordered);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.expected(), 4);
    }

    #[test]
    fn old_and_restart() {
        let mut t = SeqTracker::default();
        for s in 1000..1300u16 {
            t.observe(s);
        }
        assert_eq!(t.observe(1299 - 31), SeqVerdict::Duplicate);
        assert_eq!(t.observe(1299 - 32), SeqVerdict::TooOld);
        assert_eq!(t.observe(1000), SeqVerdict::TooOld);
        assert_eq!(t.observe(1299 + 3001), SeqVerdict::Restart);
        assert_eq!(t.observe(1299u16.wrapping_sub(4000)), SeqVerdict::Restart);
        assert_eq!(t.expected(), 300);
    }

    proptest! {
        /// Any permutation within the window of a gap-free run, with
        /// duplicates sprinkled in, is counted exactly.
        #[test]
        fn shuffled_runs_count_exactly(start in any::<u16>(), n in 1usize..400, swaps in proptest::collection::vec((0usize..400, 1usize..8), 0..50), dups in proptest::collection::vec(0usize..400, 0..30)) {
            let mut seqs: Vec<u16> = (0..n).map(|i| start.wrapping_add(i as u16)).collect();
            for (i, d) in swaps {
                let i = i % n;
                let j = (i + d).min(n - 1);
                seqs.swap(i, j);
            }
            // Chained swaps can carry a packet beyond the window, where it is
            // deliberately "too old": the claim is exactness within it.
            let mut highest = 0usize;
            for (k, s) in seqs.iter().enumerate() {
                let idx = s.wrapping_sub(start) as usize;
                prop_assume!(k == 0 || highest < idx || highest - idx < REORDER_WINDOW as usize);
                highest = highest.max(idx);
            }
            let mut with_dups = Vec::new();
            let mut dup_count = 0u64;
            for (i, s) in seqs.iter().enumerate() {
                with_dups.push(*s);
                if dups.contains(&i) { with_dups.push(*s); dup_count += 1; }
            }
            let mut t = SeqTracker::default();
            let mut d = 0u64;
            for s in with_dups { if t.observe(s) == SeqVerdict::Duplicate { d += 1; } }
            prop_assert_eq!(t.received(), n as u64);
            prop_assert_eq!(t.expected(), n as u64);
            prop_assert_eq!(t.lost(), 0);
            prop_assert_eq!(d, dup_count);
        }
    }
}
