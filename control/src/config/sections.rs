//! The sections of `mediafork.toml`, one struct each, with their defaults.
//!
//! Every section is optional and every key in it too: a missing key takes
//! the default written here, so the server runs with no file at all. Unknown
//! keys are errors (`deny_unknown_fields`): a misspelt key silently left at
//! its default is worse than a refusal to start.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use mediafork_dataplane::config::{DataplaneConfig, PortRange};
use serde::{Deserialize, Serialize};

use super::net::{IpNet, MediaAddr};

/// `[sip]`: where and how SIP (SIPREC, CUCM recording) is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Addresses to listen on, each with every transport in `transports`.
    #[serde(with = "super::value::list")]
    pub listen: Vec<SocketAddr>,
    /// Plain transports opened on each `listen` address. Empty leaves only
    /// TLS (which then must be configured).
    pub transports: Vec<Transport>,
    /// SIP over TLS; off unless a certificate and key are given.
    pub tls: TlsConfig,
    /// Our `Server`/`User-Agent` header.
    pub user_agent: String,
    /// Session interval asked for when the SRC supports session timers but
    /// offers no interval (RFC 4028).
    #[serde(with = "super::value::one")]
    pub session_expires_default: Duration,
    /// Smallest session interval accepted (RFC 4028 Min-SE); shorter ones
    /// get a 422 with this value.
    #[serde(with = "super::value::one")]
    pub min_se: Duration,
    /// Largest SIP message accepted, in bytes; bigger ones are refused
    /// (TCP) or dropped (UDP) before they are parsed.
    pub max_message_bytes: usize,
    /// Source addresses allowed to send SIP; empty allows any.
    pub allowed_sources: Vec<IpNet>,
    /// How OPTIONS pings are answered.
    pub options_response: OptionsResponse,
    /// Messages per second one source address may send on average; more
    /// are dropped at the transport (flood protection). 0 turns it off.
    pub flood_rate: u32,
    /// Messages one source may send at once after being quiet.
    pub flood_burst: u32,
}

/// The SIP user agent string: product and version, as RFC 3261 suggests.
pub const DEFAULT_USER_AGENT: &str = concat!("mediafork/", env!("CARGO_PKG_VERSION"));

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5060)],
            transports: vec![Transport::Udp, Transport::Tcp],
            tls: TlsConfig::default(),
            user_agent: DEFAULT_USER_AGENT.to_string(),
            session_expires_default: Duration::from_secs(1800),
            min_se: Duration::from_secs(90),
            // SIPREC INVITEs with multi-party metadata reach tens of KiB.
            max_message_bytes: 256 * 1024,
            allowed_sources: Vec::new(),
            options_response: OptionsResponse::LoadAware,
            // An SBC at 100 new calls/s sends about 400 messages/s (INVITE,
            // ACK, BYE, OPTIONS, re-INVITEs): room to spare, while a flood
            // of tens of thousands per second is cut.
            flood_rate: 1000,
            flood_burst: 2000,
        }
    }
}

impl SipConfig {
    /// Whether SIP from `ip` is accepted: `allowed_sources` is empty or one
    /// of its prefixes contains `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allowed_sources.is_empty() || self.allowed_sources.iter().any(|n| n.contains(ip))
    }
}

/// A plain SIP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// How OPTIONS requests (the SBCs' keep-alive pings) are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionsResponse {
    /// 200 normally; 503 while draining for shutdown or at capacity, so
    /// SBCs that ping (CUBE `options-ping`, Acme `ping-method`) move new
    /// recordings to another recorder.
    LoadAware,
    /// Always 200, for SBCs that treat a 503 to OPTIONS as the recorder
    /// being down for existing calls too.
    AlwaysOk,
}

/// `[sip.tls]`: SIP over TLS. On when both `cert` and `key` are set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the TLS listener.
    #[serde(with = "super::value::one")]
    pub listen: SocketAddr,
    /// PEM certificate chain, leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// PEM CA bundle to verify client certificates with (mutual TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5061),
            cert: None,
            key: None,
            client_ca: None,
        }
    }
}

impl TlsConfig {
    /// Whether TLS is on: both a certificate and a key are configured.
    pub fn enabled(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }
}

/// `[media]`: receiving RTP and the data plane's threads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Address media is received on and put in SDP answers.
    pub address: MediaAddr,
    /// UDP ports handed out for media.
    #[serde(with = "super::value::one")]
    pub rtp_ports: PortRange,
    /// How long a released port rests before another call gets it, so late
    /// packets of the old call are not recorded into the new one.
    #[serde(with = "super::value::one")]
    pub port_quarantine: Duration,
    /// How packets are received.
    pub backend: Backend,
    /// Worker threads (one packet source each).
    pub workers: usize,
    /// Cores to pin workers to, in order; empty leaves them unpinned.
    pub worker_cores: Vec<usize>,
    /// How calls are spread over workers (socket backend).
    pub call_assignment: CallAssignment,
    /// Writer threads.
    pub writers: usize,
    /// How long audio is held so reordered packets land in place.
    #[serde(with = "super::value::one")]
    pub reorder_window: Duration,
    /// A timestamp jump above this starts a new segment instead of silence.
    #[serde(with = "super::value::one")]
    pub max_gap: Duration,
    /// Most tracks alive at once (sizes per-worker tables).
    pub max_tracks: usize,
    /// Bytes in each worker → writer ring.
    pub ring_bytes: usize,
    /// `SO_RCVBUF` for each media socket (socket backend), in bytes.
    pub socket_rcvbuf: usize,
    /// Which source address each stream is recorded from.
    pub source_policy: SourcePolicyConfig,
}

impl Default for MediaConfig {
    fn default() -> Self {
        let dp = DataplaneConfig::default();
        MediaConfig {
            address: MediaAddr::Auto,
            rtp_ports: PortRange::DEFAULT,
            port_quarantine: Duration::from_secs(10),
            backend: Backend::Socket,
            workers: 1,
            worker_cores: Vec::new(),
            call_assignment: CallAssignment::LeastLoaded,
            writers: 1,
            reorder_window: dp.reorder_window,
            max_gap: dp.max_gap,
            max_tracks: dp.max_tracks,
            ring_bytes: dp.ring_bytes,
            socket_rcvbuf: 1 << 20,
            source_policy: SourcePolicyConfig::First,
        }
    }
}

/// `media.source_policy`: packets to a stream's port from any other source
/// address than this are dropped (`wrong_source`) and never recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourcePolicyConfig {
    /// The first source address that sends to the stream (any worker).
    First,
    /// The address in the SRC's SDP (`c=` of the m-line, else of the
    /// session); the first source when that is `0.0.0.0` or `::`.
    Sdp,
    /// No lock: record from any source.
    Any,
}

/// How media packets reach the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Kernel UDP sockets: runs anywhere, no special set-up.
    #[default]
    Socket,
    /// DPDK poll-mode driver on a dedicated NIC (see `[dpdk]`).
    Dpdk,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Socket => "socket",
            Backend::Dpdk => "dpdk",
        })
    }
}

/// For a `--backend` flag.
impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "socket" => Ok(Backend::Socket),
            "dpdk" => Ok(Backend::Dpdk),
            _ => Err(format!(
                "\"{s}\" is not a media backend: use \"socket\" or \"dpdk\""
            )),
        }
    }
}

/// How a new call's sockets are assigned to a worker. With DPDK the NIC's
/// RSS hash decides instead, and this is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallAssignment {
    /// Each worker in turn.
    RoundRobin,
    /// The worker with the fewest live tracks: calls differ in length, so
    /// turns alone drift out of balance over a day.
    LeastLoaded,
}

/// `[recordings]`: where and how recordings are written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingsConfig {
    /// Directory recordings go under (created if missing).
    pub dir: PathBuf,
    /// Put recordings under `YYYY/MM/DD/` by their start date.
    pub date_partitions: bool,
    /// Also write `call.pcap` with every packet of the call.
    pub pcap: bool,
    /// How often audio is pushed to disk and WAV headers rewritten; bounds
    /// what a crash can lose.
    #[serde(with = "super::value::one")]
    pub flush_interval: Duration,
    /// Whether calls are stored from their start or only after a `start`
    /// recording control (selective recording driven by CTI).
    pub mode: RecordingMode,
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        RecordingsConfig {
            dir: PathBuf::from("./recordings"),
            date_partitions: true,
            pcap: false,
            flush_interval: Duration::from_secs(1),
            mode: RecordingMode::Always,
        }
    }
}

/// `recordings.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMode {
    /// Every call is stored from its first packet (compliance recording).
    #[default]
    Always,
    /// Calls are set up and received, but audio is stored only between a
    /// `start` and a `stop` control.
    OnDemand,
}

/// `[encryption]`: encryption at rest (`docs/encryption.md`). Off by
/// default; when on, every recording is sealed under a fresh data key
/// wrapped for `public_key`, and only the private key opens it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Seal recordings.
    pub enabled: bool,
    /// PEM public key (X25519, or RSA of 2048 bits or more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PathBuf>,
    /// Names the key in headers and `meta.json`; default: the key's
    /// fingerprint (`sha256:...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Whose recordings these are: recorded next to the key id, so a
    /// multi-tenant archive knows whose private key to fetch.
    pub tenant: String,
}

/// `encryption.tenant` when not set.
pub const DEFAULT_TENANT: &str = "default";

impl Default for EncryptionConfig {
    fn default() -> Self {
        EncryptionConfig {
            enabled: false,
            public_key: None,
            key_id: None,
            tenant: DEFAULT_TENANT.to_string(),
        }
    }
}

/// `[limits]`: admission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most recordings at once; more INVITEs get 503.
    pub max_calls: usize,
    /// Most recordings at once started by one SIP source address; more
    /// INVITEs from it get 503. 0: no per-source limit (an SBC sends all
    /// its calls from one address).
    pub max_calls_per_source: usize,
    /// End a recording whose media stopped this long ago; absent: never.
    #[serde(
        default,
        with = "super::value::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub no_media_timeout: Option<Duration>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            // Two streams of RTP+RTCP per call: the default 4,001 ports
            // carry 1,000 calls.
            max_calls: 1000,
            max_calls_per_source: 0,
            no_media_timeout: None,
        }
    }
}

/// `[shutdown]`: stopping on SIGTERM/SIGINT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long live calls may go on after new ones are refused; then the
    /// rest are ended and their recordings closed.
    #[serde(with = "super::value::one")]
    pub grace_period: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace_period: Duration::from_secs(30),
        }
    }
}

/// The conventional Prometheus exporter address, for documentation and
/// flags; metrics are off unless `metrics.listen` is set.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);

/// `[metrics]`: the Prometheus endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address serving `/metrics`; absent: no metrics endpoint.
    #[serde(
        default,
        with = "super::value::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub listen: Option<SocketAddr>,
}

/// `[admin]`: the local admin API (status, drain, reload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin API.
    #[serde(with = "super::value::one")]
    pub listen: SocketAddr,
    /// Bearer token the API requires; mandatory off loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8960),
            token: None,
        }
    }
}

/// `[log]`: logging on stderr.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// Level, optionally with per-module overrides (`MEDIAFORK_LOG` wins).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// For people and journald.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[dpdk]`: the DPDK backend; checked only with `media.backend = "dpdk"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpdkConfig {
    /// EAL options, without a program name.
    pub eal_args: Vec<String>,
    /// The NIC: a PCI address (`0000:3b:00.0`), a port id, or a vdev name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Receive queues; absent: one per worker (the only layout supported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_queues: Option<u16>,
    /// Packet buffers in the pool.
    pub mempool_mbufs: u32,
    /// Per-core cache of the pool.
    pub mempool_cache: u32,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            eal_args: Vec::new(),
            port: None,
            rx_queues: None,
            // 2^n - 1 sizes DPDK's ring best; 16k buffers cover 1024
            // descriptors on up to ~12 queues with their caches.
            mempool_mbufs: 16_383,
            mempool_cache: 256,
        }
    }
}
