//! Data plane settings. The control plane fills these from TOML and flags
//! and validates them before anything starts.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// An inclusive UDP port range (the recording range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

/// A bad port range, named for the operator.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortRangeError {
    #[error("port range {0}: expected LO-HI, e.g. 39500-43500")]
    Syntax(String),
    #[error("port range {lo}-{hi}: the low port is above the high port")]
    Inverted { lo: u16, hi: u16 },
    #[error("port range {lo}-{hi}: ports below 1024 are not allowed for media")]
    Privileged { lo: u16, hi: u16 },
}

impl PortRange {
    /// The default recording range.
    pub const DEFAULT: PortRange = PortRange {
        lo: 39500,
        hi: 43500,
    };

    pub fn new(lo: u16, hi: u16) -> Result<Self, PortRangeError> {
        if lo > hi {
            return Err(PortRangeError::Inverted { lo, hi });
        }
        if lo < 1024 {
            return Err(PortRangeError::Privileged { lo, hi });
        }
        Ok(PortRange { lo, hi })
    }

    /// Number of ports in the range.
    pub fn len(&self) -> usize {
        (self.hi - self.lo) as usize + 1
    }

    /// Never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Position of `port` in the range, if it is in it.
    #[inline]
    pub fn index(&self, port: u16) -> Option<usize> {
        port.checked_sub(self.lo)
            .filter(|&d| d <= self.hi - self.lo)
            .map(|d| d as usize)
    }

    pub fn contains(&self, port: u16) -> bool {
        self.index(port).is_some()
    }
}

impl std::str::FromStr for PortRange {
    type Err = PortRangeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lo, hi) = s
            .split_once('-')
            .ok_or_else(|| PortRangeError::Syntax(s.to_string()))?;
        let lo = lo
            .trim()
            .parse()
            .map_err(|_| PortRangeError::Syntax(s.to_string()))?;
        let hi = hi
            .trim()
            .parse()
            .map_err(|_| PortRangeError::Syntax(s.to_string()))?;
        PortRange::new(lo, hi)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.lo, self.hi)
    }
}

/// Everything the data plane needs to run.
#[derive(Clone, Debug)]
pub struct DataplaneConfig {
    /// UDP destination ports that carry recorded media.
    pub port_range: PortRange,
    /// Where recordings go.
    pub recordings_dir: PathBuf,
    /// Put recordings under `YYYY/MM/DD/` by their start date.
    pub date_partitions: bool,
    /// Worker threads (one packet source each).
    pub workers: usize,
    /// Cores to pin workers to, in order; empty = do not pin.
    pub worker_cores: Vec<usize>,
    /// Writer threads.
    pub writers: usize,
    /// Most tracks alive at once (sizes the per-worker state arrays).
    pub max_tracks: usize,
    /// Most media addresses (local IPs) media arrives on.
    pub max_addresses: usize,
    /// Most streams on SSRC-shared ports at once.
    pub max_shared_streams: usize,
    /// Bytes in each worker → writer ring.
    pub ring_bytes: usize,
    /// How long the writer holds audio to let reordered packets land in
    /// their place; packets later than this are counted late.
    pub reorder_window: Duration,
    /// A timestamp jump larger than this starts a new segment instead of
    /// being filled with silence; it also caps the silence inserted between
    /// segments.
    pub max_gap: Duration,
    /// How often writers push audio to disk and rewrite WAV headers, which
    /// bounds what a crash can lose.
    pub flush_interval: Duration,
    /// Also write `call.pcap` with every packet of the call.
    pub write_pcap: bool,
    /// How long an idle worker sleeps after a long run of empty polls
    /// (zero: spin, as a dedicated DPDK core should).
    pub idle_sleep: Duration,
    /// Seal every recording for this public key (`[encryption]`); `None`
    /// writes plain WAV, pcap and XML files.
    pub encryption: Option<crate::recording::sealed::Recipient>,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            port_range: PortRange::DEFAULT,
            recordings_dir: PathBuf::from("recordings"),
            date_partitions: true,
            workers: 1,
            worker_cores: Vec::new(),
            writers: 1,
            max_tracks: 16_384,
            max_addresses: 64,
            max_shared_streams: 16_384,
            ring_bytes: 4 << 20,
            reorder_window: Duration::from_millis(200),
            max_gap: Duration::from_secs(30),
            flush_interval: Duration::from_secs(1),
            write_pcap: false,
            idle_sleep: Duration::from_micros(50),
            encryption: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_index() {
        let r: PortRange = "39500-43500".parse().unwrap();
        assert_eq!(r.len(), 4001);
        assert_eq!(r.index(39500), Some(0));
        assert_eq!(r.index(43500), Some(4000));
        assert_eq!(r.index(43501), None);
        assert_eq!(r.index(39499), None);
        assert_eq!(r.index(0), None);
        assert!(matches!(
            "4000".parse::<PortRange>(),
            Err(PortRangeError::Syntax(_))
        ));
        assert!(matches!(
            "5-4".parse::<PortRange>(),
            Err(PortRangeError::Inverted { .. })
        ));
        assert!(matches!(
            "80-90".parse::<PortRange>(),
            Err(PortRangeError::Privileged { .. })
        ));
        let full = PortRange::new(1024, 65535).unwrap();
        assert_eq!(full.index(65535), Some(64511));
    }
}
