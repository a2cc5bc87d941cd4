//! Read the WAV files mediafork writes, to check their audio against the
//! pattern the streams carried ([`crate::payload`]).
//!
//! Accepts what a recorder plausibly writes: 16-bit PCM (format 1), A-law
//! (6), µ-law (7) and WAVE_FORMAT_EXTENSIBLE wrapping any of them, with
//! unknown chunks (LIST, fact, ...) skipped. It is deliberately strict about
//! sizes: a data chunk that claims more bytes than the file holds (a writer
//! that did not patch its header on close) is an error, not silently
//! accepted.

use std::path::Path;

use crate::payload::{classify_g711, classify_linear, Block, Law};

/// WAV format tag of linear PCM.
pub const FORMAT_PCM: u16 = 1;
/// WAV format tag of A-law.
pub const FORMAT_ALAW: u16 = 6;
/// WAV format tag of µ-law.
pub const FORMAT_ULAW: u16 = 7;
/// WAV format tag of WAVE_FORMAT_EXTENSIBLE.
pub const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Why a WAV file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file could not be read.
    #[error("reading the WAV file: {0}")]
    Io(#[from] std::io::Error),
    /// Not a RIFF/WAVE file.
    #[error("not a RIFF/WAVE file")]
    NotWave,
    /// A chunk header or body runs past the end of the file.
    #[error("chunk {0:?} runs past the end of the file")]
    Truncated(String),
    /// A required chunk is missing.
    #[error("missing {0} chunk")]
    Missing(&'static str),
    /// The format chunk is malformed.
    #[error("malformed fmt chunk")]
    BadFormat,
    /// The operation needs a different sample format.
    #[error("unsupported sample format (tag {tag}, {bits} bits)")]
    Unsupported {
        /// Format tag (after resolving WAVE_FORMAT_EXTENSIBLE).
        tag: u16,
        /// Bits per sample.
        bits: u16,
    },
}

/// A decoded WAV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    /// Format tag; for WAVE_FORMAT_EXTENSIBLE, the sub-format's tag.
    pub format_tag: u16,
    /// Channel count.
    pub channels: u16,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Bits per sample.
    pub bits_per_sample: u16,
    /// The raw bytes of the data chunk.
    pub data: Vec<u8>,
}

fn u16_at(b: &[u8], pos: usize) -> u16 {
    u16::from_le_bytes([b[pos], b[pos + 1]])
}

fn u32_at(b: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]])
}

/// Read and parse the WAV file at `path`.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Wav, WavError> {
    parse_wav(&std::fs::read(path)?)
}

/// Parse WAV bytes.
pub fn parse_wav(bytes: &[u8]) -> Result<Wav, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWave);
    }
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    let mut data: Option<Vec<u8>> = None;
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = String::from_utf8_lossy(&bytes[pos..pos + 4]).into_owned();
        let size = u32_at(bytes, pos + 4) as usize;
        let body = bytes
            .get(pos + 8..pos + 8 + size)
            .ok_or_else(|| WavError::Truncated(id.clone()))?;
        match id.as_str() {
            "fmt " => {
                if body.len() < 16 {
                    return Err(WavError::BadFormat);
                }
                let mut tag = u16_at(body, 0);
                if tag == FORMAT_EXTENSIBLE {
                    // cbSize(2) validBits(2) channelMask(4) then the GUID,
                    // whose first two bytes are the real format tag.
                    if body.len() < 26 {
                        return Err(WavError::BadFormat);
                    }
                    tag = u16_at(body, 24);
                }
                fmt = Some((tag, u16_at(body, 2), u32_at(body, 4), u16_at(body, 14)));
            }
            "data" => data = Some(body.to_vec()),
            _ => {}
        }
        // Chunks are padded to even sizes.
        pos += 8 + size + (size & 1);
    }
    let (format_tag, channels, sample_rate, bits_per_sample) =
        fmt.ok_or(WavError::Missing("fmt "))?;
    Ok(Wav {
        format_tag,
        channels,
        sample_rate,
        bits_per_sample,
        data: data.ok_or(WavError::Missing("data"))?,
    })
}

impl Wav {
    /// Number of sample frames (samples per channel).
    pub fn frames(&self) -> usize {
        let bytes_per_frame =
            usize::from(self.channels) * usize::from(self.bits_per_sample).div_ceil(8);
        self.data.len().checked_div(bytes_per_frame).unwrap_or(0)
    }

    /// The samples as 16-bit linear values: PCM as is, G.711 decoded.
    pub fn samples_i16(&self) -> Result<Vec<i16>, WavError> {
        match (self.format_tag, self.bits_per_sample) {
            (FORMAT_PCM, 16) => Ok(self
                .data
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect()),
            (FORMAT_ALAW, 8) => Ok(self.data.iter().map(|&c| Law::Alaw.decode(c)).collect()),
            (FORMAT_ULAW, 8) => Ok(self.data.iter().map(|&c| Law::Ulaw.decode(c)).collect()),
            (tag, bits) => Err(WavError::Unsupported { tag, bits }),
        }
    }

    /// Classify the (mono) audio in blocks of `block_len` samples against
    /// the packet pattern. G.711 files are classified on their codes; a PCM
    /// file is assumed to hold audio decoded from `law`.
    pub fn pattern_blocks(&self, block_len: usize, law: Law) -> Result<Vec<Block>, WavError> {
        match (self.format_tag, self.bits_per_sample) {
            (FORMAT_ULAW, 8) => Ok(classify_g711(&self.data, block_len, Law::Ulaw)),
            (FORMAT_ALAW, 8) => Ok(classify_g711(&self.data, block_len, Law::Alaw)),
            (FORMAT_PCM, 16) => Ok(classify_linear(&self.samples_i16()?, block_len, law)),
            (tag, bits) => Err(WavError::Unsupported { tag, bits }),
        }
    }
}

/// A minimal mono WAV file (for tests of the reader and of tools that read
/// recordings): `format_tag` 1 needs 16-bit little-endian samples in `data`,
/// 6/7 one code per byte.
pub fn write_wav_bytes(format_tag: u16, sample_rate: u32, data: &[u8]) -> Vec<u8> {
    let bits: u16 = if format_tag == FORMAT_PCM { 16 } else { 8 };
    let block_align = bits / 8;
    let mut w = Vec::with_capacity(44 + data.len() + 1);
    w.extend_from_slice(b"RIFF");
    let riff_size = 4 + (8 + 16) + (8 + data.len() + (data.len() & 1));
    w.extend_from_slice(&(riff_size as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&format_tag.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&sample_rate.to_le_bytes());
    w.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    w.extend_from_slice(&block_align.to_le_bytes());
    w.extend_from_slice(&bits.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(data);
    if data.len() & 1 == 1 {
        w.push(0);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{pattern, ULAW_SILENCE};

    #[test]
    fn ulaw_wav_round_trip_and_blocks() {
        let mut audio = pattern(0, 160);
        audio.extend(vec![ULAW_SILENCE; 160]);
        audio.extend(pattern(2, 160));
        let w = parse_wav(&write_wav_bytes(FORMAT_ULAW, 8000, &audio)).unwrap();
        assert_eq!(
            (w.format_tag, w.channels, w.sample_rate, w.bits_per_sample),
            (7, 1, 8000, 8)
        );
        assert_eq!(w.frames(), 480);
        assert_eq!(
            w.pattern_blocks(160, Law::Ulaw).unwrap(),
            vec![Block::Packet(0), Block::Silence, Block::Packet(2)]
        );
    }

    #[test]
    fn pcm_wav_with_extra_chunk() {
        let samples: Vec<u8> = pattern(9, 160)
            .iter()
            .flat_map(|&c| Law::Alaw.decode(c).to_le_bytes())
            .collect();
        let mut bytes = write_wav_bytes(FORMAT_PCM, 8000, &samples);
        // Insert an odd-sized LIST chunk (padded) before "data".
        let list = b"LIST\x03\x00\x00\x00abc\x00";
        bytes.splice(36..36, list.iter().copied());
        let w = parse_wav(&bytes).unwrap();
        assert_eq!(
            w.pattern_blocks(160, Law::Alaw).unwrap(),
            vec![Block::Packet(9)]
        );
    }

    #[test]
    fn unpatched_header_is_an_error() {
        let mut bytes = write_wav_bytes(FORMAT_ULAW, 8000, &[1, 2, 3, 4]);
        let n = bytes.len();
        bytes[40..44].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(parse_wav(&bytes), Err(WavError::Truncated(_))));
        assert!(matches!(parse_wav(&bytes[..8]), Err(WavError::NotWave)));
        assert_eq!(n, 48);
    }
}
