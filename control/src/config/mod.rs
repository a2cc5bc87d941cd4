//! The configuration of `mediafork run`: `mediafork.toml`, command-line
//! overrides, and checks.
//!
//! The server runs with no file at all ([`Config::default`]); a file only
//! states what differs. Everything is checked before anything starts, and
//! every error names the file, the line and the key (`sip.tls.cert`), says
//! what is wrong and what to write instead: an appliance is configured by
//! people reading logs, not by people reading this code.
//!
//! `docs/mediafork.toml` documents every key; `docs/configuration.md` is the
//! reference. A test keeps both in step with the structs here.
//!
//! Relative paths (`recordings.dir`, TLS files) are relative to the working
//! directory of the process, like the default `./recordings`.

mod duration;
mod error;
mod net;
mod sections;
mod validate;
mod value;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mediafork_dataplane::config::{DataplaneConfig, PortRange};
use mediafork_dataplane::recording::sealed::{PublicKey, Recipient};
use serde::{Deserialize, Serialize};

pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, Problem};
pub use net::{IpNet, IpNetError, MediaAddr};
pub use sections::{
    AdminConfig, Backend, CallAssignment, DpdkConfig, EncryptionConfig, LimitsConfig, LogConfig,
    LogFormat, MediaConfig, MetricsConfig, OptionsResponse, RecordingMode, RecordingsConfig,
    ShutdownConfig, SipConfig, SourcePolicyConfig, TlsConfig, Transport, DEFAULT_METRICS_LISTEN,
    DEFAULT_USER_AGENT,
};
pub use validate::MIN_SE_FLOOR;

/// Keys (or whole sections) a running server re-reads on SIGHUP; a change
/// to any other key needs a restart, because it sizes tables, binds sockets
/// or starts threads. See [`Config::changes_needing_restart`].
pub const RELOADABLE_KEYS: &[&str] = &[
    "sip.allowed_sources",
    "sip.flood_rate",
    "sip.flood_burst",
    "log.level",
    "recordings.pcap",
    "limits",
];

/// Origin named in errors found after command-line overrides.
const OVERRIDES_ORIGIN: &str = "configuration with command-line overrides";

/// The whole configuration. Each section is a table of `mediafork.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub media: MediaConfig,
    pub recordings: RecordingsConfig,
    pub limits: LimitsConfig,
    pub shutdown: ShutdownConfig,
    pub metrics: MetricsConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub dpdk: DpdkConfig,
    pub storage: crate::storage::StorageConfig,
    pub retention: crate::storage::RetentionConfig,
    pub encryption: EncryptionConfig,
}

/// Values given on the command line; they win over the file. `None` (or an
/// empty `sip_listen`) leaves the file's value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces `sip.listen` when not empty.
    pub sip_listen: Vec<SocketAddr>,
    /// Sets `media.address`.
    pub media_addr: Option<IpAddr>,
    /// Sets `media.rtp_ports`.
    pub rtp_ports: Option<PortRange>,
    /// Sets `recordings.dir`.
    pub recordings: Option<PathBuf>,
    /// Sets `metrics.listen` (and so turns metrics on).
    pub metrics_listen: Option<SocketAddr>,
    /// Sets `admin.listen`.
    pub admin_listen: Option<SocketAddr>,
    /// Sets `media.backend`.
    pub backend: Option<Backend>,
    /// Sets `media.workers`.
    pub workers: Option<usize>,
}

impl Config {
    /// Reads, parses and checks the file at `path`. Errors name the path.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and checks `text`; `origin` (the file name) starts every error
    /// message. An empty text is the default configuration.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config = parse_unvalidated(text, origin)?;
        let mut problems = validate::check(&config, &validate::Host::detect());
        if problems.is_empty() {
            return Ok(config);
        }
        if let Some(index) = error::KeyIndex::build(text) {
            for p in &mut problems {
                p.line = index.line_of(text, &p.key);
            }
        }
        Err(ConfigError::Invalid {
            origin: origin.to_string(),
            problems,
        })
    }

    /// Checks a configuration built or changed in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_as("configuration")
    }

    fn validate_as(&self, origin: &str) -> Result<(), ConfigError> {
        let problems = validate::check(self, &validate::Host::detect());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                origin: origin.to_string(),
                problems,
            })
        }
    }

    /// Settings that work but are likely mistakes (no SIP ACL, metrics open
    /// to the network, more calls allowed than ports can carry). The caller
    /// logs them at start-up; they never stop the server.
    pub fn warnings(&self) -> Vec<Problem> {
        validate::warnings(self)
    }

    /// Applies command-line overrides, then checks the result. On error the
    /// configuration is left as it was, so a caller never runs with half
    /// of the overrides.
    pub fn apply(&mut self, o: Overrides) -> Result<(), ConfigError> {
        let mut next = self.clone();
        if !o.sip_listen.is_empty() {
            next.sip.listen = o.sip_listen;
        }
        if let Some(ip) = o.media_addr {
            next.media.address = MediaAddr::Ip(ip);
        }
        if let Some(r) = o.rtp_ports {
            next.media.rtp_ports = r;
        }
        if let Some(dir) = o.recordings {
            next.recordings.dir = dir;
        }
        if let Some(a) = o.metrics_listen {
            next.metrics.listen = Some(a);
        }
        if let Some(a) = o.admin_listen {
            next.admin.listen = a;
        }
        if let Some(b) = o.backend {
            next.media.backend = b;
        }
        if let Some(n) = o.workers {
            next.media.workers = n;
        }
        next.validate_as(OVERRIDES_ORIGIN)?;
        *self = next;
        Ok(())
    }

    /// The data plane's settings. `max_addresses` and `max_shared_streams`
    /// keep the data plane's defaults; workers spin without sleeping on the
    /// DPDK backend (a dedicated core) and nap when idle on sockets (a
    /// shared host).
    ///
    /// Tests only: it panics where [`Config::try_dataplane`] returns the
    /// error (an `[encryption]` key that can no longer be read).
    #[cfg(test)]
    pub(crate) fn dataplane(&self) -> DataplaneConfig {
        match self.try_dataplane() {
            Ok(dp) => dp,
            Err(e) => panic!("{e}"),
        }
    }

    /// The data plane's settings, with the `[encryption]` key read (again) from
    /// its file.
    pub fn try_dataplane(&self) -> Result<DataplaneConfig, ConfigError> {
        let encryption = self
            .encryption
            .recipient()
            .map_err(|problem| ConfigError::Invalid {
                origin: "configuration".to_string(),
                problems: vec![problem],
            })?;
        Ok(DataplaneConfig {
            encryption,
            ..self.dataplane_plain()
        })
    }

    fn dataplane_plain(&self) -> DataplaneConfig {
        let defaults = DataplaneConfig::default();
        DataplaneConfig {
            port_range: self.media.rtp_ports,
            recordings_dir: self.recordings.dir.clone(),
            date_partitions: self.recordings.date_partitions,
            workers: self.media.workers,
            worker_cores: self.media.worker_cores.clone(),
            writers: self.media.writers,
            max_tracks: self.media.max_tracks,
            ring_bytes: self.media.ring_bytes,
            reorder_window: self.media.reorder_window,
            max_gap: self.media.max_gap,
            flush_interval: self.recordings.flush_interval,
            write_pcap: self.recordings.pcap,
            idle_sleep: match self.media.backend {
                Backend::Dpdk => Duration::ZERO,
                Backend::Socket => defaults.idle_sleep,
            },
            ..defaults
        }
    }

    /// The configuration as TOML (for `mediafork config check`): every key,
    /// defaults included; [`Config::from_toml_str`] reads it back to an
    /// equal `Config`. Secrets are included: show [`Config::redacted`]
    /// instead where others may read the output.
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Serialize(e.to_string()))
    }

    /// A copy with secrets (`admin.token`) replaced by `"<redacted>"`, for
    /// display and logs.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        if c.admin.token.is_some() {
            c.admin.token = Some("<redacted>".to_string());
        }
        c
    }

    /// Keys whose value differs in `new` and that a SIGHUP cannot apply
    /// (see [`RELOADABLE_KEYS`]): the reload handler applies the rest and
    /// logs these as needing a restart. Sorted dotted paths.
    pub fn changes_needing_restart(&self, new: &Config) -> Result<Vec<String>, ConfigError> {
        let old = flatten(self)?;
        let new = flatten(new)?;
        let mut keys: Vec<String> = old
            .keys()
            .chain(new.keys())
            .filter(|k| old.get(*k) != new.get(*k))
            .filter(|k| !is_reloadable(k))
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

fn is_reloadable(key: &str) -> bool {
    RELOADABLE_KEYS.iter().any(|r| {
        key == *r
            || key
                .strip_prefix(r)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Parses without checking: the form of each value, not how they fit.
fn parse_unvalidated(text: &str, origin: &str) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|e| error::from_toml(&e, text, origin))
}

/// Every leaf key of `config` by dotted path.
fn flatten(
    config: &Config,
) -> Result<std::collections::BTreeMap<String, toml::Value>, ConfigError> {
    let table = toml::Table::try_from(config).map_err(|e| ConfigError::Serialize(e.to_string()))?;
    let mut out = std::collections::BTreeMap::new();
    flatten_into("", &table, &mut out);
    Ok(out)
}

fn flatten_into(
    prefix: &str,
    table: &toml::Table,
    out: &mut std::collections::BTreeMap<String, toml::Value>,
) {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten_into(&path, t, out),
            other => {
                out.insert(path, other.clone());
            }
        }
    }
}

/// A configuration with every optional key set, so that serializing it
/// shows every key there is.
fn fully_populated() -> Config {
    let mut c = Config::default();
    c.sip.tls.cert = Some(PathBuf::from("cert.pem"));
    c.sip.tls.key = Some(PathBuf::from("key.pem"));
    c.sip.tls.client_ca = Some(PathBuf::from("ca.pem"));
    c.limits.no_media_timeout = Some(Duration::from_secs(60));
    c.metrics.listen = Some(DEFAULT_METRICS_LISTEN);
    c.admin.token = Some("x".repeat(32));
    c.dpdk.port = Some("0000:3b:00.0".to_string());
    c.dpdk.rx_queues = Some(1);
    c.retention.max_age_days = Some(90);
    c.encryption.public_key = Some(PathBuf::from("tenant.pub"));
    c.encryption.key_id = Some("tenant-2024".to_string());
    c
}

/// Every key of the file format by dotted path (sections excluded): for
/// "did you mean" hints and for the test that the docs name every key.
pub(crate) fn known_keys() -> Vec<String> {
    flatten(&fully_populated())
        .map(|m| m.into_keys().collect())
        .unwrap_or_default()
}

impl EncryptionConfig {
    /// Whom the data plane seals recordings for: `None` when encryption is
    /// off. The key file is read here; errors name `encryption.public_key`.
    pub fn recipient(&self) -> Result<Option<Recipient>, Problem> {
        if !self.enabled {
            return Ok(None);
        }
        let problem = |message: String| Problem {
            key: "encryption.public_key".to_string(),
            line: None,
            message,
        };
        let Some(path) = &self.public_key else {
            return Err(problem(
                "is required with encryption.enabled = true: the PEM public key (X25519, or RSA of 2048 bits or more) recordings are sealed for".into(),
            ));
        };
        let public_key = PublicKey::load(path).map_err(|e| problem(e.to_string()))?;
        Ok(Some(Recipient {
            key_id: self
                .key_id
                .clone()
                .unwrap_or_else(|| public_key.fingerprint().to_string()),
            public_key,
            tenant: self.tenant.clone(),
        }))
    }
}
