use super::*;
use proptest::prelude::*;

const RFC7865_FULL: &[u8] = include_bytes!("../../../tests/fixtures/metadata/rfc7865_full.xml");
const DRAFT_AOR: &[u8] = include_bytes!("../../../tests/fixtures/metadata/draft_aor_elements.xml");
const PARTIAL: &[u8] = include_bytes!("../../../tests/fixtures/metadata/partial_update.xml");
const BILLION_LAUGHS: &[u8] = include_bytes!("../../../tests/fixtures/metadata/billion_laughs.xml");
const EXTERNAL_ENTITY: &[u8] =
    include_bytes!("../../../tests/fixtures/metadata/external_entity.xml");

fn ids(ps: &[&Participant]) -> Vec<String> {
    ps.iter().map(|p| p.id.clone()).collect()
}

#[test]
fn rfc7865_document() {
    let m = parse(RFC7865_FULL).unwrap();
    assert_eq!(m.datamode.as_deref(), Some("complete"));
    assert_eq!(m.group_id.as_deref(), Some("7+OTCyoxTmqmqyA/1weDAg=="));
    assert_eq!(m.sessions.len(), 1);
    let s = &m.sessions[0];
    assert_eq!(s.id, "hVpd7YQgRW2nD22h7q60JQ==");
    assert_eq!(
        s.sip_session_ids,
        vec![
            "ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2",
            "d5a0e8c4b3f2a1e0d9c8b7a6f5e4d3c2"
        ]
    );
    assert_eq!(s.group_ref.as_deref(), Some("7+OTCyoxTmqmqyA/1weDAg=="));
    assert_eq!(s.start_time.as_deref(), Some("2010-12-16T23:41:07Z"));
    assert_eq!(s.associate_time.as_deref(), Some("2010-12-16T23:41:07Z"));
    assert_eq!(m.streams.len(), 4);
    assert_eq!(m.participants.len(), 2);

    let bob = m.participant("srfBElmCRp2QB23b7Mpk0w==").unwrap();
    assert_eq!(bob.aor.as_deref(), Some("sip:bob@biloxi.example.com"));
    assert_eq!(bob.name.as_deref(), Some("Bob"));
    assert_eq!(bob.session_ids, vec!["hVpd7YQgRW2nD22h7q60JQ=="]);
    assert_eq!(bob.send.len(), 2);
    assert_eq!(bob.recv.len(), 2);
    assert_eq!(
        bob.extensions,
        vec![
            ("mydata/structure".to_owned(), "FOO!".to_owned()),
            ("mydata/whatever".to_owned(), "bar".to_owned())
        ]
    );
    let alice = m.participant("zSfPoSvdSDCmU3A3TRDxAw==").unwrap();
    assert_eq!(alice.name.as_deref(), Some("Alice <A&B>"), "CDATA is text");

    assert_eq!(
        ids(&m.senders_of_label("96")),
        vec!["zSfPoSvdSDCmU3A3TRDxAw=="]
    );
    assert_eq!(
        ids(&m.senders_of_label("97")),
        vec!["srfBElmCRp2QB23b7Mpk0w=="]
    );
    assert_eq!(
        ids(&m.senders_of_label(" 98 ")),
        vec!["zSfPoSvdSDCmU3A3TRDxAw=="]
    );
    assert!(m.senders_of_label("100").is_empty());
    assert_eq!(
        m.stream_by_label("99").unwrap().id,
        "EiXGlc+4TruqqoDaNE76ag=="
    );

    // Extensions in a default foreign namespace have no prefix; nesting
    // gives a path. The group's call-center and mydata, the session's and
    // the participant's mydata.
    let names: Vec<&str> = m.extensions.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "call-center/supervisor",
            "mydata/structure",
            "mydata/whatever",
            "mydata/structure",
            "mydata/whatever",
            "mydata/structure",
            "mydata/whatever"
        ]
    );
    assert_eq!(
        m.extension("call-center/supervisor"),
        Some("sip:supervisor@atlanta.example.com")
    );
    assert_eq!(s.extensions.len(), 2);
    assert_eq!(bob.extensions.len(), 2);
    // Serialisable for the recording's sidecar file.
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.contains("\"sip_session_ids\""));
}

#[test]
fn early_draft_with_aor_elements() {
    let m = parse(DRAFT_AOR).unwrap();
    let p1 = m.participant("p1").unwrap();
    assert_eq!(p1.aor.as_deref(), Some("sip:+15555550101@192.0.2.40"));
    assert_eq!(p1.name.as_deref(), Some("Caller"));
    assert_eq!(p1.session_ids, vec!["s1"]);
    let p2 = m.participant("p2").unwrap();
    assert_eq!(p2.aor_uri().as_deref(), Some("sip:2001@192.0.2.41"));
    assert_eq!(p2.aor_user().as_deref(), Some("2001"));
    assert_eq!(p1.aor_user().as_deref(), Some("+15555550101"));
    assert_eq!(ids(&m.senders_of_label("a_leg")), vec!["p1"]);
    assert_eq!(ids(&m.senders_of_label("b_leg")), vec!["p2"]);
    assert_eq!(m.stream("st1").unwrap().mode.as_deref(), Some("separate"));
    assert_eq!(m.sessions[0].id, "s1");
}

#[test]
fn partial_update_associations_before_entities() {
    let m = parse(PARTIAL).unwrap();
    assert_eq!(m.datamode.as_deref(), Some("partial"));
    assert_eq!(m.participants.len(), 1);
    let p = &m.participants[0];
    assert_eq!(p.aor.as_deref(), Some("sip:transfer-target@192.0.2.44"));
    assert_eq!(p.send, vec!["c3RyZWFtLTE="]);
    assert!(m.streams.is_empty());
}

#[test]
fn refuses_doctype_and_entities() {
    assert_eq!(parse(BILLION_LAUGHS), Err(MetadataError::DoctypeForbidden));
    assert_eq!(parse(EXTERNAL_ENTITY), Err(MetadataError::DoctypeForbidden));
    let undeclared = b"<recording><datamode>&xxe;</datamode></recording>";
    assert!(matches!(parse(undeclared), Err(MetadataError::Xml(_))));
    let undeclared_attr = b"<recording><session session_id='&xxe;'/></recording>";
    assert!(matches!(parse(undeclared_attr), Err(MetadataError::Xml(_))));
    // The predefined entities and character references are fine.
    let ok = parse(b"<recording><datamode>&lt;c&#x6F;mplete&gt;</datamode></recording>").unwrap();
    assert_eq!(ok.datamode.as_deref(), Some("<complete>"));
}

#[test]
fn limits_and_malformed_documents() {
    let deep = format!(
        "<recording>{}{}</recording>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    assert_eq!(
        parse(deep.as_bytes()),
        Err(MetadataError::TooDeep { max: MAX_DEPTH })
    );
    let deep_empty = format!(
        "<recording>{}<b/>{}</recording>",
        "<a>".repeat(31),
        "</a>".repeat(31)
    );
    assert_eq!(
        parse(deep_empty.as_bytes()),
        Err(MetadataError::TooDeep { max: MAX_DEPTH })
    );
    let wide = format!("<recording>{}</recording>", "<x/>".repeat(MAX_ELEMENTS));
    assert_eq!(
        parse(wide.as_bytes()),
        Err(MetadataError::TooManyElements { max: MAX_ELEMENTS })
    );
    let big = vec![b' '; MAX_METADATA_LEN + 1];
    assert!(matches!(parse(&big), Err(MetadataError::TooLarge { .. })));
    assert_eq!(
        parse(b"<recording>\xff</recording>"),
        Err(MetadataError::NotUtf8)
    );
    assert_eq!(parse(b""), Err(MetadataError::Empty));
    assert_eq!(parse(b"<?xml version='1.0'?>  "), Err(MetadataError::Empty));
    assert!(matches!(
        parse(b"<recording><session>"),
        Err(MetadataError::Xml(_))
    ));
    assert!(matches!(
        parse(b"<recording></session>"),
        Err(MetadataError::Xml(_))
    ));
    assert!(matches!(
        parse(b"<recording/><recording/>"),
        Err(MetadataError::Xml(_))
    ));
    assert!(matches!(
        parse(b"junk<recording/>"),
        Err(MetadataError::Xml(_))
    ));
    assert_eq!(
        parse(b"<html><body/></html>"),
        Err(MetadataError::UnexpectedRoot("html".to_owned()))
    );
    // A UTF-8 BOM is fine.
    assert!(parse(b"\xEF\xBB\xBF<recording/>").is_ok());
    // Entities without ids are skipped, not fatal.
    let m =
        parse(b"<recording><participant/><stream><label>1</label></stream></recording>").unwrap();
    assert!(m.participants.is_empty() && m.streams.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn mutated_documents_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        which in 0usize..3,
    ) {
        let mut bytes = [RFC7865_FULL, DRAFT_AOR, PARTIAL][which].to_vec();
        for (index, byte) in edits {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        if let Ok(m) = parse(&bytes) {
            for s in &m.streams {
                if let Some(label) = &s.label {
                    let _ = m.senders_of_label(label);
                }
            }
            for p in &m.participants {
                let _ = (p.aor_uri(), p.aor_user());
            }
        }
    }

    #[test]
    fn xml_like_text_never_panics(text in "(<[a-z:]{0,6}( [a-z_]{1,4}=['\"][^<]{0,6}['\"])?/?>|</[a-z:]{0,6}>|[^<]{0,8}|&[a-z#0-9]{0,4};?){0,40}") {
        let _ = parse(text.as_bytes());
    }
}
