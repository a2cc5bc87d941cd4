//! A hashed timer wheel: the RTP sender's schedule of "stream S sends its
//! next packet at T".
//!
//! Why a wheel rather than a binary heap: every stream re-arms itself once
//! per packet, so at tens of thousands of streams the scheduler does a
//! million insert/expire pairs per second. A wheel makes both O(1) (push to
//! a slot vector, drain a slot), where a heap pays O(log n) with cache-hostile
//! sift operations on each. The price is granularity: entries due within the
//! same tick fire together, in no particular order. With a 100 µs tick that
//! is far below the 1 ms the sender counts as a late send, and packets of one
//! tick go out in one `sendmmsg` batch anyway.
//!
//! Entries are never early: an entry due at `t` fires at the first tick
//! boundary at or after `t` (`ceil(t / tick)`). An entry further away than
//! one revolution simply stays in its slot until its own tick comes round
//! (each entry stores its absolute tick), so there is no separate overflow
//! list.

/// One scheduled item with the absolute tick it fires at.
#[derive(Debug)]
struct Entry<T> {
    tick: u64,
    item: T,
}

/// A hashed timer wheel over items of type `T`. Time is in nanoseconds on
/// the caller's clock (e.g. since the start of the run); the wheel never
/// reads a clock itself, so it is tested deterministically.
#[derive(Debug)]
pub struct TimerWheel<T> {
    tick_ns: u64,
    /// `slots.len()` is a power of two: the slot of tick `t` is `t & mask`.
    slots: Vec<Vec<Entry<T>>>,
    mask: u64,
    /// The next tick `advance` will process; everything before it is done.
    next_tick: u64,
    len: usize,
}

impl<T> TimerWheel<T> {
    /// A wheel of `slots` slots (rounded up to a power of two) of `tick_ns`
    /// each.
    ///
    /// # Panics
    /// If `tick_ns` or `slots` is 0.
    pub fn new(tick_ns: u64, slots: usize) -> Self {
        assert!(tick_ns > 0, "timer wheel tick must be positive");
        assert!(slots > 0, "timer wheel needs at least one slot");
        let n = slots.next_power_of_two();
        Self {
            tick_ns,
            slots: (0..n).map(|_| Vec::new()).collect(),
            mask: n as u64 - 1,
            next_tick: 0,
            len: 0,
        }
    }

    /// The tick length in nanoseconds.
    pub fn tick_ns(&self) -> u64 {
        self.tick_ns
    }

    /// Items scheduled and not yet fired.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedule `item` at `due_ns`. An item already overdue fires on the
    /// next [`advance`](Self::advance).
    pub fn insert(&mut self, due_ns: u64, item: T) {
        let tick = due_ns.div_ceil(self.tick_ns).max(self.next_tick);
        self.slots[(tick & self.mask) as usize].push(Entry { tick, item });
        self.len += 1;
    }

    /// Fire everything due at or before `now_ns`, appending the items to
    /// `out` in tick order (items of one tick in no particular order).
    pub fn advance(&mut self, now_ns: u64, out: &mut Vec<T>) {
        let now_tick = now_ns / self.tick_ns;
        if now_tick < self.next_tick {
            return;
        }
        if self.len == 0 {
            self.next_tick = now_tick + 1;
            return;
        }
        let span = now_tick - self.next_tick + 1;
        if span > self.mask {
            // A long stall (or a virtual clock jump) covers every slot: one
            // pass over the whole wheel, then restore tick order.
            let mut fired: Vec<Entry<T>> = Vec::new();
            for slot in &mut self.slots {
                let mut i = 0;
                while i < slot.len() {
                    if slot[i].tick <= now_tick {
                        fired.push(slot.swap_remove(i));
                    } else {
                        i += 1;
                    }
                }
            }
            fired.sort_by_key(|e| e.tick);
            self.len -= fired.len();
            out.extend(fired.into_iter().map(|e| e.item));
        } else {
            for tick in self.next_tick..=now_tick {
                let slot = &mut self.slots[(tick & self.mask) as usize];
                let mut i = 0;
                while i < slot.len() {
                    if slot[i].tick <= tick {
                        out.push(slot.swap_remove(i).item);
                        self.len -= 1;
                    } else {
                        i += 1;
                    }
                }
            }
        }
        self.next_tick = now_tick + 1;
    }

    /// When the next non-empty slot comes up, in nanoseconds: the earliest
    /// time worth waking for. It may be early (the slot's entries can belong
    /// to a later revolution) but is never late. `None` when empty.
    pub fn next_wakeup_ns(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let revolution = self.mask + 1;
        (self.next_tick..self.next_tick + revolution)
            .find(|t| !self.slots[(t & self.mask) as usize].is_empty())
            .map(|t| t * self.tick_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire<T>(w: &mut TimerWheel<T>, now: u64) -> Vec<T> {
        let mut out = Vec::new();
        w.advance(now, &mut out);
        out
    }

    #[test]
    fn fires_in_tick_order_never_early() {
        let mut w = TimerWheel::new(100, 16);
        w.insert(250, "c"); // tick 3
        w.insert(100, "a"); // tick 1
        w.insert(101, "b"); // tick 2
        assert!(fire(&mut w, 99).is_empty());
        assert_eq!(fire(&mut w, 100), vec!["a"]);
        assert!(fire(&mut w, 199).is_empty(), "101 is not due before tick 2");
        assert_eq!(fire(&mut w, 300), vec!["b", "c"]);
        assert!(w.is_empty());
    }

    #[test]
    fn entries_beyond_one_revolution_wait_for_their_tick() {
        // 8 slots of 10 ns: 1000 ns is 100 ticks away, 12 revolutions.
        let mut w = TimerWheel::new(10, 8);
        w.insert(1000, 1);
        w.insert(20, 2);
        for now in (0..1000).step_by(10) {
            let f = fire(&mut w, now);
            if now == 20 {
                assert_eq!(f, vec![2]);
            } else {
                assert!(f.is_empty(), "fired early at {now}: {f:?}");
            }
        }
        assert_eq!(fire(&mut w, 1000), vec![1]);
    }

    #[test]
    fn long_stall_fires_everything_in_order() {
        let mut w = TimerWheel::new(10, 8);
        for (i, due) in [500u64, 30, 270, 90, 10_000].iter().enumerate() {
            w.insert(*due, i);
        }
        // One jump over many revolutions.
        assert_eq!(fire(&mut w, 600), vec![1, 3, 2, 0]);
        assert_eq!(w.len(), 1);
        assert_eq!(fire(&mut w, 10_000), vec![4]);
    }

    #[test]
    fn overdue_insert_fires_next_advance() {
        let mut w = TimerWheel::new(10, 8);
        assert!(fire(&mut w, 1000).is_empty());
        w.insert(5, 'x');
        assert_eq!(fire(&mut w, 1010), vec!['x']);
    }

    #[test]
    fn periodic_streams_keep_exact_cadence() {
        // 100 streams at 20 ms, staggered by 37 µs, driven at 100 µs steps
        // for 1 s: each fires 50 times, always within one tick of its due.
        let tick = 100_000;
        let mut w = TimerWheel::new(tick, 1024);
        let mut due: Vec<u64> = (0..100).map(|i| i * 37_000).collect();
        for (i, d) in due.iter().enumerate() {
            w.insert(*d, i);
        }
        let mut count = [0u32; 100];
        let mut out = Vec::new();
        let mut now = 0;
        while now < 1_000_000_000 {
            out.clear();
            w.advance(now, &mut out);
            for &i in &out {
                assert!(now >= due[i], "stream {i} early");
                assert!(now - due[i] < tick, "stream {i} late by {}", now - due[i]);
                count[i] += 1;
                due[i] += 20_000_000;
                w.insert(due[i], i);
            }
            now += tick;
        }
        assert!(count.iter().all(|&c| c == 50), "{count:?}");
    }

    #[test]
    fn next_wakeup_points_at_first_busy_slot() {
        let mut w: TimerWheel<u8> = TimerWheel::new(100, 16);
        assert_eq!(w.next_wakeup_ns(), None);
        w.insert(730, 0);
        assert_eq!(w.next_wakeup_ns(), Some(800));
        let mut out = Vec::new();
        w.advance(800, &mut out);
        assert_eq!(out, vec![0]);
        assert_eq!(w.next_wakeup_ns(), None);
    }
}
