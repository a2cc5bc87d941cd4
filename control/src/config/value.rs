//! Serde glue for values the file writes as strings (addresses, port
//! ranges, durations, prefixes).
//!
//! Each type parses itself with an error sentence written for the operator;
//! serde then attaches that sentence to the value's position in the file, so
//! the final message carries the file, line and key.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mediafork_dataplane::config::{PortRange, PortRangeError};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};

use super::duration::{format_duration, parse_duration};

/// A value written as a string in the configuration file.
pub(crate) trait TextValue: Sized {
    /// How the value looks, for serde's "invalid type: ..., expected ...".
    const EXPECTING: &'static str;
    fn parse_text(text: &str) -> Result<Self, String>;
    fn to_text(&self) -> String;
}

impl TextValue for Duration {
    const EXPECTING: &'static str = "a duration string such as \"30s\" or \"500ms\"";
    fn parse_text(text: &str) -> Result<Self, String> {
        parse_duration(text)
    }
    fn to_text(&self) -> String {
        format_duration(*self)
    }
}

impl TextValue for SocketAddr {
    const EXPECTING: &'static str = "an address and port such as \"0.0.0.0:5060\"";
    fn parse_text(text: &str) -> Result<Self, String> {
        parse_socket_addr(text)
    }
    fn to_text(&self) -> String {
        self.to_string()
    }
}

impl TextValue for PortRange {
    const EXPECTING: &'static str = "a port range string such as \"39500-43500\"";
    fn parse_text(text: &str) -> Result<Self, String> {
        text.parse::<PortRange>()
            .map_err(|e| describe_port_range_error(text, &e))
    }
    fn to_text(&self) -> String {
        self.to_string()
    }
}

/// Parses `ip:port` (`[v6]:port` for IPv6), explaining the usual mistakes.
pub(crate) fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    let s = text.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Err(format!(
            "\"{text}\" has no port: write it as \"{ip}:PORT\""
        )),
        Ok(IpAddr::V6(ip)) => Err(format!(
            "\"{text}\" has no port: write it as \"[{ip}]:PORT\""
        )),
        Err(_) => Err(format!(
            "\"{text}\" is not an IP address and port (e.g. \"0.0.0.0:5060\" or \"[::]:5060\"; host names are not resolved)"
        )),
    }
}

/// The operator's version of a [`PortRangeError`]: the same facts, quoting
/// the text as written.
pub(crate) fn describe_port_range_error(text: &str, e: &PortRangeError) -> String {
    match e {
        PortRangeError::Syntax(_) => {
            format!("\"{text}\" is not a port range: write LO-HI, e.g. \"39500-43500\"")
        }
        PortRangeError::Inverted { .. } => {
            format!("\"{text}\": the low port is above the high port")
        }
        PortRangeError::Privileged { .. } => format!(
            "\"{text}\": ports below 1024 are not allowed for media (they are reserved for system services)"
        ),
    }
}

struct TextVisitor<T>(PhantomData<T>);

impl<T: TextValue> Visitor<'_> for TextVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::parse_text(v).map_err(E::custom)
    }
}

/// Deserializes one [`TextValue`] from a string.
pub(crate) fn deserialize_text<'de, D: Deserializer<'de>, T: TextValue>(
    d: D,
) -> Result<T, D::Error> {
    d.deserialize_str(TextVisitor(PhantomData))
}

/// An element of a list of [`TextValue`]s.
struct Text<T>(T);

impl<'de, T: TextValue> Deserialize<'de> for Text<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_text(d).map(Text)
    }
}

/// `#[serde(with = "value::one")]` for a field of a [`TextValue`] type.
pub(crate) mod one {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: TextValue>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_text())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: TextValue>(
        d: D,
    ) -> Result<T, D::Error> {
        deserialize_text(d)
    }
}

/// `#[serde(with = "value::opt")]` for an `Option` of a [`TextValue`] type.
/// Pair it with `default` and `skip_serializing_if = "Option::is_none"`:
/// TOML has no null, an absent key is the `None`.
pub(crate) mod opt {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: TextValue>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&v.to_text()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: TextValue>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        deserialize_text(d).map(Some)
    }
}

/// `#[serde(with = "value::list")]` for a `Vec` of a [`TextValue`] type.
pub(crate) mod list {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: TextValue>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(TextValue::to_text))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: TextValue>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        let items: Vec<Text<T>> = Vec::deserialize(d)?;
        Ok(items.into_iter().map(|t| t.0).collect())
    }
}
