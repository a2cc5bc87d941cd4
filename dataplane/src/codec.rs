//! Codecs the recorder can write, and G.711 decoding.
//!
//! Recordings are 16-bit linear PCM WAV: every player reads it, a codec
//! change inside a call (PCMU → PCMA on transfer) stays in one file, and the
//! codecs still to come (G.722, G.729, Opus) decode to the same thing.
//! G.711 → 16-bit is exact, so nothing is lost by decoding.

use serde::{Deserialize, Serialize};

/// What a payload type carries, as far as the timeline is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// G.711 µ-law, one byte per sample.
    Pcmu,
    /// G.711 A-law, one byte per sample.
    Pcma,
    /// RFC 4733 events: same clock and sequence space as the audio, no
    /// samples of their own (the timeline shows silence under them).
    TelephoneEvent,
    /// RFC 3389 comfort noise: marks silence, no samples.
    ComfortNoise,
}

impl Codec {
    /// Codec for an SDP `rtpmap` encoding name (case-insensitive).
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else if name.eq_ignore_ascii_case("telephone-event") {
            Some(Codec::TelephoneEvent)
        } else if name.eq_ignore_ascii_case("CN") {
            Some(Codec::ComfortNoise)
        } else {
            None
        }
    }

    /// Codec of a static RTP/AVP payload type (RFC 3551), where we record it.
    pub fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            13 => Some(Codec::ComfortNoise),
            _ => None,
        }
    }

    /// Whether packets of this codec carry audio samples for the WAV.
    pub const fn is_audio(self) -> bool {
        matches!(self, Codec::Pcmu | Codec::Pcma)
    }

    /// Sampling clock of the codec's RTP timestamps.
    pub const fn clock_rate(self) -> u32 {
        8000
    }

    /// Samples encoded in a payload of `len` bytes.
    pub const fn samples_in(self, len: usize) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => len as u32,
            Codec::TelephoneEvent | Codec::ComfortNoise => 0,
        }
    }

    /// Name used in `meta.json`.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::TelephoneEvent => "telephone-event",
            Codec::ComfortNoise => "CN",
        }
    }

    /// Decode `payload` into 16-bit samples appended to `out`.
    pub fn decode_into(self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            Codec::Pcmu => out.extend(payload.iter().map(|&b| ULAW_TO_LINEAR[b as usize])),
            Codec::Pcma => out.extend(payload.iter().map(|&b| ALAW_TO_LINEAR[b as usize])),
            Codec::TelephoneEvent | Codec::ComfortNoise => {}
        }
    }
}

/// ITU-T G.711 µ-law expansion, computed at compile time.
pub static ULAW_TO_LINEAR: [i16; 256] = build_ulaw();
/// ITU-T G.711 A-law expansion, computed at compile time.
pub static ALAW_TO_LINEAR: [i16; 256] = build_alaw();

const fn build_ulaw() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let u = !(i as u8);
        let sign = u & 0x80;
        let exponent = ((u >> 4) & 0x07) as i32;
        let mantissa = (u & 0x0F) as i32;
        let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
        t[i] = if sign != 0 { -magnitude } else { magnitude } as i16;
        i += 1;
    }
    t
}

const fn build_alaw() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let a = (i as u8) ^ 0x55;
        let sign = a & 0x80;
        let exponent = ((a >> 4) & 0x07) as i32;
        let mantissa = (a & 0x0F) as i32;
        let magnitude = if exponent == 0 {
            (mantissa << 4) + 8
        } else {
            ((mantissa << 4) + 0x108) << (exponent - 1)
        };
        t[i] = if sign != 0 { magnitude } else { -magnitude } as i16;
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_reference_points() {
        // Values from ITU-T G.711 / the classic Sun g711.c reference.
        assert_eq!(ULAW_TO_LINEAR[0xFF], 0);
        assert_eq!(ULAW_TO_LINEAR[0x7F], 0);
        assert_eq!(ULAW_TO_LINEAR[0x00], -32124);
        assert_eq!(ULAW_TO_LINEAR[0x80], 32124);
        assert_eq!(ULAW_TO_LINEAR[0xFE], 8);
    }

    #[test]
    fn alaw_reference_points() {
        assert_eq!(ALAW_TO_LINEAR[0xD5], 8);
        assert_eq!(ALAW_TO_LINEAR[0x55], -8);
        assert_eq!(ALAW_TO_LINEAR[0xAA], 32256);
        assert_eq!(ALAW_TO_LINEAR[0x2A], -32256);
    }

    #[test]
    fn decoding_is_injective_apart_from_ulaw_zero() {
        // Both µ-law zeros (0x7F, 0xFF) decode to 0; every other code word is
        // distinct, so a test can map samples back to the bytes that made them.
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            if b != 0x7F {
                assert!(seen.insert(ULAW_TO_LINEAR[b as usize]), "µ-law {b:#x}");
            }
        }
        let alaw: std::collections::HashSet<_> = ALAW_TO_LINEAR.iter().collect();
        assert_eq!(alaw.len(), 256);
    }

    #[test]
    fn codec_names_round_trip() {
        for c in [
            Codec::Pcmu,
            Codec::Pcma,
            Codec::TelephoneEvent,
            Codec::ComfortNoise,
        ] {
            assert_eq!(Codec::from_encoding_name(c.name()), Some(c));
        }
        assert_eq!(Codec::from_encoding_name("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_encoding_name("G729"), None);
    }
}
