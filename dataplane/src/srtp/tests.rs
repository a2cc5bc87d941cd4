//! Known-answer tests from the RFCs and libsrtp, and behaviour tests:
//! round trips for every suite, replay, forgery, rollover.

use super::cipher::SessionKeys;
use super::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A session keyed with session keys directly (the vectors give those).
fn session_from_keys(suite: Suite, key: &str, salt: &str) -> SrtpSession {
    let (k, s) = (unhex(key), unhex(salt));
    let master = MasterKey::new(suite, &vec![0; suite.key_len() + suite.salt_len()]).unwrap();
    SrtpSession {
        suite,
        master,
        rtp: SessionKeys::from_session(suite, &k, &s),
        rtcp: SessionKeys::from_session(suite, &k, &s),
    }
}

// RFC 3711 Appendix B.2: the AES-CM keystream for session key
// 2B7E..., salt F0F1...FCFD, SSRC 0, index 0, over the whole 65282-block
// segment the RFC tabulates.
#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let keys = SessionKeys::from_session(
        Suite::AesCm128HmacSha1_80,
        &unhex("2B7E151628AED2A6ABF7158809CF4F3C"),
        &unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"),
    );
    let iv = keys.cm_iv(0, 0);
    assert_eq!(iv.to_vec(), unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
    let mut stream = vec![0u8; 65282 * 16];
    keys.cipher.cm_apply(&iv, &mut stream);
    assert_eq!(
        stream[..48].to_vec(),
        unhex(
            "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB
             41E95B3BB0A2E8DD477901E4FCA894C0"
        )
    );
    let tail = &stream[stream.len() - 48..];
    assert_eq!(
        tail.to_vec(),
        unhex(
            "EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE
             6A2CC3787889374FBEB4C81B17BA6C44"
        )
    );
}

// RFC 3711 Appendix B.3: session keys from master key E1F9... and salt
// 0EC6..., key derivation rate 0.
#[test]
fn rfc3711_b3_key_derivation() {
    let key = unhex("E1F97A0D3E018BE0D64FA32C06DE4139");
    let salt = unhex("0EC675AD498AFEEBB6960B3AABE6");
    let mut enc = [0u8; 16];
    kdf::derive(&key, &salt, 0, &mut enc);
    assert_eq!(enc.to_vec(), unhex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut s = [0u8; 14];
    kdf::derive(&key, &salt, 2, &mut s);
    assert_eq!(s.to_vec(), unhex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 94];
    kdf::derive(&key, &salt, 1, &mut auth);
    assert_eq!(
        auth.to_vec(),
        unhex(
            "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
        )
    );
}

const LIBSRTP_MASTER: &str = "E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6";

// libsrtp's srtp_validate reference packets (a real SRTP implementation's
// output, AES_CM_128_HMAC_SHA1_80 with the B.3 master key): RTP and SRTCP,
// both directions.
#[test]
fn libsrtp_reference_packets() {
    let master = MasterKey::new(Suite::AesCm128HmacSha1_80, &unhex(LIBSRTP_MASTER)).unwrap();
    let plain = unhex("800f1234decafbadcafebabe abababababababababababababababab");
    let protected =
        unhex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
    let mut tx = SrtpContext::from_master(&master);
    let mut buf = [0u8; 64];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n].to_vec(), protected);

    let mut rx = SrtpContext::from_master(&master);
    let mut p = protected.clone();
    let n = rx.unprotect_rtp(&mut p).unwrap();
    assert_eq!(p[..n].to_vec(), plain);

    let rtcp = unhex("81c8000bcafebabe abababababababababababababababab");
    let srtcp =
        unhex("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798");
    let mut buf = [0u8; 64];
    buf[..rtcp.len()].copy_from_slice(&rtcp);
    let n = tx.protect_rtcp(1, &mut buf, rtcp.len()).unwrap();
    assert_eq!(buf[..n].to_vec(), srtcp);
    let mut p = srtcp.clone();
    let n = rx.unprotect_rtcp(&mut p).unwrap();
    assert_eq!(p[..n].to_vec(), rtcp);
    let mut again = srtcp.clone();
    assert_eq!(rx.unprotect_rtcp(&mut again), Err(SrtpError::Replay));
}

const GCM_PLAIN: &str = "8040f17b8041f8d35501a0b2
    47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573";

// RFC 7714 §16.1.1 (AEAD_AES_128_GCM) and §16.2.1 (AEAD_AES_256_GCM):
// encryption of "Gallia est omnis divisa in partes tres" and back.
#[test]
fn rfc7714_16_gcm_vectors() {
    let cases = [
        (
            Suite::AeadAes128Gcm,
            "000102030405060708090a0b0c0d0e0f",
            "8040f17b8041f8d35501a0b2 f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833
             899d7f27beb16a9152cf765ee4390cce",
        ),
        (
            Suite::AeadAes256Gcm,
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "8040f17b8041f8d35501a0b2 32b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b
             7aa3db36dfffd6b0f9bb7878d7a76c13",
        ),
    ];
    for (suite, key, expected) in cases {
        let s = Arc::new(session_from_keys(suite, key, "517569642070726f2071756f"));
        assert_eq!(
            s.rtp.gcm_iv(0x5501a0b2, 0xf17b).to_vec(),
            unhex("51753c6580c2726f20718414")
        );
        let plain = unhex(GCM_PLAIN);
        let mut buf = [0u8; 128];
        buf[..plain.len()].copy_from_slice(&plain);
        let mut tx = SrtpContext::new(s.clone());
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        assert_eq!(buf[..n].to_vec(), unhex(expected), "{suite}");
        let mut rx = SrtpContext::new(s);
        let mut p = unhex(expected);
        let n = rx.unprotect_rtp(&mut p).unwrap();
        assert_eq!(p[..n].to_vec(), plain, "{suite}");
        let mut tampered = unhex(expected);
        tampered[20] ^= 1;
        let mut rx2 = SrtpContext::new(rx.session().clone());
        assert_eq!(rx2.unprotect_rtp(&mut tampered), Err(SrtpError::AuthFailed));
    }
}

fn master_for(suite: Suite) -> MasterKey {
    let material: Vec<u8> = (0..suite.key_len() + suite.salt_len())
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
        .collect();
    MasterKey::new(suite, &material).unwrap()
}

/// An RTP packet (PCMU, 160 bytes of payload) with `seq`.
fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160).map(|i| (i as u8) ^ (seq as u8)));
    p
}

fn protect(tx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; plain.len() + 16];
    buf[..plain.len()].copy_from_slice(plain);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn every_suite_round_trips_rtp_and_rtcp() {
    for suite in Suite::ALL {
        assert_eq!(Suite::from_sdes_name(suite.sdes_name()), Some(suite));
        let master = master_for(suite);
        let mut tx = SrtpContext::from_master(&master);
        let mut rx = SrtpContext::from_master(&master);
        for seq in 1000..1010u16 {
            let plain = rtp(seq, 0x1234_5678);
            let mut wire = protect(&mut tx, &plain);
            assert_eq!(wire.len(), plain.len() + suite.rtp_tag_len());
            assert_ne!(wire[12..172], plain[12..], "{suite}: payload encrypted");
            let n = rx.unprotect_rtp(&mut wire).unwrap();
            assert_eq!(wire[..n], plain[..], "{suite}");
        }
        // Header extension and CSRCs are authenticated, not encrypted.
        let mut plain = vec![0x91, 8, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 1, 2, 3, 4];
        plain.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]);
        plain.extend_from_slice(b"payload");
        let mut tx2 = SrtpContext::from_master(&master);
        let mut rx2 = SrtpContext::from_master(&master);
        let mut wire = protect(&mut tx2, &plain);
        assert_eq!(wire[..24], plain[..24]);
        let n = rx2.unprotect_rtp(&mut wire).unwrap();
        assert_eq!(wire[..n], plain[..]);

        let rtcp = [0x80, 201, 0, 1, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4];
        let mut buf = [0u8; 64];
        buf[..rtcp.len()].copy_from_slice(&rtcp);
        let n = tx.protect_rtcp(7, &mut buf, rtcp.len()).unwrap();
        let mut wire = buf[..n].to_vec();
        let n = rx.unprotect_rtcp(&mut wire).unwrap();
        assert_eq!(wire[..n], rtcp[..], "{suite}");
    }
}

#[test]
fn replays_are_refused_and_reordering_is_not() {
    for suite in Suite::ALL {
        let master = master_for(suite);
        let mut tx = SrtpContext::from_master(&master);
        let mut rx = SrtpContext::from_master(&master);
        let wires: Vec<Vec<u8>> = (0..100u16).map(|s| protect(&mut tx, &rtp(s, 1))).collect();
        for i in [0usize, 2, 1, 3, 90, 50] {
            let mut w = wires[i].clone();
            rx.unprotect_rtp(&mut w).unwrap();
        }
        for i in [0usize, 2, 90, 50] {
            let mut w = wires[i].clone();
            assert_eq!(
                rx.unprotect_rtp(&mut w),
                Err(SrtpError::Replay),
                "{suite} {i}"
            );
            assert_eq!(w, wires[i], "a refused packet is left as it was");
        }
        // 90 - 64: anything at or before 26 is behind the window.
        let mut w = wires[20].clone();
        assert_eq!(rx.unprotect_rtp(&mut w), Err(SrtpError::Replay));
        let mut w = wires[27].clone();
        rx.unprotect_rtp(&mut w).unwrap();
    }
}

#[test]
fn forgeries_fail_and_do_not_move_the_window() {
    for suite in Suite::ALL {
        let master = master_for(suite);
        let mut tx = SrtpContext::from_master(&master);
        let mut rx = SrtpContext::from_master(&master);
        let wires: Vec<Vec<u8>> = (0..10u16).map(|s| protect(&mut tx, &rtp(s, 1))).collect();
        let mut w = wires[0].clone();
        rx.unprotect_rtp(&mut w).unwrap();
        // Flip a bit in the header, the payload, and the tag.
        for at in [3usize, 40, wires[1].len() - 1] {
            let mut w = wires[1].clone();
            w[at] ^= 0x10;
            assert_eq!(
                rx.unprotect_rtp(&mut w),
                Err(SrtpError::AuthFailed),
                "{suite} {at}"
            );
        }
        // A forged packet far ahead (sequence number jumped by 28,672)
        // must not poison the window or the rollover counter.
        let mut forged = wires[2].clone();
        forged[2] = 0x70;
        assert_eq!(rx.unprotect_rtp(&mut forged), Err(SrtpError::AuthFailed));
        assert_eq!(rx.rtp_index(), Some(0));
        for w in &wires[1..] {
            let mut w = w.clone();
            rx.unprotect_rtp(&mut w).unwrap();
        }
        // Another key: every packet fails.
        let mut other = SrtpContext::from_master(&master_for(Suite::AesCm128HmacSha1_32));
        if suite != Suite::AesCm128HmacSha1_32 {
            let mut w = wires[3].clone();
            assert!(other.unprotect_rtp(&mut w).is_err());
        }
        // Truncated below header + tag.
        let mut short = wires[4][..12 + suite.rtp_tag_len() - 1].to_vec();
        assert_eq!(rx.unprotect_rtp(&mut short), Err(SrtpError::Malformed));
    }
}

#[test]
fn rollover_counter_follows_sequence_wrap() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm] {
        let master = master_for(suite);
        let mut tx = SrtpContext::from_master(&master);
        let mut rx = SrtpContext::from_master(&master);
        // Three wraps, with a packet reordered across each one. Steps of 7
        // keep the test short; near the wrap, steps of 1 so that 65535 and 3
        // are always sent.
        let mut seq: u16 = 65_000;
        let mut wraps = 0;
        let mut held: Option<(Vec<u8>, Vec<u8>)> = None;
        while wraps < 3 || seq < 20 {
            let plain = rtp(seq, 9);
            let wire = protect(&mut tx, &plain);
            if seq == 65_535 {
                held = Some((plain, wire));
                wraps += 1;
            } else {
                let mut w = wire.clone();
                let n = rx
                    .unprotect_rtp(&mut w)
                    .unwrap_or_else(|e| panic!("{seq}: {e}"));
                assert_eq!(w[..n], plain[..]);
                if seq == 3 {
                    let (p, mut w) = held.take().unwrap();
                    let n = rx.unprotect_rtp(&mut w).unwrap();
                    assert_eq!(w[..n], p[..], "late packet from before the wrap");
                }
            }
            seq = if (65_520..=65_535).contains(&seq) || seq < 10 {
                seq.wrapping_add(1)
            } else {
                seq.wrapping_add(7)
            };
        }
        assert!(rx.rtp_index().unwrap() > 3 * 65_536, "{suite}");
    }
}

#[test]
fn master_key_length_is_checked_and_never_printed() {
    assert_eq!(
        MasterKey::new(Suite::AesCm128HmacSha1_80, &[0; 29]),
        Err(SrtpError::KeyLength(30))
    );
    assert_eq!(
        MasterKey::new(Suite::AeadAes256Gcm, &[0; 30]),
        Err(SrtpError::KeyLength(44))
    );
    let k = master_for(Suite::AesCm128HmacSha1_80);
    assert_eq!(k.key().len(), 16);
    assert_eq!(k.salt().len(), 14);
    let shown = format!("{k:?} {:?}", SrtpSession::new(&k));
    assert!(!shown.contains("11"), "{shown}");
    assert_eq!(
        Suite::from_sdes_name("aes_cm_256_hmac_sha1_80"),
        Some(Suite::AesCm256HmacSha1_80)
    );
    assert_eq!(Suite::from_sdes_name("F8_128_HMAC_SHA1_80"), None);
}
