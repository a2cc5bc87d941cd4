use std::path::PathBuf;

use super::keys::tests::{RSA_KEY, RSA_PUB, X25519_KEY, X25519_PUB};
use super::*;

fn recipient(public: &str) -> Recipient {
    let public_key = PublicKey::from_pem(public).unwrap();
    Recipient {
        key_id: public_key.fingerprint().to_string(),
        public_key,
        tenant: "default".into(),
    }
}

fn x25519() -> (RecordingKey, PrivateKey) {
    (
        RecordingKey::new(&recipient(X25519_PUB), "rec-1").unwrap(),
        PrivateKey::from_pem(X25519_KEY).unwrap(),
    )
}

/// A file of three data chunks and, when `finish`, the final chunk.
fn sealed_file(dir: &Path, key: &RecordingKey, finish: bool) -> (PathBuf, Vec<u8>) {
    let p = dir.join("a.bin.sealed");
    let mut w = SealedWriter::create(&p, key, "a.bin", Content::Bytes).unwrap();
    let mut all = Vec::new();
    for i in 0..3u8 {
        let part = vec![i; 100 + i as usize];
        w.chunk(&part).unwrap();
        all.extend_from_slice(&part);
    }
    w.chunk(&[]).unwrap();
    if finish {
        w.finish(b"end").unwrap();
        all.extend_from_slice(b"end");
        w.finish(b"ignored").unwrap();
    }
    (p, all)
}

fn open(p: &Path, key: &PrivateKey) -> Result<(Vec<u8>, StreamSummary), OpenError> {
    let mut out = Vec::new();
    let (_, s) = decrypt(std::fs::File::open(p).unwrap(), key, &mut out)?;
    Ok((out, s))
}

#[test]
fn round_trip_with_x25519_and_rsa() {
    let dir = tempfile::tempdir().unwrap();
    for (public, private) in [(X25519_PUB, X25519_KEY), (RSA_PUB, RSA_KEY)] {
        let key = RecordingKey::new(&recipient(public), "rec-1").unwrap();
        let private = PrivateKey::from_pem(private).unwrap();
        let (p, plain) = sealed_file(dir.path(), &key, true);
        let (out, s) = open(&p, &private).unwrap();
        assert_eq!(out, plain);
        assert_eq!(
            s,
            StreamSummary {
                chunks: 4,
                bytes: plain.len() as u64,
                complete: true,
                torn_bytes: 0
            }
        );
        let raw = std::fs::read(&p).unwrap();
        assert!(
            !raw.windows(100).any(|w| w == [0u8; 100]),
            "no plaintext on disk"
        );
        let (h, scanned) = scan(std::fs::File::open(&p).unwrap()).unwrap();
        assert_eq!(scanned, s);
        assert_eq!(
            (h.name.as_str(), h.recording_id.as_str()),
            ("a.bin", "rec-1")
        );
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn every_chunk_is_authenticated() {
    let dir = tempfile::tempdir().unwrap();
    let (key, private) = x25519();
    let (p, _) = sealed_file(dir.path(), &key, true);
    let raw = std::fs::read(&p).unwrap();
    let (_, header) = read_header(&mut raw.as_slice()).unwrap();
    // Flip one byte in each chunk's ciphertext: that chunk fails, and
    // nothing of it is written out.
    let mut at = header.len();
    for index in 0..4u32 {
        let ct_len = u32::from_be_bytes(raw[at..at + 4].try_into().unwrap()) as usize;
        let mut bad = raw.clone();
        bad[at + 5 + ct_len / 2] ^= 0x40;
        std::fs::write(&p, &bad).unwrap();
        let e = open(&p, &private).unwrap_err();
        assert!(
            matches!(e, OpenError::Chunk { index: i } if i == index),
            "{e}"
        );
        at += 5 + ct_len;
    }
    // Marking a middle chunk final is caught too (the flag is in the nonce).
    let mut bad = raw.clone();
    bad[header.len() + 4] = FLAG_FINAL;
    std::fs::write(&p, &bad).unwrap();
    assert!(matches!(
        open(&p, &private),
        Err(OpenError::Chunk { index: 0 })
    ));
    // So is a change to the header (its digest is in every chunk's AAD).
    let mut bad = raw.clone();
    let name_at = raw.windows(5).position(|w| w == b"a.bin").unwrap();
    bad[name_at] = b'b';
    std::fs::write(&p, &bad).unwrap();
    assert!(matches!(
        open(&p, &private),
        Err(OpenError::Chunk { index: 0 })
    ));
}

#[test]
fn chunks_cannot_be_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let (key, private) = x25519();
    let p = dir.path().join("x.sealed");
    let mut w = SealedWriter::create(&p, &key, "x", Content::Bytes).unwrap();
    w.chunk(b"aaaa").unwrap();
    w.chunk(b"bbbb").unwrap();
    w.finish(b"").unwrap();
    let raw = std::fs::read(&p).unwrap();
    let (_, header) = read_header(&mut raw.as_slice()).unwrap();
    let h = header.len();
    let c = 5 + 4 + 16;
    let mut swapped = raw[..h].to_vec();
    swapped.extend_from_slice(&raw[h + c..h + 2 * c]);
    swapped.extend_from_slice(&raw[h..h + c]);
    swapped.extend_from_slice(&raw[h + 2 * c..]);
    std::fs::write(&p, &swapped).unwrap();
    assert!(matches!(
        open(&p, &private),
        Err(OpenError::Chunk { index: 0 })
    ));
}

#[test]
fn a_stream_cut_short_gives_its_whole_chunks_and_says_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let (key, private) = x25519();
    // Dropped without finishing, as by a crash.
    let (p, plain) = sealed_file(dir.path(), &key, false);
    let (out, s) = open(&p, &private).unwrap();
    assert_eq!(out, plain);
    assert_eq!((s.chunks, s.complete, s.torn_bytes), (3, false, 0));
    // A write torn inside the last chunk: the chunks before it still open.
    let raw = std::fs::read(&p).unwrap();
    for cut in [1usize, 5, 30] {
        std::fs::write(&p, &raw[..raw.len() - cut]).unwrap();
        let (out, s) = open(&p, &private).unwrap();
        assert_eq!(out, plain[..201], "cut {cut}");
        assert_eq!((s.chunks, s.complete), (2, false));
        assert!(s.torn_bytes > 0);
        let (_, scanned) = scan(std::fs::File::open(&p).unwrap()).unwrap();
        assert_eq!(scanned, s);
    }
    // A finished stream cut at a chunk boundary reads as incomplete too.
    std::fs::remove_file(&p).unwrap();
    let (p, _) = sealed_file(dir.path(), &key, true);
    let raw = std::fs::read(&p).unwrap();
    std::fs::write(&p, &raw[..raw.len() - (5 + 3 + 16)]).unwrap();
    let (_, s) = open(&p, &private).unwrap();
    assert_eq!((s.chunks, s.complete), (3, false));
    // Bytes after the final chunk are damage, not a longer stream.
    let mut longer = raw.clone();
    longer.push(0);
    std::fs::write(&p, &longer).unwrap();
    assert!(matches!(open(&p, &private), Err(OpenError::Frame { .. })));
}

#[test]
fn wrong_key_names_the_key_the_file_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = x25519();
    let (p, _) = sealed_file(dir.path(), &key, true);
    let rsa = PrivateKey::from_pem(RSA_KEY).unwrap();
    let e = open(&p, &rsa).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, OpenError::WrongKey { .. }), "{msg}");
    assert!(msg.contains(key.key_id()), "{msg}");
    assert!(msg.contains(rsa.public().fingerprint()), "{msg}");
    assert!(matches!(
        decrypt(&b"RIFF...."[..], &rsa, &mut Vec::new()),
        Err(OpenError::NotSealed)
    ));
}

#[test]
fn seal_file_replaces_atomically_and_large_writes_split() {
    let dir = tempfile::tempdir().unwrap();
    let (key, private) = x25519();
    let p = dir.path().join("meta.json.sealed");
    seal_file(&p, &key, "meta.json", Content::Bytes, b"{\"v\":1}").unwrap();
    seal_file(&p, &key, "meta.json", Content::Bytes, b"{\"v\":2}").unwrap();
    let (out, s) = open(&p, &private).unwrap();
    assert_eq!((out.as_slice(), s.complete), (&b"{\"v\":2}"[..], true));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let big = vec![5u8; MAX_CHUNK + 10];
    let q = dir.path().join("big.sealed");
    let mut w = SealedWriter::create(&q, &key, "big", Content::Bytes).unwrap();
    w.finish(&big).unwrap();
    assert_eq!(w.chunks(), 2);
    let (out, s) = open(&q, &private).unwrap();
    assert_eq!((out.len(), s.complete), (big.len(), true));
}
