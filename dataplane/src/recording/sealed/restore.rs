//! A sealed recording's directory back to a plain one (`mediafork
//! recordings decrypt`): every `X.sealed` becomes `X`, track PCM gets its
//! WAV header, and `meta.json` gets back the fields kept only in
//! `meta.json.sealed` (participants, extensions, tags, who paused and why).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{decrypt, read_header, Content, OpenError, PrivateKey, StreamSummary, SUFFIX};
use crate::writer::wav;

/// The sealed copy of the full `meta.json`.
pub const META_SEALED: &str = "meta.json.sealed";
/// `meta.json` fields that exist only in `meta.json.sealed`.
pub const SEALED_FIELDS: &[&str] = &["participants", "extensions", "tags"];
/// Fields of each `controls[]` entry that exist only in `meta.json.sealed`.
pub const SEALED_CONTROL_FIELDS: &[&str] = &["by", "reason"];

/// What became of one sealed file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RestoredFile {
    /// The sealed file's name.
    pub sealed: String,
    /// The file written (absent when it could not be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
    pub chunks: u32,
    /// Plaintext bytes recovered (without a WAV header).
    pub bytes: u64,
    /// False when the stream has no final chunk (the recorder stopped
    /// abruptly): what was flushed before is restored.
    pub complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What restoring a recording did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Restored {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub out: PathBuf,
    pub files: Vec<RestoredFile>,
    /// `meta.json` was written to `out`.
    pub meta: bool,
    /// Problems that are not a file's (meta.json unreadable, ...).
    pub errors: Vec<String>,
}

impl Restored {
    /// Some stream stopped before its final chunk.
    pub fn incomplete(&self) -> bool {
        self.files.iter().any(|f| f.error.is_none() && !f.complete)
    }

    /// Some file could not be restored (damaged, altered, not ours).
    pub fn failed(&self) -> bool {
        !self.errors.is_empty() || self.files.iter().any(|f| f.error.is_some())
    }
}

/// Why nothing could be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0}")]
    Setup(String),
    /// The private key does not open the recording: stops at the first file.
    #[error("{file}: {source}")]
    Key { file: String, source: OpenError },
}

/// Restores recording directory `dir` into `out` (created; must not be
/// `dir`) with `key`.
pub fn restore(dir: &Path, out: &Path, key: &PrivateKey) -> Result<Restored, RestoreError> {
    let setup = |m: String| RestoreError::Setup(m);
    if !dir.is_dir() {
        return Err(setup(format!("{} is not a directory", dir.display())));
    }
    let mut sealed: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| setup(format!("cannot read {}: {e}", dir.display())))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(SUFFIX) && n.len() > SUFFIX.len() && !n.starts_with('.'))
        .collect();
    sealed.sort();
    if sealed.is_empty() {
        return Err(setup(format!(
            "{} has no sealed files: it is not an encrypted recording",
            dir.display()
        )));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| setup(format!("cannot create {}: {e}", out.display())))?;
    if same_dir(dir, out) {
        return Err(setup(format!(
            "--out {} is the recording itself: give another directory",
            out.display()
        )));
    }
    let mut report = Restored {
        out: out.to_path_buf(),
        ..Restored::default()
    };
    let plain = match std::fs::read(dir.join("meta.json")) {
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(v) => Some(v),
            Err(e) => {
                report.errors.push(format!("meta.json: not JSON ({e})"));
                None
            }
        },
        Err(e) => {
            report.errors.push(format!("meta.json: {e}"));
            None
        }
    };
    let expected_id = plain
        .as_ref()
        .and_then(|m| m["recording_id"].as_str())
        .map(str::to_string);
    report.recording_id = expected_id.clone();
    report.key_id = plain
        .as_ref()
        .and_then(|m| m["encryption"]["key_id"].as_str())
        .map(str::to_string);
    let mut sealed_meta = None;
    for name in &sealed {
        let target = &name[..name.len() - SUFFIX.len()];
        let res = restore_file(dir, out, name, target, expected_id.as_deref(), key);
        let mut f = RestoredFile {
            sealed: name.clone(),
            restored: None,
            chunks: 0,
            bytes: 0,
            complete: false,
            error: None,
        };
        match res {
            Ok((summary, meta_bytes)) => {
                f.chunks = summary.chunks;
                f.bytes = summary.bytes;
                f.complete = summary.complete;
                match meta_bytes {
                    Some(b) => match serde_json::from_slice::<Value>(&b) {
                        Ok(v) => sealed_meta = Some(v),
                        Err(e) => f.error = Some(format!("decrypted, but not JSON: {e}")),
                    },
                    None => f.restored = Some(target.to_string()),
                }
            }
            Err(FileError::Key(source)) => {
                return Err(RestoreError::Key {
                    file: dir.join(name).display().to_string(),
                    source,
                })
            }
            Err(FileError::Other(e)) => f.error = Some(e),
        }
        report.files.push(f);
    }
    if let Some(meta) = merge_meta(plain, sealed_meta) {
        if report.recording_id.is_none() {
            report.recording_id = meta["recording_id"].as_str().map(str::to_string);
        }
        let mut text = serde_json::to_vec_pretty(&meta).unwrap_or_default();
        text.push(b'\n');
        match std::fs::write(out.join("meta.json"), text) {
            Ok(()) => report.meta = true,
            Err(e) => report.errors.push(format!("writing meta.json: {e}")),
        }
    }
    Ok(report)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

enum FileError {
    Key(OpenError),
    Other(String),
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        FileError::Other(e.to_string())
    }
}

/// Restores one file; `meta.json.sealed` comes back as bytes instead.
fn restore_file(
    dir: &Path,
    out: &Path,
    name: &str,
    target: &str,
    recording_id: Option<&str>,
    key: &PrivateKey,
) -> Result<(StreamSummary, Option<Vec<u8>>), FileError> {
    let path = dir.join(name);
    let (header, _) = read_header(&mut BufReader::new(File::open(&path)?))
        .map_err(|e| FileError::Other(e.to_string()))?;
    // Header fields are authenticated with every chunk; these checks catch
    // files renamed or copied between recordings before anything is written.
    if header.name != target {
        return Err(FileError::Other(format!(
            "holds {} (was the file renamed?)",
            header.name
        )));
    }
    if let Some(id) = recording_id {
        if header.recording_id != id {
            return Err(FileError::Other(format!(
                "belongs to recording {}, not {id}",
                header.recording_id
            )));
        }
    }
    let input = BufReader::with_capacity(256 << 10, File::open(&path)?);
    let classify = |e: OpenError| match e {
        OpenError::WrongKey { .. } | OpenError::Unwrap { .. } => FileError::Key(e),
        e => FileError::Other(e.to_string()),
    };
    if name == META_SEALED {
        let mut bytes = Vec::new();
        let (_, s) = decrypt(input, key, &mut bytes).map_err(classify)?;
        return Ok((s, Some(bytes)));
    }
    let tmp = out.join(format!(".{target}.tmp"));
    let res = (|| {
        let mut w = BufWriter::with_capacity(256 << 10, File::create(&tmp)?);
        if let Content::Pcm16Mono { .. } = header.content {
            w.write_all(&[0u8; wav::HEADER_LEN as usize])?;
        }
        let (_, s) = decrypt(input, key, &mut w).map_err(classify)?;
        let mut file = w.into_inner().map_err(|e| e.into_error())?;
        if let Content::Pcm16Mono { sample_rate } = header.content {
            // The sizes of what was recovered: an incomplete stream still
            // gives a valid WAV.
            let data = u32::try_from(s.bytes & !1).unwrap_or(u32::MAX);
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&wav::header(sample_rate, data))?;
            file.set_len(wav::HEADER_LEN + (s.bytes & !1))?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, out.join(target))?;
        Ok(s)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map(|s| (s, None))
}

/// `meta.json` as it was before sealing: the plaintext file (authoritative
/// for everything it holds: a crash recovery may have closed it after the
/// last sealed snapshot) plus the fields only the sealed snapshot has.
fn merge_meta(plain: Option<Value>, sealed: Option<Value>) -> Option<Value> {
    let mut meta = match (plain, &sealed) {
        (Some(p), _) => p,
        (None, Some(s)) => s.clone(),
        (None, None) => return None,
    };
    if let (Some(m), Some(s)) = (meta.as_object_mut(), sealed.as_ref()) {
        for k in SEALED_FIELDS {
            let Some(v) = s.get(*k) else {
                continue;
            };
            match (m.get_mut(*k).and_then(Value::as_object_mut), v.as_object()) {
                // `extensions`: the plaintext keeps a few keys (`ended_by`).
                (Some(mine), Some(theirs)) => {
                    for (key, value) in theirs {
                        mine.insert(key.clone(), value.clone());
                    }
                }
                _ => {
                    m.insert(k.to_string(), v.clone());
                }
            }
        }
        if let (Some(controls), Some(from)) = (
            m.get_mut("controls").and_then(Value::as_array_mut),
            s.get("controls").and_then(Value::as_array),
        ) {
            for (c, f) in controls.iter_mut().zip(from) {
                if c.get("kind") != f.get("kind") || c.get("started_at") != f.get("started_at") {
                    continue;
                }
                for k in SEALED_CONTROL_FIELDS {
                    if let (Some(c), Some(v)) = (c.as_object_mut(), f.get(*k)) {
                        c.insert(k.to_string(), v.clone());
                    }
                }
            }
        }
    }
    if let Some(m) = meta.as_object_mut() {
        // The restored directory is a plain recording.
        m.remove("encryption");
    }
    Some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_takes_sealed_fields_and_keeps_the_plain_closure() {
        let plain = json!({
            "recording_id": "r", "ended_at": "2024-01-01T00:00:09Z", "complete": false,
            "controls": [{"kind": "pause", "started_at": "a", "ended_at": "b"}],
            "encryption": {"key_id": "k"}
        });
        let sealed = json!({
            "recording_id": "r", "complete": false,
            "participants": [{"aor": "sip:alice@example.com"}],
            "extensions": {"cucm": {}}, "tags": {"queue": "billing"},
            "controls": [{"kind": "pause", "started_at": "a", "by": "agent-7", "reason": "pci"}]
        });
        let m = merge_meta(Some(plain), Some(sealed)).unwrap();
        assert_eq!(m["ended_at"], "2024-01-01T00:00:09Z");
        assert_eq!(m["participants"][0]["aor"], "sip:alice@example.com");
        assert_eq!(m["tags"]["queue"], "billing");
        assert_eq!(m["controls"][0]["by"], "agent-7");
        assert_eq!(m["controls"][0]["ended_at"], "b");
        assert!(m.get("encryption").is_none());
    }
}
