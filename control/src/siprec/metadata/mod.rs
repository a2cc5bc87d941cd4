//! SIPREC recording metadata (RFC 7865) in every shape SRCs send it.
//!
//! Elements are matched by local name whatever their namespace or prefix, and
//! both attribute spellings are accepted:
//! - RFC 7865 (Cisco CUBE, BroadWorks, AudioCodes): `session_id`,
//!   `participant_id`, `stream_id` attributes, streams associated with
//!   participants through `<participantstreamassoc>`;
//! - the pre-RFC draft (Oracle/Acme Packet): `id=` and `session=` attributes,
//!   `<send>`/`<recv>` inline in `<participant>`, `<mode>` in `<stream>`;
//! - Ribbon: a `tns:` prefix on everything and AORs without `sip:`.
//!
//! Anything vendor-specific (`<extensiondata>` contents, unknown elements such
//! as Ribbon's `callData`) is kept as `(name, text)` extensions. A document
//! is parsed on its own; merging partial updates is the caller's concern.

mod xml_tree;

pub use xml_tree::{MAX_DEPTH, MAX_ELEMENTS, MAX_METADATA_LEN};

use serde::Serialize;
use thiserror::Error;
use xml_tree::{parse_tree, Element};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    #[error("metadata of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("metadata is not UTF-8")]
    NotUtf8,
    #[error("metadata must not contain DOCTYPE or ENTITY declarations")]
    DoctypeForbidden,
    #[error("metadata nests elements deeper than {max}")]
    TooDeep { max: usize },
    #[error("metadata has more than {max} elements")]
    TooManyElements { max: usize },
    #[error("malformed metadata XML: {0}")]
    Xml(String),
    #[error("metadata has no root element")]
    Empty,
    #[error("metadata root element is <{0}>, not <recording>")]
    UnexpectedRoot(String),
}

/// One metadata document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordingMetadata {
    /// `complete` or `partial`.
    pub datamode: Option<String>,
    /// The first `<group>`'s id.
    pub group_id: Option<String>,
    pub sessions: Vec<RsSession>,
    pub participants: Vec<Participant>,
    pub streams: Vec<RsStream>,
    /// Every extension in document order, wherever it appeared (also copied
    /// into the owning session/participant/stream).
    pub extensions: Vec<(String, String)>,
}

/// A communication session (CS) being recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RsSession {
    pub id: String,
    /// `<sipSessionID>` values (RFC 7989 Session-ID, whitespace removed).
    pub sip_session_ids: Vec<String>,
    pub group_ref: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// From `<sessionrecordingassoc>` or an inline `<associate-time>`.
    pub associate_time: Option<String>,
    pub extensions: Vec<(String, String)>,
}

/// A participant: who speaks on which streams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Participant {
    pub id: String,
    /// As written (Ribbon omits the `sip:`; see [`Participant::aor_uri`]).
    pub aor: Option<String>,
    pub name: Option<String>,
    /// Sessions it takes part in (`session=` attribute or
    /// `<participantsessionassoc>`).
    pub session_ids: Vec<String>,
    /// Stream ids this participant sends (its voice).
    pub send: Vec<String>,
    /// Stream ids this participant receives.
    pub recv: Vec<String>,
    pub extensions: Vec<(String, String)>,
}

/// A media stream, tied to an SDP m-line by its label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RsStream {
    pub id: String,
    /// The `a=label` of the m-line carrying this stream.
    pub label: Option<String>,
    pub session_id: Option<String>,
    /// Pre-RFC `<mode>` (`separate`, `mixed`).
    pub mode: Option<String>,
    pub associate_time: Option<String>,
    pub extensions: Vec<(String, String)>,
}

impl Participant {
    /// The AOR as a URI: `sip:` is prepended when it has no scheme.
    pub fn aor_uri(&self) -> Option<String> {
        let aor = self.aor.as_deref()?;
        Some(if has_scheme(aor) {
            aor.to_owned()
        } else {
            format!("sip:{aor}")
        })
    }

    /// The user part of the AOR (`sip:+15555550100@host` → `+15555550100`,
    /// `tel:+15555550100` → `+15555550100`).
    pub fn aor_user(&self) -> Option<String> {
        let uri = self.aor_uri()?;
        let (scheme, rest) = uri.split_once(':')?;
        let rest = rest.split([';', '?']).next()?;
        let user = if scheme.eq_ignore_ascii_case("tel") {
            rest
        } else {
            rest.rsplit_once('@')?.0
        };
        let user = user.split(':').next()?;
        (!user.is_empty()).then(|| user.to_owned())
    }
}

/// Whether `s` starts with a URI scheme (`sip:`, `tel:`), as opposed to
/// Ribbon's bare `user@host`.
fn has_scheme(s: &str) -> bool {
    s.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

impl RecordingMetadata {
    pub fn participant(&self, id: &str) -> Option<&Participant> {
        self.participants.iter().find(|p| p.id == id)
    }

    pub fn stream(&self, id: &str) -> Option<&RsStream> {
        self.streams.iter().find(|s| s.id == id)
    }

    /// The stream carried on the m-line with this `a=label`.
    pub fn stream_by_label(&self, label: &str) -> Option<&RsStream> {
        let label = label.trim();
        self.streams
            .iter()
            .find(|s| s.label.as_deref() == Some(label))
    }

    /// Who speaks on the m-line labelled `label`: the participants that send
    /// a stream with that label (several for a mixed stream).
    pub fn senders_of_label(&self, label: &str) -> Vec<&Participant> {
        let label = label.trim();
        let ids: Vec<&str> = self
            .streams
            .iter()
            .filter(|s| s.label.as_deref() == Some(label))
            .map(|s| s.id.as_str())
            .collect();
        self.participants
            .iter()
            .filter(|p| p.send.iter().any(|s| ids.contains(&s.as_str())))
            .collect()
    }

    /// The first extension with this name (e.g. `apkt:ucid`).
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one metadata document.
pub fn parse(xml: &[u8]) -> Result<RecordingMetadata, MetadataError> {
    let root = parse_tree(xml)?;
    if !root.is("recording") {
        return Err(MetadataError::UnexpectedRoot(crate::sip::syntax::excerpt(
            &root.name, 40,
        )));
    }
    let mut builder = Builder::default();
    for child in &root.children {
        builder.top_level(child);
    }
    Ok(builder.finish())
}

/// Collects entities first and associations second, since documents put
/// `<participantstreamassoc>` before or after the entities it links.
#[derive(Default)]
struct Builder {
    meta: RecordingMetadata,
    stream_assocs: Vec<(String, Vec<String>, Vec<String>)>,
    session_assocs: Vec<(String, String)>,
    recording_assocs: Vec<(String, Option<String>)>,
}

impl Builder {
    fn top_level(&mut self, el: &Element) {
        match el.local.to_ascii_lowercase().as_str() {
            "datamode" => self.meta.datamode = el.text(),
            "group" => {
                if self.meta.group_id.is_none() {
                    self.meta.group_id = el.attr_any(&["group_id", "id"]).map(str::to_owned);
                }
                for child in &el.children {
                    if !child.is("associate-time") && !child.is("disassociate-time") {
                        self.meta.extensions.extend(extensions_of(child));
                    }
                }
            }
            "session" => self.session(el),
            "participant" => self.participant(el),
            "stream" => self.stream(el),
            "participantstreamassoc" => {
                if let Some(id) = el.attr_any(&["participant_id", "participant", "id"]) {
                    let (send, recv) = send_recv(el);
                    self.stream_assocs.push((id.to_owned(), send, recv));
                }
            }
            "participantsessionassoc" => {
                if let (Some(p), Some(s)) = (
                    el.attr_any(&["participant_id", "participant"]),
                    el.attr_any(&["session_id", "session"]),
                ) {
                    self.session_assocs.push((p.to_owned(), s.to_owned()));
                }
            }
            "sessionrecordingassoc" => {
                if let Some(s) = el.attr_any(&["session_id", "session", "id"]) {
                    self.recording_assocs
                        .push((s.to_owned(), el.child_text("associate-time")));
                }
            }
            _ => self.meta.extensions.extend(extensions_of(el)),
        }
    }

    fn session(&mut self, el: &Element) {
        let Some(id) = el.attr_any(&["session_id", "id"]) else {
            tracing::debug!("metadata <session> without an id ignored");
            return;
        };
        let mut session = RsSession {
            id: id.to_owned(),
            ..RsSession::default()
        };
        for child in &el.children {
            match child.local.to_ascii_lowercase().as_str() {
                "sipsessionid" => {
                    if let Some(t) = child.text() {
                        session.sip_session_ids.push(t.split_whitespace().collect());
                    }
                }
                "group-ref" => session.group_ref = child.text(),
                "start-time" => session.start_time = child.text(),
                "end-time" => session.end_time = child.text(),
                "associate-time" => session.associate_time = child.text(),
                "disassociate-time" => {}
                _ => self.entity_extensions(child, &mut session.extensions),
            }
        }
        match self.meta.sessions.iter_mut().find(|s| s.id == session.id) {
            Some(existing) => merge_session(existing, session),
            None => self.meta.sessions.push(session),
        }
    }

    fn participant(&mut self, el: &Element) {
        let Some(id) = el.attr_any(&["participant_id", "id"]) else {
            tracing::debug!("metadata <participant> without an id ignored");
            return;
        };
        let mut p = Participant {
            id: id.to_owned(),
            ..Participant::default()
        };
        if let Some(s) = el.attr_any(&["session_id", "session"]) {
            p.session_ids.push(s.to_owned());
        }
        for child in &el.children {
            match child.local.to_ascii_lowercase().as_str() {
                "nameid" => {
                    p.aor = child
                        .attr("aor")
                        .map(str::to_owned)
                        .or_else(|| child.child_text("aor"))
                        .or(p.aor.take());
                    p.name = child.child_text("name").or(p.name.take());
                }
                "aor" => p.aor = child.text().or(p.aor.take()),
                "name" => p.name = child.text().or(p.name.take()),
                "send" => push_ids(&mut p.send, child),
                "recv" => push_ids(&mut p.recv, child),
                "associate-time" | "disassociate-time" => {}
                _ => self.entity_extensions(child, &mut p.extensions),
            }
        }
        self.upsert_participant(p);
    }

    fn stream(&mut self, el: &Element) {
        let Some(id) = el.attr_any(&["stream_id", "id"]) else {
            tracing::debug!("metadata <stream> without an id ignored");
            return;
        };
        let mut s = RsStream {
            id: id.to_owned(),
            session_id: el.attr_any(&["session_id", "session"]).map(str::to_owned),
            ..RsStream::default()
        };
        for child in &el.children {
            match child.local.to_ascii_lowercase().as_str() {
                "label" => s.label = child.text(),
                "mode" => s.mode = child.text(),
                "associate-time" => s.associate_time = child.text(),
                "disassociate-time" | "content-type" => {}
                _ => self.entity_extensions(child, &mut s.extensions),
            }
        }
        match self.meta.streams.iter_mut().find(|x| x.id == s.id) {
            Some(existing) => {
                existing.label = existing.label.take().or(s.label);
                existing.session_id = existing.session_id.take().or(s.session_id);
                existing.mode = existing.mode.take().or(s.mode);
                existing.associate_time = existing.associate_time.take().or(s.associate_time);
                existing.extensions.extend(s.extensions);
            }
            None => self.meta.streams.push(s),
        }
    }

    /// Extensions inside an entity go both to the entity and to the
    /// document-wide list.
    fn entity_extensions(&mut self, el: &Element, owner: &mut Vec<(String, String)>) {
        let found = extensions_of(el);
        owner.extend(found.iter().cloned());
        self.meta.extensions.extend(found);
    }

    fn upsert_participant(&mut self, p: Participant) {
        match self.meta.participants.iter_mut().find(|x| x.id == p.id) {
            Some(existing) => {
                existing.aor = existing.aor.take().or(p.aor);
                existing.name = existing.name.take().or(p.name);
                extend_unique(&mut existing.session_ids, p.session_ids);
                extend_unique(&mut existing.send, p.send);
                extend_unique(&mut existing.recv, p.recv);
                existing.extensions.extend(p.extensions);
            }
            None => self.meta.participants.push(p),
        }
    }

    fn finish(mut self) -> RecordingMetadata {
        for (id, send, recv) in std::mem::take(&mut self.stream_assocs) {
            self.upsert_participant(Participant {
                id,
                send,
                recv,
                ..Participant::default()
            });
        }
        for (participant, session) in std::mem::take(&mut self.session_assocs) {
            self.upsert_participant(Participant {
                id: participant,
                session_ids: vec![session],
                ..Participant::default()
            });
        }
        for (session, time) in std::mem::take(&mut self.recording_assocs) {
            match self.meta.sessions.iter_mut().find(|s| s.id == session) {
                Some(s) => s.associate_time = s.associate_time.take().or(time),
                None => self.meta.sessions.push(RsSession {
                    id: session,
                    associate_time: time,
                    ..RsSession::default()
                }),
            }
        }
        self.meta
    }
}

fn merge_session(existing: &mut RsSession, new: RsSession) {
    extend_unique(&mut existing.sip_session_ids, new.sip_session_ids);
    existing.group_ref = existing.group_ref.take().or(new.group_ref);
    existing.start_time = existing.start_time.take().or(new.start_time);
    existing.end_time = existing.end_time.take().or(new.end_time);
    existing.associate_time = existing.associate_time.take().or(new.associate_time);
    existing.extensions.extend(new.extensions);
}

fn extend_unique(into: &mut Vec<String>, from: Vec<String>) {
    for item in from {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}

/// `<send>`/`<recv>` hold one stream id each; tolerate several separated by
/// whitespace.
fn push_ids(into: &mut Vec<String>, el: &Element) {
    extend_unique(
        into,
        el.text.split_whitespace().map(str::to_owned).collect(),
    );
}

fn send_recv(el: &Element) -> (Vec<String>, Vec<String>) {
    let (mut send, mut recv) = (Vec::new(), Vec::new());
    for child in &el.children {
        if child.is("send") {
            push_ids(&mut send, child);
        } else if child.is("recv") {
            push_ids(&mut recv, child);
        }
    }
    (send, recv)
}

/// The extensions an element holds: the contents of an `<extensiondata>`
/// container, or the element itself when it is an unknown element.
fn extensions_of(el: &Element) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if el.is("extensiondata") {
        for child in &el.children {
            collect_extensions(child, "", &mut found);
        }
    } else {
        collect_extensions(el, "", &mut found);
    }
    found
}

/// Flattens an extension element into `(path, text)` pairs: a leaf gives its
/// own name (`apkt:ucid`), nested leaves give a `/`-joined path
/// (`callData/gcid`). Elements with neither text nor children are kept with
/// an empty value, since their presence can be the information.
fn collect_extensions(el: &Element, parent: &str, out: &mut Vec<(String, String)>) {
    let name = if parent.is_empty() {
        el.name.clone()
    } else {
        format!("{parent}/{}", el.name)
    };
    let text = el.text.trim();
    if el.children.is_empty() || !text.is_empty() {
        out.push((name.clone(), text.to_owned()));
    }
    for child in &el.children {
        collect_extensions(child, &name, out);
    }
}

#[cfg(test)]
mod tests;
