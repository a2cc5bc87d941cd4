//! The recordings volume: free-space watch and retention.
//!
//! - [`StorageMonitor`] turns readings of the volume into the states `ok`,
//!   `warning` and `critical`, with hysteresis. At `critical` the server
//!   refuses new calls (503) and answers OPTIONS with 503 so SBCs fail over
//!   to another recorder; calls in progress go on recording.
//! - [`sweep`] deletes closed recordings older than the retention period.
//!
//! Both are plain functions over data and the file system, tested without
//! a runtime; [`watch`] and [`retention_task`] are the thin async loops the
//! server spawns around them. Neither knows about metrics or the SIP side:
//! they publish through a `watch` channel and callbacks.

mod config;
mod monitor;
mod retention;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::time::MissedTickBehavior;

pub use config::{
    parse_byte_size, ByteSize, Percent, RetentionConfig, StorageConfig, MAX_CHECK_INTERVAL,
    MAX_SWEEP_INTERVAL, MIN_CHECK_INTERVAL, MIN_SWEEP_INTERVAL,
};
pub use monitor::{
    disk_usage, DiskUsage, StorageMonitor, StorageState, Transition, BYTES_MARGIN_DIVISOR,
    PERCENT_MARGIN,
};
pub use retention::{sweep, SweepReport};

/// What [`watch`] publishes after every check.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StorageStatusSnapshot {
    pub state: StorageState,
    /// The last good reading; `None` until the first one.
    pub usage: Option<DiskUsage>,
    /// Why the last check failed, if it did; the state is then the one
    /// from the last good reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StorageStatusSnapshot {
    /// Whether new calls may be accepted.
    pub fn accepts_calls(&self) -> bool {
        self.state.accepts_calls()
    }
}

/// Measures the volume holding `dir` every `cfg.check_interval`, publishes
/// a [`StorageStatusSnapshot`] on `tx` after each check, logs each change
/// of state and passes it to `on_transition` (events, metrics).
///
/// The first check is made at once; a caller that must not accept a call
/// before it can await `rx.changed()` once. Never returns: abort the task
/// to stop it.
pub async fn watch<F>(
    dir: PathBuf,
    cfg: StorageConfig,
    tx: tokio::sync::watch::Sender<StorageStatusSnapshot>,
    mut on_transition: F,
) where
    F: FnMut(&Transition) + Send + 'static,
{
    let mut monitor = StorageMonitor::new(&cfg);
    let mut tick = tokio::time::interval(cfg.check_interval.max(MIN_CHECK_INTERVAL));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        tick.tick().await;
        // statvfs blocks for as long as a hung NFS server does; awaiting it
        // here keeps at most one such thread stuck.
        let probe = dir.clone();
        let reading = tokio::task::spawn_blocking(move || monitor::disk_usage(&probe))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match reading {
            Ok(usage) => {
                if last_error.take().is_some() {
                    tracing::info!(dir = %dir.display(), "recordings volume readable again");
                }
                if let Some(t) = monitor.observe(Instant::now(), usage) {
                    log_transition(&dir, &t);
                    on_transition(&t);
                }
            }
            Err(e) => {
                // Once per distinct error: a lasting failure would
                // otherwise log every few seconds.
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(
                        dir = %dir.display(),
                        state = monitor.state().name(),
                        "cannot measure free space on the recordings volume, keeping the last state: {e}"
                    );
                }
                last_error = Some(e);
            }
        }
        tx.send_replace(StorageStatusSnapshot {
            state: monitor.state(),
            usage: monitor.usage(),
            error: last_error.clone(),
        });
    }
}

fn log_transition(dir: &std::path::Path, t: &Transition) {
    let free_percent = (t.usage.free_percent() * 100.0).round() / 100.0;
    let (dir, free_bytes, total_bytes) = (
        dir.display().to_string(),
        t.usage.free_bytes,
        t.usage.total_bytes,
    );
    let (from, to) = (t.from.name(), t.to.name());
    match (t.from, t.to) {
        (_, StorageState::Critical) => tracing::error!(
            %dir, free_bytes, total_bytes, free_percent, from, to,
            "recordings volume critically full: refusing new calls (calls in progress keep recording)"
        ),
        (StorageState::Critical, _) => tracing::warn!(
            %dir, free_bytes, total_bytes, free_percent, from, to,
            "recordings volume no longer critical: accepting new calls again"
        ),
        (_, StorageState::Warning) => tracing::warn!(
            %dir, free_bytes, total_bytes, free_percent, from, to,
            "recordings volume filling up"
        ),
        _ => tracing::info!(
            %dir, free_bytes, total_bytes, free_percent, from, to,
            "recordings volume has enough free space again"
        ),
    }
}

/// Sweeps `root` every `cfg.sweep_interval` (the first time at once) on a
/// blocking thread, logs each deletion and a summary, and hands each
/// [`SweepReport`] to `on_sweep` (metrics). Returns at once when retention
/// is off; otherwise never returns: abort the task to stop it.
///
/// Spawn it after crash recovery has run, so recordings left open by a
/// crash are closed (and thus eligible) rather than counted as open.
pub async fn retention_task<F>(root: PathBuf, cfg: RetentionConfig, on_sweep: F)
where
    F: Fn(&SweepReport) + Send + 'static,
{
    let Some(max_age) = cfg.max_age() else {
        tracing::debug!("retention off: recordings are kept forever");
        return;
    };
    tracing::info!(
        root = %root.display(),
        max_age_days = cfg.max_age_days,
        "retention on: deleting recordings that ended more than max_age_days ago"
    );
    let mut tick = tokio::time::interval(cfg.sweep_interval.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let dir = root.clone();
        let started = Instant::now();
        let report = match tokio::task::spawn_blocking(move || {
            sweep(&dir, max_age, SystemTime::now())
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(root = %root.display(), "retention sweep failed: {e}");
                continue;
            }
        };
        log_sweep(&root, &report, started.elapsed());
        on_sweep(&report);
    }
}

fn log_sweep(root: &std::path::Path, r: &SweepReport, took: Duration) {
    for dir in &r.deleted {
        tracing::info!(recording = %dir.display(), "retention: deleted recording");
    }
    for e in &r.errors {
        tracing::warn!("retention: {e}");
    }
    let (root, deleted, freed_bytes, kept_open, errors, took_ms) = (
        root.display().to_string(),
        r.deleted.len(),
        r.freed_bytes,
        r.kept_open,
        r.errors.len(),
        took.as_millis() as u64,
    );
    if deleted > 0 || errors > 0 {
        tracing::info!(
            %root, deleted, freed_bytes, kept_open, errors, took_ms,
            "retention sweep done"
        );
    } else {
        tracing::debug!(%root, kept_open, took_ms, "retention sweep done: nothing to delete");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn storage_watch_publishes_a_first_reading_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::watch::channel(StorageStatusSnapshot::default());
        // Thresholds no real disk meets: 99.9 % free needed to be ok.
        let cfg = StorageConfig {
            warn_free_percent: Percent::new(99.95).unwrap(),
            critical_free_percent: Percent::new(99.9).unwrap(),
            ..StorageConfig::default()
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let task = tokio::spawn(watch(dir.path().to_path_buf(), cfg, tx, move |t| {
            seen2.lock().unwrap().push(*t);
        }));
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .unwrap()
            .unwrap();
        let snap = rx.borrow().clone();
        task.abort();
        assert_eq!(snap.error, None);
        assert!(snap.usage.is_some());
        assert_eq!(snap.state, StorageState::Critical);
        assert!(!snap.accepts_calls());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            (seen[0].from, seen[0].to),
            (StorageState::Ok, StorageState::Critical)
        );
    }

    #[tokio::test]
    async fn storage_watch_reports_errors_and_keeps_state() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::watch::channel(StorageStatusSnapshot::default());
        let task = tokio::spawn(watch(
            dir.path().join("missing"),
            StorageConfig::default(),
            tx,
            |_| {},
        ));
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .unwrap()
            .unwrap();
        let snap = rx.borrow().clone();
        task.abort();
        assert_eq!(snap.state, StorageState::Ok);
        assert!(snap.error.is_some_and(|e| e.contains("No such file")));
    }

    #[tokio::test]
    async fn storage_retention_task_off_returns_at_once() {
        let called = Arc::new(Mutex::new(0));
        let c = Arc::clone(&called);
        tokio::time::timeout(
            Duration::from_secs(5),
            retention_task(
                PathBuf::from("/nonexistent"),
                RetentionConfig::default(),
                move |_| {
                    *c.lock().unwrap() += 1;
                },
            ),
        )
        .await
        .unwrap();
        assert_eq!(*called.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn storage_retention_task_sweeps_at_once() {
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join("2000/01/01/rec");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(
            old.join("meta.json"),
            r#"{"schema_version":1,"recording_id":"rec","source":"sip","call":{},
                "started_at":"2000-01-01T00:00:00Z","ended_at":"2000-01-01T00:05:00Z",
                "complete":true}"#,
        )
        .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cfg = RetentionConfig {
            max_age_days: Some(30),
            ..RetentionConfig::default()
        };
        let task = tokio::spawn(retention_task(root.path().to_path_buf(), cfg, move |r| {
            let _ = tx.send(r.clone());
        }));
        let report = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        task.abort();
        assert_eq!(report.deleted, vec![old.clone()]);
        assert!(!old.exists());
        assert!(!root.path().join("2000").exists());
        assert!(root.path().is_dir());
    }
}
