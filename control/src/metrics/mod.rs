//! Prometheus metrics.
//!
//! The data plane's hot path never touches the `metrics` crate: workers
//! and writers count in plain integers, and the control plane copies them
//! into a [`Snapshot`] and calls [`publish`] about once a second. The slow
//! path (SIP, call setup, retention) calls the event functions
//! ([`sip_request`], [`call_started`], [`track_ended`], ...) directly.
//! Without an installed recorder ([`install`]) all of them are no-ops, so
//! tests of other modules are unaffected.
//!
//! `monitoring/grafana/mediafork-dashboard.json` and
//! `monitoring/prometheus/alerts.yml` use these names; a test here fails
//! when they name a metric that is not in the table below.
//!
//! | name | type | labels | source |
//! |---|---|---|---|
//! | `mediafork_build_info` | gauge (=1) | `version`, `backend` | [`build_info`], [`publish`] |
//! | `mediafork_start_time_seconds` | gauge | | [`install`] |
//! | `mediafork_rx_packets_total` | counter | `worker` | [`publish`] |
//! | `mediafork_rx_bytes_total` | counter | `worker` | [`publish`] |
//! | `mediafork_recorded_packets_total` | counter | `worker` | [`publish`] |
//! | `mediafork_rtcp_packets_total` | counter | `worker` | [`publish`] |
//! | `mediafork_dropped_packets_total` | counter | `worker` (or `nic`), `reason` | [`publish`] |
//! | `mediafork_ring_used_bytes` | gauge | `worker`, `writer` | [`publish`] |
//! | `mediafork_ring_capacity_bytes` | gauge | `worker`, `writer` | [`publish`] |
//! | `mediafork_writer_records_total` | counter | `writer` | [`publish`] |
//! | `mediafork_writer_written_bytes_total` | counter | `writer` | [`publish`] |
//! | `mediafork_writer_io_errors_total` | counter | `writer` | [`publish`] |
//! | `mediafork_writer_open_calls` | gauge | `writer` | [`publish`] |
//! | `mediafork_writer_latency_seconds` | histogram | | [`writer_latency`] |
//! | `mediafork_nic_rx_packets_total` | counter | `port` | [`publish`] (dpdk) |
//! | `mediafork_nic_rx_bytes_total` | counter | `port` | [`publish`] (dpdk) |
//! | `mediafork_nic_missed_packets_total` | counter | `port` | [`publish`] (dpdk) |
//! | `mediafork_nic_rx_errors_total` | counter | `port` | [`publish`] (dpdk) |
//! | `mediafork_nic_rx_no_mbuf_total` | counter | `port` | [`publish`] (dpdk) |
//! | `mediafork_nic_queue_rx_packets_total` | counter | `port`, `queue` | [`publish`] (dpdk) |
//! | `mediafork_nic_queue_rx_bytes_total` | counter | `port`, `queue` | [`publish`] (dpdk) |
//! | `mediafork_nic_queue_rx_errors_total` | counter | `port`, `queue` | [`publish`] (dpdk) |
//! | `mediafork_active_calls` | gauge | | [`publish`] |
//! | `mediafork_active_tracks` | gauge | | [`publish`] |
//! | `mediafork_active_dialogs` | gauge | | [`publish`] |
//! | `mediafork_draining` | gauge (0/1) | | [`publish`] |
//! | `mediafork_calls_started_total` | counter | `source` | [`call_started`] |
//! | `mediafork_calls_ended_total` | counter | `source`, `reason` | [`call_ended`] |
//! | `mediafork_calls_failed_total` | counter | `source`, `reason` | [`call_failed`] |
//! | `mediafork_sip_requests_total` | counter | `method`, `direction` | [`sip_request`], [`sip_request_sent`] |
//! | `mediafork_sip_responses_total` | counter | `method`, `code`, `class`, `direction` | [`sip_response`], [`sip_response_received`] |
//! | `mediafork_sip_dropped_messages_total` | counter | `reason` | [`sip_dropped`] |
//! | `mediafork_tracks_ended_total` | counter | | [`track_ended`] |
//! | `mediafork_rtp_jitter_seconds` | histogram | | [`track_ended`] |
//! | `mediafork_rtp_lost_packets_total` | counter | | [`track_ended`] |
//! | `mediafork_rtp_duplicate_packets_total` | counter | | [`track_ended`] |
//! | `mediafork_rtp_reordered_packets_total` | counter | | [`track_ended`] |
//! | `mediafork_rtp_late_packets_total` | counter | | [`track_ended`] |
//! | `mediafork_storage_free_bytes` | gauge | | [`publish`] |
//! | `mediafork_storage_size_bytes` | gauge | | [`publish`] |
//! | `mediafork_storage_state` | gauge (0 ok, 1 warning, 2 critical) | | [`publish`], [`storage_transition`] |
//! | `mediafork_storage_transitions_total` | counter | `state` | [`storage_transition`] |
//! | `mediafork_recordings_deleted_total` | counter | | [`recordings_deleted`] |
//! | `mediafork_port_pool_free` | gauge | | [`publish`] |
//! | `mediafork_port_pool_free_pairs` | gauge | | [`publish`] |
//! | `mediafork_port_pool_in_use` | gauge | | [`publish`] |
//! | `mediafork_port_pool_quarantined` | gauge | | [`publish`] |
//! | `mediafork_port_pool_size` | gauge | | [`publish`] |
//!
//! Drop `reason` values: the data plane's `DropReason` names (`malformed`,
//! `not_ip`, `not_udp`, `fragment`, `outside_range`, `not_rtp`,
//! `unknown_port`, `stale`, `late`, `duplicate`, `unsupported_codec`,
//! `ring_full`) on `worker="0"`.., and `nic_missed`, `nic_errors`,
//! `nic_no_mbuf` on `worker="nic"` (dpdk backend).
//!
//! Label values are bounded: SIP methods outside the usual set are
//! `other`, codes outside 100..=699 `other`, sources outside
//! siprec/cucm/sip `other`; no label ever names a call.

mod collect;
mod events;
mod exporter;
pub mod names;

#[cfg(test)]
mod tests;

pub use collect::{
    publish, PortPoolSnapshot, RingOccupancy, Snapshot, StorageLevel, StorageSnapshot,
    WorkerSnapshot, WriterSnapshot,
};
pub use events::{
    build_info, call_ended, call_failed, call_started, method_label, reason_label,
    recordings_deleted, sip_dropped, sip_request, sip_request_sent, sip_response,
    sip_response_received, source_label, storage_transition, track_ended, writer_latency,
};
pub use exporter::{builder, install, MetricsError, MetricsHandle};

/// Describe every metric of [`names::ALL`] (help text and unit) to the
/// installed recorder. [`install`] does this; tests that use a local
/// recorder call it themselves.
pub fn describe_all() {
    for d in names::ALL {
        match d.kind {
            names::Kind::Counter => metrics::describe_counter!(d.name, d.unit, d.help),
            names::Kind::Gauge => metrics::describe_gauge!(d.name, d.unit, d.help),
            names::Kind::Histogram => metrics::describe_histogram!(d.name, d.unit, d.help),
        }
    }
}
