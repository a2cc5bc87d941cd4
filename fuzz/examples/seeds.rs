//! Regenerates `fuzz/corpus/<target>/` from the project's test fixtures:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! Sources: the wire-exact SIP and metadata fixtures under
//! `control/tests/fixtures/`, the messages of the sipp scenarios in
//! `tests/sipp/*.xml` (placeholders filled with fixed values), the SIPREC
//! INVITEs `mediafork-testkit` builds for each vendor shape, and frames and
//! capture files built with testkit's builders. SDP, metadata and multipart
//! seeds are cut out of those messages with mediafork's own parsers.
//!
//! The output is deterministic, so a rerun that changes nothing leaves git
//! clean. Each corpus directory is emptied first.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mediafork_control::sip::SipMessage;
use mediafork_control::siprec::{multipart, METADATA_TYPES};
use mediafork_testkit::frame::FrameSpec;
use mediafork_testkit::pcap::{PcapWriter, PcapngWriter, TsResolution};
use mediafork_testkit::rtp::{rtcp_receiver_report, rtcp_sender_report, telephone_event};
use mediafork_testkit::sip::{self as ksip, CallSpec, Vendor};
use mediafork_testkit::RtpPacket;

type Corpus = BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>;

fn add(corpus: &mut Corpus, target: &'static str, name: impl Into<String>, bytes: Vec<u8>) {
    corpus.entry(target).or_default().insert(name.into(), bytes);
}

fn main() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = fuzz.parent().expect("fuzz/ has a parent").to_path_buf();
    let mut corpus = Corpus::new();

    let messages = sip_messages(&root);
    for (name, msg) in &messages {
        add(&mut corpus, "sip_datagram", name.clone(), msg.clone());
        if msg.starts_with(b"INVITE") {
            add(&mut corpus, "siprec_invite", name.clone(), msg.clone());
        }
        body_seeds(&mut corpus, name, msg);
    }
    stream_seeds(&mut corpus, &messages);
    for path in files(&root.join("control/tests/fixtures/metadata"), "xml") {
        let name = file_name(&path);
        add(&mut corpus, "siprec_metadata", name, read(&path));
    }
    packet_seeds(&mut corpus);
    capture_seeds(&mut corpus);

    let mut total = 0;
    for (target, seeds) in &corpus {
        let dir = fuzz.join("corpus").join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("remove old corpus");
        }
        fs::create_dir_all(&dir).expect("create corpus dir");
        let size: usize = seeds.values().map(Vec::len).sum();
        for (name, bytes) in seeds {
            fs::write(dir.join(name), bytes).expect("write seed");
        }
        println!("{target:16} {:4} seeds {:8} bytes", seeds.len(), size);
        total += size;
    }
    println!("{:16} {:>19} bytes", "total", total);
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned()
}

/// Files in `dir` with extension `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// Every SIP message the fixtures hold, by seed name.
fn sip_messages(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for path in files(&root.join("control/tests/fixtures/sip"), "sip") {
        out.push((format!("fixture-{}", file_name(&path)), read(&path)));
    }
    for path in files(&root.join("tests/sipp"), "xml") {
        let scenario = String::from_utf8_lossy(&read(&path)).into_owned();
        let stem = path.file_stem().expect("a file").to_string_lossy();
        for (i, msg) in sipp_sends(&scenario).into_iter().enumerate() {
            out.push((format!("sipp-{stem}-{i}.sip"), msg.into_bytes()));
        }
    }
    let src: SocketAddr = "192.0.2.20:5070".parse().expect("addr");
    let dst: SocketAddr = "192.0.2.10:5060".parse().expect("addr");
    for (tag, vendor) in [
        ("generic", Vendor::Generic),
        ("cube", Vendor::CiscoCube),
        ("acme", Vendor::AcmePacket),
        ("ribbon", Vendor::Ribbon),
        ("plain", Vendor::Plain),
    ] {
        let call = CallSpec::two_streams(&format!("seed-{tag}@192.0.2.20"), src, dst, vendor);
        out.push((
            format!("testkit-{tag}-invite.sip"),
            ksip::siprec_invite(&call).into_bytes(),
        ));
        if vendor == Vendor::Generic {
            for (what, msg) in [
                ("200", ksip::ok_200(&call)),
                ("ack", ksip::ack(&call)),
                ("bye", ksip::bye(&call)),
                ("200-bye", ksip::ok_200_bye(&call)),
            ] {
                out.push((format!("testkit-{tag}-{what}.sip"), msg.into_bytes()));
            }
        }
    }
    out
}

/// The messages a sipp scenario sends, with its `[keyword]`s replaced by
/// fixed values and `[len]` computed, CRLF line endings as sipp sends them.
fn sipp_sends(scenario: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = scenario;
    while let Some(start) = rest.find("<send") {
        rest = &rest[start..];
        let Some(open) = rest.find("<![CDATA[") else {
            break;
        };
        let Some(close) = rest[open..].find("]]>") else {
            break;
        };
        let raw = &rest[open + 9..open + close];
        rest = &rest[open + close..];
        let text = fill_sipp_keywords(raw);
        let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
        let text = lines.join("\r\n");
        let text = text.trim_matches(['\r', '\n']);
        let (head, body) = match text.split_once("\r\n\r\n") {
            Some((h, b)) if !b.trim().is_empty() => (h.to_owned(), format!("{}\r\n", b.trim_end())),
            Some((h, _)) => (h.to_owned(), String::new()),
            None => (text.to_owned(), String::new()),
        };
        let head = head.replace("[len]", &body.len().to_string());
        out.push(format!("{head}\r\n\r\n{body}"));
    }
    out
}

fn fill_sipp_keywords(raw: &str) -> String {
    let fixed = [
        (
            "[last_Via:]",
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKsrs1",
        ),
        ("[last_From:]", "From: <sip:srs@192.0.2.10>;tag=srs1"),
        ("[last_To:]", "To: <sip:192.0.2.20>;tag=1-seed"),
        ("[last_Call-ID:]", "Call-ID: 1-1@192.0.2.20"),
        ("[last_CSeq:]", "CSeq: 1 BYE"),
        ("[peer_tag_param]", ";tag=srs1"),
        ("[media_port+2]", "6002"),
        ("[media_port]", "6000"),
        ("[media_ip_type]", "4"),
        ("[media_ip]", "192.0.2.20"),
        ("[local_ip_type]", "4"),
        ("[local_ip]", "192.0.2.20"),
        ("[local_port]", "5070"),
        ("[remote_ip]", "192.0.2.10"),
        ("[remote_port]", "5060"),
        ("[transport]", "UDP"),
        ("[branch-3]", "z9hG4bK-1-0-3"),
        ("[branch]", "z9hG4bK-1-0"),
        ("[call_id]", "1-1@192.0.2.20"),
        ("[call_number]", "1"),
        ("[clock_tick]", "1000"),
        ("[pid]", "1"),
        ("[refci]", "21000001"),
        ("[leg]", "1"),
    ];
    let mut text = raw.to_owned();
    for (key, value) in fixed {
        text = text.replace(key, value);
    }
    // Scenario variables ([$m], [$srs_tag], ...) hold values sipp captured
    // from the recorder's answers; any token will do for a seed.
    while let Some(start) = text.find("[$") {
        let Some(len) = text[start..].find(']') else {
            break;
        };
        text.replace_range(start..start + len + 1, "seed1");
    }
    text
}

/// SDP, metadata and multipart seeds cut out of a message's body.
fn body_seeds(corpus: &mut Corpus, name: &str, msg: &[u8]) {
    let Ok(m) = SipMessage::parse(msg) else {
        return;
    };
    let Ok(Some(ct)) = m.content_type() else {
        return;
    };
    let stem = name.trim_end_matches(".sip");
    if ct.is_multipart() {
        let value = m.header("Content-Type").unwrap_or_default();
        let mut seed = format!("{value}\n").into_bytes();
        seed.extend_from_slice(&m.body);
        add(corpus, "multipart", format!("{stem}.mime"), seed);
    }
    let Ok(parts) = multipart::parse(&ct, &m.body) else {
        return;
    };
    for (i, part) in parts.iter().enumerate() {
        if part.content_type == "application/sdp" {
            add(corpus, "sdp", format!("{stem}-{i}.sdp"), part.body.clone());
        } else if METADATA_TYPES.contains(&part.content_type.as_str()) {
            add(
                corpus,
                "siprec_metadata",
                format!("{stem}-{i}.xml"),
                part.body.clone(),
            );
        }
    }
}

/// TCP streams: the first byte selects limits and chunking (see the
/// target), then several messages back to back with keep-alives between.
fn stream_seeds(corpus: &mut Corpus, messages: &[(String, Vec<u8>)]) {
    // Only messages that frame on a stream (Content-Length present).
    let framed: Vec<&Vec<u8>> = messages
        .iter()
        .map(|(_, m)| m)
        .filter(|m| SipMessage::parse(m).is_ok_and(|p| p.header("Content-Length").is_some()))
        .collect();
    for (i, pair) in framed.chunks(3).enumerate() {
        for ctl in [0u8, 0x02] {
            let mut seed = vec![ctl, b'\r', b'\n', b'\r', b'\n'];
            for m in pair {
                seed.extend_from_slice(m);
                seed.extend_from_slice(b"\r\n");
            }
            add(
                corpus,
                "sip_stream",
                format!("stream-{i:02}-{ctl:02x}"),
                seed,
            );
        }
    }
    // Short messages under the small limits (odd control byte).
    let options = b"OPTIONS sip:srs@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.20;branch=z9hG4bK1\r\nFrom: <sip:a@192.0.2.20>;tag=1\r\nTo: <sip:srs@192.0.2.10>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";
    let mut seed = vec![0x01];
    seed.extend_from_slice(options);
    seed.extend_from_slice(b"\r\n\r\n");
    seed.extend_from_slice(options);
    add(corpus, "sip_stream", "options-small-limits", seed);
}

fn rtp_payloads() -> Vec<(&'static str, Vec<u8>)> {
    let plain = RtpPacket::new(0, 513, 160, 0xdead_beef, vec![0xd5; 20]).to_bytes();
    let full = RtpPacket {
        marker: true,
        csrcs: vec![1, 2],
        extension: Some((0xbede, vec![1, 2, 3, 4])),
        padding: 3,
        ..RtpPacket::new(96, 7, 8, 9, b"payload".to_vec())
    }
    .to_bytes();
    let event = RtpPacket::new(101, 1, 2, 3, telephone_event(5, true, 10, 800)).to_bytes();
    vec![
        ("rtp", plain),
        ("rtp-csrc-ext-pad", full),
        ("rtp-event", event),
        ("rtcp-sr", rtcp_sender_report(0x1234_5678)),
        ("rtcp-rr", rtcp_receiver_report(0x1234_5678)),
    ]
}

fn frame_specs() -> Vec<(&'static str, FrameSpec)> {
    let v4 = |a: &str, b: &str| FrameSpec::udp(a.parse().expect("addr"), b.parse().expect("addr"));
    let base4 = v4("192.0.2.1:20000", "192.0.2.2:40000");
    let base6 = v4("[2001:db8::1]:20000", "[2001:db8::2]:40000");
    vec![
        ("v4", base4.clone()),
        (
            "v4-vlan",
            FrameSpec {
                vlans: vec![42],
                ..base4.clone()
            },
        ),
        (
            "v4-qinq",
            FrameSpec {
                vlans: vec![100, 200],
                ..base4.clone()
            },
        ),
        (
            "v4-options",
            FrameSpec {
                ipv4_options: vec![1, 1, 1, 0],
                ..base4.clone()
            },
        ),
        (
            "v4-frag",
            FrameSpec {
                ipv4_fragment: Some((true, 0)),
                ..base4
            },
        ),
        ("v6", base6.clone()),
        (
            "v6-ext",
            FrameSpec {
                ipv6_ext_headers: true,
                ..base6.clone()
            },
        ),
        (
            "v6-vlan-frag",
            FrameSpec {
                vlans: vec![7],
                ipv4_fragment: Some((false, 0)),
                ..base6
            },
        ),
    ]
}

fn packet_seeds(corpus: &mut Corpus) {
    let payloads = rtp_payloads();
    for (fname, spec) in frame_specs() {
        for (pname, payload) in &payloads {
            add(
                corpus,
                "packet",
                format!("eth-{fname}-{pname}"),
                spec.build(payload),
            );
        }
        add(
            corpus,
            "packet",
            format!("ip-{fname}-rtp"),
            spec.raw_ip(&payloads[0].1),
        );
    }
    for (pname, payload) in &payloads {
        add(
            corpus,
            "packet",
            format!("udp-payload-{pname}"),
            payload.clone(),
        );
    }
    add(
        corpus,
        "packet",
        "eth-arp",
        mediafork_testkit::frame::arp_frame(),
    );
}

/// Capture files: every link type and both formats the reader knows, a few
/// packets each so the files stay small.
fn capture_seeds(corpus: &mut Corpus) {
    let payloads = rtp_payloads();
    let specs = frame_specs();
    let eth: Vec<Vec<u8>> = vec![
        specs[0].1.build(&payloads[0].1),
        specs[2].1.build(&payloads[3].1),
        specs[6].1.build(&payloads[1].1),
    ];
    let ip: Vec<Vec<u8>> = vec![
        specs[0].1.raw_ip(&payloads[0].1),
        specs[5].1.raw_ip(&payloads[4].1),
    ];
    let ts = |i: usize| 1_700_000_000_000_000_000 + i as u64 * 20_000_000;

    let pcap = |link: u32, res: TsResolution, snaplen: u32, packets: &[Vec<u8>]| {
        let mut w = PcapWriter::with_options(Vec::new(), link, res, snaplen).expect("pcap");
        for (i, p) in packets.iter().enumerate() {
            w.write_packet(ts(i), p).expect("write");
        }
        w.finish().expect("finish")
    };
    let micro = TsResolution::Micro;
    add(
        corpus,
        "capture",
        "eth-micro.pcap",
        pcap(1, micro, 262_144, &eth),
    );
    add(
        corpus,
        "capture",
        "eth-nano.pcap",
        pcap(1, TsResolution::Nano, 262_144, &eth),
    );
    add(
        corpus,
        "capture",
        "eth-snaplen64.pcap",
        pcap(1, micro, 64, &eth),
    );
    add(
        corpus,
        "capture",
        "eth-big-endian.pcap",
        big_endian(&pcap(1, micro, 262_144, &eth)),
    );
    add(
        corpus,
        "capture",
        "raw.pcap",
        pcap(101, micro, 262_144, &ip),
    );
    add(
        corpus,
        "capture",
        "ipv4.pcap",
        pcap(228, micro, 262_144, &ip[..1]),
    );
    let with_header =
        |h: &[u8]| -> Vec<Vec<u8>> { ip.iter().map(|p| [h, p.as_slice()].concat()).collect() };
    let sll = [0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    add(
        corpus,
        "capture",
        "sll.pcap",
        pcap(113, micro, 262_144, &with_header(&sll)),
    );
    let sll2 = [
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    add(
        corpus,
        "capture",
        "sll2.pcap",
        pcap(276, micro, 262_144, &with_header(&sll2)),
    );
    add(
        corpus,
        "capture",
        "null.pcap",
        pcap(0, micro, 262_144, &with_header(&2u32.to_le_bytes())),
    );
    add(
        corpus,
        "capture",
        "loop.pcap",
        pcap(108, micro, 262_144, &with_header(&2u32.to_be_bytes())),
    );

    let mut ng = PcapngWriter::new(Vec::new()).expect("pcapng");
    let e = ng.add_interface(1, TsResolution::Micro).expect("idb");
    let r = ng.add_interface(101, TsResolution::Nano).expect("idb");
    ng.write_packet(e, ts(0), &eth[0]).expect("epb");
    ng.write_packet(r, ts(1), &ip[0]).expect("epb");
    ng.write_packet(e, ts(2), &eth[1]).expect("epb");
    add(
        corpus,
        "capture",
        "two-interfaces.pcapng",
        ng.finish().expect("finish"),
    );
}

/// The same classic pcap written big-endian, as a SPARC or a PowerPC box
/// writes it: every header field swapped, packet bytes untouched.
fn big_endian(le: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(le.len());
    let swap32 = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes")).to_be_bytes();
    let swap16 = |b: &[u8]| u16::from_le_bytes(b.try_into().expect("2 bytes")).to_be_bytes();
    out.extend_from_slice(&swap32(&le[0..4]));
    out.extend_from_slice(&swap16(&le[4..6]));
    out.extend_from_slice(&swap16(&le[6..8]));
    for field in le[8..24].chunks(4) {
        out.extend_from_slice(&swap32(field));
    }
    let mut pos = 24;
    while pos + 16 <= le.len() {
        let caplen =
            u32::from_le_bytes(le[pos + 8..pos + 12].try_into().expect("4 bytes")) as usize;
        for field in le[pos..pos + 16].chunks(4) {
            out.extend_from_slice(&swap32(field));
        }
        out.extend_from_slice(&le[pos + 16..pos + 16 + caplen]);
        pos += 16 + caplen;
    }
    out
}
