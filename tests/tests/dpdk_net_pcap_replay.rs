//! `mediafork replay --backend dpdk`: the same capture read by DPDK's
//! net_pcap driver (mbufs, bursts, bulk free, arrival timestamps) gives
//! byte-identical WAV files and the same packet counters as the plain
//! replay that reads the file itself.
#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use dpdk_common::{require_dpdk_binary, RuntimeDir};
use mediafork_e2e::{metas, replay};
use mediafork_testkit::capture_builder::Capture;
use mediafork_testkit::sip::{self as tsip, CallSpec, Vendor};
use mediafork_testkit::stream::{generate, Impairments, StreamSpec, DEFAULT_START_NS};
use serde_json::Value;

const MS: u64 = 1_000_000;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A SIPREC INVITE (multipart SDP + RFC 7865 metadata) that fits in one
/// Ethernet frame, as on a real network. The testkit's vendor INVITEs carry
/// 2.7-3.8 KB of metadata in one over-MTU frame, which only a loopback
/// capture holds and which does not fit a 2 KiB DPDK mbuf (see
/// `dpdk_net_pcap_replay_reports_oversize_frames`).
fn compact_siprec_invite(call: &CallSpec) -> String {
    let src = call.src_sip;
    let media: String = call
        .streams
        .iter()
        .map(|s| {
            format!(
                "m=audio {} RTP/AVP {}\r\na=rtpmap:{} {}\r\na=label:{}\r\na=sendonly\r\n",
                s.port,
                s.payload_type,
                s.payload_type,
                s.rtpmap.as_deref().unwrap_or("PCMU/8000"),
                s.label
            )
        })
        .collect();
    let body = format!(
        "--foobar\r\nContent-Type: application/sdp\r\n\r\n\
         v=0\r\no=SRC 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n{media}\r\n\
         --foobar\r\nContent-Type: application/rs-metadata+xml\r\n\
         Content-Disposition: recording-session\r\n\r\n\
         <recording xmlns=\"urn:ietf:params:xml:ns:recording:1\"><datamode>complete</datamode>\
         <session session_id=\"s1\"><sipSessionID>{cid}</sipSessionID></session>\
         <participant participant_id=\"p1\"><nameID aor=\"sip:alice@example.com\"><name>Alice</name></nameID></participant>\
         <participant participant_id=\"p2\"><nameID aor=\"sip:bob@example.net\"><name>Bob</name></nameID></participant>\
         <stream stream_id=\"t1\" session_id=\"s1\"><label>1</label></stream>\
         <stream stream_id=\"t2\" session_id=\"s1\"><label>2</label></stream>\
         <participantstreamassoc participant_id=\"p1\"><send>t1</send><recv>t2</recv></participantstreamassoc>\
         <participantstreamassoc participant_id=\"p2\"><send>t2</send><recv>t1</recv></participantstreamassoc>\
         </recording>\r\n--foobar--\r\n",
        ip = src.ip(),
        cid = call.call_id,
    );
    format!(
        "INVITE sip:srs@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{tag}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:src@{sip}>;tag={tag}\r\nTo: <sip:srs@{dip}>\r\n\
         Call-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:src@{src}>;+sip.src\r\n\
         Require: siprec\r\nContent-Type: multipart/mixed;boundary=foobar\r\n\
         Content-Length: {len}\r\n\r\n{body}",
        dst = call.dst_sip,
        sip = src.ip(),
        dip = call.dst_sip.ip(),
        tag = call.from_tag,
        cid = call.call_id,
        len = body.len(),
    )
}

/// INVITE/200/ACK at `t0`, two streams of `packets` packets, BYE/200 after.
fn siprec_call(cap: &mut Capture, call: &CallSpec, t0: u64, packets: u32, imps: [Impairments; 2]) {
    let invite = compact_siprec_invite(call);
    assert!(
        invite.len() + 42 <= 1514,
        "{} bytes: over the MTU",
        invite.len()
    );
    cap.add_sip(t0, call.src_sip, call.dst_sip, &invite);
    cap.add_sip(t0 + MS, call.dst_sip, call.src_sip, &tsip::ok_200(call));
    cap.add_sip(t0 + 2 * MS, call.src_sip, call.dst_sip, &tsip::ack(call));
    for (i, imp) in imps.into_iter().enumerate() {
        let mut s = StreamSpec::new(
            SocketAddr::new(call.src_sip.ip(), call.streams[i].port),
            SocketAddr::new(call.media_addr, call.answer_ports[i]),
            0x2222_0000 + (t0 as u32 & 0xff00) + i as u32,
        );
        s.start_ns = t0 + 10 * MS;
        s.packets = packets;
        s.payload_type = call.streams[i].payload_type;
        cap.add_frames(generate(&s, imp));
    }
    let t_end = t0 + 10 * MS + u64::from(packets) * 20 * MS + 100 * MS;
    cap.add_sip(t_end, call.src_sip, call.dst_sip, &tsip::bye(call));
    cap.add_sip(
        t_end + MS,
        call.dst_sip,
        call.src_sip,
        &tsip::ok_200_bye(call),
    );
}

/// Two SIPREC calls (loss, duplicates, reordering, a packet later than the
/// reorder window, random loss), RTP without signalling, and garbage.
fn capture() -> Capture {
    let mut cap = Capture::new();
    let a = CallSpec::two_streams(
        "dpdk-a@192.0.2.10",
        sa("127.0.0.10:5060"),
        sa("127.0.0.1:5060"),
        Vendor::Generic,
    );
    let impaired = Impairments {
        drop: vec![10, 11, 50],
        duplicate: vec![20, 30],
        reorder: vec![40, 60],
        ..Default::default()
    };
    let late = Impairments {
        jitter_ns: vec![(30, 500 * MS as i64)],
        ..Default::default()
    };
    siprec_call(&mut cap, &a, DEFAULT_START_NS, 300, [impaired, late]);

    let mut b = CallSpec::two_streams(
        "dpdk-b@192.0.2.11",
        sa("127.0.0.11:5060"),
        sa("127.0.0.1:5060"),
        Vendor::Generic,
    );
    b.answer_ports = vec![40010, 40012];
    let lossy = Impairments::default().with_random_loss(7, 400, 1, 20);
    let jittery = Impairments::default().with_random_jitter(9, 400, 15 * MS as i64);
    siprec_call(
        &mut cap,
        &b,
        DEFAULT_START_NS + 1_500 * MS,
        400,
        [lossy, jittery],
    );

    // RTP with no signalling: a recording of its own.
    let mut s = StreamSpec::new(sa("127.0.0.20:30000"), sa("127.0.0.1:40100"), 0x0077_0077);
    s.start_ns = DEFAULT_START_NS + 200 * MS;
    s.packets = 120;
    cap.add_frames(generate(
        &s,
        Impairments::default().with_random_loss(3, 120, 1, 10),
    ));

    // Garbage: counted, never recorded, never fatal.
    cap.add_raw(DEFAULT_START_NS + 300 * MS, vec![0xff; 10]);
    cap.add_raw(DEFAULT_START_NS + 301 * MS, vec![0u8; 60]);
    cap.sorted()
}

/// A recording's identity that does not depend on times or ids.
fn key(meta: &Value) -> String {
    format!(
        "{}|{}|{}",
        meta["source"], meta["call"]["sip_call_id"], meta["extensions"]["destination"]
    )
}

/// The fields of a track that must not depend on arrival times.
const TRACK_FIELDS: &[&str] = &[
    "index",
    "label",
    "file",
    "codec",
    "clock_rate",
    "ssrc",
    "packets",
    "lost",
    "duplicates",
    "reordered",
    "late",
    "ring_drops",
    "unsupported_packets",
    "dtmf_packets",
    "rtcp_packets",
    "ssrc_changes",
    "samples",
    "duration_seconds",
    "first_seq",
    "last_seq",
    "first_timestamp",
    "last_timestamp",
    "no_media",
];

const SEGMENT_FIELDS: &[&str] = &[
    "start_sample",
    "samples",
    "gap_samples",
    "ssrc",
    "codec",
    "reason",
];

const SUMMARY_FIELDS: &[&str] = &[
    "frames",
    "sip_messages",
    "sip_malformed",
    "link_errors",
    "tracks",
    "rtp_recorded",
    "rtcp",
    "drops",
];

#[test]
fn dpdk_net_pcap_replay_matches_socket_replay() {
    require_dpdk_binary();
    let runtime = RuntimeDir::new("net-pcap-replay");
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("in.pcap");
    capture().write_pcap(&pcap).unwrap();

    let plain = replay(&pcap, &tmp.path().join("plain"), &[]);
    let eal = runtime.eal_args(&[]).join(" ");
    let dpdk = replay(
        &pcap,
        &tmp.path().join("dpdk"),
        &["--backend", "dpdk", "--eal-args", &eal],
    );

    for f in SUMMARY_FIELDS {
        assert_eq!(
            plain[f], dpdk[f],
            "summary field {f}:\nplain {plain:#}\ndpdk {dpdk:#}"
        );
    }
    assert!(plain["rtp_recorded"].as_u64().unwrap() > 1000, "{plain:#}");
    assert_eq!(plain["sip_messages"], 10, "{plain:#}");
    assert!(dpdk.get("oversize_frames").is_none(), "{dpdk:#}");

    let by_key = |summary: &Value| -> BTreeMap<String, (std::path::PathBuf, Value)> {
        metas(summary)
            .into_iter()
            .map(|(dir, meta)| (key(&meta), (dir, meta)))
            .collect()
    };
    let (plain_recs, dpdk_recs) = (by_key(&plain), by_key(&dpdk));
    assert_eq!(
        plain_recs.len(),
        3,
        "two calls and one unsignalled stream: {plain:#}"
    );
    assert_eq!(
        plain_recs.keys().collect::<Vec<_>>(),
        dpdk_recs.keys().collect::<Vec<_>>()
    );
    let mut wavs = 0;
    let mut late = 0;
    for (k, (pdir, pmeta)) in &plain_recs {
        let (ddir, dmeta) = &dpdk_recs[k];
        assert_eq!(pmeta["complete"], dmeta["complete"], "{k}");
        assert_eq!(pmeta["participants"], dmeta["participants"], "{k}");
        let (pt, dt) = (
            pmeta["tracks"].as_array().unwrap(),
            dmeta["tracks"].as_array().unwrap(),
        );
        assert_eq!(pt.len(), dt.len(), "{k}: track count");
        for (a, b) in pt.iter().zip(dt) {
            late += a["late"].as_u64().unwrap();
            for f in TRACK_FIELDS {
                assert_eq!(a[f], b[f], "{k} track {}: field {f}", a["index"]);
            }
            let (sa, sb) = (
                a["segments"].as_array().unwrap(),
                b["segments"].as_array().unwrap(),
            );
            assert_eq!(sa.len(), sb.len(), "{k} track {}: segments", a["index"]);
            for (x, y) in sa.iter().zip(sb) {
                for f in SEGMENT_FIELDS {
                    assert_eq!(x[f], y[f], "{k} track {}: segment field {f}", a["index"]);
                }
            }
            let file = a["file"].as_str().unwrap();
            let (wa, wb) = (
                std::fs::read(pdir.join(file)).unwrap(),
                std::fs::read(ddir.join(file)).unwrap(),
            );
            assert!(wa.len() > 44, "{k} {file}: audio expected");
            assert!(
                wa == wb,
                "{k} {file}: WAV files differ ({} vs {} bytes)",
                wa.len(),
                wb.len()
            );
            wavs += 1;
        }
        // SIPREC metadata documents are the same bytes too.
        for m in pmeta["metadata_files"].as_array().into_iter().flatten() {
            let f = m.as_str().unwrap();
            assert_eq!(
                std::fs::read(pdir.join(f)).unwrap(),
                std::fs::read(ddir.join(f)).unwrap(),
                "{k} {f}"
            );
        }
    }
    assert!(wavs >= 5, "every track compared");
    assert!(
        late >= 1,
        "the capture has a packet beyond the reorder window"
    );
}

/// A frame larger than an mbuf's 2 KiB (a testkit Cisco CUBE INVITE, 3.8 KB
/// in one frame, as a loopback capture holds it) reaches the pipeline cut
/// short; the replay says so instead of losing the call silently.
#[test]
fn dpdk_net_pcap_replay_reports_oversize_frames() {
    require_dpdk_binary();
    let runtime = RuntimeDir::new("net-pcap-oversize");
    let tmp = tempfile::tempdir().unwrap();
    let call = CallSpec::two_streams(
        "dpdk-big@192.0.2.12",
        sa("127.0.0.12:5060"),
        sa("127.0.0.1:5060"),
        Vendor::CiscoCube,
    );
    let invite = tsip::siprec_invite(&call);
    assert!(invite.len() > 2048, "the INVITE must not fit an mbuf");
    let mut cap = Capture::new();
    cap.add_sip(DEFAULT_START_NS, call.src_sip, call.dst_sip, &invite);
    cap.add_sip(
        DEFAULT_START_NS + MS,
        call.dst_sip,
        call.src_sip,
        &tsip::ok_200(&call),
    );
    let mut s = StreamSpec::new(sa("127.0.0.12:20000"), sa("127.0.0.1:40000"), 5);
    s.start_ns = DEFAULT_START_NS + 10 * MS;
    s.packets = 20;
    cap.add_frames(generate(&s, Impairments::default()));
    let pcap = tmp.path().join("big.pcap");
    cap.sorted().write_pcap(&pcap).unwrap();

    let plain = replay(&pcap, &tmp.path().join("plain"), &[]);
    assert_eq!(plain["recordings"][0]["source"], "siprec", "{plain:#}");
    let eal = runtime.eal_args(&[]).join(" ");
    let dpdk = replay(
        &pcap,
        &tmp.path().join("dpdk"),
        &["--backend", "dpdk", "--eal-args", &eal],
    );
    assert_eq!(dpdk["oversize_frames"], 1, "{dpdk:#}");
    assert_eq!(dpdk["frames"], plain["frames"], "{dpdk:#}");
}
