//! SRTP and SRTCP (RFC 3711) for SDES-keyed streams: sans-IO crypto
//! contexts that authenticate, replay-check and decrypt packets in place.
//!
//! Suites (names as SDP's `a=crypto` writes them):
//! - `AES_CM_128_HMAC_SHA1_80` and `_32` (RFC 3711, RFC 4568);
//! - `AES_256_CM_HMAC_SHA1_80` and `_32` (RFC 6188);
//! - `AEAD_AES_128_GCM` and `AEAD_AES_256_GCM` (RFC 7714).
//!
//! The split follows who does what in the data plane:
//! - [`SrtpSession`] holds the session keys, derived once from the master
//!   key (RFC 3711 §4.3) and keyed ciphers. The control plane builds it
//!   (`Engine::add_track`), so key derivation and key schedules never run on
//!   a worker, and every worker that sees the track shares it through an
//!   `Arc`.
//! - [`SrtpContext`] is one receiver's view of one stream: the shared
//!   session plus its own rollover counter and 64-packet replay window
//!   (RFC 3711 §3.3.1, §3.3.2). A worker keeps one per track, in the track's
//!   cold state; making one is an `Arc` clone and a few zeroed words.
//!
//! Nothing here allocates per packet: packets are processed in the caller's
//! buffer, keystream blocks live on the stack.
//!
//! Master key identifiers (MKI) are not supported: SDP offers with `|MKI`
//! are refused before a session is ever built, so packets never carry one.

mod cipher;
mod kdf;
mod replay;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

pub use replay::ReplayWindow;

use cipher::{Cipher, SessionKeys};

/// An SRTP protection profile, as offered with SDES.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AesCm256HmacSha1_80,
    AesCm256HmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}

impl Suite {
    /// Every suite, strongest first (the order an answerer prefers them in).
    pub const ALL: [Suite; 6] = [
        Suite::AeadAes256Gcm,
        Suite::AeadAes128Gcm,
        Suite::AesCm256HmacSha1_80,
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm256HmacSha1_32,
        Suite::AesCm128HmacSha1_32,
    ];

    /// The suite an `a=crypto` line names (case-insensitive). RFC 6188's
    /// `AES_256_CM_HMAC_SHA1_*` are also accepted in the word order some
    /// SBCs write (`AES_CM_256_HMAC_SHA1_*`).
    pub fn from_sdes_name(name: &str) -> Option<Suite> {
        let n = name.to_ascii_uppercase();
        Some(match n.as_str() {
            "AES_CM_128_HMAC_SHA1_80" => Suite::AesCm128HmacSha1_80,
            "AES_CM_128_HMAC_SHA1_32" => Suite::AesCm128HmacSha1_32,
            "AES_256_CM_HMAC_SHA1_80" | "AES_CM_256_HMAC_SHA1_80" => Suite::AesCm256HmacSha1_80,
            "AES_256_CM_HMAC_SHA1_32" | "AES_CM_256_HMAC_SHA1_32" => Suite::AesCm256HmacSha1_32,
            "AEAD_AES_128_GCM" => Suite::AeadAes128Gcm,
            "AEAD_AES_256_GCM" => Suite::AeadAes256Gcm,
            _ => return None,
        })
    }

    /// The registered SDES name (RFC 4568 §6.2, RFC 6188 §7.1, RFC 7714 §14.2).
    pub const fn sdes_name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Master (and session) key length, bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 | Suite::AeadAes128Gcm => 16,
            _ => 32,
        }
    }

    /// Master (and session) salt length, bytes: 112 bits for counter mode,
    /// 96 for GCM (RFC 7714 §12).
    pub const fn salt_len(self) -> usize {
        if self.is_aead() {
            12
        } else {
            14
        }
    }

    /// Whether this is an AEAD (GCM) suite.
    pub const fn is_aead(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
    }

    /// Authentication tag length of SRTP packets, bytes.
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_32 | Suite::AesCm256HmacSha1_32 => 4,
            Suite::AesCm128HmacSha1_80 | Suite::AesCm256HmacSha1_80 => 10,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
        }
    }

    /// Authentication tag length of SRTCP packets, bytes: the `_32` suites
    /// still use 80-bit tags for SRTCP (RFC 4568 §6.2.2).
    pub const fn rtcp_tag_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            10
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sdes_name())
    }
}

/// Why a packet was not (un)protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Shorter than its header and tag, or a header that runs past the end.
    #[error("packet too short for SRTP")]
    Malformed,
    /// The authentication tag does not match: forged, corrupted, or keyed
    /// differently.
    #[error("SRTP authentication failed")]
    AuthFailed,
    /// Already received, or older than the replay window.
    #[error("SRTP replay")]
    Replay,
    /// The buffer has no room for the tag (protect only).
    #[error("no room for the SRTP tag")]
    NoRoom,
    /// Key material of the wrong length for the suite.
    #[error("SRTP key material must be {0} bytes")]
    KeyLength(usize),
}

/// A master key and salt for one suite, as SDES carries them (`inline:`
/// base64 of key || salt). Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    suite: Suite,
    /// Key then salt, `suite.key_len() + suite.salt_len()` bytes used.
    material: [u8; 46],
}

impl MasterKey {
    /// From SDES key material: the master key followed by the master salt.
    pub fn new(suite: Suite, key_and_salt: &[u8]) -> Result<MasterKey, SrtpError> {
        let want = suite.key_len() + suite.salt_len();
        if key_and_salt.len() != want {
            return Err(SrtpError::KeyLength(want));
        }
        let mut material = [0u8; 46];
        material[..want].copy_from_slice(key_and_salt);
        Ok(MasterKey { suite, material })
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The master key.
    pub fn key(&self) -> &[u8] {
        &self.material[..self.suite.key_len()]
    }

    /// The master salt.
    pub fn salt(&self) -> &[u8] {
        let k = self.suite.key_len();
        &self.material[k..k + self.suite.salt_len()]
    }

    /// Key || salt, as SDES encodes it.
    pub fn key_and_salt(&self) -> &[u8] {
        &self.material[..self.suite.key_len() + self.suite.salt_len()]
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// The session keys of one master key, for SRTP and SRTCP, with their
/// ciphers keyed. Immutable once built; shared by every worker.
pub struct SrtpSession {
    suite: Suite,
    master: MasterKey,
    rtp: SessionKeys,
    rtcp: SessionKeys,
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Key derivation labels (RFC 3711 §4.3.2).
const LABEL_RTP_ENC: u8 = 0;
const LABEL_RTP_AUTH: u8 = 1;
const LABEL_RTP_SALT: u8 = 2;
const LABEL_RTCP_ENC: u8 = 3;
const LABEL_RTCP_AUTH: u8 = 4;
const LABEL_RTCP_SALT: u8 = 5;

/// HMAC-SHA1 session authentication key length (RFC 3711 §8.2: n_a = 160).
const AUTH_KEY_LEN: usize = 20;

impl SrtpSession {
    /// Derive the session keys (key derivation rate 0, the SDES default)
    /// and key the ciphers. Slow path: a few dozen AES blocks.
    pub fn new(master: &MasterKey) -> SrtpSession {
        let suite = master.suite;
        let keys = |enc, auth, salt| {
            let mut k = [0u8; 32];
            let mut s = [0u8; 14];
            let mut a = [0u8; AUTH_KEY_LEN];
            let kl = suite.key_len();
            kdf::derive(master.key(), master.salt(), enc, &mut k[..kl]);
            kdf::derive(
                master.key(),
                master.salt(),
                salt,
                &mut s[..suite.salt_len()],
            );
            if !suite.is_aead() {
                kdf::derive(master.key(), master.salt(), auth, &mut a);
            }
            SessionKeys::new(suite, &k[..kl], s, &a)
        };
        SrtpSession {
            suite,
            master: master.clone(),
            rtp: keys(LABEL_RTP_ENC, LABEL_RTP_AUTH, LABEL_RTP_SALT),
            rtcp: keys(LABEL_RTCP_ENC, LABEL_RTCP_AUTH, LABEL_RTCP_SALT),
        }
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Whether this session was derived from `master`.
    pub fn is_keyed_by(&self, master: &MasterKey) -> bool {
        self.master == *master
    }

    /// Unprotect an SRTP packet in place with `window` as the receiver's
    /// replay state: check the index against the window, authenticate,
    /// decrypt, and only then advance the window, so a forged or replayed
    /// packet changes nothing. Returns the RTP packet's length (the tag
    /// removed).
    #[inline]
    pub fn unprotect_rtp(
        &self,
        window: &mut ReplayWindow,
        packet: &mut [u8],
    ) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let header_len = rtp_header_len(packet).ok_or(SrtpError::Malformed)?;
        let body_end = packet
            .len()
            .checked_sub(tag_len)
            .filter(|e| *e >= header_len)
            .ok_or(SrtpError::Malformed)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let index = window.estimate(seq);
        window.check(index)?;
        let roc = (index >> 16) as u32;
        let (head, tag) = packet.split_at_mut(body_end);
        match &self.rtp.cipher {
            Cipher::Gcm128(_) | Cipher::Gcm256(_) => {
                let (aad, body) = head.split_at_mut(header_len);
                let iv = self.rtp.gcm_iv(ssrc, index);
                self.rtp.cipher.gcm_open(&iv, aad, body, tag)?;
            }
            _ => {
                self.rtp.verify_hmac(head, roc, tag)?;
                let iv = self.rtp.cm_iv(ssrc, index);
                self.rtp.cipher.cm_apply(&iv, &mut head[header_len..]);
            }
        }
        window.accept(index);
        Ok(body_end)
    }

    /// Protect the RTP packet in `buf[..len]` in place, appending the tag;
    /// `window` is the sender's index state (it follows sequence numbers
    /// the way the receiver does, so a sender that wraps its sequence
    /// numbers moves its rollover counter). Returns the SRTP length.
    pub fn protect_rtp(
        &self,
        window: &mut ReplayWindow,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let packet = buf.get(..len).ok_or(SrtpError::Malformed)?;
        let header_len = rtp_header_len(packet).ok_or(SrtpError::Malformed)?;
        if buf.len() < len + tag_len {
            return Err(SrtpError::NoRoom);
        }
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let index = window.estimate(seq);
        window.accept(index);
        let roc = (index >> 16) as u32;
        let (head, rest) = buf.split_at_mut(len);
        let tag = &mut rest[..tag_len];
        match &self.rtp.cipher {
            Cipher::Gcm128(_) | Cipher::Gcm256(_) => {
                let (aad, body) = head.split_at_mut(header_len);
                let iv = self.rtp.gcm_iv(ssrc, index);
                self.rtp.cipher.gcm_seal(&iv, aad, body, tag);
            }
            _ => {
                let iv = self.rtp.cm_iv(ssrc, index);
                self.rtp.cipher.cm_apply(&iv, &mut head[header_len..]);
                self.rtp.hmac_tag(head, roc, tag);
            }
        }
        Ok(len + tag_len)
    }

    /// Unprotect an SRTCP packet in place (RFC 3711 §3.4; RFC 7714 §9 for
    /// GCM): authenticate, check the SRTCP index against `window`, decrypt
    /// when the E flag says the payload is encrypted. Returns the RTCP
    /// packet's length (index, tag removed).
    pub fn unprotect_rtcp(
        &self,
        window: &mut ReplayWindow,
        packet: &mut [u8],
    ) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtcp_tag_len();
        // Header (8) + E||index (4) + tag. GCM puts the tag before the
        // index word, counter mode after it.
        let min = 8 + 4 + tag_len;
        if packet.len() < min {
            return Err(SrtpError::Malformed);
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let n = packet.len();
        if self.suite.is_aead() {
            let word_at = n - 4;
            let word: [u8; 4] = [
                packet[word_at],
                packet[word_at + 1],
                packet[word_at + 2],
                packet[word_at + 3],
            ];
            let e_index = u32::from_be_bytes(word);
            let index = e_index & 0x7fff_ffff;
            window.check(index as u64)?;
            let iv = self.rtcp.gcm_rtcp_iv(ssrc, index);
            let body_end = word_at - tag_len;
            let (head, rest) = packet.split_at_mut(body_end);
            let tag = &rest[..tag_len];
            if e_index & 0x8000_0000 != 0 {
                // AAD: the 8-byte header and the E||index word.
                let (hdr, body) = head.split_at_mut(8);
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(hdr);
                aad[8..].copy_from_slice(&word);
                self.rtcp.cipher.gcm_open(&iv, &aad, body, tag)?;
            } else {
                // Not encrypted: everything is associated data (§9.2). The
                // AAD is header, payload and index word, contiguous but for
                // the tag in between: authenticate it through a copy-free
                // two-part AAD is not offered by the AEAD API, so such
                // packets (rare: senders encrypt RTCP) are refused unless
                // small enough for a stack buffer.
                let mut aad = [0u8; 1500];
                let total = body_end + 4;
                let aad = aad.get_mut(..total).ok_or(SrtpError::Malformed)?;
                aad[..body_end].copy_from_slice(head);
                aad[body_end..].copy_from_slice(&word);
                self.rtcp.cipher.gcm_open(&iv, aad, &mut [], tag)?;
            }
            window.accept(index as u64);
            return Ok(body_end);
        }
        let tag_at = n - tag_len;
        let word_at = tag_at - 4;
        let e_index = u32::from_be_bytes([
            packet[word_at],
            packet[word_at + 1],
            packet[word_at + 2],
            packet[word_at + 3],
        ]);
        let index = e_index & 0x7fff_ffff;
        window.check(index as u64)?;
        let (authed, tag) = packet.split_at_mut(tag_at);
        self.rtcp.verify_hmac_plain(authed, tag)?;
        if e_index & 0x8000_0000 != 0 {
            let iv = self.rtcp.cm_iv(ssrc, index as u64);
            self.rtcp.cipher.cm_apply(&iv, &mut authed[8..word_at]);
        }
        window.accept(index as u64);
        Ok(word_at)
    }

    /// Protect the RTCP packet in `buf[..len]` with SRTCP index `index`
    /// (encrypted, E = 1). Returns the SRTCP length.
    pub fn protect_rtcp(&self, index: u32, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtcp_tag_len();
        if len < 8 {
            return Err(SrtpError::Malformed);
        }
        if buf.len() < len + 4 + tag_len {
            return Err(SrtpError::NoRoom);
        }
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let index = index & 0x7fff_ffff;
        let word = (index | 0x8000_0000).to_be_bytes();
        if self.suite.is_aead() {
            let iv = self.rtcp.gcm_rtcp_iv(ssrc, index);
            let mut aad = [0u8; 12];
            aad[..8].copy_from_slice(&buf[..8]);
            aad[8..].copy_from_slice(&word);
            let (head, rest) = buf.split_at_mut(len);
            self.rtcp
                .cipher
                .gcm_seal(&iv, &aad, &mut head[8..], &mut rest[..tag_len]);
            rest[tag_len..tag_len + 4].copy_from_slice(&word);
            return Ok(len + tag_len + 4);
        }
        let iv = self.rtcp.cm_iv(ssrc, index as u64);
        self.rtcp.cipher.cm_apply(&iv, &mut buf[8..len]);
        buf[len..len + 4].copy_from_slice(&word);
        let (authed, rest) = buf.split_at_mut(len + 4);
        self.rtcp.hmac_tag_plain(authed, &mut rest[..tag_len]);
        Ok(len + 4 + tag_len)
    }
}

/// One receiver's (or sender's) context for one SRTP stream: the shared
/// session keys and this end's rollover counter and replay windows. Making
/// one does not allocate.
#[derive(Clone, Debug)]
pub struct SrtpContext {
    session: Arc<SrtpSession>,
    rtp: ReplayWindow,
    rtcp: ReplayWindow,
}

impl SrtpContext {
    pub fn new(session: Arc<SrtpSession>) -> SrtpContext {
        SrtpContext {
            session,
            rtp: ReplayWindow::default(),
            rtcp: ReplayWindow::default(),
        }
    }

    /// A context with its own freshly derived session (tests, senders).
    pub fn from_master(master: &MasterKey) -> SrtpContext {
        SrtpContext::new(Arc::new(SrtpSession::new(master)))
    }

    pub fn session(&self) -> &Arc<SrtpSession> {
        &self.session
    }

    /// The same stream under another key (SDES re-keying): the rollover
    /// counter and replay windows carry over, as the stream goes on.
    pub fn rekeyed(&self, session: Arc<SrtpSession>) -> SrtpContext {
        SrtpContext {
            session,
            rtp: self.rtp,
            rtcp: self.rtcp,
        }
    }

    /// See [`SrtpSession::unprotect_rtp`].
    #[inline]
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        self.session.unprotect_rtp(&mut self.rtp, packet)
    }

    /// See [`SrtpSession::unprotect_rtcp`].
    #[inline]
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        self.session.unprotect_rtcp(&mut self.rtcp, packet)
    }

    /// See [`SrtpSession::protect_rtp`].
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        self.session.protect_rtp(&mut self.rtp, buf, len)
    }

    /// See [`SrtpSession::protect_rtcp`].
    pub fn protect_rtcp(&self, index: u32, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        self.session.protect_rtcp(index, buf, len)
    }

    /// The 48-bit index of the newest RTP packet accepted so far.
    pub fn rtp_index(&self) -> Option<u64> {
        self.rtp.highest()
    }
}

/// Length of an RTP packet's header: fixed part, CSRCs and extension.
#[inline]
pub fn rtp_header_len(p: &[u8]) -> Option<usize> {
    let b0 = *p.first()?;
    let mut len = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let x = p.get(len..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([x[2], x[3]]));
    }
    (p.len() >= len).then_some(len)
}
