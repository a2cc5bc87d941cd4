//! A minimal SIP UAS over UDP for the recorders the bench drives itself (the
//! floor receiver, and the front of rtpengine): INVITE gets 200 OK with an
//! SDP answer, ACK is absorbed, BYE gets 200 OK, retransmitted INVITEs get
//! the same 200 again. Just what loadgen's SRC needs, nothing more.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};

use mediafork_loadgen::sipmsg::{response_to, tag_of, Msg};

/// What the recorder behind the UAS does with calls.
pub trait Recorder {
    /// A new call: `sdp` is the SDP offer (the multipart SIPREC body's SDP
    /// part). Returns the SDP answer, or a status code and reason.
    fn invite(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        sdp: &str,
    ) -> Result<String, (u16, String)>;
    /// The call ended (BYE).
    fn bye(&mut self, call_id: &str, from_tag: &str);
}

/// The UAS: one UDP socket, the answered calls.
pub struct Uas {
    pub sock: UdpSocket,
    local: SocketAddr,
    /// Call-ID → the 200 OK sent, for retransmitted INVITEs.
    answered: HashMap<String, String>,
    next_tag: u64,
    pub invites: u64,
    pub byes: u64,
    pub refused: u64,
}

impl Uas {
    pub fn bind(addr: SocketAddr) -> std::io::Result<Uas> {
        let sock = UdpSocket::bind(addr)?;
        let local = sock.local_addr()?;
        Ok(Uas {
            sock,
            local,
            answered: HashMap::new(),
            next_tag: 1,
            invites: 0,
            byes: 0,
            refused: 0,
        })
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Handle one datagram from `from`.
    pub fn handle(&mut self, datagram: &[u8], from: SocketAddr, rec: &mut dyn Recorder) {
        let Some(msg) = Msg::parse(datagram) else {
            return;
        };
        let Some(method) = msg.method() else {
            return; // responses: we send no requests
        };
        let call_id = msg.call_id().unwrap_or_default().to_string();
        let reply = match method {
            "ACK" => return,
            "INVITE" => {
                if let Some(ok) = self.answered.get(&call_id) {
                    let _ = self.sock.send_to(ok.as_bytes(), from);
                    return;
                }
                self.invites += 1;
                let from_tag = msg
                    .header("From")
                    .and_then(tag_of)
                    .unwrap_or_default()
                    .to_string();
                let to_tag = format!("cap{}", self.next_tag);
                self.next_tag += 1;
                let offer = offer_sdp(&msg).unwrap_or_default();
                match rec.invite(&call_id, &from_tag, &to_tag, &offer) {
                    Ok(answer) => {
                        let ok = ok_with_sdp(&msg, &to_tag, self.local, &answer);
                        self.answered.insert(call_id, ok.clone());
                        ok
                    }
                    Err((code, reason)) => {
                        self.refused += 1;
                        response_to(&msg, code, &reason)
                    }
                }
            }
            "BYE" => {
                if self.answered.remove(&call_id).is_some() {
                    self.byes += 1;
                    let from_tag = msg.header("From").and_then(tag_of).unwrap_or_default();
                    rec.bye(&call_id, from_tag);
                    response_to(&msg, 200, "OK")
                } else {
                    response_to(&msg, 481, "Call/Transaction Does Not Exist")
                }
            }
            _ => response_to(&msg, 200, "OK"),
        };
        let _ = self.sock.send_to(reply.as_bytes(), from);
    }
}

/// The SDP part of an INVITE body: the whole body if it is plain SDP, else
/// from `v=0` to the next multipart boundary.
pub fn offer_sdp(msg: &Msg) -> Option<String> {
    let body = std::str::from_utf8(&msg.body).ok()?;
    let start = body.find("v=0")?;
    let rest = &body[start..];
    let end = rest.find("\r\n--").map_or(rest.len(), |i| i + 2);
    Some(rest[..end].to_string())
}

/// 200 OK to an INVITE with our To tag, a Contact and an SDP answer.
fn ok_with_sdp(req: &Msg, to_tag: &str, contact: SocketAddr, sdp: &str) -> String {
    let mut s = String::from("SIP/2.0 200 OK\r\n");
    for v in req.headers_all("Via") {
        s.push_str(&format!("Via: {v}\r\n"));
    }
    if let Some(v) = req.header("From") {
        s.push_str(&format!("From: {v}\r\n"));
    }
    if let Some(v) = req.header("To") {
        s.push_str(&format!("To: {v};tag={to_tag}\r\n"));
    }
    for name in ["Call-ID", "CSeq"] {
        if let Some(v) = req.header(name) {
            s.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    s.push_str(&format!(
        "Contact: <sip:capacity@{contact}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    ));
    s
}

/// A recvonly PCMU answer with one m-line per port, on `ip`.
pub fn answer_sdp(ip: &str, ports: &[u16]) -> String {
    let mut s = format!("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n");
    for p in ports {
        s.push_str(&format!(
            "m=audio {p} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n"
        ));
    }
    s
}

/// The number of m-lines of an SDP.
pub fn m_lines(sdp: &str) -> usize {
    sdp.lines().filter(|l| l.starts_with("m=")).count()
}
