//! The admin API's vocabulary: what the HTTP layer asks the server loop
//! and what it gets back. Shared by the HTTP server (`admin::http`), the
//! CLI client (`cli`) and the server loop (`server::admin_ops`), so the three
//! cannot drift apart. Field names are part of the `/v1/` contract
//! (docs/admin-api.yaml): add fields, never rename them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// Path prefix of every route.
pub const API_PREFIX: &str = "/v1";

/// One answer channel per request.
pub type Reply<T> = oneshot::Sender<T>;

/// What the HTTP layer asks of the server loop. Recordings on disk
/// (`recordings list/show`) are read by the HTTP layer itself.
#[derive(Debug)]
pub enum AdminRequest {
    Status(Reply<Status>),
    ListCalls(Reply<Vec<CallSummary>>),
    ShowCall(CallSelector, Reply<Result<CallDetail, AdminError>>),
    /// `start`, `stop`, `pause`, `resume`.
    Control(
        CallSelector,
        ControlAction,
        ControlRequest,
        Reply<Result<CallDetail, AdminError>>,
    ),
    /// Attach key/value metadata; an empty value removes the key.
    Tag(
        CallSelector,
        TagRequest,
        Reply<Result<CallDetail, AdminError>>,
    ),
    Stats(Reply<Stats>),
    /// `true`: drain (refuse new calls with 503); `false`: undrain.
    Drain(bool, Reply<DrainStatus>),
    /// Re-read the configuration file, as SIGHUP does.
    Reload(Reply<ReloadResult>),
}

/// How a call is named in a request: by recording id, SIP Call-ID,
/// Cisco-GUID or x-refci. `by: None` tries each in that order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSelector {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<IdKind>,
}

/// Which identifier a selector holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    RecordingId,
    CallId,
    CiscoGuid,
    XRefci,
}

impl IdKind {
    pub const ALL: [IdKind; 4] = [
        IdKind::RecordingId,
        IdKind::CallId,
        IdKind::CiscoGuid,
        IdKind::XRefci,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IdKind::RecordingId => "recording_id",
            IdKind::CallId => "call_id",
            IdKind::CiscoGuid => "cisco_guid",
            IdKind::XRefci => "x_refci",
        }
    }

    pub fn parse(s: &str) -> Option<IdKind> {
        IdKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A recording control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Store audio again after `stop` (or for the first time when
    /// `recordings.mode = "on_demand"`); a new segment starts.
    Start,
    /// Store nothing until `start`: the stopped time is not in the WAV.
    Stop,
    /// Replace audio with silence of the same length (PCI), keeping the
    /// timeline; `meta.json` lists the pause.
    Pause,
    /// End a pause.
    Resume,
}

impl ControlAction {
    pub fn name(self) -> &'static str {
        match self {
            ControlAction::Start => "start",
            ControlAction::Stop => "stop",
            ControlAction::Pause => "pause",
            ControlAction::Resume => "resume",
        }
    }

    pub fn parse(s: &str) -> Option<ControlAction> {
        [
            ControlAction::Start,
            ControlAction::Stop,
            ControlAction::Pause,
            ControlAction::Resume,
        ]
        .into_iter()
        .find(|a| a.name() == s)
    }
}

/// Body of a control request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// Who asked (an agent id, "finesse", "jtapi-bridge"); kept in meta.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of a tag request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRequest {
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Why a request failed; each maps to one HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", content = "message", rename_all = "snake_case")]
pub enum AdminError {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the id matches more than one call; name its kind with `by`.
    #[error("{0}")]
    Ambiguous(String),
    /// 409: the call is not in a state the action applies to.
    #[error("{0}")]
    Conflict(String),
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 503: the server loop is gone (shutting down).
    #[error("{0}")]
    Unavailable(String),
}

impl AdminError {
    pub fn http_status(&self) -> u16 {
        match self {
            AdminError::NotFound(_) => 404,
            AdminError::Ambiguous(_) | AdminError::Conflict(_) => 409,
            AdminError::BadRequest(_) => 400,
            AdminError::Unavailable(_) => 503,
        }
    }
}

/// `GET /v1/status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub started_at: String,
    pub uptime_seconds: f64,
    /// `socket` or `dpdk:<port>`.
    pub backend: String,
    pub workers: Vec<WorkerInfo>,
    pub writers: usize,
    pub ports: PortsStatus,
    pub active_calls: usize,
    pub active_dialogs: usize,
    pub draining: bool,
    /// Why new calls get 503, when they do (`draining`, `storage_critical`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refusing_because: Vec<String>,
    pub storage: StorageStatus,
    pub calls: CallCounters,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub id: usize,
    /// CPU core the worker is pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortsStatus {
    /// `first-last`.
    pub range: String,
    pub total: usize,
    pub in_use: usize,
    pub quarantined: usize,
    pub free: usize,
}

/// The recordings volume.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageStatus {
    pub dir: String,
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub free_percent: f64,
    /// `ok`, `warning` or `critical`.
    pub state: String,
}

/// Totals since start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounters {
    pub started: u64,
    pub ended: u64,
    pub rejected: u64,
    pub session_expired: u64,
}

/// A call in progress, as `calls list` shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    pub recording_id: String,
    /// `siprec`, `cucm` or `sip`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cisco_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_refci: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siprec_session_id: Option<String>,
    pub started_at: String,
    pub duration_seconds: f64,
    /// `recording`, `paused` or `stopped`.
    pub state: String,
    pub tracks: usize,
    /// The SBC or CUCM node that sent the call.
    pub peer: String,
    pub dir: String,
}

/// One track of a call in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Local media address the track is received on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// Codecs the SDP allowed (`PCMU`, `PCMA`).
    pub codecs: Vec<String>,
    pub file: String,
}

/// A paused or stopped stretch of a call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlInterval {
    /// `pause` or `stop`.
    pub kind: String,
    pub started_at: String,
    /// Absent while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /v1/calls/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallDetail {
    #[serde(flatten)]
    pub summary: CallSummary,
    pub track_list: Vec<TrackInfo>,
    pub intervals: Vec<ControlInterval>,
    pub tags: BTreeMap<String, String>,
}

/// `GET /v1/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub workers: Vec<WorkerStatsView>,
    pub writers: Vec<WriterStatsView>,
    /// DPDK port counters (`dpdk` backend only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic: Option<NicStats>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatsView {
    pub worker: usize,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub recorded: u64,
    pub rtcp: u64,
    /// Drops by reason (names as in `mediafork replay`'s summary).
    pub drops: BTreeMap<String, u64>,
    /// Bytes waiting in this worker's rings to the writers.
    pub ring_used_bytes: u64,
    pub ring_capacity_bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WriterStatsView {
    pub writer: usize,
    pub records: u64,
    pub bytes_written: u64,
    pub io_errors: u64,
    pub open_calls: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NicStats {
    pub port: String,
    pub driver: String,
    pub ipackets: u64,
    pub ibytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub rx_nombuf: u64,
    pub queues: Vec<NicQueueStats>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicQueueStats {
    pub queue: u16,
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
}

/// `POST /v1/drain`, `POST /v1/undrain`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainStatus {
    pub draining: bool,
    pub active_calls: usize,
}

/// `POST /v1/reload`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadResult {
    pub applied: bool,
    pub message: String,
    /// Changed keys that need a restart and were not applied.
    #[serde(default)]
    pub needs_restart: Vec<String>,
}

/// One line of `GET /v1/events` (newline-delimited JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    /// Increases by one per event; a gap means the reader fell behind.
    pub seq: u64,
    pub at: String,
    /// `call_started`, `stream_added`, `paused`, `resumed`, `stopped`,
    /// `started`, `tagged`, `call_ended`, `storage_state`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Event-specific fields (e.g. `dir`, `complete`, `tracks` on
    /// `call_ended`; `state`, `free_percent` on `storage_state`).
    #[serde(flatten)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// A finished (or interrupted) recording on disk, as `recordings list`
/// shows it; `recordings show` returns the whole `meta.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingSummary {
    pub recording_id: String,
    pub dir: String,
    pub source: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub complete: bool,
    pub tracks: usize,
    pub duration_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cisco_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_refci: Option<String>,
}

/// The JSON body of every error answer: `{"error": code, "message": text}`.
/// [`AdminError`] serializes to the same shape; clients read this struct
/// because the HTTP layer has codes of its own (`unauthorized`,
/// `method_not_allowed`, `internal`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

impl AdminError {
    /// The `error` code in the JSON body (`not_found`, `ambiguous`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::NotFound(_) => "not_found",
            AdminError::Ambiguous(_) => "ambiguous",
            AdminError::Conflict(_) => "conflict",
            AdminError::BadRequest(_) => "bad_request",
            AdminError::Unavailable(_) => "unavailable",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            AdminError::NotFound(m)
            | AdminError::Ambiguous(m)
            | AdminError::Conflict(m)
            | AdminError::BadRequest(m)
            | AdminError::Unavailable(m) => m,
        }
    }
}

impl From<&AdminError> for ErrorBody {
    fn from(e: &AdminError) -> ErrorBody {
        ErrorBody {
            error: e.code().to_string(),
            message: e.message().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_matches_admin_error_serde_form() {
        for e in [
            AdminError::NotFound("a".into()),
            AdminError::Ambiguous("b".into()),
            AdminError::Conflict("c".into()),
            AdminError::BadRequest("d".into()),
            AdminError::Unavailable("e".into()),
        ] {
            let via_serde = serde_json::to_value(&e).unwrap();
            let via_body = serde_json::to_value(ErrorBody::from(&e)).unwrap();
            assert_eq!(via_serde, via_body);
            let back: AdminError = serde_json::from_value(via_body).unwrap();
            assert_eq!(back, e);
        }
    }
}
