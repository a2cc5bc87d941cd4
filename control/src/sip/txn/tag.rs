//! To tags for the responses we send (RFC 3261 §19.3).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Generates tags: 16 hex digits (64 bits) each.
///
/// §19.3 wants tags globally unique and cryptographically random with at
/// least 32 bits of randomness. [`TagGenerator::new`] hashes a counter with
/// the standard library's keyed hasher (SipHash, keyed from the OS random
/// source once per generator), so tags never repeat within a generator and
/// cannot be predicted from earlier ones without the key.
/// [`TagGenerator::with_seed`] is deterministic, for tests and replays.
#[derive(Debug, Clone)]
pub struct TagGenerator {
    source: Source,
    counter: u64,
}

#[derive(Debug, Clone)]
enum Source {
    Keyed(RandomState),
    Seeded(u64),
}

impl TagGenerator {
    /// A generator keyed from the OS random source.
    pub fn new() -> TagGenerator {
        TagGenerator {
            source: Source::Keyed(RandomState::new()),
            counter: 0,
        }
    }

    /// A deterministic generator: the same seed gives the same tags.
    pub fn with_seed(seed: u64) -> TagGenerator {
        TagGenerator {
            source: Source::Seeded(seed),
            counter: 0,
        }
    }

    /// The next tag.
    pub fn next_tag(&mut self) -> String {
        self.counter = self.counter.wrapping_add(1);
        let bits = match &self.source {
            Source::Keyed(key) => key.hash_one(self.counter),
            Source::Seeded(seed) => {
                splitmix64(seed.wrapping_add(self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            }
        };
        format!("{bits:016x}")
    }
}

impl Default for TagGenerator {
    fn default() -> Self {
        Self::new()
    }
}

/// The SplitMix64 finaliser: a bijection, so distinct counters give
/// distinct seeded tags.
fn splitmix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tags_are_unique_and_seeds_reproducible() {
        let mut random = TagGenerator::new();
        let tags: HashSet<String> = (0..1000).map(|_| random.next_tag()).collect();
        assert_eq!(tags.len(), 1000);
        assert!(tags.iter().all(|t| t.len() == 16));
        let a: Vec<_> = {
            let mut g = TagGenerator::with_seed(7);
            (0..3).map(|_| g.next_tag()).collect()
        };
        let mut g = TagGenerator::with_seed(7);
        assert_eq!(a, (0..3).map(|_| g.next_tag()).collect::<Vec<_>>());
        assert_ne!(a[0], a[1]);
    }
}
