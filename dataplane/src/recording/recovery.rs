//! Start-up repair of recordings a crash or `kill -9` left open: every WAV
//! gets a header that matches its data, and `meta.json` is closed and
//! marked incomplete, so nothing already recorded is lost or unplayable.
//! Sealed (encrypted) files are left exactly as they are: only their
//! `meta.json` is closed.

use std::path::{Path, PathBuf};

use super::meta::{rfc3339, CallMeta};
use super::sealed;
use crate::writer::wav;

/// What recovery did to one recording.
#[derive(Debug)]
pub struct Recovered {
    pub dir: PathBuf,
    pub tracks: usize,
}

/// Find recordings under `root` whose `meta.json` has no `ended_at` and
/// close them. Errors on one recording are reported and do not stop the
/// others.
pub fn recover(root: &Path) -> (Vec<Recovered>, Vec<String>) {
    let mut done = Vec::new();
    let mut errors = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "meta.json") {
                match recover_one(&dir, &p) {
                    Ok(Some(r)) => done.push(r),
                    Ok(None) => {}
                    Err(err) => errors.push(format!("{}: {err}", p.display())),
                }
            }
        }
    }
    (done, errors)
}

fn recover_one(dir: &Path, meta_path: &Path) -> Result<Option<Recovered>, String> {
    let text = std::fs::read_to_string(meta_path).map_err(|e| e.to_string())?;
    let mut meta: CallMeta =
        serde_json::from_str(&text).map_err(|e| format!("unreadable meta.json: {e}"))?;
    if meta.ended_at.is_some() {
        return Ok(None);
    }
    let mut last_mtime = None;
    let sealed = meta.encryption.is_some();
    for t in &mut meta.tracks {
        if sealed {
            // Never rewritten: every whole chunk already decrypts, and a
            // torn tail is told apart by `recordings decrypt`. Their sizes
            // are in the clear, so the samples can still be counted.
            let p = dir.join(format!("{}{}", t.file, sealed::SUFFIX));
            match std::fs::File::open(&p)
                .map_err(sealed::OpenError::from)
                .and_then(|f| sealed::scan(std::io::BufReader::new(f)))
            {
                Ok((_, s)) => {
                    t.samples = s.bytes / 2;
                    t.duration_seconds = t.samples as f64 / t.clock_rate.max(1) as f64;
                    if let Ok(m) = std::fs::metadata(&p).and_then(|m| m.modified()) {
                        last_mtime = last_mtime.max(Some(m));
                    }
                }
                Err(e) => meta
                    .errors
                    .push(format!("{}{}: {e}", t.file, sealed::SUFFIX)),
            }
            continue;
        }
        let p = dir.join(&t.file);
        match wav::repair(&p) {
            Ok(samples) => {
                t.samples = samples;
                t.duration_seconds = samples as f64 / t.clock_rate.max(1) as f64;
                if let Ok(m) = std::fs::metadata(&p).and_then(|m| m.modified()) {
                    last_mtime = last_mtime.max(Some(m));
                }
            }
            Err(e) => meta.errors.push(format!("{}: {e}", t.file)),
        }
    }
    let end_ns = last_mtime
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_else(super::meta::now_ns);
    meta.ended_at = Some(rfc3339(end_ns));
    for c in meta.controls.iter_mut().filter(|c| c.ended_at.is_none()) {
        c.ended_at = meta.ended_at.clone();
    }
    meta.complete = false;
    meta.errors
        .push("recording was not closed (process stopped abruptly); repaired at start-up".into());
    let tracks = meta.tracks.len();
    write_meta(dir, &meta).map_err(|e| e.to_string())?;
    Ok(Some(Recovered {
        dir: dir.to_path_buf(),
        tracks,
    }))
}

/// Write `meta.json` atomically (temp file + rename): readers never see a
/// half-written file, and a full disk leaves the previous version intact.
pub fn write_meta(dir: &Path, meta: &CallMeta) -> std::io::Result<()> {
    let tmp = dir.join(".meta.json.tmp");
    let mut text = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let res =
        std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, dir.join("meta.json")));
    if res.is_err() {
        // A torn temp file would take the little space a full disk has left.
        let _ = std::fs::remove_file(&tmp);
    }
    res
}
