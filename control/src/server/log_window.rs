//! "Logged once per rate window", sans-IO: decides whether an error from a
//! source is logged now or only counted, so a peer that sends garbage (or
//! a flood of it) produces one log line per kind per source per window
//! instead of one per message. Every error is still counted in metrics by
//! the caller; this only decides about the log line.
//!
//! Keyed by (kind, source address). The first error of a key logs at once;
//! the next ones within [`LOG_WINDOW`] are suppressed and counted, and the
//! first one after the window logs again with how many were suppressed in
//! between.
//!
//! Memory is bounded: at most `max_keys` keys are tracked. When the table
//! is full, keys whose window has passed are forgotten first; if none has
//! (more than `max_keys` sources misbehaving within one window: spoofed
//! addresses), new sources share one overflow entry per kind, so they still
//! log at most once per window together.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One log line per kind per source per this long.
pub const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Keys tracked by default.
pub const DEFAULT_MAX_KEYS: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// When the key's last line was logged.
    logged_at: Instant,
    /// Errors since then that were not logged.
    suppressed: u64,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            logged_at: now,
            suppressed: 0,
        }
    }

    fn hit(&mut self, now: Instant, window: Duration) -> Option<u64> {
        if now.saturating_duration_since(self.logged_at) >= window {
            self.logged_at = now;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// Which errors are logged now; see the module documentation.
#[derive(Debug)]
pub struct LogWindow {
    window: Duration,
    max_keys: usize,
    entries: HashMap<(&'static str, IpAddr), Entry>,
    /// New sources while the table is full of recent ones, per kind.
    overflow: HashMap<&'static str, Entry>,
    /// No entry was logged before this: until `oldest + window` nothing
    /// can be evicted, so a full table is not scanned again before then.
    oldest: Option<Instant>,
}

impl Default for LogWindow {
    fn default() -> Self {
        LogWindow::new(LOG_WINDOW, DEFAULT_MAX_KEYS)
    }
}

impl LogWindow {
    pub fn new(window: Duration, max_keys: usize) -> Self {
        LogWindow {
            window,
            max_keys: max_keys.max(1),
            entries: HashMap::new(),
            overflow: HashMap::new(),
            oldest: None,
        }
    }

    /// An error of `kind` from `source` at `now`. `Some(suppressed)`: log
    /// it now, saying that `suppressed` more of this kind from this source
    /// were not logged since the previous line. `None`: count it only.
    pub fn check(&mut self, kind: &'static str, source: IpAddr, now: Instant) -> Option<u64> {
        let window = self.window;
        let key = (kind, source.to_canonical());
        if let Some(e) = self.entries.get_mut(&key) {
            return e.hit(now, window);
        }
        if self.entries.len() >= self.max_keys {
            self.evict_expired(now);
        }
        if self.entries.len() < self.max_keys {
            self.entries.insert(key, Entry::new(now));
            self.oldest = Some(self.oldest.map_or(now, |o| o.min(now)));
            return Some(0);
        }
        match self.overflow.get_mut(kind) {
            Some(e) => e.hit(now, window),
            None => {
                self.overflow.insert(kind, Entry::new(now));
                Some(0)
            }
        }
    }

    /// Keys tracked now (overflow entries not included).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    /// Forget keys whose window has passed; their unlogged count goes with
    /// them (the errors stay counted in metrics).
    fn evict_expired(&mut self, now: Instant) {
        let window = self.window;
        if self
            .oldest
            .is_some_and(|o| now.saturating_duration_since(o) < window)
        {
            return;
        }
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.logged_at) < window);
        self.oldest = self.entries.values().map(|e| e.logged_at).min();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn logs_once_per_window_with_the_suppressed_count() {
        let t0 = Instant::now();
        let mut w = LogWindow::new(Duration::from_secs(10), 16);
        let src = ip("192.0.2.66");
        assert_eq!(w.check("unparseable", src, t0), Some(0));
        for i in 1..=99u64 {
            let t = t0 + Duration::from_millis(90 * i);
            assert_eq!(w.check("unparseable", src, t), None, "at {i}");
        }
        // Just before the window ends: still suppressed.
        assert_eq!(
            w.check("unparseable", src, t0 + Duration::from_millis(9_999)),
            None
        );
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(w.check("unparseable", src, t1), Some(100));
        assert_eq!(w.check("unparseable", src, t1), None);
        // A quiet source logs at once after a window, with what was
        // suppressed before.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(w.check("unparseable", src, t2), Some(1));
        assert_eq!(
            w.check("unparseable", src, t2 + Duration::from_secs(10)),
            Some(0)
        );
    }

    #[test]
    fn kinds_and_sources_are_separate() {
        let t0 = Instant::now();
        let mut w = LogWindow::default();
        let a = ip("192.0.2.1");
        let b = ip("2001:db8::1");
        assert_eq!(w.check("acl", a, t0), Some(0));
        assert_eq!(w.check("acl", b, t0), Some(0));
        assert_eq!(w.check("unframeable", a, t0), Some(0));
        assert_eq!(w.check("acl", a, t0), None);
        assert_eq!(w.check("acl", b, t0), None);
        assert_eq!(w.check("unframeable", a, t0), None);
        // An IPv4-mapped IPv6 peer is the same source as its IPv4 address.
        assert_eq!(w.check("acl", ip("::ffff:192.0.2.1"), t0), None);
        assert_eq!(w.tracked(), 3);
    }

    #[test]
    fn memory_is_bounded_and_old_keys_are_evicted() {
        let t0 = Instant::now();
        let mut w = LogWindow::new(Duration::from_secs(10), 8);
        let mut logged = 0;
        for i in 0..10_000u32 {
            let src = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            if w.check("unparseable", src, t0).is_some() {
                logged += 1;
            }
        }
        assert_eq!(w.tracked(), 8);
        // Eight sources with a line each, then one shared line for the rest.
        assert_eq!(logged, 8 + 1);
        // Another kind's overflow is its own.
        assert_eq!(w.check("acl", ip("198.51.100.1"), t0), Some(0));
        assert_eq!(w.check("acl", ip("198.51.100.2"), t0), None);
        // After the window the old keys make room for new sources, and the
        // overflow line reports what it suppressed.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(w.check("unparseable", ip("192.0.2.10"), later), Some(0));
        assert_eq!(w.tracked(), 1);
        for i in 0..7u32 {
            let src = IpAddr::from(std::net::Ipv4Addr::from(0xc633_6400 + i));
            assert_eq!(w.check("unparseable", src, later), Some(0));
        }
        assert_eq!(w.tracked(), 8);
        let src = ip("203.0.113.9");
        assert_eq!(w.check("unparseable", src, later), Some(10_000 - 8 - 1));
    }
}
