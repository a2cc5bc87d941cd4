//! Human-readable renderings of admin API answers. Scripts use `--json`;
//! these are for people at a terminal, so they are short and aligned.

use std::fmt::Write as _;

use mediafork_dataplane::recording::meta::CallMeta;

use crate::admin::api::{
    CallDetail, CallEvent, CallSummary, DrainStatus, RecordingSummary, ReloadResult, Stats, Status,
};

/// Left-aligned columns separated by two spaces, a header row first; no
/// trailing spaces. Widths count characters, not bytes.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            line.push_str(&" ".repeat(pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `H:MM:SS` from one hour on, `M:SS` below.
pub fn duration(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds.round() as u64
    } else {
        0
    };
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Bytes in binary units with one decimal (`12.3 GiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".to_string())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Key/value lines with the values aligned.
fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let _ = writeln!(out, "{:width$}  {v}", format!("{k}:"), width = width + 1);
    }
    out
}

pub fn status(s: &Status) -> String {
    let workers = if s.workers.is_empty() {
        "none".to_string()
    } else {
        let each = s
            .workers
            .iter()
            .map(|w| match w.core {
                Some(c) => format!("#{} on core {c}", w.id),
                None => format!("#{} not pinned", w.id),
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!("{} ({each})", s.workers.len())
    };
    let accepting = if s.refusing_because.is_empty() && !s.draining {
        "accepting new calls".to_string()
    } else if s.refusing_because.is_empty() {
        "refusing new calls: draining".to_string()
    } else {
        format!("refusing new calls: {}", s.refusing_because.join(", "))
    };
    fields(&[
        ("version", s.version.clone()),
        (
            "started",
            format!("{} (up {})", s.started_at, duration(s.uptime_seconds)),
        ),
        ("state", accepting),
        ("backend", s.backend.clone()),
        ("workers", workers),
        ("writers", s.writers.to_string()),
        (
            "ports",
            format!(
                "{}: {} in use, {} quarantined, {} free of {}",
                s.ports.range, s.ports.in_use, s.ports.quarantined, s.ports.free, s.ports.total
            ),
        ),
        (
            "calls",
            format!(
                "{} active ({} dialogs); since start {} started, {} ended, {} rejected, {} session-expired",
                s.active_calls,
                s.active_dialogs,
                s.calls.started,
                s.calls.ended,
                s.calls.rejected,
                s.calls.session_expired
            ),
        ),
        (
            "storage",
            format!(
                "{} {}: {} free of {} ({:.1}%)",
                s.storage.dir,
                s.storage.state,
                bytes(s.storage.free_bytes),
                bytes(s.storage.total_bytes),
                s.storage.free_percent
            ),
        ),
    ])
}

/// The best external id of a call, for one column.
fn call_ref(call_id: &Option<String>, guid: &Option<String>, refci: &Option<String>) -> String {
    call_id
        .clone()
        .or_else(|| guid.clone())
        .or_else(|| refci.clone())
        .unwrap_or_else(|| "-".to_string())
}

pub fn calls(list: &[CallSummary]) -> String {
    if list.is_empty() {
        return "no calls in progress\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                c.recording_id.clone(),
                c.source.clone(),
                c.state.clone(),
                duration(c.duration_seconds),
                c.tracks.to_string(),
                c.peer.clone(),
                call_ref(&c.call_id, &c.cisco_guid, &c.x_refci),
            ]
        })
        .collect();
    table(
        &[
            "RECORDING_ID",
            "SOURCE",
            "STATE",
            "DURATION",
            "TRACKS",
            "PEER",
            "CALL",
        ],
        &rows,
    )
}

pub fn call_detail(c: &CallDetail) -> String {
    let s = &c.summary;
    let mut pairs = vec![
        ("recording_id", s.recording_id.clone()),
        ("source", s.source.clone()),
        ("state", s.state.clone()),
        (
            "started",
            format!("{} ({} ago)", s.started_at, duration(s.duration_seconds)),
        ),
        ("peer", s.peer.clone()),
        ("dir", s.dir.clone()),
    ];
    for (k, v) in [
        ("call_id", &s.call_id),
        ("cisco_guid", &s.cisco_guid),
        ("x_refci", &s.x_refci),
        ("siprec_session", &s.siprec_session_id),
    ] {
        if let Some(v) = v {
            pairs.push((k, v.clone()));
        }
    }
    let mut out = fields(&pairs);
    out.push('\n');
    let tracks: Vec<Vec<String>> = c
        .track_list
        .iter()
        .map(|t| {
            vec![
                t.index.to_string(),
                opt(&t.label),
                opt(&t.local),
                t.codecs.join(","),
                t.file.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["TRACK", "LABEL", "LOCAL", "CODECS", "FILE"],
        &tracks,
    ));
    if !c.intervals.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = c
            .intervals
            .iter()
            .map(|i| {
                vec![
                    i.kind.clone(),
                    i.started_at.clone(),
                    i.ended_at.clone().unwrap_or_else(|| "(ongoing)".into()),
                    opt(&i.by),
                    opt(&i.reason),
                ]
            })
            .collect();
        out.push_str(&table(&["INTERVAL", "FROM", "TO", "BY", "REASON"], &rows));
    }
    if !c.tags.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = c
            .tags
            .iter()
            .map(|(k, v)| vec![k.clone(), v.clone()])
            .collect();
        out.push_str(&table(&["TAG", "VALUE"], &rows));
    }
    out
}

pub fn stats(s: &Stats) -> String {
    let rows: Vec<Vec<String>> = s
        .workers
        .iter()
        .map(|w| {
            let drops: u64 = w.drops.values().sum();
            let detail: Vec<String> = w
                .drops
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            vec![
                w.worker.to_string(),
                w.rx_packets.to_string(),
                bytes(w.rx_bytes),
                w.recorded.to_string(),
                w.rtcp.to_string(),
                if detail.is_empty() {
                    drops.to_string()
                } else {
                    format!("{drops} ({})", detail.join(" "))
                },
                format!(
                    "{}/{}",
                    bytes(w.ring_used_bytes),
                    bytes(w.ring_capacity_bytes)
                ),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "WORKER", "RX_PKTS", "RX_BYTES", "RECORDED", "RTCP", "DROPS", "RING",
        ],
        &rows,
    );
    out.push('\n');
    let rows: Vec<Vec<String>> = s
        .writers
        .iter()
        .map(|w| {
            vec![
                w.writer.to_string(),
                w.records.to_string(),
                bytes(w.bytes_written),
                w.io_errors.to_string(),
                w.open_calls.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["WRITER", "RECORDS", "WRITTEN", "IO_ERRORS", "OPEN_CALLS"],
        &rows,
    ));
    if let Some(nic) = &s.nic {
        out.push('\n');
        out.push_str(&fields(&[
            ("nic", format!("{} ({})", nic.port, nic.driver)),
            (
                "received",
                format!("{} packets, {}", nic.ipackets, bytes(nic.ibytes)),
            ),
            (
                "lost",
                format!(
                    "{} missed, {} errors, {} no mbuf",
                    nic.imissed, nic.ierrors, nic.rx_nombuf
                ),
            ),
        ]));
        let rows: Vec<Vec<String>> = nic
            .queues
            .iter()
            .map(|q| {
                vec![
                    q.queue.to_string(),
                    q.packets.to_string(),
                    bytes(q.bytes),
                    q.errors.to_string(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&table(&["QUEUE", "PACKETS", "BYTES", "ERRORS"], &rows));
        }
    }
    out
}

pub fn drain(d: &DrainStatus) -> String {
    if d.draining {
        format!(
            "draining: new calls are refused; {} call(s) still in progress\n",
            d.active_calls
        )
    } else {
        format!(
            "accepting new calls; {} call(s) in progress\n",
            d.active_calls
        )
    }
}

pub fn reload(r: &ReloadResult) -> String {
    let mut out = format!(
        "{}: {}\n",
        if r.applied { "applied" } else { "not applied" },
        r.message
    );
    if !r.needs_restart.is_empty() {
        let _ = writeln!(
            out,
            "changed but needing a restart: {}",
            r.needs_restart.join(", ")
        );
    }
    out
}

pub fn recordings(list: &[RecordingSummary]) -> String {
    if list.is_empty() {
        return "no recordings\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                r.started_at.clone(),
                r.recording_id.clone(),
                r.source.clone(),
                duration(r.duration_seconds),
                r.tracks.to_string(),
                yes_no(r.complete).to_string(),
                call_ref(&r.call_id, &r.cisco_guid, &r.x_refci),
            ]
        })
        .collect();
    table(
        &[
            "STARTED",
            "RECORDING_ID",
            "SOURCE",
            "DURATION",
            "TRACKS",
            "COMPLETE",
            "CALL",
        ],
        &rows,
    )
}

/// A `meta.json`, summarized; the whole file is `--json`.
pub fn recording(m: &CallMeta) -> String {
    let mut pairs = vec![
        ("recording_id", m.recording_id.clone()),
        ("source", m.source.clone()),
        ("started", m.started_at.clone()),
        ("ended", opt(&m.ended_at)),
        ("complete", yes_no(m.complete).to_string()),
    ];
    for (k, v) in [
        ("call_id", &m.call.sip_call_id),
        ("cisco_guid", &m.call.cisco_guid),
        ("x_refci", &m.call.x_refci),
        ("siprec_session", &m.call.siprec_session_id),
    ] {
        if let Some(v) = v {
            pairs.push((k, v.clone()));
        }
    }
    let mut out = fields(&pairs);
    out.push('\n');
    let rows: Vec<Vec<String>> = m
        .tracks
        .iter()
        .map(|t| {
            vec![
                t.index.to_string(),
                opt(&t.label),
                t.codec.clone(),
                duration(t.duration_seconds),
                t.packets.to_string(),
                t.lost.to_string(),
                t.file.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "TRACK", "LABEL", "CODEC", "DURATION", "PACKETS", "LOST", "FILE",
        ],
        &rows,
    ));
    if !m.errors.is_empty() {
        out.push('\n');
        for e in &m.errors {
            let _ = writeln!(out, "error: {e}");
        }
    }
    out
}

/// One event on one line: time, kind, ids, then the event's own fields.
pub fn event(e: &CallEvent) -> String {
    let mut line = format!("{}  {}", e.at, e.event);
    if let Some(id) = &e.recording_id {
        let _ = write!(line, "  {id}");
    }
    if let Some(c) = &e.call_id {
        let _ = write!(line, "  call_id={c}");
    }
    for (k, v) in &e.data {
        match v {
            serde_json::Value::String(s) => {
                let _ = write!(line, "  {k}={s}");
            }
            other => {
                let _ = write!(line, "  {k}={other}");
            }
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::api::{TrackInfo, WorkerStatsView};

    #[test]
    fn tables_align_without_trailing_space() {
        let t = table(
            &["ID", "NAME", "X"],
            &[
                vec!["1".into(), "alpha".into(), "".into()],
                vec!["22".into(), "é".into(), "y".into()],
            ],
        );
        assert_eq!(t, "ID  NAME   X\n1   alpha\n22  é      y\n");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(duration(0.0), "0:00");
        assert_eq!(duration(65.4), "1:05");
        assert_eq!(duration(3725.0), "1:02:05");
        assert_eq!(duration(f64::NAN), "0:00");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn calls_table_uses_best_id() {
        let out = calls(&[CallSummary {
            recording_id: "r1".into(),
            source: "cucm".into(),
            x_refci: Some("17".into()),
            state: "paused".into(),
            duration_seconds: 61.0,
            tracks: 2,
            peer: "10.0.0.1:5060".into(),
            ..CallSummary::default()
        }]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("RECORDING_ID  SOURCE  STATE"));
        assert!(
            lines[1].starts_with("r1            cucm    paused  1:01"),
            "{out}"
        );
        assert!(lines[1].ends_with("10.0.0.1:5060  17"), "{out}");
        assert_eq!(calls(&[]), "no calls in progress\n");
    }

    #[test]
    fn call_detail_lists_tracks_and_tags() {
        let mut d = CallDetail {
            summary: CallSummary {
                recording_id: "r1".into(),
                call_id: Some("abc@host".into()),
                ..CallSummary::default()
            },
            track_list: vec![TrackInfo {
                index: 0,
                label: Some("caller".into()),
                codecs: vec!["PCMU".into(), "PCMA".into()],
                file: "track-0.wav".into(),
                ..TrackInfo::default()
            }],
            ..CallDetail::default()
        };
        d.tags.insert("queue".into(), "billing".into());
        let out = call_detail(&d);
        assert!(out.contains("call_id:"), "{out}");
        assert!(out.contains("abc@host"));
        assert!(
            out.contains("0      caller  -      PCMU,PCMA  track-0.wav"),
            "{out}"
        );
        assert!(out.contains("queue  billing"), "{out}");
        assert!(!out.contains("INTERVAL"));
    }

    #[test]
    fn stats_sum_drops_and_name_them() {
        let mut w = WorkerStatsView {
            worker: 0,
            rx_packets: 10,
            ..WorkerStatsView::default()
        };
        w.drops.insert("unknown_port".into(), 3);
        w.drops.insert("too_short".into(), 0);
        let out = stats(&Stats {
            workers: vec![w],
            ..Stats::default()
        });
        assert!(out.contains("3 (unknown_port=3)"), "{out}");
        assert!(!out.contains("too_short"));
    }

    #[test]
    fn events_are_one_line() {
        let mut data = serde_json::Map::new();
        data.insert("complete".into(), true.into());
        data.insert("dir".into(), "/rec/x".into());
        let line = event(&CallEvent {
            seq: 4,
            at: "2024-05-01T08:00:00Z".into(),
            event: "call_ended".into(),
            recording_id: Some("r1".into()),
            call_id: Some("c1".into()),
            data,
        });
        assert_eq!(
            line,
            "2024-05-01T08:00:00Z  call_ended  r1  call_id=c1  complete=true  dir=/rec/x"
        );
    }
}
