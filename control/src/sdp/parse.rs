//! Line-by-line SDP parser.
//!
//! Lenient where SBCs are sloppy and it does not change meaning: CRLF or bare
//! LF, trailing whitespace, blank lines, missing `s=`/`t=`, line order, unknown
//! line types and attributes. Strict where a mistake would record the wrong
//! thing or nothing: `v=`, `o=`, `m=` (port, proto), `c=`, `a=rtpmap`,
//! `a=rtcp`. Errors name the line number and quote an excerpt of it.

use super::model::{Connection, MediaDescription, MediaKind, Origin, Sdp, TimeDescription};
use super::SdpError;
use crate::sip::syntax::excerpt;

/// Longest excerpt of an offending line quoted in an error.
const EXCERPT_LEN: usize = 60;

impl Sdp {
    /// Parses an SDP body.
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        Parser::default().run(text)
    }

    /// Parses an SDP body given as bytes. Bytes that are not UTF-8 (only
    /// legal in `s=`/`i=` under `a=charset`) are replaced rather than
    /// rejected.
    pub fn parse_bytes(body: &[u8]) -> Result<Sdp, SdpError> {
        Self::parse(&String::from_utf8_lossy(body))
    }
}

#[derive(Default)]
struct Parser {
    seen_version: bool,
    origin: Option<Origin>,
}

fn line_error(line: usize, what: &'static str, text: &str) -> SdpError {
    SdpError::Line {
        line,
        what,
        text: excerpt(text, EXCERPT_LEN),
    }
}

impl Parser {
    fn run(mut self, text: &str) -> Result<Sdp, SdpError> {
        let mut sdp = Sdp::new(placeholder_origin(), None);
        sdp.times.clear();
        sdp.session_name.clear();
        let mut current: Option<MediaDescription> = None;
        let mut any_line = false;
        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            any_line = true;
            let (kind, value) = split_line(line)
                .ok_or_else(|| line_error(line_no, "not a <type>=<value> line", line))?;
            if !self.seen_version {
                if kind != 'v' {
                    return Err(SdpError::MissingVersion);
                }
                if value.trim() != "0" {
                    return Err(SdpError::UnsupportedVersion(excerpt(value, EXCERPT_LEN)));
                }
                self.seen_version = true;
                continue;
            }
            if kind == 'm' {
                if let Some(done) = current.take() {
                    sdp.media.push(done);
                }
                current =
                    Some(parse_media_line(value).map_err(|what| line_error(line_no, what, line))?);
                continue;
            }
            let result = match current.as_mut() {
                Some(media) => media_line(media, kind, value, line),
                None => self.session_line(&mut sdp, kind, value, line),
            };
            result.map_err(|what| line_error(line_no, what, line))?;
        }
        if !any_line {
            return Err(SdpError::Empty);
        }
        if let Some(done) = current.take() {
            sdp.media.push(done);
        }
        sdp.origin = self.origin.take().ok_or(SdpError::MissingOrigin)?;
        let session_direction = sdp.session_direction();
        for media in &mut sdp.media {
            media.inherited_direction = session_direction;
        }
        Ok(sdp)
    }

    fn session_line(
        &mut self,
        sdp: &mut Sdp,
        kind: char,
        value: &str,
        line: &str,
    ) -> Result<(), &'static str> {
        match kind {
            'v' => return Err("duplicate v= line"),
            'o' => {
                if self.origin.is_some() {
                    return Err("duplicate o= line");
                }
                self.origin = Some(parse_origin(value)?);
            }
            's' => sdp.session_name = value.to_owned(),
            'i' => sdp.session_info = Some(value.to_owned()),
            'u' => sdp.uri = Some(value.to_owned()),
            'e' => sdp.emails.push(value.to_owned()),
            'p' => sdp.phones.push(value.to_owned()),
            'c' => sdp.connection = Some(Connection::parse(value)?),
            'b' => sdp.bandwidths.push(value.to_owned()),
            't' => sdp.times.push(TimeDescription {
                timing: value.to_owned(),
                repeats: Vec::new(),
            }),
            'r' => match sdp.times.last_mut() {
                Some(time) => time.repeats.push(value.to_owned()),
                None => sdp.unknown_lines.push(line.to_owned()),
            },
            'z' => sdp.time_zones = Some(value.to_owned()),
            'k' => sdp.key = Some(value.to_owned()),
            'a' => sdp.attributes.push(split_attribute(value)?),
            _ => sdp.unknown_lines.push(line.to_owned()),
        }
        Ok(())
    }
}

/// A stand-in replaced by the real `o=` (its absence is an error).
fn placeholder_origin() -> Origin {
    Origin {
        username: String::new(),
        sess_id: String::new(),
        sess_version: String::new(),
        nettype: String::new(),
        addrtype: String::new(),
        address: String::new(),
    }
}

fn media_line(
    media: &mut MediaDescription,
    kind: char,
    value: &str,
    line: &str,
) -> Result<(), &'static str> {
    match kind {
        'i' => media.title = Some(value.to_owned()),
        'c' => {
            let connection = Connection::parse(value)?;
            // Several c= lines only occur with layered multicast; the first
            // one is the address a unicast recorder needs.
            if media.connection.is_none() {
                media.connection = Some(connection);
            }
        }
        'b' => media.bandwidths.push(value.to_owned()),
        'k' => media.key = Some(value.to_owned()),
        'a' => {
            let (name, value) = split_attribute(value)?;
            media.apply_attribute(&name, value.as_deref())?;
            media.attributes.push((name, value));
        }
        _ => media.unknown_lines.push(line.to_owned()),
    }
    Ok(())
}

/// `<type>=<value>` with a single lowercase letter type.
fn split_line(line: &str) -> Option<(char, &str)> {
    let (kind, value) = line.split_once('=')?;
    let mut chars = kind.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some((c.to_ascii_lowercase(), value.trim())),
        _ => None,
    }
}

/// `a=<name>[:<value>]`.
fn split_attribute(value: &str) -> Result<(String, Option<String>), &'static str> {
    let (name, value) = match value.split_once(':') {
        Some((name, value)) => (name.trim(), Some(value.trim().to_owned())),
        None => (value.trim(), None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err("malformed a= line");
    }
    Ok((name.to_owned(), value))
}

fn parse_origin(value: &str) -> Result<Origin, &'static str> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    match fields.as_slice() {
        [username, sess_id, sess_version, nettype, addrtype, address] => Ok(Origin {
            username: (*username).to_owned(),
            sess_id: (*sess_id).to_owned(),
            sess_version: (*sess_version).to_owned(),
            nettype: (*nettype).to_owned(),
            addrtype: (*addrtype).to_owned(),
            address: (*address).to_owned(),
        }),
        _ => Err("malformed o= line"),
    }
}

/// `m=<media> <port>[/<number of ports>] <proto> <fmt> ...`. A missing format
/// list is tolerated (some SBCs send it on rejected m-lines).
fn parse_media_line(value: &str) -> Result<MediaDescription, &'static str> {
    let mut fields = value.split_ascii_whitespace();
    let kind = fields.next().ok_or("malformed m= line")?;
    let port_field = fields.next().ok_or("malformed m= line")?;
    let proto = fields.next().ok_or("malformed m= line")?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => (port, Some(count)),
        None => (port_field, None),
    };
    let port: u16 = port.parse().map_err(|_| "bad m= port")?;
    let port_count = match port_count {
        Some(count) => Some(
            count
                .parse::<u16>()
                .ok()
                .filter(|c| *c > 0)
                .ok_or("bad m= port count")?,
        ),
        None => None,
    };
    let mut media = MediaDescription::new(
        MediaKind::parse(kind),
        port,
        proto,
        fields.map(str::to_owned).collect(),
    );
    media.port_count = port_count;
    Ok(media)
}
