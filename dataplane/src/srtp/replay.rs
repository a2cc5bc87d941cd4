//! Packet index estimation (RFC 3711 §3.3.1, Appendix A) and the replay
//! window (§3.3.2), in two steps so that nothing changes before a packet
//! has authenticated: [`ReplayWindow::check`] looks, [`ReplayWindow::accept`]
//! commits.

use super::SrtpError;

/// Packets behind the newest one that are still accepted once (RFC 3711
/// asks for at least 64).
pub const WINDOW: u64 = 64;

/// The newest index accepted and which of the 63 before it were seen. For
/// SRTP the index is 48 bits (ROC || SEQ); for SRTCP it is the 31-bit
/// SRTCP index, given explicitly in each packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Newest accepted index + 1; 0 before the first packet.
    top: u64,
    /// Bit `k` set: index `top - 1 - k` was accepted.
    seen: u64,
}

impl ReplayWindow {
    /// The newest accepted index.
    pub fn highest(&self) -> Option<u64> {
        self.top.checked_sub(1)
    }

    /// The 48-bit index of an SRTP packet with sequence number `seq`: the
    /// rollover counter guessed from the newest accepted packet (RFC 3711
    /// Appendix A). Before any packet, ROC = 0 (SDES streams start there).
    #[inline]
    pub fn estimate(&self, seq: u16) -> u64 {
        let Some(highest) = self.highest() else {
            return seq as u64;
        };
        let roc = highest >> 16;
        let s_l = (highest & 0xffff) as u16;
        let seq64 = seq as u64;
        let v = if s_l < 0x8000 {
            if seq.wrapping_sub(s_l) > 0x8000 && seq > s_l {
                // Far ahead of a low s_l: a late packet from before the wrap.
                match roc.checked_sub(1) {
                    Some(r) => r,
                    // Before the first ROC: older than anything the stream
                    // can have sent under this context. Map it behind the
                    // window so `check` refuses it.
                    None => return u64::MAX,
                }
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq {
            roc + 1
        } else {
            roc
        };
        (v << 16) | seq64
    }

    /// Whether `index` may be accepted: newer than the newest, or within
    /// the window and not seen yet. Changes nothing.
    #[inline]
    pub fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index == u64::MAX {
            return Err(SrtpError::Replay);
        }
        if index >= self.top {
            return Ok(());
        }
        let behind = self.top - 1 - index;
        if behind >= WINDOW || self.seen & (1 << behind) != 0 {
            return Err(SrtpError::Replay);
        }
        Ok(())
    }

    /// Record `index` as received (after it authenticated).
    #[inline]
    pub fn accept(&mut self, index: u64) {
        if index >= self.top {
            let shift = index + 1 - self.top;
            self.seen = if shift >= WINDOW || self.top == 0 {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = index + 1;
        } else {
            let behind = self.top - 1 - index;
            if behind < WINDOW {
                self.seen |= 1 << behind;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_follows_appendix_a() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.estimate(100), 100);
        w.accept(100);
        assert_eq!(w.estimate(101), 101);
        assert_eq!(w.estimate(99), 99);
        // s_l < 2^15: a sequence number more than 2^15 ahead is from the
        // previous ROC, and there is none before ROC 0.
        assert_eq!(w.estimate(40_000), u64::MAX);
        // s_l >= 2^15: a small sequence number means the ROC moved on.
        let mut w = ReplayWindow::default();
        w.accept(65_530);
        assert_eq!(w.estimate(3), (1 << 16) | 3);
        assert_eq!(w.estimate(65_531), 65_531);
        w.accept((1 << 16) | 3);
        // Late packet from before the wrap, now that s_l is low.
        assert_eq!(w.estimate(65_533), 65_533);
        assert_eq!(w.estimate(4), (1 << 16) | 4);
    }

    #[test]
    fn window_accepts_each_index_once() {
        let mut w = ReplayWindow::default();
        for i in [10u64, 12, 11, 75, 74] {
            w.check(i).unwrap();
            w.accept(i);
        }
        for i in [10u64, 11, 12, 74, 75] {
            assert_eq!(w.check(i), Err(SrtpError::Replay), "{i}");
        }
        // The window covers 12..=75: 13 is in it and unseen, 11 is behind it.
        w.check(13).unwrap();
        assert_eq!(w.check(11), Err(SrtpError::Replay));
        assert_eq!(w.check(5), Err(SrtpError::Replay), "behind the window");
        // A jump further than the window forgets everything behind it.
        w.accept(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replay));
        w.check(999).unwrap();
        assert_eq!(w.check(936), Err(SrtpError::Replay));
        w.check(937).unwrap();
    }
}
