//! Free space on the recordings volume as three states, sans-IO: the
//! monitor is fed readings and the time, and says when the state changes.
//! [`disk_usage`] is the one system call, kept apart so every rule here is
//! tested with made-up volumes.
//!
//! Getting worse is immediate; getting better needs a margin (hysteresis),
//! so a volume hovering at a threshold does not flip the recorder between
//! accepting and refusing calls on every check. A state is left only when
//! free space is back above its threshold by:
//! - [`PERCENT_MARGIN`] percentage points, for a percent threshold;
//! - 1/[`BYTES_MARGIN_DIVISOR`] of the threshold, for a byte threshold.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::config::StorageConfig;

/// Percentage points above a percent threshold that free space must reach
/// to leave its state: at a 5 % threshold, critical ends at 6 %.
pub const PERCENT_MARGIN: f64 = 1.0;

/// A byte threshold is left at threshold + threshold / this (5 % more):
/// at a 1 GiB threshold, critical ends above about 1.05 GiB.
pub const BYTES_MARGIN_DIVISOR: u64 = 20;

/// One reading of the volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// Size of the file system.
    pub total_bytes: u64,
    /// What an unprivileged process can still write (`f_bavail`): root's
    /// reserved blocks are not counted, the recorder cannot use them.
    pub free_bytes: u64,
}

impl DiskUsage {
    /// Free space as a percentage of the volume; 100 for a file system
    /// that reports no size.
    pub fn free_percent(&self) -> f64 {
        if self.total_bytes == 0 {
            return 100.0;
        }
        (self.free_bytes as f64 / self.total_bytes as f64 * 100.0).min(100.0)
    }
}

/// How full the recordings volume is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageState {
    /// Above every threshold.
    #[default]
    Ok,
    /// Below a warning threshold: recording goes on, operators are told.
    Warning,
    /// Below a critical threshold: new calls are refused (503, and 503 to
    /// OPTIONS) so the SBC moves to another recorder; calls in progress go
    /// on recording.
    Critical,
}

impl StorageState {
    /// `ok`, `warning` or `critical`, for logs, metrics labels and the API.
    pub fn name(self) -> &'static str {
        match self {
            StorageState::Ok => "ok",
            StorageState::Warning => "warning",
            StorageState::Critical => "critical",
        }
    }

    /// Whether new calls may be accepted.
    pub fn accepts_calls(self) -> bool {
        self != StorageState::Critical
    }
}

impl std::fmt::Display for StorageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A change of state, with the reading that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub from: StorageState,
    pub to: StorageState,
    pub usage: DiskUsage,
}

/// The thresholds of one state; 0 turns one off.
#[derive(Clone, Copy, Debug)]
struct Thresholds {
    percent: f64,
    bytes: u64,
}

impl Thresholds {
    /// Whether `u` is below either threshold, raised by the hysteresis
    /// margin when `with_margin`.
    fn below(self, u: DiskUsage, with_margin: bool) -> bool {
        let pct_margin = if with_margin { PERCENT_MARGIN } else { 0.0 };
        let bytes_margin = if with_margin {
            self.bytes / BYTES_MARGIN_DIVISOR
        } else {
            0
        };
        (self.percent > 0.0 && u.free_percent() < self.percent + pct_margin)
            || (self.bytes > 0 && u.free_bytes < self.bytes.saturating_add(bytes_margin))
    }
}

/// Tracks the storage state from successive readings.
#[derive(Clone, Debug)]
pub struct StorageMonitor {
    warn: Thresholds,
    critical: Thresholds,
    state: StorageState,
    usage: Option<DiskUsage>,
    since: Option<Instant>,
}

impl StorageMonitor {
    /// A monitor in [`StorageState::Ok`] with no reading yet: the first
    /// reading may go straight to `Critical`.
    pub fn new(cfg: &StorageConfig) -> StorageMonitor {
        let mut m = StorageMonitor {
            warn: Thresholds {
                percent: 0.0,
                bytes: 0,
            },
            critical: Thresholds {
                percent: 0.0,
                bytes: 0,
            },
            state: StorageState::Ok,
            usage: None,
            since: None,
        };
        m.set_config(cfg);
        m
    }

    /// New thresholds (a reload); they apply from the next reading.
    pub fn set_config(&mut self, cfg: &StorageConfig) {
        self.warn = Thresholds {
            percent: cfg.warn_free_percent.get(),
            bytes: cfg.warn_free_bytes.bytes(),
        };
        self.critical = Thresholds {
            percent: cfg.critical_free_percent.get(),
            bytes: cfg.critical_free_bytes.bytes(),
        };
    }

    /// Takes a reading; returns the transition if the state changed.
    ///
    /// A reading with `total_bytes == 0` is ignored: some network and FUSE
    /// file systems report no sizes at all, and refusing every call because
    /// of that would be worse than not watching.
    pub fn observe(&mut self, now: Instant, usage: DiskUsage) -> Option<Transition> {
        if usage.total_bytes == 0 {
            return None;
        }
        self.usage = Some(usage);
        let held = |t: Thresholds| t.below(usage, true);
        let next = if self.critical.below(usage, false)
            || (self.state == StorageState::Critical && held(self.critical))
        {
            StorageState::Critical
        } else if self.warn.below(usage, false)
            || (self.state != StorageState::Ok && held(self.warn))
        {
            StorageState::Warning
        } else {
            StorageState::Ok
        };
        if next == self.state {
            return None;
        }
        let t = Transition {
            from: self.state,
            to: next,
            usage,
        };
        self.state = next;
        self.since = Some(now);
        Some(t)
    }

    pub fn state(&self) -> StorageState {
        self.state
    }

    /// The last reading taken into account.
    pub fn usage(&self) -> Option<DiskUsage> {
        self.usage
    }

    /// When the current state was entered; `None` while still in the
    /// initial `Ok`.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }
}

/// Reads the usage of the file system holding `path` (`statvfs(3)`).
///
/// This may block (a hung NFS mount): call it from a blocking thread.
// The conversions are no-ops on 64-bit Linux, but `c_ulong` and
// `fsblkcnt_t` are 32 bits wide on some targets.
#[allow(clippy::useless_conversion)]
pub fn disk_usage(path: &Path) -> std::io::Result<DiskUsage> {
    let s = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    // POSIX counts blocks in f_frsize units; some file systems leave it 0
    // and mean f_bsize.
    let unit = match u64::from(s.fragment_size()) {
        0 => u64::from(s.block_size()),
        n => n,
    };
    Ok(DiskUsage {
        total_bytes: u64::from(s.blocks()).saturating_mul(unit),
        free_bytes: u64::from(s.blocks_available()).saturating_mul(unit),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::config::{ByteSize, Percent};
    use super::*;

    const GIB: u64 = 1 << 30;
    const TOTAL: u64 = 1000 * GIB;

    /// Percent thresholds only, 15 % / 5 %, on a 1000 GiB volume.
    fn pct_only() -> StorageConfig {
        StorageConfig {
            warn_free_bytes: ByteSize(0),
            critical_free_bytes: ByteSize(0),
            ..StorageConfig::default()
        }
    }

    /// A reading with `pct` percent of [`TOTAL`] free.
    fn at(pct: f64) -> DiskUsage {
        DiskUsage {
            total_bytes: TOTAL,
            free_bytes: (TOTAL as f64 * pct / 100.0) as u64,
        }
    }

    /// Feeds readings one second apart; returns the state after each.
    fn run(m: &mut StorageMonitor, readings: &[DiskUsage]) -> Vec<StorageState> {
        let t0 = Instant::now();
        readings
            .iter()
            .enumerate()
            .map(|(i, u)| {
                m.observe(t0 + Duration::from_secs(i as u64), *u);
                m.state()
            })
            .collect()
    }

    use StorageState::{Critical, Ok as Fine, Warning};

    #[test]
    fn storage_state_names() {
        assert_eq!(Fine.name(), "ok");
        assert_eq!(Warning.name(), "warning");
        assert_eq!(Critical.to_string(), "critical");
        assert!(Warning.accepts_calls());
        assert!(!Critical.accepts_calls());
        assert_eq!(serde_json::to_string(&Critical).unwrap(), "\"critical\"");
    }

    #[test]
    fn storage_percent_thresholds() {
        let mut m = StorageMonitor::new(&pct_only());
        assert_eq!(m.state(), Fine);
        assert_eq!(m.usage(), None);
        let states = run(&mut m, &[at(50.0), at(15.0), at(14.9), at(5.0), at(4.9)]);
        assert_eq!(states, vec![Fine, Fine, Warning, Warning, Critical]);
        assert_eq!(m.usage(), Some(at(4.9)));
    }

    #[test]
    fn storage_transition_reports_from_to_and_usage() {
        let mut m = StorageMonitor::new(&pct_only());
        let t0 = Instant::now();
        assert_eq!(m.observe(t0, at(50.0)), None);
        assert_eq!(m.since(), None);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(
            m.observe(t1, at(10.0)),
            Some(Transition {
                from: Fine,
                to: Warning,
                usage: at(10.0)
            })
        );
        assert_eq!(m.since(), Some(t1));
        assert_eq!(m.observe(t1 + Duration::from_secs(5), at(11.0)), None);
        assert_eq!(m.since(), Some(t1), "no change keeps the entry time");
    }

    #[test]
    fn storage_hysteresis_on_percent() {
        let mut m = StorageMonitor::new(&pct_only());
        let states = run(
            &mut m,
            &[
                at(4.0), // critical
                at(5.5), // above 5 %, below 6 %: still critical
                at(4.9),
                at(5.9),
                at(6.0),  // 5 % + 1 point: leaves critical, below 15 %: warning
                at(5.5),  // back into the margin: stays warning (not critical)
                at(15.5), // above 15 %, below 16 %: still warning
                at(16.0), // leaves warning
                at(15.5), // in the margin from ok: stays ok
                at(14.99),
            ],
        );
        assert_eq!(
            states,
            vec![
                Critical, Critical, Critical, Critical, Warning, Warning, Warning, Fine, Fine,
                Warning
            ]
        );
    }

    #[test]
    fn storage_leaving_critical_can_go_straight_to_ok() {
        let mut m = StorageMonitor::new(&pct_only());
        assert_eq!(run(&mut m, &[at(1.0), at(80.0)]), vec![Critical, Fine]);
        let mut no_warn = StorageMonitor::new(&StorageConfig {
            warn_free_percent: Percent::new(0.0).unwrap(),
            ..pct_only()
        });
        assert_eq!(
            run(&mut no_warn, &[at(4.0), at(5.5), at(6.0), at(5.5)]),
            vec![Critical, Critical, Fine, Fine]
        );
    }

    #[test]
    fn storage_byte_thresholds() {
        let cfg = StorageConfig {
            warn_free_percent: Percent::new(0.0).unwrap(),
            critical_free_percent: Percent::new(0.0).unwrap(),
            warn_free_bytes: ByteSize(20 * GIB),
            critical_free_bytes: ByteSize(GIB),
            ..StorageConfig::default()
        };
        let bytes = |b: u64| DiskUsage {
            total_bytes: TOTAL,
            free_bytes: b,
        };
        let mut m = StorageMonitor::new(&cfg);
        let states = run(
            &mut m,
            &[
                bytes(20 * GIB),
                bytes(20 * GIB - 1),
                bytes(GIB),
                bytes(GIB - 1),
                bytes(GIB + GIB / 20 - 1), // inside the 5 % margin
                bytes(GIB + GIB / 20),
                bytes(21 * GIB - 1), // inside 20 GiB + 1 GiB
                bytes(21 * GIB),
            ],
        );
        assert_eq!(
            states,
            vec![Fine, Warning, Warning, Critical, Critical, Warning, Warning, Fine]
        );
    }

    #[test]
    fn storage_either_threshold_is_enough() {
        // Defaults: 15 % / 5 % and a 1 GiB critical floor. On a 10 GiB
        // volume 0.9 GiB free is 9 %: only the byte floor makes it critical.
        let mut m = StorageMonitor::new(&StorageConfig::default());
        let small = DiskUsage {
            total_bytes: 10 * GIB,
            free_bytes: GIB * 9 / 10,
        };
        assert_eq!(run(&mut m, &[small]), vec![Critical]);
        // Leaving needs every threshold clear by its margin: 1.02 GiB of
        // 10 GiB is 10.2 % (clear of 5 % + 1) but inside 1 GiB + 5 %.
        let gib_10 = |free: u64| DiskUsage {
            total_bytes: 10 * GIB,
            free_bytes: free,
        };
        let mut m = StorageMonitor::new(&StorageConfig::default());
        assert_eq!(
            run(
                &mut m,
                &[at(1.0), gib_10(GIB * 102 / 100), gib_10(GIB * 3 / 2)]
            ),
            vec![Critical, Critical, Warning]
        );
    }

    #[test]
    fn storage_startup_directly_into_critical() {
        let mut m = StorageMonitor::new(&StorageConfig::default());
        let t = m.observe(Instant::now(), at(0.5)).expect("a transition");
        assert_eq!((t.from, t.to), (Fine, Critical));
        assert!(!m.state().accepts_calls());
    }

    #[test]
    fn storage_all_thresholds_off_is_always_ok() {
        let off = StorageConfig {
            warn_free_percent: Percent::new(0.0).unwrap(),
            critical_free_percent: Percent::new(0.0).unwrap(),
            warn_free_bytes: ByteSize(0),
            critical_free_bytes: ByteSize(0),
            ..StorageConfig::default()
        };
        let mut m = StorageMonitor::new(&off);
        assert_eq!(run(&mut m, &[at(0.0), at(50.0)]), vec![Fine, Fine]);
    }

    #[test]
    fn storage_sizeless_file_system_is_ignored() {
        let mut m = StorageMonitor::new(&StorageConfig::default());
        let none = DiskUsage {
            total_bytes: 0,
            free_bytes: 0,
        };
        assert_eq!(m.observe(Instant::now(), none), None);
        assert_eq!(m.state(), Fine);
        assert_eq!(m.usage(), None);
    }

    #[test]
    fn storage_reload_applies_from_next_reading() {
        let mut m = StorageMonitor::new(&pct_only());
        assert_eq!(run(&mut m, &[at(10.0)]), vec![Warning]);
        m.set_config(&StorageConfig {
            warn_free_percent: Percent::new(8.0).unwrap(),
            ..pct_only()
        });
        assert_eq!(m.state(), Warning);
        assert_eq!(run(&mut m, &[at(10.0)]), vec![Fine]);
    }

    #[test]
    fn storage_disk_usage_reads_a_real_volume() {
        let dir = tempfile::tempdir().unwrap();
        let u = disk_usage(dir.path()).unwrap();
        assert!(u.free_bytes <= u.total_bytes, "{u:?}");
        let e = disk_usage(&dir.path().join("missing")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
