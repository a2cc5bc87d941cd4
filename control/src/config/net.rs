//! Address types of the configuration: the SIP source ACL's prefixes and
//! the media address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::value::{self, TextValue};

/// An IPv4 or IPv6 prefix such as `192.0.2.0/24` or `2001:db8::/32`; a bare
/// address is a host prefix (`/32` or `/128`).
///
/// Host bits must be zero: `10.1.2.3/8` is refused rather than read as
/// `10.0.0.0/8`, because in an ACL it is more likely a typo for `/32` than a
/// request to trust a whole /8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a prefix did not parse. Each message quotes the text and says what to
/// write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    #[error("\"{0}\" is not an IP address or prefix (e.g. \"192.0.2.10\", \"192.0.2.0/24\" or \"2001:db8::/32\")")]
    Syntax(String),
    #[error("\"{text}\": the prefix length is above {max}")]
    PrefixTooLong { text: String, max: u8 },
    #[error("\"{text}\" has bits set after the prefix: write \"{network}\" for the whole network, or drop \"/{prefix_len}\" for the single address")]
    HostBits {
        text: String,
        network: String,
        prefix_len: u8,
    },
}

impl IpNet {
    /// A prefix from its network address and length. Fails when the length
    /// is too long for the family or the address has host bits set.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<IpNet, IpNetError> {
        let text = format!("{addr}/{prefix_len}");
        let max = max_len(addr);
        if prefix_len > max {
            return Err(IpNetError::PrefixTooLong { text, max });
        }
        let network = mask(addr, prefix_len);
        if network != addr {
            return Err(IpNetError::HostBits {
                text,
                network: IpNet {
                    addr: network,
                    prefix_len,
                }
                .to_string(),
                prefix_len,
            });
        }
        Ok(IpNet { addr, prefix_len })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in the prefix. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`, what a dual-stack `[::]` socket reports for an
    /// IPv4 peer) is compared as the IPv4 address it carries, so IPv4
    /// entries keep working when SIP listens on `[::]`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        mask(ip, self.prefix_len) == self.addr
    }
}

fn max_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with every bit after `len` cleared (`len` at most the family's
/// width).
fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        let syntax = || IpNetError::Syntax(text.to_string());
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => {
                let addr: IpAddr = a.parse().map_err(|_| syntax())?;
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(syntax());
                }
                let max = max_len(addr);
                let len = l.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(|| {
                    IpNetError::PrefixTooLong {
                        text: text.to_string(),
                        max,
                    }
                })?;
                (addr, len)
            }
            None => {
                let addr: IpAddr = s.parse().map_err(|_| syntax())?;
                (addr, max_len(addr))
            }
        };
        IpNet::new(addr, len).map_err(|e| match e {
            IpNetError::HostBits {
                network,
                prefix_len,
                ..
            } => IpNetError::HostBits {
                text: text.to_string(),
                network,
                prefix_len,
            },
            other => other,
        })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl TextValue for IpNet {
    const EXPECTING: &'static str = "an IP address or prefix string such as \"192.0.2.0/24\"";
    fn parse_text(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e: IpNetError| e.to_string())
    }
    fn to_text(&self) -> String {
        self.to_string()
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        value::one::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        value::deserialize_text(d)
    }
}

/// The address media is received on and advertised in SDP answers.
///
/// `Auto` is resolved by whoever starts the server, to the address of the
/// interface that holds the default route: on a one-armed appliance that is
/// the address the SBCs reach, and it keeps a stock file valid on every box.
/// Set an address when media arrives on another interface than the default
/// route, or when the interface has several addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MediaAddr {
    /// The default-route interface's address, found at start-up.
    #[default]
    Auto,
    /// This address.
    Ip(IpAddr),
}

impl MediaAddr {
    /// The address, if it is configured rather than to be discovered.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            MediaAddr::Auto => None,
            MediaAddr::Ip(ip) => Some(*ip),
        }
    }
}

impl FromStr for MediaAddr {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        if s == "auto" {
            return Ok(MediaAddr::Auto);
        }
        s.parse::<IpAddr>().map(MediaAddr::Ip).map_err(|_| {
            format!("\"{text}\" is neither \"auto\" nor an IP address (e.g. \"192.0.2.10\")")
        })
    }
}

impl fmt::Display for MediaAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaAddr::Auto => f.write_str("auto"),
            MediaAddr::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl TextValue for MediaAddr {
    const EXPECTING: &'static str = "\"auto\" or an IP address string";
    fn parse_text(text: &str) -> Result<Self, String> {
        text.parse()
    }
    fn to_text(&self) -> String {
        self.to_string()
    }
}

impl Serialize for MediaAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        value::one::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for MediaAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        value::deserialize_text(d)
    }
}
