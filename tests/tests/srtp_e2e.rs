//! SRTP end to end against `mediafork run`: calls offered with `RTP/SAVP`
//! and SDES keys (`a=crypto`), SRTP from the testkit's sender, and what
//! reaches the recording: the decrypted audio, nothing of tampered or
//! replayed packets, and the drops counted under `srtp_auth_failed` and
//! `srtp_replay`.

use std::time::Duration;

use mediafork_e2e::admin::cli_json;
use mediafork_e2e::server::{wait_for, Server, Slot};
use mediafork_e2e::srtp_call::SrtpCall;
use mediafork_e2e::{track, wav_blocks};
use mediafork_testkit::payload::{Block, Law};
use mediafork_testkit::srtp::{SrtpSender, Suite};
use serde_json::Value;

const SLOT_CM: Slot = Slot(30);
const SLOT_GCM: Slot = Slot(31);
const SLOT_REFUSED: Slot = Slot(32);

const PACE: Duration = Duration::from_millis(2);

/// The single recording once closed.
fn closed_recording(server: &Server) -> (std::path::PathBuf, Value) {
    wait_for(Duration::from_secs(10), "the recording to close", || {
        let recs = server.recordings();
        (recs.len() == 1 && recs[0].1["ended_at"].is_string()).then(|| recs[0].clone())
    })
}

/// A worker counter (`rx_packets`, `recorded`) summed over the workers.
fn total(stats: &Value, key: &str) -> u64 {
    stats["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w[key].as_u64().unwrap_or(0))
        .sum()
}

/// A drop counter summed over the workers.
fn drops(stats: &Value, reason: &str) -> u64 {
    stats["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["drops"][reason].as_u64().unwrap_or(0))
        .sum()
}

fn exact(n: u32) -> Vec<Block> {
    (0..n).map(Block::Packet).collect()
}

// AES_CM_128_HMAC_SHA1_80 (Acme Packet's usual offer) and _32 (CUCM's):
// tampered copies sent ahead of the real packets and replays (one inside
// the window, one behind it) never reach the WAV, and are counted.
#[test]
fn srtp_is_decrypted_and_forgeries_and_replays_are_dropped() {
    let mut server = Server::start(SLOT_CM);
    let admin = server.admin_url();
    let suites = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];
    let mut call = SrtpCall::place(server.sip, "srtp-cm-1@127.0.0.1", &suites, 1);
    // The answer: RTP/SAVP, one a=crypto per m-line, offered tag and suite,
    // a key of the recorder's own.
    assert!(call.ok.body.contains(" RTP/SAVP 0"), "{}", call.ok.body);
    assert_eq!(call.answer_crypto.len(), 2, "{}", call.ok.body);
    for (answer, s) in call.answer_crypto.iter().zip(&call.streams) {
        let offered = s.sender.crypto_attribute(1);
        let fields: Vec<&str> = answer.split_whitespace().collect();
        assert_eq!(
            fields[..2],
            offered.split_whitespace().collect::<Vec<_>>()[..2]
        );
        assert!(fields[2].starts_with("inline:"), "{answer}");
        assert!(!offered.contains(&fields[2][7..]), "our own key: {answer}");
    }

    let mut sent: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    for k in 0..100u32 {
        for (i, sent) in sent.iter_mut().enumerate() {
            let p = call.streams[i].next_packet();
            if i == 0 && k % 10 == 0 {
                // A forgery of the packet about to come: same header,
                // payload bits flipped.
                let mut forged = p.clone();
                forged[30] ^= 0x55;
                call.send(0, &forged);
            }
            call.send(i, &p);
            sent.push(p);
        }
        if k == 20 {
            call.send(0, &sent[0][5]);
        }
        std::thread::sleep(PACE);
    }
    // Behind the 64-packet window.
    call.send(0, &sent[0][1]);
    // SRTCP on stream 1's RTCP port, and a forged one.
    let rtcp = mediafork_testkit::rtp::rtcp_sender_report(call.streams[1].ssrc);
    let srtcp = call.streams[1].sender.protect_rtcp(&rtcp);
    let mut forged = srtcp.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let rtcp_dst = std::net::SocketAddr::new(call.streams[1].dst.ip(), call.ports[1] + 1);
    call.media.send_to(&forged, rtcp_dst).unwrap();
    call.media.send_to(&srtcp, rtcp_dst).unwrap();

    let stats = wait_for(
        Duration::from_secs(5),
        "the SRTP drops to be counted",
        || {
            let s = cli_json(&admin, &["stats"]);
            (drops(&s, "srtp_auth_failed") == 11
                && drops(&s, "srtp_replay") == 2
                && total(&s, "recorded") == 200)
                .then_some(s)
        },
    );
    assert_eq!(drops(&stats, "duplicate"), 0, "{stats:#}");
    assert_eq!(call.bye(), Some(200));

    let (dir, meta) = closed_recording(&server);
    for label in ["1", "2"] {
        let t = track(&meta, label);
        assert_eq!(
            wav_blocks(&dir, t, Law::Ulaw),
            exact(100),
            "track {label}: the decrypted pattern, nothing else: {t:#}"
        );
    }
    server.stop();
}

// The RFC 6188 and RFC 7714 suites, one stream each.
#[test]
fn aes_256_and_gcm_suites_are_recorded() {
    let mut server = Server::start(SLOT_GCM);
    let admin = server.admin_url();
    let suites = [
        Suite::AeadAes128Gcm,
        Suite::AesCm256HmacSha1_80,
        Suite::AeadAes256Gcm,
        Suite::AesCm256HmacSha1_32,
    ];
    let mut call = SrtpCall::place(server.sip, "srtp-gcm-1@127.0.0.1", &suites, 7);
    assert_eq!(call.answer_crypto.len(), 4, "{}", call.ok.body);
    for (answer, suite) in call.answer_crypto.iter().zip(suites) {
        assert!(answer.contains(suite.sdes_name()), "{answer}");
    }
    for _ in 0..60 {
        for i in 0..suites.len() {
            let p = call.streams[i].next_packet();
            call.send(i, &p);
        }
        std::thread::sleep(PACE);
    }
    // Every packet in before the BYE unbinds the ports.
    wait_for(
        Duration::from_secs(5),
        "every packet to be recorded",
        || {
            let s = cli_json(&admin, &["stats"]);
            (total(&s, "recorded") == 60 * suites.len() as u64).then_some(())
        },
    );
    assert_eq!(call.bye(), Some(200));
    let (dir, meta) = closed_recording(&server);
    for (i, suite) in suites.iter().enumerate() {
        let t = track(&meta, &(i + 1).to_string());
        assert_eq!(wav_blocks(&dir, t, Law::Ulaw), exact(60), "{suite}: {t:#}");
    }
    server.stop();
}

// What the recorder cannot decrypt is refused with a reason: a lone SRTP
// m-line with MKI gets 488; next to plain RTP it is answered with port 0.
#[test]
fn unusable_srtp_offers_are_refused_with_a_reason() {
    let server = Server::start(SLOT_REFUSED);
    let sender = SrtpSender::new(Suite::AesCm128HmacSha1_80, 3);
    let mki = format!("{}|1:4", sender.crypto_attribute(1));
    let sdp = |extra_avp: bool| {
        let mut s = "v=0\r\no=SRC 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                     m=audio 30000 RTP/SAVP 0\r\n"
            .to_string();
        s.push_str(&format!("a=crypto:{mki}\r\na=sendonly\r\n"));
        if extra_avp {
            s.push_str("m=audio 30002 RTP/AVP 0\r\na=sendonly\r\n");
        }
        s
    };
    let r = SrtpCall::try_offer(server.sip, "srtp-mki-1@127.0.0.1", &sdp(false));
    assert_eq!(r.status(), Some(488), "{r:?}");
    assert!(r.reason().contains("MKI"), "{}", r.reason());
    let r = SrtpCall::try_offer(server.sip, "srtp-mki-2@127.0.0.1", &sdp(true));
    assert_eq!(r.status(), Some(200), "{r:?}");
    let ports: Vec<u16> = mediafork_e2e::server::sdp_media(&r.body)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(ports[0], 0, "{}", r.body);
    assert_ne!(ports[1], 0, "{}", r.body);
    assert!(!r.body.contains("a=crypto"), "{}", r.body);
    // The second call stays up (never ACKed): dropping the server kills it
    // rather than waiting out the shutdown grace period.
    drop(server);
}
