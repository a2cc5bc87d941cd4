//! A verifiable audio pattern.
//!
//! Every packet of a generated stream carries one byte value repeated over
//! its whole payload, and that value encodes the packet's index modulo
//! [`PATTERN_PERIOD`]. Reading a recording back, a test can then say, for
//! every 20 ms block, *which* packet's audio sits there, or that the block is
//! silence inserted for a gap — so drops, duplicates, reordering and clock
//! jumps can be checked sample-exactly instead of by ear.
//!
//! The pattern bytes avoid the G.711 encodings of zero (µ-law 0xFF and 0x7F,
//! A-law 0xD5 and 0x55), because those are exactly what a recorder writes
//! for missing audio: a pattern block can never be confused with a gap.
//! All pattern bytes also decode to distinct linear values under either law,
//! so the index survives a recorder that writes 16-bit PCM WAV files.

/// µ-law encoding of silence (+0); what a recorder fills gaps with.
pub const ULAW_SILENCE: u8 = 0xFF;
/// µ-law encoding of -0, the other silent code.
pub const ULAW_NEG_SILENCE: u8 = 0x7F;
/// A-law encoding of the smallest positive value (0x55 ^ 0x80), A-law's
/// customary silence.
pub const ALAW_SILENCE: u8 = 0xD5;
/// A-law encoding of the smallest negative value, the other near-silent code.
pub const ALAW_NEG_SILENCE: u8 = 0x55;

/// The pattern repeats every this many packets (4 s of 20 ms packets), so an
/// index read back is the packet index modulo this.
pub const PATTERN_PERIOD: u32 = 200;
/// The byte of packet 0; later packets count upwards, skipping the silent
/// codes.
pub const PATTERN_BASE: u8 = 0x10;

/// Byte values the pattern never uses, ascending.
const SKIPPED: [u8; 3] = [ALAW_NEG_SILENCE, ULAW_NEG_SILENCE, ALAW_SILENCE];

/// The byte that marks packet `index`: `0x10 + index % 200`, stepped over
/// 0x55, 0x7F and 0xD5 (0xFF is beyond the range), so it spans 0x10..=0xDA.
pub fn pattern_byte(index: u32) -> u8 {
    let mut b = u32::from(PATTERN_BASE) + index % PATTERN_PERIOD;
    for s in SKIPPED {
        if b >= u32::from(s) {
            b += 1;
        }
    }
    b as u8
}

/// The payload of packet `seq_index`: [`pattern_byte`] repeated `len` times
/// (`len` = samples per packet for G.711, e.g. 160 for 20 ms at 8 kHz).
pub fn pattern(seq_index: u32, len: usize) -> Vec<u8> {
    vec![pattern_byte(seq_index); len]
}

/// The packet index (modulo [`PATTERN_PERIOD`]) that `byte` marks, or `None`
/// if the pattern never produces it (silence included).
pub fn pattern_index(byte: u8) -> Option<u32> {
    if SKIPPED.contains(&byte) {
        return None;
    }
    let below = SKIPPED.iter().filter(|&&s| s < byte).count() as u32;
    let k = u32::from(byte)
        .checked_sub(u32::from(PATTERN_BASE))?
        .checked_sub(below)?;
    (k < PATTERN_PERIOD).then_some(k)
}

/// The two G.711 companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU, payload type 0; WAV format tag 7).
    Ulaw,
    /// A-law (PCMA, payload type 8; WAV format tag 6).
    Alaw,
}

impl Law {
    /// The law of a static RTP payload type (0 or 8).
    pub fn from_payload_type(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Self::Ulaw),
            8 => Some(Self::Alaw),
            _ => None,
        }
    }

    /// The code this law uses for silence.
    pub fn silence(self) -> u8 {
        match self {
            Self::Ulaw => ULAW_SILENCE,
            Self::Alaw => ALAW_SILENCE,
        }
    }

    /// Decode one code to a 16-bit linear sample (ITU-T G.711 tables, the
    /// same values every common decoder produces).
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Self::Ulaw => {
                let u = !code;
                let exponent = (u >> 4) & 0x07;
                let mantissa = i32::from(u & 0x0F);
                let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
                (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
            }
            Self::Alaw => {
                let a = code ^ 0x55;
                let exponent = (a >> 4) & 0x07;
                let mantissa = i32::from(a & 0x0F);
                let magnitude = if exponent == 0 {
                    (mantissa << 4) + 8
                } else {
                    ((mantissa << 4) + 0x108) << (exponent - 1)
                };
                (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
            }
        }
    }
}

/// The packet index (modulo [`PATTERN_PERIOD`]) whose pattern byte decodes,
/// under `law`, to `sample`; `None` for silence or any other value. For
/// recordings mediafork stores as 16-bit linear PCM.
pub fn pattern_index_linear(law: Law, sample: i16) -> Option<u32> {
    (0..PATTERN_PERIOD).find(|&i| law.decode(pattern_byte(i)) == sample)
}

/// What one block of a recording (one packet's worth of samples) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Block {
    /// Every sample is the pattern of packet `index` (mod [`PATTERN_PERIOD`]).
    Packet(u32),
    /// Every sample is silence (either silent code of the law).
    Silence,
    /// Anything else: a mix of packets, a partial block, or foreign audio.
    Mixed,
}

fn classify<T: Copy>(
    samples: &[T],
    is_silence: impl Fn(T) -> bool,
    index: impl Fn(T) -> Option<u32>,
) -> Block {
    let Some(&first) = samples.first() else {
        return Block::Mixed;
    };
    if samples.iter().all(|&s| is_silence(s)) {
        return Block::Silence;
    }
    match index(first) {
        Some(i) if samples.iter().all(|&s| index(s) == Some(i)) => Block::Packet(i),
        _ => Block::Mixed,
    }
}

/// Classify G.711 bytes in blocks of `block_len` samples (a trailing partial
/// block is classified too, and comes back as what it contains).
pub fn classify_g711(codes: &[u8], block_len: usize, law: Law) -> Vec<Block> {
    assert!(block_len > 0, "block_len must be positive");
    let silent = |c: u8| match law {
        Law::Ulaw => c == ULAW_SILENCE || c == ULAW_NEG_SILENCE,
        Law::Alaw => c == ALAW_SILENCE || c == ALAW_NEG_SILENCE,
    };
    codes
        .chunks(block_len)
        .map(|b| classify(b, silent, pattern_index))
        .collect()
}

/// Classify 16-bit linear samples (decoded from `law`) in blocks of
/// `block_len`. Silence is any sample a silent code decodes to (0 for µ-law,
/// ±8 for A-law), or exact 0.
pub fn classify_linear(samples: &[i16], block_len: usize, law: Law) -> Vec<Block> {
    assert!(block_len > 0, "block_len must be positive");
    let table: Vec<i16> = (0..PATTERN_PERIOD)
        .map(|i| law.decode(pattern_byte(i)))
        .collect();
    let silent =
        |s: i16| s == 0 || s == law.decode(law.silence()) || s == law.decode(law.silence() ^ 0x80);
    let index = |s: i16| table.iter().position(|&t| t == s).map(|p| p as u32);
    samples
        .chunks(block_len)
        .map(|b| classify(b, silent, index))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn pattern_never_hits_silence_and_is_invertible() {
        let mut seen = HashSet::new();
        for i in 0..PATTERN_PERIOD {
            let b = pattern_byte(i);
            assert!(
                ![0xFF, 0x7F, 0xD5, 0x55].contains(&b),
                "index {i} gives silent byte {b:#x}"
            );
            assert!(seen.insert(b), "byte {b:#x} used twice");
            assert_eq!(pattern_index(b), Some(i));
            assert_eq!(pattern_byte(i + PATTERN_PERIOD), b);
        }
        assert_eq!(pattern_byte(0), 0x10);
        assert_eq!(pattern_byte(199), 0xDA);
        for b in [0x00, 0x0F, 0x55, 0x7F, 0xD5, 0xDB, 0xFF] {
            assert_eq!(pattern_index(b), None, "{b:#x}");
        }
        assert_eq!(pattern(3, 160), vec![0x13; 160]);
    }

    #[test]
    fn g711_decoding_matches_reference_points() {
        assert_eq!(Law::Ulaw.decode(0xFF), 0);
        assert_eq!(Law::Ulaw.decode(0x7F), 0);
        assert_eq!(Law::Ulaw.decode(0x80), 32124);
        assert_eq!(Law::Ulaw.decode(0x00), -32124);
        assert_eq!(Law::Alaw.decode(0xD5), 8);
        assert_eq!(Law::Alaw.decode(0x55), -8);
        assert_eq!(Law::Alaw.decode(0xAA), 32256);
        assert_eq!(Law::Alaw.decode(0x2A), -32256);
    }

    #[test]
    fn pattern_survives_linear_decoding() {
        for law in [Law::Ulaw, Law::Alaw] {
            let values: HashSet<i16> = (0..PATTERN_PERIOD)
                .map(|i| law.decode(pattern_byte(i)))
                .collect();
            assert_eq!(values.len(), PATTERN_PERIOD as usize, "{law:?}");
            assert_eq!(
                pattern_index_linear(law, law.decode(pattern_byte(42))),
                Some(42)
            );
            assert_eq!(pattern_index_linear(law, law.decode(law.silence())), None);
        }
    }

    #[test]
    fn blocks_are_classified() {
        let mut codes = pattern(5, 160);
        codes.extend(vec![ULAW_SILENCE; 160]);
        codes.extend(pattern(7, 80));
        codes.extend(pattern(8, 80));
        assert_eq!(
            classify_g711(&codes, 160, Law::Ulaw),
            vec![Block::Packet(5), Block::Silence, Block::Mixed]
        );
        let linear: Vec<i16> = codes.iter().map(|&c| Law::Ulaw.decode(c)).collect();
        assert_eq!(
            classify_linear(&linear, 160, Law::Ulaw),
            vec![Block::Packet(5), Block::Silence, Block::Mixed]
        );
    }
}
