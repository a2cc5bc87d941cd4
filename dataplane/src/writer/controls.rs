//! Pause/resume and stop/start of a recording, as intervals of wall-clock
//! time. The writer asks which interval a record's arrival time falls in,
//! so a control applies to exactly the packets that arrived after it,
//! however long they spent in the workers and rings.

use crate::recording::meta::{rfc3339, ControlIntervalMeta};

/// What the control plane can ask of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingControl {
    /// Keep the timeline but store silence and no packets (card numbers).
    Pause,
    /// End a pause.
    Resume,
    /// Store nothing; the stretch is cut out of the WAV.
    Stop,
    /// End a stop: each track starts a new segment.
    Start,
}

/// What an interval does to the records that arrive in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Paused,
    Stopped,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Paused => "pause",
            Mode::Stopped => "stop",
        }
    }
}

#[derive(Clone, Debug)]
struct Interval {
    mode: Mode,
    /// Records arriving at or after this are affected.
    from_ns: u64,
    /// The time `meta.json` shows: differs from `from_ns` only for a call
    /// that starts stopped, which covers packets arriving before its
    /// nominal start too.
    shown_ns: u64,
    until_ns: Option<u64>,
    by: Option<String>,
    reason: Option<String>,
}

/// What a control did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Not valid in the current state (e.g. Resume when not paused).
    Ignored,
    Changed,
    /// A stop ended; audio arriving from this time on starts new segments.
    Started(u64),
}

/// The controls of one call: disjoint intervals in time order.
#[derive(Clone, Debug, Default)]
pub struct Controls {
    intervals: Vec<Interval>,
}

impl Controls {
    /// A call recorded on demand: stopped from the start until a Start.
    pub fn stopped_from(started_ns: u64) -> Controls {
        Controls {
            intervals: vec![Interval {
                mode: Mode::Stopped,
                from_ns: 0,
                shown_ns: started_ns,
                until_ns: None,
                by: None,
                // Says why the recording starts stopped (`recordings.mode`).
                reason: Some("on_demand".to_string()),
            }],
        }
    }

    fn open(&self) -> Option<Mode> {
        self.intervals
            .last()
            .filter(|i| i.until_ns.is_none())
            .map(|i| i.mode)
    }

    fn close(&mut self, at_ns: u64) {
        if let Some(i) = self.intervals.last_mut() {
            i.until_ns = Some(at_ns.max(i.from_ns));
        }
    }

    fn push(&mut self, mode: Mode, at_ns: u64, by: Option<String>, reason: Option<String>) {
        // Controls given out of time order must not overlap earlier
        // intervals, or one record could fall in two of them.
        let from = self
            .intervals
            .last()
            .and_then(|i| i.until_ns)
            .map_or(at_ns, |u| at_ns.max(u));
        self.intervals.push(Interval {
            mode,
            from_ns: from,
            shown_ns: from,
            until_ns: None,
            by,
            reason,
        });
    }

    /// Apply a control given at `at_ns`.
    pub fn apply(
        &mut self,
        control: RecordingControl,
        at_ns: u64,
        by: Option<String>,
        reason: Option<String>,
    ) -> Applied {
        match (control, self.open()) {
            (RecordingControl::Pause, None) => {
                self.push(Mode::Paused, at_ns, by, reason);
                Applied::Changed
            }
            (RecordingControl::Resume, Some(Mode::Paused)) => {
                self.close(at_ns);
                Applied::Changed
            }
            (RecordingControl::Stop, None) => {
                self.push(Mode::Stopped, at_ns, by, reason);
                Applied::Changed
            }
            (RecordingControl::Stop, Some(Mode::Paused)) => {
                self.close(at_ns);
                self.push(Mode::Stopped, at_ns, by, reason);
                Applied::Changed
            }
            (RecordingControl::Start, Some(Mode::Stopped)) => {
                self.close(at_ns);
                Applied::Started(
                    self.intervals
                        .last()
                        .and_then(|i| i.until_ns)
                        .unwrap_or(at_ns),
                )
            }
            _ => Applied::Ignored,
        }
    }

    /// The mode a record that arrived at `arrival_ns` falls under.
    #[inline]
    pub fn mode_at(&self, arrival_ns: u64) -> Option<Mode> {
        // Records are mostly recent: the last interval decides at once.
        for i in self.intervals.iter().rev() {
            if arrival_ns >= i.from_ns {
                return match i.until_ns {
                    Some(u) if arrival_ns >= u => None,
                    _ => Some(i.mode),
                };
            }
        }
        None
    }

    /// The intervals for `meta.json`; an open one ends at `end_ns` when given
    /// (the call is over).
    pub fn to_meta(&self, end_ns: Option<u64>) -> Vec<ControlIntervalMeta> {
        self.intervals
            .iter()
            .map(|i| ControlIntervalMeta {
                kind: i.mode.name().to_string(),
                started_at: rfc3339(i.shown_ns),
                ended_at: i.until_ns.or(end_ns).map(rfc3339),
                by: i.by.clone(),
                reason: i.reason.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RecordingControl::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn pause_covers_its_half_open_interval() {
        let mut c = Controls::default();
        assert_eq!(c.mode_at(5 * S), None);
        assert_eq!(
            c.apply(Pause, 10 * S, Some("agent".into()), None),
            Applied::Changed
        );
        assert_eq!(c.mode_at(10 * S - 1), None);
        assert_eq!(c.mode_at(10 * S), Some(Mode::Paused));
        assert_eq!(c.mode_at(99 * S), Some(Mode::Paused), "open until resumed");
        assert_eq!(c.apply(Resume, 12 * S, None, None), Applied::Changed);
        assert_eq!(c.mode_at(12 * S - 1), Some(Mode::Paused));
        assert_eq!(c.mode_at(12 * S), None);
        let m = c.to_meta(None);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].kind, "pause");
        assert_eq!(m[0].started_at, "1970-01-01T00:00:10Z");
        assert_eq!(m[0].ended_at.as_deref(), Some("1970-01-01T00:00:12Z"));
        assert_eq!(m[0].by.as_deref(), Some("agent"));
    }

    #[test]
    fn invalid_transitions_are_ignored() {
        let mut c = Controls::default();
        assert_eq!(c.apply(Resume, S, None, None), Applied::Ignored);
        assert_eq!(c.apply(Start, S, None, None), Applied::Ignored);
        assert_eq!(c.apply(Stop, 2 * S, None, None), Applied::Changed);
        assert_eq!(c.apply(Pause, 3 * S, None, None), Applied::Ignored);
        assert_eq!(c.apply(Stop, 3 * S, None, None), Applied::Ignored);
        assert_eq!(c.apply(Resume, 3 * S, None, None), Applied::Ignored);
        assert_eq!(c.apply(Start, 4 * S, None, None), Applied::Started(4 * S));
        assert_eq!(c.to_meta(None).len(), 1);
    }

    #[test]
    fn stop_while_paused_ends_the_pause() {
        let mut c = Controls::default();
        c.apply(Pause, S, None, None);
        c.apply(Stop, 2 * S, None, Some("customer refused".into()));
        assert_eq!(c.mode_at(S + 1), Some(Mode::Paused));
        assert_eq!(c.mode_at(2 * S), Some(Mode::Stopped));
        let m = c.to_meta(Some(9 * S));
        assert_eq!(m[0].ended_at.as_deref(), Some("1970-01-01T00:00:02Z"));
        assert_eq!(m[1].kind, "stop");
        assert_eq!(m[1].ended_at.as_deref(), Some("1970-01-01T00:00:09Z"));
        assert_eq!(m[1].reason.as_deref(), Some("customer refused"));
    }

    #[test]
    fn out_of_order_times_never_overlap() {
        let mut c = Controls::default();
        c.apply(Pause, 10 * S, None, None);
        c.apply(Resume, 20 * S, None, None);
        c.apply(Stop, 15 * S, None, None);
        assert_eq!(c.mode_at(16 * S), Some(Mode::Paused));
        assert_eq!(c.mode_at(20 * S), Some(Mode::Stopped));
        // A Start dated before its stop closes it empty.
        assert_eq!(c.apply(Start, 5 * S, None, None), Applied::Started(20 * S));
        assert_eq!(c.mode_at(20 * S), None);
    }

    #[test]
    fn on_demand_call_is_stopped_before_its_start_too() {
        let c = Controls::stopped_from(50 * S);
        assert_eq!(c.mode_at(49 * S), Some(Mode::Stopped));
        let m = c.to_meta(None);
        assert_eq!(m[0].started_at, "1970-01-01T00:00:50Z");
        assert_eq!(m[0].ended_at, None);
    }
}
