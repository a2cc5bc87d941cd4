//! The `mediafork loadgen` command line and the checked plan derived from it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use mediafork_testkit::sip::Vendor;

use crate::LoadgenError;

/// Help text after the options: examples and what the run does.
pub const AFTER_HELP: &str = "\
Examples:
  mediafork loadgen --target 10.0.0.5:5060 --calls 200 --duration 10s
  mediafork loadgen --target rec.example.net:5060 --calls 1000 --rate 100 --duration 2m --style cube --codec pcma
  mediafork loadgen --target 10.0.0.5:5060 --calls 50 --total 500 --duration 30s --json > summary.json
  mediafork loadgen --target 10.0.0.5 --rtp-only 40000-40099 --calls 50 --duration 1m
  mediafork loadgen --pcap load.pcap --calls 20 --duration 10s --style acme
  mediafork replay --pcap load.pcap --out rec        # record the generated capture
  mediafork loadgen --target 10.0.0.5 --rtp-only 40000-43999 --calls 20000 --rate 5000 \\
      --tx dpdk --dpdk-eal '-l 2 -a 0000:3b:00.1' --dst-mac 3c:fd:fe:00:00:01

Each call is one SIPREC recording session as an SBC opens it: an INVITE with a multipart body \
(SDP offering two a=sendonly streams labelled 1 and 2, plus rs-metadata XML) in the chosen vendor \
style, retransmitted over UDP until answered. After the 200 OK the two streams are sent to the \
answered ports at real-time pacing (one packet per ptime per stream, G.711 carrying a \
verifiable pattern), and after --duration the call ends with a BYE. Requests from the recorder \
(UPDATE, BYE, re-INVITE, INFO, OPTIONS) are answered 200 OK.

--rtp-only sends the streams with no SIP: call k's two streams go to the listed ports \
round-robin (ports 2k and 2k+1 of the list, wrapping) on --target's host.

--pcap writes the same traffic to a capture file instead of sending it, in simulated time: \
INVITE, a synthesized 200 OK whose SDP answer uses ports from --pcap-ports, ACK, RTP, BYE and \
its 200 OK, so `mediafork replay` (or a net_pcap run) rebuilds every call.

--tx dpdk (builds with the dpdk feature) sends the RTP through a DPDK transmit queue instead of \
kernel sockets: the sender thread becomes the EAL's main lcore (pin it with -l in --dpdk-eal), \
builds each Ethernet/IP/UDP frame itself (source --local-ip and the ports of the --sockets \
sockets, which stay bound to reserve them; destination MAC --dst-mac) and hands bursts of 32 to \
the NIC. No system call per packet: one core then paces many more streams (BENCHMARKS.md). SIP, \
if any, still goes through the kernel.

A progress line is printed on stderr every second (--quiet silences it) and a summary at the \
end (--json for machine-readable): calls attempted, answered, failed by status, packets sent, \
send errors, late sends (more than 1 ms behind schedule) and send-lag percentiles.";

/// Options of `mediafork loadgen`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Simulate a SIPREC recording client (SBC): concurrent recorded calls with real-time RTP",
    after_help = AFTER_HELP
)]
pub struct LoadgenArgs {
    /// The recorder's SIP address (UDP). With --rtp-only only the host is
    /// used; with --pcap it is the recorder's address in the capture
    /// (default 192.0.2.1:5060).
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "pcap")]
    pub target: Option<String>,

    /// Calls up at the same time.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub calls: u32,

    /// New calls per second while ramping up (and to replace ended calls).
    #[arg(long, value_name = "CPS", default_value_t = 50.0)]
    pub rate: f64,

    /// How long each call sends media, from its answer to its BYE: e.g.
    /// 500ms, 10s, 2m, 1h (a bare number is seconds).
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Stop after this many calls in all [default: --calls, one wave].
    #[arg(long, value_name = "N")]
    pub total: Option<u64>,

    /// Audio codec of both streams.
    #[arg(long, value_enum, default_value_t = Codec::Pcmu)]
    pub codec: Codec,

    /// Packetization time in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::builder::PossibleValuesParser::new(["10", "20", "30", "40"])
              .map(|s| s.parse::<u32>().unwrap_or(20)))]
    pub ptime: u32,

    /// Whose INVITE shape to send: Cisco CUBE, Oracle/Acme Packet, Ribbon,
    /// or the RFC 7866 examples.
    #[arg(long, value_enum, default_value_t = Style::Generic)]
    pub style: Style,

    /// Local address to send from and to put in Via, Contact and SDP
    /// [default: the address the route to --target uses].
    #[arg(long, value_name = "IP")]
    pub local_ip: Option<IpAddr>,

    /// Local SIP port (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub sip_port: u16,

    /// Send raw RTP to these ports of --target's host instead of setting up
    /// SIP calls: a list and/or ranges, e.g. 40000,40002 or 40000-40099.
    #[arg(long, value_name = "PORT[,PORT..]|LO-HI")]
    pub rtp_only: Option<PortList>,

    /// Write the traffic to this capture file (pcap, Ethernet) instead of
    /// sending it; nothing goes on the network.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// With --pcap: the recorder ports the synthesized answers use (the
    /// default is `mediafork replay`'s default media range).
    #[arg(long, value_name = "LO-HI", default_value = "39500-43500")]
    pub pcap_ports: PortRange,

    /// UDP sockets the RTP is sent from (streams are spread over them).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub sockets: usize,

    /// How the RTP leaves: kernel UDP sockets (sendmmsg), or a DPDK
    /// transmit queue (needs a mediafork built with the dpdk feature).
    #[arg(long, value_enum, default_value_t = TxKind::Socket)]
    pub tx: TxKind,

    /// With --tx dpdk: the EAL arguments, one string split at spaces, e.g.
    /// '-l 2 -a 0000:3b:00.1' or, without a NIC or hugepages,
    /// '--no-huge --no-pci -m 256 -l 0 --vdev=net_null0'.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub dpdk_eal: Option<String>,

    /// With --tx dpdk: the port to send on, by id or by name (a PCI
    /// address or a vdev name).
    #[arg(long, value_name = "PORT", default_value = "0")]
    pub dpdk_port: String,

    /// With --tx dpdk: the destination MAC of every frame: the recorder's
    /// interface, or the next-hop router's (`ip neigh show`).
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    pub dst_mac: Option<Mac>,

    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// How RTP is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TxKind {
    /// Kernel UDP sockets, `sendmmsg` batches.
    Socket,
    /// A DPDK transmit queue (`--features dpdk`).
    Dpdk,
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`), case-insensitive.
pub fn parse_mac(s: &str) -> Result<Mac, String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad =
        || format!("{s:?} is not a MAC address (expected six hex octets, e.g. 3c:fd:fe:00:00:01)");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (o, p) in m.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(Mac(m))
}

/// The DPDK transmit set-up of a `--tx dpdk` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DpdkTxPlan {
    pub eal_args: Vec<String>,
    pub port: String,
    pub dst_mac: [u8; 6],
}

/// The audio codec: G.711 µ-law or A-law (8 kHz, one byte per sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// G.711 µ-law, payload type 0.
    Pcmu,
    /// G.711 A-law, payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The `a=rtpmap` encoding name.
    pub fn rtpmap(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
        }
    }
}

/// The vendor style of the INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Cisco CUBE: Cisco-Guid, Session-ID, an extra application/gtd part.
    Cube,
    /// Oracle/Acme Packet: pre-RFC metadata namespace with apkt extensions.
    Acme,
    /// Ribbon/Sonus: tns:-prefixed metadata, per-media c= lines.
    Ribbon,
    /// The RFC 7866/7865 examples.
    Generic,
}

impl Style {
    /// The testkit message shape this style reproduces.
    pub fn vendor(self) -> Vendor {
        match self {
            Style::Cube => Vendor::CiscoCube,
            Style::Acme => Vendor::AcmePacket,
            Style::Ribbon => Vendor::Ribbon,
            Style::Generic => Vendor::Generic,
        }
    }
}

/// Parse `500ms`, `10s`, `2m`, `1h` or a bare number of seconds (fractions
/// allowed: `1.5s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration such as 500ms, 10s, 2m or 1h"))?;
    let scale = match unit.trim() {
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        u => return Err(format!("{s:?}: unknown unit {u:?} (use ms, s, m or h)")),
    };
    let secs = n * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("{s:?}: the duration must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// An inclusive UDP port range `LO-HI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port (inclusive).
    pub hi: u16,
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (lo, hi) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?}: expected LO-HI, e.g. 39500-43500"))?;
        let parse = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("{s:?}: {p:?} is not a port number"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo == 0 || lo > hi {
            return Err(format!("{s:?}: expected 1 <= LO <= HI"));
        }
        Ok(PortRange { lo, hi })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.lo, self.hi)
    }
}

impl PortRange {
    /// The even ports of the range (RTP ports; the odd one above is RTCP's).
    pub fn even_ports(&self) -> Vec<u16> {
        (self.lo..=self.hi)
            .filter(|p| p % 2 == 0 && *p < u16::MAX)
            .collect()
    }
}

/// A list of ports: `40000,40002,41000-41009`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortList(pub Vec<u16>);

impl FromStr for PortList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut ports = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.contains('-') {
                let r: PortRange = part.parse()?;
                ports.extend(r.lo..=r.hi);
            } else {
                let p: u16 = part
                    .parse()
                    .map_err(|_| format!("{part:?} is not a port number"))?;
                if p == 0 {
                    return Err("port 0 cannot receive RTP".into());
                }
                ports.push(p);
            }
        }
        if ports.is_empty() {
            return Err(format!("{s:?}: no ports"));
        }
        Ok(PortList(ports))
    }
}

/// What kind of run the arguments ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// SIPREC calls over UDP to the target.
    Sip,
    /// RTP only, to these ports of the target host.
    RtpOnly(Vec<u16>),
}

/// The checked, resolved form of [`LoadgenArgs`].
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub mode: Mode,
    /// Recorder SIP address (or, for RTP-only, host with a placeholder port).
    pub target: SocketAddr,
    pub local_ip: IpAddr,
    pub calls: u32,
    pub rate: f64,
    pub duration: Duration,
    pub total: u64,
    pub codec: Codec,
    pub ptime_ms: u32,
    pub style: Style,
    pub sip_port: u16,
    pub sockets: usize,
    pub pcap: Option<PathBuf>,
    pub pcap_ports: Vec<u16>,
    pub quiet: bool,
    /// `Some` with --tx dpdk.
    pub dpdk: Option<DpdkTxPlan>,
}

impl Plan {
    /// Packets each stream of a call sends.
    pub fn packets_per_stream(&self) -> u64 {
        (self.duration.as_nanos() / (u128::from(self.ptime_ms) * 1_000_000)) as u64
    }
}

/// The recorder address used in captures when `--target` is not given.
const PCAP_DEFAULT_TARGET: &str = "192.0.2.1:5060";
/// The SRC address used in captures when `--local-ip` is not given.
const PCAP_DEFAULT_LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn resolve_target(t: &str, rtp_only: bool) -> Result<SocketAddr, LoadgenError> {
    let bad = |why: String| LoadgenError::Args(format!("--target {t}: {why}"));
    let with_port = if rtp_only && t.parse::<IpAddr>().is_ok() {
        // A bare IPv6 address has colons of its own: bracket it.
        match t.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]:5060"),
            _ => format!("{t}:5060"),
        }
    } else if rtp_only && !t.contains(':') {
        format!("{t}:5060")
    } else {
        t.to_string()
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".into()))
}

/// The local address the kernel would use to reach `target` (a connected
/// UDP socket sends nothing, so this is free).
fn route_source(target: SocketAddr) -> Result<IpAddr, LoadgenError> {
    let any: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(any).map_err(|e| LoadgenError::Io("bind", e))?;
    s.connect(target)
        .map_err(|e| LoadgenError::Args(format!("no route to {target}: {e}")))?;
    Ok(s.local_addr()
        .map_err(|e| LoadgenError::Io("local_addr", e))?
        .ip())
}

impl LoadgenArgs {
    /// Check the options and resolve addresses.
    pub(crate) fn plan(&self) -> Result<Plan, LoadgenError> {
        let bad = |m: &str| Err(LoadgenError::Args(m.to_string()));
        if self.calls == 0 {
            return bad("--calls must be at least 1");
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return bad("--rate must be a positive number of calls per second");
        }
        if self.total == Some(0) {
            return bad("--total must be at least 1");
        }
        if self.sockets == 0 || self.sockets > 1024 {
            return bad("--sockets must be between 1 and 1024");
        }
        if ![10, 20, 30, 40].contains(&self.ptime) {
            return bad("--ptime must be 10, 20, 30 or 40");
        }
        if self.duration < Duration::from_millis(u64::from(self.ptime)) {
            return bad("--duration must be at least one --ptime");
        }
        let rtp_only = self.rtp_only.is_some();
        let target = match (&self.target, &self.pcap) {
            (Some(t), _) => resolve_target(t, rtp_only)?,
            (None, Some(_)) => PCAP_DEFAULT_TARGET.parse().expect("valid constant"),
            (None, None) => return bad("--target is required (or --pcap FILE)"),
        };
        let local_ip = match (self.local_ip, &self.pcap) {
            (Some(ip), _) => ip,
            (None, Some(_)) if target.is_ipv4() => IpAddr::V4(PCAP_DEFAULT_LOCAL),
            (None, Some(_)) => "2001:db8::10".parse().expect("valid constant"),
            (None, None) => route_source(target)?,
        };
        if local_ip.is_ipv4() != target.is_ipv4() {
            return bad("--local-ip and --target must be of the same IP family");
        }
        let pcap_ports = self.pcap_ports.even_ports();
        if self.pcap.is_some() && !rtp_only && pcap_ports.len() < 2 * self.calls as usize {
            return Err(LoadgenError::Args(format!(
                "--pcap-ports {} has {} even ports; {} concurrent calls need {} (two streams each)",
                self.pcap_ports,
                pcap_ports.len(),
                self.calls,
                2 * self.calls
            )));
        }
        let dpdk = self.dpdk_plan(local_ip)?;
        Ok(Plan {
            mode: match &self.rtp_only {
                Some(PortList(p)) => Mode::RtpOnly(p.clone()),
                None => Mode::Sip,
            },
            target,
            local_ip,
            calls: self.calls,
            rate: self.rate,
            duration: self.duration,
            total: self.total.unwrap_or(u64::from(self.calls)),
            codec: self.codec,
            ptime_ms: self.ptime,
            style: self.style,
            sip_port: self.sip_port,
            sockets: self.sockets,
            pcap: self.pcap.clone(),
            pcap_ports,
            quiet: self.quiet,
            dpdk,
        })
    }

    fn dpdk_plan(&self, local_ip: IpAddr) -> Result<Option<DpdkTxPlan>, LoadgenError> {
        let bad = |m: String| Err(LoadgenError::Args(m));
        if self.tx == TxKind::Socket {
            if self.dpdk_eal.is_some() || self.dst_mac.is_some() {
                return bad("--dpdk-eal and --dst-mac go with --tx dpdk".into());
            }
            return Ok(None);
        }
        if self.pcap.is_some() {
            return bad("--tx dpdk sends on a port; --pcap writes a file: pick one".into());
        }
        let Some(eal) = &self.dpdk_eal else {
            return bad(
                "--tx dpdk needs --dpdk-eal: the EAL arguments, e.g. '-l 2 -a 0000:3b:00.1' \
                 (or '--no-huge --no-pci -m 256 -l 0 --vdev=net_null0' to try it without a NIC)"
                    .into(),
            );
        };
        let Some(mac) = self.dst_mac else {
            return bad(
                "--tx dpdk needs --dst-mac: the MAC of the recorder's interface or of the \
                 next-hop router (`ip neigh show` on a host on that link)"
                    .into(),
            );
        };
        if local_ip.is_unspecified() {
            return bad(format!(
                "--tx dpdk writes --local-ip into every frame as the source: give a real \
                 address, not {local_ip}"
            ));
        }
        let eal_args: Vec<String> = eal.split_whitespace().map(str::to_owned).collect();
        if eal_args.is_empty() {
            return bad("--dpdk-eal is empty".into());
        }
        Ok(Some(DpdkTxPlan {
            eal_args,
            port: self.dpdk_port.clone(),
            dst_mac: mac.0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command, FromArgMatches};

    fn parse(argv: &[&str]) -> Result<LoadgenArgs, clap::Error> {
        let cmd = LoadgenArgs::augment_args(Command::new("loadgen"));
        let m = cmd.try_get_matches_from(std::iter::once("loadgen").chain(argv.iter().copied()))?;
        LoadgenArgs::from_arg_matches(&m)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10d").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn port_lists_and_ranges() {
        assert_eq!(
            "40000,40002, 41000-41002".parse::<PortList>(),
            Ok(PortList(vec![40000, 40002, 41000, 41001, 41002]))
        );
        assert!("".parse::<PortList>().is_err());
        assert!("0".parse::<PortList>().is_err());
        assert!("5-3".parse::<PortRange>().is_err());
        let r: PortRange = "39999-40004".parse().unwrap();
        assert_eq!(r.even_ports(), vec![40000, 40002, 40004]);
    }

    #[test]
    fn defaults_and_plan() {
        let a = parse(&["--target", "127.0.0.1:5070"]).unwrap();
        assert_eq!(a.calls, 10);
        assert_eq!(a.ptime, 20);
        assert_eq!(a.codec, Codec::Pcmu);
        assert_eq!(a.style, Style::Generic);
        let p = a.plan().unwrap();
        assert_eq!(p.total, 10);
        assert_eq!(p.mode, Mode::Sip);
        assert_eq!(p.local_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.packets_per_stream(), 500);
    }

    #[test]
    fn rejects_bad_options() {
        assert!(parse(&[]).is_err(), "--target is required without --pcap");
        assert!(parse(&["--pcap", "x.pcap"]).is_ok());
        assert!(parse(&["--target", "127.0.0.1:5060", "--ptime", "25"]).is_err());
        assert!(parse(&["--target", "127.0.0.1:5060", "--style", "foo"]).is_err());
        let p = |argv: &[&str]| parse(argv).unwrap().plan();
        assert!(p(&["--target", "127.0.0.1:5060", "--calls", "0"]).is_err());
        assert!(p(&["--target", "127.0.0.1:5060", "--rate", "0"]).is_err());
        assert!(p(&["--target", "127.0.0.1:5060", "--duration", "5ms"]).is_err());
        assert!(p(&[
            "--pcap",
            "x",
            "--calls",
            "10",
            "--pcap-ports",
            "40000-40020"
        ])
        .is_err());
        let rtp = p(&["--target", "127.0.0.1", "--rtp-only", "40000-40001"]).unwrap();
        assert_eq!(rtp.mode, Mode::RtpOnly(vec![40000, 40001]));
    }

    #[test]
    fn dpdk_tx_options() {
        let p = |argv: &[&str]| parse(argv).unwrap().plan();
        let base = ["--target", "127.0.0.1", "--rtp-only", "40000-40001"];
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            p(&v)
        };
        assert!(with(&[]).unwrap().dpdk.is_none());
        let e = with(&["--tx", "dpdk", "--dst-mac", "02:00:00:00:00:02"]).unwrap_err();
        assert!(e.to_string().contains("--dpdk-eal"), "{e}");
        let e = with(&["--tx", "dpdk", "--dpdk-eal", "-l 0"]).unwrap_err();
        assert!(e.to_string().contains("--dst-mac"), "{e}");
        let e = with(&["--dst-mac", "02:00:00:00:00:02"]).unwrap_err();
        assert!(e.to_string().contains("--tx dpdk"), "{e}");
        let ok = with(&[
            "--tx",
            "dpdk",
            "--dpdk-eal",
            "--no-huge  -l 0 --vdev=net_null0",
            "--dst-mac",
            "02:AB:00:00:00:0c",
            "--dpdk-port",
            "net_null0",
        ])
        .unwrap()
        .dpdk
        .unwrap();
        assert_eq!(ok.eal_args, ["--no-huge", "-l", "0", "--vdev=net_null0"]);
        assert_eq!(ok.port, "net_null0");
        assert_eq!(ok.dst_mac, [2, 0xab, 0, 0, 0, 0x0c]);
        assert!(parse(&["--target", "x", "--dst-mac", "02:00:00:00:00"]).is_err());
        assert!(parse(&["--target", "x", "--dst-mac", "02:00:00:00:00:1g2"]).is_err());
        assert_eq!(
            parse_mac("3C-FD-FE-00-00-01").unwrap().to_string(),
            "3c:fd:fe:00:00:01"
        );
        let e = p(&[
            "--pcap",
            "x.pcap",
            "--tx",
            "dpdk",
            "--dpdk-eal",
            "-l 0",
            "--dst-mac",
            "02:00:00:00:00:02",
        ])
        .unwrap_err();
        assert!(e.to_string().contains("pick one"), "{e}");
    }

    #[test]
    fn help_has_examples() {
        let mut cmd = LoadgenArgs::augment_args(Command::new("loadgen"));
        let help = cmd.render_long_help().to_string();
        assert!(help.contains("Examples:"), "{help}");
        assert!(help.contains("--rtp-only"));
    }
}
