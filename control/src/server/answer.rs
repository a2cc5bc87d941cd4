//! The recorder's SDP answer (RFC 3264 as a receive-only endpoint): one
//! answer m-line per offered m-line, in order; recordable audio gets our
//! address and ports, `recvonly` (or `inactive` to mirror `inactive`), its
//! `a=label`, and the payload types the data plane can record; SRTP
//! (`RTP/SAVP` with SDES `a=crypto`) gets the chosen suite and a key of our
//! own; everything else is refused with port 0.

use std::net::IpAddr;

use mediafork_dataplane::codec::Codec;

use crate::media_plan::payload_types;
use crate::sdp::{Connection, Direction, MediaDescription, MediaKind, Origin, SdesCrypto, Sdp};

/// Where one offered m-line will be received, decided by the caller (the
/// port pool), or `None` to refuse it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    pub rtp: u16,
    /// `None` when the offer asked for rtcp-mux and we accept it.
    pub rtcp: Option<u16>,
}

/// What the recorder can do with an offered m-line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Recordable: these payload types (recordable codecs first, then
    /// telephone-event), rtcp-mux wanted or not.
    Record {
        payload_types: Vec<(u8, Codec)>,
        rtcp_mux: bool,
        /// SRTP with SDES: the offered key the stream is decrypted with.
        srtp: Option<SrtpAnswer>,
    },
    /// Refused, and why (for logs and the 488 reason).
    Refuse(&'static str),
}

/// The `a=crypto` chosen from an SRTP m-line, and ours for the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpAnswer {
    pub offered: SdesCrypto,
    /// Value of the answer's `a=crypto` (same tag and suite, our key).
    pub answer: String,
}

/// The first `a=crypto` of `m` the recorder can decrypt with (the offerer
/// lists them in its order of preference, RFC 4568 §7.1.1), or why none.
fn choose_crypto(m: &MediaDescription) -> Result<SrtpAnswer, &'static str> {
    let mut why = "SRTP without SDES keys (no a=crypto; DTLS-SRTP is not supported)";
    for value in &m.crypto {
        match SdesCrypto::parse(value) {
            Ok(offered) => {
                let answer = offered.answer_value()?;
                return Ok(SrtpAnswer { offered, answer });
            }
            Err(e) if why.starts_with("SRTP without") => why = e,
            Err(_) => {}
        }
    }
    Err(why)
}

/// Decide what to do with each offered m-line.
pub fn assess(offer: &Sdp) -> Vec<Verdict> {
    offer
        .media
        .iter()
        .map(|m| {
            if m.kind != MediaKind::Audio {
                return Verdict::Refuse("not audio");
            }
            if m.port == 0 {
                return Verdict::Refuse("disabled in the offer");
            }
            let is = |p: &str| m.proto.eq_ignore_ascii_case(p);
            let srtp = if is("RTP/AVP") || is("RTP/AVPF") {
                None
            } else if is("RTP/SAVP") || is("RTP/SAVPF") {
                match choose_crypto(m) {
                    Ok(c) => Some(c),
                    Err(why) => return Verdict::Refuse(why),
                }
            } else {
                return Verdict::Refuse("transport not supported (RTP/AVP, or RTP/SAVP with SDES)");
            };
            let mut pts = payload_types(m, None);
            // Audio the data plane records first, events after; drop CN.
            pts.retain(|(_, c)| *c != Codec::ComfortNoise);
            pts.sort_by_key(|(_, c)| !c.is_audio());
            if !pts.iter().any(|(_, c)| c.is_audio()) {
                return Verdict::Refuse("no recordable codec (PCMU or PCMA)");
            }
            Verdict::Record {
                payload_types: pts,
                rtcp_mux: m.rtcp_mux,
                srtp,
            }
        })
        .collect()
}

/// Whether at least one m-line can be recorded.
pub fn any_recordable(verdicts: &[Verdict]) -> bool {
    verdicts.iter().any(|v| matches!(v, Verdict::Record { .. }))
}

/// Build the answer. `ports[i]` is where offered m-line `i` is received
/// (`None`: refused). `session_version` must grow with every answer in the
/// dialog (RFC 3264 §8).
pub fn build_answer(
    offer: &Sdp,
    verdicts: &[Verdict],
    ports: &[Option<Ports>],
    media_addr: IpAddr,
    session_id: u64,
    session_version: u64,
) -> Sdp {
    let origin = Origin::new(
        "mediafork",
        &session_id.to_string(),
        &session_version.to_string(),
        media_addr,
    );
    let mut answer = Sdp::new(origin, Some(Connection::new(media_addr)));
    answer.session_name = "mediafork recording".to_string();
    for (i, offered) in offer.media.iter().enumerate() {
        let verdict = verdicts.get(i);
        let port = ports.get(i).copied().flatten();
        let m = match (verdict, port) {
            (
                Some(Verdict::Record {
                    payload_types,
                    rtcp_mux,
                    srtp,
                }),
                Some(p),
            ) => {
                let mut m = recorded_line(offer, offered, payload_types, *rtcp_mux, p);
                if let Some(s) = srtp {
                    let _ = m.push_attribute("crypto", Some(&s.answer));
                }
                m
            }
            _ => refused_line(offered),
        };
        answer.push_media(m);
    }
    answer
}

fn recorded_line(
    offer: &Sdp,
    offered: &MediaDescription,
    pts: &[(u8, Codec)],
    rtcp_mux: bool,
    ports: Ports,
) -> MediaDescription {
    let formats = pts.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut m = MediaDescription::new(MediaKind::Audio, ports.rtp, &offered.proto, formats);
    for (pt, codec) in pts {
        let encoding = offered
            .rtpmaps
            .iter()
            .find(|r| r.payload_type == *pt)
            .map(|r| format!("{}/{}", r.encoding, r.clock_rate))
            .unwrap_or_else(|| format!("{}/{}", codec.name(), codec.clock_rate()));
        let _ = m.push_attribute("rtpmap", Some(&format!("{pt} {encoding}")));
        if let Some(fmtp) = offered.fmtp_for(&pt.to_string()) {
            let _ = m.push_attribute("fmtp", Some(&format!("{pt} {fmtp}")));
        }
    }
    if let Some(label) = offered.label() {
        let _ = m.push_attribute("label", Some(label));
    }
    if rtcp_mux {
        let _ = m.push_attribute("rtcp-mux", None);
    } else if let Some(rtcp) = ports.rtcp.filter(|r| *r != ports.rtp.wrapping_add(1)) {
        let _ = m.push_attribute("rtcp", Some(&rtcp.to_string()));
    }
    if let Some(ptime) = offered.ptime {
        let _ = m.push_attribute("ptime", Some(&ptime.to_string()));
    }
    m.set_direction(answer_direction(offer, offered));
    m
}

/// `recvonly` to `sendonly`/`sendrecv`; `inactive` to `inactive`/`recvonly`
/// and to a hold offered as `c=0.0.0.0` (RFC 2543 style).
pub fn answer_direction(offer: &Sdp, offered: &MediaDescription) -> Direction {
    let held = offered
        .effective_connection(offer)
        .is_some_and(|c| c.addr.is_unspecified());
    if held {
        return Direction::Inactive;
    }
    offered.direction().recorder_answer()
}

fn refused_line(offered: &MediaDescription) -> MediaDescription {
    let formats = if offered.formats.is_empty() {
        vec!["0".to_string()]
    } else {
        offered.formats.clone()
    };
    let mut m = MediaDescription::new(offered.kind.clone(), 0, &offered.proto, formats);
    if let Some(label) = offered.label() {
        let _ = m.push_attribute("label", Some(label));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=SBC 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
        m=audio 20000 RTP/AVP 18 8 0 101 13\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=label:1\r\na=sendonly\r\na=ptime:20\r\n\
        m=audio 20002 RTP/AVP 96\r\na=rtpmap:96 PCMA/8000\r\na=label:2\r\na=inactive\r\n\
        m=video 20004 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n\
        m=audio 20006 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\na=label:3\r\n\
        m=audio 20008 RTP/AVP 18\r\na=label:4\r\n";

    #[test]
    fn answers_every_line_in_order() {
        let offer = Sdp::parse(OFFER).unwrap();
        let v = assess(&offer);
        assert!(
            matches!(&v[0], Verdict::Record { payload_types, .. } if payload_types == &vec![(8, Codec::Pcma), (0, Codec::Pcmu), (101, Codec::TelephoneEvent)])
        );
        assert!(matches!(&v[1], Verdict::Record { .. }));
        assert_eq!(v[2], Verdict::Refuse("not audio"));
        assert!(matches!(v[3], Verdict::Refuse(r) if r.contains("a=crypto")));
        assert!(matches!(v[4], Verdict::Refuse(r) if r.contains("codec")));
        let ports = [
            Some(Ports {
                rtp: 40000,
                rtcp: Some(40001),
            }),
            Some(Ports {
                rtp: 40002,
                rtcp: Some(40003),
            }),
            None,
            None,
            None,
        ];
        let a = build_answer(&offer, &v, &ports, "127.0.0.1".parse().unwrap(), 7, 1);
        let text = a.to_string();
        let reparsed = Sdp::parse(&text).unwrap();
        assert_eq!(reparsed.media.len(), 5);
        assert_eq!(reparsed.media[0].port, 40000);
        assert_eq!(reparsed.media[0].formats, vec!["8", "0", "101"]);
        assert_eq!(reparsed.media[0].direction(), Direction::RecvOnly);
        assert_eq!(reparsed.media[0].label(), Some("1"));
        assert!(text.contains("a=fmtp:101 0-15"), "{text}");
        assert_eq!(reparsed.media[1].direction(), Direction::Inactive);
        assert_eq!(reparsed.media[1].label(), Some("2"));
        for i in 2..5 {
            assert_eq!(reparsed.media[i].port, 0, "line {i} refused");
        }
        assert_eq!(reparsed.media[3].label(), Some("3"));
        assert_eq!(reparsed.connection.unwrap().addr.to_string(), "127.0.0.1");
        assert!(
            !text.contains("a=rtcp:"),
            "default RTCP port needs no attribute: {text}"
        );
    }

    #[test]
    fn hold_with_zero_address_is_answered_inactive() {
        let offer = Sdp::parse("v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\na=sendonly\r\n").unwrap();
        assert_eq!(
            answer_direction(&offer, &offer.media[0]),
            Direction::Inactive
        );
    }

    #[test]
    fn rtcp_mux_is_mirrored() {
        let offer = Sdp::parse("v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\na=rtcp-mux\r\na=sendonly\r\n").unwrap();
        let v = assess(&offer);
        assert!(matches!(&v[0], Verdict::Record { rtcp_mux: true, .. }));
        let a = build_answer(
            &offer,
            &v,
            &[Some(Ports {
                rtp: 40010,
                rtcp: None,
            })],
            "::1".parse().unwrap(),
            1,
            1,
        );
        assert!(a.media[0].rtcp_mux);
        assert!(a.to_string().contains("c=IN IP6 ::1"));
    }

    #[test]
    fn srtp_with_sdes_is_answered_with_our_key() {
        let offer = Sdp::parse("v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
            m=audio 20000 RTP/SAVP 0\r\na=crypto:1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n\
            a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31\r\na=label:1\r\na=sendonly\r\n\
            m=audio 20002 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4\r\n\
            m=audio 20004 RTP/SAVP 0\r\n\
            m=audio 20006 UDP/TLS/RTP/SAVP 0\r\n").unwrap();
        let v = assess(&offer);
        let Verdict::Record { srtp: Some(s), .. } = &v[0] else {
            panic!("{:?}", v[0]);
        };
        assert_eq!(
            (s.offered.tag, s.offered.suite.sdes_name()),
            (2, "AES_CM_128_HMAC_SHA1_32")
        );
        assert!(
            matches!(v[1], Verdict::Refuse(r) if r.contains("MKI")),
            "{:?}",
            v[1]
        );
        assert!(
            matches!(v[2], Verdict::Refuse(r) if r.contains("a=crypto")),
            "{:?}",
            v[2]
        );
        assert!(
            matches!(v[3], Verdict::Refuse(r) if r.contains("transport")),
            "{:?}",
            v[3]
        );
        let ports = [
            Some(Ports {
                rtp: 40000,
                rtcp: Some(40001),
            }),
            None,
            None,
            None,
        ];
        let a = build_answer(&offer, &v, &ports, "127.0.0.1".parse().unwrap(), 1, 1);
        let text = a.to_string();
        assert!(text.contains("m=audio 40000 RTP/SAVP 0\r\n"), "{text}");
        let answer = Sdp::parse(&text).unwrap();
        assert_eq!(answer.media[0].crypto.len(), 1, "{text}");
        let ours = SdesCrypto::parse(&answer.media[0].crypto[0]).unwrap();
        assert_eq!((ours.tag, ours.suite), (2, s.offered.suite));
        assert_ne!(ours.master, s.offered.master, "a key of our own");
        assert!(answer.media[1..]
            .iter()
            .all(|m| m.port == 0 && m.crypto.is_empty()));
    }

    #[test]
    fn nothing_recordable() {
        let offer = Sdp::parse("v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 18\r\n").unwrap();
        assert!(!any_recordable(&assess(&offer)));
    }
}
