//! Every metric mediafork exports: its name, type, unit, labels and help
//! text, in one table. [`super::describe_all`] describes them from
//! [`ALL`], the dashboard and alert tests check their expressions against
//! it, and the module documentation (`super`) lists it for people.
//!
//! Conventions (<https://prometheus.io/docs/practices/naming/>):
//! - every name starts with `mediafork_`;
//! - counters end in `_total`, nothing else does;
//! - base units in the name: `_seconds`, `_bytes`;
//! - labels have bounded values: never a call id, SSRC or peer address.

use metrics::Unit;

/// Prometheus metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// The type as the exposition's `# TYPE` line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family.
#[derive(Clone, Copy, Debug)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    /// Label names every series of the family carries.
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

// --- build ---------------------------------------------------------------
pub const BUILD_INFO: &str = "mediafork_build_info";
pub const START_TIME_SECONDS: &str = "mediafork_start_time_seconds";

// --- data plane: workers -------------------------------------------------
pub const RX_PACKETS: &str = "mediafork_rx_packets_total";
pub const RX_BYTES: &str = "mediafork_rx_bytes_total";
pub const RECORDED_PACKETS: &str = "mediafork_recorded_packets_total";
pub const RTCP_PACKETS: &str = "mediafork_rtcp_packets_total";
pub const DROPPED_PACKETS: &str = "mediafork_dropped_packets_total";

// --- data plane: rings and writers ---------------------------------------
pub const RING_USED_BYTES: &str = "mediafork_ring_used_bytes";
pub const RING_CAPACITY_BYTES: &str = "mediafork_ring_capacity_bytes";
pub const WRITER_RECORDS: &str = "mediafork_writer_records_total";
pub const WRITER_WRITTEN_BYTES: &str = "mediafork_writer_written_bytes_total";
pub const WRITER_IO_ERRORS: &str = "mediafork_writer_io_errors_total";
pub const WRITER_OPEN_CALLS: &str = "mediafork_writer_open_calls";
pub const WRITER_LATENCY_SECONDS: &str = "mediafork_writer_latency_seconds";

// --- NIC (dpdk backend) --------------------------------------------------
pub const NIC_RX_PACKETS: &str = "mediafork_nic_rx_packets_total";
pub const NIC_RX_BYTES: &str = "mediafork_nic_rx_bytes_total";
pub const NIC_MISSED_PACKETS: &str = "mediafork_nic_missed_packets_total";
pub const NIC_RX_ERRORS: &str = "mediafork_nic_rx_errors_total";
pub const NIC_RX_NO_MBUF: &str = "mediafork_nic_rx_no_mbuf_total";
pub const NIC_QUEUE_RX_PACKETS: &str = "mediafork_nic_queue_rx_packets_total";
pub const NIC_QUEUE_RX_BYTES: &str = "mediafork_nic_queue_rx_bytes_total";
pub const NIC_QUEUE_RX_ERRORS: &str = "mediafork_nic_queue_rx_errors_total";

// --- calls ---------------------------------------------------------------
pub const ACTIVE_CALLS: &str = "mediafork_active_calls";
pub const ACTIVE_TRACKS: &str = "mediafork_active_tracks";
pub const ACTIVE_DIALOGS: &str = "mediafork_active_dialogs";
pub const DRAINING: &str = "mediafork_draining";
pub const CALLS_STARTED: &str = "mediafork_calls_started_total";
pub const CALLS_ENDED: &str = "mediafork_calls_ended_total";
pub const CALLS_FAILED: &str = "mediafork_calls_failed_total";

// --- SIP -----------------------------------------------------------------
pub const SIP_REQUESTS: &str = "mediafork_sip_requests_total";
pub const SIP_RESPONSES: &str = "mediafork_sip_responses_total";
pub const SIP_DROPPED: &str = "mediafork_sip_dropped_messages_total";

// --- RTP quality (per ended track) ---------------------------------------
pub const TRACKS_ENDED: &str = "mediafork_tracks_ended_total";
pub const RTP_JITTER_SECONDS: &str = "mediafork_rtp_jitter_seconds";
pub const RTP_LOST_PACKETS: &str = "mediafork_rtp_lost_packets_total";
pub const RTP_DUPLICATE_PACKETS: &str = "mediafork_rtp_duplicate_packets_total";
pub const RTP_REORDERED_PACKETS: &str = "mediafork_rtp_reordered_packets_total";
pub const RTP_LATE_PACKETS: &str = "mediafork_rtp_late_packets_total";

// --- storage and retention -----------------------------------------------
pub const STORAGE_FREE_BYTES: &str = "mediafork_storage_free_bytes";
pub const STORAGE_SIZE_BYTES: &str = "mediafork_storage_size_bytes";
pub const STORAGE_STATE: &str = "mediafork_storage_state";
pub const STORAGE_TRANSITIONS: &str = "mediafork_storage_transitions_total";
pub const RECORDINGS_DELETED: &str = "mediafork_recordings_deleted_total";

// --- media port pool -----------------------------------------------------
pub const PORT_POOL_FREE: &str = "mediafork_port_pool_free";
pub const PORT_POOL_FREE_PAIRS: &str = "mediafork_port_pool_free_pairs";
pub const PORT_POOL_IN_USE: &str = "mediafork_port_pool_in_use";
pub const PORT_POOL_QUARANTINED: &str = "mediafork_port_pool_quarantined";
pub const PORT_POOL_SIZE: &str = "mediafork_port_pool_size";

/// Histogram buckets of [`RTP_JITTER_SECONDS`] (upper bounds, seconds).
pub const JITTER_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5,
];

/// Histogram buckets of [`WRITER_LATENCY_SECONDS`] (upper bounds, seconds).
pub const WRITER_LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

const fn def(
    name: &'static str,
    kind: Kind,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        kind,
        unit,
        labels,
        help,
    }
}

use Kind::{Counter, Gauge, Histogram};
use Unit::{Bytes, Count, Seconds};

/// Every metric family, in exposition-documentation order.
pub const ALL: &[MetricDef] = &[
    def(
        BUILD_INFO,
        Gauge,
        Count,
        &["version", "backend"],
        "Always 1; the labels say which mediafork version runs and with which packet backend.",
    ),
    def(
        START_TIME_SECONDS,
        Gauge,
        Seconds,
        &[],
        "Unix time the metrics exporter was installed (process start).",
    ),
    def(
        RX_PACKETS,
        Counter,
        Count,
        &["worker"],
        "Packets a data-plane worker received.",
    ),
    def(
        RX_BYTES,
        Counter,
        Bytes,
        &["worker"],
        "Bytes (whole frames or datagrams) a data-plane worker received.",
    ),
    def(
        RECORDED_PACKETS,
        Counter,
        Count,
        &["worker"],
        "RTP packets whose audio a worker put on a ring to a writer.",
    ),
    def(
        RTCP_PACKETS,
        Counter,
        Count,
        &["worker"],
        "RTCP packets a worker received.",
    ),
    def(
        DROPPED_PACKETS,
        Counter,
        Count,
        &["worker", "reason"],
        "Packets not recorded, by reason. worker=\"nic\" holds the NIC's own drops \
         (nic_missed, nic_errors, nic_no_mbuf) on the dpdk backend.",
    ),
    def(
        RING_USED_BYTES,
        Gauge,
        Bytes,
        &["worker", "writer"],
        "Bytes waiting in the ring from a worker to a writer.",
    ),
    def(
        RING_CAPACITY_BYTES,
        Gauge,
        Bytes,
        &["worker", "writer"],
        "Capacity of the ring from a worker to a writer.",
    ),
    def(
        WRITER_RECORDS,
        Counter,
        Count,
        &["writer"],
        "Ring records (audio payloads and track reports) a writer consumed.",
    ),
    def(
        WRITER_WRITTEN_BYTES,
        Counter,
        Bytes,
        &["writer"],
        "Bytes a writer wrote to recording files.",
    ),
    def(
        WRITER_IO_ERRORS,
        Counter,
        Count,
        &["writer"],
        "File system errors a writer met (audio may be missing from a recording).",
    ),
    def(
        WRITER_OPEN_CALLS,
        Gauge,
        Count,
        &["writer"],
        "Calls whose files a writer has open.",
    ),
    def(
        WRITER_LATENCY_SECONDS,
        Histogram,
        Seconds,
        &[],
        "Time from a payload's arrival on a worker to its write by a writer.",
    ),
    def(
        NIC_RX_PACKETS,
        Counter,
        Count,
        &["port"],
        "Packets the NIC received (dpdk backend).",
    ),
    def(
        NIC_RX_BYTES,
        Counter,
        Bytes,
        &["port"],
        "Bytes the NIC received (dpdk backend).",
    ),
    def(
        NIC_MISSED_PACKETS,
        Counter,
        Count,
        &["port"],
        "Packets the NIC dropped for want of a free rx descriptor: the workers did not keep up (dpdk backend).",
    ),
    def(
        NIC_RX_ERRORS,
        Counter,
        Count,
        &["port"],
        "Erroneous packets the NIC received (dpdk backend).",
    ),
    def(
        NIC_RX_NO_MBUF,
        Counter,
        Count,
        &["port"],
        "Receive mbuf allocation failures: the mempool is too small (dpdk backend).",
    ),
    def(
        NIC_QUEUE_RX_PACKETS,
        Counter,
        Count,
        &["port", "queue"],
        "Packets received on one NIC rx queue (dpdk backend).",
    ),
    def(
        NIC_QUEUE_RX_BYTES,
        Counter,
        Bytes,
        &["port", "queue"],
        "Bytes received on one NIC rx queue (dpdk backend).",
    ),
    def(
        NIC_QUEUE_RX_ERRORS,
        Counter,
        Count,
        &["port", "queue"],
        "Errors on one NIC rx queue (dpdk backend).",
    ),
    def(
        ACTIVE_CALLS,
        Gauge,
        Count,
        &[],
        "Calls being recorded now.",
    ),
    def(
        ACTIVE_TRACKS,
        Gauge,
        Count,
        &[],
        "Tracks (media streams) being recorded now.",
    ),
    def(
        ACTIVE_DIALOGS,
        Gauge,
        Count,
        &[],
        "SIP dialogs open now.",
    ),
    def(
        DRAINING,
        Gauge,
        Count,
        &[],
        "1 while the server is draining (refusing new calls with 503), else 0.",
    ),
    def(
        CALLS_STARTED,
        Counter,
        Count,
        &["source"],
        "Calls whose recording started, by source (siprec, cucm, sip).",
    ),
    def(
        CALLS_ENDED,
        Counter,
        Count,
        &["source", "reason"],
        "Calls whose recording ended, by source and reason (bye, cancel, session_expired, no_media, shutdown, ...).",
    ),
    def(
        CALLS_FAILED,
        Counter,
        Count,
        &["source", "reason"],
        "Calls refused or failed at setup, by source and reason (no_ports, draining, storage_critical, source_limit, bad_sdp, ...).",
    ),
    def(
        SIP_REQUESTS,
        Counter,
        Count,
        &["method", "direction"],
        "SIP requests, by method; direction is received (from SRCs) or sent (BYE, UPDATE we originate).",
    ),
    def(
        SIP_RESPONSES,
        Counter,
        Count,
        &["method", "code", "class", "direction"],
        "SIP responses, by request method, status code and class (1xx..6xx); direction is sent or received.",
    ),
    def(
        SIP_DROPPED,
        Counter,
        Count,
        &["reason"],
        "SIP messages (or connections) dropped before the transaction layer: acl (source not allowed), rate_limited (flood from one source), unparseable (too broken to answer with a 400), unframeable or oversized (stream closed), tls_handshake (failed TLS handshake).",
    ),
    def(
        TRACKS_ENDED,
        Counter,
        Count,
        &[],
        "Tracks whose recording ended (each feeds the RTP quality metrics once).",
    ),
    def(
        RTP_JITTER_SECONDS,
        Histogram,
        Seconds,
        &[],
        "RFC 3550 interarrival jitter of each ended track, at its end.",
    ),
    def(
        RTP_LOST_PACKETS,
        Counter,
        Count,
        &[],
        "RTP packets never received (sequence gaps), summed over ended tracks.",
    ),
    def(
        RTP_DUPLICATE_PACKETS,
        Counter,
        Count,
        &[],
        "Duplicate RTP packets, summed over ended tracks.",
    ),
    def(
        RTP_REORDERED_PACKETS,
        Counter,
        Count,
        &[],
        "RTP packets received out of order, summed over ended tracks.",
    ),
    def(
        RTP_LATE_PACKETS,
        Counter,
        Count,
        &[],
        "RTP packets that arrived after their place was written out, summed over ended tracks.",
    ),
    def(
        STORAGE_FREE_BYTES,
        Gauge,
        Bytes,
        &[],
        "Bytes available to mediafork on the recordings volume.",
    ),
    def(
        STORAGE_SIZE_BYTES,
        Gauge,
        Bytes,
        &[],
        "Size of the recordings volume.",
    ),
    def(
        STORAGE_STATE,
        Gauge,
        Count,
        &[],
        "Recordings volume state: 0 ok, 1 warning (free space low), 2 critical (new calls refused).",
    ),
    def(
        STORAGE_TRANSITIONS,
        Counter,
        Count,
        &["state"],
        "Changes of the recordings volume state, by the state entered.",
    ),
    def(
        RECORDINGS_DELETED,
        Counter,
        Count,
        &[],
        "Recordings deleted by the retention policy.",
    ),
    def(
        PORT_POOL_FREE,
        Gauge,
        Count,
        &[],
        "Media ports free to allocate.",
    ),
    def(
        PORT_POOL_FREE_PAIRS,
        Gauge,
        Count,
        &[],
        "RTP/RTCP port pairs free to allocate.",
    ),
    def(
        PORT_POOL_IN_USE,
        Gauge,
        Count,
        &[],
        "Media ports allocated to calls.",
    ),
    def(
        PORT_POOL_QUARANTINED,
        Gauge,
        Count,
        &[],
        "Media ports released and waiting out their quarantine.",
    ),
    def(
        PORT_POOL_SIZE,
        Gauge,
        Count,
        &[],
        "Media ports in the configured range.",
    ),
];

/// The definition of `name`, if mediafork exports it.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    ALL.iter().find(|d| d.name == name)
}

/// The family a sample name belongs to: `name` itself, or for histograms
/// the family of a `_bucket`, `_sum` or `_count` series.
pub fn family_of(sample: &str) -> Option<&'static MetricDef> {
    if let Some(d) = find(sample) {
        return Some(d);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = sample.strip_suffix(suffix)?;
        find(base).filter(|d| d.kind == Kind::Histogram)
    })
}
