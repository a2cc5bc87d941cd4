//! A stand-in for the server loop in tests: answers [`AdminRequest`]s from
//! a small in-memory call table, the way `server::admin_ops` does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc};

use super::api::*;
use super::http::AdminState;

/// What the fake loop was asked, for assertions.
#[derive(Default, Debug)]
pub(crate) struct Seen {
    pub selectors: Vec<CallSelector>,
    pub controls: Vec<(ControlAction, ControlRequest)>,
    pub drained: Option<bool>,
}

pub(crate) struct Fake {
    pub state: AdminState,
    pub seen: Arc<Mutex<Seen>>,
}

/// The one call the fake loop knows.
pub(crate) fn call() -> CallDetail {
    CallDetail {
        summary: CallSummary {
            recording_id: "r1".into(),
            source: "siprec".into(),
            call_id: Some("c1@host".into()),
            cisco_guid: Some("G-1".into()),
            started_at: "2024-05-01T08:00:00Z".into(),
            duration_seconds: 12.0,
            state: "recording".into(),
            tracks: 2,
            peer: "192.0.2.1:5060".into(),
            dir: "/rec/2024/05/01/r1".into(),
            ..CallSummary::default()
        },
        track_list: vec![TrackInfo {
            index: 0,
            label: Some("caller".into()),
            local: Some("192.0.2.9:40000".into()),
            codecs: vec!["PCMU".into()],
            file: "track-0.wav".into(),
        }],
        ..CallDetail::default()
    }
}

/// Starts a fake loop on the current tokio runtime.
pub(crate) fn start(token: Option<&str>, recordings_dir: PathBuf) -> Fake {
    let (tx, mut rx) = mpsc::channel(16);
    let (events, _) = broadcast::channel(4);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut detail = call();
        let mut draining = false;
        while let Some(req) = rx.recv().await {
            match req {
                AdminRequest::Status(r) => {
                    let _ = r.send(Status {
                        version: "9.9.9-test".into(),
                        backend: "socket".into(),
                        active_calls: 1,
                        draining,
                        workers: vec![WorkerInfo {
                            id: 0,
                            core: Some(2),
                        }],
                        ..Status::default()
                    });
                }
                AdminRequest::ListCalls(r) => {
                    let _ = r.send(vec![detail.summary.clone()]);
                }
                AdminRequest::ShowCall(sel, r) => {
                    let _ = r.send(find(&log, &sel).map(|()| detail.clone()));
                }
                AdminRequest::Control(sel, action, req, r) => {
                    let answer = find(&log, &sel).and_then(|()| {
                        let state = match action {
                            ControlAction::Pause => "paused",
                            ControlAction::Stop => "stopped",
                            _ => "recording",
                        };
                        if detail.summary.state == state {
                            return Err(AdminError::Conflict(format!(
                                "the call is already {state}"
                            )));
                        }
                        detail.summary.state = state.into();
                        if matches!(action, ControlAction::Pause | ControlAction::Stop) {
                            detail.intervals.push(ControlInterval {
                                kind: action.name().into(),
                                started_at: "2024-05-01T08:00:05Z".into(),
                                by: req.by.clone(),
                                reason: req.reason.clone(),
                                ..ControlInterval::default()
                            });
                        }
                        log.lock().unwrap().controls.push((action, req));
                        Ok(detail.clone())
                    });
                    let _ = r.send(answer);
                }
                AdminRequest::Tag(sel, req, r) => {
                    let answer = find(&log, &sel).map(|()| {
                        for (k, v) in req.tags {
                            if v.is_empty() {
                                detail.tags.remove(&k);
                            } else {
                                detail.tags.insert(k, v);
                            }
                        }
                        detail.clone()
                    });
                    let _ = r.send(answer);
                }
                AdminRequest::Stats(r) => {
                    let _ = r.send(Stats {
                        workers: vec![WorkerStatsView {
                            worker: 0,
                            rx_packets: 1000,
                            drops: BTreeMap::from([("unknown_port".to_string(), 7)]),
                            ..WorkerStatsView::default()
                        }],
                        writers: vec![WriterStatsView {
                            writer: 0,
                            records: 990,
                            ..WriterStatsView::default()
                        }],
                        nic: None,
                    });
                }
                AdminRequest::Drain(on, r) => {
                    draining = on;
                    log.lock().unwrap().drained = Some(on);
                    let _ = r.send(DrainStatus {
                        draining,
                        active_calls: 1,
                    });
                }
                AdminRequest::Reload(r) => {
                    let _ = r.send(ReloadResult {
                        applied: true,
                        message: "configuration reloaded".into(),
                        needs_restart: vec!["media.workers".into()],
                    });
                }
            }
        }
    });
    Fake {
        state: AdminState {
            requests: tx,
            events,
            token: token.map(str::to_string),
            recordings_dir,
        },
        seen,
    }
}

/// `r1`, `c1@host` and `G-1` name the call; `dup` is ambiguous.
fn find(log: &Mutex<Seen>, sel: &CallSelector) -> Result<(), AdminError> {
    log.lock().unwrap().selectors.push(sel.clone());
    let ids = [
        (IdKind::RecordingId, "r1"),
        (IdKind::CallId, "c1@host"),
        (IdKind::CiscoGuid, "G-1"),
    ];
    if sel.id == "dup" {
        return Err(AdminError::Ambiguous(
            "dup matches 2 calls; name its kind with by=".into(),
        ));
    }
    if ids
        .iter()
        .any(|(k, id)| *id == sel.id && !matches!(sel.by, Some(b) if b != *k))
    {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!("no call {}", sel.id)))
    }
}

/// Writes a minimal, valid meta.json under `root/rel/id/`.
pub(crate) fn write_meta(root: &std::path::Path, rel: &str, id: &str, started: &str) {
    let dir = root.join(rel).join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let meta = mediafork_dataplane::recording::meta::CallMeta {
        schema_version: 1,
        recording_id: id.into(),
        source: "cucm".into(),
        started_at: started.into(),
        complete: true,
        call: mediafork_dataplane::recording::meta::CallIds {
            x_refci: Some("17".into()),
            ..Default::default()
        },
        tracks: vec![mediafork_dataplane::recording::meta::TrackMeta {
            index: 0,
            file: "track-0.wav".into(),
            codec: "PCMA".into(),
            duration_seconds: 61.5,
            ..Default::default()
        }],
        ..Default::default()
    };
    std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
}
