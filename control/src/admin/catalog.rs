//! Recordings on disk, for `GET /v1/recordings` and
//! `GET /v1/recordings/{id}`. Read straight from the recordings directory,
//! so they work for recordings made before the server started (or by
//! `mediafork replay`) and never wait on the server loop.
//!
//! Layout (`mediafork_dataplane::recording::layout`):
//! `<root>/[YYYY/MM/DD/]<recording-id>/meta.json`. The functions here are
//! blocking file-system walks: call them from `spawn_blocking`.

use std::fs;
use std::path::{Path, PathBuf};

use mediafork_dataplane::recording::meta::CallMeta;
use time::{Date, Month, OffsetDateTime, Time};

use super::api::RecordingSummary;

/// Recordings returned by a listing when no limit is given.
pub const DEFAULT_LIMIT: usize = 100;

/// The file that makes a directory a recording.
const META_FILE: &str = "meta.json";

/// How deep the walk goes below the root. The layout needs 4 (three date
/// levels and the recording); the margin allows a root that holds a few
/// levels of its own (per-host folders) without ever looping forever.
const MAX_DEPTH: usize = 8;

/// What `GET /v1/recordings` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Recordings started at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Recordings started at or before this time.
    pub until: Option<OffsetDateTime>,
    /// At most this many, newest first; `None`: [`DEFAULT_LIMIT`].
    pub limit: Option<usize>,
}

impl Query {
    fn admits(&self, t: OffsetDateTime) -> bool {
        !matches!(self.since, Some(s) if t < s) && !matches!(self.until, Some(u) if t > u)
    }

    /// Whether a date partition covering `[start, end)` can hold a match.
    fn admits_range(&self, start: OffsetDateTime, end: OffsetDateTime) -> bool {
        !matches!(self.since, Some(s) if end <= s) && !matches!(self.until, Some(u) if start > u)
    }

    fn is_filtered(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }
}

/// Recordings under `root` that match `query`, newest first.
///
/// A `meta.json` that cannot be read or parsed (being written, damaged,
/// another program's) is skipped with a debug log: one bad file must not
/// hide the rest of the archive. A missing `root` is an empty archive.
pub fn list(root: &Path, query: &Query) -> Vec<RecordingSummary> {
    let mut found: Vec<(Option<OffsetDateTime>, RecordingSummary)> = Vec::new();
    walk(root, 0, &mut Vec::new(), query, &mut |dir| {
        let Some(meta) = read_meta(dir) else {
            return Walk::Continue;
        };
        let started = parse_time(&meta.started_at);
        let keep = match started {
            Some(t) => query.admits(t),
            // Without a start time the recording cannot be placed in a
            // window; it is listed only when no window was asked for.
            None => !query.is_filtered(),
        };
        if keep {
            found.push((started, summarize(dir, &meta)));
        }
        Walk::Continue
    });
    // Newest first; undated recordings last; ties by id so the order is stable.
    found.sort_by(|(ta, a), (tb, b)| tb.cmp(ta).then_with(|| b.recording_id.cmp(&a.recording_id)));
    found.truncate(query.limit.unwrap_or(DEFAULT_LIMIT));
    found.into_iter().map(|(_, s)| s).collect()
}

/// The `meta.json` of recording `id`, as JSON, and its directory; `None`
/// when no such recording exists (or `id` is not a plain directory name,
/// which keeps requests inside `root`).
pub fn find(root: &Path, id: &str) -> Option<(PathBuf, serde_json::Value)> {
    if !is_plain_name(id) {
        return None;
    }
    // Cheap guesses first: flat layout, and the date partition a UUIDv7 id
    // implies. The walk is the fallback for ids from elsewhere and for a
    // recording that began just before midnight of the id's timestamp.
    let mut guesses = vec![root.join(id)];
    if let Some(day) = uuid_v7_day(id) {
        guesses.push(partition_dir(root, day).join(id));
    }
    for dir in guesses {
        if let Some(v) = read_json(&dir) {
            return Some((dir, v));
        }
    }
    let mut hit = None;
    walk(root, 0, &mut Vec::new(), &Query::default(), &mut |dir| {
        if dir.file_name().is_some_and(|n| n == id) {
            if let Some(v) = read_json(dir) {
                hit = Some((dir.to_path_buf(), v));
                return Walk::Stop;
            }
        }
        Walk::Continue
    });
    hit
}

/// A [`RecordingSummary`] of a parsed `meta.json` found in `dir`.
pub fn summarize(dir: &Path, meta: &CallMeta) -> RecordingSummary {
    RecordingSummary {
        recording_id: meta.recording_id.clone(),
        dir: dir.display().to_string(),
        source: meta.source.clone(),
        started_at: meta.started_at.clone(),
        ended_at: meta.ended_at.clone(),
        complete: meta.complete,
        tracks: meta.tracks.len(),
        // Tracks of one call run side by side: the call lasts as long as
        // its longest track, not their sum.
        duration_seconds: meta
            .tracks
            .iter()
            .map(|t| t.duration_seconds)
            .fold(0.0, f64::max),
        call_id: meta.call.sip_call_id.clone(),
        cisco_guid: meta.call.cisco_guid.clone(),
        x_refci: meta.call.x_refci.clone(),
    }
}

/// RFC 3339 time, as written in `meta.json` and accepted by the API.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

enum Walk {
    Continue,
    Stop,
}

/// Visits every recording directory under `dir`, depth first. `date` holds
/// the numeric directory names from the root down to `dir` while they look
/// like `YYYY/MM/DD`, so whole days outside the query are not opened.
/// Returns false once the visitor said stop.
fn walk(
    dir: &Path,
    depth: usize,
    date: &mut Vec<u32>,
    query: &Query,
    visit: &mut dyn FnMut(&Path) -> Walk,
) -> bool {
    if dir.join(META_FILE).is_file() {
        // A recording holds WAVs and SIPREC metadata, never other recordings.
        return matches!(visit(dir), Walk::Continue);
    }
    if depth >= MAX_DEPTH {
        return true;
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            if depth > 0 || e.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(dir = %dir.display(), error = %e, "recordings catalog: cannot read directory");
            }
            return true;
        }
    };
    let mut children: Vec<(PathBuf, String)> = entries
        .filter_map(Result::ok)
        // Symlinked directories could lead outside the archive or round in
        // a loop; recordings are never written through them.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| (e.path(), e.file_name().to_string_lossy().into_owned()))
        .collect();
    children.sort_by(|a, b| b.1.cmp(&a.1));
    for (path, name) in children {
        let in_partition = date.len() == depth && depth < 3;
        let part = in_partition.then(|| date_part(depth, &name)).flatten();
        if let Some(n) = part {
            date.push(n);
            if let Some((start, end)) = partition_range(date) {
                if !query.admits_range(start, end) {
                    date.pop();
                    continue;
                }
            }
        }
        let go_on = walk(&path, depth + 1, date, query, visit);
        if part.is_some() {
            date.pop();
        }
        if !go_on {
            return false;
        }
    }
    true
}

/// The number a date-partition directory name stands for, when `name` has
/// the shape of level `depth` (`YYYY`, `MM`, `DD`).
fn date_part(depth: usize, name: &str) -> Option<u32> {
    let width = if depth == 0 { 4 } else { 2 };
    if name.len() != width || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The UTC time range a partial date partition (`[Y]`, `[Y, M]`,
/// `[Y, M, D]`) covers; `None` when the numbers are not a date (then the
/// directory is walked like any other).
fn partition_range(parts: &[u32]) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let year = i32::try_from(*parts.first()?).ok()?;
    let at = |d: Date| d.with_time(Time::MIDNIGHT).assume_utc();
    match parts {
        [_] => {
            let start = Date::from_calendar_date(year, Month::January, 1).ok()?;
            let end = Date::from_calendar_date(year + 1, Month::January, 1).ok()?;
            Some((at(start), at(end)))
        }
        [_, m] => {
            let month = Month::try_from(u8::try_from(*m).ok()?).ok()?;
            let start = Date::from_calendar_date(year, month, 1).ok()?;
            let next_year = if month == Month::December {
                year + 1
            } else {
                year
            };
            let end = Date::from_calendar_date(next_year, month.next(), 1).ok()?;
            Some((at(start), at(end)))
        }
        [_, m, d] => {
            let month = Month::try_from(u8::try_from(*m).ok()?).ok()?;
            let day = Date::from_calendar_date(year, month, u8::try_from(*d).ok()?).ok()?;
            Some((at(day), at(day.next_day()?)))
        }
        _ => None,
    }
}

fn partition_dir(root: &Path, day: Date) -> PathBuf {
    root.join(format!("{:04}", day.year()))
        .join(format!("{:02}", u8::from(day.month())))
        .join(format!("{:02}", day.day()))
}

/// The UTC day a UUIDv7 recording id was created on.
fn uuid_v7_day(id: &str) -> Option<Date> {
    let uuid = uuid::Uuid::parse_str(id).ok()?;
    let (secs, _) = uuid.get_timestamp()?.to_unix();
    let t = OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    Some(t.date())
}

/// A single, ordinary path component: no separators, no `.`/`..`.
fn is_plain_name(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\\', '\0'])
}

fn read_meta(dir: &Path) -> Option<CallMeta> {
    let path = dir.join(META_FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!(file = %path.display(), error = %e, "recordings catalog: skipping unreadable meta.json");
            return None;
        }
    };
    match serde_json::from_slice(&text) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::debug!(file = %path.display(), error = %e, "recordings catalog: skipping unparseable meta.json");
            None
        }
    }
}

fn read_json(dir: &Path) -> Option<serde_json::Value> {
    let path = dir.join(META_FILE);
    let text = fs::read(&path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(file = %path.display(), error = %e, "recordings catalog: meta.json is not JSON");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// Writes a hand-made meta.json; `tracks` are the tracks' durations.
    fn write_meta(root: &Path, rel: &str, id: &str, started: &str, tracks: &[f64]) -> PathBuf {
        let dir = root.join(rel).join(id);
        fs::create_dir_all(&dir).unwrap();
        let tracks: Vec<serde_json::Value> = tracks
            .iter()
            .enumerate()
            .map(|(i, d)| {
                serde_json::json!({
                    "index": i, "file": format!("track-{i}.wav"), "codec": "PCMU",
                    "clock_rate": 8000, "packets": 10, "lost": 0, "duplicates": 0,
                    "reordered": 0, "late": 0, "ring_drops": 0, "unsupported_packets": 0,
                    "dtmf_packets": 0, "rtcp_packets": 0, "ssrc_changes": 0,
                    "jitter_ms": 0.5, "samples": 80, "duration_seconds": d,
                    "no_media": false, "segments": []
                })
            })
            .collect();
        let meta = serde_json::json!({
            "schema_version": 1,
            "recording_id": id,
            "source": "siprec",
            "call": {"sip_call_id": format!("call-{id}"), "cisco_guid": "G1"},
            "started_at": started,
            "ended_at": started,
            "complete": true,
            "tracks": tracks,
        });
        fs::write(
            dir.join(META_FILE),
            serde_json::to_vec_pretty(&meta).unwrap(),
        )
        .unwrap();
        dir
    }

    fn ids(list: &[RecordingSummary]) -> Vec<&str> {
        list.iter().map(|r| r.recording_id.as_str()).collect()
    }

    fn archive() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        write_meta(r, "2024/05/01", "a", "2024-05-01T10:00:00Z", &[3.0, 4.5]);
        write_meta(r, "2024/05/02", "b", "2024-05-02T10:00:00.250Z", &[1.0]);
        write_meta(r, "2024/06/30", "c", "2024-06-30T23:59:59Z", &[]);
        // Flat layout, side by side with partitions.
        write_meta(r, "", "d", "2024-05-01T11:00:00+02:00", &[2.0]);
        // Damaged and foreign files are skipped.
        let bad = r.join("2024/05/02/broken");
        fs::create_dir_all(&bad).unwrap();
        fs::write(bad.join(META_FILE), b"{\"recording_id\": ").unwrap();
        fs::write(r.join("2024/notes.txt"), b"x").unwrap();
        tmp
    }

    #[test]
    fn lists_newest_first_and_summarizes() {
        let tmp = archive();
        let all = list(tmp.path(), &Query::default());
        assert_eq!(ids(&all), ["c", "b", "a", "d"]);
        let a = &all[2];
        assert_eq!(a.tracks, 2);
        assert_eq!(a.duration_seconds, 4.5);
        assert_eq!(a.call_id.as_deref(), Some("call-a"));
        assert_eq!(a.cisco_guid.as_deref(), Some("G1"));
        assert!(a.complete);
        assert!(a.dir.ends_with("2024/05/01/a"), "{}", a.dir);
        assert_eq!(all[0].duration_seconds, 0.0);
    }

    #[test]
    fn filters_by_window_and_limits() {
        let tmp = archive();
        let q = Query {
            since: Some(datetime!(2024-05-01 10:00 UTC)),
            until: Some(datetime!(2024-05-02 10:00:00.250 UTC)),
            limit: None,
        };
        assert_eq!(ids(&list(tmp.path(), &q)), ["b", "a"]);
        let q = Query {
            since: Some(datetime!(2024-05-01 10:00:01 UTC)),
            ..Query::default()
        };
        assert_eq!(ids(&list(tmp.path(), &q)), ["c", "b"]);
        let q = Query {
            limit: Some(2),
            ..Query::default()
        };
        assert_eq!(ids(&list(tmp.path(), &q)), ["c", "b"]);
        let q = Query {
            until: Some(datetime!(2024-05-01 08:59 UTC)),
            ..Query::default()
        };
        assert!(list(tmp.path(), &q).is_empty());
    }

    #[test]
    fn missing_root_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(list(&tmp.path().join("nope"), &Query::default()).is_empty());
    }

    #[test]
    fn finds_by_id_anywhere_and_refuses_escapes() {
        let tmp = archive();
        let (dir, v) = find(tmp.path(), "b").unwrap();
        assert!(dir.ends_with("2024/05/02/b"));
        assert_eq!(v["recording_id"], "b");
        assert_eq!(find(tmp.path(), "d").unwrap().1["recording_id"], "d");
        assert!(find(tmp.path(), "zzz").is_none());
        assert!(find(tmp.path(), "broken").is_none());
        assert!(find(tmp.path(), "..").is_none());
        assert!(find(tmp.path(), "2024/05/02/b").is_none());
    }

    #[test]
    fn finds_uuid_v7_in_its_partition() {
        let tmp = tempfile::tempdir().unwrap();
        // 2023-11-14T22:13:20Z as a UUIDv7.
        let id = "018bd01e-b400-7000-8000-000000000000";
        assert_eq!(uuid_v7_day(id), Some(time::macros::date!(2023 - 11 - 14)));
        write_meta(tmp.path(), "2023/11/14", id, "2023-11-14T22:13:20Z", &[1.0]);
        assert_eq!(find(tmp.path(), id).unwrap().1["recording_id"], id);
    }

    #[test]
    fn partition_ranges() {
        assert_eq!(
            partition_range(&[2024, 12]),
            Some((
                datetime!(2024-12-01 0:00 UTC),
                datetime!(2025-01-01 0:00 UTC)
            ))
        );
        assert_eq!(
            partition_range(&[2024, 2, 29]),
            Some((
                datetime!(2024-02-29 0:00 UTC),
                datetime!(2024-03-01 0:00 UTC)
            ))
        );
        assert_eq!(partition_range(&[2023, 2, 29]), None);
        assert_eq!(partition_range(&[2024, 13]), None);
    }
}
