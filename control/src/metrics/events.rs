//! Event-style metrics the slow path calls as things happen (SIP messages,
//! call setup and teardown, ended tracks, storage changes, retention).
//! Without an installed recorder every function here is a no-op.
//!
//! Label values are normalised so a misbehaving peer cannot grow the
//! number of series: unknown SIP methods become `other`, status codes
//! outside 100..=699 become `other`, and free-form reasons are cut to
//! lowercase `[a-z0-9_]`, at most 40 characters.

use metrics::{counter, gauge, histogram};

use super::names as n;

/// SIP methods that get their own label value; others are `other`.
const METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "UPDATE",
    "INFO",
    "PRACK",
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "PUBLISH",
];

/// Call sources that get their own label value; others are `other`.
const SOURCES: &[&str] = &["siprec", "cucm", "sip"];

/// Direction label values.
const RECEIVED: &str = "received";
const SENT: &str = "sent";

/// The `method` label value for `method` (case-insensitive).
pub fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("other")
}

/// The `source` label value for `source`.
pub fn source_label(source: &str) -> &'static str {
    SOURCES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(source))
        .copied()
        .unwrap_or("other")
}

/// A free-form reason as a label value: lowercase, `[a-z0-9_]` (anything
/// else becomes `_`), at most 40 characters, `unknown` when empty.
pub fn reason_label(reason: &str) -> String {
    let s: String = reason
        .chars()
        .take(40)
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

/// The `code` and `class` label values of a status code.
fn code_labels(code: u16) -> (String, &'static str) {
    const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];
    if (100..=699).contains(&code) {
        (code.to_string(), CLASSES[usize::from(code / 100 - 1)])
    } else {
        ("other".into(), "other")
    }
}

/// A SIP request received (from an SRC or CUCM), retransmissions included.
pub fn sip_request(method: &str) {
    counter!(n::SIP_REQUESTS, "method" => method_label(method), "direction" => RECEIVED)
        .increment(1);
}

/// A SIP response sent to a request of `method` (retransmissions
/// included).
pub fn sip_response(method: &str, code: u16) {
    response(method, code, SENT);
}

/// A SIP message dropped before the transaction layer (`acl`,
/// `rate_limited`, `unparseable`, `unframeable`, `oversized`,
/// `tls_handshake`).
pub fn sip_dropped(reason: &'static str) {
    counter!(n::SIP_DROPPED, "reason" => reason).increment(1);
}

/// A SIP request mediafork sent (BYE at session expiry, refreshing UPDATE).
pub fn sip_request_sent(method: &str) {
    counter!(n::SIP_REQUESTS, "method" => method_label(method), "direction" => SENT).increment(1);
}

/// A SIP response received to a request mediafork sent.
pub fn sip_response_received(method: &str, code: u16) {
    response(method, code, RECEIVED);
}

fn response(method: &str, code: u16, direction: &'static str) {
    let (code, class) = code_labels(code);
    counter!(
        n::SIP_RESPONSES,
        "method" => method_label(method),
        "code" => code,
        "class" => class,
        "direction" => direction
    )
    .increment(1);
}

/// A call's recording started; `source` is `siprec`, `cucm` or `sip`.
pub fn call_started(source: &str) {
    counter!(n::CALLS_STARTED, "source" => source_label(source)).increment(1);
}

/// A call's recording ended (`reason`: `bye`, `cancel`,
/// `session_expired`, `shutdown`, ...).
pub fn call_ended(source: &str, reason: &str) {
    counter!(n::CALLS_ENDED, "source" => source_label(source), "reason" => reason_label(reason))
        .increment(1);
}

/// A call was refused or failed at setup (`reason`: `no_ports`,
/// `draining`, `storage_critical`, `source_limit`, `bad_sdp`, ...).
pub fn call_failed(source: &str, reason: &str) {
    counter!(n::CALLS_FAILED, "source" => source_label(source), "reason" => reason_label(reason))
        .increment(1);
}

/// A track ended: its final jitter (seconds) goes into the jitter
/// histogram, its loss, duplicate, reorder and late counts into the
/// `mediafork_rtp_*_packets_total` counters.
pub fn track_ended(jitter_seconds: f64, lost: u64, duplicates: u64, reordered: u64, late: u64) {
    counter!(n::TRACKS_ENDED).increment(1);
    if jitter_seconds.is_finite() && jitter_seconds >= 0.0 {
        histogram!(n::RTP_JITTER_SECONDS).record(jitter_seconds);
    }
    counter!(n::RTP_LOST_PACKETS).increment(lost);
    counter!(n::RTP_DUPLICATE_PACKETS).increment(duplicates);
    counter!(n::RTP_REORDERED_PACKETS).increment(reordered);
    counter!(n::RTP_LATE_PACKETS).increment(late);
}

/// Feed the writer-latency histogram from an hdrhistogram of
/// **nanoseconds** sampled on the data plane. Pass only the samples since
/// the previous call (take the histogram and reset it), or they are
/// counted twice.
pub fn writer_latency(h: &hdrhistogram::Histogram<u64>) {
    let hist = histogram!(n::WRITER_LATENCY_SECONDS);
    for v in h.iter_recorded() {
        let ns = h.median_equivalent(v.value_iterated_to());
        let count = usize::try_from(v.count_at_value()).unwrap_or(usize::MAX);
        hist.record_many(ns as f64 / 1e9, count);
    }
}

/// The recordings volume entered `state` (`ok`, `warning`, `critical`).
/// Also sets `mediafork_storage_state`, so the gauge moves at once rather
/// than at the next [`super::publish`].
pub fn storage_transition(state: &str) {
    let level = super::StorageLevel::parse(state);
    let label = level.map(|l| l.name()).unwrap_or("other");
    counter!(n::STORAGE_TRANSITIONS, "state" => label).increment(1);
    if let Some(l) = level {
        gauge!(n::STORAGE_STATE).set(l as u8 as f64);
    }
}

/// Retention deleted `n` recordings.
pub fn recordings_deleted(count: u64) {
    counter!(n::RECORDINGS_DELETED).increment(count);
}

/// Set `mediafork_build_info{version, backend} 1`.
pub fn build_info(backend: &str) {
    let backend = match backend.split(':').next().unwrap_or("") {
        "socket" => "socket",
        "dpdk" => "dpdk",
        "" => "unknown",
        _ => "other",
    };
    gauge!(
        n::BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "backend" => backend
    )
    .set(1.0);
}
