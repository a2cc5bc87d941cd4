//! From SDP to data-plane tracks: for each audio m-line of the answer, the
//! local address and ports packets arrive on, the payload types the track
//! may carry, and its label (RFC 4574) that SIPREC metadata refers to.

use std::net::{IpAddr, SocketAddr};

use mediafork_dataplane::codec::Codec;
use mediafork_dataplane::config::PortRange;
use mediafork_dataplane::engine::{Binding, TrackSetup};

use mediafork_dataplane::srtp::MasterKey;

use crate::sdp::{Direction, MediaDescription, MediaKind, SdesCrypto, Sdp};

/// Where and how one m-line's media arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPlan {
    /// Position of the m-line in the SDP.
    pub index: usize,
    pub label: Option<String>,
    pub addr: IpAddr,
    pub rtp_port: u16,
    /// None with rtcp-mux (RTCP shares the RTP port).
    pub rtcp_port: Option<u16>,
    pub payload_types: Vec<(u8, Codec)>,
    pub direction: Direction,
    /// SRTP: the offerer's SDES key for the tag the answer chose.
    pub srtp: Option<MasterKey>,
}

impl StreamPlan {
    /// The data-plane track for this stream, binding the ports that fall in
    /// the recording range.
    pub fn track_setup(&self, range: PortRange) -> TrackSetup {
        let mut bindings = vec![Binding::Port(SocketAddr::new(self.addr, self.rtp_port))];
        if let Some(p) = self
            .rtcp_port
            .filter(|p| range.contains(*p) && *p != self.rtp_port)
        {
            bindings.push(Binding::Port(SocketAddr::new(self.addr, p)));
        }
        TrackSetup {
            index: None,
            label: self.label.clone(),
            payload_types: self.payload_types.clone(),
            bindings,
            srtp: self.srtp.clone(),
            source: mediafork_dataplane::source_lock::SourcePolicy::First,
        }
    }
}

/// Codecs of an m-line's formats, using rtpmaps from `m` and, for formats
/// it does not map, from the matching offer m-line.
pub fn payload_types(m: &MediaDescription, offer: Option<&MediaDescription>) -> Vec<(u8, Codec)> {
    let mut out = Vec::new();
    for f in &m.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        let mapped = m
            .rtpmaps
            .iter()
            .chain(offer.into_iter().flat_map(|o| o.rtpmaps.iter()))
            .find(|r| r.payload_type == pt);
        let codec = match mapped {
            Some(r) => Codec::from_encoding_name(&r.encoding),
            None => Codec::from_static_payload_type(pt),
        };
        if let Some(c) = codec {
            out.push((pt, c));
        }
    }
    out
}

/// The streams an answer `answer` (from the recorder) says it receives.
/// m-lines that are not audio, or rejected (port 0), have no plan.
pub fn plan_from_answer(answer: &Sdp, offer: Option<&Sdp>) -> Vec<StreamPlan> {
    let mut plans = Vec::new();
    for (i, m) in answer.media.iter().enumerate() {
        if m.kind != MediaKind::Audio || m.port == 0 {
            continue;
        }
        let offered = offer.and_then(|o| o.media.get(i));
        let Some(conn) = m.connection.as_ref().or(answer.connection.as_ref()) else {
            continue;
        };
        let rtcp_port = if m.rtcp_mux {
            None
        } else {
            Some(m.rtcp.unwrap_or_else(|| m.port.saturating_add(1)))
        };
        plans.push(StreamPlan {
            index: i,
            label: m
                .label()
                .or_else(|| offered.and_then(|o| o.label()))
                .map(|l| l.trim().to_string()),
            addr: conn.addr,
            rtp_port: m.port,
            rtcp_port,
            payload_types: payload_types(m, offered),
            direction: m.direction(),
            srtp: offered.and_then(|o| sdes_key(m, o)),
        });
    }
    plans
}

/// The offerer's key for the `a=crypto` tag the answer `m` accepted (a
/// captured SRTP call replays decrypted when its SDP carried SDES keys).
fn sdes_key(m: &MediaDescription, offered: &MediaDescription) -> Option<MasterKey> {
    let tag = m.crypto.first()?.split_ascii_whitespace().next()?;
    offered
        .crypto
        .iter()
        .filter(|c| c.split_ascii_whitespace().next() == Some(tag))
        .find_map(|c| SdesCrypto::parse(c).ok())
        .map(|c| c.master)
}
