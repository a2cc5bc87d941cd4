//! The SRTP key derivation function (RFC 3711 §4.3): the AES-CM PRF keyed
//! with the master key, run over `(label || r) XOR master_salt`. SDES keys
//! use a key derivation rate of 0, so `r` is always 0 and each session key
//! is derived once.

use aes::cipher::consts::U16;
use aes::cipher::{BlockEncrypt, BlockSizeUser, KeyInit};
use aes::{Aes128Enc, Aes256Enc};

use super::cipher::Block;

/// Fill `out` with the session key of `label`. A 96-bit (GCM) master salt
/// is zero-padded to 112 bits, as libsrtp does for RFC 7714 suites.
pub(super) fn derive(master_key: &[u8], master_salt: &[u8], label: u8, out: &mut [u8]) {
    let mut x = [0u8; 16];
    x[..master_salt.len().min(14)].copy_from_slice(&master_salt[..master_salt.len().min(14)]);
    // key_id = label || r (48 bits, 0) is right-aligned in the 112-bit salt.
    x[7] ^= label;
    match master_key.len() {
        16 => prf(
            &Aes128Enc::new_from_slice(master_key).expect("16-byte key"),
            &x,
            out,
        ),
        _ => prf(
            &Aes256Enc::new_from_slice(master_key).expect("32-byte key"),
            &x,
            out,
        ),
    }
}

/// AES-CM keystream from IV `x · 2^16`.
fn prf<C: BlockEncrypt + BlockSizeUser<BlockSize = U16>>(aes: &C, x: &[u8; 16], out: &mut [u8]) {
    for (j, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = Block::clone_from_slice(x);
        block[14..16].copy_from_slice(&(j as u16).to_be_bytes());
        aes.encrypt_block(&mut block);
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
}
