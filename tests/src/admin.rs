//! Support for the operating-surface tests: run `mediafork` CLI
//! subcommands against a running server's admin API, place a call by hand
//! (INVITE, ACK, RTP, BYE) so a test can act on it mid-call, and fetch a
//! plain HTTP page (`/metrics`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::mediafork_bin;
use crate::server::{sdp_media, SipClient, SipText, LOCALHOST};

/// What a CLI run printed and how it exited.
#[derive(Debug)]
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    fn from(o: Output) -> CliRun {
        CliRun {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics (with the output) unless the run exited 0.
    pub fn ok(self) -> CliRun {
        assert_eq!(self.code, Some(0), "{self:#?}");
        self
    }

    /// Stdout as JSON (runs given `--json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Run `mediafork ARGS --admin URL`.
pub fn cli(admin: &str, args: &[&str]) -> CliRun {
    let o = Command::new(mediafork_bin())
        .args(args)
        .args(["--admin", admin])
        .env("NO_COLOR", "1")
        .output()
        .expect("spawn mediafork");
    CliRun::from(o)
}

/// Run `mediafork ARGS --admin URL --json` and parse what it printed;
/// panics unless it exited 0.
pub fn cli_json(admin: &str, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    cli(admin, &a).ok().json()
}

/// `GET path` over plain HTTP/1.1; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read response");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A call placed by the test over raw UDP SIP: one INVITE with `streams`
/// PCMU m-lines, ACKed; ended with [`RawCall::bye`].
pub struct RawCall {
    pub client: SipClient,
    pub call_id: String,
    pub invite: SipText,
    pub ok: SipText,
    /// The recorder's port for each m-line.
    pub ports: Vec<u16>,
}

impl RawCall {
    /// Send an INVITE that may be refused: its final status and reason.
    pub fn try_place(server: SocketAddr, call_id: &str, streams: usize) -> (Option<u16>, String) {
        let client = SipClient::new(server);
        let sdp = offer(&client, streams);
        let text = client.request(
            "INVITE",
            call_id,
            &format!("z9hG4bK-inv-{call_id}"),
            &[],
            Some(("application/sdp", &sdp)),
        );
        let r = client.transact(&text);
        (r.status(), r.reason().to_string())
    }

    /// Place a call with `streams` m-lines (labels 1, 2, ...) and extra
    /// header lines (e.g. `Cisco-Guid: ...`).
    pub fn place(server: SocketAddr, call_id: &str, streams: usize, extra: &[&str]) -> RawCall {
        let client = SipClient::new(server);
        let sdp = offer(&client, streams);
        RawCall::place_sdp(client, call_id, &sdp, extra)
    }

    /// Place a call from `client` with the given SDP offer: INVITE, a 200
    /// expected, ACK.
    pub fn place_sdp(client: SipClient, call_id: &str, sdp: &str, extra: &[&str]) -> RawCall {
        let server = client.server;
        let text = client.request(
            "INVITE",
            call_id,
            &format!("z9hG4bK-inv-{call_id}"),
            extra,
            Some(("application/sdp", sdp)),
        );
        let ok = client.transact(&text);
        assert_eq!(ok.status(), Some(200), "INVITE answered {ok:?}");
        let invite = SipText::parse(&text).expect("INVITE parses");
        let ack = format!(
            "ACK sip:srs@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-ack-{call_id}\r\nMax-Forwards: 70\r\n\
             From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            me = client.local,
            from = invite.header("From").unwrap_or_default(),
            to = ok.header("To").unwrap_or_default(),
        );
        client.send(&ack);
        let ports = sdp_media(&ok.body).into_iter().map(|(p, _)| p).collect();
        RawCall {
            client,
            call_id: call_id.to_string(),
            invite,
            ok,
            ports,
        }
    }

    /// End the call; returns the BYE's final response code.
    pub fn bye(&self) -> Option<u16> {
        bye(&self.client, &self.call_id, &self.invite, &self.ok)
    }
}

/// An SDP offer with `streams` PCMU m-lines labelled 1, 2, ...
fn offer(client: &SipClient, streams: usize) -> String {
    let mut sdp =
        format!("v=0\r\no=SRC 1 1 IN IP4 {LOCALHOST}\r\ns=-\r\nc=IN IP4 {LOCALHOST}\r\nt=0 0\r\n");
    for i in 0..streams {
        sdp.push_str(&format!(
            "m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:{}\r\na=sendonly\r\n",
            client.local.port() + 2 + 2 * i as u16,
            i + 1
        ));
    }
    sdp
}

/// Send the BYE of a call placed with `invite` and answered with `ok`;
/// the BYE's final response code.
pub fn bye(client: &SipClient, call_id: &str, invite: &SipText, ok: &SipText) -> Option<u16> {
    let server = client.server;
    let bye = format!(
        "BYE sip:srs@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-bye-{call_id}\r\nMax-Forwards: 70\r\n\
         From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        me = client.local,
        from = invite.header("From").unwrap_or_default(),
        to = ok.header("To").unwrap_or_default(),
    );
    client.transact(&bye).status()
}
