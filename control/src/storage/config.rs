//! `[storage]` and `[retention]`: when the recordings volume counts as
//! nearly full, and how long closed recordings are kept.
//!
//! Every threshold is "off" at 0, so one rule covers all four and an
//! operator never needs a second key to disable one.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::config::{format_duration, parse_duration};

/// `[storage]`: thresholds on the free space of the recordings volume.
///
/// Free space is what an unprivileged process may still write (`f_bavail`):
/// the blocks ext4 reserves for root are no use to the recorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Below this share of the volume free, storage is in `warning`.
    pub warn_free_percent: Percent,
    /// Below this share free, storage is `critical`: new calls are refused.
    pub critical_free_percent: Percent,
    /// Below this many bytes free, storage is in `warning`; 0: off.
    pub warn_free_bytes: ByteSize,
    /// Below this many bytes free, storage is `critical`; 0: off.
    pub critical_free_bytes: ByteSize,
    /// How often free space is measured.
    #[serde(with = "duration_text")]
    pub check_interval: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            warn_free_percent: Percent(15.0),
            critical_free_percent: Percent(5.0),
            warn_free_bytes: ByteSize(0),
            // A floor for small volumes, where 5 % is only a few minutes of
            // recording: 1,000 G.711 calls write about 32 MB/s.
            critical_free_bytes: ByteSize(GIB),
            check_interval: Duration::from_secs(5),
        }
    }
}

/// Shortest `storage.check_interval`: `statvfs` is cheap, but sub-second
/// checks buy nothing at the rates recordings fill a disk.
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `storage.check_interval`: 1,000 calls write ~10 GB in 5 minutes,
/// so a slower check could let the volume fill between two looks.
pub const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(300);
/// Shortest `retention.sweep_interval`: each sweep walks the recordings tree.
pub const MIN_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Longest `retention.sweep_interval`.
pub const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(24 * 3600);

impl StorageConfig {
    /// Problems with the values, as `(key, message)` pairs in file order;
    /// keys are dotted (`storage.critical_free_percent`).
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut p = Vec::new();
        let mut add = |key: &str, msg: String| p.push((format!("storage.{key}"), msg));
        for (key, v) in [
            ("warn_free_percent", self.warn_free_percent),
            ("critical_free_percent", self.critical_free_percent),
        ] {
            if let Err(e) = Percent::check(v.get()) {
                add(key, e);
            }
        }
        let (warn, crit) = (
            self.warn_free_percent.get(),
            self.critical_free_percent.get(),
        );
        if warn > 0.0 && crit >= warn {
            add(
                "critical_free_percent",
                format!(
                    "{crit} is not below warn_free_percent ({warn}): the critical threshold must be the lower one (or set warn_free_percent = 0 to have no warning stage)"
                ),
            );
        }
        let (warn, crit) = (self.warn_free_bytes, self.critical_free_bytes);
        if warn.0 > 0 && crit.0 >= warn.0 {
            add(
                "critical_free_bytes",
                format!(
                    "\"{crit}\" is not below warn_free_bytes (\"{warn}\"): the critical threshold must be the lower one (or set warn_free_bytes = 0 to turn it off)"
                ),
            );
        }
        if self.check_interval < MIN_CHECK_INTERVAL || self.check_interval > MAX_CHECK_INTERVAL {
            add(
                "check_interval",
                format!(
                    "\"{}\" is out of range: use {} to {}",
                    format_duration(self.check_interval),
                    format_duration(MIN_CHECK_INTERVAL),
                    format_duration(MAX_CHECK_INTERVAL)
                ),
            );
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(p)
        }
    }
}

/// `[retention]`: deleting old recordings. Off unless `max_age_days` is set.
///
/// Only closed recordings (their `meta.json` has `ended_at`) are deleted,
/// complete or not: an incomplete recording holds the same personal data
/// as a complete one, and a retention policy that spared it would not be
/// one. A recording still being written is never touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Delete recordings that ended more than this many days ago; absent:
    /// keep everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
    /// How often the recordings directory is swept.
    #[serde(with = "duration_text")]
    pub sweep_interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            max_age_days: None,
            sweep_interval: Duration::from_secs(3600),
        }
    }
}

impl RetentionConfig {
    /// The age past which recordings are deleted; `None` when retention is
    /// off.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age_days
            .map(|d| Duration::from_secs(u64::from(d) * 86_400))
    }

    /// Problems with the values, as `(key, message)` pairs; keys are dotted
    /// (`retention.max_age_days`).
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut p = Vec::new();
        if self.max_age_days == Some(0) {
            p.push((
                "retention.max_age_days".to_string(),
                "0 would delete every recording as soon as it ends: use 1 or more days, or remove the key to keep recordings forever".to_string(),
            ));
        }
        if self.sweep_interval < MIN_SWEEP_INTERVAL || self.sweep_interval > MAX_SWEEP_INTERVAL {
            p.push((
                "retention.sweep_interval".to_string(),
                format!(
                    "\"{}\" is out of range: use {} to {}",
                    format_duration(self.sweep_interval),
                    format_duration(MIN_SWEEP_INTERVAL),
                    format_duration(MAX_SWEEP_INTERVAL)
                ),
            ));
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(p)
        }
    }
}

/// A share of the volume, 0 to 100 (exclusive), written as a TOML integer
/// or float (`15` or `2.5`).
///
/// A newtype rather than `f64` so the configuration keeps `Eq`: NaN cannot
/// be read from a file (it is refused with the range) nor built with
/// [`Percent::new`].
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Percent(f64);

impl Eq for Percent {}

impl Percent {
    /// `value` as a percentage, if it is in `0.0..100.0`.
    pub fn new(value: f64) -> Option<Percent> {
        Percent::check(value).ok().map(|()| Percent(value))
    }

    pub fn get(self) -> f64 {
        self.0
    }

    fn check(value: f64) -> Result<(), String> {
        if (0.0..100.0).contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "{value} is not a percentage of the volume: use a number from 0 (off) to below 100"
            ))
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage such as 15 or 2.5")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Percent, E> {
                Percent::check(v).map_err(E::custom)?;
                Ok(Percent(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(V)
    }
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// Largest first: [`ByteSize`]'s `Display` takes the first that divides.
const BYTE_UNITS: [(&str, u64); 5] = [
    ("TiB", TIB),
    ("GiB", GIB),
    ("MiB", MIB),
    ("KiB", KIB),
    ("B", 1),
];

const BYTES_HOW: &str =
    "write a whole number of bytes (20000000000) or a string with a unit B, KiB, MiB, GiB or TiB (e.g. \"20GiB\")";

/// An amount of bytes, written as a TOML integer (`1073741824`) or a string
/// with a binary unit (`"1GiB"`, `"512 MiB"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// Parses `"20GiB"`, `"512 MiB"`, `"4096B"`. A unit is required; decimal
/// units (`GB`) are refused rather than guessed, because "GB" is read as
/// either 10^9 or 2^30 and a threshold should not depend on which.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("\"{text}\" is not a size: {BYTES_HOW}"));
    }
    let (number, rest) = s.split_at(digits);
    if rest.starts_with('.') || rest.starts_with(',') {
        return Err(format!(
            "\"{text}\" has a fraction: use a smaller unit instead (e.g. \"1536MiB\" for 1.5 GiB)"
        ));
    }
    let unit = rest.trim_start();
    if unit.is_empty() {
        return Err(format!("\"{text}\" has no unit: {BYTES_HOW}"));
    }
    let Some(&(_, mult)) = BYTE_UNITS.iter().find(|(u, _)| *u == unit) else {
        let decimal = ["kB", "KB", "MB", "GB", "TB"]
            .iter()
            .find(|u| u.eq_ignore_ascii_case(unit));
        return Err(match decimal {
            Some(u) => format!(
                "\"{text}\": decimal units such as {u} are ambiguous: use {}",
                match u.to_ascii_uppercase().as_str() {
                    "KB" => "KiB",
                    "MB" => "MiB",
                    "GB" => "GiB",
                    _ => "TiB",
                }
            ),
            None => format!("\"{text}\" has an unknown unit: {BYTES_HOW}"),
        });
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("\"{text}\" is too large"))
}

/// The shortest exact form: `"1GiB"`, `"1536MiB"`, `"1000B"`.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, mult) = BYTE_UNITS
            .iter()
            .find(|(_, m)| self.0 != 0 && self.0 % m == 0)
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{name}", self.0 / mult)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of bytes or a size string such as \"20GiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{v} is negative: sizes cannot be negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Durations as strings (`"5s"`), like the other sections. The config
/// module's own helper is private to it, so this is the same glue over its
/// public parser.
mod duration_text {
    use super::*;

    pub(super) fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"30s\" or \"500ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct File {
        storage: StorageConfig,
        retention: RetentionConfig,
    }

    fn parse(text: &str) -> Result<File, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn keys(r: Result<(), Vec<(String, String)>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn storage_defaults_are_valid_and_retention_is_off() {
        let f = parse("").unwrap();
        assert_eq!(f, File::default());
        assert_eq!(f.storage.warn_free_percent.get(), 15.0);
        assert_eq!(f.storage.critical_free_percent.get(), 5.0);
        assert_eq!(f.storage.critical_free_bytes, ByteSize(GIB));
        assert_eq!(f.storage.warn_free_bytes, ByteSize(0));
        assert_eq!(f.storage.check_interval, Duration::from_secs(5));
        assert_eq!(f.retention.max_age_days, None);
        assert_eq!(f.retention.max_age(), None);
        assert_eq!(f.retention.sweep_interval, Duration::from_secs(3600));
        assert!(f.storage.validate().is_ok());
        assert!(f.retention.validate().is_ok());
    }

    #[test]
    fn storage_config_parses_every_key_and_round_trips() {
        let f = parse(
            r#"
            [storage]
            warn_free_percent = 20
            critical_free_percent = 2.5
            warn_free_bytes = "20GiB"
            critical_free_bytes = 5368709120
            check_interval = "10s"
            [retention]
            max_age_days = 90
            sweep_interval = "30m"
            "#,
        )
        .unwrap();
        assert_eq!(f.storage.warn_free_percent.get(), 20.0);
        assert_eq!(f.storage.critical_free_percent.get(), 2.5);
        assert_eq!(f.storage.warn_free_bytes, ByteSize(20 * GIB));
        assert_eq!(f.storage.critical_free_bytes, ByteSize(5 * GIB));
        assert_eq!(f.storage.check_interval, Duration::from_secs(10));
        assert_eq!(
            f.retention.max_age(),
            Some(Duration::from_secs(90 * 86_400))
        );
        assert_eq!(f.retention.sweep_interval, Duration::from_secs(1800));
        let text = toml::to_string(&f).unwrap();
        assert!(text.contains("warn_free_bytes = \"20GiB\""), "{text}");
        assert_eq!(parse(&text).unwrap(), f);
    }

    #[test]
    fn storage_byte_sizes() {
        assert_eq!(parse_byte_size("20GiB"), Ok(20 * GIB));
        assert_eq!(parse_byte_size(" 512 MiB "), Ok(512 * MIB));
        assert_eq!(parse_byte_size("1TiB"), Ok(TIB));
        assert_eq!(parse_byte_size("4KiB"), Ok(4096));
        assert_eq!(parse_byte_size("0B"), Ok(0));
        let err = |s: &str| parse_byte_size(s).unwrap_err();
        assert!(err("20GB").contains("use GiB"), "{}", err("20GB"));
        assert!(err("20gb").contains("use GiB"));
        assert!(err("1.5GiB").contains("fraction"));
        assert!(err("20").contains("no unit"));
        assert!(err("GiB").contains("not a size"));
        assert!(err("20 parsecs").contains("unknown unit"));
        assert!(err("-1GiB").contains("not a size"));
        assert!(err("99999999TiB").contains("too large"));
        assert_eq!(ByteSize(GIB).to_string(), "1GiB");
        assert_eq!(ByteSize(1536 * MIB).to_string(), "1536MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(ByteSize(0).to_string(), "0B");
    }

    #[test]
    fn storage_parse_errors_name_the_problem() {
        let e = parse("[storage]\nwarn_free_bytes = \"20GB\"\n").unwrap_err();
        assert!(e.contains("warn_free_bytes") && e.contains("GiB"), "{e}");
        let e = parse("[storage]\ncritical_free_bytes = -5\n").unwrap_err();
        assert!(e.contains("negative"), "{e}");
        let e = parse("[storage]\nwarn_free_percent = 150\n").unwrap_err();
        assert!(e.contains("percentage"), "{e}");
        let e = parse("[storage]\nwarn_free_percent = \"15%\"\n").unwrap_err();
        assert!(e.contains("percentage such as"), "{e}");
        let e = parse("[storage]\ncheck_interval = 5\n").unwrap_err();
        assert!(e.contains("duration string"), "{e}");
        let e = parse("[storage]\ncheck_intervall = \"5s\"\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = parse("[retention]\nmax_age_days = -1\n").unwrap_err();
        assert!(e.contains("max_age_days"), "{e}");
    }

    #[test]
    fn storage_validation_names_keys() {
        let mut c = StorageConfig {
            warn_free_percent: Percent(5.0),
            critical_free_percent: Percent(5.0),
            ..StorageConfig::default()
        };
        assert_eq!(
            keys(c.validate()),
            vec!["storage.critical_free_percent".to_string()]
        );
        c.warn_free_percent = Percent(0.0);
        assert!(c.validate().is_ok(), "no warning stage is allowed");
        c.critical_free_percent = Percent(0.0);
        assert!(c.validate().is_ok(), "both off is allowed");
        c.warn_free_bytes = ByteSize(GIB);
        assert_eq!(
            keys(c.validate()),
            vec!["storage.critical_free_bytes".to_string()]
        );
        c.critical_free_bytes = ByteSize(0);
        assert!(c.validate().is_ok());
        c.check_interval = Duration::ZERO;
        c.warn_free_percent = Percent(100.0);
        assert_eq!(
            keys(c.validate()),
            vec![
                "storage.warn_free_percent".to_string(),
                "storage.check_interval".to_string()
            ]
        );
        assert!(Percent::new(f64::NAN).is_none());
        assert!(Percent::new(100.0).is_none());
        assert_eq!(Percent::new(0.0).map(Percent::get), Some(0.0));
    }

    #[test]
    fn storage_retention_validation() {
        let mut r = RetentionConfig {
            max_age_days: Some(0),
            sweep_interval: Duration::from_secs(1),
        };
        assert_eq!(
            keys(r.validate()),
            vec![
                "retention.max_age_days".to_string(),
                "retention.sweep_interval".to_string()
            ]
        );
        r.max_age_days = Some(1);
        r.sweep_interval = Duration::from_secs(60);
        assert!(r.validate().is_ok());
    }
}
