//! UAS dialogs (RFC 3261 §12): creation from the dialog-creating request,
//! matching in-dialog requests, and the remote CSeq check.

use std::collections::HashMap;

use thiserror::Error;

use super::tag::TagGenerator;
use super::transport::Peer;
use super::transport::Transport;
use crate::sip::{parse_name_addr_list, Method, SipMessage, SipParseError};

/// Identifies a dialog (§12): Call-ID and both tags, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    /// Our tag: the To tag of requests we receive.
    pub local_tag: String,
    /// The peer's tag: the From tag of requests we receive (empty for an
    /// RFC 2543 peer that sent none, §12.1.1).
    pub remote_tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// A 2xx has been sent (§12.1.1).
    Confirmed,
    Terminated,
}

/// The UAS side of one dialog (§12.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// The highest CSeq number of the peer's requests so far.
    pub remote_cseq: u32,
    /// The CSeq number of the last request we sent in this dialog; 0 until
    /// we send one (§12.1.1: the local sequence number starts empty).
    pub local_cseq: u32,
    /// The To URI of the request: our URI, the From of requests we send.
    pub local_uri: String,
    /// The From URI of the request: the peer's URI.
    pub remote_uri: String,
    /// The peer's Contact URI: the Request-URI of requests we send.
    pub remote_target: String,
    /// The Record-Route URIs in the order received (§12.1.1), for the Route
    /// header of requests we send.
    pub route_set: Vec<String>,
    /// Where the dialog-creating request came from.
    pub peer: Peer,
    /// A `sips:` Request-URI over TLS (§12.1.1).
    pub secure: bool,
    pub state: DialogState,
}

/// Why a dialog could not be created from a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialogError {
    #[error(transparent)]
    Header(#[from] SipParseError),
    /// §8.1.1.8: a dialog-creating request must carry exactly one Contact
    /// with a SIP URI; without it we would not know where to send BYE.
    #[error("dialog-creating request without a usable Contact")]
    MissingContact,
    #[error("dialog already exists")]
    AlreadyExists(DialogId),
}

/// An in-dialog request whose CSeq is not acceptable (§12.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CseqError {
    /// Not above the last one: answer 500 (§12.2.2).
    #[error("CSeq {received} is not above the dialog's {last}")]
    OutOfOrder { received: u32, last: u32 },
    /// No parseable CSeq: answer 400.
    #[error(transparent)]
    Malformed(#[from] SipParseError),
}

impl CseqError {
    /// The response to the request that failed the check: 500 for out of
    /// order (§12.2.2), 400 for a malformed CSeq. The To tag is already in
    /// an in-dialog request.
    pub fn response(&self, req: &SipMessage) -> SipMessage {
        match self {
            CseqError::OutOfOrder { .. } => SipMessage::response(req, 500, "Server Internal Error"),
            CseqError::Malformed(_) => SipMessage::response(req, 400, "Bad Request"),
        }
    }
}

/// Whether a request is inside a dialog: it has a To tag (§12.2.2).
pub fn is_in_dialog(req: &SipMessage) -> bool {
    req.to().is_ok_and(|to| to.tag().is_some())
}

/// The response to an in-dialog request that matches no dialog: 481
/// (§12.2.2). Not for ACK, which is never answered: drop it instead.
pub fn dialog_does_not_exist(req: &SipMessage) -> SipMessage {
    SipMessage::response(req, 481, "Call/Transaction Does Not Exist")
}

impl Dialog {
    pub fn id(&self) -> DialogId {
        DialogId {
            call_id: self.call_id.clone(),
            local_tag: self.local_tag.clone(),
            remote_tag: self.remote_tag.clone(),
        }
    }

    /// Checks and records the CSeq of an in-dialog request (§12.2.2).
    ///
    /// A request whose number is not above the last one is out of order
    /// (retransmissions never get here, the transaction layer absorbs
    /// them). ACK and CANCEL reuse the CSeq number of the request they
    /// belong to, so they are accepted without being recorded.
    pub fn check_cseq(&mut self, req: &SipMessage) -> Result<(), CseqError> {
        let (received, method) = req.cseq()?;
        if matches!(method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        if received <= self.remote_cseq {
            return Err(CseqError::OutOfOrder {
                received,
                last: self.remote_cseq,
            });
        }
        self.remote_cseq = received;
        Ok(())
    }

    /// A target refresh request (re-INVITE, UPDATE) replaces the remote
    /// target with its Contact (§12.2.2). Returns whether it did.
    pub fn refresh_target(&mut self, req: &SipMessage) -> bool {
        match contact_uri(req) {
            Some(uri) => {
                self.remote_target = uri;
                true
            }
            None => false,
        }
    }

    /// The CSeq number for the next request we send (BYE, UPDATE).
    pub fn next_local_cseq(&mut self) -> u32 {
        self.local_cseq = self.local_cseq.wrapping_add(1).max(1);
        self.local_cseq
    }

    pub fn confirm(&mut self) {
        self.state = DialogState::Confirmed;
    }
}

fn contact_uri(req: &SipMessage) -> Option<String> {
    let contacts = req.contacts().ok()?;
    let first = contacts.into_iter().next()?;
    (first.uri != "*").then_some(first.uri)
}

/// The dialogs of one endpoint, and the tags for new ones.
#[derive(Debug, Default)]
pub struct Dialogs {
    dialogs: HashMap<DialogId, Dialog>,
    tags: TagGenerator,
}

impl Dialogs {
    /// Empty, with a randomly keyed [`TagGenerator`].
    pub fn new() -> Dialogs {
        Dialogs::default()
    }

    /// Empty, with a deterministic tag generator (tests, replays).
    pub fn with_tag_seed(seed: u64) -> Dialogs {
        Dialogs {
            dialogs: HashMap::new(),
            tags: TagGenerator::with_seed(seed),
        }
    }

    /// A fresh local tag, for the To of the responses that create a dialog.
    pub fn new_tag(&mut self) -> String {
        self.tags.next_tag()
    }

    /// Creates the UAS dialog for a dialog-creating request (INVITE) answered
    /// with a To tag of `local_tag` (§12.1.1). The dialog starts Early;
    /// [`Dialog::confirm`] it when the 2xx is sent.
    pub fn create_uas(
        &mut self,
        req: &SipMessage,
        local_tag: &str,
        peer: Peer,
    ) -> Result<DialogId, DialogError> {
        let call_id = req.call_id()?.to_owned();
        let (remote_cseq, _) = req.cseq()?;
        let from = req.from()?;
        let to = req.to()?;
        let remote_target = contact_uri(req).ok_or(DialogError::MissingContact)?;
        let route_set = parse_name_addr_list(req.headers_all("Record-Route"))
            .ok_or(SipParseError::MalformedHeader("Record-Route"))?
            .into_iter()
            .map(|rr| rr.uri)
            .collect();
        let secure = peer.transport == Transport::Tls
            && req
                .request_uri()
                .is_some_and(|uri| uri.to_ascii_lowercase().starts_with("sips:"));
        let dialog = Dialog {
            call_id,
            local_tag: local_tag.to_owned(),
            remote_tag: from.tag().unwrap_or("").to_owned(),
            remote_cseq,
            local_cseq: 0,
            local_uri: to.uri,
            remote_uri: from.uri,
            remote_target,
            route_set,
            peer,
            secure,
            state: DialogState::Early,
        };
        let id = dialog.id();
        if self.dialogs.contains_key(&id) {
            return Err(DialogError::AlreadyExists(id));
        }
        self.dialogs.insert(id.clone(), dialog);
        Ok(id)
    }

    /// The dialog of an in-dialog request: Call-ID, To tag (ours) and From
    /// tag (§12.2.2). `None` for a request without To tag or from no dialog
    /// of ours: answer it with [`dialog_does_not_exist`].
    pub fn find(&mut self, req: &SipMessage) -> Option<&mut Dialog> {
        let id = DialogId {
            call_id: req.call_id().ok()?.to_owned(),
            local_tag: req.to().ok()?.tag()?.to_owned(),
            remote_tag: req
                .from()
                .ok()?
                .tag()
                .map(str::to_owned)
                .unwrap_or_default(),
        };
        self.dialogs.get_mut(&id)
    }

    pub fn get(&self, id: &DialogId) -> Option<&Dialog> {
        self.dialogs.get(id)
    }

    pub fn get_mut(&mut self, id: &DialogId) -> Option<&mut Dialog> {
        self.dialogs.get_mut(id)
    }

    pub fn remove(&mut self, id: &DialogId) -> Option<Dialog> {
        self.dialogs.remove(id)
    }

    pub fn len(&self) -> usize {
        self.dialogs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dialogs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer::udp("192.0.2.10:5060".parse().unwrap())
    }

    fn invite() -> SipMessage {
        let raw = "INVITE sip:srs@198.51.100.20 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKd1\r\n\
            Record-Route: <sip:p1@192.0.2.98;lr>, <sip:p2@192.0.2.99;lr>\r\n\
            Record-Route: <sip:p3@192.0.2.100;lr>\r\n\
            From: <sip:src@192.0.2.10>;tag=remote1\r\n\
            To: <sip:srs@198.51.100.20>\r\n\
            Call-ID: dlg-1@192.0.2.10\r\n\
            CSeq: 10 INVITE\r\n\
            Contact: <sip:src@192.0.2.10:5060;transport=udp>\r\n\r\n";
        SipMessage::parse(raw.as_bytes()).unwrap()
    }

    fn in_dialog(method: &str, cseq: u32, to_tag: &str, from_tag: &str) -> SipMessage {
        let raw = format!(
            "{method} sip:srs@198.51.100.20 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKd{cseq}{method}\r\n\
             From: <sip:src@192.0.2.10>;tag={from_tag}\r\n\
             To: <sip:srs@198.51.100.20>;tag={to_tag}\r\n\
             Call-ID: dlg-1@192.0.2.10\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:src-new@192.0.2.11>\r\n\r\n"
        );
        SipMessage::parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn creates_a_uas_dialog_per_12_1_1() {
        let mut dialogs = Dialogs::with_tag_seed(1);
        let tag = dialogs.new_tag();
        let id = dialogs.create_uas(&invite(), &tag, peer()).unwrap();
        assert_eq!(id.call_id, "dlg-1@192.0.2.10");
        assert_eq!(id.remote_tag, "remote1");
        assert_eq!(id.local_tag, tag);
        let d = dialogs.get(&id).unwrap();
        assert_eq!(d.remote_cseq, 10);
        assert_eq!(d.remote_target, "sip:src@192.0.2.10:5060;transport=udp");
        assert_eq!(
            d.route_set,
            [
                "sip:p1@192.0.2.98;lr",
                "sip:p2@192.0.2.99;lr",
                "sip:p3@192.0.2.100;lr"
            ]
        );
        assert_eq!(d.local_uri, "sip:srs@198.51.100.20");
        assert_eq!(d.remote_uri, "sip:src@192.0.2.10");
        assert_eq!(d.state, DialogState::Early);
        assert!(!d.secure);
        assert!(matches!(
            dialogs.create_uas(&invite(), &tag, peer()),
            Err(DialogError::AlreadyExists(_))
        ));
        assert_eq!(dialogs.len(), 1);
    }

    #[test]
    fn rejects_a_request_without_contact() {
        let mut req = invite();
        req.remove_header("Contact");
        let mut dialogs = Dialogs::new();
        assert_eq!(
            dialogs.create_uas(&req, "t", peer()),
            Err(DialogError::MissingContact)
        );
        req.add_header("Contact", "*");
        assert_eq!(
            dialogs.create_uas(&req, "t", peer()),
            Err(DialogError::MissingContact)
        );
        assert!(dialogs.is_empty());
    }

    #[test]
    fn finds_by_call_id_and_both_tags_or_answers_481() {
        let mut dialogs = Dialogs::new();
        let id = dialogs.create_uas(&invite(), "local1", peer()).unwrap();
        let bye = in_dialog("BYE", 11, "local1", "remote1");
        assert!(is_in_dialog(&bye));
        assert!(!is_in_dialog(&invite()));
        assert_eq!(dialogs.find(&bye).map(|d| d.id()), Some(id.clone()));
        for stray in [
            in_dialog("BYE", 11, "other", "remote1"),
            in_dialog("BYE", 11, "local1", "other"),
            invite(),
        ] {
            assert!(dialogs.find(&stray).is_none());
        }
        let resp = dialog_does_not_exist(&in_dialog("BYE", 11, "other", "remote1"));
        assert_eq!(resp.status(), Some(481));
        assert_eq!(resp.to().unwrap().tag(), Some("other"));
        assert!(dialogs.remove(&id).is_some());
        assert!(dialogs.find(&bye).is_none());
    }

    #[test]
    fn cseq_must_increase_except_for_ack_and_cancel() {
        let mut dialogs = Dialogs::new();
        let id = dialogs.create_uas(&invite(), "local1", peer()).unwrap();
        let d = dialogs.get_mut(&id).unwrap();
        // ACK for the INVITE carries the same number.
        assert_eq!(
            d.check_cseq(&in_dialog("ACK", 10, "local1", "remote1")),
            Ok(())
        );
        let equal = in_dialog("UPDATE", 10, "local1", "remote1");
        let err = d.check_cseq(&equal).unwrap_err();
        assert_eq!(
            err,
            CseqError::OutOfOrder {
                received: 10,
                last: 10
            }
        );
        assert_eq!(err.response(&equal).status(), Some(500));
        assert_eq!(
            d.check_cseq(&in_dialog("INVITE", 12, "local1", "remote1")),
            Ok(())
        );
        assert_eq!(d.remote_cseq, 12);
        assert!(matches!(
            d.check_cseq(&in_dialog("BYE", 11, "local1", "remote1")),
            Err(CseqError::OutOfOrder {
                received: 11,
                last: 12
            })
        ));
        assert_eq!(
            d.check_cseq(&in_dialog("BYE", 13, "local1", "remote1")),
            Ok(())
        );
        let mut bad = in_dialog("BYE", 14, "local1", "remote1");
        bad.set_header("CSeq", "x BYE");
        let err = d.check_cseq(&bad).unwrap_err();
        assert!(matches!(err, CseqError::Malformed(_)));
        assert_eq!(err.response(&bad).status(), Some(400));
        assert_eq!(d.remote_cseq, 13);
    }

    #[test]
    fn target_refresh_and_local_cseq() {
        let mut dialogs = Dialogs::new();
        let id = dialogs.create_uas(&invite(), "local1", peer()).unwrap();
        let d = dialogs.get_mut(&id).unwrap();
        assert!(d.refresh_target(&in_dialog("INVITE", 11, "local1", "remote1")));
        assert_eq!(d.remote_target, "sip:src-new@192.0.2.11");
        assert_eq!(d.next_local_cseq(), 1);
        assert_eq!(d.next_local_cseq(), 2);
        d.confirm();
        assert_eq!(d.state, DialogState::Confirmed);
    }
}
