//! One SIPREC recording session from the client (SRC) side, sans IO: fed
//! responses, requests and the time, it says what to send and when media
//! starts and stops. The driver in `live.rs` owns the sockets.
//!
//! Transactions over UDP as RFC 3261 §17.1 has them, simplified to what a
//! load generator needs: the INVITE is retransmitted from T1 doubling until
//! a provisional or final response (timer A), given up after 64·T1 (timer
//! B) or, once ringing, after 3 minutes (timer C); the BYE doubles from T1
//! capped at T2 (timer E) and is given up after 64·T1 (timer F).

use std::net::{IpAddr, SocketAddr};

use mediafork_testkit::sip::{siprec_invite, CallSpec, OfferedStream};

use crate::args::{Codec, Style};
use crate::sipmsg::{answer_media, response_to, uri_of, Msg};
use crate::stream::mix;

/// RFC 3261 T1: the round-trip estimate retransmissions start from.
pub const T1_NS: u64 = 500_000_000;
/// RFC 3261 T2: the cap of non-INVITE retransmission intervals.
pub const T2_NS: u64 = 4_000_000_000;
/// How long an INVITE may ring before the call is given up.
const TIMER_C_NS: u64 = 180_000_000_000;

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// INVITE sent, no final response yet.
    Inviting {
        /// Next retransmission (`u64::MAX` once a provisional stopped them).
        retransmit_at: u64,
        /// The current retransmission interval (doubles each time).
        interval: u64,
        /// When the call fails for lack of a final response.
        give_up_at: u64,
    },
    /// Answered and ACKed; media flowing until `bye_at`.
    Up {
        /// When the call hangs up.
        bye_at: u64,
    },
    /// BYE sent, waiting for its response.
    Ending {
        /// Next BYE retransmission.
        retransmit_at: u64,
        /// The current retransmission interval (doubling, capped at T2).
        interval: u64,
        /// When the BYE is given up.
        give_up_at: u64,
    },
    /// Over; nothing more to send.
    Done,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this SIP message to the call's peer.
    Send(String),
    /// The call is answered: send RTP for each offered stream to its
    /// answered address (`None`: the recorder rejected that stream).
    StartMedia(Vec<Option<SocketAddr>>),
    /// Stop this call's RTP.
    StopMedia,
    /// The INVITE got a 2xx.
    Answered,
    /// The call failed: the final status code, `"timeout"`, or
    /// `"no-media"` (a 2xx whose SDP accepted no stream).
    Failed(String),
    /// Our BYE was answered (`true` for 2xx) or timed out (`false`).
    ByeDone(bool),
    /// The recorder ended the call with its own BYE.
    EndedByRecorder,
}

/// The dialog state after a 2xx.
#[derive(Debug, Clone)]
struct Dialog {
    /// To header with the recorder's tag.
    to: String,
    /// Remote target: the 2xx's Contact URI.
    target: String,
    /// Route set (Record-Route of the 2xx, reversed: we are the UAC).
    routes: Vec<String>,
}

/// Everything needed to build one call's INVITE.
#[derive(Debug, Clone)]
pub struct CallParams {
    /// Sequence number of the call in this run.
    pub index: u64,
    /// Distinguishes runs so a recorder never sees a Call-ID twice.
    pub run_tag: String,
    /// Our SIP socket's address (Via, Contact, From host, SDP `c=`).
    pub local: SocketAddr,
    /// The recorder's SIP address.
    pub target: SocketAddr,
    /// Our RTP source ports of the two streams (offered in the SDP).
    pub rtp_ports: [u16; 2],
    /// Recorder ports to write into a synthesized answer (pcap mode).
    pub answer_ports: [u16; 2],
    /// Codec of both streams.
    pub codec: Codec,
    /// Packetization time written into the SDP.
    pub ptime_ms: u32,
    /// Vendor shape of the INVITE.
    pub style: Style,
}

/// The testkit description of the call: the same builders the recorder's
/// own tests use, so every style is one the recorder is known to parse.
pub fn call_spec(p: &CallParams) -> CallSpec {
    let stream = |label: &str, port| OfferedStream {
        label: label.to_string(),
        port,
        payload_type: p.codec.payload_type(),
        rtpmap: Some(p.codec.rtpmap().to_string()),
    };
    let host = match p.local.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut spec = CallSpec::two_streams(
        &format!("lg-{}-{}@{host}", p.run_tag, p.index),
        p.local,
        p.target,
        p.style.vendor(),
    );
    spec.streams = vec![stream("1", p.rtp_ports[0]), stream("2", p.rtp_ports[1])];
    spec.answer_ports = p.answer_ports.to_vec();
    spec
}

/// The INVITE text of `spec` with the SDP's packetization time set to
/// `ptime_ms` (the testkit shapes say 20 ms, or nothing for generic).
/// Content-Length is recomputed; the multipart body is delimited by its
/// boundary, so the SDP part may change length freely.
pub fn invite_text(spec: &CallSpec, ptime_ms: u32) -> String {
    let text = siprec_invite(spec);
    set_ptime(&text, ptime_ms)
}

/// Every style says its packetization time (the generic shape has none of
/// its own), so a recorder sizing buffers from the SDP sees the truth.
fn set_ptime(text: &str, ptime_ms: u32) -> String {
    let p = format!("a=ptime:{ptime_ms}\r\n");
    let out = if text.contains("a=ptime:20\r\n") {
        text.replace("a=ptime:20\r\n", &p)
    } else if text.contains("a=maxptime:20\r\n") {
        text.replace("a=maxptime:20\r\n", &format!("a=maxptime:{ptime_ms}\r\n"))
    } else {
        text.replace("a=sendonly\r\n", &format!("a=sendonly\r\n{p}"))
    };
    fix_content_length(&out)
}

/// Rewrite the top-level Content-Length to the body's byte length.
fn fix_content_length(text: &str) -> String {
    let Some(head_end) = text.find("\r\n\r\n") else {
        return text.to_string();
    };
    let body_len = text.len() - head_end - 4;
    let head: Vec<String> = text[..head_end]
        .split("\r\n")
        .map(|l| {
            if l.to_ascii_lowercase().starts_with("content-length:") {
                format!("Content-Length: {body_len}")
            } else {
                l.to_string()
            }
        })
        .collect();
    format!("{}\r\n\r\n{}", head.join("\r\n"), &text[head_end + 4..])
}

/// One call's client state machine.
#[derive(Debug)]
pub struct Call {
    /// Sequence number of the call in the run.
    pub index: u64,
    /// Call-ID.
    pub call_id: String,
    /// Our address (Via sent-by).
    local: SocketAddr,
    invite: String,
    invite_uri: String,
    invite_via: String,
    /// Our From header, tag included.
    from: String,
    cseq: u32,
    duration_ns: u64,
    dialog: Option<Dialog>,
    /// The SDP offer, for answering a re-INVITE.
    offer_sdp: String,
    bye_text: Option<String>,
    /// Hang up as soon as answered (the run is stopping).
    hangup_asap: bool,
    /// Current phase.
    pub phase: Phase,
}

impl Call {
    /// A call for `spec`, whose INVITE is `invite`, that stays up for
    /// `duration_ns` after its answer. Sends the INVITE at `now`.
    pub fn start(
        index: u64,
        spec: &CallSpec,
        invite: String,
        duration_ns: u64,
        now: u64,
        out: &mut Vec<Action>,
    ) -> Call {
        let parsed = Msg::parse(invite.as_bytes()).expect("testkit INVITEs parse");
        let header = |n: &str| parsed.header(n).unwrap_or_default().to_string();
        let invite_uri = match &parsed.start {
            crate::sipmsg::Start::Request { uri, .. } => uri.clone(),
            crate::sipmsg::Start::Response { .. } => unreachable!("an INVITE is a request"),
        };
        let cseq = parsed.cseq().map_or(1, |(n, _)| n);
        let offer_sdp = offer_sdp_of(&invite);
        out.push(Action::Send(invite.clone()));
        Call {
            index,
            call_id: spec.call_id.clone(),
            local: spec.src_sip,
            invite_uri,
            invite_via: header("Via"),
            from: header("From"),
            cseq,
            duration_ns,
            dialog: None,
            offer_sdp,
            bye_text: None,
            hangup_asap: false,
            invite,
            phase: Phase::Inviting {
                retransmit_at: now + T1_NS,
                interval: T1_NS,
                give_up_at: now + 64 * T1_NS,
            },
        }
    }

    /// When [`on_timer`](Self::on_timer) next has something to do.
    pub fn next_timer(&self) -> Option<u64> {
        match self.phase {
            Phase::Inviting {
                retransmit_at,
                give_up_at,
                ..
            }
            | Phase::Ending {
                retransmit_at,
                give_up_at,
                ..
            } => Some(retransmit_at.min(give_up_at)),
            Phase::Up { bye_at } => Some(bye_at),
            Phase::Done => None,
        }
    }

    /// Whether the call is over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Retransmit, give up, or hang up, as the time says.
    pub fn on_timer(&mut self, now: u64, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Inviting {
                retransmit_at,
                interval,
                give_up_at,
            } => {
                if now >= give_up_at {
                    self.phase = Phase::Done;
                    out.push(Action::Failed("timeout".into()));
                } else if now >= retransmit_at {
                    out.push(Action::Send(self.invite.clone()));
                    let interval = interval * 2;
                    self.phase = Phase::Inviting {
                        retransmit_at: now + interval,
                        interval,
                        give_up_at,
                    };
                }
            }
            Phase::Up { bye_at } if now >= bye_at => self.send_bye(now, out),
            Phase::Ending {
                retransmit_at,
                interval,
                give_up_at,
            } => {
                if now >= give_up_at {
                    self.phase = Phase::Done;
                    out.push(Action::ByeDone(false));
                } else if now >= retransmit_at {
                    if let Some(b) = &self.bye_text {
                        out.push(Action::Send(b.clone()));
                    }
                    let interval = (interval * 2).min(T2_NS);
                    self.phase = Phase::Ending {
                        retransmit_at: now + interval,
                        interval,
                        give_up_at,
                    };
                }
            }
            _ => {}
        }
    }

    /// End the call as soon as possible: BYE now if up, right after the
    /// answer if still inviting.
    pub fn hang_up(&mut self, now: u64, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Up { .. } => self.send_bye(now, out),
            Phase::Inviting { .. } => self.hangup_asap = true,
            _ => {}
        }
    }

    fn send_bye(&mut self, now: u64, out: &mut Vec<Action>) {
        out.push(Action::StopMedia);
        let bye = self.in_dialog_request("BYE", self.cseq + 1, None);
        out.push(Action::Send(bye.clone()));
        self.bye_text = Some(bye);
        self.phase = Phase::Ending {
            retransmit_at: now + T1_NS,
            interval: T1_NS,
            give_up_at: now + 64 * T1_NS,
        };
    }

    /// A response for this call (matched by Call-ID).
    pub fn on_response(&mut self, msg: &Msg, now: u64, out: &mut Vec<Action>) {
        let (Some(code), Some((cseq, method))) = (msg.code(), msg.cseq()) else {
            return;
        };
        if method.eq_ignore_ascii_case("INVITE") && cseq == self.cseq {
            self.on_invite_response(code, msg, now, out);
        } else if method.eq_ignore_ascii_case("BYE")
            && cseq == self.cseq + 1
            && code >= 200
            && matches!(self.phase, Phase::Ending { .. })
        {
            self.phase = Phase::Done;
            out.push(Action::ByeDone(code < 300));
        }
    }

    fn on_invite_response(&mut self, code: u16, msg: &Msg, now: u64, out: &mut Vec<Action>) {
        let Phase::Inviting { give_up_at, .. } = self.phase else {
            if (200..300).contains(&code) && self.dialog.is_some() {
                // A retransmitted 2xx: our ACK was lost.
                out.push(Action::Send(self.in_dialog_request("ACK", self.cseq, None)));
            }
            return;
        };
        if code < 200 {
            // Provisional: stop retransmitting, but do not ring forever.
            self.phase = Phase::Inviting {
                retransmit_at: u64::MAX,
                interval: T1_NS,
                give_up_at: give_up_at.max(now + TIMER_C_NS),
            };
            return;
        }
        let to = msg.header("To").unwrap_or_default().to_string();
        if code >= 300 {
            out.push(Action::Send(self.non_2xx_ack(&to)));
            self.phase = Phase::Done;
            out.push(Action::Failed(code.to_string()));
            return;
        }
        let target = msg
            .header("Contact")
            .map(|c| uri_of(c).to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| self.invite_uri.clone());
        let mut routes: Vec<String> = msg
            .headers_all("Record-Route")
            .flat_map(|v| v.split(','))
            .map(|r| r.trim().to_string())
            .collect();
        routes.reverse();
        self.dialog = Some(Dialog { to, target, routes });
        out.push(Action::Send(self.in_dialog_request("ACK", self.cseq, None)));
        out.push(Action::Answered);
        let media = std::str::from_utf8(&msg.body)
            .map(answer_media)
            .unwrap_or_default();
        if media.iter().all(Option::is_none) {
            out.push(Action::Failed("no-media".into()));
            self.send_bye(now, out);
            return;
        }
        out.push(Action::StartMedia(media));
        self.phase = Phase::Up {
            bye_at: now + self.duration_ns,
        };
        if self.hangup_asap {
            self.send_bye(now, out);
        }
    }

    /// A request from the recorder in this call's dialog: answered 200 (a
    /// re-INVITE with our offer again), a BYE also ends the call.
    pub fn on_request(&mut self, msg: &Msg, out: &mut Vec<Action>) {
        let Some(method) = msg.method() else { return };
        match method {
            "ACK" => {}
            "BYE" => {
                out.push(Action::Send(response_to(msg, 200, "OK")));
                match self.phase {
                    Phase::Up { .. } => {
                        out.push(Action::StopMedia);
                        out.push(Action::EndedByRecorder);
                        self.phase = Phase::Done;
                    }
                    Phase::Ending { .. } => {
                        // Both sides hung up at once; ours will get 481.
                        self.phase = Phase::Done;
                        out.push(Action::ByeDone(true));
                    }
                    _ => {}
                }
            }
            "INVITE" => out.push(Action::Send(self.reinvite_answer(msg))),
            _ => out.push(Action::Send(response_to(msg, 200, "OK"))),
        }
    }

    fn branch(&self, method: &str, cseq: u32) -> String {
        let h = mix(&[
            self.index,
            u64::from(cseq),
            method.bytes().fold(0u64, |a, b| a * 31 + u64::from(b)),
            self.call_id.len() as u64,
        ]);
        format!("z9hG4bK-lg{:x}-{h:08x}", self.index)
    }

    fn in_dialog_request(&self, method: &str, cseq: u32, body: Option<&str>) -> String {
        let d = self
            .dialog
            .as_ref()
            .expect("in-dialog requests follow a 2xx");
        let mut s = format!("{method} {} SIP/2.0\r\n", d.target);
        s.push_str(&format!(
            "Via: SIP/2.0/UDP {};branch={}\r\n",
            self.local,
            self.branch(method, cseq)
        ));
        s.push_str("Max-Forwards: 70\r\n");
        for r in &d.routes {
            s.push_str(&format!("Route: {r}\r\n"));
        }
        s.push_str(&format!("From: {}\r\nTo: {}\r\n", self.from, d.to));
        s.push_str(&format!(
            "Call-ID: {}\r\nCSeq: {cseq} {method}\r\n",
            self.call_id
        ));
        let body = body.unwrap_or("");
        s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s
    }

    /// The ACK of a non-2xx final response belongs to the INVITE
    /// transaction: same branch, same Request-URI (RFC 3261 §17.1.1.3).
    fn non_2xx_ack(&self, to: &str) -> String {
        format!(
            "ACK {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {to}\r\n\
             Call-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
            self.invite_uri, self.invite_via, self.from, self.call_id, self.cseq
        )
    }

    fn reinvite_answer(&self, req: &Msg) -> String {
        let base = response_to(req, 200, "OK");
        let head = base.trim_end_matches("Content-Length: 0\r\n\r\n");
        format!(
            "{head}Contact: <sip:src@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}",
            self.local,
            self.offer_sdp.len(),
            self.offer_sdp
        )
    }
}

/// The SDP part of an INVITE body (multipart or not), from `v=0` to the
/// end of its part.
fn offer_sdp_of(invite: &str) -> String {
    let Some(start) = invite.find("v=0") else {
        return String::new();
    };
    let rest = &invite[start..];
    let end = rest.find("\r\n--").map_or(rest.len(), |i| i + 2);
    rest[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sipmsg::{tag_of, Start};

    fn params(style: Style) -> CallParams {
        CallParams {
            index: 3,
            run_tag: "t".into(),
            local: "127.0.0.1:5099".parse().unwrap(),
            target: "127.0.0.1:5060".parse().unwrap(),
            rtp_ports: [20000, 20002],
            answer_ports: [40000, 40002],
            codec: Codec::Pcma,
            ptime_ms: 30,
            style,
        }
    }

    fn new_call(style: Style) -> (Call, Vec<Action>) {
        let p = params(style);
        let spec = call_spec(&p);
        let mut out = Vec::new();
        let c = Call::start(
            p.index,
            &spec,
            invite_text(&spec, 30),
            10_000_000_000,
            0,
            &mut out,
        );
        (c, out)
    }

    fn sent(out: &[Action]) -> Vec<Msg> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send(t) => Some(Msg::parse(t.as_bytes()).unwrap()),
                _ => None,
            })
            .collect()
    }

    fn response(call: &Call, code: u16, method: &str, cseq: u32, body: &str) -> Msg {
        let text = format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKx\r\nFrom: {}\r\n\
             To: <sip:srs@127.0.0.1>;tag=rec1\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:srs@127.0.0.1:5062>\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\n\
             Content-Length: {}\r\n\r\n{body}",
            call.from,
            call.call_id,
            body.len()
        );
        Msg::parse(text.as_bytes()).unwrap()
    }

    const ANSWER: &str =
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 40010 RTP/AVP 8\r\na=recvonly\r\nm=audio 40012 RTP/AVP 8\r\na=recvonly\r\n";

    #[test]
    fn ptime_and_codec_in_every_style() {
        for style in [Style::Cube, Style::Acme, Style::Ribbon, Style::Generic] {
            let (_, out) = new_call(style);
            let Action::Send(invite) = &out[0] else {
                panic!()
            };
            let m = Msg::parse(invite.as_bytes()).unwrap();
            assert_eq!(
                m.header("Content-Length")
                    .unwrap()
                    .parse::<usize>()
                    .unwrap(),
                m.body.len(),
                "{style:?}"
            );
            assert!(invite.contains("ptime:30\r\n"), "{style:?}\n{invite}");
            assert!(!invite.contains("ptime:20"), "{style:?}");
            assert!(invite.contains("a=rtpmap:8 PCMA/8000"), "{style:?}");
            assert!(invite.contains("m=audio 20002 RTP/AVP 8"), "{style:?}");
        }
    }

    #[test]
    fn invite_retransmits_with_doubling_until_timeout() {
        let (mut c, _) = new_call(Style::Generic);
        let mut times = Vec::new();
        let mut now = 0;
        while !c.is_done() {
            now = c.next_timer().unwrap();
            let mut out = Vec::new();
            c.on_timer(now, &mut out);
            if out.iter().any(|a| matches!(a, Action::Send(_))) {
                times.push(now / 1_000_000);
            }
            if let Some(Action::Failed(why)) = out.last() {
                assert_eq!(why, "timeout");
            }
        }
        assert_eq!(times, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(now, 32_000_000_000);
    }

    #[test]
    fn provisional_stops_retransmission() {
        let (mut c, _) = new_call(Style::Generic);
        let mut out = Vec::new();
        c.on_response(&response(&c, 100, "INVITE", c.cseq, ""), 100, &mut out);
        c.on_response(&response(&c, 180, "INVITE", c.cseq, ""), 200, &mut out);
        assert!(out.is_empty());
        c.on_timer(5_000_000_000, &mut out);
        assert!(out.is_empty(), "no retransmission after 1xx");
        // Each provisional restarts timer C.
        assert_eq!(c.next_timer(), Some(TIMER_C_NS + 200));
    }

    #[test]
    fn answer_ack_media_bye() {
        let (mut c, _) = new_call(Style::Cube);
        let cseq = c.cseq;
        let mut out = Vec::new();
        c.on_response(&response(&c, 200, "INVITE", cseq, ANSWER), 1_000, &mut out);
        assert_eq!(
            out[1..],
            [
                Action::Answered,
                Action::StartMedia(vec![
                    Some("127.0.0.1:40010".parse().unwrap()),
                    Some("127.0.0.1:40012".parse().unwrap())
                ])
            ]
        );
        let ack = &sent(&out)[0];
        assert_eq!(
            ack.start,
            Start::Request {
                method: "ACK".into(),
                uri: "sip:srs@127.0.0.1:5062".into()
            }
        );
        assert_eq!(ack.cseq(), Some((cseq, "ACK")));
        assert_eq!(tag_of(ack.header("To").unwrap()), Some("rec1"));
        let routes: Vec<_> = ack.headers_all("Route").collect();
        assert_eq!(routes, vec!["<sip:p2;lr>", "<sip:p1;lr>"]);

        // A retransmitted 200 is ACKed again.
        out.clear();
        c.on_response(&response(&c, 200, "INVITE", cseq, ANSWER), 2_000, &mut out);
        assert_eq!(sent(&out)[0].method(), Some("ACK"));

        // BYE at answer + duration, retransmitted until answered.
        out.clear();
        assert_eq!(c.next_timer(), Some(1_000 + 10_000_000_000));
        c.on_timer(10_000_001_000, &mut out);
        assert_eq!(out[0], Action::StopMedia);
        let bye = &sent(&out)[0];
        assert_eq!(bye.method(), Some("BYE"));
        assert_eq!(bye.cseq(), Some((cseq + 1, "BYE")));
        out.clear();
        c.on_timer(10_000_001_000 + T1_NS, &mut out);
        assert_eq!(sent(&out)[0].method(), Some("BYE"));
        out.clear();
        c.on_response(
            &response(&c, 200, "BYE", cseq + 1, ""),
            10_600_000_000,
            &mut out,
        );
        assert_eq!(out, vec![Action::ByeDone(true)]);
        assert!(c.is_done());
    }

    #[test]
    fn error_response_is_acked_in_the_invite_transaction() {
        let (mut c, first) = new_call(Style::Acme);
        let invite = &sent(&first)[0];
        let mut out = Vec::new();
        c.on_response(&response(&c, 503, "INVITE", c.cseq, ""), 1_000, &mut out);
        let ack = &sent(&out)[0];
        assert_eq!(ack.method(), Some("ACK"));
        assert_eq!(ack.header("Via"), invite.header("Via"), "same branch");
        assert_eq!(out[1], Action::Failed("503".into()));
        assert!(c.is_done());
    }

    #[test]
    fn recorder_requests_are_answered() {
        let (mut c, _) = new_call(Style::Generic);
        let mut out = Vec::new();
        c.on_response(&response(&c, 200, "INVITE", c.cseq, ANSWER), 0, &mut out);
        out.clear();
        let (from, call_id) = (c.from.clone(), c.call_id.clone());
        let req = |m: &str| {
            Msg::parse(
                format!(
                    "{m} sip:src@127.0.0.1:5099 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKr\r\n\
                     From: <sip:srs@127.0.0.1>;tag=rec1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 9 {m}\r\n\
                     Content-Length: 0\r\n\r\n",
                    from, call_id
                )
                .as_bytes(),
            )
            .unwrap()
        };
        c.on_request(&req("UPDATE"), &mut out);
        assert_eq!(sent(&out)[0].code(), Some(200));
        out.clear();
        c.on_request(&req("INVITE"), &mut out);
        let ok = &sent(&out)[0];
        assert_eq!(ok.code(), Some(200));
        assert!(String::from_utf8_lossy(&ok.body).starts_with("v=0"));
        assert!(!String::from_utf8_lossy(&ok.body).contains("--"));
        out.clear();
        c.on_request(&req("BYE"), &mut out);
        assert_eq!(sent(&out)[0].cseq(), Some((9, "BYE")));
        assert_eq!(out[1..], [Action::StopMedia, Action::EndedByRecorder]);
        assert!(c.is_done());
    }

    #[test]
    fn answer_without_media_fails_and_hangs_up() {
        let (mut c, _) = new_call(Style::Generic);
        let mut out = Vec::new();
        let none = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 0\r\nm=audio 0 RTP/AVP 0\r\n";
        c.on_response(&response(&c, 200, "INVITE", c.cseq, none), 0, &mut out);
        assert!(out.contains(&Action::Failed("no-media".into())));
        assert!(matches!(c.phase, Phase::Ending { .. }));
    }
}
