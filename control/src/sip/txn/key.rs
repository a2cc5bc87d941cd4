//! Matching requests to server transactions (RFC 3261 §17.2.3).

use crate::sip::{Method, SipMessage, SipParseError};

/// The magic cookie that marks an RFC 3261 branch (§8.1.1.7).
const MAGIC_COOKIE: &str = "z9hG4bK";

/// What identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TxnKey {
    /// RFC 3261 §17.2.3: the top Via's branch (with the magic cookie), its
    /// sent-by, and the method, ACK counting as INVITE.
    Branch {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// The "backwards compatibility" rule of §17.2.3 for RFC 2543 peers
    /// whose branch lacks the cookie (or who send no branch at all):
    /// Request-URI, From tag, Call-ID, CSeq number, method (ACK as INVITE)
    /// and the top Via. The To tag is left out on purpose: an INVITE and
    /// its retransmissions carry none, while the ACK carries ours, and §9.2
    /// matches CANCEL without it too.
    Legacy {
        request_uri: String,
        from_tag: String,
        call_id: String,
        cseq: u32,
        method: Method,
        top_via: String,
    },
}

impl TxnKey {
    /// The same key for another method: a CANCEL's key with INVITE finds the
    /// INVITE it cancels (§9.2: same branch, or same legacy fields).
    pub(crate) fn with_method(&self, method: Method) -> TxnKey {
        let mut key = self.clone();
        match &mut key {
            TxnKey::Branch { method: m, .. } | TxnKey::Legacy { method: m, .. } => *m = method,
        }
        key
    }
}

/// Finds the INVITE server transaction an ACK for a 2xx belongs to: that
/// ACK has a branch of its own (§17.1.1.3 applies to non-2xx only), but the
/// INVITE's Call-ID and CSeq number and the 2xx's To tag (§13.2.2.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AckKey {
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    pub(crate) to_tag: String,
}

/// The matching data of one request.
#[derive(Debug, Clone)]
pub(crate) struct RequestKeys {
    pub(crate) key: TxnKey,
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    pub(crate) to_tag: Option<String>,
}

impl RequestKeys {
    /// Computes the keys of a request with method `method`. Fails only
    /// without Call-ID or with a malformed CSeq; a missing or garbled Via
    /// falls back to the legacy key.
    pub(crate) fn of(req: &SipMessage, method: &Method) -> Result<RequestKeys, SipParseError> {
        let call_id = req.call_id()?.to_owned();
        let (cseq, _) = req.cseq()?;
        let method = match method {
            Method::Ack => Method::Invite,
            other => other.clone(),
        };
        let top_via = req.header_list("Via").into_iter().next().unwrap_or("");
        let key = match req.via_branch() {
            Some(branch)
                if branch.starts_with(MAGIC_COOKIE) && branch.len() > MAGIC_COOKIE.len() =>
            {
                TxnKey::Branch {
                    branch: branch.to_owned(),
                    sent_by: sent_by(top_via),
                    method,
                }
            }
            _ => TxnKey::Legacy {
                request_uri: req.request_uri().unwrap_or("").to_owned(),
                from_tag: req
                    .from()
                    .ok()
                    .and_then(|f| f.tag().map(str::to_owned))
                    .unwrap_or_default(),
                call_id: call_id.clone(),
                cseq,
                method,
                top_via: without_whitespace(top_via),
            },
        };
        let to_tag = req.to().ok().and_then(|t| t.tag().map(str::to_owned));
        Ok(RequestKeys {
            key,
            call_id,
            cseq,
            to_tag,
        })
    }
}

/// The sent-by of a Via value (`SIP/2.0/UDP host:port;params` →
/// `host:port`), lowercased and without whitespace, since §25.1 allows
/// LWS around the slashes and the colon and host names are
/// case-insensitive. Anything unparseable is normalised the same way, so
/// that a garbled Via still matches its own retransmission.
fn sent_by(via: &str) -> String {
    let head = via.split(';').next().unwrap_or("");
    let after_protocol = match head.rfind('/') {
        // Skip the transport token that follows the last slash.
        Some(slash) => head
            .get(slash + 1..)
            .unwrap_or("")
            .trim_start()
            .trim_start_matches(|c: char| !c.is_whitespace()),
        None => head,
    };
    without_whitespace(after_protocol).to_ascii_lowercase()
}

fn without_whitespace(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_by_tolerates_lws_and_case() {
        assert_eq!(
            sent_by("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx"),
            "192.0.2.1:5060"
        );
        assert_eq!(
            sent_by("SIP / 2.0 / TCP  SBC.Example.com : 5061 ;rport"),
            "sbc.example.com:5061"
        );
        assert_eq!(
            sent_by("SIP/2.0/UDP [2001:db8::1]:5060"),
            "[2001:db8::1]:5060"
        );
        assert_eq!(sent_by("garbage"), "garbage");
        assert_eq!(sent_by(""), "");
    }

    fn request(via: &str, method: &str) -> SipMessage {
        let raw = format!(
            "{method} sip:srs@192.0.2.2 SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@b>;tag=f1\r\n\
             To: <sip:c@d>\r\nCall-ID: k1\r\nCSeq: 5 {method}\r\n\r\n"
        );
        SipMessage::parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn ack_and_cancel_keys() {
        let via = "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc";
        let invite = RequestKeys::of(&request(via, "INVITE"), &Method::Invite).unwrap();
        let ack = RequestKeys::of(&request(via, "ACK"), &Method::Ack).unwrap();
        let cancel = RequestKeys::of(&request(via, "CANCEL"), &Method::Cancel).unwrap();
        assert_eq!(invite.key, ack.key);
        assert_ne!(invite.key, cancel.key);
        assert_eq!(invite.key, cancel.key.with_method(Method::Invite));
        assert_eq!(invite.cseq, 5);
    }

    #[test]
    fn falls_back_to_legacy_without_cookie() {
        for via in [
            "SIP/2.0/UDP 192.0.2.1",
            "SIP/2.0/UDP 192.0.2.1;branch=1234",
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK",
            "garbage",
        ] {
            let keys = RequestKeys::of(&request(via, "INVITE"), &Method::Invite).unwrap();
            assert!(matches!(keys.key, TxnKey::Legacy { .. }), "{via}");
            let ack = RequestKeys::of(&request(via, "ACK"), &Method::Ack).unwrap();
            assert_eq!(keys.key, ack.key, "{via}");
        }
    }
}
