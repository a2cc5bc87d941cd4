//! The `meta.json` schema. Scripts and integrations parse this file: field
//! names are stable (see the README's schema section); add fields, never
//! rename them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Schema version written into every `meta.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// Identifiers the call is known by elsewhere.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallIds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cisco_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siprec_session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_refci: Option<String>,
}

/// A party to the recorded call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParticipantMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aor: Option<String>,
    /// Labels of the tracks this participant is heard on.
    #[serde(default)]
    pub sends: Vec<String>,
    /// Labels of the tracks this participant hears.
    #[serde(default)]
    pub receives: Vec<String>,
}

/// A contiguous stretch of one SSRC and codec inside a track's WAV.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Sample offset of the segment's first sample in the WAV.
    pub start_sample: u64,
    pub samples: u64,
    /// Silence inserted before the segment (wall-clock gap, capped).
    pub gap_samples: u64,
    pub ssrc: u32,
    pub codec: String,
    /// `start`, `ssrc_change`, `restart`, `timestamp_jump`, `codec_change`.
    pub reason: String,
    pub started_at: String,
}

/// One track (one direction of audio), one WAV file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackMeta {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// WAV path relative to the recording directory.
    pub file: String,
    /// Codec of the first segment (`PCMU`, `PCMA`), or `none` without audio.
    pub codec: String,
    pub clock_rate: u32,
    /// First SSRC seen; absent when no RTP arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    /// Unique RTP packets received.
    pub packets: u64,
    /// Sequence numbers never received.
    pub lost: u64,
    pub duplicates: u64,
    /// SRTP/SRTCP packets whose authentication failed (forged, corrupted,
    /// or keyed differently); never recorded.
    #[serde(default)]
    pub srtp_auth_failed: u64,
    /// SRTP/SRTCP packets replayed or older than the replay window.
    #[serde(default)]
    pub srtp_replay: u64,
    /// Received out of order and put in their place.
    pub reordered: u64,
    /// Received too late to be put in their place (silence there instead).
    pub late: u64,
    /// Not written because the writer could not keep up.
    pub ring_drops: u64,
    /// Missing from `call.pcap` (the raw copy did not fit in the ring to
    /// the writer); the WAV may still hold them.
    #[serde(default)]
    pub pcap_drops: u64,
    /// Packets with a payload type the track cannot record.
    pub unsupported_packets: u64,
    pub dtmf_packets: u64,
    pub rtcp_packets: u64,
    pub ssrc_changes: u64,
    /// RFC 3550 interarrival jitter at the end of the track.
    pub jitter_ms: f64,
    /// Samples in the WAV (equals the RTP timestamp span for a single
    /// segment; segments and their gaps add up otherwise).
    pub samples: u64,
    pub duration_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_timestamp: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<u32>,
    /// True when no RTP arrived for the track (the WAV is empty).
    pub no_media: bool,
    pub segments: Vec<SegmentMeta>,
    /// Samples written as silence because the recording was paused.
    #[serde(default)]
    pub paused_samples: u64,
    /// Audio packets discarded because the recording was stopped.
    #[serde(default)]
    pub stopped_packets: u64,
    /// Packets from another source address than the one the track is
    /// locked to (`media.source_policy`); never recorded.
    #[serde(default)]
    pub wrong_source: u64,
    /// Where audio was lost inside the recording, and why: each entry is a
    /// run of packets the recorder received but could not write (silence
    /// in the WAV there). Network loss is `lost`, not listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub losses: Vec<LossMeta>,
}

/// A stretch of a track's WAV where received audio was lost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LossMeta {
    /// `ring_full`: the writer fell behind (slow disk) and the worker
    /// dropped the packets rather than wait.
    pub reason: String,
    pub packets: u64,
    /// Position in the track's WAV, in samples and seconds.
    pub at_sample: u64,
    pub at_seconds: f64,
    /// Arrival times of the first and last packet lost.
    pub from: String,
    pub to: String,
}

/// A stretch during which the recording was paused or stopped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlIntervalMeta {
    /// `pause` (audio kept as silence, no packets in `call.pcap`) or `stop`
    /// (nothing kept, the stretch is cut out of the WAV).
    pub kind: String,
    pub started_at: String,
    /// Absent while the interval is still open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Who asked for it (agent, API user), as the caller gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a sealed (encrypted) recording was written: `meta.json` of a
/// recording made with `[encryption]`. See `docs/encryption.md`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionMeta {
    /// `encryption.key_id`: names the private key that opens the recording.
    pub key_id: String,
    /// `sha256:` fingerprint of the public key the data key is wrapped for.
    pub key_fingerprint: String,
    /// Cipher and key wrap, e.g. `AES-256-GCM, data key wrapped with
    /// X25519-HKDF-SHA256`.
    pub algorithm: String,
    pub tenant: String,
    /// The sealed files, each restoring the file named without `.sealed`.
    #[serde(default)]
    pub files: Vec<String>,
}

/// The whole `meta.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallMeta {
    pub schema_version: u32,
    pub recording_id: String,
    /// `siprec`, `cucm`, `sip` (plain INVITE), or `rtp` (no signalling seen).
    pub source: String,
    pub call: CallIds,
    pub started_at: String,
    /// Present once the recording is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// False when the recording was cut short (crash, write error, shutdown
    /// before the call ended); `errors` says why.
    pub complete: bool,
    #[serde(default)]
    pub participants: Vec<ParticipantMeta>,
    #[serde(default)]
    pub tracks: Vec<TrackMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcap: Option<String>,
    /// SIPREC metadata documents kept next to the recording, in order.
    #[serde(default)]
    pub metadata_files: Vec<String>,
    /// Vendor-specific facts (CUCM devices, Acme UCID, ...).
    #[serde(default)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub errors: Vec<String>,
    /// Pauses and stops, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<ControlIntervalMeta>,
    /// Free-form labels set through the control API.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Present when the recording's files are sealed (`[encryption]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionMeta>,
}

/// `extensions` keys a sealed recording keeps in its plaintext `meta.json`:
/// how the call ended says nothing about who was on it.
pub const PLAINTEXT_EXTENSIONS: &[&str] = &["ended_by"];

impl CallMeta {
    /// The plaintext `meta.json` of a sealed recording: without what says
    /// who was on the call (participants, vendor extensions, tags, who
    /// paused it and why). Those are only in `meta.json.sealed`; ids, times,
    /// track statistics and errors stay readable for the recordings list,
    /// retention and crash recovery.
    pub fn without_sealed_fields(&self) -> CallMeta {
        let mut m = self.clone();
        m.participants.clear();
        m.extensions
            .retain(|k, _| PLAINTEXT_EXTENSIONS.contains(&k.as_str()));
        m.tags.clear();
        for c in &mut m.controls {
            c.by = None;
            c.reason = None;
        }
        m
    }

    /// Merge `tags` into [`CallMeta::tags`]; an empty value removes its key.
    pub fn merge_tags(&mut self, tags: BTreeMap<String, String>) {
        for (k, v) in tags {
            if v.is_empty() {
                self.tags.remove(&k);
            } else {
                self.tags.insert(k, v);
            }
        }
    }
}

/// RFC 3339 UTC with millisecond precision for a time in ns since the epoch.
pub fn rfc3339(ns: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let t = t
        .replace_nanosecond((t.nanosecond() / 1_000_000) * 1_000_000)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Now, in ns since the epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_millis() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn open_recording_has_no_ended_at() {
        let m = CallMeta {
            recording_id: "x".into(),
            ..CallMeta::default()
        };
        let v = serde_json::to_value(&m).unwrap();
        assert!(v.get("ended_at").is_none());
        assert!(v.get("tracks").unwrap().is_array());
        assert!(v.get("controls").is_none() && v.get("tags").is_none());
    }

    #[test]
    fn files_written_before_controls_and_tags_still_parse() {
        let old = r#"{"schema_version":1,"recording_id":"x","source":"sip","call":{},
            "started_at":"1970-01-01T00:00:00Z","complete":true,"tracks":[{"index":0,
            "file":"track-0.wav","codec":"PCMU","clock_rate":8000,"packets":1,"lost":0,
            "duplicates":0,"reordered":0,"late":0,"ring_drops":0,"unsupported_packets":0,
            "dtmf_packets":0,"rtcp_packets":0,"ssrc_changes":0,"jitter_ms":0.0,
            "samples":160,"duration_seconds":0.02,"no_media":false,"segments":[]}]}"#;
        let m: CallMeta = serde_json::from_str(old).unwrap();
        assert!(m.controls.is_empty() && m.tags.is_empty());
        assert_eq!(
            (m.tracks[0].paused_samples, m.tracks[0].stopped_packets),
            (0, 0)
        );
    }
}
