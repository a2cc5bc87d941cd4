use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures_util::StreamExt;
use tower::ServiceExt;

use super::*;
use crate::admin::api::{CallSummary, DrainStatus, RecordingSummary, ReloadResult, Stats, Status};
use crate::admin::test_loop::{self, write_meta};

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, json)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, serde_json::Value) {
    send(app, Method::GET, uri, None, "").await
}

async fn post(app: &Router, uri: &str, body: &str) -> (StatusCode, serde_json::Value) {
    send(app, Method::POST, uri, None, body).await
}

fn app(dir: &std::path::Path) -> (Router, test_loop::Fake) {
    let fake = test_loop::start(None, dir.to_path_buf());
    (router(fake.state.clone()), fake)
}

#[tokio::test]
async fn token_is_enforced_on_every_route() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = test_loop::start(Some("s3cret"), tmp.path().to_path_buf());
    let app = router(fake.state.clone());
    for uri in ["/v1/health", "/v1/status", "/v1/events", "/v1/nope"] {
        let (status, body) = send(&app, Method::GET, uri, None, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(body["error"], "unauthorized");
        let (status, _) = send(&app, Method::GET, uri, Some("wrong"), "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let (status, body) = send(&app, Method::GET, "/v1/status", Some("s3cret"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], "9.9.9-test");
    let (status, _) = send(&app, Method::POST, "/v1/drain", Some("s3cret"), "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn reads_answer_from_the_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, _fake) = app(tmp.path());
    assert_eq!(
        get(&app, "/v1/health").await,
        (StatusCode::OK, serde_json::json!({"ok": true}))
    );

    let (s, body) = get(&app, "/v1/status").await;
    assert_eq!(s, StatusCode::OK);
    let status: Status = serde_json::from_value(body).unwrap();
    assert_eq!(status.workers[0].core, Some(2));

    let (s, body) = get(&app, "/v1/calls").await;
    assert_eq!(s, StatusCode::OK);
    let calls: Vec<CallSummary> = serde_json::from_value(body).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].recording_id, "r1");

    let (s, body) = get(&app, "/v1/stats").await;
    assert_eq!(s, StatusCode::OK);
    let stats: Stats = serde_json::from_value(body).unwrap();
    assert_eq!(stats.workers[0].drops["unknown_port"], 7);
}

#[tokio::test]
async fn show_call_passes_the_selector_and_maps_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, fake) = app(tmp.path());
    let (s, body) = get(&app, "/v1/calls/c1%40host?by=call_id").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["recording_id"], "r1");
    assert_eq!(body["track_list"][0]["file"], "track-0.wav");
    assert_eq!(
        fake.seen.lock().unwrap().selectors.last().unwrap(),
        &CallSelector {
            id: "c1@host".into(),
            by: Some(IdKind::CallId)
        }
    );

    let (s, body) = get(&app, "/v1/calls/c1%40host?by=cisco_guid").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        serde_json::json!({"error": "not_found", "message": "no call c1@host"})
    );

    let (s, body) = get(&app, "/v1/calls/dup").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(body["error"], "ambiguous");

    let (s, body) = get(&app, "/v1/calls/r1?by=guid").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("x_refci"),
        "{body}"
    );
}

#[tokio::test]
async fn controls_take_optional_bodies_and_report_conflicts() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, fake) = app(tmp.path());
    let (s, body) = post(
        &app,
        "/v1/calls/r1/pause",
        r#"{"by":"finesse","reason":"pci"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "paused");
    assert_eq!(body["intervals"][0]["by"], "finesse");

    let (s, body) = post(&app, "/v1/calls/r1/pause", "").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(body["error"], "conflict");

    let (s, body) = post(&app, "/v1/calls/G-1/resume?by=cisco_guid", "").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "recording");
    {
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen.controls.len(), 2);
        assert_eq!(
            seen.controls[1],
            (ControlAction::Resume, ControlRequest::default())
        );
    }

    let (s, body) = post(&app, "/v1/calls/r1/stop", "{\"by\": 5}").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body"),
        "{body}"
    );

    let (s, body) = post(&app, "/v1/calls/r1/explode", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body["message"].as_str().unwrap().contains("explode"));

    let (s, _) = post(&app, "/v1/calls/nope/start", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tags_set_and_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, _fake) = app(tmp.path());
    let (s, body) = post(&app, "/v1/calls/r1/tags", r#"{"tags":{"a":"1","b":"2"}}"#).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["tags"], serde_json::json!({"a": "1", "b": "2"}));
    let (_, body) = post(&app, "/v1/calls/r1/tags", r#"{"tags":{"a":""},"by":"crm"}"#).await;
    assert_eq!(body["tags"], serde_json::json!({"b": "2"}));
    for bad in [
        "",
        "{}",
        r#"{"tags":{}}"#,
        r#"{"tags":{" ":"x"}}"#,
        "not json",
    ] {
        let (s, body) = post(&app, "/v1/calls/r1/tags", bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "bad_request");
    }
}

#[tokio::test]
async fn drain_undrain_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, fake) = app(tmp.path());
    let (s, body) = post(&app, "/v1/drain", "").await;
    assert_eq!(s, StatusCode::OK);
    let d: DrainStatus = serde_json::from_value(body).unwrap();
    assert!(d.draining);
    assert_eq!(get(&app, "/v1/status").await.1["draining"], true);
    let (_, body) = post(&app, "/v1/undrain", "").await;
    assert_eq!(body["draining"], false);
    assert_eq!(fake.seen.lock().unwrap().drained, Some(false));
    let (s, body) = post(&app, "/v1/reload", "").await;
    assert_eq!(s, StatusCode::OK);
    let r: ReloadResult = serde_json::from_value(body).unwrap();
    assert!(r.applied);
    assert_eq!(r.needs_restart, ["media.workers"]);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, _fake) = app(tmp.path());
    let (s, body) = get(&app, "/status").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (s, body) = post(&app, "/v1/status", "").await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"], "method_not_allowed");
}

#[tokio::test]
async fn a_gone_loop_is_503() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let state = AdminState {
        requests: tx,
        events: broadcast::channel(1).0,
        token: None,
        recordings_dir: tmp.path().to_path_buf(),
    };
    let app = router(state.clone());
    let (s, body) = get(&app, "/v1/status").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "unavailable");
    // Health needs no loop.
    assert_eq!(get(&app, "/v1/health").await.0, StatusCode::OK);

    // A loop that takes the request but drops the answer channel.
    let (tx, mut rx) = mpsc::channel::<AdminRequest>(1);
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            drop(req)
        }
    });
    let app = router(AdminState {
        requests: tx,
        ..state
    });
    let (s, _) = post(&app, "/v1/drain", "").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn recordings_are_listed_and_shown_from_disk() {
    let tmp = tempfile::tempdir().unwrap();
    write_meta(tmp.path(), "2024/05/01", "old", "2024-05-01T08:00:00Z");
    write_meta(tmp.path(), "2024/05/03", "new", "2024-05-03T08:00:00Z");
    let (app, _fake) = app(tmp.path());

    let (s, body) = get(&app, "/v1/recordings").await;
    assert_eq!(s, StatusCode::OK);
    let list: Vec<RecordingSummary> = serde_json::from_value(body).unwrap();
    assert_eq!(
        list.iter()
            .map(|r| r.recording_id.as_str())
            .collect::<Vec<_>>(),
        ["new", "old"]
    );
    assert_eq!(list[0].duration_seconds, 61.5);
    assert_eq!(list[0].x_refci.as_deref(), Some("17"));

    let (_, body) = get(&app, "/v1/recordings?since=2024-05-02T00:00:00Z&limit=10").await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["recording_id"], "new");
    // An unencoded offset arrives with a space for its `+`.
    let (s, body) = get(&app, "/v1/recordings?until=2024-05-02T00:00:00+00:00").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body[0]["recording_id"], "old");
    let (_, body) = get(&app, "/v1/recordings?limit=1").await;
    assert_eq!(body.as_array().unwrap().len(), 1);

    for bad in ["since=yesterday", "limit=0", "limit=many"] {
        let (s, body) = get(&app, &format!("/v1/recordings?{bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        let name = bad.split('=').next().unwrap();
        assert!(
            body["message"].as_str().unwrap().starts_with(name),
            "{body}"
        );
    }

    let (s, body) = get(&app, "/v1/recordings/old").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["recording_id"], "old");
    assert_eq!(body["tracks"][0]["codec"], "PCMA");
    let (s, body) = get(&app, "/v1/recordings/missing").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (s, _) = get(&app, "/v1/recordings/..").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn next_line(
    body: &mut (impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin),
) -> serde_json::Value {
    let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("an event line in time")
        .expect("stream open")
        .unwrap();
    let text = std::str::from_utf8(&chunk).unwrap();
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "{text:?}"
    );
    serde_json::from_str(text).unwrap()
}

fn event(seq: u64, kind: &str) -> CallEvent {
    CallEvent {
        seq,
        at: "2024-05-01T08:00:00Z".into(),
        event: kind.into(),
        recording_id: Some("r1".into()),
        ..CallEvent::default()
    }
}

#[tokio::test]
async fn events_stream_ndjson_and_report_lag() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, fake) = app(tmp.path());
    let resp = app
        .clone()
        .oneshot(Request::get("/v1/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], NDJSON);
    let mut body = resp.into_body().into_data_stream();

    fake.state.events.send(event(1, "call_started")).unwrap();
    let line = next_line(&mut body).await;
    assert_eq!(
        (line["seq"].as_u64(), line["event"].as_str()),
        (Some(1), Some("call_started"))
    );

    // The fake's channel holds 4: 6 unread events lose the first 2.
    for seq in 2..8 {
        fake.state.events.send(event(seq, "paused")).unwrap();
    }
    let line = next_line(&mut body).await;
    assert_eq!(line["event"], "lagged");
    assert_eq!(line["missed"], 2);
    assert_eq!(line["seq"], 0);
    for seq in 4..8 {
        assert_eq!(next_line(&mut body).await["seq"], seq);
    }
}

#[tokio::test]
async fn shutdown_ends_event_streams() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().unwrap();
    let fake = test_loop::start(None, tmp.path().to_path_buf());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_with_shutdown(listener, fake.state.clone(), async {
        let _ = stopped.await;
    }));
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /v1/events HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    stop.send(()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "serve did not end: {done:?}"
    );
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the stream was not closed");
}

#[test]
fn openapi_document_covers_routes_and_fields() {
    let doc = include_str!("../../../../docs/admin-api.yaml");
    for route in [
        "/v1/health:",
        "/v1/status:",
        "/v1/calls:",
        "/v1/calls/{id}:",
        "/v1/calls/{id}/{action}:",
        "/v1/calls/{id}/tags:",
        "/v1/stats:",
        "/v1/drain:",
        "/v1/undrain:",
        "/v1/reload:",
        "/v1/recordings:",
        "/v1/recordings/{recording_id}:",
        "/v1/events:",
    ] {
        assert!(
            doc.contains(&format!("\n  {route}\n")),
            "{route} is not in docs/admin-api.yaml"
        );
    }
    // Every field the server sends is described under its schema's name.
    let schemas: Vec<(&str, serde_json::Value)> = vec![
        ("Status", serde_json::to_value(Status::default()).unwrap()),
        (
            "PortsStatus",
            serde_json::to_value(crate::admin::api::PortsStatus::default()).unwrap(),
        ),
        (
            "StorageStatus",
            serde_json::to_value(crate::admin::api::StorageStatus::default()).unwrap(),
        ),
        (
            "CallCounters",
            serde_json::to_value(crate::admin::api::CallCounters::default()).unwrap(),
        ),
        (
            "CallSummary",
            serde_json::to_value(CallSummary::default()).unwrap(),
        ),
        (
            "TrackInfo",
            serde_json::to_value(crate::admin::api::TrackInfo::default()).unwrap(),
        ),
        (
            "ControlInterval",
            serde_json::to_value(crate::admin::api::ControlInterval::default()).unwrap(),
        ),
        ("Stats", serde_json::to_value(Stats::default()).unwrap()),
        (
            "WorkerStatsView",
            serde_json::to_value(crate::admin::api::WorkerStatsView::default()).unwrap(),
        ),
        (
            "WriterStatsView",
            serde_json::to_value(crate::admin::api::WriterStatsView::default()).unwrap(),
        ),
        (
            "NicStats",
            serde_json::to_value(crate::admin::api::NicStats::default()).unwrap(),
        ),
        (
            "NicQueueStats",
            serde_json::to_value(crate::admin::api::NicQueueStats::default()).unwrap(),
        ),
        (
            "DrainStatus",
            serde_json::to_value(DrainStatus::default()).unwrap(),
        ),
        (
            "ReloadResult",
            serde_json::to_value(ReloadResult::default()).unwrap(),
        ),
        (
            "CallEvent",
            serde_json::to_value(CallEvent::default()).unwrap(),
        ),
        (
            "RecordingSummary",
            serde_json::to_value(RecordingSummary::default()).unwrap(),
        ),
        (
            "ControlRequest",
            serde_json::json!({"by": "", "reason": ""}),
        ),
        (
            "TagRequest",
            serde_json::to_value(TagRequest::default()).unwrap(),
        ),
    ];
    for (name, value) in schemas {
        let start = doc
            .find(&format!("\n    {name}:\n"))
            .unwrap_or_else(|| panic!("schema {name} is not in docs/admin-api.yaml"));
        let body = &doc[start + name.len() + 7..];
        // The schema ends where the next one starts, at the same indentation.
        let next = body
            .match_indices("\n    ")
            .find(|(i, _)| body[i + 5..].starts_with(|c: char| c.is_ascii_alphabetic()))
            .map_or(body.len(), |(i, _)| i);
        let schema = &body[..next];
        for key in value.as_object().unwrap().keys() {
            assert!(
                schema.contains(&format!(" {key}:")),
                "{name}.{key} is not described in docs/admin-api.yaml"
            );
        }
    }
}
