//! What `mediafork replay` prints at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mediafork_dataplane::recording::meta::CallMeta;
use mediafork_dataplane::stats::Counters;
use mediafork_dataplane::DropReason;
use serde::Serialize;

/// One recording the replay produced.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingSummary {
    pub recording_id: String,
    pub dir: PathBuf,
    pub source: String,
    pub tracks: usize,
    pub packets: u64,
    pub lost: u64,
    pub complete: bool,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub capture: PathBuf,
    pub frames: u64,
    /// SIP messages seen (and used for call setup).
    pub sip_messages: u64,
    /// SIP-looking packets that did not parse.
    pub sip_malformed: u64,
    /// Frames the capture reader could not decode at the link layer.
    pub link_errors: u64,
    pub recordings: Vec<RecordingSummary>,
    pub tracks: usize,
    pub rtp_recorded: u64,
    pub rtcp: u64,
    pub drops: BTreeMap<&'static str, u64>,
    /// A problem with the capture file itself (truncated), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_error: Option<String>,
    /// `--backend dpdk`: frames larger than a DPDK mbuf's 2 KiB data room,
    /// which reached the pipeline cut to their first segment (and so are
    /// counted as malformed, or lose a call's SIP). Over-MTU frames appear
    /// only in loopback or jumbo-frame captures; replay those from the file.
    #[serde(skip_serializing_if = "is_zero")]
    pub oversize_frames: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ReplaySummary {
    pub fn add_counters(&mut self, c: &Counters) {
        self.rtp_recorded += c.recorded;
        self.rtcp += c.rtcp;
        for r in DropReason::ALL {
            *self.drops.entry(r.name()).or_default() += c.dropped(r);
        }
    }

    pub fn add_recording(&mut self, dir: PathBuf, meta: &CallMeta) {
        self.tracks += meta.tracks.len();
        self.recordings.push(RecordingSummary {
            recording_id: meta.recording_id.clone(),
            dir,
            source: meta.source.clone(),
            tracks: meta.tracks.len(),
            packets: meta.tracks.iter().map(|t| t.packets).sum(),
            lost: meta.tracks.iter().map(|t| t.lost).sum(),
            complete: meta.complete,
        });
    }

    /// Human-readable report.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("capture      {}\n", self.capture.display()));
        s.push_str(&format!("frames       {}\n", self.frames));
        s.push_str(&format!("sip messages {}", self.sip_messages));
        if self.sip_malformed > 0 {
            s.push_str(&format!(" ({} malformed)", self.sip_malformed));
        }
        s.push('\n');
        s.push_str(&format!("recordings   {}\n", self.recordings.len()));
        s.push_str(&format!("tracks       {}\n", self.tracks));
        s.push_str(&format!("rtp recorded {}\n", self.rtp_recorded));
        s.push_str(&format!("rtcp         {}\n", self.rtcp));
        let drops: Vec<_> = self.drops.iter().filter(|(_, v)| **v > 0).collect();
        if drops.is_empty() {
            s.push_str("drops        none\n");
        } else {
            s.push_str("drops\n");
            for (k, v) in drops {
                s.push_str(&format!("  {k:<18} {v}\n"));
            }
        }
        if self.link_errors > 0 {
            s.push_str(&format!(
                "undecodable link-layer frames {}\n",
                self.link_errors
            ));
        }
        if self.oversize_frames > 0 {
            s.push_str(&format!(
                "frames larger than a DPDK mbuf (cut to 2 KiB) {}\n",
                self.oversize_frames
            ));
        }
        if let Some(e) = &self.capture_error {
            s.push_str(&format!("capture error: {e}\n"));
        }
        for r in &self.recordings {
            s.push_str(&format!(
                "{}  {:<6} tracks={} packets={} lost={}{}  {}\n",
                r.recording_id,
                r.source,
                r.tracks,
                r.packets,
                r.lost,
                if r.complete { "" } else { " INCOMPLETE" },
                r.dir.display()
            ));
        }
        s
    }
}
