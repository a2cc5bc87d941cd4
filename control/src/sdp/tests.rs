use super::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

const OFFER: &str = "v=0\r\n\
o=SRC 2890844526 2890844527 IN IP4 192.0.2.10\r\n\
s=SIPREC\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
a=sendonly\r\n\
m=audio 16800 RTP/AVP 0 8 18 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=label:1\r\n\
m=audio 16802/2 RTP/SAVP 96\r\n\
c=IN IP4 192.0.2.11\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=rtcp:16803\r\n\
a=rtcp-mux\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n\
a=inactive\r\n\
a=label:2\r\n\
m=video 0 RTP/AVP 31\r\n";

#[test]
fn parses_an_offer() {
    let sdp = Sdp::parse(OFFER).unwrap();
    assert_eq!(sdp.version, 0);
    assert_eq!(sdp.origin.username, "SRC");
    assert_eq!(sdp.origin.sess_version_num(), Some(2890844527));
    assert_eq!(sdp.session_name, "SIPREC");
    assert_eq!(
        sdp.connection.as_ref().unwrap().addr,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))
    );
    assert_eq!(sdp.session_direction(), Some(Direction::SendOnly));
    assert_eq!(sdp.media.len(), 3);

    let a = &sdp.media[0];
    assert_eq!(a.kind, MediaKind::Audio);
    assert_eq!((a.port, a.port_count), (16800, None));
    assert_eq!(a.proto, "RTP/AVP");
    assert_eq!(a.formats, vec!["0", "8", "18", "101"]);
    assert_eq!(a.payload_types(), vec![0, 8, 18, 101]);
    assert_eq!(
        a.direction(),
        Direction::SendOnly,
        "inherited from the session"
    );
    assert_eq!(a.media_direction(), None);
    assert_eq!(a.label(), Some("1"));
    assert_eq!(a.codec_for(0), Some(("PCMU", 8000)));
    assert_eq!(a.codec_for(18), Some(("G729", 8000)));
    assert_eq!(a.codec_for(101), Some(("telephone-event", 8000)));
    assert_eq!(a.codec_for(96), None);
    assert_eq!(a.fmtp_for("101"), Some("0-15"));
    assert_eq!(a.ptime, Some(20));
    assert!(!a.rtcp_mux);
    assert_eq!(
        a.effective_connection(&sdp).unwrap().addr.to_string(),
        "192.0.2.10"
    );

    let b = &sdp.media[1];
    assert_eq!((b.port, b.port_count), (16802, Some(2)));
    assert_eq!(b.direction(), Direction::Inactive);
    assert_eq!(b.rtpmaps[0].channels, Some(2));
    assert_eq!(b.codec_for(96), Some(("opus", 48000)));
    assert_eq!(b.rtcp, Some(16803));
    assert!(b.rtcp_mux);
    assert_eq!(b.crypto.len(), 1);
    assert!(b.crypto[0].starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert_eq!(
        b.effective_connection(&sdp).unwrap().addr.to_string(),
        "192.0.2.11"
    );
    assert_eq!(sdp.media_by_label("2").map(|m| m.port), Some(16802));

    assert!(sdp.media[2].is_disabled());
    assert_eq!(sdp.media[2].kind.as_str(), "video");
}

#[test]
fn lenient_with_sloppy_sbcs() {
    // Bare LF, trailing whitespace, blank lines, no s=/t=, unknown lines,
    // uppercase direction, ptime with a fraction.
    let text = "v=0\no=- 1 1 IN IP4 198.51.100.7  \n\nc=IN IP4 198.51.100.7\ny=0123456789\nm=audio 4000 RTP/AVP 8\t\na=SENDONLY\na=ptime:20.0\na=x-unknown:whatever\n";
    let sdp = Sdp::parse(text).unwrap();
    assert_eq!(sdp.unknown_lines, vec!["y=0123456789"]);
    let m = &sdp.media[0];
    assert_eq!(m.direction(), Direction::SendOnly);
    assert_eq!(m.ptime, Some(20));
    assert_eq!(m.attribute("x-unknown"), Some("whatever"));
    // Default direction is sendrecv.
    let sdp = Sdp::parse("v=0\no=- 1 1 IN IP4 0.0.0.0\nm=audio 0 RTP/AVP\n").unwrap();
    assert_eq!(sdp.media[0].direction(), Direction::SendRecv);
    assert!(sdp.media[0].formats.is_empty());
}

#[test]
fn errors_name_the_line() {
    let base = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
    let cases = [
        (
            base.replace("5004", "99999"),
            "SDP line 6: bad m= port (m=audio 99999 RTP/AVP 0)",
        ),
        (
            base.replace("5004", "x"),
            "SDP line 6: bad m= port (m=audio x RTP/AVP 0)",
        ),
        (
            base.replace("5004 RTP/AVP 0", "5004"),
            "SDP line 6: malformed m= line (m=audio 5004)",
        ),
        (
            base.replace("c=IN IP4 192.0.2.1", "c=IN IP4 192.0.2.300"),
            "SDP line 4: bad c= address (c=IN IP4 192.0.2.300)",
        ),
        (
            base.replace("c=IN IP4 192.0.2.1", "c=IN IP6 192.0.2.1"),
            "SDP line 4: c= address does not match its address type (c=IN IP6 192.0.2.1)",
        ),
        (
            base.replace("c=IN IP4 192.0.2.1", "c=IN IP4"),
            "SDP line 4: malformed c= line (c=IN IP4)",
        ),
        (
            format!("{base}a=rtpmap:200 foo/8000\r\n"),
            "SDP line 7: malformed a=rtpmap (a=rtpmap:200 foo/8000)",
        ),
        (
            format!("{base}a=rtcp:abc\r\n"),
            "SDP line 7: bad a=rtcp port (a=rtcp:abc)",
        ),
        (
            format!("{base}--boundary\r\n"),
            "SDP line 7: not a <type>=<value> line (--boundary)",
        ),
        (
            base.replace("o=- 1 1 IN IP4 192.0.2.1\r\n", ""),
            "SDP has no o= line",
        ),
        (base.replace("v=0", "v=1"), "unsupported SDP version 1"),
        (base.replace("v=0\r\n", ""), "SDP does not start with v="),
        ("\r\n \r\n".to_owned(), "SDP is empty"),
    ];
    for (text, expected) in cases {
        assert_eq!(Sdp::parse(&text).unwrap_err().to_string(), expected);
    }
}

#[test]
fn round_trips_through_display() {
    let sdp = Sdp::parse(OFFER).unwrap();
    let text = sdp.to_string();
    assert!(text.ends_with("\r\n"));
    assert!(!text.replace("\r\n", "").contains('\n'));
    assert_eq!(Sdp::parse(&text).unwrap(), sdp);
}

#[test]
fn builds_an_answer() {
    let offer = Sdp::parse(OFFER).unwrap();
    let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20));
    let mut answer = Sdp::new(
        Origin::new("mediafork", "42", "1", ip),
        Some(Connection::new(ip)),
    );
    for (i, m) in offer.media.iter().enumerate() {
        let mut a = MediaDescription::new(
            m.kind.clone(),
            40000 + 2 * i as u16,
            &m.proto,
            vec!["0".into()],
        );
        a.push_attribute("rtpmap", Some("0 PCMU/8000")).unwrap();
        a.set_direction(m.direction().recorder_answer());
        if let Some(label) = m.label() {
            a.push_attribute("label", Some(label)).unwrap();
        }
        answer.push_media(a);
    }
    let text = answer.to_string();
    assert!(text.starts_with("v=0\r\no=mediafork 42 1 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\na=label:1\r\n"));
    let parsed = Sdp::parse(&text).unwrap();
    assert_eq!(parsed.media[1].direction(), Direction::Inactive);
    assert_eq!(parsed.media[0].rtpmaps.len(), 1);

    let mut m = parsed.media[0].clone();
    assert!(m.push_attribute("rtpmap", Some("nonsense")).is_err());
    assert_eq!(m.remove_attribute("rtpmap"), 1);
    assert!(m.rtpmaps.is_empty());
    assert_eq!(m.codec_for(0), Some(("PCMU", 8000)));
}

#[test]
fn directions() {
    assert_eq!(Direction::SendOnly.recorder_answer(), Direction::RecvOnly);
    assert_eq!(Direction::SendRecv.recorder_answer(), Direction::RecvOnly);
    assert_eq!(Direction::Inactive.recorder_answer(), Direction::Inactive);
    assert_eq!(Direction::RecvOnly.recorder_answer(), Direction::Inactive);
    assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
    assert_eq!(
        Direction::from_attribute("Inactive"),
        Some(Direction::Inactive)
    );
    assert_eq!(Direction::from_attribute("label"), None);
}

#[test]
fn connection_forms() {
    let c = Connection::parse("IN IP4 233.252.0.1/127/3").unwrap();
    assert_eq!((c.ttl, c.num_addrs), (Some(127), Some(3)));
    assert_eq!(c.to_string(), "IN IP4 233.252.0.1/127/3");
    let c = Connection::parse("IN IP6 2001:db8::1").unwrap();
    assert!(c.addr.is_ipv6());
    assert_eq!(
        Connection::parse("IN IP6 ff15::101/3").unwrap().num_addrs,
        Some(3)
    );
    assert!(Connection::parse("IN IP4 recorder.example.com").is_err());
    assert!(Connection::parse("IN IPX 192.0.2.1").is_err());
    assert!(Connection::parse("IN IP4 192.0.2.1/x").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = Sdp::parse(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = Sdp::parse_bytes(&bytes);
    }

    #[test]
    fn mutated_offers_never_panic_and_reparse(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
    ) {
        let mut bytes = OFFER.as_bytes().to_vec();
        for (index, byte) in edits {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        if let Ok(sdp) = Sdp::parse_bytes(&bytes) {
            for m in &sdp.media {
                let _ = (m.direction(), m.label(), m.effective_connection(&sdp), m.codec_for(0));
            }
            let again = Sdp::parse(&sdp.to_string());
            prop_assert!(again.is_ok(), "{:?}", again);
        }
    }
}
