//! SIP and SIPREC message text, for captures and for tests that talk to
//! mediafork's SIP port without an external tool such as sipp.
//!
//! Each [`Vendor`] reproduces the *shape* of what that session recording
//! client sends — header set, multipart layout, SDP style, metadata namespace
//! and prefixes — because those differences are what breaks a recorder in
//! the field. Identifiers (tags, branches, metadata ids, GUIDs) are derived
//! from the Call-ID, so the same [`CallSpec`] always yields the same bytes.
//!
//! Every message uses CRLF line endings, carries a `z9hG4bK` Via branch and a
//! CSeq, and has a Content-Length equal to its body's length in bytes.
//! Addresses are whatever the caller puts in the spec: use documentation
//! (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) or loopback
//! ranges.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::rng::{base64, hash_parts, hex, id128};

/// One media stream the recording client offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedStream {
    /// The SDP `a=label` that ties the stream to the metadata.
    pub label: String,
    /// The client's RTP port for this stream (the source of the RTP).
    pub port: u16,
    /// RTP payload type offered (one per stream).
    pub payload_type: u8,
    /// `a=rtpmap` encoding, e.g. `"PCMA/8000"`; `None` relies on the static
    /// payload type alone, as some SBCs do for 0 and 8.
    pub rtpmap: Option<String>,
}

/// Which recording client's message shape to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// The RFC 7866 examples: `Require: siprec`, `+sip.src`, multipart with
    /// SDP and RFC 7865 metadata (`urn:ietf:params:xml:ns:recording:1`).
    Generic,
    /// Cisco CUBE: `Cisco-Guid` and `Session-ID` headers, boundary
    /// `uniqueBoundary`, RFC 7865 metadata with a Cisco `extensiondata`
    /// block, and a third, optional `application/gtd` part (ISUP
    /// transparency data) that the recorder must ignore.
    CiscoCube,
    /// Acme Packet / Oracle SBC: pre-RFC metadata namespace
    /// (`urn:ietf:params:xml:ns:recording`, `id`/`session` attributes,
    /// `send`/`recv` inside `participant`, `<mode>separate</mode>`) with the
    /// `apkt:ucid` / `apkt:callerOrig` / `apkt:callingParty` extensions.
    AcmePacket,
    /// Ribbon (Sonus) SBC: every metadata element `tns:`-prefixed, a
    /// `callData` block in its own namespace, AORs without `sip:`, SDP with
    /// per-media `c=` lines and parts listing Content-Disposition first.
    Ribbon,
    /// Not SIPREC at all: one `application/sdp` body, `a=sendonly`, no labels,
    /// no `Require: siprec` — the shape of a plain forked-media INVITE.
    Plain,
}

/// One recording session: the SRC (an SBC) calls the SRS (mediafork).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSpec {
    /// Call-ID of the recording dialog.
    pub call_id: String,
    /// The SRC's From tag.
    pub from_tag: String,
    /// The SRC's SIP address. Its IP is also the `c=` address of the offer:
    /// the RTP comes from there.
    pub src_sip: SocketAddr,
    /// The recorder's SIP address.
    pub dst_sip: SocketAddr,
    /// Offered streams, in SDP order. Stream 0 is sent by the caller,
    /// stream 1 by the callee (generally: even indices caller, odd callee).
    pub streams: Vec<OfferedStream>,
    /// The recorder's RTP ports, in the same order; a missing entry answers
    /// port 0 (stream rejected).
    pub answer_ports: Vec<u16>,
    /// The recorder's media address, the `c=` of its answer.
    pub media_addr: IpAddr,
    /// Message shape.
    pub vendor: Vendor,
}

impl CallSpec {
    /// A typical two-stream PCMU recording: labels `"1"` and `"2"`, SRC RTP
    /// ports 20000 and 20002, recorder ports 40000 and 40002, recorder media
    /// on `dst_sip`'s IP, From tag derived from the Call-ID.
    pub fn two_streams(
        call_id: &str,
        src_sip: SocketAddr,
        dst_sip: SocketAddr,
        vendor: Vendor,
    ) -> Self {
        let stream = |label: &str, port| OfferedStream {
            label: label.to_string(),
            port,
            payload_type: 0,
            rtpmap: Some("PCMU/8000".to_string()),
        };
        Self {
            call_id: call_id.to_string(),
            from_tag: format!("src{:08x}", hash_parts(&[call_id, "from-tag"]) as u32),
            src_sip,
            dst_sip,
            streams: vec![stream("1", 20000), stream("2", 20002)],
            answer_ports: vec![40000, 40002],
            media_addr: dst_sip.ip(),
            vendor,
        }
    }
}

const CRLF: &str = "\r\n";
/// Fixed wall-clock time used wherever a message carries one.
const METADATA_TIME: &str = "2024-01-01T00:00:00Z";
const SIP_DATE: &str = "Mon, 01 Jan 2024 00:00:00 GMT";

/// The To tag the recorder's answers carry (derived from the Call-ID, so a
/// test can predict it).
pub fn to_tag(call: &CallSpec) -> String {
    format!("srs{:08x}", hash_parts(&[&call.call_id, "to-tag"]) as u32)
}

/// The multipart boundary a vendor uses (`None` for [`Vendor::Plain`]).
pub fn boundary(vendor: Vendor) -> Option<&'static str> {
    match vendor {
        Vendor::Generic => Some("foobar"),
        Vendor::CiscoCube => Some("uniqueBoundary"),
        Vendor::AcmePacket => Some("unique-boundary-1"),
        Vendor::Ribbon => Some("sonus-content-delim"),
        Vendor::Plain => None,
    }
}

fn branch(call_id: &str, method: &str, cseq: u32) -> String {
    let h = hash_parts(&[call_id, method, &cseq.to_string()]);
    format!("z9hG4bK{}", hex(&h.to_be_bytes()))
}

/// An IP as it appears in a SIP URI host part (IPv6 in brackets).
fn uri_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `IN IP4 a.b.c.d` / `IN IP6 x::y`, as SDP `c=` and `o=` lines want it.
fn sdp_addr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("IN IP4 {v4}"),
        IpAddr::V6(v6) => format!("IN IP6 {v6}"),
    }
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            _ => o.push(c),
        }
    }
    o
}

/// Everything that distinguishes one dialog's messages, whoever built it.
struct Leg {
    call: CallSpec,
    /// From name-addr without the tag.
    from: String,
    /// To name-addr without the tag.
    to: String,
    request_uri: String,
    /// The SRC's Contact header value.
    contact: String,
    /// The recorder's Contact header value.
    srs_contact: String,
    cseq: u32,
    /// Vendor headers of the INVITE, after the mandatory ones.
    extra: Vec<(&'static str, String)>,
    /// `o=` user name of the offer.
    sdp_user: &'static str,
    /// `c=` address of the offer: where the RTP comes from.
    offer_addr: IpAddr,
}

fn leg_for(call: &CallSpec) -> Leg {
    let src = call.src_sip;
    let dst = call.dst_sip;
    let (sh, dh) = (uri_host(src.ip()), uri_host(dst.ip()));
    let call_id = call.call_id.as_str();
    let h = hash_parts(&[call_id, "vendor-ids"]);
    match call.vendor {
        Vendor::Generic => Leg {
            call: call.clone(),
            from: format!("<sip:src@{sh}>"),
            to: format!("<sip:srs@{dh}>"),
            request_uri: format!("sip:srs@{dst}"),
            contact: format!("<sip:src@{src}>;+sip.src"),
            srs_contact: format!("<sip:srs@{dst}>;+sip.srs"),
            cseq: 1,
            extra: vec![
                ("Require", "siprec".into()),
                (
                    "Accept",
                    "application/sdp, application/rs-metadata+xml, application/rs-metadata-request".into(),
                ),
                ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE".into()),
                ("MIME-Version", "1.0".into()),
            ],
            sdp_user: "SRC",
            offer_addr: src.ip(),
        },
        Vendor::CiscoCube => Leg {
            call: call.clone(),
            from: format!("<sip:{sh}>"),
            to: format!("<sip:srs@{dh}>"),
            request_uri: format!("sip:srs@{dst}"),
            contact: format!("<sip:{src}>;+sip.src"),
            srs_contact: format!("<sip:srs@{dst}>;+sip.srs"),
            cseq: 101,
            extra: vec![
                ("Date", SIP_DATE.into()),
                ("Supported", "100rel,timer,resource-priority,replaces,sdp-anat".into()),
                ("Min-SE", " 1800".into()),
                ("Cisco-Guid", cisco_guid(h)),
                ("User-Agent", "Cisco-SIPGateway/IOS-17.6.1a".into()),
                (
                    "Allow",
                    "INVITE, OPTIONS, BYE, CANCEL, ACK, PRACK, UPDATE, REFER, SUBSCRIBE, NOTIFY, INFO, REGISTER".into(),
                ),
                ("Expires", "180".into()),
                ("Allow-Events", "telephone-event".into()),
                ("Require", "siprec".into()),
                (
                    "Session-ID",
                    format!("{};remote=00000000000000000000000000000000", session_id_hex(call_id)),
                ),
                ("Mime-Version", "1.0".into()),
            ],
            sdp_user: "CiscoSystemsSIP-GW-UserAgent",
            offer_addr: src.ip(),
        },
        Vendor::AcmePacket => Leg {
            call: call.clone(),
            from: format!("<sip:SRC@{sh}>"),
            to: format!("<sip:srs@{dh}>"),
            request_uri: format!("sip:srs@{dst}"),
            contact: format!("<sip:SRC@{src};transport=udp>;+sip.src"),
            srs_contact: format!("<sip:srs@{dst}>;+sip.srs"),
            cseq: 1,
            extra: vec![
                ("Require", "siprec".into()),
                ("Allow", "INVITE,ACK,CANCEL,BYE,OPTIONS,UPDATE,PRACK,INFO".into()),
                ("Supported", "timer".into()),
                ("MIME-Version", "1.0".into()),
            ],
            sdp_user: "-",
            offer_addr: src.ip(),
        },
        Vendor::Ribbon => Leg {
            call: call.clone(),
            from: format!("\"SIPREC-SRC\" <sip:SIPREC-SRC@{sh}>"),
            to: format!("\"SIPREC-SRS\" <sip:SIPREC-SRS@{dh}>"),
            request_uri: format!("sip:SIPREC-SRS@{dst}"),
            contact: format!("\"SIPREC-SRC\" <sip:SIPREC-SRC@{src}>;+sip.src"),
            srs_contact: format!("<sip:SIPREC-SRS@{dst}>;+sip.srs"),
            cseq: 100_001,
            extra: vec![
                (
                    "Allow",
                    "INVITE,ACK,CANCEL,BYE,REGISTER,REFER,INFO,SUBSCRIBE,NOTIFY,PRACK,UPDATE,OPTIONS".into(),
                ),
                ("Accept", "application/sdp, application/rs-metadata-request".into()),
                ("Require", "siprec".into()),
                ("Supported", "timer,100rel".into()),
                ("Session-Expires", "1800".into()),
                ("Min-SE", "90".into()),
                ("MIME-Version", "1.0".into()),
            ],
            sdp_user: "Sonus_UAC",
            offer_addr: src.ip(),
        },
        Vendor::Plain => Leg {
            call: call.clone(),
            from: format!("<sip:src@{sh}>"),
            to: format!("<sip:record@{dh}>"),
            request_uri: format!("sip:record@{dst}"),
            contact: format!("<sip:src@{src}>"),
            srs_contact: format!("<sip:record@{dst}>"),
            cseq: 1,
            extra: vec![("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS".into())],
            sdp_user: "-",
            offer_addr: src.ip(),
        },
    }
}

/// Cisco-Guid: four 10-digit decimal groups.
fn cisco_guid(h: u64) -> String {
    let a = h as u32;
    let b = (h >> 32) as u32;
    let c = crate::rng::mix64(h) as u32;
    let d = (crate::rng::mix64(h) >> 32) as u32;
    format!("{a:010}-{b:010}-{c:010}-{d:010}")
}

/// RFC 7989 Session-ID: 32 lower-case hex digits.
fn session_id_hex(call_id: &str) -> String {
    hex(&id128(&[call_id, "session-id"]))
}

/// Render a message: start line, headers, Content-Type (if any),
/// Content-Length (computed), blank line, body.
fn render(
    start: &str,
    headers: &[(&str, String)],
    content_type: Option<&str>,
    body: &str,
) -> String {
    let mut m = String::with_capacity(512 + body.len());
    m.push_str(start);
    m.push_str(CRLF);
    for (k, v) in headers {
        let _ = write!(m, "{k}: {v}{CRLF}");
    }
    if let Some(ct) = content_type {
        let _ = write!(m, "Content-Type: {ct}{CRLF}");
    }
    let _ = write!(m, "Content-Length: {}{CRLF}{CRLF}", body.len());
    m.push_str(body);
    m
}

/// `--boundary` parts, each body followed by an extra CRLF so that the CRLF
/// RFC 2046 assigns to the next delimiter does not eat the body's last line
/// ending; closed by `--boundary--`.
fn multipart(boundary: &str, parts: &[(Vec<(&str, &str)>, String)]) -> String {
    let mut b = String::new();
    for (headers, body) in parts {
        let _ = write!(b, "--{boundary}{CRLF}");
        for (k, v) in headers {
            let _ = write!(b, "{k}: {v}{CRLF}");
        }
        b.push_str(CRLF);
        b.push_str(body);
        b.push_str(CRLF);
    }
    let _ = write!(b, "--{boundary}--{CRLF}");
    b
}

/// A session description. `streams`: (port, payload type, rtpmap, label).
fn sdp(
    user: &str,
    call_id: &str,
    addr: IpAddr,
    streams: &[(u16, u8, Option<&str>, Option<&str>)],
    direction: &str,
    vendor: Vendor,
) -> String {
    let sess = hash_parts(&[call_id, user, "sdp"]) as u32;
    let mut s = String::new();
    let c = sdp_addr(addr);
    let _ = write!(s, "v=0{CRLF}o={user} {sess} {sess} {c}{CRLF}");
    let name = match vendor {
        Vendor::CiscoCube => "SIP Call",
        Vendor::Ribbon => "SIP Media Capabilities",
        _ => "-",
    };
    let _ = write!(s, "s={name}{CRLF}");
    let per_media_c = vendor == Vendor::Ribbon;
    if !per_media_c {
        let _ = write!(s, "c={c}{CRLF}");
    }
    let _ = write!(s, "t=0 0{CRLF}");
    for &(port, pt, rtpmap, label) in streams {
        let _ = write!(s, "m=audio {port} RTP/AVP {pt}{CRLF}");
        if per_media_c {
            let _ = write!(s, "c={c}{CRLF}");
            if let Some(l) = label {
                let _ = write!(s, "a=label:{l}{CRLF}");
            }
        }
        if let Some(r) = rtpmap {
            let _ = write!(s, "a=rtpmap:{pt} {r}{CRLF}");
        }
        if !per_media_c {
            if let Some(l) = label {
                let _ = write!(s, "a=label:{l}{CRLF}");
            }
        }
        let _ = write!(s, "a={direction}{CRLF}");
        match vendor {
            Vendor::Ribbon => {
                let _ = write!(s, "a=maxptime:20{CRLF}");
            }
            Vendor::CiscoCube | Vendor::AcmePacket => {
                let _ = write!(s, "a=ptime:20{CRLF}");
            }
            _ => {}
        }
    }
    s
}

fn offer_sdp(leg: &Leg) -> String {
    let call = &leg.call;
    let labelled = call.vendor != Vendor::Plain;
    let streams: Vec<_> = call
        .streams
        .iter()
        .map(|s| {
            (
                s.port,
                s.payload_type,
                s.rtpmap.as_deref(),
                labelled.then_some(s.label.as_str()),
            )
        })
        .collect();
    sdp(
        leg.sdp_user,
        &call.call_id,
        leg.offer_addr,
        &streams,
        "sendonly",
        call.vendor,
    )
}

fn answer_sdp(leg: &Leg) -> String {
    let call = &leg.call;
    let labelled = call.vendor != Vendor::Plain;
    let streams: Vec<_> = call
        .streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                call.answer_ports.get(i).copied().unwrap_or(0),
                s.payload_type,
                s.rtpmap.as_deref(),
                labelled.then_some(s.label.as_str()),
            )
        })
        .collect();
    // The answer is mediafork's own: generic style whatever the client.
    sdp(
        "mediafork",
        &call.call_id,
        call.media_addr,
        &streams,
        "recvonly",
        Vendor::Generic,
    )
}

/// The two participants of every generated metadata document.
struct Participant {
    aor: &'static str,
    name: &'static str,
}

const PARTICIPANTS: [Participant; 2] = [
    Participant {
        aor: "sip:alice@example.com",
        name: "Alice",
    },
    Participant {
        aor: "sip:bob@example.net",
        name: "Bob",
    },
];

/// Which participant sends stream `i`: even streams the caller (0), odd the
/// callee (1).
fn sender_of(i: usize) -> usize {
    i % 2
}

struct MetaIds {
    group: String,
    session: String,
    participants: [String; 2],
    streams: Vec<String>,
}

fn meta_ids(call: &CallSpec) -> MetaIds {
    let id = |what: &str, n: usize| base64(&id128(&[&call.call_id, what, &n.to_string()]));
    MetaIds {
        group: id("group", 0),
        session: id("session", 0),
        participants: [id("participant", 0), id("participant", 1)],
        streams: (0..call.streams.len()).map(|i| id("stream", i)).collect(),
    }
}

/// The streams participant `p` sends and receives, as metadata ids.
fn send_recv(ids: &MetaIds, p: usize) -> (Vec<&str>, Vec<&str>) {
    let mut send = Vec::new();
    let mut recv = Vec::new();
    for (i, s) in ids.streams.iter().enumerate() {
        if sender_of(i) == p {
            send.push(s.as_str());
        } else {
            recv.push(s.as_str());
        }
    }
    (send, recv)
}

/// RFC 7865 metadata (Generic, CiscoCube) or its `tns:`-prefixed,
/// draft-namespace variant (Ribbon).
fn metadata_rfc(call: &CallSpec) -> String {
    let ids = meta_ids(call);
    let (p, ns) = match call.vendor {
        Vendor::Ribbon => ("tns:", "xmlns:tns=\"urn:ietf:params:xml:ns:recording\""),
        _ => ("", "xmlns=\"urn:ietf:params:xml:ns:recording:1\""),
    };
    let t = METADATA_TIME;
    let cid = xml_escape(&call.call_id);
    let mut x = String::new();
    let _ = write!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>{CRLF}");
    let _ = write!(x, "<{p}recording {ns}>{CRLF}");
    let _ = write!(x, "  <{p}datamode>complete</{p}datamode>{CRLF}");
    let _ = write!(x, "  <{p}group group_id=\"{}\">{CRLF}", ids.group);
    let _ = write!(x, "    <{p}associate-time>{t}</{p}associate-time>{CRLF}");
    if call.vendor == Vendor::Ribbon {
        // Ribbon copies the original call's headers into an unprefixed
        // element of its own namespace: a parser keyed on the recording
        // namespace must step over it.
        let _ = write!(
            x,
            "    <callData xmlns=\"urn:ietf:params:xml:ns:callData\">{CRLF}"
        );
        let _ = write!(
            x,
            "      <fromhdr>&lt;{}&gt;;tag=cs1</fromhdr>{CRLF}",
            PARTICIPANTS[0].aor
        );
        let _ = write!(
            x,
            "      <tohdr>&lt;{}&gt;;tag=cs2</tohdr>{CRLF}",
            PARTICIPANTS[1].aor
        );
        let _ = write!(x, "      <callid>cs-{cid}</callid>{CRLF}");
        let _ = write!(
            x,
            "      <gcid>{}</gcid>{CRLF}",
            hash_parts(&[&call.call_id, "gcid"]) as u32
        );
        let _ = write!(x, "    </callData>{CRLF}");
    }
    let _ = write!(x, "  </{p}group>{CRLF}");
    let _ = write!(x, "  <{p}session session_id=\"{}\">{CRLF}", ids.session);
    if call.vendor != Vendor::Ribbon {
        let sid = session_id_hex(&call.call_id);
        let _ = write!(
            x,
            "    <{p}sipSessionID>{sid};remote=00000000000000000000000000000000</{p}sipSessionID>{CRLF}"
        );
    }
    let _ = write!(x, "    <{p}group-ref>{}</{p}group-ref>{CRLF}", ids.group);
    let _ = write!(x, "    <{p}start-time>{t}</{p}start-time>{CRLF}");
    if call.vendor == Vendor::CiscoCube {
        let _ = write!(
            x,
            "    <extensiondata xmlns:call=\"urn:x-cisco:parameters:xml:ns:callinfo\">{CRLF}"
        );
        let _ = write!(x, "      <call:callid>cs-{cid}</call:callid>{CRLF}");
        let _ = write!(
            x,
            "      <call:ccid>{}</call:ccid>{CRLF}",
            hash_parts(&[&call.call_id, "ccid"]) as u16
        );
        let _ = write!(x, "    </extensiondata>{CRLF}");
    }
    let _ = write!(x, "  </{p}session>{CRLF}");
    for (i, part) in PARTICIPANTS.iter().enumerate() {
        // Ribbon writes AORs without the scheme.
        let aor = if call.vendor == Vendor::Ribbon {
            part.aor.trim_start_matches("sip:")
        } else {
            part.aor
        };
        let _ = write!(
            x,
            "  <{p}participant participant_id=\"{}\">{CRLF}",
            ids.participants[i]
        );
        let _ = write!(x, "    <{p}nameID aor=\"{aor}\">{CRLF}");
        let _ = write!(
            x,
            "      <{p}name xml:lang=\"en\">{}</{p}name>{CRLF}",
            part.name
        );
        let _ = write!(x, "    </{p}nameID>{CRLF}");
        let _ = write!(x, "  </{p}participant>{CRLF}");
    }
    for (i, s) in call.streams.iter().enumerate() {
        let _ = write!(
            x,
            "  <{p}stream stream_id=\"{}\" session_id=\"{}\">{CRLF}",
            ids.streams[i], ids.session
        );
        let _ = write!(x, "    <{p}label>{}</{p}label>{CRLF}", xml_escape(&s.label));
        let _ = write!(x, "  </{p}stream>{CRLF}");
    }
    let _ = write!(
        x,
        "  <{p}sessionrecordingassoc session_id=\"{}\">{CRLF}",
        ids.session
    );
    let _ = write!(x, "    <{p}associate-time>{t}</{p}associate-time>{CRLF}");
    let _ = write!(x, "  </{p}sessionrecordingassoc>{CRLF}");
    for pid in &ids.participants {
        let _ = write!(
            x,
            "  <{p}participantsessionassoc participant_id=\"{pid}\" session_id=\"{}\">{CRLF}",
            ids.session
        );
        let _ = write!(x, "    <{p}associate-time>{t}</{p}associate-time>{CRLF}");
        let _ = write!(x, "  </{p}participantsessionassoc>{CRLF}");
    }
    for (i, pid) in ids.participants.iter().enumerate() {
        let (send, recv) = send_recv(&ids, i);
        let _ = write!(
            x,
            "  <{p}participantstreamassoc participant_id=\"{pid}\">{CRLF}"
        );
        for s in send {
            let _ = write!(x, "    <{p}send>{s}</{p}send>{CRLF}");
        }
        for s in recv {
            let _ = write!(x, "    <{p}recv>{s}</{p}recv>{CRLF}");
        }
        let _ = write!(x, "  </{p}participantstreamassoc>{CRLF}");
    }
    let _ = write!(x, "</{p}recording>{CRLF}");
    x
}

/// Acme Packet / Oracle SBC metadata in the pre-RFC draft format.
fn metadata_acme(call: &CallSpec) -> String {
    let ids = meta_ids(call);
    let t = "2024-01-01T00:00:00"; // Acme writes no zone designator
    let ucid_bytes = id128(&[&call.call_id, "ucid"]);
    let ucid = hex(&ucid_bytes[..11]).to_uppercase();
    let mut x = String::new();
    let _ = write!(x, "<?xml version='1.0' encoding='UTF-8'?>{CRLF}");
    let _ = write!(
        x,
        "<recording xmlns='urn:ietf:params:xml:ns:recording'>{CRLF}"
    );
    let _ = write!(x, "  <datamode>complete</datamode>{CRLF}");
    let _ = write!(x, "  <session id=\"{}\">{CRLF}", ids.session);
    let _ = write!(x, "    <associate-time>{t}</associate-time>{CRLF}");
    // The session-level namespace really is written with a single slash by
    // these SBCs; the participant-level one is correct. Reproduced on purpose.
    let _ = write!(
        x,
        "    <extensiondata xmlns:apkt=\"http:/acmepacket.com/siprec/extensiondata\">{CRLF}"
    );
    let _ = write!(x, "      <apkt:ucid>{ucid};encoding=hex</apkt:ucid>{CRLF}");
    let _ = write!(x, "      <apkt:callerOrig>true</apkt:callerOrig>{CRLF}");
    let _ = write!(x, "    </extensiondata>{CRLF}");
    let _ = write!(x, "  </session>{CRLF}");
    for (i, part) in PARTICIPANTS.iter().enumerate() {
        let (send, recv) = send_recv(&ids, i);
        let _ = write!(
            x,
            "  <participant id=\"{}\" session=\"{}\">{CRLF}",
            ids.participants[i], ids.session
        );
        let _ = write!(x, "    <nameID aor=\"{}\">{CRLF}", part.aor);
        let _ = write!(x, "      <name>{}</name>{CRLF}", part.name);
        let _ = write!(x, "    </nameID>{CRLF}");
        for s in send {
            let _ = write!(x, "    <send>{s}</send>{CRLF}");
        }
        for s in recv {
            let _ = write!(x, "    <recv>{s}</recv>{CRLF}");
        }
        let _ = write!(x, "    <associate-time>{t}</associate-time>{CRLF}");
        let _ = write!(
            x,
            "    <extensiondata xmlns:apkt=\"http://acmepacket.com/siprec/extensiondata\">{CRLF}"
        );
        let _ = write!(
            x,
            "      <apkt:callingParty>{}</apkt:callingParty>{CRLF}",
            i == 0
        );
        let _ = write!(x, "    </extensiondata>{CRLF}");
        let _ = write!(x, "  </participant>{CRLF}");
    }
    for (i, s) in call.streams.iter().enumerate() {
        let _ = write!(
            x,
            "  <stream id=\"{}\" session=\"{}\">{CRLF}",
            ids.streams[i], ids.session
        );
        let _ = write!(x, "    <label>{}</label>{CRLF}", xml_escape(&s.label));
        let _ = write!(x, "    <mode>separate</mode>{CRLF}");
        let _ = write!(x, "    <associate-time>{t}</associate-time>{CRLF}");
        let _ = write!(x, "  </stream>{CRLF}");
    }
    let _ = write!(x, "</recording>{CRLF}");
    x
}

/// The `application/rs-metadata+xml` document `siprec_invite` sends for
/// `call` (empty for [`Vendor::Plain`]). Exposed so tests can compare what
/// mediafork stored or logged against it.
pub fn metadata(call: &CallSpec) -> String {
    match call.vendor {
        Vendor::Plain => String::new(),
        Vendor::AcmePacket => metadata_acme(call),
        _ => metadata_rfc(call),
    }
}

/// ISUP transparency data as CUBE attaches it to SIP-T style calls.
fn gtd_body() -> String {
    let lines = [
        "IAM,",
        "PRN,isdn*,,NET5*,",
        "USI,rate,c,s,c,1",
        "USI,lay1,ulaw",
        "TMR,00",
        "CPN,00,,1,2000",
        "CGN,04,,1,y,4,1000",
        "CPC,09",
        "FCI,,,,,,,y,",
    ];
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push_str(CRLF);
    }
    s
}

fn invite_text(leg: &Leg) -> String {
    let call = &leg.call;
    let via = format!(
        "SIP/2.0/UDP {};branch={}",
        call.src_sip,
        branch(&call.call_id, "INVITE", leg.cseq)
    );
    let mut headers: Vec<(&str, String)> = vec![
        ("Via", via),
        ("Max-Forwards", "70".into()),
        ("From", format!("{};tag={}", leg.from, call.from_tag)),
        ("To", leg.to.clone()),
        ("Call-ID", call.call_id.clone()),
        ("CSeq", format!("{} INVITE", leg.cseq)),
        ("Contact", leg.contact.clone()),
    ];
    headers.extend(leg.extra.iter().map(|(k, v)| (*k, v.clone())));
    let sdp = offer_sdp(leg);
    let Some(b) = boundary(call.vendor) else {
        return render(
            &format!("INVITE {} SIP/2.0", leg.request_uri),
            &headers,
            Some("application/sdp"),
            &sdp,
        );
    };
    let meta = metadata(call);
    let parts: Vec<(Vec<(&str, &str)>, String)> = match call.vendor {
        Vendor::Ribbon => vec![
            (
                vec![
                    ("Content-Disposition", "session; handling=required"),
                    ("Content-Type", "application/sdp"),
                ],
                sdp,
            ),
            (
                vec![
                    ("Content-Disposition", "recording-session"),
                    ("Content-Type", "application/rs-metadata+xml"),
                ],
                meta,
            ),
        ],
        Vendor::CiscoCube => vec![
            (
                vec![
                    ("Content-Type", "application/sdp"),
                    ("Content-Disposition", "session;handling=required"),
                ],
                sdp,
            ),
            (
                vec![
                    ("Content-Type", "application/rs-metadata+xml"),
                    ("Content-Disposition", "recording-session"),
                ],
                meta,
            ),
            (
                vec![
                    ("Content-Type", "application/gtd"),
                    ("Content-Disposition", "signal;handling=optional"),
                ],
                gtd_body(),
            ),
        ],
        _ => vec![
            (vec![("Content-Type", "application/sdp")], sdp),
            (
                vec![
                    ("Content-Type", "application/rs-metadata+xml"),
                    ("Content-Disposition", "recording-session"),
                ],
                meta,
            ),
        ],
    };
    render(
        &format!("INVITE {} SIP/2.0", leg.request_uri),
        &headers,
        Some(&format!("multipart/mixed;boundary={b}")),
        &multipart(b, &parts),
    )
}

fn invite_via(leg: &Leg) -> String {
    format!(
        "SIP/2.0/UDP {};branch={}",
        leg.call.src_sip,
        branch(&leg.call.call_id, "INVITE", leg.cseq)
    )
}

fn ok_200_text(leg: &Leg) -> String {
    let call = &leg.call;
    let headers: Vec<(&str, String)> = vec![
        ("Via", invite_via(leg)),
        ("From", format!("{};tag={}", leg.from, call.from_tag)),
        ("To", format!("{};tag={}", leg.to, to_tag(call))),
        ("Call-ID", call.call_id.clone()),
        ("CSeq", format!("{} INVITE", leg.cseq)),
        ("Contact", leg.srs_contact.clone()),
        ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS".into()),
    ];
    render(
        "SIP/2.0 200 OK",
        &headers,
        Some("application/sdp"),
        &answer_sdp(leg),
    )
}

/// An in-dialog request from the SRC (ACK or BYE) with CSeq `cseq`.
fn in_dialog_request(leg: &Leg, method: &str, cseq: u32) -> String {
    let call = &leg.call;
    let headers: Vec<(&str, String)> = vec![
        (
            "Via",
            format!(
                "SIP/2.0/UDP {};branch={}",
                call.src_sip,
                branch(&call.call_id, method, cseq)
            ),
        ),
        ("Max-Forwards", "70".into()),
        ("From", format!("{};tag={}", leg.from, call.from_tag)),
        ("To", format!("{};tag={}", leg.to, to_tag(call))),
        ("Call-ID", call.call_id.clone()),
        ("CSeq", format!("{cseq} {method}")),
    ];
    // In-dialog requests go to the remote target (the recorder's Contact).
    render(
        &format!("{method} {} SIP/2.0", leg.request_uri),
        &headers,
        None,
        "",
    )
}

fn ok_200_bye_text(leg: &Leg) -> String {
    let call = &leg.call;
    let cseq = leg.cseq + 1;
    let headers: Vec<(&str, String)> = vec![
        (
            "Via",
            format!(
                "SIP/2.0/UDP {};branch={}",
                call.src_sip,
                branch(&call.call_id, "BYE", cseq)
            ),
        ),
        ("From", format!("{};tag={}", leg.from, call.from_tag)),
        ("To", format!("{};tag={}", leg.to, to_tag(call))),
        ("Call-ID", call.call_id.clone()),
        ("CSeq", format!("{cseq} BYE")),
    ];
    render("SIP/2.0 200 OK", &headers, None, "")
}

/// The recording client's INVITE: for SIPREC vendors a `multipart/mixed`
/// body with the SDP offer (`a=sendonly` and `a=label` per stream, `c=` the
/// SRC's IP) and the [`metadata`] mapping the caller to stream 0 and the
/// callee to stream 1; for [`Vendor::Plain`] the SDP alone.
pub fn siprec_invite(call: &CallSpec) -> String {
    invite_text(&leg_for(call))
}

/// The recorder's 200 OK to the INVITE: plain SDP with `c=` the
/// `media_addr`, one `m=` per offered stream on the answer port (0 when
/// missing), `a=recvonly` and, except for [`Vendor::Plain`], the stream's
/// `a=label`. The To tag is [`to_tag`].
pub fn ok_200(call: &CallSpec) -> String {
    ok_200_text(&leg_for(call))
}

/// The client's ACK to the 200 OK (a new transaction, so a new branch).
pub fn ack(call: &CallSpec) -> String {
    let leg = leg_for(call);
    in_dialog_request(&leg, "ACK", leg.cseq)
}

/// The client's BYE ending the recording session (CSeq = INVITE's + 1).
pub fn bye(call: &CallSpec) -> String {
    let leg = leg_for(call);
    in_dialog_request(&leg, "BYE", leg.cseq + 1)
}

/// The recorder's 200 OK to [`bye`].
pub fn ok_200_bye(call: &CallSpec) -> String {
    ok_200_bye_text(&leg_for(call))
}

/// One party of a CUCM-recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CucmParty {
    /// The party's call leg identifier (`x-refci` / `x-farendrefci`).
    pub refci: u32,
    /// Device name, e.g. `SEP0011223344AA` for a phone.
    pub device: String,
    /// Directory number.
    pub dn: String,
}

/// A CUCM network-based recording (built-in bridge of the agent's phone):
/// CUCM places two ordinary SIP calls to the recorder over a SIP trunk, one
/// per direction of the recorded call, and the phone forks its RTP to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CucmRecording {
    /// Call-IDs of the near-end and far-end recording calls.
    pub call_ids: [String; 2],
    /// From tags of the two calls.
    pub from_tags: [String; 2],
    /// CUCM's SIP address (source of the INVITEs).
    pub cucm_sip: SocketAddr,
    /// The recorder's SIP address.
    pub recorder_sip: SocketAddr,
    /// The recording profile's destination number (user part of To/R-URI).
    pub recorder_dn: String,
    /// Cluster ID (`x-nearendclusterid` / `x-farendclusterid`).
    pub cluster_id: String,
    /// The recorded party (the agent whose phone forks).
    pub near: CucmParty,
    /// The other party (the customer).
    pub far: CucmParty,
    /// IP of the near-end phone: the RTP of both streams comes from it.
    pub phone_media: IpAddr,
    /// The phone's RTP ports for the near-end and far-end streams.
    pub media_ports: [u16; 2],
    /// The recorder's RTP ports for the two calls.
    pub answer_ports: [u16; 2],
    /// The recorder's media address.
    pub recorder_media: IpAddr,
    /// RTP payload type of both streams.
    pub payload_type: u8,
    /// `a=rtpmap` encoding, if any.
    pub rtpmap: Option<String>,
}

/// Which of the two CUCM recording calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CucmStream {
    /// Carries the near-end (agent's) voice.
    NearEnd,
    /// Carries the far-end (customer's) voice, forked by the same phone.
    FarEnd,
}

impl CucmStream {
    fn index(self) -> usize {
        match self {
            Self::NearEnd => 0,
            Self::FarEnd => 1,
        }
    }
}

impl CucmRecording {
    /// The From URI parameters CUCM's "SIP header enhancement" adds.
    ///
    /// Assumption, following the examples in Cisco's CUCM recording
    /// use-case guide: both calls carry the *same* party parameters — the
    /// `x-refci`/`x-nearend*` set always describes the recorded (near-end)
    /// party and `x-farend*` the other one; what tells the two calls apart is
    /// the leading flag parameter, `x-nearend` on the call carrying the
    /// near-end voice and `x-farend` on the one carrying the far-end voice.
    /// The user part of the From URI is the near-end DN in both. (Near and
    /// far values are *not* swapped between the two INVITEs.)
    pub fn from_params(&self, which: CucmStream) -> String {
        let flag = match which {
            CucmStream::NearEnd => "x-nearend",
            CucmStream::FarEnd => "x-farend",
        };
        format!(
            "{flag};x-refci={};x-nearendclusterid={};x-nearenddevice={};x-nearendaddr={};\
             x-farendrefci={};x-farendclusterid={};x-farenddevice={};x-farendaddr={}",
            self.near.refci,
            self.cluster_id,
            self.near.device,
            self.near.dn,
            self.far.refci,
            self.cluster_id,
            self.far.device,
            self.far.dn
        )
    }

    /// The recording call as a [`CallSpec`] ([`Vendor::Plain`], one stream
    /// labelled `"near"` or `"far"`), e.g. to generate its RTP consistently.
    /// Note that its `src_sip` is CUCM while the RTP comes from
    /// `phone_media`.
    pub fn call_spec(&self, which: CucmStream) -> CallSpec {
        let i = which.index();
        CallSpec {
            call_id: self.call_ids[i].clone(),
            from_tag: self.from_tags[i].clone(),
            src_sip: self.cucm_sip,
            dst_sip: self.recorder_sip,
            streams: vec![OfferedStream {
                label: (if i == 0 { "near" } else { "far" }).to_string(),
                port: self.media_ports[i],
                payload_type: self.payload_type,
                rtpmap: self.rtpmap.clone(),
            }],
            answer_ports: vec![self.answer_ports[i]],
            media_addr: self.recorder_media,
            vendor: Vendor::Plain,
        }
    }

    fn leg(&self, which: CucmStream) -> Leg {
        let call = self.call_spec(which);
        let cucm_host = uri_host(self.cucm_sip.ip());
        let rec_host = uri_host(self.recorder_sip.ip());
        let i = which.index();
        let guid = hash_parts(&[&self.call_ids[i], "cisco-guid"]);
        Leg {
            from: format!(
                "<sip:{}@{cucm_host};{}>",
                self.near.dn,
                self.from_params(which)
            ),
            to: format!("<sip:{}@{rec_host}>", self.recorder_dn),
            request_uri: format!("sip:{}@{}", self.recorder_dn, self.recorder_sip),
            contact: format!("<sip:{}@{}>", self.near.dn, self.cucm_sip),
            srs_contact: format!("<sip:{}@{}>", self.recorder_dn, self.recorder_sip),
            cseq: 101,
            extra: vec![
                ("Date", SIP_DATE.into()),
                ("Supported", "timer,resource-priority,replaces".into()),
                ("User-Agent", "Cisco-CUCM14.0".into()),
                ("Cisco-Guid", cisco_guid(guid)),
                ("Session-Expires", "1800".into()),
                ("Allow", "INVITE, OPTIONS, INFO, BYE, CANCEL, ACK, PRACK, UPDATE, REFER, SUBSCRIBE, NOTIFY".into()),
            ],
            sdp_user: "CiscoSystemsCCM-SIP",
            offer_addr: self.phone_media,
            call,
        }
    }

    /// The INVITE of one recording call (early offer: SDP with the phone's
    /// address and port, `a=sendonly`). CUCM trunks configured for delayed
    /// offer send no SDP instead; that variant is not modelled.
    pub fn invite(&self, which: CucmStream) -> String {
        invite_text(&self.leg(which))
    }

    /// The recorder's 200 OK to [`CucmRecording::invite`].
    pub fn ok_200(&self, which: CucmStream) -> String {
        ok_200_text(&self.leg(which))
    }

    /// CUCM's ACK.
    pub fn ack(&self, which: CucmStream) -> String {
        let leg = self.leg(which);
        in_dialog_request(&leg, "ACK", leg.cseq)
    }

    /// CUCM's BYE.
    pub fn bye(&self, which: CucmStream) -> String {
        let leg = self.leg(which);
        in_dialog_request(&leg, "BYE", leg.cseq + 1)
    }

    /// The recorder's 200 OK to [`CucmRecording::bye`].
    pub fn ok_200_bye(&self, which: CucmStream) -> String {
        ok_200_bye_text(&self.leg(which))
    }
}

/// The two INVITEs of a CUCM network-based recording, near-end call first.
/// See [`CucmRecording::from_params`] for the header assumption.
pub fn cucm_invites(rec: &CucmRecording) -> [String; 2] {
    [
        rec.invite(CucmStream::NearEnd),
        rec.invite(CucmStream::FarEnd),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(vendor: Vendor) -> CallSpec {
        CallSpec::two_streams(
            "abc@192.0.2.1",
            "192.0.2.1:5060".parse().unwrap(),
            "198.51.100.7:5060".parse().unwrap(),
            vendor,
        )
    }

    #[test]
    fn messages_are_deterministic() {
        let c = call(Vendor::Generic);
        assert_eq!(siprec_invite(&c), siprec_invite(&c.clone()));
        assert_ne!(
            branch("a", "INVITE", 1),
            branch("a", "BYE", 2),
            "ACK/BYE need their own transactions"
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_uris_only() {
        let c = CallSpec::two_streams(
            "v6",
            "[2001:db8::1]:5060".parse().unwrap(),
            "[2001:db8::2]:5080".parse().unwrap(),
            Vendor::Generic,
        );
        let inv = siprec_invite(&c);
        assert!(inv.starts_with("INVITE sip:srs@[2001:db8::2]:5080 SIP/2.0\r\n"));
        assert!(inv.contains("Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK"));
        assert!(inv.contains("c=IN IP6 2001:db8::1\r\n"));
        assert!(ok_200(&c).contains("c=IN IP6 2001:db8::2\r\n"));
    }

    #[test]
    fn xml_special_characters_are_escaped() {
        assert_eq!(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
