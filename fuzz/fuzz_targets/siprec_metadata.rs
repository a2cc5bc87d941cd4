//! RFC 7865 recording metadata XML (and the vendor variants).
//!
//! Invariants: the limits hold (document size, element count), every
//! entity found can be looked up again, and the result serialises (it is
//! written to meta.json).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_control::siprec::metadata::{self, MAX_METADATA_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(meta) = metadata::parse(data) else {
        return;
    };
    assert!(data.len() <= MAX_METADATA_LEN);
    for p in &meta.participants {
        assert!(meta.participant(&p.id).is_some());
        let _ = (p.aor_uri(), p.aor_user());
    }
    for s in &meta.streams {
        assert!(meta.stream(&s.id).is_some());
        if let Some(label) = &s.label {
            assert!(meta.stream_by_label(label).is_some());
            let _ = meta.senders_of_label(label);
        }
    }
    for (name, _) in &meta.extensions {
        assert!(meta.extension(name).is_some());
    }
    serde_json::to_string(&meta).expect("metadata serialises");
    assert_eq!(
        metadata::parse(data).as_ref(),
        Ok(&meta),
        "parse is not deterministic"
    );
});
