//! 16-bit PCM mono WAV files that stay valid while they grow: the header's
//! sizes are rewritten after every flush, so a crash leaves a file that
//! plays up to the last flush.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::recording::sealed::SealedWriter;

/// Bytes before the samples.
pub const HEADER_LEN: u64 = 44;

/// A WAV being written.
pub struct WavFile {
    file: File,
    data_bytes: u64,
    /// Test seam: data writes beyond this many bytes fail as on a full disk.
    #[cfg(test)]
    fail_after: Option<u64>,
}

/// The 44-byte header of a WAV holding `data_bytes` of 16-bit mono PCM
/// (also written by `recordings decrypt` in front of restored PCM).
pub fn header(sample_rate: u32, data_bytes: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    let byte_rate = sample_rate * 2;
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36u32.saturating_add(data_bytes)).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes()); // block align
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits per sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

impl WavFile {
    /// Create `path` with an empty, valid WAV.
    pub fn create(path: &Path, sample_rate: u32) -> io::Result<WavFile> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(&header(sample_rate, 0))?;
        Ok(WavFile {
            file,
            data_bytes: 0,
            #[cfg(test)]
            fail_after: None,
        })
    }

    /// Make data writes fail with ENOSPC once the data would pass `bytes`.
    #[cfg(test)]
    pub(crate) fn fail_after(&mut self, bytes: u64) {
        self.fail_after = Some(bytes);
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(test)]
        if let Some(limit) = self.fail_after {
            let room = (HEADER_LEN + limit).saturating_sub(offset) as usize;
            if buf.len() > room {
                // Like a real full disk: what fits is written, then ENOSPC.
                self.file.write_all_at(&buf[..room], offset)?;
                return Err(io::Error::from_raw_os_error(28));
            }
        }
        self.file.write_all_at(buf, offset)
    }

    /// Append samples and make the header cover them. On an error the file
    /// is cut back to what the header covers, so it stays a valid WAV of
    /// the audio written before.
    pub fn append(&mut self, samples: &[i16], sample_rate: u32) -> io::Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(samples.len() * 2);
        for s in samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        let old = self.data_bytes;
        let new = old + bytes.len() as u64;
        let res = self.write_at(&bytes, HEADER_LEN + old).and_then(|()| {
            let size = u32::try_from(new).unwrap_or(u32::MAX);
            self.write_at(&header(sample_rate, size), 0)
        });
        match res {
            Ok(()) => {
                self.data_bytes = new;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(HEADER_LEN + old);
                Err(e)
            }
        }
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.data_bytes / 2
    }

    /// Push everything to the device (at close).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// A track's audio file: a plain WAV, or (with `[encryption]`) a sealed
/// stream of its PCM, one chunk per write, that `recordings decrypt` turns
/// back into a WAV.
pub enum AudioOut {
    Wav(WavFile),
    Sealed(SealedWriter),
}

impl AudioOut {
    /// Append samples; as [`WavFile::append`], a failed write leaves the
    /// file as it was before it.
    pub fn append(&mut self, samples: &[i16], sample_rate: u32) -> io::Result<()> {
        match self {
            AudioOut::Wav(w) => w.append(samples, sample_rate),
            AudioOut::Sealed(s) => {
                let mut bytes = Vec::with_capacity(samples.len() * 2);
                for v in samples {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                s.chunk(&bytes)
            }
        }
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        match self {
            AudioOut::Wav(w) => w.samples(),
            AudioOut::Sealed(s) => s.plaintext_len() / 2,
        }
    }

    /// The track is over: seal the final chunk, then push everything to the
    /// device.
    pub fn finish(&mut self) -> io::Result<()> {
        match self {
            AudioOut::Wav(w) => w.sync(),
            AudioOut::Sealed(s) => s.finish(&[]).and_then(|()| s.sync()),
        }
    }

    /// Test seam: see [`WavFile::fail_after`] (plain WAVs only).
    #[cfg(test)]
    pub(crate) fn fail_after(&mut self, bytes: u64) {
        if let AudioOut::Wav(w) = self {
            w.fail_after(bytes);
        }
    }
}

/// Make the header of an existing WAV match its length (after a crash
/// between a data write and its header update). Returns its samples.
pub fn repair(path: &Path) -> io::Result<u64> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut h = [0u8; HEADER_LEN as usize];
    if len < HEADER_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "shorter than a WAV header",
        ));
    }
    file.read_exact_at(&mut h, 0)?;
    if &h[0..4] != b"RIFF" || &h[8..12] != b"WAVE" {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a WAV file"));
    }
    let rate = u32::from_le_bytes([h[24], h[25], h[26], h[27]]);
    // Drop a torn trailing half-sample.
    let data = (len - HEADER_LEN) & !1;
    file.set_len(HEADER_LEN + data)?;
    file.write_all_at(&header(rate, u32::try_from(data).unwrap_or(u32::MAX)), 0)?;
    Ok(data / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tracks_appends_and_repair_fixes_torn_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        let mut w = WavFile::create(&p, 8000).unwrap();
        w.append(&[1, -1, 2], 8000).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(b.len(), 44 + 6);
        assert_eq!(u32::from_le_bytes([b[40], b[41], b[42], b[43]]), 6);
        assert_eq!(u32::from_le_bytes([b[4], b[5], b[6], b[7]]), 42);
        drop(w);
        // Simulate a crash after a data write but before the header update.
        let f = OpenOptions::new().append(true).open(&p).unwrap();
        (&f).write_all(&[9, 9, 9]).unwrap();
        assert_eq!(repair(&p).unwrap(), 4);
        let b = std::fs::read(&p).unwrap();
        assert_eq!(b.len(), 44 + 8);
        assert_eq!(u32::from_le_bytes([b[40], b[41], b[42], b[43]]), 8);
    }

    #[test]
    fn failed_append_leaves_a_valid_file_of_the_earlier_audio() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        let mut w = WavFile::create(&p, 8000).unwrap();
        w.append(&[7; 100], 8000).unwrap();
        w.fail_after(300);
        let e = w.append(&[8; 100], 8000).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(w.samples(), 100);
        let b = std::fs::read(&p).unwrap();
        assert_eq!(b.len(), 44 + 200);
        assert_eq!(u32::from_le_bytes([b[40], b[41], b[42], b[43]]), 200);
    }

    #[test]
    fn create_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        WavFile::create(&p, 8000).unwrap();
        assert!(WavFile::create(&p, 8000).is_err());
    }
}
