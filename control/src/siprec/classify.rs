//! Deciding what an incoming INVITE is: a SIPREC recording session, a CUCM
//! network-based-recording leg, or a plain call, and extracting its SDP offer
//! and metadata. The errors map to the response the recorder should send.

use super::cucm::CucmLeg;
use super::metadata::{self, MetadataError, RecordingMetadata};
use super::multipart::{self, BodyPart, MultipartError};
use crate::sdp::{Sdp, SdpError};
use crate::sip::{NameAddr, SipMessage, SipParseError};
use thiserror::Error;

/// The media types of SIPREC metadata: RFC 9806 settled on the `+xml` form;
/// `application/rs-metadata` (RFC 7866) is still sent (AudioCodes).
pub const METADATA_TYPES: [&str; 2] = ["application/rs-metadata+xml", "application/rs-metadata"];

/// Value for the `Accept` header of a 415 answer.
pub const ACCEPTED_BODY_TYPES: &str =
    "application/sdp, multipart/mixed, application/rs-metadata+xml, application/rs-metadata";

/// What an INVITE asks the recorder to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteKind {
    /// An RFC 7866 recording session. `metadata` is `None` when the SRC sends
    /// it later (in a re-INVITE or UPDATE); the raw XML is kept for storing
    /// beside the recording.
    Siprec {
        sdp: Sdp,
        metadata: Option<(Vec<u8>, RecordingMetadata)>,
    },
    /// One of the two legs of a CUCM network-based recording.
    Cucm { sdp: Sdp, leg: CucmLeg },
    /// Any other call offering media (recorded as-is, or rejected by policy).
    Plain { sdp: Sdp },
}

impl InviteKind {
    /// The SDP offer, whatever the kind.
    pub fn sdp(&self) -> &Sdp {
        match self {
            InviteKind::Siprec { sdp, .. }
            | InviteKind::Cucm { sdp, .. }
            | InviteKind::Plain { sdp } => sdp,
        }
    }
}

/// Why an INVITE cannot be classified. [`ClassifyError::status_code`] gives
/// the response code; `to_string()` is a suitable reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClassifyError {
    /// A body type the recorder does not understand (→ 415 with
    /// [`ACCEPTED_BODY_TYPES`] in Accept).
    #[error("unsupported body type {0}")]
    UnsupportedBody(String),
    /// A Content-Encoding other than identity (→ 415 with
    /// `Accept-Encoding: identity`).
    #[error("unsupported Content-Encoding {0}")]
    UnsupportedEncoding(String),
    /// Content-Type missing or malformed (→ 400).
    #[error("{0}")]
    MalformedHeader(SipParseError),
    #[error("malformed multipart body: {0}")]
    MalformedMultipart(MultipartError),
    #[error("malformed SDP: {0}")]
    MalformedSdp(SdpError),
    #[error("malformed recording metadata: {0}")]
    MalformedMetadata(MetadataError),
    #[error("more than one SDP body part")]
    MultipleSdp,
    /// No SDP offer (delayed offer). The recorder does not make offers: CUCM
    /// recording trunks must use Early Offer (→ 488).
    #[error("no SDP offer in the INVITE")]
    NoSdp,
}

impl ClassifyError {
    /// The SIP status code to answer with.
    pub fn status_code(&self) -> u16 {
        match self {
            ClassifyError::UnsupportedBody(_) | ClassifyError::UnsupportedEncoding(_) => 415,
            ClassifyError::NoSdp => 488,
            _ => 400,
        }
    }
}

/// Whether the request signals SIPREC in its headers: `Require: siprec`, or a
/// Contact with the `+sip.src` feature tag (AudioCodes: `;src`).
pub fn signals_siprec(msg: &SipMessage) -> bool {
    msg.requires("siprec")
        || msg
            .header_list("Contact")
            .into_iter()
            .filter_map(NameAddr::parse)
            .any(|c| c.has_param("+sip.src") || c.has_param("src"))
}

/// Classifies an INVITE (or re-INVITE) and extracts its offer and metadata.
///
/// SIPREC is recognised by headers ([`signals_siprec`]) or by a metadata body
/// part (type in [`METADATA_TYPES`] or disposition `recording-session`); it
/// wins over CUCM's `x-refci`. Body parts of other types are ignored unless
/// marked `handling=required`: vendors add parts (Cisco's `application/gtd`)
/// that a recorder has no use for, and rejecting them would lose recordings.
pub fn classify_invite(msg: &SipMessage) -> Result<InviteKind, ClassifyError> {
    let body = BodyParts::of(msg)?;
    let is_siprec = signals_siprec(msg) || body.metadata.is_some();
    let sdp_part = body.sdp.ok_or(ClassifyError::NoSdp)?;
    let sdp = Sdp::parse_bytes(&sdp_part.body).map_err(ClassifyError::MalformedSdp)?;
    if is_siprec {
        let metadata = match body.metadata {
            Some(part) => {
                let parsed =
                    metadata::parse(&part.body).map_err(ClassifyError::MalformedMetadata)?;
                Some((part.body, parsed))
            }
            None => None,
        };
        return Ok(InviteKind::Siprec { sdp, metadata });
    }
    match CucmLeg::from_message(msg) {
        Some(leg) => Ok(InviteKind::Cucm { sdp, leg }),
        None => Ok(InviteKind::Plain { sdp }),
    }
}

/// The recording metadata in a request's body, if any: for metadata-only
/// updates (RFC 7866 §9.2: UPDATE or re-INVITE carrying just a new
/// `rs-metadata` part), which [`classify_invite`] rejects for lack of SDP.
pub fn metadata_in(
    msg: &SipMessage,
) -> Result<Option<(Vec<u8>, RecordingMetadata)>, ClassifyError> {
    match BodyParts::of(msg)?.metadata {
        Some(part) => {
            let parsed = metadata::parse(&part.body).map_err(ClassifyError::MalformedMetadata)?;
            Ok(Some((part.body, parsed)))
        }
        None => Ok(None),
    }
}

/// The SDP and metadata parts of a body.
struct BodyParts {
    sdp: Option<BodyPart>,
    metadata: Option<BodyPart>,
}

enum Role {
    Sdp,
    Metadata,
    Other,
}

impl BodyParts {
    fn of(msg: &SipMessage) -> Result<BodyParts, ClassifyError> {
        if let Some(encoding) = msg.header("Content-Encoding") {
            let encoding = encoding.trim();
            if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
                return Err(ClassifyError::UnsupportedEncoding(encoding.to_owned()));
            }
        }
        let mut found = BodyParts {
            sdp: None,
            metadata: None,
        };
        if msg.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(found);
        }
        let content_type = msg.content_type().map_err(ClassifyError::MalformedHeader)?;
        let is_multipart = content_type.as_ref().is_some_and(|ct| ct.is_multipart());
        // (part, whether its type was declared rather than defaulted)
        let parts: Vec<(BodyPart, bool)> = match &content_type {
            Some(ct) => multipart::parse(ct, &msg.body)
                .map_err(ClassifyError::MalformedMultipart)?
                .into_iter()
                .map(|p| {
                    let declared = !is_multipart || p.header("Content-Type").is_some();
                    (p, declared)
                })
                .collect(),
            None => vec![(
                BodyPart {
                    content_type: "text/plain".to_owned(),
                    content_disposition: msg.header("Content-Disposition").map(str::to_owned),
                    headers: Vec::new(),
                    body: msg.body.clone(),
                },
                false,
            )],
        };
        for (part, declared) in parts {
            match role(&part, declared) {
                Role::Sdp if found.sdp.is_some() => return Err(ClassifyError::MultipleSdp),
                Role::Sdp => found.sdp = Some(part),
                Role::Metadata => {
                    if found.metadata.is_none() {
                        found.metadata = Some(part);
                    }
                }
                Role::Other if !declared && !is_multipart => {
                    return Err(ClassifyError::MalformedHeader(
                        SipParseError::MissingHeader("Content-Type"),
                    ))
                }
                Role::Other if part.handling_required() || !is_multipart => {
                    return Err(ClassifyError::UnsupportedBody(part.content_type))
                }
                Role::Other => {
                    tracing::debug!(content_type = %part.content_type, "ignoring optional body part");
                }
            }
        }
        Ok(found)
    }
}

/// What a part is: by declared type, by disposition, or (for parts without
/// a Content-Type) by sniffing the first bytes.
fn role(part: &BodyPart, declared: bool) -> Role {
    if part.content_type == "application/sdp" {
        return Role::Sdp;
    }
    if METADATA_TYPES.contains(&part.content_type.as_str())
        || part.disposition_type().as_deref() == Some("recording-session")
    {
        return Role::Metadata;
    }
    if !declared {
        let start = trim_ascii_start(&part.body);
        if start.starts_with(b"v=0") {
            return Role::Sdp;
        }
        if start.starts_with(b"<") && contains(start, b"recording") {
            return Role::Metadata;
        }
    }
    Role::Other
}

fn trim_ascii_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    bytes.get(skip..).unwrap_or_default()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
