//! Every INVITE style the loadgen sends is one the recorder's own parser
//! accepts and classifies as SIPREC with metadata, with two labelled
//! send-only streams on the offered ports, codec and ptime.

use mediafork_control::sdp::Direction;
use mediafork_control::sip::SipMessage;
use mediafork_control::siprec::{classify_invite, InviteKind};
use mediafork_loadgen::call::{call_spec, invite_text, CallParams};
use mediafork_loadgen::{Codec, Style};

fn params(style: Style, codec: Codec, ptime_ms: u32) -> CallParams {
    CallParams {
        index: 7,
        run_tag: "test".into(),
        local: "192.0.2.10:5071".parse().unwrap(),
        target: "192.0.2.1:5060".parse().unwrap(),
        rtp_ports: [31000, 31002],
        answer_ports: [0, 0],
        codec,
        ptime_ms,
        style,
    }
}

#[test]
fn every_style_is_recognised_as_siprec_with_metadata() {
    for style in [Style::Cube, Style::Acme, Style::Ribbon, Style::Generic] {
        for (codec, pt, name) in [(Codec::Pcmu, 0, "PCMU"), (Codec::Pcma, 8, "PCMA")] {
            for ptime in [10, 20, 30, 40] {
                let spec = call_spec(&params(style, codec, ptime));
                let text = invite_text(&spec, ptime);
                let msg = SipMessage::parse(text.as_bytes())
                    .unwrap_or_else(|e| panic!("{style:?} {ptime}: {e}\n{text}"));
                let kind = classify_invite(&msg)
                    .unwrap_or_else(|e| panic!("{style:?} {ptime}: {e}\n{text}"));
                let InviteKind::Siprec { sdp, metadata } = kind else {
                    panic!("{style:?}: not classified as SIPREC");
                };
                let (_, md) = metadata.expect("metadata part");
                assert_eq!(md.participants.len(), 2, "{style:?}");
                assert_eq!(sdp.media.len(), 2, "{style:?}");
                for (m, (label, port)) in sdp.media.iter().zip([("1", 31000), ("2", 31002)]) {
                    assert_eq!(m.port, port, "{style:?}");
                    assert_eq!(m.label(), Some(label), "{style:?}");
                    assert_eq!(m.direction(), Direction::SendOnly, "{style:?}");
                    assert_eq!(m.payload_types(), vec![pt], "{style:?}");
                    assert_eq!(m.codec_for(pt).map(|c| c.0), Some(name), "{style:?}");
                    let advertised = m.ptime.or(m.maxptime);
                    assert_eq!(advertised, Some(ptime), "{style:?} ptime\n{text}");
                }
            }
        }
    }
}
