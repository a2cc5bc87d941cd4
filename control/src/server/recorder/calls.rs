//! Calls in progress as the admin API sees them: finding a call by any of
//! its identifiers, recording controls (start/stop/pause/resume), tags, and
//! the call events integrations follow. Still sans-IO: the driver passes the
//! wall-clock time and forwards the events.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use mediafork_dataplane::recording::meta::{rfc3339, CallIds};
use mediafork_dataplane::RecordingControl;

use super::{Recorder, Recording};
use crate::admin::api::{
    AdminError, CallDetail, CallSelector, CallSummary, ControlAction, ControlInterval,
    ControlRequest, IdKind, TagRequest, TrackInfo,
};

/// Whether a call's audio is being stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureState {
    Recording,
    /// Audio replaced by silence (PCI).
    Paused,
    /// Nothing stored.
    Stopped,
}

impl CaptureState {
    pub fn name(self) -> &'static str {
        match self {
            CaptureState::Recording => "recording",
            CaptureState::Paused => "paused",
            CaptureState::Stopped => "stopped",
        }
    }
}

/// What the admin API knows of a recording beyond its engine handle.
#[derive(Clone, Debug)]
pub(super) struct CallInfo {
    pub source: &'static str,
    pub ids: CallIds,
    pub started_at_ns: u64,
    pub peer: SocketAddr,
    pub state: CaptureState,
    pub intervals: Vec<ControlInterval>,
    pub tags: BTreeMap<String, String>,
}

impl CallInfo {
    pub fn new(
        source: &'static str,
        ids: CallIds,
        started_at_ns: u64,
        peer: SocketAddr,
        on_demand: bool,
    ) -> Self {
        let mut info = CallInfo {
            source,
            ids,
            started_at_ns,
            peer,
            state: CaptureState::Recording,
            intervals: Vec::new(),
            tags: BTreeMap::new(),
        };
        if on_demand {
            info.state = CaptureState::Stopped;
            info.intervals.push(ControlInterval {
                kind: "stop".into(),
                started_at: rfc3339(started_at_ns),
                ended_at: None,
                by: None,
                reason: Some("on_demand".into()),
            });
        }
        info
    }

    fn close_interval(&mut self, kind: &str, at: &str) {
        if let Some(i) = self
            .intervals
            .iter_mut()
            .rev()
            .find(|i| i.kind == kind && i.ended_at.is_none())
        {
            i.ended_at = Some(at.to_string());
        }
    }
}

/// An event for `GET /v1/events`, before the driver numbers and stamps it.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEvent {
    pub event: &'static str,
    pub at_ns: u64,
    pub recording_id: Option<String>,
    pub call_id: Option<String>,
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// Events waiting for the driver; bounded so that a driver that never
/// polls (tests) cannot grow memory without end.
#[derive(Default)]
pub(super) struct EventQueue(VecDeque<PendingEvent>);

const MAX_QUEUED_EVENTS: usize = 65_536;

impl EventQueue {
    pub fn push(&mut self, e: PendingEvent) {
        if self.0.len() >= MAX_QUEUED_EVENTS {
            self.0.pop_front();
        }
        self.0.push_back(e);
    }

    pub fn pop(&mut self) -> Option<PendingEvent> {
        self.0.pop_front()
    }
}

impl Recorder {
    /// The next call event for integrations.
    pub fn poll_event(&mut self) -> Option<PendingEvent> {
        self.events.pop()
    }

    pub(super) fn emit(
        &mut self,
        event: &'static str,
        at_ns: u64,
        rec_key: &str,
        data: serde_json::Map<String, serde_json::Value>,
    ) {
        let Some(rec) = self.recordings.get(rec_key) else {
            return;
        };
        self.events.push(PendingEvent {
            event,
            at_ns,
            recording_id: Some(rec.handle.recording_id.clone()),
            call_id: rec.info.ids.sip_call_id.clone(),
            data,
        });
    }

    /// Calls in progress, oldest first.
    pub fn list_calls(&self, now_ns: u64) -> Vec<CallSummary> {
        let mut v: Vec<CallSummary> = self
            .recordings
            .values()
            .map(|r| self.summary(r, now_ns))
            .collect();
        v.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then(a.recording_id.cmp(&b.recording_id))
        });
        v
    }

    fn summary(&self, r: &Recording, now_ns: u64) -> CallSummary {
        let tracks = self
            .dialogs
            .values()
            .filter(|d| {
                self.recordings
                    .get(&d.recording)
                    .is_some_and(|x| std::ptr::eq(x, r))
            })
            .map(|d| d.streams.iter().flatten().count())
            .sum();
        CallSummary {
            recording_id: r.handle.recording_id.clone(),
            source: r.info.source.to_string(),
            call_id: r.info.ids.sip_call_id.clone(),
            cisco_guid: r.info.ids.cisco_guid.clone(),
            x_refci: r.info.ids.x_refci.clone(),
            siprec_session_id: r.info.ids.siprec_session_id.clone(),
            started_at: rfc3339(r.info.started_at_ns),
            duration_seconds: now_ns.saturating_sub(r.info.started_at_ns) as f64 / 1e9,
            state: r.info.state.name().to_string(),
            tracks,
            peer: r.info.peer.to_string(),
            dir: r.handle.dir.display().to_string(),
        }
    }

    fn detail(&self, key: &str, now_ns: u64) -> Option<CallDetail> {
        let r = self.recordings.get(key)?;
        let mut track_list = Vec::new();
        for d in self.dialogs.values().filter(|d| d.recording == key) {
            for s in d.streams.iter().flatten() {
                let spec = self.engine.shared().tracks.get(s.track);
                let index = spec.as_ref().map_or(track_list.len() as u32, |s| s.index);
                track_list.push(TrackInfo {
                    index,
                    label: s.label.clone(),
                    local: Some(SocketAddr::new(self.config.media_addr, s.ports.rtp).to_string()),
                    codecs: s
                        .payload_types
                        .iter()
                        .map(|(_, c)| c.name().to_string())
                        .collect(),
                    file: mediafork_dataplane::recording::layout::track_file(index),
                });
            }
        }
        track_list.sort_by_key(|t| t.index);
        Some(CallDetail {
            summary: self.summary(r, now_ns),
            track_list,
            intervals: r.info.intervals.clone(),
            tags: r.info.tags.clone(),
        })
    }

    /// The recording a selector names.
    fn resolve(&self, sel: &CallSelector) -> Result<String, AdminError> {
        let kinds: Vec<IdKind> = match sel.by {
            Some(k) => vec![k],
            None => IdKind::ALL.to_vec(),
        };
        for kind in kinds {
            let mut found: Vec<String> = self
                .recordings
                .iter()
                .filter(|(key, r)| self.matches(key, r, kind, &sel.id))
                .map(|(k, _)| k.clone())
                .collect();
            found.sort();
            match found.len() {
                0 => continue,
                1 => return Ok(found.remove(0)),
                n => {
                    return Err(AdminError::Ambiguous(format!(
                        "{n} calls in progress have {} {:?}; name the recording id instead",
                        kind.name(),
                        sel.id
                    )))
                }
            }
        }
        Err(AdminError::NotFound(match sel.by {
            Some(k) => format!("no call in progress has {} {:?}", k.name(), sel.id),
            None => format!(
                "no call in progress has recording id, SIP Call-ID, Cisco-GUID or x-refci {:?}",
                sel.id
            ),
        }))
    }

    fn matches(&self, key: &str, r: &Recording, kind: IdKind, id: &str) -> bool {
        match kind {
            IdKind::RecordingId => r.handle.recording_id == id,
            // CUCM's two legs have two Call-IDs: either finds the call.
            IdKind::CallId => {
                r.info.ids.sip_call_id.as_deref() == Some(id)
                    || self.dialogs.get(id).is_some_and(|d| d.recording == key)
            }
            // As CUBE sends it (decimal groups) or as `show call active`
            // and CDRs print it (32 hex digits).
            IdKind::CiscoGuid => r.info.ids.cisco_guid.as_deref().is_some_and(|g| {
                g.eq_ignore_ascii_case(id)
                    || crate::siprec::cisco_guid_hex(g).is_some_and(|h| h.eq_ignore_ascii_case(id))
            }),
            IdKind::XRefci => r.info.ids.x_refci.as_deref() == Some(id),
        }
    }

    /// `calls show`.
    pub fn show_call(&self, sel: &CallSelector, now_ns: u64) -> Result<CallDetail, AdminError> {
        let key = self.resolve(sel)?;
        self.detail(&key, now_ns)
            .ok_or_else(|| AdminError::NotFound(format!("call {:?} just ended", sel.id)))
    }

    /// A recording control. Invalid transitions are refused with a message
    /// that says what state the call is in.
    pub fn control(
        &mut self,
        sel: &CallSelector,
        action: ControlAction,
        req: &ControlRequest,
        now_ns: u64,
    ) -> Result<CallDetail, AdminError> {
        let key = self.resolve(sel)?;
        let Some(rec) = self.recordings.get_mut(&key) else {
            return Err(AdminError::NotFound(format!(
                "call {:?} just ended",
                sel.id
            )));
        };
        let state = rec.info.state;
        let at = rfc3339(now_ns);
        let conflict = |what: &str| {
            Err(AdminError::Conflict(format!(
                "cannot {} recording {}: it is {}{what}",
                action.name(),
                rec.handle.recording_id,
                state.name()
            )))
        };
        let (engine_steps, new_state, event): (&[RecordingControl], CaptureState, &'static str) =
            match (action, state) {
                (ControlAction::Pause, CaptureState::Recording) => {
                    (&[RecordingControl::Pause], CaptureState::Paused, "paused")
                }
                (ControlAction::Pause, CaptureState::Paused) => return conflict(" already"),
                (ControlAction::Pause, CaptureState::Stopped) => {
                    return conflict("; start it before pausing")
                }
                (ControlAction::Resume, CaptureState::Paused) => (
                    &[RecordingControl::Resume],
                    CaptureState::Recording,
                    "resumed",
                ),
                (ControlAction::Resume, _) => return conflict(", not paused"),
                (ControlAction::Stop, CaptureState::Recording) => {
                    (&[RecordingControl::Stop], CaptureState::Stopped, "stopped")
                }
                // A pause ends where the stop begins.
                (ControlAction::Stop, CaptureState::Paused) => (
                    &[RecordingControl::Resume, RecordingControl::Stop],
                    CaptureState::Stopped,
                    "stopped",
                ),
                (ControlAction::Stop, CaptureState::Stopped) => return conflict(" already"),
                (ControlAction::Start, CaptureState::Stopped) => (
                    &[RecordingControl::Start],
                    CaptureState::Recording,
                    "started",
                ),
                (ControlAction::Start, _) => return conflict(" already"),
            };
        for step in engine_steps {
            // The engine knows every call the recorder holds; an error here
            // means the call ended under us.
            self.engine
                .control(
                    &rec.handle,
                    *step,
                    now_ns,
                    req.by.clone(),
                    req.reason.clone(),
                )
                .map_err(|e| AdminError::NotFound(e.to_string()))?;
            match step {
                RecordingControl::Resume => rec.info.close_interval("pause", &at),
                RecordingControl::Start => rec.info.close_interval("stop", &at),
                RecordingControl::Pause | RecordingControl::Stop => {
                    rec.info.intervals.push(ControlInterval {
                        kind: if *step == RecordingControl::Pause {
                            "pause"
                        } else {
                            "stop"
                        }
                        .into(),
                        started_at: at.clone(),
                        ended_at: None,
                        by: req.by.clone(),
                        reason: req.reason.clone(),
                    })
                }
            }
        }
        rec.info.state = new_state;
        tracing::info!(
            recording_id = %rec.handle.recording_id,
            call_id = rec.info.ids.sip_call_id.as_deref().unwrap_or(""),
            action = action.name(),
            by = req.by.as_deref().unwrap_or(""),
            "recording control"
        );
        let mut data = serde_json::Map::new();
        if let Some(by) = &req.by {
            data.insert("by".into(), by.clone().into());
        }
        if let Some(reason) = &req.reason {
            data.insert("reason".into(), reason.clone().into());
        }
        self.emit(event, now_ns, &key, data);
        self.detail(&key, now_ns)
            .ok_or_else(|| AdminError::NotFound(format!("call {:?} just ended", sel.id)))
    }

    /// Attach key/value metadata (agent id, UCID, customer id); an empty
    /// value removes the key.
    pub fn tag(
        &mut self,
        sel: &CallSelector,
        req: &TagRequest,
        now_ns: u64,
    ) -> Result<CallDetail, AdminError> {
        if req.tags.is_empty() {
            return Err(AdminError::BadRequest("no tags given".into()));
        }
        if let Some(bad) = req.tags.keys().find(|k| !valid_tag_key(k)) {
            return Err(AdminError::BadRequest(format!(
                "tag key {bad:?}: use 1 to 64 letters, digits, '_', '-' or '.'"
            )));
        }
        if let Some((k, _)) = req.tags.iter().find(|(_, v)| v.len() > 1024) {
            return Err(AdminError::BadRequest(format!(
                "tag {k:?}: values are limited to 1024 bytes"
            )));
        }
        let key = self.resolve(sel)?;
        let Some(rec) = self.recordings.get_mut(&key) else {
            return Err(AdminError::NotFound(format!(
                "call {:?} just ended",
                sel.id
            )));
        };
        let added = req
            .tags
            .iter()
            .filter(|(k, v)| !v.is_empty() && !rec.info.tags.contains_key(*k))
            .count();
        if rec.info.tags.len() + added > MAX_TAGS {
            return Err(AdminError::BadRequest(format!(
                "a call holds at most {MAX_TAGS} tags"
            )));
        }
        for (k, v) in &req.tags {
            if v.is_empty() {
                rec.info.tags.remove(k);
            } else {
                rec.info.tags.insert(k.clone(), v.clone());
            }
        }
        self.engine
            .tag(&rec.handle, req.tags.clone())
            .map_err(|e| AdminError::NotFound(e.to_string()))?;
        tracing::info!(recording_id = %rec.handle.recording_id, call_id = rec.info.ids.sip_call_id.as_deref().unwrap_or(""), tags = ?req.tags, "tagged");
        let mut data = serde_json::Map::new();
        data.insert(
            "tags".into(),
            serde_json::to_value(&req.tags).unwrap_or_default(),
        );
        if let Some(by) = &req.by {
            data.insert("by".into(), by.clone().into());
        }
        self.emit("tagged", now_ns, &key, data);
        self.detail(&key, now_ns)
            .ok_or_else(|| AdminError::NotFound(format!("call {:?} just ended", sel.id)))
    }
}

const MAX_TAGS: usize = 64;

fn valid_tag_key(k: &str) -> bool {
    (1..=64).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}
