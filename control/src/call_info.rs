//! What the control plane knows about a call, in `meta.json` terms: ids,
//! participants and vendor facts, gathered from the INVITE and its SIPREC
//! metadata or CUCM From-header parameters.

use mediafork_dataplane::engine::CallSetup;
use mediafork_dataplane::recording::meta::{CallIds, ParticipantMeta};
use serde_json::{Map, Value};

use crate::sip::SipMessage;
use crate::siprec::{self, cucm::CucmLeg, metadata::RecordingMetadata, InviteKind};

/// Participants with the labels of the streams they send and receive.
pub fn participants(md: &RecordingMetadata) -> Vec<ParticipantMeta> {
    let label_of = |stream_id: &str| {
        md.streams
            .iter()
            .find(|s| s.id == stream_id)
            .and_then(|s| s.label.clone())
            .unwrap_or_else(|| stream_id.to_string())
    };
    md.participants
        .iter()
        .map(|p| ParticipantMeta {
            name: p.name.clone(),
            aor: p.aor.clone(),
            sends: p.send.iter().map(|s| label_of(s)).collect(),
            receives: p.recv.iter().map(|s| label_of(s)).collect(),
        })
        .collect()
}

/// Vendor extension data as a JSON object (`apkt:ucid` → `"..."`).
pub fn extensions(md: &RecordingMetadata) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in &md.extensions {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    m
}

/// CUCM's description of the two ends, for `meta.json`.
pub fn cucm_extensions(leg: &CucmLeg) -> Map<String, Value> {
    let mut m = Map::new();
    let mut v = serde_json::to_value(leg).unwrap_or(Value::Null);
    // Which leg an INVITE carried is per track (labels `near`/`far`), not
    // per recording.
    if let Some(o) = v.as_object_mut() {
        o.remove("stream");
    }
    m.insert("cucm".into(), v);
    m
}

/// The call setup for an INVITE the recorder answered (or saw answered).
pub fn call_setup(invite: &SipMessage, kind: &InviteKind, started_at_ns: u64) -> CallSetup {
    let mut ids = CallIds {
        sip_call_id: invite.call_id().ok().map(str::to_string),
        cisco_guid: siprec::cisco_guid(invite),
        ..CallIds::default()
    };
    let mut setup = CallSetup {
        started_at_ns,
        ..CallSetup::default()
    };
    match kind {
        InviteKind::Siprec { metadata, .. } => {
            setup.source = "siprec".into();
            if let Some((_, md)) = metadata {
                ids.siprec_session_id = md.sessions.first().map(|s| s.id.clone());
                setup.participants = participants(md);
                setup.extensions = extensions(md);
            }
        }
        InviteKind::Cucm { leg, .. } => {
            setup.source = "cucm".into();
            ids.x_refci = Some(leg.refci.clone());
            setup.extensions = cucm_extensions(leg);
        }
        InviteKind::Plain { .. } => setup.source = "sip".into(),
    }
    setup.ids = ids;
    setup
}
