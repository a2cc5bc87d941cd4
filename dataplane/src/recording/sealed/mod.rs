//! Encryption at rest: recordings written as *sealed* files (AES-256-GCM
//! in chunks) under a fresh data key per recording, wrapped for the
//! tenant's public key. `docs/encryption.md` is the format's reference;
//! in short:
//!
//! ```text
//! "MFSEAL" | version u8 = 1 | header_len u32 | header (header_len bytes)
//! chunk*:  ciphertext_len u32 | flags u8 (bit 0: final) | ciphertext (plaintext + 16-byte tag)
//! ```
//!
//! All integers are big-endian. Each file has its own key, derived from the
//! recording's data key and the file's random id with HKDF-SHA256, so
//! nonces never repeat across the files of one recording. A chunk's nonce
//! is `nonce_prefix (7) || index u32 || final u8`, and its associated data
//! is `SHA-256(magic..header) || index u32 || final u8`: chunks cannot be
//! reordered, moved to another file or recording, or marked final, and a
//! stream cut at a chunk boundary reads as *incomplete* (no final chunk)
//! rather than as a shorter whole.
//!
//! Writers append one chunk per flush, and a chunk is only ever appended
//! whole (a failed write is cut back), so after a crash or `kill -9` every
//! flushed chunk decrypts; only the final chunk is missing.

pub mod keys;
pub mod restore;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use keys::{Algorithm, KeyError, PrivateKey, PublicKey};

/// First bytes of every sealed file.
pub const MAGIC: &[u8; 6] = b"MFSEAL";
/// Format version written and read.
pub const VERSION: u8 = 1;
/// Suffix of a sealed file: `track-0.wav.sealed` restores `track-0.wav`.
pub const SUFFIX: &str = ".sealed";
/// Most plaintext bytes in one chunk; a reader refuses larger lengths
/// instead of allocating what a damaged length field says.
pub const MAX_CHUNK: usize = 16 << 20;
/// Most bytes of a header.
const MAX_HEADER: u32 = 64 << 10;
const TAG_LEN: usize = 16;
const FLAG_FINAL: u8 = 1;
const FILE_KEY_INFO: &[u8] = b"mediafork sealed v1 file key";

/// What the plaintext of a sealed file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// The file's bytes as they are (pcap, XML, JSON).
    Bytes,
    /// 16-bit little-endian mono PCM: `decrypt` writes a WAV header in
    /// front, with the sizes of what was recovered (a sealed stream is
    /// append-only, so the growing WAV header cannot be kept in it).
    Pcm16Mono { sample_rate: u32 },
}

/// The `[encryption]` settings: whom recordings are sealed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub public_key: PublicKey,
    /// Written in headers and `meta.json` so an operator knows which
    /// private key opens a recording.
    pub key_id: String,
    pub tenant: String,
}

/// One recording's data key, and its wrapped form written in every header.
pub struct RecordingKey {
    data_key: Zeroizing<[u8; 32]>,
    wrapped: Vec<u8>,
    algorithm: Algorithm,
    key_id: String,
    fingerprint: String,
    tenant: String,
    recording_id: String,
}

impl RecordingKey {
    /// A fresh random data key for recording `recording_id`, wrapped for
    /// `to`.
    pub fn new(to: &Recipient, recording_id: &str) -> Result<RecordingKey, KeyError> {
        let mut data_key = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(&mut data_key[..])
            .map_err(|e| KeyError(format!("no randomness for a data key: {e}")))?;
        let wrapped = to.public_key.wrap(&data_key)?;
        Ok(RecordingKey {
            data_key,
            wrapped,
            algorithm: to.public_key.algorithm(),
            key_id: to.key_id.clone(),
            fingerprint: to.public_key.fingerprint().to_string(),
            tenant: to.tenant.clone(),
            recording_id: recording_id.to_string(),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    fn header(&self, name: &str, content: Content) -> io::Result<Header> {
        let mut file_id = [0u8; 16];
        let mut nonce_prefix = [0u8; 7];
        OsRng
            .try_fill_bytes(&mut file_id)
            .map_err(io::Error::other)?;
        OsRng
            .try_fill_bytes(&mut nonce_prefix)
            .map_err(io::Error::other)?;
        Ok(Header {
            algorithm: self.algorithm,
            content,
            file_id,
            nonce_prefix,
            key_id: self.key_id.clone(),
            fingerprint: self.fingerprint.clone(),
            tenant: self.tenant.clone(),
            recording_id: self.recording_id.clone(),
            name: name.to_string(),
            wrapped_key: self.wrapped.clone(),
        })
    }
}

/// A sealed file's header: everything but the chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub algorithm: Algorithm,
    pub content: Content,
    /// Random per file: salts the file key.
    pub file_id: [u8; 16],
    pub nonce_prefix: [u8; 7],
    pub key_id: String,
    /// Fingerprint of the public key the data key is wrapped for.
    pub fingerprint: String,
    pub tenant: String,
    pub recording_id: String,
    /// Name of the file this one restores (`track-0.wav`).
    pub name: String,
    pub wrapped_key: Vec<u8>,
}

fn put_str(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    let n = u8::try_from(s.len())
        .map_err(|_| io::Error::other(format!("header field longer than 255 bytes: {s:?}")))?;
    out.push(n);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Reads header fields, failing on anything short or malformed.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], OpenError> {
        if self.0.len() < n {
            return Err(OpenError::Header("truncated header".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, OpenError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], OpenError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn str(&mut self) -> Result<String, OpenError> {
        let n = self.u8()? as usize;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| OpenError::Header("header text is not UTF-8".into()))
    }
}

impl Header {
    /// The header as written: magic, version, length, fields.
    fn encode(&self) -> io::Result<Vec<u8>> {
        let mut body = Vec::with_capacity(512);
        body.push(self.algorithm.id());
        let (kind, rate) = match self.content {
            Content::Bytes => (0u8, 0u32),
            Content::Pcm16Mono { sample_rate } => (1, sample_rate),
        };
        body.push(kind);
        body.extend_from_slice(&rate.to_be_bytes());
        body.extend_from_slice(&self.file_id);
        body.extend_from_slice(&self.nonce_prefix);
        put_str(&mut body, &self.key_id)?;
        put_str(&mut body, &self.fingerprint)?;
        put_str(&mut body, &self.tenant)?;
        put_str(&mut body, &self.recording_id)?;
        put_str(&mut body, &self.name)?;
        let n = u16::try_from(self.wrapped_key.len())
            .map_err(|_| io::Error::other("wrapped key too long"))?;
        body.extend_from_slice(&n.to_be_bytes());
        body.extend_from_slice(&self.wrapped_key);
        let mut out = Vec::with_capacity(body.len() + 11);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn decode(body: &[u8]) -> Result<Header, OpenError> {
        let mut f = Fields(body);
        let alg = f.u8()?;
        let algorithm = Algorithm::from_id(alg)
            .ok_or_else(|| OpenError::Header(format!("unknown key-wrap algorithm {alg}")))?;
        let kind = f.u8()?;
        let rate = u32::from_be_bytes(f.array()?);
        let content = match kind {
            0 => Content::Bytes,
            1 => Content::Pcm16Mono { sample_rate: rate },
            k => return Err(OpenError::Header(format!("unknown content kind {k}"))),
        };
        let file_id = f.array()?;
        let nonce_prefix = f.array()?;
        let key_id = f.str()?;
        let fingerprint = f.str()?;
        let tenant = f.str()?;
        let recording_id = f.str()?;
        let name = f.str()?;
        let n = u16::from_be_bytes(f.array()?) as usize;
        let wrapped_key = f.take(n)?.to_vec();
        Ok(Header {
            algorithm,
            content,
            file_id,
            nonce_prefix,
            key_id,
            fingerprint,
            tenant,
            recording_id,
            name,
            wrapped_key,
        })
    }
}

/// The per-file cipher state shared by writer and reader.
struct ChunkCipher {
    cipher: Aes256Gcm,
    nonce_prefix: [u8; 7],
    digest: [u8; 32],
}

impl ChunkCipher {
    fn new(data_key: &[u8; 32], header: &Header, header_bytes: &[u8]) -> ChunkCipher {
        let mut file_key = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit: cannot fail.
        let _ = Hkdf::<Sha256>::new(Some(&header.file_id), data_key)
            .expand(FILE_KEY_INFO, &mut file_key[..]);
        ChunkCipher {
            cipher: Aes256Gcm::new((&*file_key).into()),
            nonce_prefix: header.nonce_prefix,
            digest: Sha256::digest(header_bytes).into(),
        }
    }

    fn nonce_aad(&self, index: u32, last: bool) -> ([u8; 12], [u8; 37]) {
        let mut nonce = [0u8; 12];
        nonce[..7].copy_from_slice(&self.nonce_prefix);
        nonce[7..11].copy_from_slice(&index.to_be_bytes());
        nonce[11] = last as u8;
        let mut aad = [0u8; 37];
        aad[..32].copy_from_slice(&self.digest);
        aad[32..36].copy_from_slice(&index.to_be_bytes());
        aad[36] = last as u8;
        (nonce, aad)
    }

    fn seal(&self, index: u32, last: bool, buf: &mut [u8]) -> io::Result<Tag> {
        let (nonce, aad) = self.nonce_aad(index, last);
        self.cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, buf)
            .map_err(|_| io::Error::other("AES-GCM encryption failed"))
    }

    fn open(&self, index: u32, last: bool, buf: &mut [u8], tag: &[u8]) -> bool {
        let (nonce, aad) = self.nonce_aad(index, last);
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, buf, Tag::from_slice(tag))
            .is_ok()
    }
}

/// A sealed file being written, one chunk at a time.
pub struct SealedWriter {
    file: File,
    /// Boxed: the AES key schedule is a kilobyte, and writers sit in enums
    /// next to plain files.
    cipher: Box<ChunkCipher>,
    /// Bytes on disk: header and whole chunks.
    len: u64,
    next: u32,
    finished: bool,
    /// Plaintext bytes sealed so far.
    plaintext: u64,
    buf: Vec<u8>,
}

impl SealedWriter {
    /// Creates `path` (which must not exist) with the header of a file that
    /// restores to `name`.
    pub fn create(
        path: &Path,
        key: &RecordingKey,
        name: &str,
        content: Content,
    ) -> io::Result<SealedWriter> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        SealedWriter::start(file, key, name, content)
    }

    fn start(
        mut file: File,
        key: &RecordingKey,
        name: &str,
        content: Content,
    ) -> io::Result<SealedWriter> {
        let header = key.header(name, content)?;
        let bytes = header.encode()?;
        file.write_all(&bytes)?;
        Ok(SealedWriter {
            cipher: Box::new(ChunkCipher::new(&key.data_key, &header, &bytes)),
            file,
            len: bytes.len() as u64,
            next: 0,
            finished: false,
            plaintext: 0,
            buf: Vec::new(),
        })
    }

    /// Appends `plaintext` as one chunk (nothing when it is empty).
    pub fn chunk(&mut self, plaintext: &[u8]) -> io::Result<()> {
        if plaintext.is_empty() {
            return Ok(());
        }
        self.seal_chunk(plaintext, false)
    }

    /// Appends the final chunk (possibly empty), which marks the stream
    /// whole. Later calls do nothing.
    pub fn finish(&mut self, plaintext: &[u8]) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.seal_chunk(plaintext, true)
    }

    fn seal_chunk(&mut self, plaintext: &[u8], last: bool) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other("sealed stream already finished"));
        }
        let index = self.next;
        let next = index
            .checked_add(1)
            .ok_or_else(|| io::Error::other("sealed stream has too many chunks"))?;
        if plaintext.len() > MAX_CHUNK {
            // Readers refuse longer chunks: each piece is a chunk of its own.
            return self.seal_split(plaintext, last);
        }
        let ct_len = (plaintext.len() + TAG_LEN) as u32;
        self.buf.clear();
        self.buf.extend_from_slice(&ct_len.to_be_bytes());
        self.buf.push(if last { FLAG_FINAL } else { 0 });
        self.buf.extend_from_slice(plaintext);
        let tag = self.cipher.seal(index, last, &mut self.buf[5..])?;
        self.buf.extend_from_slice(&tag);
        if let Err(e) = self.file.write_all_at(&self.buf, self.len) {
            // Cut back to whole chunks: a torn chunk would read as damage.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        self.next = next;
        self.finished = last;
        self.plaintext += plaintext.len() as u64;
        Ok(())
    }

    fn seal_split(&mut self, plaintext: &[u8], last: bool) -> io::Result<()> {
        let mut parts = plaintext.chunks(MAX_CHUNK).peekable();
        while let Some(p) = parts.next() {
            self.seal_chunk(p, last && parts.peek().is_none())?;
        }
        Ok(())
    }

    /// Plaintext bytes sealed so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext
    }

    /// Chunks written so far.
    pub fn chunks(&self) -> u32 {
        self.next
    }

    /// Pushes everything to the device.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Writes `bytes` as the whole sealed file `path` (one final chunk),
/// atomically: a temp file renamed over it, so a reader never sees half of
/// it and a full disk leaves the previous version.
pub fn seal_file(
    path: &Path,
    key: &RecordingKey,
    name: &str,
    content: Content,
    bytes: &[u8],
) -> io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let res = File::create(&tmp)
        .and_then(|f| SealedWriter::start(f, key, name, content))
        .and_then(|mut w| w.finish(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Why a sealed file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a sealed file (no MFSEAL header)")]
    NotSealed,
    #[error("sealed-file format version {0} is newer than this mediafork reads (1)")]
    Version(u8),
    #[error("damaged header: {0}")]
    Header(String),
    #[error("sealed for key id \"{key_id}\" (fingerprint {fingerprint}); the private key given is {have}")]
    WrongKey {
        key_id: String,
        fingerprint: String,
        have: String,
    },
    #[error("key id \"{key_id}\": {source}")]
    Unwrap { key_id: String, source: KeyError },
    #[error("chunk {index} failed authentication: the file was altered or damaged")]
    Chunk { index: u32 },
    #[error("chunk {index} is damaged: {what}")]
    Frame { index: u32, what: String },
}

/// Reads a header; returns it and its bytes (for the digest).
pub fn read_header<R: Read>(r: &mut R) -> Result<(Header, Vec<u8>), OpenError> {
    let mut fixed = [0u8; 11];
    match r.read_exact(&mut fixed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(OpenError::NotSealed),
        Err(e) => return Err(e.into()),
    }
    if &fixed[..6] != MAGIC {
        return Err(OpenError::NotSealed);
    }
    if fixed[6] != VERSION {
        return Err(OpenError::Version(fixed[6]));
    }
    let n = u32::from_be_bytes([fixed[7], fixed[8], fixed[9], fixed[10]]);
    if n > MAX_HEADER {
        return Err(OpenError::Header(format!("header of {n} bytes")));
    }
    let mut bytes = fixed.to_vec();
    bytes.resize(11 + n as usize, 0);
    r.read_exact(&mut bytes[11..]).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            OpenError::Header("truncated header".into())
        } else {
            e.into()
        }
    })?;
    Ok((Header::decode(&bytes[11..])?, bytes))
}

/// What reading a stream found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// Whole chunks read (and, when decrypting, authenticated).
    pub chunks: u32,
    /// Plaintext bytes in them.
    pub bytes: u64,
    /// The final chunk was there: nothing is missing.
    pub complete: bool,
    /// Bytes after the last whole chunk (a write torn by a crash).
    pub torn_bytes: u64,
}

/// One chunk's frame: ciphertext length and flags, or the end.
enum Frame {
    End,
    Torn(u64),
    Chunk { ct_len: usize, last: bool },
}

fn read_frame<R: Read>(r: &mut R, index: u32) -> Result<Frame, OpenError> {
    let mut f = [0u8; 5];
    let got = read_full(r, &mut f)?;
    if got == 0 {
        return Ok(Frame::End);
    }
    if got < f.len() {
        return Ok(Frame::Torn(got as u64));
    }
    let ct_len = u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize;
    if !(TAG_LEN..=MAX_CHUNK + TAG_LEN).contains(&ct_len) || f[4] & !FLAG_FINAL != 0 {
        return Err(OpenError::Frame {
            index,
            what: format!("length {ct_len}, flags {:#x}", f[4]),
        });
    }
    Ok(Frame::Chunk {
        ct_len,
        last: f[4] & FLAG_FINAL != 0,
    })
}

/// `read_exact` that reports how much it got before the end.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads a sealed stream's chunk frames after the header, handing each whole
/// chunk (its index, whether it is the final one, its ciphertext and tag) to
/// `chunk` before counting it. Stops at the end of the file, at a torn
/// frame, or after the final chunk.
fn walk_chunks<R: Read>(
    r: &mut R,
    mut chunk: impl FnMut(u32, bool, &mut [u8]) -> Result<(), OpenError>,
) -> Result<StreamSummary, OpenError> {
    let mut s = StreamSummary::default();
    let mut buf = Vec::new();
    loop {
        match read_frame(r, s.chunks)? {
            Frame::End => break,
            Frame::Torn(n) => {
                s.torn_bytes = n;
                break;
            }
            Frame::Chunk { ct_len, last } => {
                buf.resize(ct_len, 0);
                let got = read_full(r, &mut buf)?;
                if got < ct_len {
                    s.torn_bytes = 5 + got as u64;
                    break;
                }
                chunk(s.chunks, last, &mut buf)?;
                s.chunks += 1;
                s.bytes += (ct_len - TAG_LEN) as u64;
                if last {
                    s.complete = true;
                    break;
                }
            }
        }
    }
    Ok(s)
}

/// Walks a sealed stream's chunks without a key (crash recovery): how many
/// whole chunks, how much plaintext, and whether it was finished. Nothing is
/// authenticated.
pub fn scan<R: Read>(mut r: R) -> Result<(Header, StreamSummary), OpenError> {
    let (header, _) = read_header(&mut r)?;
    let s = walk_chunks(&mut r, |_, _, _| Ok(()))?;
    Ok((header, s))
}

/// Decrypts a sealed stream into `out`, chunk by chunk, authenticating each
/// before its plaintext is written. A stream without its final chunk (a
/// crash) is not an error: the summary says `complete: false`. A chunk that
/// fails authentication is, and nothing of it is written.
pub fn decrypt<R: Read, W: Write>(
    mut r: R,
    key: &PrivateKey,
    out: &mut W,
) -> Result<(Header, StreamSummary), OpenError> {
    let (header, bytes) = read_header(&mut r)?;
    let data_key = open_key(&header, key)?;
    let cipher = ChunkCipher::new(&data_key, &header, &bytes);
    let s = walk_chunks(&mut r, |index, last, buf| {
        let (data, tag) = buf.split_at_mut(buf.len() - TAG_LEN);
        if !cipher.open(index, last, data, tag) {
            return Err(OpenError::Chunk { index });
        }
        out.write_all(data)?;
        Ok(())
    })?;
    if s.complete {
        let mut extra = [0u8; 1];
        if read_full(&mut r, &mut extra)? != 0 {
            return Err(OpenError::Frame {
                index: s.chunks,
                what: "data after the final chunk".into(),
            });
        }
    }
    Ok((header, s))
}

/// The data key of a file sealed for `key`.
fn open_key(header: &Header, key: &PrivateKey) -> Result<Zeroizing<[u8; 32]>, OpenError> {
    if header.fingerprint != key.public().fingerprint() {
        return Err(OpenError::WrongKey {
            key_id: header.key_id.clone(),
            fingerprint: header.fingerprint.clone(),
            have: format!(
                "{} with fingerprint {}",
                key.public().describe(),
                key.public().fingerprint()
            ),
        });
    }
    key.unwrap(header.algorithm, &header.wrapped_key)
        .map_err(|source| OpenError::Unwrap {
            key_id: header.key_id.clone(),
            source,
        })
}

#[cfg(test)]
mod tests;
