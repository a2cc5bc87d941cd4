//! A whole SIP message: parsing one from a datagram, reading its common
//! headers, and building responses.

use super::content_type::ContentType;
use super::head::scan_head;
use super::headers::{same_name, Headers};
use super::name_addr::{parse_name_addr_list, NameAddr};
use super::syntax::{find_param, is_token, parse_params, split_outside_quotes};
use super::{Method, ParseLimits, SipParseError};

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`. `version` is kept as received (any `SIP/x.y`)
    /// so that the caller can answer another version with 505.
    Request {
        method: Method,
        uri: String,
        version: String,
    },
    /// `SIP/2.0 code reason`.
    Response { code: u16, reason: String },
}

/// A SIP request or response. Owned: the control plane is the slow path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    pub start: StartLine,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// Number of leading CR/LF bytes: keep-alives (RFC 5626 §3.5.1) that precede
/// a message on any transport.
pub(crate) fn leading_crlf_len(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Parses a decimal Content-Length value.
pub(crate) fn parse_content_length(headers: &Headers) -> Result<Option<usize>, SipParseError> {
    let malformed = SipParseError::MalformedHeader("Content-Length");
    let mut found: Option<usize> = None;
    for value in headers.get_all("Content-Length") {
        let value = value.trim();
        if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed);
        }
        let n: usize = value.parse().map_err(|_| malformed.clone())?;
        // Two different lengths make framing ambiguous (request smuggling).
        if found.is_some_and(|prev| prev != n) {
            return Err(malformed);
        }
        found = Some(n);
    }
    Ok(found)
}

impl SipMessage {
    /// Parses and [validates](SipMessage::validate) one message from a UDP
    /// datagram with the default [`ParseLimits`].
    ///
    /// Leading CRLF keep-alives are skipped. The body is everything after the
    /// empty line, cut to Content-Length when present; a Content-Length larger
    /// than what arrived is an error.
    pub fn parse(datagram: &[u8]) -> Result<SipMessage, SipParseError> {
        Self::parse_with_limits(datagram, &ParseLimits::default())
    }

    /// [`SipMessage::parse`] with explicit limits.
    pub fn parse_with_limits(
        datagram: &[u8],
        limits: &ParseLimits,
    ) -> Result<SipMessage, SipParseError> {
        let msg = Self::parse_unvalidated(datagram, limits)?;
        msg.validate()?;
        Ok(msg)
    }

    /// Parses the framing only (start line, headers, body) without checking
    /// the mandatory headers. Use it to answer a request that fails
    /// [`SipMessage::validate`] with a 400 whose reason is the error.
    pub fn parse_unvalidated(
        datagram: &[u8],
        limits: &ParseLimits,
    ) -> Result<SipMessage, SipParseError> {
        let data = datagram
            .get(leading_crlf_len(datagram)..)
            .unwrap_or_default();
        // The limit is on the message, keep-alives excluded, as in
        // `framing::message_length`: otherwise a stream message the framer
        // accepted would be refused here for the CRLFs before it.
        if data.len() > limits.max_message_len {
            return Err(SipParseError::MessageTooLarge {
                len: data.len(),
                max: limits.max_message_len,
            });
        }
        if data.is_empty() {
            return Err(SipParseError::Empty);
        }
        let head = scan_head(data, limits)?.ok_or(SipParseError::UnterminatedHeaders)?;
        let rest = data.get(head.body_offset..).unwrap_or_default();
        let body = match parse_content_length(&head.headers)? {
            Some(declared) if declared > rest.len() => {
                return Err(SipParseError::ContentLengthExceeds {
                    declared,
                    received: rest.len(),
                })
            }
            Some(declared) => rest.get(..declared).unwrap_or_default(),
            None => rest,
        };
        Ok(SipMessage {
            start: head.start,
            headers: head.headers,
            body: body.to_vec(),
        })
    }

    /// Checks the headers every request and response must carry (RFC 3261
    /// §8.1.1): Via, From, To, Call-ID and a CSeq whose method matches the
    /// request's. Max-Forwards is not required: some SBCs omit it.
    pub fn validate(&self) -> Result<(), SipParseError> {
        if !self.headers.contains("Via") {
            return Err(SipParseError::MissingHeader("Via"));
        }
        self.from()?;
        self.to()?;
        self.call_id()?;
        let (_, cseq_method) = self.cseq()?;
        if let Some(method) = self.method() {
            if *method != cseq_method {
                return Err(SipParseError::CSeqMethodMismatch {
                    cseq: cseq_method.to_string(),
                    request: method.to_string(),
                });
            }
        }
        Ok(())
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn is_response(&self) -> bool {
        matches!(self.start, StartLine::Response { .. })
    }

    /// The request method; `None` for a response (use [`SipMessage::cseq`]).
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI; `None` for a response.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code; `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The first value of a header (case-insensitive, compact forms allowed).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Every value of a header, one per header field.
    pub fn headers_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.get_all(name)
    }

    /// Every element of a comma-separated list header, over all its fields.
    pub fn header_list<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        self.headers.get_list(name)
    }

    /// The Call-ID (error if absent or empty).
    pub fn call_id(&self) -> Result<&str, SipParseError> {
        self.header("Call-ID")
            .filter(|v| !v.is_empty())
            .ok_or(SipParseError::MissingHeader("Call-ID"))
    }

    /// `CSeq: <number> <method>`.
    pub fn cseq(&self) -> Result<(u32, Method), SipParseError> {
        let value = self
            .header("CSeq")
            .ok_or(SipParseError::MissingHeader("CSeq"))?;
        let malformed = SipParseError::MalformedHeader("CSeq");
        let mut parts = value.split_ascii_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(number), Some(method), None)
                if number.bytes().all(|b| b.is_ascii_digit()) && is_token(method) =>
            {
                let number: u32 = number.parse().map_err(|_| malformed)?;
                Ok((number, Method::from_token(method)))
            }
            _ => Err(malformed),
        }
    }

    /// The From header as a name-addr.
    pub fn from(&self) -> Result<NameAddr, SipParseError> {
        self.name_addr_header("From")
    }

    /// The To header as a name-addr.
    pub fn to(&self) -> Result<NameAddr, SipParseError> {
        self.name_addr_header("To")
    }

    fn name_addr_header(&self, name: &'static str) -> Result<NameAddr, SipParseError> {
        let value = self
            .header(name)
            .ok_or(SipParseError::MissingHeader(name))?;
        NameAddr::parse(value).ok_or(SipParseError::MalformedHeader(name))
    }

    /// Every Contact (empty if none).
    pub fn contacts(&self) -> Result<Vec<NameAddr>, SipParseError> {
        parse_name_addr_list(self.headers_all("Contact"))
            .ok_or(SipParseError::MalformedHeader("Contact"))
    }

    /// The parsed Content-Type; `Ok(None)` when absent.
    pub fn content_type(&self) -> Result<Option<ContentType>, SipParseError> {
        self.header("Content-Type")
            .map(ContentType::parse)
            .transpose()
    }

    /// The `branch` parameter of the topmost Via (transaction matching).
    pub fn via_branch(&self) -> Option<&str> {
        let top = self.header_list("Via").into_iter().next()?;
        split_outside_quotes(top, ';')
            .into_iter()
            .skip(1)
            .find_map(|p| match p.split_once('=') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("branch") => {
                    Some(value.trim())
                }
                _ => None,
            })
            .filter(|b| !b.is_empty())
    }

    /// The option tags of every Require field.
    pub fn require(&self) -> Vec<String> {
        self.option_tags("Require")
    }

    /// The option tags of every Supported field.
    pub fn supported(&self) -> Vec<String> {
        self.option_tags("Supported")
    }

    /// Whether Require lists `tag` (case-insensitive: vendors vary the case).
    pub fn requires(&self, tag: &str) -> bool {
        self.require().iter().any(|t| t.eq_ignore_ascii_case(tag))
    }

    /// Whether Supported lists `tag` (case-insensitive).
    pub fn supports(&self, tag: &str) -> bool {
        self.supported().iter().any(|t| t.eq_ignore_ascii_case(tag))
    }

    fn option_tags(&self, name: &str) -> Vec<String> {
        self.header_list(name)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// A response to `req` per RFC 3261 §8.2.6: same Via fields in order,
    /// From, To, Call-ID and CSeq. For 101-299 responses to INVITE, SUBSCRIBE
    /// and REFER the Record-Route fields are copied too (§12.1.1), since those
    /// establish a dialog. The caller adds a To tag ([`SipMessage::set_to_tag`])
    /// for anything but 100 and sets Contact and the body.
    pub fn response(req: &SipMessage, code: u16, reason: &str) -> SipMessage {
        let mut headers = Headers::new();
        for via in req.headers_all("Via") {
            headers.add("Via", via);
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(value) = req.header(name) {
                headers.add(name, value);
            }
        }
        let creates_dialog = matches!(
            req.method(),
            Some(Method::Invite | Method::Subscribe | Method::Refer)
        );
        if creates_dialog && (101..300).contains(&code) {
            for rr in req.headers_all("Record-Route") {
                headers.add("Record-Route", rr);
            }
        }
        SipMessage {
            start: StartLine::Response {
                code,
                reason: reason.to_owned(),
            },
            headers,
            body: Vec::new(),
        }
    }

    /// Adds `;tag=<tag>` to To unless it already has a tag. Returns whether
    /// a tag was added.
    pub fn set_to_tag(&mut self, tag: &str) -> bool {
        let Some(to) = self.header("To") else {
            return false;
        };
        let has_tag = NameAddr::parse(to).is_some_and(|na| na.tag().is_some());
        if has_tag {
            return false;
        }
        let value = format!("{to};tag={tag}");
        self.headers.set("To", value);
        true
    }

    /// Replaces every field named `name` by one with `value`.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.set(name, value);
    }

    /// Appends a field.
    pub fn add_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.add(name, value);
    }

    /// Removes every field named `name`; returns how many.
    pub fn remove_header(&mut self, name: &str) -> usize {
        self.headers.remove(name)
    }

    /// Sets the body and its Content-Type (Content-Length is always written
    /// by [`SipMessage::to_bytes`]). An empty body removes Content-Type.
    pub fn set_body(&mut self, content_type: &str, body: impl Into<Vec<u8>>) {
        self.body = body.into();
        if self.body.is_empty() {
            self.headers.remove("Content-Type");
        } else {
            self.headers.set("Content-Type", content_type);
        }
        self.headers
            .set("Content-Length", self.body.len().to_string());
    }

    /// Serialises with CRLF line endings. Content-Length is always present
    /// and always the real body length (whatever the headers said); CR and LF
    /// inside values are replaced so that no value can inject a header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        match &self.start {
            StartLine::Request {
                method,
                uri,
                version,
            } => {
                push_line(&mut out, &format!("{method} {uri} {version}"));
            }
            StartLine::Response { code, reason } => {
                push_line(&mut out, &format!("SIP/2.0 {code} {reason}"));
            }
        }
        for h in self.headers.iter() {
            if same_name(&h.name, "Content-Length") {
                continue;
            }
            push_line(&mut out, &format!("{}: {}", h.name, h.value));
        }
        push_line(&mut out, &format!("Content-Length: {}", self.body.len()));
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// Parameters of the topmost Via (`received`, `rport`, `branch`, ...).
    pub fn via_params(&self) -> Vec<(String, Option<String>)> {
        match self.header_list("Via").into_iter().next() {
            Some(top) => match top.find(';') {
                Some(semi) => parse_params(top.get(semi..).unwrap_or("")),
                None => Vec::new(),
            },
            None => Vec::new(),
        }
    }

    /// A parameter of the topmost Via (`Some("")` for a flag like `rport`).
    pub fn via_param(&self, name: &str) -> Option<String> {
        find_param(&self.via_params(), name).map(str::to_owned)
    }
}

fn push_line(out: &mut Vec<u8>, line: &str) {
    out.extend(
        line.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}
