//! Timer values (RFC 3261 §17.1.1.1 and Table 4) and the arithmetic on them.
//!
//! All arithmetic saturates: a configuration with huge values must give far
//! deadlines, never a panic from `Instant + Duration` or `Duration * n`.

use std::time::{Duration, Instant};

/// The base timer values of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (T1, 500 ms): response retransmissions start at T1 and
    /// a transaction waits at most 64*T1 (Timers H, J and L).
    pub t1: Duration,
    /// Longest retransmission interval (T2, 4 s).
    pub t2: Duration,
    /// How long a message can stay in the network (T4, 5 s): Timer I.
    pub t4: Duration,
    /// How long the layer waits before sending `100 Trying` for an INVITE
    /// on its own. RFC 3261 §17.2.1 allows skipping the 100 when the TU
    /// answers within 200 ms; zero (the default) sends it at once, which
    /// stops the UAC's INVITE retransmissions as early as possible.
    pub trying_delay: Duration,
}

impl Timers {
    /// The RFC 3261 defaults: T1 500 ms, T2 4 s, T4 5 s, immediate 100.
    pub const RFC3261: Timers = Timers {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        t4: Duration::from_secs(5),
        trying_delay: Duration::ZERO,
    };

    /// 64*T1: Timer H (ACK wait), Timer J (UDP), Timer L (RFC 6026 §8.7),
    /// and how long the UAS core retransmits a 2xx (RFC 3261 §13.3.1.4).
    pub(crate) fn transaction_timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

impl Default for Timers {
    fn default() -> Self {
        Self::RFC3261
    }
}

/// `now + d`, or the furthest representable instant before it: never panics.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}

/// A retransmission schedule that starts at T1 and doubles up to T2: Timer G
/// (RFC 3261 §17.2.1) and the 2xx retransmission of §13.3.1.4 are the same
/// schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// When the next retransmission is due.
    pub(crate) at: Instant,
    interval: Duration,
    cap: Duration,
}

impl Backoff {
    /// The first retransmission is due T1 after the original send.
    pub(crate) fn start(now: Instant, timers: &Timers) -> Backoff {
        Backoff {
            at: later(now, timers.t1),
            interval: timers.t1,
            cap: timers.t2,
        }
    }

    /// Schedules the next retransmission after one was sent at `now`:
    /// `min(2 * interval, T2)` later.
    pub(crate) fn advance(&mut self, now: Instant) {
        self.interval = self.interval.saturating_mul(2).min(self.cap);
        self.at = later(now, self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_t2() {
        let t0 = Instant::now();
        let mut b = Backoff::start(t0, &Timers::RFC3261);
        let mut due = Vec::new();
        for _ in 0..6 {
            due.push(b.at.duration_since(t0).as_millis());
            let at = b.at;
            b.advance(at);
        }
        assert_eq!(due, [500, 1500, 3500, 7500, 11500, 15500]);
    }

    #[test]
    fn huge_values_saturate() {
        let t0 = Instant::now();
        let timers = Timers {
            t1: Duration::MAX,
            ..Timers::RFC3261
        };
        assert_eq!(timers.transaction_timeout(), Duration::MAX);
        assert!(later(t0, Duration::MAX) > t0);
        let mut b = Backoff::start(t0, &timers);
        b.advance(b.at);
    }
}
