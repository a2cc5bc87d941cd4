//! SIPREC (RFC 7866 protocol, RFC 7865 metadata) and Cisco CUCM
//! network-based recording: splitting multipart bodies, parsing recording
//! metadata, reading CUCM's From parameters, and classifying INVITEs.
//! See `shared/notes/siprec-interop.md` for the vendor shapes handled here.

pub mod classify;
pub mod cucm;
pub mod metadata;
pub mod multipart;
pub mod vendor;

pub use classify::{
    classify_invite, metadata_in, signals_siprec, ClassifyError, InviteKind, ACCEPTED_BODY_TYPES,
    METADATA_TYPES,
};
pub use cucm::{CucmLeg, CucmStream, Endpoint};
pub use metadata::{MetadataError, Participant, RecordingMetadata, RsSession, RsStream};
pub use multipart::{BodyPart, MultipartError};
pub use vendor::{cisco_guid, cisco_guid_hex, session_id_header, SessionId};

#[cfg(test)]
mod tests;
