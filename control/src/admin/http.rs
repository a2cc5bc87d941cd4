//! The admin API's HTTP server (axum). Every route under [`API_PREFIX`]
//! either reads the recordings directory ([`catalog`]), follows the event
//! broadcast, or sends one [`AdminRequest`] to the server loop and waits for
//! its answer. The loop owns all call state; this layer only translates.
//!
//! Routes and JSON shapes: `docs/admin-api.yaml`.

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::api::{
    AdminError, AdminRequest, CallDetail, CallEvent, CallSelector, ControlAction, ControlRequest,
    ErrorBody, IdKind, Reply, TagRequest, API_PREFIX,
};
use super::{auth, catalog};

/// How long a request waits for the server loop. The loop answers from
/// memory in microseconds; a loop that takes this long is wedged, and an
/// HTTP client is better told so than left hanging.
const LOOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Content type of `GET /v1/events`.
pub const NDJSON: &str = "application/x-ndjson";

/// What the admin server needs from the rest of the process.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// To the server loop, which answers each request on its oneshot.
    pub requests: mpsc::Sender<AdminRequest>,
    /// Call events; each `GET /v1/events` subscribes.
    pub events: broadcast::Sender<CallEvent>,
    /// `admin.token`: when set, every request must carry it.
    pub token: Option<String>,
    /// `recordings.dir`, read by `GET /v1/recordings`.
    pub recordings_dir: PathBuf,
}

/// Router state: the caller's state plus the shutdown signal that ends
/// event streams (they would otherwise hold a graceful shutdown forever).
#[derive(Clone)]
struct Shared {
    state: AdminState,
    shutdown: watch::Receiver<bool>,
}

type Ctx = State<Arc<Shared>>;

/// Serves the admin API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: AdminState) -> std::io::Result<()> {
    serve_with_shutdown(listener, state, std::future::pending()).await
}

/// Serves the admin API until `shutdown` completes, then stops accepting,
/// ends open event streams and waits for requests in flight.
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, auth = state.token.is_some(), "admin API listening");
    }
    let app = build_router(state, stop_rx);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await
}

/// The admin API as a router (for tests and for embedding in another
/// server); event streams end only when the client goes away.
pub fn router(state: AdminState) -> Router {
    // Dropping the sender tells the streams that no shutdown signal exists.
    let (_, never) = watch::channel(false);
    build_router(state, never)
}

fn build_router(state: AdminState, shutdown: watch::Receiver<bool>) -> Router {
    let shared = Arc::new(Shared { state, shutdown });
    let v1 = Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/calls", get(list_calls))
        .route("/calls/{id}", get(show_call))
        .route("/calls/{id}/tags", post(tag_call))
        .route("/calls/{id}/{action}", post(control_call))
        .route("/stats", get(stats))
        .route("/drain", post(drain))
        .route("/undrain", post(undrain))
        .route("/reload", post(reload))
        .route("/recordings", get(list_recordings))
        .route("/recordings/{id}", get(show_recording))
        .route("/events", get(events))
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest(API_PREFIX, v1)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ))
        .with_state(shared)
}

/// A failed request: status plus the JSON body every error has.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.to_string(),
                message: message.into(),
            },
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError {
            status,
            body: ErrorBody::from(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.body.error, "admin API: {}", self.body.message);
        }
        (self.status, Json(self.body)).into_response()
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn require_token(State(shared): Ctx, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match auth::check(shared.state.token.as_deref(), header) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
                .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mediafork\""),
            );
            resp
        }
    }
}

async fn not_found(req: Request) -> ApiError {
    AdminError::NotFound(format!(
        "no such route: {} {} (routes are under {API_PREFIX}/, see docs/admin-api.yaml)",
        req.method(),
        req.uri().path()
    ))
    .into()
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// Sends one request to the server loop and waits for the answer.
async fn ask<T>(
    shared: &Shared,
    make: impl FnOnce(Reply<T>) -> AdminRequest,
) -> Result<T, AdminError> {
    let gone = || AdminError::Unavailable("the server is shutting down".to_string());
    let (tx, rx) = oneshot::channel();
    shared
        .state
        .requests
        .send(make(tx))
        .await
        .map_err(|_| gone())?;
    match tokio::time::timeout(LOOP_TIMEOUT, rx).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(gone()),
        Err(_) => Err(AdminError::Unavailable(format!(
            "the server loop did not answer within {} s",
            LOOP_TIMEOUT.as_secs()
        ))),
    }
}

#[derive(Serialize)]
struct Health {
    ok: bool,
}

/// Answers without the loop: it says the process and its admin listener
/// are up, even while the loop is busy or draining.
async fn health() -> Json<Health> {
    Json(Health { ok: true })
}

async fn status(State(s): Ctx) -> ApiResult<super::api::Status> {
    Ok(Json(ask(&s, AdminRequest::Status).await?))
}

async fn list_calls(State(s): Ctx) -> ApiResult<Vec<super::api::CallSummary>> {
    Ok(Json(ask(&s, AdminRequest::ListCalls).await?))
}

#[derive(Deserialize)]
struct ByQuery {
    by: Option<String>,
}

fn selector(
    id: Result<Path<String>, PathRejection>,
    by: Result<Query<ByQuery>, QueryRejection>,
) -> Result<CallSelector, AdminError> {
    let Path(id) = id.map_err(|e| AdminError::BadRequest(e.body_text()))?;
    let Query(q) = by.map_err(|e| AdminError::BadRequest(e.body_text()))?;
    let by = match q.by.as_deref() {
        None | Some("") => None,
        Some(k) => Some(IdKind::parse(k).ok_or_else(|| {
            AdminError::BadRequest(format!(
                "by={k}: expected one of {}",
                IdKind::ALL.map(IdKind::name).join(", ")
            ))
        })?),
    };
    Ok(CallSelector { id, by })
}

async fn show_call(
    State(s): Ctx,
    id: Result<Path<String>, PathRejection>,
    by: Result<Query<ByQuery>, QueryRejection>,
) -> ApiResult<CallDetail> {
    let sel = selector(id, by)?;
    Ok(Json(ask(&s, |r| AdminRequest::ShowCall(sel, r)).await??))
}

/// Parses a JSON body; an empty body is `T::default()` when `optional`.
/// Content-Type is not checked: `curl -d` sends a form type, and the body
/// can only be JSON anyway.
fn json_body<T: DeserializeOwned + Default>(body: &Bytes, optional: bool) -> Result<T, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if optional {
            Ok(T::default())
        } else {
            Err(AdminError::BadRequest(
                "this request needs a JSON body".to_string(),
            ))
        };
    }
    serde_json::from_slice(body)
        .map_err(|e| AdminError::BadRequest(format!("invalid JSON body: {e}")))
}

async fn control_call(
    State(s): Ctx,
    Path((id, action)): Path<(String, String)>,
    by: Result<Query<ByQuery>, QueryRejection>,
    body: Bytes,
) -> ApiResult<CallDetail> {
    let action = ControlAction::parse(&action).ok_or_else(|| {
        AdminError::NotFound(format!(
            "no such call action: {action} (start, stop, pause, resume, tags)"
        ))
    })?;
    let sel = selector(Ok(Path(id)), by)?;
    let req: ControlRequest = json_body(&body, true)?;
    Ok(Json(
        ask(&s, |r| AdminRequest::Control(sel, action, req, r)).await??,
    ))
}

async fn tag_call(
    State(s): Ctx,
    id: Result<Path<String>, PathRejection>,
    by: Result<Query<ByQuery>, QueryRejection>,
    body: Bytes,
) -> ApiResult<CallDetail> {
    let sel = selector(id, by)?;
    let req: TagRequest = json_body(&body, false)?;
    if req.tags.is_empty() {
        return Err(AdminError::BadRequest("tags: give at least one key".to_string()).into());
    }
    if let Some(k) = req.tags.keys().find(|k| k.trim().is_empty()) {
        return Err(AdminError::BadRequest(format!("tags: empty key {k:?}")).into());
    }
    Ok(Json(ask(&s, |r| AdminRequest::Tag(sel, req, r)).await??))
}

async fn stats(State(s): Ctx) -> ApiResult<super::api::Stats> {
    Ok(Json(ask(&s, AdminRequest::Stats).await?))
}

async fn drain(State(s): Ctx) -> ApiResult<super::api::DrainStatus> {
    Ok(Json(ask(&s, |r| AdminRequest::Drain(true, r)).await?))
}

async fn undrain(State(s): Ctx) -> ApiResult<super::api::DrainStatus> {
    Ok(Json(ask(&s, |r| AdminRequest::Drain(false, r)).await?))
}

async fn reload(State(s): Ctx) -> ApiResult<super::api::ReloadResult> {
    Ok(Json(ask(&s, AdminRequest::Reload).await?))
}

#[derive(Deserialize)]
struct RecordingsQuery {
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
}

fn parse_window(q: RecordingsQuery) -> Result<catalog::Query, AdminError> {
    let time = |name: &str, v: Option<String>| -> Result<_, AdminError> {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        // An unencoded `+01:00` in a query string arrives as ` 01:00`.
        let fixed = v.replace(' ', "+");
        catalog::parse_time(&fixed).map(Some).ok_or_else(|| {
            AdminError::BadRequest(format!(
                "{name}={v}: expected an RFC 3339 time such as 2024-05-01T00:00:00Z"
            ))
        })
    };
    let limit = match q.limit.filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            AdminError::BadRequest(format!("limit={v}: expected a positive whole number"))
        })?),
    };
    Ok(catalog::Query {
        since: time("since", q.since)?,
        until: time("until", q.until)?,
        limit,
    })
}

async fn list_recordings(
    State(s): Ctx,
    q: Result<Query<RecordingsQuery>, QueryRejection>,
) -> ApiResult<Vec<super::api::RecordingSummary>> {
    let Query(q) = q.map_err(|e| AdminError::BadRequest(e.body_text()))?;
    let query = parse_window(q)?;
    let root = s.state.recordings_dir.clone();
    let list = tokio::task::spawn_blocking(move || catalog::list(&root, &query))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("listing recordings failed: {e}"),
            )
        })?;
    Ok(Json(list))
}

async fn show_recording(
    State(s): Ctx,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<serde_json::Value> {
    let Path(id) = id.map_err(|e| AdminError::BadRequest(e.body_text()))?;
    let root = s.state.recordings_dir.clone();
    let wanted = id.clone();
    let found = tokio::task::spawn_blocking(move || catalog::find(&root, &wanted))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("reading the recording failed: {e}"),
            )
        })?;
    match found {
        Some((_, meta)) => Ok(Json(meta)),
        None => Err(AdminError::NotFound(format!(
            "no recording {id} under {}",
            s.state.recordings_dir.display()
        ))
        .into()),
    }
}

/// One NDJSON line, newline included.
fn ndjson_line(event: &CallEvent) -> String {
    let mut line = serde_json::to_string(event).unwrap_or_else(|e| {
        format!("{{\"event\":\"error\",\"message\":\"cannot encode event: {e}\"}}")
    });
    line.push('\n');
    line
}

/// The line sent in place of events a slow reader missed: `seq` 0 marks
/// it as not from the server loop, `missed` says how many were dropped.
pub fn lagged_event(missed: u64) -> CallEvent {
    let mut data = serde_json::Map::new();
    data.insert("missed".to_string(), missed.into());
    CallEvent {
        seq: 0,
        at: mediafork_dataplane::recording::meta::rfc3339(
            mediafork_dataplane::recording::meta::now_ns(),
        ),
        event: "lagged".to_string(),
        recording_id: None,
        call_id: None,
        data,
    }
}

/// Resolves once the server is shutting down; never, when no shutdown
/// signal can come any more (the sender is gone without sending one).
async fn stopping(w: &mut watch::Receiver<bool>) {
    loop {
        if *w.borrow_and_update() {
            return;
        }
        if w.changed().await.is_err() {
            if *w.borrow() {
                return;
            }
            std::future::pending::<()>().await;
        }
    }
}

async fn events(State(s): Ctx) -> Response {
    let rx = s.state.events.subscribe();
    let shutdown = s.shutdown.clone();
    let stream =
        futures_util::stream::unfold((rx, shutdown), |(mut rx, mut shutdown)| async move {
            let line = tokio::select! {
                got = rx.recv() => match got {
                    Ok(event) => ndjson_line(&event),
                    Err(broadcast::error::RecvError::Lagged(n)) => ndjson_line(&lagged_event(n)),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                () = stopping(&mut shutdown) => return None,
            };
            Some((Ok::<_, Infallible>(line), (rx, shutdown)))
        });
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(NDJSON)),
            // Proxies must pass each line on as it comes.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
