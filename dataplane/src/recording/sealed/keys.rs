//! The keys recordings are sealed for: an X25519 or RSA (2048 bits or more)
//! public key on the recorder, its private key only where recordings are
//! decrypted. Both come as PEM files made by OpenSSL:
//!
//! ```text
//! openssl genpkey -algorithm X25519 -out tenant.key
//! openssl pkey -in tenant.key -pubout -out tenant.pub      # goes on the recorder
//! openssl genrsa -out tenant.key 3072 && openssl rsa -in tenant.key -pubout -out tenant.pub
//! ```
//!
//! A recording's 256-bit data key is wrapped for the public key:
//! - X25519: an ephemeral key pair per recording, ECDH with the recipient's
//!   key, HKDF-SHA256 over the shared secret (salted with both public keys)
//!   gives a key-encryption key, and AES-256-GCM seals the data key with it.
//!   The wrapped key is `ephemeral public key (32) || ciphertext+tag (48)`.
//! - RSA: RSA-OAEP with SHA-256 (and MGF1-SHA-256), no label.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use pkcs8::der::asn1::OctetStringRef;
use pkcs8::der::Decode;
use pkcs8::{ObjectIdentifier, PrivateKeyInfo, SecretDocument};
use rand_core::OsRng;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoRef;
use zeroize::Zeroizing;

/// Smallest RSA modulus accepted, in bits (NIST SP 800-57: 112-bit security).
pub const MIN_RSA_BITS: usize = 2048;

const X25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
const RSA_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// DER of an X25519 SubjectPublicKeyInfo up to the 32 key bytes (RFC 8410).
const X25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];
const KEK_INFO: &[u8] = b"mediafork sealed v1 x25519 key wrap";
const WRAP_AAD: &[u8] = b"mediafork sealed v1 data key";
/// Bytes of an X25519-wrapped data key: ephemeral public key + ciphertext + tag.
const X25519_WRAPPED_LEN: usize = 32 + 32 + 16;

/// A key problem, worded for the operator (the caller adds the file name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

fn err(msg: impl Into<String>) -> KeyError {
    KeyError(msg.into())
}

/// How a data key is wrapped; the number is what the file header stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    X25519,
    RsaOaep,
}

impl Algorithm {
    pub fn id(self) -> u8 {
        match self {
            Algorithm::X25519 => 1,
            Algorithm::RsaOaep => 2,
        }
    }

    pub fn from_id(id: u8) -> Option<Algorithm> {
        match id {
            1 => Some(Algorithm::X25519),
            2 => Some(Algorithm::RsaOaep),
            _ => None,
        }
    }

    /// As written in `meta.json` (`encryption.algorithm`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::X25519 => "AES-256-GCM, data key wrapped with X25519-HKDF-SHA256",
            Algorithm::RsaOaep => "AES-256-GCM, data key wrapped with RSA-OAEP-SHA256",
        }
    }
}

/// The label of the first PEM block of `text`.
fn pem_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &text[start..];
    Some(&rest[..rest.find("-----")?])
}

fn algorithm_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.10045.2.1" => "an EC (ECDSA/ECDH)".into(),
        "1.3.101.112" => "an Ed25519".into(),
        "1.3.101.111" => "an X448".into(),
        "1.3.101.113" => "an Ed448".into(),
        other => format!("an unsupported ({other})"),
    }
}

fn fingerprint_of(spki_der: &[u8]) -> String {
    let d = Sha256::digest(spki_der);
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn rsa_checked(key: RsaPublicKey) -> Result<RsaPublicKey, KeyError> {
    let bits = key.size() * 8;
    if bits < MIN_RSA_BITS {
        return Err(err(format!(
            "is an RSA key of {bits} bits: at least {MIN_RSA_BITS} bits are required \
             (openssl genrsa -out KEY.pem 3072)"
        )));
    }
    Ok(key)
}

#[derive(Clone)]
enum PublicKind {
    X25519(x25519_dalek::PublicKey),
    Rsa(Box<RsaPublicKey>),
}

/// A public key recordings are sealed for.
#[derive(Clone)]
pub struct PublicKey {
    kind: PublicKind,
    fingerprint: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.describe(), self.fingerprint)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    fn x25519(bytes: [u8; 32]) -> PublicKey {
        let mut der = X25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&bytes);
        PublicKey {
            kind: PublicKind::X25519(x25519_dalek::PublicKey::from(bytes)),
            fingerprint: fingerprint_of(&der),
        }
    }

    fn rsa(key: RsaPublicKey) -> Result<PublicKey, KeyError> {
        let key = rsa_checked(key)?;
        let der = key
            .to_public_key_der()
            .map_err(|e| err(format!("cannot encode the RSA key: {e}")))?;
        Ok(PublicKey {
            fingerprint: fingerprint_of(der.as_bytes()),
            kind: PublicKind::Rsa(Box::new(key)),
        })
    }

    /// Reads a PEM public key: `PUBLIC KEY` (SubjectPublicKeyInfo, X25519 or
    /// RSA) or `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        match pem_label(text) {
            Some("PUBLIC KEY") => {
                let (_, doc) = spki::Document::from_pem(text)
                    .map_err(|e| err(format!("is not a valid PEM public key: {e}")))?;
                let info = SubjectPublicKeyInfoRef::try_from(doc.as_bytes())
                    .map_err(|e| err(format!("is not a valid public key: {e}")))?;
                if info.algorithm.oid == X25519_OID {
                    let bytes: [u8; 32] = info
                        .subject_public_key
                        .as_bytes()
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| err("holds an X25519 key that is not 32 bytes"))?;
                    Ok(PublicKey::x25519(bytes))
                } else if info.algorithm.oid == RSA_OID {
                    let key = RsaPublicKey::from_public_key_der(doc.as_bytes())
                        .map_err(|e| err(format!("is not a valid RSA public key: {e}")))?;
                    PublicKey::rsa(key)
                } else {
                    Err(err(format!(
                        "is {} public key; use an X25519 or RSA ({MIN_RSA_BITS} bits or more) key",
                        algorithm_name(info.algorithm.oid)
                    )))
                }
            }
            Some("RSA PUBLIC KEY") => {
                let key = RsaPublicKey::from_pkcs1_pem(text)
                    .map_err(|e| err(format!("is not a valid RSA public key: {e}")))?;
                PublicKey::rsa(key)
            }
            Some(l) if l.contains("PRIVATE KEY") => Err(err(
                "is a private key: the recorder needs only the public key \
                 (openssl pkey -in KEY.pem -pubout -out KEY.pub); keep the private key off the recorder",
            )),
            Some(l) => Err(err(format!(
                "is a PEM \"{l}\", not a public key; expected \"-----BEGIN PUBLIC KEY-----\""
            ))),
            None => Err(err(
                "is not a PEM file; expected \"-----BEGIN PUBLIC KEY-----\" (X25519 or RSA)",
            )),
        }
    }

    /// Reads a PEM public key file; errors name the file.
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        PublicKey::from_pem(&text).map_err(|e| err(format!("{} {e}", path.display())))
    }

    /// `sha256:` and the first 128 bits of SHA-256 over the key's DER
    /// SubjectPublicKeyInfo, in hex: the same from the public key and from
    /// its private key, so a decrypter can tell which key a file needs.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.kind {
            PublicKind::X25519(_) => Algorithm::X25519,
            PublicKind::Rsa(_) => Algorithm::RsaOaep,
        }
    }

    /// `X25519` or `RSA-3072`, for logs.
    pub fn describe(&self) -> String {
        match &self.kind {
            PublicKind::X25519(_) => "X25519".into(),
            PublicKind::Rsa(k) => format!("RSA-{}", k.size() * 8),
        }
    }

    /// Wraps `data_key` for this key (see the module documentation).
    pub fn wrap(&self, data_key: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
        match &self.kind {
            PublicKind::X25519(recipient) => {
                let eph = x25519_dalek::EphemeralSecret::random_from_rng(OsRng);
                let eph_pub = x25519_dalek::PublicKey::from(&eph);
                let shared = eph.diffie_hellman(recipient);
                if !shared.was_contributory() {
                    return Err(err("the X25519 public key is a low-order point"));
                }
                let kek = x25519_kek(shared.as_bytes(), eph_pub.as_bytes(), recipient.as_bytes());
                let mut out = Vec::with_capacity(X25519_WRAPPED_LEN);
                out.extend_from_slice(eph_pub.as_bytes());
                let mut ct = *data_key;
                let tag = Aes256Gcm::new((&*kek).into())
                    // The key-encryption key is used once (a fresh ephemeral
                    // key each time), so a fixed nonce is safe.
                    .encrypt_in_place_detached(&Nonce::default(), WRAP_AAD, &mut ct)
                    .map_err(|_| err("AES-GCM key wrap failed"))?;
                out.extend_from_slice(&ct);
                out.extend_from_slice(&tag);
                Ok(out)
            }
            PublicKind::Rsa(k) => k
                .encrypt(&mut OsRng, Oaep::new::<Sha256>(), data_key)
                .map_err(|e| err(format!("RSA-OAEP key wrap failed: {e}"))),
        }
    }
}

fn x25519_kek(shared: &[u8; 32], eph: &[u8; 32], recipient: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(eph);
    salt[32..].copy_from_slice(recipient);
    let mut kek = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit: cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(&salt), shared).expand(KEK_INFO, &mut kek[..]);
    kek
}

enum PrivateKind {
    X25519(x25519_dalek::StaticSecret),
    Rsa(Box<RsaPrivateKey>),
}

/// A private key that opens sealed recordings (`mediafork recordings
/// decrypt`); never needed by the recorder.
pub struct PrivateKey {
    kind: PrivateKind,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({:?})", self.public)
    }
}

impl PrivateKey {
    fn rsa(key: RsaPrivateKey) -> Result<PrivateKey, KeyError> {
        let public = PublicKey::rsa(key.to_public_key())?;
        Ok(PrivateKey {
            kind: PrivateKind::Rsa(Box::new(key)),
            public,
        })
    }

    /// Reads a PEM private key: `PRIVATE KEY` (PKCS#8, X25519 or RSA) or
    /// `RSA PRIVATE KEY` (PKCS#1), unencrypted.
    pub fn from_pem(text: &str) -> Result<PrivateKey, KeyError> {
        match pem_label(text) {
            Some("PRIVATE KEY") => {
                let (_, doc) = SecretDocument::from_pem(text)
                    .map_err(|e| err(format!("is not a valid PEM private key: {e}")))?;
                let info = PrivateKeyInfo::try_from(doc.as_bytes())
                    .map_err(|e| err(format!("is not a valid PKCS#8 private key: {e}")))?;
                if info.algorithm.oid == X25519_OID {
                    // RFC 8410: the key is an OCTET STRING inside the OCTET STRING.
                    let inner = OctetStringRef::from_der(info.private_key)
                        .map_err(|e| err(format!("holds a malformed X25519 key: {e}")))?;
                    let bytes: [u8; 32] = inner
                        .as_bytes()
                        .try_into()
                        .map_err(|_| err("holds an X25519 key that is not 32 bytes"))?;
                    let secret = x25519_dalek::StaticSecret::from(bytes);
                    let public = PublicKey::x25519(x25519_dalek::PublicKey::from(&secret).to_bytes());
                    Ok(PrivateKey {
                        kind: PrivateKind::X25519(secret),
                        public,
                    })
                } else if info.algorithm.oid == RSA_OID {
                    let key = RsaPrivateKey::from_pkcs8_der(doc.as_bytes())
                        .map_err(|e| err(format!("is not a valid RSA private key: {e}")))?;
                    PrivateKey::rsa(key)
                } else {
                    Err(err(format!(
                        "is {} private key; recordings are sealed for X25519 or RSA keys",
                        algorithm_name(info.algorithm.oid)
                    )))
                }
            }
            Some("RSA PRIVATE KEY") => {
                let key = RsaPrivateKey::from_pkcs1_pem(text)
                    .map_err(|e| err(format!("is not a valid RSA private key: {e}")))?;
                PrivateKey::rsa(key)
            }
            Some("ENCRYPTED PRIVATE KEY") => Err(err(
                "is encrypted with a passphrase; write an unencrypted copy to a private place first \
                 (openssl pkey -in KEY.pem -out plain.pem)",
            )),
            Some(l) if l.contains("PUBLIC KEY") => Err(err(
                "is a public key; decrypting needs the matching private key",
            )),
            Some(l) => Err(err(format!(
                "is a PEM \"{l}\", not a private key; expected \"-----BEGIN PRIVATE KEY-----\""
            ))),
            None => Err(err(
                "is not a PEM file; expected \"-----BEGIN PRIVATE KEY-----\" (X25519 or RSA)",
            )),
        }
    }

    /// Reads a PEM private key file; errors name the file.
    pub fn load(path: &Path) -> Result<PrivateKey, KeyError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?,
        );
        PrivateKey::from_pem(&text).map_err(|e| err(format!("{} {e}", path.display())))
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Unwraps a data key wrapped by [`PublicKey::wrap`].
    pub fn unwrap(
        &self,
        algorithm: Algorithm,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let bad = || err("the wrapped data key does not open with this private key");
        match (&self.kind, algorithm) {
            (PrivateKind::X25519(secret), Algorithm::X25519) => {
                if wrapped.len() != X25519_WRAPPED_LEN {
                    return Err(bad());
                }
                let mut eph = [0u8; 32];
                eph.copy_from_slice(&wrapped[..32]);
                let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(eph));
                let me = x25519_dalek::PublicKey::from(secret);
                let kek = x25519_kek(shared.as_bytes(), &eph, me.as_bytes());
                let mut key = Zeroizing::new([0u8; 32]);
                key.copy_from_slice(&wrapped[32..64]);
                let tag = aes_gcm::Tag::from_slice(&wrapped[64..]);
                Aes256Gcm::new((&*kek).into())
                    .decrypt_in_place_detached(&Nonce::default(), WRAP_AAD, &mut key[..], tag)
                    .map_err(|_| bad())?;
                Ok(key)
            }
            (PrivateKind::Rsa(k), Algorithm::RsaOaep) => {
                let plain = Zeroizing::new(
                    k.decrypt(Oaep::new::<Sha256>(), wrapped)
                        .map_err(|_| bad())?,
                );
                let mut key = Zeroizing::new([0u8; 32]);
                if plain.len() != 32 {
                    return Err(bad());
                }
                key.copy_from_slice(&plain);
                Ok(key)
            }
            _ => Err(err(format!(
                "the data key is wrapped for a different kind of key ({}); this is a {} key",
                algorithm.name(),
                self.public.describe()
            ))),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // Generated once with `openssl genpkey -algorithm X25519`, `openssl
    // genrsa 2048` and `openssl genrsa 1024` (test keys, never used
    // elsewhere): generating RSA keys in a debug build takes too long.
    pub(crate) const X25519_KEY: &str = include_str!("testdata/x25519.key");
    pub(crate) const X25519_PUB: &str = include_str!("testdata/x25519.pub");
    pub(crate) const RSA_KEY: &str = include_str!("testdata/rsa2048.key");
    pub(crate) const RSA_PUB: &str = include_str!("testdata/rsa2048.pub");
    const RSA_PKCS1_KEY: &str = include_str!("testdata/rsa2048.pkcs1.key");
    const RSA1024_PUB: &str = include_str!("testdata/rsa1024.pub");
    const ED25519_PUB: &str = include_str!("testdata/ed25519.pub");

    #[test]
    fn x25519_wraps_and_unwraps() {
        let public = PublicKey::from_pem(X25519_PUB).unwrap();
        let private = PrivateKey::from_pem(X25519_KEY).unwrap();
        assert_eq!(public.algorithm(), Algorithm::X25519);
        assert_eq!(public.fingerprint(), private.public().fingerprint());
        let key = [7u8; 32];
        let w1 = public.wrap(&key).unwrap();
        let w2 = public.wrap(&key).unwrap();
        assert_eq!(w1.len(), X25519_WRAPPED_LEN);
        assert_ne!(w1, w2, "a fresh ephemeral key each time");
        assert_eq!(*private.unwrap(Algorithm::X25519, &w1).unwrap(), key);
        let mut bad = w1.clone();
        bad[40] ^= 1;
        assert!(private.unwrap(Algorithm::X25519, &bad).is_err());
        assert!(private.unwrap(Algorithm::RsaOaep, &w1).is_err());
    }

    #[test]
    fn rsa_wraps_and_unwraps_in_both_pem_forms() {
        let public = PublicKey::from_pem(RSA_PUB).unwrap();
        assert_eq!(public.describe(), "RSA-2048");
        let private = PrivateKey::from_pem(RSA_KEY).unwrap();
        let pkcs1 = PrivateKey::from_pem(RSA_PKCS1_KEY).unwrap();
        assert_eq!(public.fingerprint(), private.public().fingerprint());
        assert_eq!(public.fingerprint(), pkcs1.public().fingerprint());
        let key = [9u8; 32];
        let w = public.wrap(&key).unwrap();
        assert_eq!(w.len(), 256);
        assert_eq!(*pkcs1.unwrap(Algorithm::RsaOaep, &w).unwrap(), key);
        let other = PrivateKey::from_pem(X25519_KEY).unwrap();
        assert!(other.unwrap(Algorithm::RsaOaep, &w).is_err());
    }

    #[test]
    fn refuses_small_rsa_other_algorithms_and_private_keys_as_public() {
        let e = PublicKey::from_pem(RSA1024_PUB).unwrap_err();
        assert!(e.0.contains("1024 bits") && e.0.contains("2048"), "{e}");
        let e = PublicKey::from_pem(ED25519_PUB).unwrap_err();
        assert!(e.0.contains("Ed25519"), "{e}");
        let e = PublicKey::from_pem(X25519_KEY).unwrap_err();
        assert!(e.0.contains("is a private key"), "{e}");
        let e = PrivateKey::from_pem(X25519_PUB).unwrap_err();
        assert!(e.0.contains("is a public key"), "{e}");
        let e = PublicKey::from_pem("hello").unwrap_err();
        assert!(e.0.contains("not a PEM file"), "{e}");
        let e = PublicKey::load(Path::new("/nonexistent/k.pub")).unwrap_err();
        assert!(e.0.contains("/nonexistent/k.pub"), "{e}");
    }
}
