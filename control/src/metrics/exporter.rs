//! Installing the Prometheus exporter: the global `metrics` recorder plus
//! an HTTP listener that serves the exposition (on `/metrics`, and on any
//! other path; `/health` answers `OK`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use super::names;

/// Why [`install`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen address could not be bound (in use, not ours,
    /// a privileged port without the capability, ...).
    #[error("metrics: cannot listen on {addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
    /// A recorder was already installed in this process.
    #[error("metrics: a metrics recorder is already installed in this process")]
    AlreadyInstalled,
    /// Anything else the exporter reported (runtime creation, bucket
    /// configuration).
    #[error("metrics: cannot start the Prometheus exporter on {addr}: {message}")]
    Exporter { addr: SocketAddr, message: String },
}

/// The installed exporter.
#[derive(Clone, Debug)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
    listen: SocketAddr,
}

impl MetricsHandle {
    /// The exposition as a scrape would return it now.
    pub fn render(&self) -> String {
        self.prometheus.render()
    }

    /// The address the exporter listens on (as requested).
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The underlying exporter handle.
    pub fn prometheus(&self) -> &PrometheusHandle {
        &self.prometheus
    }
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The builder with mediafork's histogram buckets. Without buckets the
/// exporter renders histograms as summaries, which neither
/// `histogram_quantile` nor Grafana's heatmaps can aggregate.
pub fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::RTP_JITTER_SECONDS.to_string()),
            names::JITTER_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(names::WRITER_LATENCY_SECONDS.to_string()),
                names::WRITER_LATENCY_BUCKETS,
            )
        })
        .expect("bucket lists are constant and not empty")
}

/// Install the Prometheus exporter: a global `metrics` recorder, and an
/// HTTP listener on `listen` serving `/metrics`. Describes every metric
/// (help text and unit) and sets `mediafork_start_time_seconds`.
///
/// Called from inside a tokio runtime, the listener (and the exporter's
/// upkeep task) run on that runtime; called outside one, on a
/// single-threaded runtime of their own, on a thread named
/// `metrics-exporter-prometheus-http`.
///
/// A second call in the same process fails with
/// [`MetricsError::AlreadyInstalled`] and binds nothing.
pub fn install(listen: SocketAddr) -> Result<MetricsHandle, MetricsError> {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Err(MetricsError::AlreadyInstalled);
    }
    match install_inner(listen) {
        Ok(h) => Ok(h),
        Err(e) => {
            if !matches!(e, MetricsError::AlreadyInstalled) {
                INSTALLED.store(false, Ordering::SeqCst);
            }
            Err(e)
        }
    }
}

fn install_inner(listen: SocketAddr) -> Result<MetricsHandle, MetricsError> {
    let map = |e: BuildError| match e {
        BuildError::FailedToCreateHTTPListener(message) => MetricsError::Bind {
            addr: listen,
            message,
        },
        BuildError::FailedToSetGlobalRecorder(_) => MetricsError::AlreadyInstalled,
        other => MetricsError::Exporter {
            addr: listen,
            message: other.to_string(),
        },
    };
    let builder = builder().with_http_listener(listen);

    // `PrometheusBuilder::build` spawns onto the current runtime (and
    // panics without one), so enter one first: the caller's, or our own on
    // a thread of its own, as `PrometheusBuilder::install` does (which we do
    // not use because it returns no handle).
    let recorder = match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            let (recorder, exporter) = {
                let _g = rt.enter();
                builder.build().map_err(map)?
            };
            rt.spawn(async move {
                if let Err(e) = exporter.await {
                    tracing::error!(%listen, error = ?e, "metrics exporter stopped");
                }
            });
            recorder
        }
        Err(_) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| MetricsError::Exporter {
                    addr: listen,
                    message: format!("cannot create a runtime: {e}"),
                })?;
            let (recorder, exporter) = {
                let _g = rt.enter();
                builder.build().map_err(map)?
            };
            std::thread::Builder::new()
                .name("metrics-exporter-prometheus-http".into())
                .spawn(move || {
                    if let Err(e) = rt.block_on(exporter) {
                        tracing::error!(%listen, error = ?e, "metrics exporter stopped");
                    }
                })
                .map_err(|e| MetricsError::Exporter {
                    addr: listen,
                    message: format!("cannot start the exporter thread: {e}"),
                })?;
            recorder
        }
    };
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;

    super::describe_all();
    metrics::gauge!(names::START_TIME_SECONDS).set(unix_now());
    tracing::info!(%listen, "serving Prometheus metrics on /metrics");
    Ok(MetricsHandle { prometheus, listen })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
