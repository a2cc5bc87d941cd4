//! Just enough SIP parsing for a user-agent client: start line, headers
//! (compact forms included), body; plus the media addresses of an SDP
//! answer. The recorder's full parser lives in the control crate, which
//! will depend on this one, so it cannot be used here.

use std::net::{IpAddr, SocketAddr};

/// A request or status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// `METHOD uri SIP/2.0`
    Request {
        /// Method, as sent.
        method: String,
        /// Request-URI.
        uri: String,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// Status code.
        code: u16,
    },
}

/// A parsed SIP message.
#[derive(Debug, Clone)]
pub struct Msg {
    /// Start line.
    pub start: Start,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (Content-Length bytes, or the rest of the datagram).
    pub body: Vec<u8>,
}

/// The long form of a compact header name (RFC 3261 §7.3.3).
fn long_name(name: &str) -> &str {
    match name.to_ascii_lowercase().as_str() {
        "i" => "call-id",
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        _ => name,
    }
}

fn same_name(a: &str, b: &str) -> bool {
    long_name(a).eq_ignore_ascii_case(long_name(b))
}

impl Msg {
    /// Parse one datagram; `None` if it is not SIP.
    pub fn parse(bytes: &[u8]) -> Option<Msg> {
        let head_end = find(bytes, b"\r\n\r\n")
            .map(|i| (i, i + 4))
            .or_else(|| find(bytes, b"\n\n").map(|i| (i, i + 2)))?;
        let head = std::str::from_utf8(&bytes[..head_end.0]).ok()?;
        let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
        let first = lines.next()?.trim_start();
        let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            let code = rest.split_whitespace().next()?.parse().ok()?;
            Start::Response { code }
        } else {
            let mut it = first.split_whitespace();
            let method = it.next()?.to_string();
            let uri = it.next()?.to_string();
            if it.next()? != "SIP/2.0" {
                return None;
            }
            Start::Request { method, uri }
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // Folded continuation of the previous header.
                if let Some((_, v)) = headers.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            let (k, v) = line.split_once(':')?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let rest = &bytes[head_end.1..];
        let mut m = Msg {
            start,
            headers,
            body: Vec::new(),
        };
        let len = m
            .header("Content-Length")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(rest.len())
            .min(rest.len());
        m.body = rest[..len].to_vec();
        Some(m)
    }

    /// The first header called `name` (long or compact form).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| same_name(k, name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header called `name`, in order.
    pub fn headers_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| same_name(k, name))
            .map(|(_, v)| v.as_str())
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let v = self.header("CSeq")?;
        let mut it = v.split_whitespace();
        Some((it.next()?.parse().ok()?, it.next()?))
    }

    /// The status code of a response.
    pub fn code(&self) -> Option<u16> {
        match self.start {
            Start::Response { code } => Some(code),
            Start::Request { .. } => None,
        }
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            Start::Request { method, .. } => Some(method),
            Start::Response { .. } => None,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The URI inside a name-addr (`"x" <sip:a@b>;tag=1` → `sip:a@b`) or an
/// addr-spec without angle brackets (up to the first `;`).
pub fn uri_of(name_addr: &str) -> &str {
    match (name_addr.find('<'), name_addr.find('>')) {
        (Some(a), Some(b)) if a < b => &name_addr[a + 1..b],
        _ => name_addr.split(';').next().unwrap_or("").trim(),
    }
}

/// The value of the `tag` parameter of a From/To header.
pub fn tag_of(name_addr: &str) -> Option<&str> {
    let params = match name_addr.rfind('>') {
        Some(i) => &name_addr[i + 1..],
        None => name_addr,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("tag").then(|| v.trim())
    })
}

/// Where an SDP answer wants each offered stream's RTP, in m-line order:
/// the media-level `c=` (else the session-level one) and the m-line port;
/// `None` for a rejected stream (port 0) or one without an address.
pub fn answer_media(sdp: &str) -> Vec<Option<SocketAddr>> {
    let mut session_addr: Option<IpAddr> = None;
    // (port, media-level address) per m-line
    let mut media: Vec<(u16, Option<IpAddr>)> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("c=") {
            // c=IN IP4 198.51.100.1 (a multicast "/ttl" suffix is cut off)
            let addr = c
                .split_whitespace()
                .nth(2)
                .and_then(|a| a.split('/').next())
                .and_then(|a| a.parse().ok());
            match media.last_mut() {
                Some(m) => m.1 = addr,
                None => session_addr = addr,
            }
        } else if let Some(m) = line.strip_prefix("m=") {
            let port = m
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            media.push((port, None));
        }
    }
    media
        .into_iter()
        .map(|(port, addr)| {
            let ip = addr.or(session_addr)?;
            (port != 0).then(|| SocketAddr::new(ip, port))
        })
        .collect()
}

/// A response to `req` with `code`: Via, From, To, Call-ID and CSeq copied,
/// no body. Requests inside our dialogs already carry our tag in To.
pub fn response_to(req: &Msg, code: u16, reason: &str) -> String {
    let mut s = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers_all("Via") {
        s.push_str(&format!("Via: {v}\r\n"));
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = req.header(name) {
            s.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 0\r\nm=audio 0 RTP/AVP 0\r\nm=audio 40004 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\n";

    fn ok() -> String {
        format!(
            "SIP/2.0 200 OK\r\n\
             v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1\r\n\
             From: <sip:src@192.0.2.10>;tag=abc\r\n\
             To: \"SRS\" <sip:srs@192.0.2.1>;tag=xyz\r\n\
             i: call-1\r\n\
             CSeq: 101 INVITE\r\n\
             Contact: <sip:srs@192.0.2.1:5080;transport=udp>\r\n\
             Content-Type: application/sdp\r\n\
             l: {}\r\n\r\n{SDP}",
            SDP.len()
        )
    }

    #[test]
    fn parses_a_response_with_compact_headers() {
        let m = Msg::parse(ok().as_bytes()).unwrap();
        assert_eq!(m.code(), Some(200));
        assert_eq!(m.call_id(), Some("call-1"));
        assert_eq!(m.cseq(), Some((101, "INVITE")));
        assert_eq!(tag_of(m.header("To").unwrap()), Some("xyz"));
        assert_eq!(tag_of(m.header("From").unwrap()), Some("abc"));
        assert_eq!(
            uri_of(m.header("Contact").unwrap()),
            "sip:srs@192.0.2.1:5080;transport=udp"
        );
        let media = answer_media(std::str::from_utf8(&m.body).unwrap());
        assert_eq!(
            media,
            vec![
                Some("192.0.2.1:40000".parse().unwrap()),
                None,
                Some("192.0.2.9:40004".parse().unwrap())
            ]
        );
    }

    #[test]
    fn response_copies_transaction_headers() {
        let req = Msg::parse(
            b"BYE sip:src@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKx\r\n\
              Via: SIP/2.0/UDP b;branch=z9hG4bKy\r\nFrom: <sip:srs@x>;tag=1\r\nTo: <sip:src@y>;tag=2\r\n\
              Call-ID: c\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(req.method(), Some("BYE"));
        let r = response_to(&req, 200, "OK");
        let back = Msg::parse(r.as_bytes()).unwrap();
        assert_eq!(back.code(), Some(200));
        assert_eq!(back.headers_all("Via").count(), 2);
        assert_eq!(back.cseq(), Some((7, "BYE")));
    }

    #[test]
    fn rejects_non_sip() {
        assert!(Msg::parse(b"\x80\x00garbage").is_none());
        assert!(Msg::parse(b"HELLO world\r\n\r\n").is_none());
    }
}
