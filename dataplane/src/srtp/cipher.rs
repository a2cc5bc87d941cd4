//! The transforms: AES in counter mode (RFC 3711 §4.1.1) with HMAC-SHA1
//! (§4.2), and AES-GCM (RFC 7714). Each works on the caller's buffer; the
//! only per-packet copies are of keyed state on the stack (HMAC's ipad/opad
//! state, a few hundred bytes).

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, BlockSizeUser, KeyInit};
use aes::{Aes128Enc, Aes256Enc};
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::AesGcm;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::{SrtpError, Suite};

/// One AES block.
pub(super) type Block = GenericArray<u8, U16>;

type Gcm128 = AesGcm<Aes128Enc, U12>;
type Gcm256 = AesGcm<Aes256Enc, U12>;

/// A keyed cipher. Counter mode needs only the encryption key schedule.
pub(super) enum Cipher {
    Cm128(Aes128Enc),
    Cm256(Aes256Enc),
    Gcm128(Gcm128),
    Gcm256(Gcm256),
}

/// Blocks of keystream made per call to the block cipher, so AES-NI can
/// pipeline them: 8 blocks cover a 20 ms G.711 payload in two calls.
const BATCH: usize = 8;

impl Cipher {
    /// XOR the AES-CM keystream for `iv` into `data` (encrypt = decrypt).
    #[inline]
    pub(super) fn cm_apply(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            Cipher::Cm128(c) => cm_xor(c, iv, data),
            Cipher::Cm256(c) => cm_xor(c, iv, data),
            // Not reachable: GCM sessions never take the counter-mode path.
            Cipher::Gcm128(_) | Cipher::Gcm256(_) => {}
        }
    }

    /// Verify `tag` over `aad` and `body`, then decrypt `body` in place. On
    /// failure `body` is unchanged.
    #[inline]
    pub(super) fn gcm_open(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        body: &mut [u8],
        tag: &[u8],
    ) -> Result<(), SrtpError> {
        if tag.len() != 16 {
            return Err(SrtpError::Malformed);
        }
        let nonce = GenericArray::from_slice(iv);
        let tag = GenericArray::from_slice(tag);
        let r = match self {
            Cipher::Gcm128(g) => g.decrypt_in_place_detached(nonce, aad, body, tag),
            Cipher::Gcm256(g) => g.decrypt_in_place_detached(nonce, aad, body, tag),
            Cipher::Cm128(_) | Cipher::Cm256(_) => return Err(SrtpError::AuthFailed),
        };
        r.map_err(|_| SrtpError::AuthFailed)
    }

    /// Encrypt `body` in place and write the 16-byte tag to `tag`.
    pub(super) fn gcm_seal(&self, iv: &[u8; 12], aad: &[u8], body: &mut [u8], tag: &mut [u8]) {
        let nonce = GenericArray::from_slice(iv);
        let t = match self {
            Cipher::Gcm128(g) => g.encrypt_in_place_detached(nonce, aad, body),
            Cipher::Gcm256(g) => g.encrypt_in_place_detached(nonce, aad, body),
            Cipher::Cm128(_) | Cipher::Cm256(_) => return,
        };
        if let Ok(t) = t {
            tag.copy_from_slice(&t);
        }
    }
}

#[inline]
fn cm_xor<C: BlockEncrypt + BlockSizeUser<BlockSize = U16>>(
    aes: &C,
    iv: &[u8; 16],
    data: &mut [u8],
) {
    let mut blocks = [Block::default(); BATCH];
    let mut counter: u16 = 0;
    for chunk in data.chunks_mut(16 * BATCH) {
        let n = chunk.len().div_ceil(16);
        for b in blocks[..n].iter_mut() {
            // The IV's low 16 bits are zero (salt, SSRC and index all sit
            // above them) and a packet is far below 2^16 blocks, so the
            // 128-bit counter increment only ever touches those bits.
            b.copy_from_slice(iv);
            b[14..16].copy_from_slice(&counter.to_be_bytes());
            counter = counter.wrapping_add(1);
        }
        aes.encrypt_blocks(&mut blocks[..n]);
        for (d, k) in chunk.chunks_mut(16).zip(blocks.iter()) {
            for (x, y) in d.iter_mut().zip(k.iter()) {
                *x ^= *y;
            }
        }
    }
}

/// The keys of one direction of SRTP or SRTCP.
pub(super) struct SessionKeys {
    pub(super) cipher: Cipher,
    /// Session salt; 12 bytes used for GCM.
    salt: [u8; 14],
    /// HMAC-SHA1 keyed with the session authentication key (counter mode).
    mac: Option<Hmac<Sha1>>,
}

impl SessionKeys {
    pub(super) fn new(suite: Suite, key: &[u8], salt: [u8; 14], auth: &[u8]) -> SessionKeys {
        let cipher = match suite {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => {
                Cipher::Cm128(Aes128Enc::new_from_slice(key).expect("16-byte key"))
            }
            Suite::AesCm256HmacSha1_80 | Suite::AesCm256HmacSha1_32 => {
                Cipher::Cm256(Aes256Enc::new_from_slice(key).expect("32-byte key"))
            }
            Suite::AeadAes128Gcm => {
                Cipher::Gcm128(Gcm128::new_from_slice(key).expect("16-byte key"))
            }
            Suite::AeadAes256Gcm => {
                Cipher::Gcm256(Gcm256::new_from_slice(key).expect("32-byte key"))
            }
        };
        let mac = (!suite.is_aead())
            .then(|| <Hmac<Sha1> as Mac>::new_from_slice(auth).expect("HMAC takes any key"));
        SessionKeys { cipher, salt, mac }
    }

    /// Session keys given directly (the RFC test vectors skip derivation).
    #[cfg(test)]
    pub(super) fn from_session(suite: Suite, key: &[u8], salt: &[u8]) -> SessionKeys {
        let mut s = [0u8; 14];
        s[..salt.len()].copy_from_slice(salt);
        SessionKeys::new(suite, key, s, &[0; 20])
    }

    /// AES-CM IV (RFC 3711 §4.1.1): `k_s·2^16 XOR SSRC·2^64 XOR i·2^16`.
    #[inline]
    pub(super) fn cm_iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *d ^= s;
        }
        for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *d ^= s;
        }
        iv
    }

    /// GCM IV for SRTP (RFC 7714 §8.1): `00 00 || SSRC || ROC || SEQ`
    /// XOR the session salt.
    #[inline]
    pub(super) fn gcm_iv(&self, ssrc: u32, index: u64) -> [u8; 12] {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
        for (d, s) in iv.iter_mut().zip(&self.salt[..12]) {
            *d ^= s;
        }
        iv
    }

    /// GCM IV for SRTCP (RFC 7714 §9.1): `00 00 || SSRC || 00 00 || index`
    /// XOR the session salt.
    pub(super) fn gcm_rtcp_iv(&self, ssrc: u32, index: u32) -> [u8; 12] {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[8..12].copy_from_slice(&(index & 0x7fff_ffff).to_be_bytes());
        for (d, s) in iv.iter_mut().zip(&self.salt[..12]) {
            *d ^= s;
        }
        iv
    }

    /// HMAC-SHA1 over `parts`, truncated into `out`.
    #[inline]
    fn hmac(&self, parts: &[&[u8]], out: &mut [u8]) {
        let Some(mac) = &self.mac else { return };
        let mut m = mac.clone();
        for p in parts {
            m.update(p);
        }
        let full = m.finalize().into_bytes();
        let n = out.len().min(full.len());
        out[..n].copy_from_slice(&full[..n]);
    }

    /// Check an SRTP tag: HMAC over the packet and the ROC (§4.2), compared
    /// in constant time.
    #[inline]
    pub(super) fn verify_hmac(&self, authed: &[u8], roc: u32, tag: &[u8]) -> Result<(), SrtpError> {
        let mut want = [0u8; 20];
        let want = &mut want[..tag.len().min(20)];
        self.hmac(&[authed, &roc.to_be_bytes()], want);
        if bool::from(want.ct_eq(tag)) && !tag.is_empty() {
            Ok(())
        } else {
            Err(SrtpError::AuthFailed)
        }
    }

    /// Write an SRTP tag.
    pub(super) fn hmac_tag(&self, authed: &[u8], roc: u32, tag: &mut [u8]) {
        self.hmac(&[authed, &roc.to_be_bytes()], tag);
    }

    /// Check an SRTCP tag: HMAC over header, payload and E||index.
    pub(super) fn verify_hmac_plain(&self, authed: &[u8], tag: &[u8]) -> Result<(), SrtpError> {
        let mut want = [0u8; 20];
        let want = &mut want[..tag.len().min(20)];
        self.hmac(&[authed], want);
        if bool::from(want.ct_eq(tag)) && !tag.is_empty() {
            Ok(())
        } else {
            Err(SrtpError::AuthFailed)
        }
    }

    /// Write an SRTCP tag.
    pub(super) fn hmac_tag_plain(&self, authed: &[u8], tag: &mut [u8]) {
        self.hmac(&[authed], tag);
    }
}
