//! SDP (RFC 8866, formerly 4566): parse offers from SRCs and CUCM, read what
//! the recorder needs per m-line (address, port, codecs, direction, label,
//! RTCP, crypto), and write answers.

mod codecs;
mod crypto;
mod display;
mod error;
mod model;
mod parse;

pub use codecs::static_payload_type;
pub use crypto::SdesCrypto;
pub use error::SdpError;
pub use model::{
    Connection, Direction, Fmtp, MediaDescription, MediaKind, Origin, RtpMap, Sdp, TimeDescription,
};

#[cfg(test)]
mod tests;
