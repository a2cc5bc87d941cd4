//! An SRTP sender for tests: protects RTP and RTCP with SDES keys the way
//! an SBC forking SRTP to a recorder does, and writes the `a=crypto` value
//! its offer carries. Built on the data plane's SRTP contexts
//! (`mediafork_dataplane::srtp`), which are checked against RFC 3711,
//! RFC 7714 and libsrtp vectors; this module's own test checks the sender
//! end against libsrtp's reference packet.

use mediafork_dataplane::srtp::SrtpContext;
pub use mediafork_dataplane::srtp::{MasterKey, Suite};

use crate::rtp::RtpPacket;

/// One SRTP stream's sending end (one SSRC).
pub struct SrtpSender {
    master: MasterKey,
    ctx: SrtpContext,
    rtcp_index: u32,
}

impl SrtpSender {
    /// A sender for `suite` with key material derived from `seed` (same
    /// seed, same key: tests stay deterministic).
    pub fn new(suite: Suite, seed: u64) -> SrtpSender {
        let n = suite.key_len() + suite.salt_len();
        let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
        let material: Vec<u8> = (0..n)
            .map(|_| {
                // splitmix64: enough to make distinct keys per seed.
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) as u8
            })
            .collect();
        SrtpSender::with_key(MasterKey::new(suite, &material).expect("length fits the suite"))
    }

    /// A sender with a given master key and salt.
    pub fn with_key(master: MasterKey) -> SrtpSender {
        SrtpSender {
            ctx: SrtpContext::from_master(&master),
            master,
            rtcp_index: 0,
        }
    }

    /// The suite in use.
    pub fn suite(&self) -> Suite {
        self.master.suite()
    }

    /// The value of the `a=crypto` attribute offering this key under `tag`
    /// (RFC 4568: `<tag> <suite> inline:<base64 key||salt>|2^31`).
    pub fn crypto_attribute(&self, tag: u32) -> String {
        format!(
            "{tag} {} inline:{}|2^31",
            self.suite().sdes_name(),
            base64(self.master.key_and_salt())
        )
    }

    /// The SRTP packet for `rtp`. Packets must be protected in sending
    /// order for the rollover counter to follow sequence wraps.
    pub fn protect(&mut self, rtp: &RtpPacket) -> Vec<u8> {
        self.protect_bytes(&rtp.to_bytes())
    }

    /// The SRTP packet for an RTP packet given as bytes.
    pub fn protect_bytes(&mut self, rtp: &[u8]) -> Vec<u8> {
        let mut buf = rtp.to_vec();
        buf.resize(rtp.len() + self.suite().rtp_tag_len(), 0);
        let n = self
            .ctx
            .protect_rtp(&mut buf, rtp.len())
            .expect("a well-formed RTP packet");
        buf.truncate(n);
        buf
    }

    /// The SRTCP packet for `rtcp` (encrypted; SRTCP index 1, 2, ...).
    pub fn protect_rtcp(&mut self, rtcp: &[u8]) -> Vec<u8> {
        self.rtcp_index += 1;
        let mut buf = rtcp.to_vec();
        buf.resize(rtcp.len() + 4 + self.suite().rtcp_tag_len(), 0);
        let n = self
            .ctx
            .protect_rtcp(self.rtcp_index, &mut buf, rtcp.len())
            .expect("a well-formed RTCP packet");
        buf.truncate(n);
        buf
    }
}

/// Standard base64 with padding (RFC 4648 §4), as `inline:` keys use.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // libsrtp's reference packet, keyed with the RFC 3711 B.3 master key.
    #[test]
    fn sends_what_libsrtp_sends() {
        let master = MasterKey::new(
            Suite::AesCm128HmacSha1_80,
            &unhex("E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6"),
        )
        .unwrap();
        let mut tx = SrtpSender::with_key(master);
        let rtp = RtpPacket::new(0x0f, 0x1234, 0xdecafbad, 0xcafebabe, vec![0xab; 16]);
        assert_eq!(
            tx.protect(&rtp),
            unhex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb")
        );
        assert_eq!(
            tx.protect_rtcp(&unhex("81c8000bcafebabe abababababababababababababababab")),
            unhex(
                "81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798"
            )
        );
        assert_eq!(
            tx.crypto_attribute(1),
            "1 AES_CM_128_HMAC_SHA1_80 inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm|2^31"
        );
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_ne!(
            SrtpSender::new(Suite::AeadAes128Gcm, 1).crypto_attribute(1),
            SrtpSender::new(Suite::AeadAes128Gcm, 2).crypto_attribute(1)
        );
    }
}
