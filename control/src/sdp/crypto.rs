//! SDES key exchange: `a=crypto` (RFC 4568 §9.1).
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]
//! key-params  = "inline:" <base64 key || salt> ["|" lifetime] ["|" MKI ":" length]
//! ```
//!
//! What the recorder can use: one key (no MKI), a suite the data plane
//! decrypts (`mediafork_dataplane::srtp::Suite`), a lifetime within SRTP's
//! 2^48 packets, and no session parameter that changes the transform
//! (`UNENCRYPTED_SRTP`, `UNAUTHENTICATED_SRTP`, a non-zero `KDR`).
//! Everything else is parsed and reported as a refusal reason instead.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};
use mediafork_dataplane::srtp::{MasterKey, Suite};

/// Base64 as SBCs write it: with or without the trailing `=` padding.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One `a=crypto` line the recorder can decrypt with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdesCrypto {
    pub tag: u32,
    pub suite: Suite,
    /// The suite as written in the offer (echoed in the answer).
    pub suite_name: String,
    /// The offerer's master key and salt: what its packets are protected with.
    pub master: MasterKey,
}

impl SdesCrypto {
    /// Parse the value of an `a=crypto` attribute; `Err` says why the
    /// recorder cannot use it (a short phrase for logs and 488 reasons).
    pub fn parse(value: &str) -> Result<SdesCrypto, &'static str> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite_name), Some(key_params)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err("malformed a=crypto");
        };
        let tag: u32 = tag
            .parse()
            .ok()
            .filter(|t| *t < 1_000_000_000)
            .ok_or("bad a=crypto tag")?;
        let suite = Suite::from_sdes_name(suite_name).ok_or("unsupported SRTP crypto suite")?;
        for param in fields {
            let name = param.split('=').next().unwrap_or_default();
            match name.to_ascii_uppercase().as_str() {
                // Hints and choices the receiver needs nothing for: the E
                // flag of each SRTCP packet says whether it is encrypted.
                "WSH" | "FEC_ORDER" | "UNENCRYPTED_SRTCP" => {}
                "KDR" if param.ends_with("=0") => {}
                _ => return Err("unsupported SRTP session parameter"),
            }
        }
        if key_params.contains(';') {
            return Err("several SRTP keys (MKI) are not supported");
        }
        let info = key_params
            .strip_prefix("inline:")
            .or_else(|| {
                key_params
                    .get(..7)
                    .filter(|m| m.eq_ignore_ascii_case("inline:"))
                    .map(|_| &key_params[7..])
            })
            .ok_or("unsupported SRTP key method (not inline)")?;
        let mut parts = info.split('|');
        let key = parts.next().unwrap_or_default();
        let mut lifetime_seen = false;
        for part in parts {
            if part.contains(':') {
                return Err("SRTP MKI is not supported");
            }
            if lifetime_seen {
                return Err("malformed a=crypto key parameters");
            }
            lifetime_seen = true;
            check_lifetime(part)?;
        }
        let bytes = B64.decode(key).map_err(|_| "bad a=crypto key (base64)")?;
        let master = MasterKey::new(suite, &bytes).map_err(|_| "bad a=crypto key length")?;
        Ok(SdesCrypto {
            tag,
            suite,
            suite_name: suite_name.to_string(),
            master,
        })
    }

    /// The answer's `a=crypto` value: the offer's tag and suite with a
    /// fresh key of ours (RFC 4568 §7.1.2 requires one even though the
    /// recorder never sends media).
    pub fn answer_value(&self) -> Result<String, &'static str> {
        let mut material = [0u8; 46];
        let n = self.suite.key_len() + self.suite.salt_len();
        getrandom::fill(&mut material[..n]).map_err(|_| "no randomness for an SRTP key")?;
        Ok(format!(
            "{} {} inline:{}",
            self.tag,
            self.suite_name,
            base64::engine::general_purpose::STANDARD.encode(&material[..n])
        ))
    }
}

/// `2^N` or a decimal count of packets; SRTP allows at most 2^48.
fn check_lifetime(s: &str) -> Result<(), &'static str> {
    let packets: Option<u128> = match s.strip_prefix("2^") {
        Some(exp) => exp
            .parse::<u32>()
            .ok()
            .filter(|e| *e <= 64)
            .map(|e| 1u128 << e),
        None => s.parse::<u64>().ok().map(u128::from),
    };
    match packets {
        None => Err("bad SRTP key lifetime"),
        Some(0) => Err("bad SRTP key lifetime"),
        Some(p) if p > 1u128 << 48 => Err("unsupported SRTP key lifetime (above 2^48)"),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §7.1.1's example offer line.
    const RFC4568: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";

    #[test]
    fn parses_rfc_4568_example_and_vendor_shapes() {
        let c = SdesCrypto::parse(RFC4568).unwrap();
        assert_eq!((c.tag, c.suite), (1, Suite::AesCm128HmacSha1_80));
        assert_eq!(c.master.key_and_salt().len(), 30);
        assert_eq!(&c.master.key()[..3], b"=-n");
        // CUCM: _32 with 2^31; no lifetime; no padding; GCM; 256-bit.
        let key30 = B64.encode([7u8; 30]);
        for (line, suite) in [
            (
                format!("1 AES_CM_128_HMAC_SHA1_32 inline:{key30}|2^31"),
                Suite::AesCm128HmacSha1_32,
            ),
            (
                format!("2 AES_CM_128_HMAC_SHA1_80 inline:{key30}"),
                Suite::AesCm128HmacSha1_80,
            ),
            (
                format!(
                    "3 AES_CM_128_HMAC_SHA1_80 inline:{} WSH=64",
                    key30.trim_end_matches('=')
                ),
                Suite::AesCm128HmacSha1_80,
            ),
            (
                format!("4 AEAD_AES_128_GCM inline:{}", B64.encode([1u8; 28])),
                Suite::AeadAes128Gcm,
            ),
            (
                format!(
                    "5 AES_256_CM_HMAC_SHA1_80 inline:{}|1048576",
                    B64.encode([1u8; 46])
                ),
                Suite::AesCm256HmacSha1_80,
            ),
            (
                format!("6 AEAD_AES_256_GCM inline:{}", B64.encode([1u8; 44])),
                Suite::AeadAes256Gcm,
            ),
        ] {
            assert_eq!(
                SdesCrypto::parse(&line).map(|c| c.suite),
                Ok(suite),
                "{line}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_decrypt() {
        let key30 = B64.encode([7u8; 30]);
        for (line, why) in [
            (format!("1 F8_128_HMAC_SHA1_80 inline:{key30}"), "suite"),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key30}|2^20|1:4"),
                "MKI",
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key30}|1:4"),
                "MKI",
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key30}|1:4;inline:{key30}|2:4"),
                "MKI",
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key30}|2^50"),
                "lifetime",
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key30}|2^x"),
                "lifetime",
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key30} UNENCRYPTED_SRTP"),
                "parameter",
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key30} KDR=10"),
                "parameter",
            ),
            (format!("1 AEAD_AES_128_GCM inline:{key30}"), "length"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!".to_string(), "base64"),
            ("1 AES_CM_128_HMAC_SHA1_80".to_string(), "malformed"),
            (format!("x AES_CM_128_HMAC_SHA1_80 inline:{key30}"), "tag"),
        ] {
            let e = SdesCrypto::parse(&line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn answer_has_a_fresh_key_of_the_same_suite() {
        let c = SdesCrypto::parse(RFC4568).unwrap();
        let a = c.answer_value().unwrap();
        let b = c.answer_value().unwrap();
        assert_ne!(a, b);
        let back = SdesCrypto::parse(&a).unwrap();
        assert_eq!((back.tag, back.suite), (1, c.suite));
        assert_ne!(back.master, c.master);
        assert!(a.starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"), "{a}");
    }
}
