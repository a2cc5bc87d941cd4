//! Deterministic pseudo-randomness and hashing.
//!
//! Tests must reproduce exactly, so the kit never reads the clock or the OS
//! entropy pool. Where a value should merely *look* random (a SIP tag, a
//! metadata identifier, a jitter pattern) it comes from [`SplitMix64`] seeded
//! explicitly, or from [`hash64`] of the caller's own inputs.

/// The SplitMix64 generator (Steele, Lea and Flood, 2014): one `u64` of state,
/// passes BigCrush, and is trivial to re-implement if a test in another
/// language must reproduce a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// A value in `0..bound` (`bound` must be non-zero). Uses the
    /// multiply-shift reduction: its bias is below 2^-32 for the bounds tests
    /// use, and it is stable across platforms.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "SplitMix64::below needs a non-zero bound");
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A value in `lo..=hi` (inclusive on both ends; `lo <= hi`).
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi, "SplitMix64::range_i64 needs lo <= hi");
        let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
        if span > u128::from(u64::MAX) {
            return self.next_u64() as i64;
        }
        (i128::from(lo) + i128::from(self.below(span as u64))) as i64
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// The SplitMix64 output function: a bijective 64-bit mixer, so distinct
/// inputs give distinct outputs.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of `data` (FNV-1a followed by [`mix64`] to spread the
/// low bits). Used to derive identifiers from a Call-ID so that the same call
/// always gets the same tags, branches and metadata ids.
pub fn hash64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix64(h)
}

/// [`hash64`] of several parts, separated so that `("ab","c")` and
/// `("a","bc")` differ.
pub fn hash_parts(parts: &[&str]) -> u64 {
    let mut buf = Vec::new();
    for p in parts {
        buf.extend_from_slice(p.as_bytes());
        buf.push(0x1F);
    }
    hash64(&buf)
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0F)] as char);
    }
    s
}

/// Standard base64 with padding (RFC 4648 §4), the encoding SIPREC metadata
/// uses for its 128-bit identifiers.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3F) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// 16 bytes derived from `parts`, for identifiers that must be unique per
/// call and per role but reproducible.
pub(crate) fn id128(parts: &[&str]) -> [u8; 16] {
    let a = hash_parts(parts);
    let b = mix64(a ^ 0xA5A5_5A5A_C3C3_3C3C);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // Reference outputs for seed 1234567 from the public-domain C version
        // (Vigna's splitmix64.c).
        let mut g = SplitMix64::new(1234567);
        assert_eq!(g.next_u64(), 6457827717110365317);
        assert_eq!(g.next_u64(), 3203168211198807973);
        assert_eq!(g.next_u64(), 9817491932198370423);
    }

    #[test]
    fn ranges_stay_in_bounds_and_repeat() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            let x = a.range_i64(-5, 5);
            assert!((-5..=5).contains(&x));
            assert_eq!(x, b.range_i64(-5, 5));
        }
        assert_eq!(SplitMix64::new(1).range_i64(3, 3), 3);
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(hex(&[0x00, 0xAB, 0x7F]), "00ab7f");
    }

    #[test]
    fn hash_parts_separates_boundaries() {
        assert_ne!(hash_parts(&["ab", "c"]), hash_parts(&["a", "bc"]));
        assert_eq!(hash_parts(&["x"]), hash_parts(&["x"]));
    }
}
