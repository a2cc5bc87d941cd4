//! RFC 3550 §6.4.1 / A.8 interarrival jitter, in nanoseconds rather than
//! timestamp units so the same estimator serves any clock rate.

/// Running jitter estimate of one stream.
/// 8 bytes: it lives in the worker's one-cache-line track state. Transit
/// times are kept modulo 2^32 ns: only differences between consecutive
/// packets matter, and those are far below the 2.1 s that wrap-around
/// arithmetic on 32 bits can tell apart. Their lowest bit says whether
/// there is a previous packet at all: a 2 ns resolution is plenty.
#[derive(Clone, Copy, Debug, Default)]
pub struct Jitter {
    /// Relative transit time of the previous packet, ns, modulo 2^32,
    /// with the lowest bit set; 0 before the first packet.
    prev_transit: u32,
    /// Current estimate J, ns.
    jitter: f32,
}

impl Jitter {
    /// Account for a packet that arrived at `arrival_ns` carrying RTP
    /// timestamp `rtp_ts_ns` (its timestamp already converted to ns on an
    /// unwrapped axis; only differences matter).
    #[inline]
    pub fn observe(&mut self, arrival_ns: i64, rtp_ts_ns: i64) {
        let transit = arrival_ns.wrapping_sub(rtp_ts_ns) as u32 | 1;
        if self.prev_transit != 0 {
            let d = (transit.wrapping_sub(self.prev_transit) as i32).unsigned_abs() as f32;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.prev_transit = transit;
    }

    /// Forget the previous transit time (new SSRC or restarted clock), keep J.
    pub fn resync(&mut self) {
        self.prev_transit = 0;
    }

    /// Current estimate in milliseconds.
    pub fn millis(&self) -> f64 {
        self.jitter as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_pacing_has_no_jitter() {
        let mut j = Jitter::default();
        for i in 0..100i64 {
            j.observe(1_000_000_000 + i * 20_000_000, i * 20_000_000);
        }
        assert_eq!(j.millis(), 0.0);
    }

    #[test]
    fn converges_to_constant_alternating_deviation() {
        // Arrivals alternate ±1 ms around the ideal: |D| is always 2 ms, so J → 2 ms.
        let mut j = Jitter::default();
        for i in 0..2000i64 {
            let dev = if i % 2 == 0 { 1_000_000 } else { -1_000_000 };
            j.observe(i * 20_000_000 + dev, i * 20_000_000);
        }
        assert!((j.millis() - 2.0).abs() < 1e-4, "{}", j.millis());
    }

    #[test]
    fn single_step_follows_rfc_formula() {
        let mut j = Jitter::default();
        j.observe(0, 0);
        j.observe(20_000_000 + 16_000_000, 20_000_000); // D = 16 ms
        assert!((j.millis() - 1.0).abs() < 1e-6);
    }
}
