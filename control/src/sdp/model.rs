//! The SDP data model (RFC 8866) with the attributes a recorder acts on
//! parsed into typed fields.
//!
//! `attributes` is the source of truth for serialisation and keeps the wire
//! order. The typed fields (`rtpmaps`, `fmtp`, `rtcp_mux`, `rtcp`, `ptime`,
//! `maxptime`, `crypto`) are a parsed view of it, filled by the parser and kept
//! in sync by [`MediaDescription::push_attribute`],
//! [`MediaDescription::remove_attribute`] and
//! [`MediaDescription::set_direction`]; assigning them directly does not
//! change what [`Display`](std::fmt::Display) writes.

use super::codecs::static_payload_type;
use super::SdpError;
use std::fmt;
use std::net::IpAddr;

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// `v=`; always 0.
    pub version: u32,
    pub origin: Origin,
    /// `s=`; may be empty on input, written as `-` when empty.
    pub session_name: String,
    /// `i=`
    pub session_info: Option<String>,
    /// `u=`
    pub uri: Option<String>,
    /// `e=`
    pub emails: Vec<String>,
    /// `p=`
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// `b=` values as written (`AS:64`).
    pub bandwidths: Vec<String>,
    /// `t=` lines with their `r=` lines; `t=0 0` is written when empty.
    pub times: Vec<TimeDescription>,
    /// `z=`
    pub time_zones: Option<String>,
    /// `k=` (obsolete, kept for round-tripping).
    pub key: Option<String>,
    /// Session-level `a=` lines in order: `(name, value)`; flags have `None`.
    pub attributes: Vec<(String, Option<String>)>,
    pub media: Vec<MediaDescription>,
    /// Session-level lines of an unknown type (`y=` from 3GPP, ...), kept for
    /// inspection but not written back (they would not be valid SDP).
    pub unknown_lines: Vec<String>,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
/// Kept as strings: vendors put non-numeric ids and hostnames here, and
/// nothing a recorder does depends on their syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub sess_id: String,
    pub sess_version: String,
    pub nettype: String,
    pub addrtype: String,
    pub address: String,
}

/// `c=<nettype> <addrtype> <address>[/<ttl>][/<number of addresses>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub nettype: String,
    pub addrtype: String,
    pub addr: IpAddr,
    /// IPv4 multicast TTL.
    pub ttl: Option<u8>,
    /// Number of multicast addresses.
    pub num_addrs: Option<u32>,
}

/// A `t=` line and its `r=` lines, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeDescription {
    pub timing: String,
    pub repeats: Vec<String>,
}

/// The `<media>` of an m-line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
    Text,
    Application,
    Message,
    Image,
    Other(String),
}

/// Media direction (RFC 8866 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    /// As written (`PCMU`, `opus`, `telephone-event`); compare case-insensitively.
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// `a=fmtp:<format> <parameters>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    pub format: String,
    pub params: String,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub kind: MediaKind,
    /// 0 means the stream is rejected/disabled.
    pub port: u16,
    /// `m=audio 49170/2 ...`
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, ...
    pub proto: String,
    /// Format list as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `i=`.
    pub title: Option<String>,
    /// Media-level `c=` (the first one; see [`MediaDescription::effective_connection`]).
    pub connection: Option<Connection>,
    /// `b=` values as written.
    pub bandwidths: Vec<String>,
    /// `k=`
    pub key: Option<String>,
    /// Media-level `a=` lines in order.
    pub attributes: Vec<(String, Option<String>)>,
    /// Parsed `a=rtpmap` lines.
    pub rtpmaps: Vec<RtpMap>,
    /// Parsed `a=fmtp` lines.
    pub fmtp: Vec<Fmtp>,
    /// `a=rtcp-mux` present (RFC 5761).
    pub rtcp_mux: bool,
    /// `a=rtcp:<port>` (RFC 3605).
    pub rtcp: Option<u16>,
    /// `a=ptime` in ms (fractions rounded; unparseable values ignored).
    pub ptime: Option<u32>,
    /// `a=maxptime` in ms.
    pub maxptime: Option<u32>,
    /// `a=crypto` values, raw (SDES, RFC 4568): keys stay opaque here.
    pub crypto: Vec<String>,
    /// The session-level direction, copied in by the parser and
    /// [`Sdp::push_media`] so that [`MediaDescription::direction`] needs no
    /// reference to the session.
    pub inherited_direction: Option<Direction>,
    /// Media-level lines of an unknown type, not written back.
    pub unknown_lines: Vec<String>,
}

impl MediaKind {
    pub fn parse(s: &str) -> MediaKind {
        match s {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "text" => MediaKind::Text,
            "application" => MediaKind::Application,
            "message" => MediaKind::Message,
            "image" => MediaKind::Image,
            other => MediaKind::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Text => "text",
            MediaKind::Application => "application",
            MediaKind::Message => "message",
            MediaKind::Image => "image",
            MediaKind::Other(s) => s,
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Direction {
    /// The attribute name (`sendonly`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an attribute name denotes, if it is one.
    pub fn from_attribute(name: &str) -> Option<Direction> {
        match name.to_ascii_lowercase().as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The same stream seen from the other end (sendonly ↔ recvonly).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// What a recorder (which never sends media) answers to an offer with
    /// this direction: `recvonly` to `sendonly`/`sendrecv`, `inactive` to
    /// `inactive` (hold, pause) and to `recvonly`. Answering `inactive` with
    /// anything else is what made SBCs loop re-INVITEs against other recorders.
    pub fn recorder_answer(self) -> Direction {
        match self {
            Direction::SendOnly | Direction::SendRecv => Direction::RecvOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Finds the first attribute `name` (case-insensitive): `Some("")` for a flag.
fn find_attribute<'a>(attributes: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref().unwrap_or(""))
}

/// The last direction attribute in a list (the last one wins if a sloppy
/// peer sends several).
fn direction_in(attributes: &[(String, Option<String>)]) -> Option<Direction> {
    attributes
        .iter()
        .rev()
        .find_map(|(n, _)| Direction::from_attribute(n))
}

impl Sdp {
    /// A minimal session for building an answer: `v=0`, the given origin and
    /// session-level connection, `s=-`, `t=0 0`, no media.
    pub fn new(origin: Origin, connection: Option<Connection>) -> Sdp {
        Sdp {
            version: 0,
            origin,
            session_name: "-".to_owned(),
            session_info: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection,
            bandwidths: Vec::new(),
            times: vec![TimeDescription {
                timing: "0 0".to_owned(),
                repeats: Vec::new(),
            }],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
            unknown_lines: Vec::new(),
        }
    }

    /// The session-level direction attribute, if any.
    pub fn session_direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// A session-level attribute by name (`Some("")` for a flag).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attribute(&self.attributes, name)
    }

    /// Appends a media section, giving it this session's direction to inherit.
    pub fn push_media(&mut self, mut media: MediaDescription) {
        media.inherited_direction = self.session_direction();
        self.media.push(media);
    }

    /// The media section whose `a=label` is `label` (RFC 4574; SIPREC
    /// metadata refers to streams by label).
    pub fn media_by_label(&self, label: &str) -> Option<&MediaDescription> {
        self.media.iter().find(|m| m.label() == Some(label))
    }
}

impl Origin {
    /// An origin for an IP address (`IN IP4`/`IN IP6` chosen from it).
    pub fn new(username: &str, sess_id: &str, sess_version: &str, addr: IpAddr) -> Origin {
        Origin {
            username: username.to_owned(),
            sess_id: sess_id.to_owned(),
            sess_version: sess_version.to_owned(),
            nettype: "IN".to_owned(),
            addrtype: addrtype_of(addr).to_owned(),
            address: addr.to_string(),
        }
    }

    /// `sess-version` as a number (to detect and make changes in re-offers).
    pub fn sess_version_num(&self) -> Option<u64> {
        self.sess_version.parse().ok()
    }
}

fn addrtype_of(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

impl Connection {
    /// A unicast `c=IN IP4|IP6 <addr>`.
    pub fn new(addr: IpAddr) -> Connection {
        Connection {
            nettype: "IN".to_owned(),
            addrtype: addrtype_of(addr).to_owned(),
            addr,
            ttl: None,
            num_addrs: None,
        }
    }

    /// Parses the value of a `c=` line. The address must be a literal IP of
    /// the announced type: FQDNs are legal SDP but no SBC sends them, and a
    /// recorder cannot resolve names on the call-setup path.
    pub fn parse(value: &str) -> Result<Connection, &'static str> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(nettype), Some(addrtype), Some(address), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err("malformed c= line");
        };
        let mut parts = address.split('/');
        let addr: IpAddr = parts
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|_| "bad c= address")?;
        let is_v6 = if addrtype.eq_ignore_ascii_case("IP4") {
            false
        } else if addrtype.eq_ignore_ascii_case("IP6") {
            true
        } else {
            return Err("unsupported c= address type");
        };
        if addr.is_ipv6() != is_v6 {
            return Err("c= address does not match its address type");
        }
        let (mut ttl, mut num_addrs) = (None, None);
        let rest: Vec<&str> = parts.collect();
        match (is_v6, rest.as_slice()) {
            (_, []) => {}
            (false, [t]) => ttl = Some(t.parse().map_err(|_| "bad c= TTL")?),
            (false, [t, n]) => {
                ttl = Some(t.parse().map_err(|_| "bad c= TTL")?);
                num_addrs = Some(n.parse().map_err(|_| "bad c= address count")?);
            }
            (true, [n]) => num_addrs = Some(n.parse().map_err(|_| "bad c= address count")?),
            _ => return Err("bad c= address"),
        }
        Ok(Connection {
            nettype: nettype.to_owned(),
            addrtype: addrtype.to_owned(),
            addr,
            ttl,
            num_addrs,
        })
    }
}

impl MediaDescription {
    /// An m-line with no attributes (e.g. for an answer).
    pub fn new(kind: MediaKind, port: u16, proto: &str, formats: Vec<String>) -> MediaDescription {
        MediaDescription {
            kind,
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats,
            title: None,
            connection: None,
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
            rtpmaps: Vec::new(),
            fmtp: Vec::new(),
            rtcp_mux: false,
            rtcp: None,
            ptime: None,
            maxptime: None,
            crypto: Vec::new(),
            inherited_direction: None,
            unknown_lines: Vec::new(),
        }
    }

    /// The media-level direction, else the session-level one, else sendrecv
    /// (RFC 8866 §6.7).
    pub fn direction(&self) -> Direction {
        self.media_direction()
            .or(self.inherited_direction)
            .unwrap_or(Direction::SendRecv)
    }

    /// Only the media-level direction attribute, if any.
    pub fn media_direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// `a=label` (RFC 4574), the key SIPREC metadata uses for this stream.
    pub fn label(&self) -> Option<&str> {
        self.attribute("label")
            .map(str::trim)
            .filter(|l| !l.is_empty())
    }

    /// `a=mid` (RFC 5888).
    pub fn mid(&self) -> Option<&str> {
        self.attribute("mid")
            .map(str::trim)
            .filter(|m| !m.is_empty())
    }

    /// A media-level attribute by name (`Some("")` for a flag).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attribute(&self.attributes, name)
    }

    /// Every value of a media-level attribute (flags give `""`).
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Whether the m-line is disabled (port 0).
    pub fn is_disabled(&self) -> bool {
        self.port == 0
    }

    /// The media-level connection, else the session-level one.
    pub fn effective_connection<'a>(&'a self, sdp: &'a Sdp) -> Option<&'a Connection> {
        self.connection.as_ref().or(sdp.connection.as_ref())
    }

    /// Encoding name and clock rate of payload type `pt`: from `a=rtpmap`,
    /// else from the static table (RFC 3551).
    pub fn codec_for(&self, pt: u8) -> Option<(&str, u32)> {
        match self.rtpmaps.iter().find(|m| m.payload_type == pt) {
            Some(map) => Some((map.encoding.as_str(), map.clock_rate)),
            None => static_payload_type(pt).map(|(name, rate, _)| (name, rate)),
        }
    }

    /// The formats that are RTP payload type numbers (0-127).
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt < 128)
            .collect()
    }

    /// The `a=fmtp` parameters of a format.
    pub fn fmtp_for(&self, format: &str) -> Option<&str> {
        self.fmtp
            .iter()
            .find(|f| f.format == format)
            .map(|f| f.params.as_str())
    }

    /// Appends an attribute and updates the typed fields; errors on a value
    /// the parser would reject (bad rtpmap, bad rtcp port).
    pub fn push_attribute(&mut self, name: &str, value: Option<&str>) -> Result<(), SdpError> {
        self.apply_attribute(name, value)
            .map_err(SdpError::InvalidValue)?;
        self.attributes
            .push((name.to_owned(), value.map(str::to_owned)));
        Ok(())
    }

    /// Removes every attribute `name`; returns how many.
    pub fn remove_attribute(&mut self, name: &str) -> usize {
        let before = self.attributes.len();
        self.attributes
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        let removed = before - self.attributes.len();
        if removed > 0 {
            self.rederive();
        }
        removed
    }

    /// Replaces any media-level direction attribute with `direction`.
    pub fn set_direction(&mut self, direction: Direction) {
        self.attributes
            .retain(|(n, _)| Direction::from_attribute(n).is_none());
        self.attributes.push((direction.as_str().to_owned(), None));
    }

    /// Recomputes the typed fields from `attributes`. Attributes that fail
    /// to parse were rejected when added, so errors cannot occur here; any
    /// that do are skipped.
    fn rederive(&mut self) {
        self.rtpmaps.clear();
        self.fmtp.clear();
        self.rtcp_mux = false;
        self.rtcp = None;
        self.ptime = None;
        self.maxptime = None;
        self.crypto.clear();
        let attributes = std::mem::take(&mut self.attributes);
        for (name, value) in &attributes {
            let _ = self.apply_attribute(name, value.as_deref());
        }
        self.attributes = attributes;
    }

    /// Updates the typed fields for one attribute (not `attributes` itself).
    pub(crate) fn apply_attribute(
        &mut self,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), &'static str> {
        let value = value.unwrap_or("").trim();
        match name.to_ascii_lowercase().as_str() {
            "rtpmap" => self
                .rtpmaps
                .push(parse_rtpmap(value).ok_or("malformed a=rtpmap")?),
            "fmtp" => {
                let (format, params) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
                if format.is_empty() {
                    return Err("malformed a=fmtp");
                }
                self.fmtp.push(Fmtp {
                    format: format.to_owned(),
                    params: params.trim().to_owned(),
                });
            }
            "rtcp-mux" => self.rtcp_mux = true,
            "rtcp" => {
                let port = value.split_ascii_whitespace().next().unwrap_or_default();
                self.rtcp = Some(port.parse().map_err(|_| "bad a=rtcp port")?);
            }
            "ptime" => self.ptime = parse_millis(value),
            "maxptime" => self.maxptime = parse_millis(value),
            "crypto" => self.crypto.push(value.to_owned()),
            _ => {}
        }
        Ok(())
    }
}

/// `<pt> <encoding>/<clock>[/<channels>]`.
fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, encoding) = value.split_once(char::is_whitespace)?;
    let payload_type: u8 = pt.parse().ok().filter(|pt| *pt < 128)?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let clock_rate: u32 = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(ch) => Some(ch.trim().parse::<u8>().ok()?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(RtpMap {
        payload_type,
        encoding: name.to_owned(),
        clock_rate,
        channels,
    })
}

/// Milliseconds from `20` or `20.0`; `None` for anything else.
fn parse_millis(value: &str) -> Option<u32> {
    if let Ok(ms) = value.parse::<u32>() {
        return Some(ms);
    }
    let ms: f64 = value.parse().ok()?;
    (ms.is_finite() && (0.0..=100_000.0).contains(&ms)).then(|| ms.round() as u32)
}
