//! `mediafork recordings decrypt`: a sealed recording back to plain files,
//! offline, with the private key. It needs no running server (unlike the
//! other `recordings` subcommands) and never sends the key anywhere.

use std::io::Write;
use std::path::PathBuf;

use mediafork_dataplane::recording::sealed::restore::{restore, RestoreError, Restored};
use mediafork_dataplane::recording::sealed::PrivateKey;

use super::args::DecryptArgs;

/// Every file restored whole.
pub const EXIT_OK: u8 = 0;
/// The key does not open the recording, a file was altered or damaged, or
/// nothing could be read.
pub const EXIT_ERROR: u8 = 1;
/// Restored, but the recorder stopped abruptly during the call: what it had
/// flushed is restored (as `replay`'s 3: done, but the input was cut short).
pub const EXIT_INCOMPLETE: u8 = 3;

/// Runs the subcommand, printing to `out` (errors to stderr); the exit
/// status.
pub fn run(a: &DecryptArgs, json: bool, out: &mut dyn Write) -> u8 {
    match execute(a, json, out) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mediafork: error: {e}");
            EXIT_ERROR
        }
    }
}

fn execute(a: &DecryptArgs, json: bool, out: &mut dyn Write) -> Result<u8, String> {
    let key = PrivateKey::load(&a.private_key).map_err(|e| e.to_string())?;
    let target = match &a.out {
        Some(o) => o.clone(),
        None => PathBuf::from(
            a.dir
                .file_name()
                .ok_or_else(|| format!("{}: not a recording directory", a.dir.display()))?,
        ),
    };
    if std::fs::read_dir(&target).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "{} exists and is not empty: give --out a new directory",
            target.display()
        ));
    }
    let report = restore(&a.dir, &target, &key).map_err(|e| match e {
        RestoreError::Key { file, source } => {
            format!("{file}: {source}. Nothing was restored: use the private key of that key id.")
        }
        RestoreError::Setup(m) => m,
    })?;
    let text = if json {
        let mut v = serde_json::to_value(&report).map_err(|e| e.to_string())?;
        v["complete"] = (!report.incomplete() && !report.failed()).into();
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())? + "\n"
    } else {
        render(&report)
    };
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(if report.failed() {
        EXIT_ERROR
    } else if report.incomplete() {
        EXIT_INCOMPLETE
    } else {
        EXIT_OK
    })
}

/// The report for people.
pub fn render(r: &Restored) -> String {
    let mut s = format!(
        "restored recording {} (key id {}) into {}\n",
        r.recording_id.as_deref().unwrap_or("?"),
        r.key_id.as_deref().unwrap_or("?"),
        r.out.display()
    );
    for f in &r.files {
        let state = match (&f.error, f.complete) {
            (Some(e), _) => format!("FAILED: {e}"),
            (None, true) => "complete".to_string(),
            (None, false) => "INCOMPLETE (no final chunk)".to_string(),
        };
        s.push_str(&format!(
            "  {:<24} {:>6} chunks {:>12} bytes  {state}\n",
            f.restored.as_deref().unwrap_or(&f.sealed),
            f.chunks,
            f.bytes
        ));
    }
    if r.meta {
        s.push_str("  meta.json (plain fields merged with meta.json.sealed)\n");
    }
    for e in &r.errors {
        s.push_str(&format!("  error: {e}\n"));
    }
    if r.failed() {
        s.push_str("FAILED: some files could not be restored (altered, damaged or not of this recording)\n");
    } else if r.incomplete() {
        let chunks: u32 = r.files.iter().map(|f| f.chunks).sum();
        s.push_str(&format!(
            "incomplete, {chunks} chunks recovered: the recorder stopped abruptly during the call; \
             everything it had flushed is restored\n"
        ));
    }
    s
}
