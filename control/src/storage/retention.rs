//! Deleting recordings older than the retention period.
//!
//! A recording is deleted only when its `meta.json` says it is closed
//! (`ended_at`) and it ended more than `max_age` ago. Anything else is left
//! alone: no `meta.json` (not a recording, or one being created), no
//! `ended_at` (still being written, or a crash recovery has not closed it),
//! a `meta.json` that does not parse. Only what the recording layout
//! creates is walked — `YYYY/MM/DD/` partitions and recording directories
//! — so other things an operator keeps under the root (`lost+found` on a
//! dedicated volume) are never looked into. Symbolic links are never
//! followed.
//!
//! A directory is first renamed to a hidden `.<name>.deleting` and then
//! removed. Readers thus never see half a recording, and if removal fails
//! half-way the next sweep finishes it: once its `meta.json` were gone, the
//! rest would otherwise never be recognised as a recording again.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mediafork_dataplane::recording::meta::CallMeta;
use time::{Date, Month, OffsetDateTime, Time};

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Recording directories deleted, as they were named before deletion.
    pub deleted: Vec<PathBuf>,
    /// Bytes in the files of the deleted recordings.
    pub freed_bytes: u64,
    /// Recordings old enough to delete by their start that are still open
    /// (no `ended_at`): a stuck call, or a crash not yet recovered.
    pub kept_open: usize,
    /// Empty date-partition directories removed.
    pub removed_dirs: Vec<PathBuf>,
    /// Recordings left alone because of a problem, and deletions that
    /// failed; one sentence each, naming the path.
    pub errors: Vec<String>,
}

/// Empty partitions younger than this are kept even with a shorter
/// `max_age`: the writer may be about to create a recording in one.
const PARTITION_GRACE: Duration = Duration::from_secs(86_400);

const TOMBSTONE_SUFFIX: &str = ".deleting";

/// Deletes the closed recordings under `root` that ended more than
/// `max_age` before `now`, then the date partitions this left empty. The
/// root itself is never removed. Blocking: run it on a blocking thread.
pub fn sweep(root: &Path, max_age: Duration, now: SystemTime) -> SweepReport {
    let mut report = SweepReport::default();
    // A max_age reaching before the epoch (or SystemTime's range) leaves
    // nothing old enough.
    let Some(cutoff) = now.checked_sub(max_age) else {
        return report;
    };
    let remove_before = now
        .checked_sub(PARTITION_GRACE)
        .map_or(cutoff, |t| t.min(cutoff));
    let mut sweeper = Sweeper {
        cutoff,
        remove_before,
        report: &mut report,
    };
    sweeper.walk(root, None);
    report
}

/// A date partition and the span of start times it holds.
#[derive(Clone, Copy, Debug)]
enum Partition {
    Year(i32),
    Month(i32, Month),
    Day(Date),
}

impl Partition {
    /// The partition `name` would be inside `parent` (`None`: the root).
    fn child(parent: Option<Partition>, name: &str) -> Option<Partition> {
        let digits = |n: usize| name.len() == n && name.bytes().all(|b| b.is_ascii_digit());
        match parent {
            None if digits(4) => name.parse().ok().map(Partition::Year),
            Some(Partition::Year(y)) if digits(2) => {
                let m = Month::try_from(name.parse::<u8>().ok()?).ok()?;
                Some(Partition::Month(y, m))
            }
            Some(Partition::Month(y, m)) if digits(2) => {
                Date::from_calendar_date(y, m, name.parse().ok()?)
                    .ok()
                    .map(Partition::Day)
            }
            _ => None,
        }
    }

    /// First and last-plus-one day of the partition.
    fn days(self) -> Option<(Date, Date)> {
        match self {
            Partition::Year(y) => Some((
                Date::from_calendar_date(y, Month::January, 1).ok()?,
                Date::from_calendar_date(y.checked_add(1)?, Month::January, 1).ok()?,
            )),
            Partition::Month(y, m) => {
                let start = Date::from_calendar_date(y, m, 1).ok()?;
                let (ny, nm) = if m == Month::December {
                    (y.checked_add(1)?, Month::January)
                } else {
                    (y, m.next())
                };
                Some((start, Date::from_calendar_date(ny, nm, 1).ok()?))
            }
            Partition::Day(d) => Some((d, d.next_day()?)),
        }
    }

    /// Start and end of the partition as instants (dates are UTC, as
    /// `recording::layout` writes them).
    fn span(self) -> Option<(SystemTime, SystemTime)> {
        let (a, b) = self.days()?;
        let at = |d: Date| SystemTime::from(d.with_time(Time::MIDNIGHT).assume_utc());
        Some((at(a), at(b)))
    }
}

struct Sweeper<'a> {
    /// Recordings that ended before this are deleted.
    cutoff: SystemTime,
    /// Empty partitions that ended before this are removed.
    remove_before: SystemTime,
    report: &'a mut SweepReport,
}

impl Sweeper<'_> {
    /// Sweeps the entries of `dir`, which is the root (`partition` `None`)
    /// or a date partition.
    fn walk(&mut self, dir: &Path, partition: Option<Partition>) {
        let mut entries: Vec<_> = match fs::read_dir(dir) {
            Ok(it) => it.filter_map(Result::ok).collect(),
            Err(e) => {
                self.error(dir, format!("cannot list: {e}"));
                return;
            }
        };
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            // `DirEntry::file_type` does not follow symbolic links.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if name.starts_with('.') {
                if name.ends_with(TOMBSTONE_SUFFIX) {
                    self.finish_deletion(&path);
                }
                continue;
            }
            let meta_path = path.join("meta.json");
            if fs::symlink_metadata(&meta_path).is_ok() {
                self.recording(&path, name, &meta_path);
            } else if let Some(child) = Partition::child(partition, name) {
                self.partition(&path, child);
            }
        }
    }

    fn partition(&mut self, path: &Path, p: Partition) {
        let Some((start, end)) = p.span() else {
            return;
        };
        // Recordings end after they start: a partition that starts after
        // the cutoff holds nothing old enough, and is not read at all.
        if start >= self.cutoff {
            return;
        }
        self.walk(path, Some(p));
        if end <= self.remove_before && is_empty_dir(path) {
            // `remove_dir` refuses a directory that is not empty, so a
            // recording created meanwhile is safe.
            match fs::remove_dir(path) {
                Ok(()) => self.report.removed_dirs.push(path.to_path_buf()),
                Err(e) => self.error(path, format!("cannot remove empty partition: {e}")),
            }
        }
    }

    fn recording(&mut self, dir: &Path, name: &str, meta_path: &Path) {
        // The id is a UUIDv7 carrying its creation time: a recording
        // created after the cutoff cannot have ended before it, so its
        // meta.json need not be read. This keeps sweeps of a flat layout
        // with a million recordings cheap.
        if let Some(created) = uuid_v7_time(name) {
            if created >= self.cutoff {
                return;
            }
        }
        let meta = match read_meta(meta_path) {
            Ok(m) => m,
            Err(e) => {
                self.error(meta_path, format!("{e}; recording kept"));
                return;
            }
        };
        let Some(ended_at) = meta.ended_at else {
            self.report.kept_open += 1;
            return;
        };
        let ended = match OffsetDateTime::parse(
            &ended_at,
            &time::format_description::well_known::Rfc3339,
        ) {
            Ok(t) => SystemTime::from(t),
            Err(e) => {
                self.error(
                    meta_path,
                    format!(
                        "ended_at \"{ended_at}\" is not an RFC 3339 time ({e}); recording kept"
                    ),
                );
                return;
            }
        };
        if ended >= self.cutoff {
            return;
        }
        let size = tree_size(dir);
        let tombstone = dir.with_file_name(format!(".{name}{TOMBSTONE_SUFFIX}"));
        if let Err(e) = fs::rename(dir, &tombstone) {
            self.error(dir, format!("cannot delete: {e}"));
            return;
        }
        self.report.deleted.push(dir.to_path_buf());
        self.report.freed_bytes += size;
        self.finish_deletion(&tombstone);
    }

    fn finish_deletion(&mut self, tombstone: &Path) {
        // std's remove_dir_all does not follow symbolic links inside.
        if let Err(e) = fs::remove_dir_all(tombstone) {
            self.error(
                tombstone,
                format!("cannot delete (the next sweep tries again): {e}"),
            );
        }
    }

    fn error(&mut self, path: &Path, msg: String) {
        self.report
            .errors
            .push(format!("{}: {msg}", path.display()));
    }
}

fn read_meta(path: &Path) -> Result<CallMeta, String> {
    // A meta.json that is a link could point anywhere: not ours to judge.
    let md = fs::symlink_metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !md.is_file() {
        return Err("not a regular file".to_string());
    }
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("unreadable meta.json: {e}"))
}

/// Creation time of a recording id that is a UUIDv7.
fn uuid_v7_time(name: &str) -> Option<SystemTime> {
    let id = uuid::Uuid::try_parse(name).ok()?;
    if id.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|mut it| it.next().is_none())
}

/// Bytes in the regular files under `dir`, links not followed.
fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    /// 2024-06-15T12:00:00Z.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_718_452_800)
    }

    fn rfc3339(t: SystemTime) -> String {
        OffsetDateTime::from(t)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }

    /// A recording directory at `rel` with a meta.json; `ended` None is an
    /// open recording.
    fn recording(root: &Path, rel: &str, ended: Option<SystemTime>, complete: bool) -> PathBuf {
        let dir = root.join(rel);
        fs::create_dir_all(&dir).unwrap();
        let mut meta = serde_json::json!({
            "schema_version": 1,
            "recording_id": dir.file_name().unwrap().to_str().unwrap(),
            "source": "siprec",
            "call": {},
            "started_at": "2024-01-01T00:00:00Z",
            "complete": complete,
            "tracks": [],
        });
        if let Some(t) = ended {
            meta["ended_at"] = rfc3339(t).into();
        }
        fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
        fs::write(dir.join("track-0.wav"), vec![0u8; 1000]).unwrap();
        dir
    }

    #[test]
    fn storage_retention_deletes_old_closed_recordings_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let old = recording(root, "2024/03/01/old", Some(now() - 100 * DAY), true);
        let old_incomplete = recording(root, "2024/03/01/cut", Some(now() - 100 * DAY), false);
        let old_open = recording(root, "2024/03/02/open", None, false);
        let new = recording(root, "2024/06/10/new", Some(now() - 5 * DAY), true);
        // Started in an old partition but ended recently: age is by end.
        let long = recording(root, "2024/03/03/long", Some(now() - 10 * DAY), true);

        let expected_bytes = tree_size(&old) + tree_size(&old_incomplete);
        let r = sweep(root, 90 * DAY, now());
        assert_eq!(r.deleted, vec![old_incomplete.clone(), old.clone()]);
        assert_eq!(r.freed_bytes, expected_bytes);
        assert!(r.freed_bytes > 2000);
        assert_eq!(r.kept_open, 1);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(!old.exists() && !old_incomplete.exists());
        assert!(old_open.exists() && new.exists() && long.exists());
        // 2024/03/01 is now empty and is removed; the others are not.
        assert_eq!(r.removed_dirs, vec![root.join("2024/03/01")]);
        assert!(root.join("2024/03/02").exists());
    }

    #[test]
    fn storage_retention_flat_layout_and_empty_partitions() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let flat_old = recording(root, "flat-old", Some(now() - 40 * DAY), true);
        let flat_new = recording(root, "flat-new", Some(now() - DAY), true);
        recording(root, "2023/12/31/x", Some(now() - 200 * DAY), true);
        fs::create_dir_all(root.join("2024/01/05")).unwrap();
        // Today's empty partition is where the writer is about to put a
        // recording: kept.
        fs::create_dir_all(root.join("2024/06/15")).unwrap();

        let r = sweep(root, 30 * DAY, now());
        assert_eq!(r.deleted, vec![root.join("2023/12/31/x"), flat_old.clone()]);
        assert!(flat_new.exists());
        assert_eq!(
            r.removed_dirs,
            vec![
                root.join("2023/12/31"),
                root.join("2023/12"),
                root.join("2023"),
                root.join("2024/01/05"),
                root.join("2024/01"),
            ]
        );
        assert!(root.join("2024/06/15").is_dir());
        assert!(root.is_dir(), "the root is never removed");
        // An empty root stays too.
        let empty = tempfile::tempdir().unwrap();
        let r = sweep(empty.path(), 30 * DAY, now());
        assert_eq!(r, SweepReport::default());
        assert!(empty.path().is_dir());
    }

    #[test]
    fn storage_retention_keeps_and_reports_unreadable() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let bad_json = root.join("2024/01/01/bad");
        fs::create_dir_all(&bad_json).unwrap();
        fs::write(bad_json.join("meta.json"), "{ not json").unwrap();
        let bad_time = recording(root, "2024/01/01/badtime", None, true);
        let text = fs::read_to_string(bad_time.join("meta.json")).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["ended_at"] = "yesterday".into();
        fs::write(bad_time.join("meta.json"), v.to_string()).unwrap();
        // No meta.json: a recording being created, or not a recording.
        let no_meta = root.join("2024/01/01/nometa");
        fs::create_dir_all(&no_meta).unwrap();
        fs::write(no_meta.join("track-0.wav"), b"x").unwrap();

        let r = sweep(root, 30 * DAY, now());
        assert!(r.deleted.is_empty());
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(r.errors[0].contains("bad/meta.json") && r.errors[0].contains("unreadable"));
        assert!(r.errors[1].contains("badtime") && r.errors[1].contains("RFC 3339"));
        assert!(bad_json.exists() && bad_time.exists() && no_meta.exists());
        assert!(r.removed_dirs.is_empty());
    }

    #[test]
    fn storage_retention_ignores_foreign_dirs_and_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let victim = recording(outside.path(), "victim", Some(now() - 100 * DAY), true);
        std::os::unix::fs::symlink(&victim, root.join("linked")).unwrap();
        fs::create_dir_all(root.join("2024/02")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("2024/02/01")).unwrap();
        // Not a partition name: never looked into.
        let foreign = recording(root, "lost+found/thing", Some(now() - 100 * DAY), true);
        // A link inside an old recording: the link goes, not its target.
        let inside = recording(root, "2024/01/02/withlink", Some(now() - 100 * DAY), true);
        std::os::unix::fs::symlink(outside.path(), inside.join("escape")).unwrap();

        let r = sweep(root, 30 * DAY, now());
        assert_eq!(r.deleted, vec![inside.clone()]);
        assert!(victim.join("meta.json").exists());
        assert!(outside.path().join("victim/track-0.wav").exists());
        assert!(foreign.exists());
        assert!(root.join("2024/02/01").symlink_metadata().is_ok());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }

    #[test]
    fn storage_retention_skips_recent_partitions_and_ids_unread() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        // Unparsable but in a partition newer than the cutoff: not read, so
        // not reported either.
        let recent = root.join("2024/06/01/x");
        fs::create_dir_all(&recent).unwrap();
        fs::write(recent.join("meta.json"), "garbage").unwrap();
        // Same for a flat UUIDv7 id created after the cutoff.
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, 1_718_000_000, 0);
        let id = uuid::Uuid::new_v7(ts).to_string();
        fs::create_dir_all(root.join(&id)).unwrap();
        fs::write(root.join(&id).join("meta.json"), "garbage").unwrap();
        // An old UUIDv7 id is read, and deleted.
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, 1_600_000_000, 0);
        let old_id = uuid::Uuid::new_v7(ts).to_string();
        let old = recording(root, &old_id, Some(now() - 100 * DAY), true);

        let r = sweep(root, 30 * DAY, now());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.deleted, vec![old]);
    }

    #[test]
    fn storage_retention_finishes_interrupted_deletions() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let half = root.join("2024/01/01/.abc.deleting");
        fs::create_dir_all(half.join("sub")).unwrap();
        fs::write(half.join("track-1.wav"), b"x").unwrap();
        let r = sweep(root, 30 * DAY, now());
        assert!(!half.exists());
        assert!(r.deleted.is_empty(), "already counted when first deleted");
        // The current year has not ended: the writer may still need it.
        assert_eq!(
            r.removed_dirs,
            vec![root.join("2024/01/01"), root.join("2024/01")]
        );
        assert!(root.join("2024").is_dir());
    }

    #[test]
    fn storage_retention_with_a_huge_max_age_deletes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let rec = recording(tmp.path(), "2000/01/01/x", Some(now() - 9000 * DAY), true);
        let r = sweep(tmp.path(), Duration::from_secs(u64::MAX / 4), now());
        assert_eq!(r, SweepReport::default());
        assert!(rec.exists());
    }

    #[test]
    fn storage_retention_partition_names() {
        let y = Partition::child(None, "2024").unwrap();
        let m = Partition::child(Some(y), "02").unwrap();
        assert!(Partition::child(Some(m), "29").is_some(), "leap day");
        assert!(Partition::child(Some(m), "30").is_none());
        assert!(Partition::child(Some(y), "13").is_none());
        assert!(Partition::child(Some(y), "2").is_none());
        assert!(Partition::child(None, "abcd").is_none());
        assert!(Partition::child(None, "20245").is_none());
        let dec = Partition::child(Some(y), "12").unwrap();
        let (a, b) = dec.span().unwrap();
        assert_eq!(rfc3339(a), "2024-12-01T00:00:00Z");
        assert_eq!(rfc3339(b), "2025-01-01T00:00:00Z");
    }
}
