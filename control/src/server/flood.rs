//! Per-source flood protection for SIP, sans-IO: a token bucket per source
//! address, checked by the transports before a message is queued for the
//! control loop, so a flood from one source (INVITEs or garbage) cannot
//! fill the queue that every other SBC's messages go through.
//!
//! The table of sources is bounded: when it is full, buckets that have
//! refilled completely (idle sources) are forgotten first; if none has,
//! the new source is limited as if it were the most recent heavy sender,
//! so spoofed source addresses cannot grow memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use super::log_window::LogWindow;
pub use super::log_window::LOG_WINDOW;

/// Limits per source address.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloodLimits {
    /// Messages per second a source may send on average.
    pub rate: f64,
    /// Messages a source may send at once after being quiet.
    pub burst: f64,
    /// Sources tracked at once.
    pub max_sources: usize,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits {
            rate: 1000.0,
            burst: 2000.0,
            max_sources: 65_536,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What happened to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Dropped; `log` is true for the first drop of a source in a log
    /// window, with the number dropped since the previous log line.
    Drop {
        log: bool,
        dropped: u64,
    },
}

/// The per-source buckets.
#[derive(Debug)]
pub struct FloodGuard {
    limits: FloodLimits,
    sources: HashMap<IpAddr, Bucket>,
    /// One log line per source per window.
    log: LogWindow,
    /// Shared bucket for new sources while the table is full of busy ones.
    overflow: Bucket,
}

impl FloodGuard {
    pub fn new(limits: FloodLimits, now: Instant) -> Self {
        FloodGuard {
            limits,
            sources: HashMap::new(),
            log: LogWindow::new(LOG_WINDOW, limits.max_sources),
            overflow: Bucket {
                tokens: limits.burst,
                at: now,
            },
        }
    }

    pub fn set_limits(&mut self, limits: FloodLimits) {
        self.limits = limits;
    }

    /// Account one message from `src` at `now`.
    pub fn check(&mut self, src: IpAddr, now: Instant) -> Verdict {
        let limits = self.limits;
        if limits.rate <= 0.0 {
            return Verdict::Pass;
        }
        if !self.sources.contains_key(&src) && self.sources.len() >= limits.max_sources {
            self.evict_idle(now);
        }
        let bucket = if self.sources.len() < limits.max_sources || self.sources.contains_key(&src) {
            self.sources.entry(src).or_insert(Bucket {
                tokens: limits.burst,
                at: now,
            })
        } else {
            &mut self.overflow
        };
        refill(bucket, now, &limits);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Pass;
        }
        match self.log.check("rate_limited", src, now) {
            Some(suppressed) => Verdict::Drop {
                log: true,
                dropped: suppressed + 1,
            },
            None => Verdict::Drop {
                log: false,
                dropped: 0,
            },
        }
    }

    /// Sources tracked now.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    fn evict_idle(&mut self, now: Instant) {
        let limits = self.limits;
        self.sources.retain(|_, b| {
            let idle = now.duration_since(b.at).as_secs_f64();
            b.tokens + idle * limits.rate < limits.burst
        });
    }
}

fn refill(b: &mut Bucket, now: Instant, limits: &FloodLimits) {
    let dt = now.saturating_duration_since(b.at).as_secs_f64();
    b.tokens = (b.tokens + dt * limits.rate).min(limits.burst);
    b.at = now;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limits(rate: f64, burst: f64, max_sources: usize) -> FloodLimits {
        FloodLimits {
            rate,
            burst,
            max_sources,
        }
    }

    #[test]
    fn a_flooding_source_is_limited_and_others_are_not() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new(limits(100.0, 10.0, 100), t0);
        let flood = ip("192.0.2.66");
        let sbc = ip("192.0.2.10");
        let passed = (0..1000)
            .filter(|_| g.check(flood, t0) == Verdict::Pass)
            .count();
        assert_eq!(passed, 10, "the burst, then nothing at the same instant");
        assert_eq!(g.check(sbc, t0), Verdict::Pass);
        // A second later the flooder has 100 more, not more.
        let t1 = t0 + Duration::from_secs(1);
        let passed = (0..1000)
            .filter(|_| g.check(flood, t1) == Verdict::Pass)
            .count();
        assert_eq!(passed, 10, "refilled to the burst at most");
        let t2 = t1 + Duration::from_millis(50);
        let passed = (0..1000)
            .filter(|_| g.check(flood, t2) == Verdict::Pass)
            .count();
        assert_eq!(passed, 5, "100/s for 50 ms");
    }

    #[test]
    fn drops_are_logged_once_per_window_with_their_count() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new(limits(1.0, 1.0, 10), t0);
        let src = ip("2001:db8::66");
        assert_eq!(g.check(src, t0), Verdict::Pass);
        assert_eq!(
            g.check(src, t0),
            Verdict::Drop {
                log: true,
                dropped: 1
            }
        );
        for _ in 0..5 {
            assert_eq!(
                g.check(src, t0),
                Verdict::Drop {
                    log: false,
                    dropped: 0
                }
            );
        }
        let later = t0 + LOG_WINDOW;
        // Refilled by then: one passes, the next is logged with the count.
        assert_eq!(g.check(src, later), Verdict::Pass);
        assert_eq!(
            g.check(src, later),
            Verdict::Drop {
                log: true,
                dropped: 6
            }
        );
    }

    #[test]
    fn spoofed_sources_cannot_grow_the_table() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new(limits(10.0, 2.0, 16), t0);
        let mut passed = 0;
        for i in 0..10_000u32 {
            let src = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            // Two messages each: every bucket is busy (not refilled).
            for _ in 0..2 {
                if g.check(src, t0) == Verdict::Pass {
                    passed += 1;
                }
            }
        }
        assert_eq!(g.tracked(), 16);
        // 16 sources × burst 2, plus the shared overflow bucket's burst.
        assert_eq!(passed, 16 * 2 + 2);
        // Idle sources are forgotten to make room for a real SBC later.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(g.check(ip("192.0.2.10"), later), Verdict::Pass);
        assert!(g.tracked() <= 16);
    }

    #[test]
    fn zero_rate_turns_the_guard_off() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new(limits(0.0, 0.0, 1), t0);
        assert!((0..10_000).all(|_| g.check(ip("192.0.2.1"), t0) == Verdict::Pass));
    }
}
