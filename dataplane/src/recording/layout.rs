//! Where a recording lives: `<recordings>/YYYY/MM/DD/<recording-id>/`.

use std::path::{Path, PathBuf};

/// A new recording id: UUIDv7, so ids sort by creation time.
pub fn new_recording_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Directory of recording `id` started at `started_ns`.
pub fn recording_dir(root: &Path, date_partitions: bool, started_ns: u64, id: &str) -> PathBuf {
    if !date_partitions {
        return root.join(id);
    }
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(started_ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    root.join(format!("{:04}", t.year()))
        .join(format!("{:02}", u8::from(t.month())))
        .join(format!("{:02}", t.day()))
        .join(id)
}

/// File name of track `index`'s WAV. Labels come from the network and stay
/// out of file names.
pub fn track_file(index: u32) -> String {
    format!("track-{index}.wav")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_by_utc_date() {
        let d = recording_dir(Path::new("/r"), true, 1_700_000_000_000_000_000, "abc");
        assert_eq!(d, PathBuf::from("/r/2023/11/14/abc"));
        assert_eq!(
            recording_dir(Path::new("/r"), false, 0, "abc"),
            PathBuf::from("/r/abc")
        );
    }

    #[test]
    fn ids_are_unique_and_sortable() {
        let a = new_recording_id();
        let b = new_recording_id();
        assert_ne!(a, b);
        assert!(a < b);
    }
}
