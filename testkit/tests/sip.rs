//! SIP builders checked with a small independent parser: framing (CRLF,
//! Content-Length), multipart structure (RFC 2046 delimiters, closing
//! boundary), SDP content and the metadata's label/participant mapping.

use mediafork_testkit::sip::{
    self, ack, bye, cucm_invites, ok_200, ok_200_bye, siprec_invite, to_tag, CallSpec, CucmParty,
    CucmRecording, CucmStream, OfferedStream, Vendor,
};
use std::collections::HashMap;

const ALL: [Vendor; 5] = [
    Vendor::Generic,
    Vendor::CiscoCube,
    Vendor::AcmePacket,
    Vendor::Ribbon,
    Vendor::Plain,
];

struct Msg {
    start: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Msg {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parse a message, asserting CRLF-only line endings and an exact
/// Content-Length.
fn parse(text: &str) -> Msg {
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            assert!(
                i > 0 && text.as_bytes()[i - 1] == b'\r',
                "bare LF at byte {i}"
            );
        }
        if b == b'\r' {
            assert_eq!(
                text.as_bytes().get(i + 1),
                Some(&b'\n'),
                "bare CR at byte {i}"
            );
        }
    }
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap().to_string();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            assert!(!k.contains(' '), "header name {k:?}");
            (k.to_string(), v.trim().to_string())
        })
        .collect();
    let m = Msg {
        start,
        headers,
        body: body.to_string(),
    };
    let cl: usize = m
        .header("Content-Length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(cl, m.body.len(), "Content-Length equals the body length");
    for required in ["Via", "From", "To", "Call-ID", "CSeq"] {
        assert!(
            m.header(required).is_some(),
            "{required} missing in {}",
            m.start
        );
    }
    assert!(m.header("Via").unwrap().contains(";branch=z9hG4bK"));
    m
}

struct Part {
    headers: HashMap<String, String>,
    content: String,
}

/// Split a multipart body per RFC 2046: the first delimiter opens the body,
/// each later one is preceded by CRLF, the last is `--boundary--`.
fn parts(body: &str, boundary: &str) -> Vec<Part> {
    let open = format!("--{boundary}\r\n");
    assert!(body.starts_with(&open), "body opens with the delimiter");
    let delim = format!("\r\n--{boundary}");
    let rest = &body[open.len()..];
    let mut out = Vec::new();
    let mut closed = false;
    for (i, seg) in rest.split(delim.as_str()).enumerate() {
        if i > 0 && seg.starts_with("--") {
            assert_eq!(seg, "--\r\n", "closing delimiter ends the body");
            closed = true;
            break;
        }
        let seg = if i > 0 {
            seg.strip_prefix("\r\n")
                .expect("delimiter line ends with CRLF")
        } else {
            seg
        };
        let (h, content) = seg.split_once("\r\n\r\n").expect("part header separator");
        let headers = h
            .split("\r\n")
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        out.push(Part {
            headers,
            content: content.to_string(),
        });
    }
    assert!(closed, "multipart boundary is closed");
    out
}

fn boundary_of(content_type: &str) -> String {
    let b = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("boundary parameter");
    b.trim_matches('"').to_string()
}

#[derive(Debug, PartialEq)]
struct Media {
    port: u16,
    pt: u8,
    label: Option<String>,
    direction: Option<String>,
    rtpmap: Option<String>,
}

fn sdp_media(sdp: &str) -> (String, Vec<Media>) {
    assert!(sdp.starts_with("v=0\r\n"));
    let mut session_c = String::new();
    let mut media: Vec<Media> = Vec::new();
    for line in sdp.split("\r\n").filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once('=').expect("SDP line");
        match (k, media.last_mut()) {
            ("c", None) => session_c = v.to_string(),
            ("c", Some(_)) => session_c = v.to_string(), // per-media c= (Ribbon)
            ("m", _) => {
                let f: Vec<&str> = v.split(' ').collect();
                assert_eq!(f[0], "audio");
                assert_eq!(f[2], "RTP/AVP");
                media.push(Media {
                    port: f[1].parse().unwrap(),
                    pt: f[3].parse().unwrap(),
                    label: None,
                    direction: None,
                    rtpmap: None,
                });
            }
            ("a", Some(m)) => {
                if let Some(l) = v.strip_prefix("label:") {
                    m.label = Some(l.to_string());
                } else if let Some(r) = v.strip_prefix("rtpmap:") {
                    let (pt, enc) = r.split_once(' ').unwrap();
                    assert_eq!(pt.parse::<u8>().unwrap(), m.pt);
                    m.rtpmap = Some(enc.to_string());
                } else if ["sendonly", "recvonly", "sendrecv", "inactive"].contains(&v) {
                    m.direction = Some(v.to_string());
                }
            }
            _ => {}
        }
    }
    (session_c, media)
}

/// Every opened element is closed in order (enough to catch a builder bug;
/// not a full XML parser).
fn assert_balanced_xml(xml: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        let j = rest[i..].find('>').expect("unterminated tag") + i;
        let tag = &rest[i + 1..j];
        rest = &rest[j + 1..];
        if tag.starts_with('?') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched close");
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap().to_string());
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(!xml.contains("&&"), "unescaped ampersand");
}

/// The text of the first `<tag ...>...</tag>` (tag may carry a prefix)
/// starting at or after `from`.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let a = s.find(open)? + open.len();
    let b = s[a..].find(close)? + a;
    Some(&s[a..b])
}

/// label of the stream each participant (in document order) sends.
fn sent_labels(xml: &str, vendor: Vendor) -> Vec<String> {
    let p = if vendor == Vendor::Ribbon { "tns:" } else { "" };
    let label_of = |stream_id: &str| -> String {
        let key = if vendor == Vendor::AcmePacket {
            format!("<stream id=\"{stream_id}\"")
        } else {
            format!("<{p}stream stream_id=\"{stream_id}\"")
        };
        let block = &xml[xml.find(&key).expect("stream element")..];
        between(block, &format!("<{p}label>"), &format!("</{p}label>"))
            .unwrap()
            .to_string()
    };
    let blocks: Vec<&str> = if vendor == Vendor::AcmePacket {
        xml.split("<participant ").skip(1).collect()
    } else {
        xml.split(&format!("<{p}participantstreamassoc "))
            .skip(1)
            .collect()
    };
    blocks
        .iter()
        .map(|b| label_of(between(b, &format!("<{p}send>"), &format!("</{p}send>")).unwrap()))
        .collect()
}

fn call(vendor: Vendor) -> CallSpec {
    CallSpec {
        call_id: "8f1c2d3e@192.0.2.1".into(),
        from_tag: "abc123".into(),
        src_sip: "192.0.2.1:5060".parse().unwrap(),
        dst_sip: "198.51.100.7:5080".parse().unwrap(),
        streams: vec![
            OfferedStream {
                label: "caller-leg".into(),
                port: 20000,
                payload_type: 8,
                rtpmap: Some("PCMA/8000".into()),
            },
            OfferedStream {
                label: "callee-leg".into(),
                port: 20002,
                payload_type: 0,
                rtpmap: None,
            },
        ],
        answer_ports: vec![40000, 40002],
        media_addr: "198.51.100.8".parse().unwrap(),
        vendor,
    }
}

#[test]
fn invites_are_well_framed_for_every_vendor() {
    for vendor in ALL {
        let c = call(vendor);
        let m = parse(&siprec_invite(&c));
        assert!(m.start.starts_with("INVITE sip:"), "{vendor:?}");
        assert!(
            m.start.ends_with("@198.51.100.7:5080 SIP/2.0"),
            "{vendor:?}: {}",
            m.start
        );
        assert_eq!(m.header("Call-ID"), Some("8f1c2d3e@192.0.2.1"));
        assert!(m.header("From").unwrap().ends_with(";tag=abc123"));
        assert!(m.header("CSeq").unwrap().ends_with(" INVITE"));
        let ct = m.header("Content-Type").unwrap();
        let sdp_text = if vendor == Vendor::Plain {
            assert_eq!(ct, "application/sdp");
            assert!(m.header("Require").is_none());
            m.body.clone()
        } else {
            assert!(ct.starts_with("multipart/mixed"), "{vendor:?}");
            assert_eq!(m.header("Require"), Some("siprec"));
            assert!(m.header("Contact").unwrap().ends_with(";+sip.src"));
            let b = boundary_of(ct);
            assert_eq!(Some(b.as_str()), sip::boundary(vendor));
            let ps = parts(&m.body, &b);
            let expected_parts = if vendor == Vendor::CiscoCube { 3 } else { 2 };
            assert_eq!(ps.len(), expected_parts, "{vendor:?}");
            assert_eq!(ps[0].headers["content-type"], "application/sdp");
            assert_eq!(ps[1].headers["content-type"], "application/rs-metadata+xml");
            assert_eq!(ps[1].headers["content-disposition"], "recording-session");
            if vendor == Vendor::CiscoCube {
                assert_eq!(ps[2].headers["content-type"], "application/gtd");
                assert!(m.header("Cisco-Guid").is_some());
                assert!(m.header("Session-ID").unwrap().contains(";remote="));
            }
            ps[0].content.clone()
        };
        let (c_line, media) = sdp_media(&sdp_text);
        assert_eq!(
            c_line, "IN IP4 192.0.2.1",
            "{vendor:?}: offer's c= is the SRC"
        );
        assert_eq!(media.len(), 2);
        assert_eq!((media[0].port, media[0].pt), (20000, 8));
        assert_eq!((media[1].port, media[1].pt), (20002, 0));
        assert_eq!(media[0].rtpmap.as_deref(), Some("PCMA/8000"));
        assert_eq!(media[1].rtpmap, None);
        for md in &media {
            assert_eq!(md.direction.as_deref(), Some("sendonly"), "{vendor:?}");
        }
        if vendor == Vendor::Plain {
            assert!(media.iter().all(|m| m.label.is_none()));
        } else {
            assert_eq!(media[0].label.as_deref(), Some("caller-leg"));
            assert_eq!(media[1].label.as_deref(), Some("callee-leg"));
        }
    }
}

#[test]
fn metadata_maps_participants_to_labels() {
    for vendor in [
        Vendor::Generic,
        Vendor::CiscoCube,
        Vendor::AcmePacket,
        Vendor::Ribbon,
    ] {
        let c = call(vendor);
        let m = parse(&siprec_invite(&c));
        let ps = parts(&m.body, &boundary_of(m.header("Content-Type").unwrap()));
        let xml = &ps[1].content;
        assert_eq!(xml, &sip::metadata(&c));
        assert_balanced_xml(xml);
        assert_eq!(
            sent_labels(xml, vendor),
            vec!["caller-leg".to_string(), "callee-leg".to_string()],
            "{vendor:?}: caller sends stream 0, callee stream 1"
        );
        let ns = match vendor {
            Vendor::Generic | Vendor::CiscoCube => "\"urn:ietf:params:xml:ns:recording:1\"",
            Vendor::AcmePacket => "'urn:ietf:params:xml:ns:recording'",
            _ => "\"urn:ietf:params:xml:ns:recording\"",
        };
        assert!(xml.contains(ns), "{vendor:?} namespace");
        match vendor {
            Vendor::AcmePacket => {
                assert!(xml.contains("<apkt:ucid>") && xml.contains(";encoding=hex</apkt:ucid>"));
                assert!(xml.contains("<mode>separate</mode>"));
            }
            Vendor::Ribbon => {
                assert!(xml.contains("<tns:recording xmlns:tns="));
                assert!(xml.contains("<callData xmlns="));
                assert!(!xml.contains("aor=\"sip:"), "Ribbon AORs carry no scheme");
            }
            Vendor::CiscoCube => assert!(xml.contains("urn:x-cisco:parameters:xml:ns:callinfo")),
            _ => assert!(xml.contains("<participantstreamassoc")),
        }
    }
}

#[test]
fn answers_and_dialog_messages() {
    for vendor in ALL {
        let c = call(vendor);
        let ok = parse(&ok_200(&c));
        assert_eq!(ok.start, "SIP/2.0 200 OK");
        assert_eq!(ok.header("Content-Type"), Some("application/sdp"));
        assert!(ok
            .header("To")
            .unwrap()
            .ends_with(&format!(";tag={}", to_tag(&c))));
        let inv = parse(&siprec_invite(&c));
        assert_eq!(
            ok.header("Via"),
            inv.header("Via"),
            "response copies the INVITE's Via"
        );
        assert_eq!(ok.header("CSeq"), inv.header("CSeq"));
        let (c_line, media) = sdp_media(&ok.body);
        assert_eq!(c_line, "IN IP4 198.51.100.8");
        assert_eq!(
            media.iter().map(|m| m.port).collect::<Vec<_>>(),
            vec![40000, 40002]
        );
        assert!(media
            .iter()
            .all(|m| m.direction.as_deref() == Some("recvonly")));
        if vendor != Vendor::Plain {
            assert_eq!(media[0].label.as_deref(), Some("caller-leg"));
            assert_eq!(media[1].label.as_deref(), Some("callee-leg"));
        }

        let invite_cseq: u32 = inv
            .header("CSeq")
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let a = parse(&ack(&c));
        assert!(a.start.starts_with("ACK sip:"));
        assert_eq!(
            a.header("CSeq"),
            Some(format!("{invite_cseq} ACK").as_str())
        );
        assert_ne!(
            a.header("Via"),
            inv.header("Via"),
            "ACK to 2xx is a new transaction"
        );
        assert_eq!(a.body, "");
        let b = parse(&bye(&c));
        assert!(b.start.starts_with("BYE sip:"));
        assert_eq!(
            b.header("CSeq"),
            Some(format!("{} BYE", invite_cseq + 1).as_str())
        );
        assert_eq!(b.header("To"), ok.header("To"));
        let bo = parse(&ok_200_bye(&c));
        assert_eq!(bo.start, "SIP/2.0 200 OK");
        assert_eq!(bo.header("Via"), b.header("Via"));
        assert_eq!(bo.header("CSeq"), b.header("CSeq"));
    }
}

#[test]
fn missing_answer_port_rejects_the_stream() {
    let c = CallSpec {
        answer_ports: vec![40000],
        ..call(Vendor::Generic)
    };
    let (_, media) = sdp_media(&parse(&ok_200(&c)).body);
    assert_eq!(media[1].port, 0);
}

#[test]
fn many_streams_alternate_senders() {
    let mut c = call(Vendor::Generic);
    c.streams.push(OfferedStream {
        label: "third".into(),
        port: 20004,
        payload_type: 0,
        rtpmap: None,
    });
    let xml = sip::metadata(&c);
    assert_balanced_xml(&xml);
    // caller sends streams 0 and 2; its first <send> is stream 0
    let caller = xml.split("<participantstreamassoc ").nth(1).unwrap();
    assert_eq!(caller.matches("<send>").count(), 2);
    assert_eq!(caller.matches("<recv>").count(), 1);
}

fn cucm() -> CucmRecording {
    CucmRecording {
        call_ids: ["rec-near@192.0.2.50".into(), "rec-far@192.0.2.50".into()],
        from_tags: ["n1".into(), "f1".into()],
        cucm_sip: "192.0.2.50:5060".parse().unwrap(),
        recorder_sip: "198.51.100.7:5060".parse().unwrap(),
        recorder_dn: "7000".into(),
        cluster_id: "StandAloneCluster".into(),
        near: CucmParty {
            refci: 25164622,
            device: "SEP001122334455".into(),
            dn: "2000".into(),
        },
        far: CucmParty {
            refci: 25164621,
            device: "SEP00AABBCCDDEE".into(),
            dn: "1000".into(),
        },
        phone_media: "192.0.2.60".parse().unwrap(),
        media_ports: [24580, 24582],
        answer_ports: [40010, 40012],
        recorder_media: "198.51.100.7".parse().unwrap(),
        payload_type: 0,
        rtpmap: Some("PCMU/8000".into()),
    }
}

#[test]
fn cucm_invites_carry_recording_parameters() {
    let rec = cucm();
    let [near, far] = cucm_invites(&rec);
    let near = parse(&near);
    let far = parse(&far);
    assert_ne!(near.header("Call-ID"), far.header("Call-ID"));
    assert!(near.start.starts_with("INVITE sip:7000@198.51.100.7:5060 "));
    let nf = near.header("From").unwrap();
    let ff = far.header("From").unwrap();
    assert!(
        nf.starts_with("<sip:2000@192.0.2.50;x-nearend;x-refci=25164622;"),
        "{nf}"
    );
    assert!(
        ff.starts_with("<sip:2000@192.0.2.50;x-farend;x-refci=25164622;"),
        "{ff}"
    );
    for f in [nf, ff] {
        for p in [
            "x-nearendclusterid=StandAloneCluster",
            "x-nearenddevice=SEP001122334455",
            "x-nearendaddr=2000",
            "x-farendrefci=25164621",
            "x-farenddevice=SEP00AABBCCDDEE",
            "x-farendaddr=1000",
        ] {
            assert!(f.contains(&format!(";{p}")), "{p} in {f}");
        }
    }
    assert!(nf.ends_with(">;tag=n1"));
    assert!(ff.ends_with(">;tag=f1"));
    assert_eq!(near.header("Content-Type"), Some("application/sdp"));
    let (c, media) = sdp_media(&near.body);
    assert_eq!(c, "IN IP4 192.0.2.60");
    assert_eq!(media[0].port, 24580);
    assert_eq!(media[0].direction.as_deref(), Some("sendonly"));
    let (_, media) = sdp_media(&far.body);
    assert_eq!(media[0].port, 24582);

    for which in [CucmStream::NearEnd, CucmStream::FarEnd] {
        let ok = parse(&rec.ok_200(which));
        let inv = parse(&rec.invite(which));
        assert_eq!(ok.header("From"), inv.header("From"));
        assert_eq!(
            sdp_media(&ok.body).1[0].direction.as_deref(),
            Some("recvonly")
        );
        let b = parse(&rec.bye(which));
        assert_eq!(b.header("CSeq"), Some("102 BYE"));
        parse(&rec.ack(which));
        parse(&rec.ok_200_bye(which));
    }
}

#[test]
fn ipv6_call_frames_correctly() {
    let c = CallSpec {
        src_sip: "[2001:db8::1]:5060".parse().unwrap(),
        dst_sip: "[2001:db8::7]:5060".parse().unwrap(),
        media_addr: "2001:db8::8".parse().unwrap(),
        ..call(Vendor::Ribbon)
    };
    let m = parse(&siprec_invite(&c));
    assert!(m.start.contains("@[2001:db8::7]:5060 SIP/2.0"));
    let (c_line, _) = sdp_media(&parts(&m.body, "sonus-content-delim")[0].content);
    assert_eq!(c_line, "IN IP6 2001:db8::1");
    let (c_line, _) = sdp_media(&parse(&ok_200(&c)).body);
    assert_eq!(c_line, "IN IP6 2001:db8::8");
}
