//! Vendor correlation headers that end up in recording metadata and let an
//! operator find the same call in the SBC's or PBX's own logs.

use crate::sip::SipMessage;
use serde::Serialize;

/// The `Cisco-Guid` header (CUBE, CUCM; Ribbon when the operator's SMM rules
/// add it): four decimal 32-bit numbers joined by dashes.
pub fn cisco_guid(msg: &SipMessage) -> Option<String> {
    msg.header("Cisco-Guid")
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
}

/// A Cisco-Guid in the 32-hex-digit form that `show call active` and CDRs
/// print (each decimal group is one 32-bit word). `None` if it is not four
/// decimal numbers.
pub fn cisco_guid_hex(guid: &str) -> Option<String> {
    let words: Vec<u32> = guid
        .trim()
        .split('-')
        .map(|w| w.parse::<u32>().ok())
        .collect::<Option<Vec<_>>>()?;
    match words.as_slice() {
        [a, b, c, d] => Some(format!("{a:08X}{b:08X}{c:08X}{d:08X}")),
        _ => None,
    }
}

/// An RFC 7989 `Session-ID` header: the end-to-end session identifier that
/// SIPREC metadata repeats in `<sipSessionID>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionId {
    /// The sender's UUID (32 hex digits when well-formed; kept as sent).
    pub local: String,
    /// The `remote` parameter, if any (all zeros while unknown).
    pub remote: Option<String>,
}

/// The `Session-ID` header, if present and non-empty.
pub fn session_id_header(msg: &SipMessage) -> Option<SessionId> {
    let value = msg.header("Session-ID")?;
    let mut parts = value.split(';');
    let local = parts.next()?.trim();
    if local.is_empty() {
        return None;
    }
    let remote = parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("remote")
            .then(|| value.trim().to_owned())
            .filter(|v| !v.is_empty())
    });
    Some(SessionId {
        local: local.to_owned(),
        remote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUBE: &[u8] = include_bytes!("../../tests/fixtures/sip/cube_siprec_invite.sip");

    #[test]
    fn cube_headers() {
        let msg = SipMessage::parse(CUBE).unwrap();
        let guid = cisco_guid(&msg).unwrap();
        assert_eq!(guid, "2116681300-3661238766-2148922575-3797695020");
        assert_eq!(
            cisco_guid_hex(&guid).as_deref(),
            Some("7E29FE54DA3A11EE8015F4CFE25C3A2C")
        );
        let sid = session_id_header(&msg).unwrap();
        assert_eq!(sid.local, "3e9f2d1c0a7b5c4d8e6f1a2b3c4d5e6f");
        assert_eq!(
            sid.remote.as_deref(),
            Some("00000000000000000000000000000000")
        );
    }

    #[test]
    fn malformed_values() {
        assert_eq!(cisco_guid_hex("1-2-3"), None);
        assert_eq!(cisco_guid_hex("1-2-3-99999999999"), None);
        assert_eq!(
            cisco_guid_hex("0-0-0-1").as_deref(),
            Some("00000000000000000000000000000001")
        );
        let raw = b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nSession-ID: ;remote=1\r\ncisco-guid:  \r\n\r\n";
        let msg = SipMessage::parse(raw).unwrap();
        assert_eq!(session_id_header(&msg), None);
        assert_eq!(cisco_guid(&msg), None);
    }
}
