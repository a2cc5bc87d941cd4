use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use mediafork_dataplane::config::PortRange;

use super::validate::{check, parse_cpu_list, Host};
use super::*;

const SAMPLE: &str = include_str!("../../../docs/mediafork.toml");
const REFERENCE: &str = include_str!("../../../docs/configuration.md");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, "test.toml")
}

/// Parses `text` expecting an error about `key` whose message contains
/// `needle`; returns the message.
#[track_caller]
fn expect_err(text: &str, key: &str, needle: &str) -> String {
    let err = match parse(text) {
        Ok(c) => panic!("expected an error about {key}, got {c:?}"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(
        err.keys().contains(&key),
        "error keys {:?} lack {key}: {msg}",
        err.keys()
    );
    assert!(msg.contains(key), "message lacks the key {key}: {msg}");
    assert!(msg.contains(needle), "message lacks {needle:?}: {msg}");
    assert!(
        msg.starts_with("test.toml"),
        "message lacks the origin: {msg}"
    );
    msg
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

// ---- defaults and the sample ----

#[test]
fn defaults_are_valid_and_as_documented() {
    let c = Config::default();
    c.validate().unwrap();
    assert_eq!(c.sip.listen, vec![addr("0.0.0.0:5060")]);
    assert_eq!(c.sip.transports, vec![Transport::Udp, Transport::Tcp]);
    assert!(!c.sip.tls.enabled());
    assert_eq!(c.media.address, MediaAddr::Auto);
    assert_eq!(c.media.rtp_ports, PortRange::new(39500, 43500).unwrap());
    assert_eq!(c.recordings.dir, PathBuf::from("./recordings"));
    assert_eq!(c.media.backend, Backend::Socket);
    assert_eq!((c.media.workers, c.media.writers), (1, 1));
    assert_eq!(c.metrics.listen, None);
    assert_eq!(c.admin.listen, addr("127.0.0.1:8960"));
    assert_eq!(c.sip.min_se, Duration::from_secs(90));
    assert_eq!(c.sip.session_expires_default, Duration::from_secs(1800));
}

#[test]
fn empty_file_is_the_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
    assert_eq!(parse("# nothing\n\n").unwrap(), Config::default());
    assert_eq!(parse("[sip]\n[media]\n").unwrap(), Config::default());
}

#[test]
fn sample_is_the_defaults_plus_metrics() {
    let sample = parse(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
    let mut expected = Config::default();
    // The one deliberate difference: the sample turns metrics on.
    expected.metrics.listen = Some(DEFAULT_METRICS_LISTEN);
    assert_eq!(sample, expected);
}

/// Each `# key = value` line of the sample: (section, key, line).
fn sample_commented_keys() -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in SAMPLE.lines() {
        if let Some(h) = line.strip_prefix('[') {
            section = h.trim_end_matches(']').to_string();
        } else if let Some(rest) = line.strip_prefix("# ") {
            if let Some((k, _)) = rest.split_once(" = ") {
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    out.push((section.clone(), k.to_string(), rest.to_string()));
                }
            }
        }
    }
    out
}

/// Commented examples are real keys with well-formed values: each parses
/// on its own in its section (without the checks, which would look for
/// the example certificate files).
#[test]
fn sample_commented_examples_parse() {
    let examples = sample_commented_keys();
    assert!(examples.len() >= 8, "{examples:?}");
    for (section, _, line) in examples {
        let doc = format!("[{section}]\n{line}\n");
        if let Err(e) = parse_unvalidated(&doc, "sample") {
            panic!("sample example `{line}` in [{section}] does not parse: {e}");
        }
    }
}

/// Every key of the format appears in the sample (set or commented, in its
/// section) and in the reference as `section.key`.
#[test]
fn every_key_is_documented() {
    let mut section = String::new();
    let mut in_sample = Vec::new();
    for line in SAMPLE.lines() {
        if let Some(h) = line.strip_prefix('[') {
            section = h.trim_end_matches(']').to_string();
            continue;
        }
        let l = line.strip_prefix("# ").unwrap_or(line);
        if let Some((k, _)) = l.split_once(" = ") {
            if k.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                in_sample.push(format!("{section}.{k}"));
            }
        }
    }
    let keys = known_keys();
    assert!(keys.len() > 40, "{keys:?}");
    for key in keys {
        assert!(
            in_sample.contains(&key),
            "{key} is not in docs/mediafork.toml"
        );
        assert!(
            REFERENCE.contains(&format!("`{key}`")),
            "{key} is not in docs/configuration.md"
        );
    }
    // And nothing documented that does not exist.
    let known = known_keys();
    for key in in_sample {
        assert!(
            known.contains(&key),
            "docs/mediafork.toml names unknown key {key}"
        );
    }
}

#[test]
fn reference_names_the_reloadable_keys() {
    for key in RELOADABLE_KEYS {
        assert!(REFERENCE.contains(key), "{key}");
    }
}

// ---- syntax errors, unknown keys, wrong types ----

#[test]
fn unknown_key_names_file_line_and_suggestion() {
    let err =
        parse("[sip]\nlisten = [\"0.0.0.0:5060\"]\nlistn = [\"0.0.0.0:5070\"]\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("test.toml:3:1: unknown key \"sip.listn\" (did you mean \"listen\"?)"),
        "{msg}"
    );
    assert_eq!(err.keys(), vec!["sip.listn"]);
}

#[test]
fn unknown_key_in_nested_and_dotted_tables() {
    let msg = parse("[sip.tls]\ncrt = \"x\"\n").unwrap_err().to_string();
    assert!(
        msg.contains("test.toml:2:1: unknown key \"sip.tls.crt\" (did you mean \"cert\"?)"),
        "{msg}"
    );
    let msg = parse("sip.tls.crt = \"x\"\n").unwrap_err().to_string();
    assert!(msg.contains("unknown key \"sip.tls.crt\""), "{msg}");
    let msg = parse("[sip]\ntls = { crt = \"x\" }\n")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("test.toml:2:9: unknown key \"sip.tls.crt\""),
        "{msg}"
    );
}

#[test]
fn unknown_key_in_the_wrong_section_points_to_the_right_one() {
    let msg = parse("[sip]\nworkers = 2\n").unwrap_err().to_string();
    assert!(
        msg.contains("unknown key \"sip.workers\" (did you mean \"media.workers\"?)"),
        "{msg}"
    );
    let msg = parse("[sipp]\n").unwrap_err().to_string();
    assert!(
        msg.contains("test.toml:1:2: unknown key \"sipp\" (did you mean \"sip\"?)"),
        "{msg}"
    );
    let msg = parse("[media]\nzzzzzz = 1\n").unwrap_err().to_string();
    assert!(msg.contains("valid keys here: address, rtp_ports"), "{msg}");
}

#[test]
fn wrong_type_names_key_and_line() {
    let msg = expect_err(
        "[media]\nworkers = \"two\"\n",
        "media.workers",
        "invalid type",
    );
    assert!(msg.starts_with("test.toml:2:11: media.workers: "), "{msg}");
    let msg = expect_err(
        "\n[media]\nreorder_window = 200\n",
        "media.reorder_window",
        "\"30s\"",
    );
    assert!(msg.starts_with("test.toml:3:"), "{msg}");
}

#[test]
fn unknown_enum_value_suggests() {
    let msg = expect_err(
        "[media]\nbackend = \"dpk\"\n",
        "media.backend",
        "did you mean \"dpdk\"?",
    );
    assert!(msg.contains("\"socket\", \"dpdk\""), "{msg}");
    expect_err(
        "[sip]\ntransports = [\"udp\", \"tls\"]\n",
        "sip.transports",
        "unknown value \"tls\"",
    );
}

#[test]
fn toml_syntax_error_has_line() {
    let err = parse("[sip]\nlisten = [\"0.0.0.0:5060\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("test.toml:"), "{msg}");
    assert!(
        matches!(err, ConfigError::Parse { line: 2..=3, .. }),
        "{err:?}"
    );
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mediafork.toml");
    std::fs::write(&path, "[media]\nworkrs = 2\n").unwrap();
    let msg = Config::load(&path).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!(
            "{}:2:1: unknown key \"media.workrs\"",
            path.display()
        )),
        "{msg}"
    );

    std::fs::write(&path, "[media]\nworkers = 2\n").unwrap();
    assert_eq!(Config::load(&path).unwrap().media.workers, 2);

    let missing = dir.path().join("nope.toml");
    let err = Config::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("nope.toml"), "{err}");
}

// ---- validation, one key at a time ----

#[test]
fn rtp_ports_errors() {
    let msg = expect_err(
        "[media]\nrtp_ports = \"43500-39500\"\n",
        "media.rtp_ports",
        "\"43500-39500\": the low port is above the high port",
    );
    assert!(
        msg.starts_with("test.toml:2:13: media.rtp_ports: "),
        "{msg}"
    );
    expect_err(
        "[media]\nrtp_ports = \"40000\"\n",
        "media.rtp_ports",
        "LO-HI",
    );
    expect_err(
        "[media]\nrtp_ports = \"80-9000\"\n",
        "media.rtp_ports",
        "below 1024",
    );
    expect_err(
        "[media]\nrtp_ports = \"40000-40002\"\n",
        "media.rtp_ports",
        "at least 4",
    );
    expect_err(
        "[sip]\nlisten = [\"0.0.0.0:40000\"]\n[media]\nrtp_ports = \"39500-43500\"\n",
        "media.rtp_ports",
        "UDP port 40000 of sip.listen",
    );
    // TCP-only SIP cannot collide with UDP media.
    parse("[sip]\nlisten = [\"0.0.0.0:40000\"]\ntransports = [\"tcp\"]\n").unwrap();
    parse("[media]\nrtp_ports = \"40000-40003\"\n").unwrap();
}

#[test]
fn rtp_ports_checked_when_set_in_code() {
    let mut c = Config::default();
    c.media.rtp_ports = PortRange {
        lo: 43500,
        hi: 39500,
    };
    let msg = c.validate().unwrap_err().to_string();
    assert!(
        msg.contains("media.rtp_ports: \"43500-39500\": the low port is above the high port"),
        "{msg}"
    );
}

#[test]
fn worker_and_writer_counts() {
    expect_err("[media]\nworkers = 0\n", "media.workers", "use 1 to 256");
    expect_err("[media]\nworkers = 257\n", "media.workers", "use 1 to 256");
    expect_err("[media]\nwriters = 0\n", "media.writers", "use 1 to 256");
    let msg = expect_err("[media]\nworkers = -1\n", "media.workers", "invalid value");
    assert!(msg.starts_with("test.toml:2:"), "{msg}");
}

#[test]
fn worker_cores() {
    let host = Host {
        online_cpus: vec![0, 1, 2, 3],
        dual_stack: true,
    };
    let mut c = Config::default();
    c.media.workers = 2;
    c.media.worker_cores = vec![2, 3];
    assert!(check(&c, &host).is_empty());

    c.media.worker_cores = vec![2];
    let p = check(&c, &host);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "media.worker_cores");
    assert!(p[0].message.contains("1 core(s) for 2 worker(s)"), "{p:?}");

    c.media.worker_cores = vec![2, 7];
    let p = check(&c, &host);
    assert!(
        p[0].message
            .contains("core 7 is not an online CPU of this host (online: 0-3)"),
        "{p:?}"
    );

    c.media.worker_cores = vec![2, 2];
    let p = check(&c, &host);
    assert!(p[0].message.contains("core 2 is listed twice"), "{p:?}");

    // Through the file: more cores than workers.
    expect_err(
        "[media]\nworker_cores = [0, 0]\n",
        "media.worker_cores",
        "for 1 worker(s)",
    );
}

#[test]
fn cpu_list_format() {
    assert_eq!(parse_cpu_list("0-3\n"), Some(vec![0, 1, 2, 3]));
    assert_eq!(parse_cpu_list("0,2-3,8"), Some(vec![0, 2, 3, 8]));
    assert_eq!(parse_cpu_list(""), None);
    assert_eq!(parse_cpu_list("3-1"), None);
    assert_eq!(parse_cpu_list("x"), None);
}

#[test]
fn durations_must_be_positive_where_it_matters() {
    expect_err(
        "[media]\nreorder_window = \"0s\"\n",
        "media.reorder_window",
        "more than 0",
    );
    expect_err(
        "[media]\nreorder_window = \"1m\"\n",
        "media.reorder_window",
        "at most \"10s\"",
    );
    expect_err(
        "[media]\nmax_gap = \"0ms\"\n",
        "media.max_gap",
        "more than 0",
    );
    expect_err(
        "[recordings]\nflush_interval = \"0s\"\n",
        "recordings.flush_interval",
        "more than 0",
    );
    expect_err(
        "[limits]\nno_media_timeout = \"0s\"\n",
        "limits.no_media_timeout",
        "remove the key",
    );
    expect_err(
        "[shutdown]\ngrace_period = \"48h\"\n",
        "shutdown.grace_period",
        "check the unit",
    );
    expect_err(
        "[media]\nport_quarantine = \"ten\"\n",
        "media.port_quarantine",
        "not a duration",
    );
    // Zero quarantine and zero grace are allowed.
    let c =
        parse("[media]\nport_quarantine = \"0s\"\n[shutdown]\ngrace_period = \"0s\"\n").unwrap();
    assert_eq!(c.media.port_quarantine, Duration::ZERO);
    assert_eq!(c.shutdown.grace_period, Duration::ZERO);
}

#[test]
fn session_timer_limits() {
    expect_err("[sip]\nmin_se = \"60s\"\n", "sip.min_se", "RFC 4028");
    expect_err(
        "[sip]\nmin_se = \"120s\"\nsession_expires_default = \"100s\"\n",
        "sip.session_expires_default",
        "shorter than sip.min_se (\"2m\")",
    );
    let c = parse("[sip]\nmin_se = \"2m\"\nsession_expires_default = \"1h\"\n").unwrap();
    assert_eq!(c.sip.min_se, Duration::from_secs(120));
}

#[test]
fn tls_errors() {
    expect_err(
        "[sip.tls]\ncert = \"/etc/x.pem\"\n",
        "sip.tls.key",
        "TLS needs both sip.tls.cert and sip.tls.key",
    );
    expect_err(
        "[sip.tls]\nkey = \"/etc/x.pem\"\n",
        "sip.tls.cert",
        "is missing",
    );
    expect_err(
        "[sip.tls]\ncert = \"/etc/x.pem\"\nkey = \"/etc/x.pem\"\n",
        "sip.tls.cert",
        "file /etc/x.pem does not exist",
    );
    expect_err(
        "[sip.tls]\nclient_ca = \"/etc/ca.pem\"\n",
        "sip.tls.client_ca",
        "TLS is off",
    );

    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "x").unwrap();
    std::fs::write(&key, "x").unwrap();
    let text = format!(
        "[sip]\ntransports = []\n[sip.tls]\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let c = parse(&text).unwrap();
    assert!(c.sip.tls.enabled());
    let text = format!(
        "[sip.tls]\ncert = {:?}\nkey = {:?}\nlisten = \"0.0.0.0:5060\"\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    expect_err(&text, "sip.tls.listen", "conflicts with sip.listen");
    let text = format!(
        "[sip.tls]\ncert = {:?}\nkey = {:?}\n",
        dir.path().display().to_string(),
        key.display().to_string()
    );
    expect_err(&text, "sip.tls.cert", "is not a regular file");
}

#[test]
fn sip_listen_and_transports() {
    expect_err(
        "[sip]\nlisten = [\"0.0.0.0\"]\n",
        "sip.listen",
        "has no port: write it as \"0.0.0.0:PORT\"",
    );
    expect_err(
        "[sip]\nlisten = [\"::1\"]\n",
        "sip.listen",
        "\"[::1]:PORT\"",
    );
    expect_err(
        "[sip]\nlisten = [\"sbc.example:5060\"]\n",
        "sip.listen",
        "not an IP address and port",
    );
    expect_err(
        "[sip]\nlisten = \"0.0.0.0:5060\"\n",
        "sip.listen",
        "invalid type",
    );
    expect_err("[sip]\nlisten = [\"0.0.0.0:0\"]\n", "sip.listen", "port 0");
    expect_err(
        "[sip]\nlisten = [\"0.0.0.0:5060\", \"0.0.0.0:5060\"]\n",
        "sip.listen",
        "is listed twice",
    );
    expect_err(
        "[sip]\nlisten = [\"0.0.0.0:5060\", \"192.0.2.1:5060\"]\n",
        "sip.listen",
        "conflicts with sip.listen (\"0.0.0.0:5060\")",
    );
    expect_err(
        "[sip]\ntransports = []\n",
        "sip.transports",
        "nothing would accept SIP",
    );
    expect_err(
        "[sip]\ntransports = [\"udp\", \"udp\"]\n",
        "sip.transports",
        "listed twice",
    );
    expect_err("[sip]\nlisten = []\n", "sip.listen", "is empty");
    let c = parse("[sip]\nlisten = [\"[::]:5060\", \"0.0.0.0:5070\"]\n").unwrap();
    assert_eq!(c.sip.listen.len(), 2);
}

/// `0.0.0.0:P` and `[::]:P` collide only where IPv6 wildcard sockets also
/// take IPv4 (Linux's default).
#[test]
fn ipv4_and_ipv6_wildcards_depend_on_the_host() {
    let mut c = Config::default();
    c.sip.listen = vec![addr("0.0.0.0:5060"), addr("[::]:5060")];
    let dual = Host {
        online_cpus: vec![0],
        dual_stack: true,
    };
    let p = check(&c, &dual);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "sip.listen");
    assert!(
        p[0].message.contains("\"[::]:5060\" alone covers both"),
        "{p:?}"
    );

    let v6only = Host {
        online_cpus: vec![0],
        dual_stack: false,
    };
    assert!(check(&c, &v6only).is_empty());
    // A specific IPv6 address never collides with the IPv4 wildcard.
    c.sip.listen = vec![addr("0.0.0.0:5060"), addr("[2001:db8::1]:5060")];
    assert!(check(&c, &dual).is_empty());
}

#[test]
fn sip_other_keys() {
    expect_err("[sip]\nuser_agent = \"\"\n", "sip.user_agent", "is empty");
    expect_err(
        "[sip]\nuser_agent = \"a\\r\\nX: y\"\n",
        "sip.user_agent",
        "control character",
    );
    expect_err(
        "[sip]\nmax_message_bytes = 100\n",
        "sip.max_message_bytes",
        "out of range",
    );
    let c = parse("[sip]\noptions_response = \"always_ok\"\n").unwrap();
    assert_eq!(c.sip.options_response, OptionsResponse::AlwaysOk);
}

#[test]
fn acl_entries() {
    let c =
        parse("[sip]\nallowed_sources = [\"192.0.2.0/24\", \"198.51.100.7\", \"2001:db8::/32\"]\n")
            .unwrap();
    assert_eq!(c.sip.allowed_sources.len(), 3);
    assert!(c.sip.allows("192.0.2.99".parse().unwrap()));
    assert!(c.sip.allows("::ffff:198.51.100.7".parse().unwrap()));
    assert!(c.sip.allows("2001:db8:1::5".parse().unwrap()));
    assert!(!c.sip.allows("198.51.100.8".parse().unwrap()));
    assert!(Config::default().sip.allows("203.0.113.1".parse().unwrap()));

    expect_err(
        "[sip]\nallowed_sources = [\"10.1.2.3/8\"]\n",
        "sip.allowed_sources",
        "write \"10.0.0.0/8\" for the whole network",
    );
    expect_err(
        "[sip]\nallowed_sources = [\"10.0.0.0/33\"]\n",
        "sip.allowed_sources",
        "above 32",
    );
    expect_err(
        "[sip]\nallowed_sources = [\"sbc1\"]\n",
        "sip.allowed_sources",
        "not an IP address or prefix",
    );
}

#[test]
fn cidr_parsing() {
    let n: IpNet = "192.0.2.0/24".parse().unwrap();
    assert_eq!(
        (n.addr(), n.prefix_len()),
        ("192.0.2.0".parse().unwrap(), 24)
    );
    assert_eq!(n.to_string(), "192.0.2.0/24");
    assert!(n.contains("192.0.2.255".parse().unwrap()));
    assert!(!n.contains("192.0.3.0".parse().unwrap()));
    assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
    assert!(!n.contains("2001:db8::1".parse().unwrap()));

    let host: IpNet = "198.51.100.7".parse().unwrap();
    assert_eq!(host.prefix_len(), 32);
    let v6: IpNet = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
    assert!(!v6.contains("2001:db9::1".parse().unwrap()));
    assert_eq!("::1".parse::<IpNet>().unwrap().prefix_len(), 128);

    let any: IpNet = "0.0.0.0/0".parse().unwrap();
    assert!(any.contains("203.0.113.9".parse().unwrap()));
    assert!(!any.contains("2001:db8::1".parse().unwrap()));
    assert!("::/0"
        .parse::<IpNet>()
        .unwrap()
        .contains("2001:db8::1".parse().unwrap()));

    assert!(matches!(
        "10.1.2.3/8".parse::<IpNet>(),
        Err(IpNetError::HostBits { .. })
    ));
    assert!(matches!(
        "2001:db8::1/32".parse::<IpNet>(),
        Err(IpNetError::HostBits { .. })
    ));
    assert!(matches!(
        "10.0.0.0/33".parse::<IpNet>(),
        Err(IpNetError::PrefixTooLong { .. })
    ));
    assert!(matches!(
        "::/129".parse::<IpNet>(),
        Err(IpNetError::PrefixTooLong { .. })
    ));
    for bad in [
        "",
        "10.0.0.0/",
        "10.0.0.0/x",
        "10.0.0.0/-1",
        "10.0.0/8",
        "host/8",
        "10.0.0.0/+8",
    ] {
        assert!(bad.parse::<IpNet>().is_err(), "{bad:?} parsed");
    }
}

#[test]
fn media_address() {
    let c = parse("[media]\naddress = \"192.0.2.10\"\n").unwrap();
    assert_eq!(
        c.media.address,
        MediaAddr::Ip("192.0.2.10".parse().unwrap())
    );
    assert_eq!(c.media.address.ip(), Some("192.0.2.10".parse().unwrap()));
    assert_eq!(MediaAddr::Auto.ip(), None);
    parse("[media]\naddress = \"2001:db8::10\"\n").unwrap();
    expect_err(
        "[media]\naddress = \"0.0.0.0\"\n",
        "media.address",
        "cannot be put in an SDP answer",
    );
    expect_err(
        "[media]\naddress = \"239.1.1.1\"\n",
        "media.address",
        "multicast",
    );
    expect_err(
        "[media]\naddress = \"eth0\"\n",
        "media.address",
        "neither \"auto\" nor an IP address",
    );
}

#[test]
fn media_sizes() {
    expect_err(
        "[media]\nmax_tracks = 0\n",
        "media.max_tracks",
        "out of range",
    );
    expect_err(
        "[media]\nring_bytes = 1024\n",
        "media.ring_bytes",
        "out of range",
    );
    expect_err(
        "[media]\nsocket_rcvbuf = 10\n",
        "media.socket_rcvbuf",
        "out of range",
    );
}

#[test]
fn recordings_dir() {
    expect_err("[recordings]\ndir = \"\"\n", "recordings.dir", "is empty");
    let file = tempfile::NamedTempFile::new().unwrap();
    let text = format!(
        "[recordings]\ndir = {:?}\n",
        file.path().display().to_string()
    );
    expect_err(&text, "recordings.dir", "is not a directory");
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[recordings]\ndir = {:?}\n",
        dir.path().display().to_string()
    );
    assert_eq!(parse(&text).unwrap().recordings.dir, dir.path());
}

#[test]
fn limits() {
    expect_err(
        "[limits]\nmax_calls = 0\n",
        "limits.max_calls",
        "at least 1",
    );
    let c = parse("[limits]\nmax_calls = 10\nno_media_timeout = \"5m\"\n").unwrap();
    assert_eq!(c.limits.no_media_timeout, Some(Duration::from_secs(300)));
}

#[test]
fn max_calls_per_source() {
    // Off by default: an SBC sends all its calls from one address.
    assert_eq!(Config::default().limits.max_calls_per_source, 0);
    let c = parse("[limits]\nmax_calls = 10\nmax_calls_per_source = 4\n").unwrap();
    assert_eq!(c.limits.max_calls_per_source, 4);
    let c = parse("[limits]\nmax_calls = 10\nmax_calls_per_source = 10\n").unwrap();
    assert_eq!(c.limits.max_calls_per_source, 10);
    expect_err(
        "[limits]\nmax_calls = 10\nmax_calls_per_source = 11\n",
        "limits.max_calls_per_source",
        "more than limits.max_calls = 10",
    );
    expect_err(
        "[limits]\nmax_calls_per_source = -1\n",
        "limits.max_calls_per_source",
        "",
    );
    // Reloaded with the rest of [limits].
    let old = Config::default();
    let mut new = old.clone();
    new.limits.max_calls_per_source = 3;
    assert_eq!(
        old.changes_needing_restart(&new).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn admin_and_metrics() {
    expect_err(
        "[admin]\nlisten = \"0.0.0.0:8960\"\n",
        "admin.token",
        "is required because admin.listen (\"0.0.0.0:8960\") is not a loopback address",
    );
    expect_err(
        "[admin]\nlisten = \"0.0.0.0:8960\"\ntoken = \"short\"\n",
        "admin.token",
        "shorter than 16",
    );
    expect_err(
        "[admin]\ntoken = \"0123456789 abcdef0123\"\n",
        "admin.token",
        "printable ASCII",
    );
    let c =
        parse("[admin]\nlisten = \"0.0.0.0:8960\"\ntoken = \"0123456789abcdef0123\"\n").unwrap();
    assert_eq!(c.admin.token.as_deref(), Some("0123456789abcdef0123"));
    parse("[admin]\nlisten = \"[::1]:8960\"\n").unwrap();

    expect_err(
        "[metrics]\nlisten = \"127.0.0.1:8960\"\n",
        "admin.listen",
        "conflicts with metrics.listen (\"127.0.0.1:8960\")",
    );
    expect_err(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
        "metrics.listen",
        "port 0",
    );
    expect_err(
        "[metrics]\nlisten = \"0.0.0.0:5060\"\n",
        "metrics.listen",
        "conflicts with sip.listen",
    );
}

#[test]
fn log_settings() {
    let c =
        parse("[log]\nformat = \"json\"\nlevel = \"info,mediafork_control::sip=debug\"\n").unwrap();
    assert_eq!(c.log.format, LogFormat::Json);
    parse("[log]\nlevel = \"WARN\"\n").unwrap();
    expect_err(
        "[log]\nlevel = \"inf\"\n",
        "log.level",
        "\"inf\" is not a level",
    );
    expect_err("[log]\nlevel = \"\"\n", "log.level", "is empty");
    expect_err(
        "[log]\nlevel = \"info,my crate=debug\"\n",
        "log.level",
        "not a module path",
    );
    expect_err(
        "[log]\nformat = \"xml\"\n",
        "log.format",
        "unknown value \"xml\"",
    );
}

#[test]
fn dpdk_checked_only_for_the_dpdk_backend() {
    // Ignored (but parsed) with sockets.
    parse("[dpdk]\nmempool_cache = 10000\n").unwrap();
    expect_err("[dpdk]\nprt = \"x\"\n", "dpdk.prt", "did you mean \"port\"");

    expect_err(
        "[media]\nbackend = \"dpdk\"\n",
        "dpdk.port",
        "is required with media.backend = \"dpdk\"",
    );
    let base = "[media]\nbackend = \"dpdk\"\nworkers = 2\nworker_cores = []\n[dpdk]\nport = \"0000:3b:00.0\"\n";
    let c = parse(base).unwrap();
    assert_eq!(c.dpdk.port.as_deref(), Some("0000:3b:00.0"));
    expect_err(
        &format!("{base}rx_queues = 4\n"),
        "dpdk.rx_queues",
        "set it to 2 or remove it",
    );
    parse(&format!("{base}rx_queues = 2\n")).unwrap();
    expect_err(
        &format!("{base}mempool_cache = 1024\n"),
        "dpdk.mempool_cache",
        "limit of 512",
    );
    expect_err(
        &format!("{base}mempool_mbufs = 300\nmempool_cache = 256\n"),
        "dpdk.mempool_cache",
        "mempool_mbufs / 1.5",
    );
    expect_err(
        &format!("{base}mempool_mbufs = 2047\n"),
        "dpdk.mempool_mbufs",
        "use at least 3328 (e.g. 4095)",
    );
}

#[test]
fn all_problems_are_reported_with_lines() {
    let err = parse("[media]\nworkers = 0\nwriters = 0\n\n[limits]\nmax_calls = 0\n").unwrap_err();
    let msg = err.to_string();
    assert_eq!(
        err.keys(),
        vec!["media.workers", "media.writers", "limits.max_calls"]
    );
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines.len(), 3, "{msg}");
    assert!(
        lines[0].starts_with("test.toml:2: media.workers: 0 is out of range"),
        "{msg}"
    );
    assert!(
        lines[1].starts_with("test.toml:3: media.writers: "),
        "{msg}"
    );
    assert!(
        lines[2].starts_with("test.toml:6: limits.max_calls: "),
        "{msg}"
    );
}

#[test]
fn a_problem_about_an_absent_key_has_no_line() {
    let msg = parse("[sip.tls]\ncert = \"/nonexistent/c.pem\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("test.toml:2: sip.tls.cert: file /nonexistent/c.pem does not exist"),
        "{msg}"
    );
    assert!(msg.contains("test.toml: sip.tls.key: is missing"), "{msg}");
}

#[test]
fn warnings() {
    let w = Config::default().warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].key, "sip.allowed_sources");

    let c = parse(
        "[sip]\nallowed_sources = [\"192.0.2.0/24\"]\n[media]\nrtp_ports = \"40000-40399\"\n[limits]\nmax_calls = 200\n[metrics]\nlisten = \"0.0.0.0:9464\"\n",
    )
    .unwrap();
    let keys: Vec<String> = c.warnings().into_iter().map(|w| w.key).collect();
    assert_eq!(keys, vec!["limits.max_calls", "metrics.listen"]);
}

// ---- overrides ----

#[test]
fn overrides_win_over_the_file() {
    let mut c = parse(
        "[sip]\nlisten = [\"192.0.2.1:5060\"]\n[media]\nworkers = 2\nrtp_ports = \"20000-29999\"\n[recordings]\ndir = \"/srv/rec\"\n",
    )
    .unwrap();

    // Nothing given: the file stands.
    let before = c.clone();
    c.apply(Overrides::default()).unwrap();
    assert_eq!(c, before);

    c.apply(Overrides {
        sip_listen: vec![addr("0.0.0.0:5080"), addr("[::]:5090")],
        media_addr: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
        rtp_ports: Some(PortRange::new(30000, 30999).unwrap()),
        recordings: Some(PathBuf::from("/tmp/rec")),
        metrics_listen: Some(addr("127.0.0.1:9100")),
        admin_listen: Some(addr("127.0.0.1:9000")),
        backend: None,
        workers: Some(4),
    })
    .unwrap();
    assert_eq!(c.sip.listen, vec![addr("0.0.0.0:5080"), addr("[::]:5090")]);
    assert_eq!(
        c.media.address,
        MediaAddr::Ip("192.0.2.10".parse().unwrap())
    );
    assert_eq!(c.media.rtp_ports.to_string(), "30000-30999");
    assert_eq!(c.recordings.dir, PathBuf::from("/tmp/rec"));
    assert_eq!(c.metrics.listen, Some(addr("127.0.0.1:9100")));
    assert_eq!(c.admin.listen, addr("127.0.0.1:9000"));
    assert_eq!(c.media.workers, 4);
    assert_eq!(c.media.backend, Backend::Socket);

    // An empty sip_listen keeps the list.
    c.apply(Overrides {
        workers: Some(1),
        ..Overrides::default()
    })
    .unwrap();
    assert_eq!(c.sip.listen.len(), 2);
}

#[test]
fn bad_overrides_are_refused_and_change_nothing() {
    let mut c2 = Config::default();
    let before = c2.clone();
    let err = c2
        .apply(Overrides {
            workers: Some(0),
            admin_listen: Some(addr("0.0.0.0:8960")),
            ..Overrides::default()
        })
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("media.workers: 0 is out of range"), "{msg}");
    assert!(msg.contains("admin.token: is required"), "{msg}");
    assert!(
        msg.starts_with("configuration with command-line overrides: "),
        "{msg}"
    );
    assert_eq!(c2, before);

    // A flag that breaks a key the file set: the file's one core no longer
    // fits --workers 3.
    let mut c3 = Config::default();
    c3.media.workers = 1;
    c3.media.worker_cores = vec![0];
    c3.validate().unwrap();
    let err = c3
        .apply(Overrides {
            workers: Some(3),
            ..Overrides::default()
        })
        .unwrap_err();
    assert_eq!(err.keys(), vec!["media.worker_cores"]);

    let mut c4 = Config::default();
    c4.apply(Overrides {
        backend: Some(Backend::Dpdk),
        ..Overrides::default()
    })
    .unwrap_err();
    assert_eq!(c4.media.backend, Backend::Socket);
}

#[test]
fn backend_from_str() {
    assert_eq!("dpdk".parse::<Backend>(), Ok(Backend::Dpdk));
    assert_eq!("socket".parse::<Backend>(), Ok(Backend::Socket));
    assert!("sockets"
        .parse::<Backend>()
        .unwrap_err()
        .contains("\"socket\" or \"dpdk\""));
    assert_eq!(Backend::Dpdk.to_string(), "dpdk");
}

// ---- durations ----

#[test]
fn duration_parsing() {
    let ok = [
        ("500ms", Duration::from_millis(500)),
        ("30s", Duration::from_secs(30)),
        ("2m", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
        ("1m30s", Duration::from_secs(90)),
        ("1h0m5s250ms", Duration::from_millis(3_605_250)),
        ("0s", Duration::ZERO),
        (" 10s ", Duration::from_secs(10)),
    ];
    for (text, want) in ok {
        assert_eq!(parse_duration(text), Ok(want), "{text}");
    }
    let bad = [
        ("", "is not a duration"),
        ("30", "has no unit"),
        ("s", "is not a duration"),
        ("-1s", "negative"),
        ("1.5s", "fraction"),
        ("30sec", "unknown unit"),
        ("30 s", "unknown unit"),
        ("1x", "unknown unit"),
        ("10d", "unknown unit"),
        ("1mss", "unknown unit"),
        ("99999999999999999999s", "too large"),
        ("18446744073709551615h", "too large"),
    ];
    for (text, why) in bad {
        let err = parse_duration(text).unwrap_err();
        assert!(err.contains(why), "{text:?}: {err}");
        assert!(err.contains(&format!("\"{text}\"")), "{text:?}: {err}");
    }
}

#[test]
fn duration_formatting_round_trips() {
    for (d, text) in [
        (Duration::ZERO, "0s"),
        (Duration::from_millis(200), "200ms"),
        (Duration::from_millis(1500), "1500ms"),
        (Duration::from_secs(90), "90s"),
        (Duration::from_secs(1800), "30m"),
        (Duration::from_secs(7200), "2h"),
    ] {
        assert_eq!(format_duration(d), text);
        assert_eq!(parse_duration(text), Ok(d));
    }
    // Sub-millisecond values (set in code) round up, never to zero.
    assert_eq!(format_duration(Duration::from_micros(50)), "1ms");
}

// ---- output ----

#[test]
fn round_trip_through_toml() {
    let default = Config::default();
    let text = default.to_toml_string().unwrap();
    assert_eq!(parse(&text).unwrap(), default);

    let mut c = Config::default();
    c.sip.listen = vec![addr("192.0.2.1:5060"), addr("[2001:db8::1]:5060")];
    c.sip.transports = vec![Transport::Tcp];
    c.sip.allowed_sources = vec![
        "192.0.2.0/24".parse().unwrap(),
        "2001:db8::/32".parse().unwrap(),
    ];
    c.sip.options_response = OptionsResponse::AlwaysOk;
    c.media.address = MediaAddr::Ip("192.0.2.10".parse().unwrap());
    c.media.rtp_ports = PortRange::new(20000, 29999).unwrap();
    c.media.reorder_window = Duration::from_millis(150);
    c.media.call_assignment = CallAssignment::RoundRobin;
    c.recordings.pcap = true;
    c.recordings.dir = PathBuf::from("/var/lib/mediafork/recordings");
    c.limits.no_media_timeout = Some(Duration::from_secs(300));
    c.metrics.listen = Some(DEFAULT_METRICS_LISTEN);
    c.admin.listen = addr("0.0.0.0:8960");
    c.admin.token = Some("0123456789abcdef0123".into());
    c.log.format = LogFormat::Json;
    c.dpdk.eal_args = vec!["-l".into(), "0-3".into()];
    c.dpdk.port = Some("0000:3b:00.0".into());
    let text = c.to_toml_string().unwrap();
    assert_eq!(parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}")), c);

    // Every key, optional ones included, reads back.
    let full = fully_populated();
    let text = full.to_toml_string().unwrap();
    assert_eq!(parse_unvalidated(&text, "full").unwrap(), full);
}

#[test]
fn redacted_hides_the_token() {
    let mut c = Config::default();
    c.admin.token = Some("0123456789abcdef0123".into());
    let shown = c.redacted().to_toml_string().unwrap();
    assert!(!shown.contains("0123456789abcdef0123"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!Config::default()
        .redacted()
        .to_toml_string()
        .unwrap()
        .contains("token"));
}

#[test]
fn dataplane_mapping() {
    let c = parse(
        "[media]\nrtp_ports = \"20000-20999\"\nworkers = 1\nworker_cores = [0]\nwriters = 3\nreorder_window = \"150ms\"\nmax_gap = \"10s\"\nmax_tracks = 4096\nring_bytes = 1048576\n[recordings]\ndir = \"/srv/rec\"\ndate_partitions = false\npcap = true\nflush_interval = \"2s\"\n",
    )
    .unwrap();
    let dp = c.dataplane();
    assert_eq!(dp.port_range, PortRange::new(20000, 20999).unwrap());
    assert_eq!(dp.recordings_dir, PathBuf::from("/srv/rec"));
    assert!(!dp.date_partitions);
    assert!(dp.write_pcap);
    assert_eq!((dp.workers, dp.writers), (1, 3));
    assert_eq!(dp.worker_cores, vec![0]);
    assert_eq!(dp.max_tracks, 4096);
    assert_eq!(dp.ring_bytes, 1 << 20);
    assert_eq!(dp.reorder_window, Duration::from_millis(150));
    assert_eq!(dp.max_gap, Duration::from_secs(10));
    assert_eq!(dp.flush_interval, Duration::from_secs(2));
    let defaults = mediafork_dataplane::config::DataplaneConfig::default();
    assert_eq!(dp.idle_sleep, defaults.idle_sleep);
    assert_eq!(dp.max_addresses, defaults.max_addresses);

    let mut dpdk = c.clone();
    dpdk.media.backend = Backend::Dpdk;
    assert_eq!(dpdk.dataplane().idle_sleep, Duration::ZERO);

    // The defaults agree with the data plane's own.
    let dp = Config::default().dataplane();
    assert_eq!(dp.port_range, defaults.port_range);
    assert_eq!(dp.reorder_window, defaults.reorder_window);
    assert_eq!(dp.max_gap, defaults.max_gap);
    assert_eq!(dp.flush_interval, defaults.flush_interval);
    assert_eq!(dp.max_tracks, defaults.max_tracks);
    assert_eq!(dp.ring_bytes, defaults.ring_bytes);
    assert_eq!(dp.date_partitions, defaults.date_partitions);
}

#[test]
fn reload_reports_keys_needing_restart() {
    let old = Config::default();
    let mut new = old.clone();
    new.sip.allowed_sources = vec!["192.0.2.0/24".parse().unwrap()];
    new.log.level = "debug".into();
    new.recordings.pcap = true;
    new.limits.max_calls = 10;
    new.limits.no_media_timeout = Some(Duration::from_secs(60));
    assert_eq!(
        old.changes_needing_restart(&new).unwrap(),
        Vec::<String>::new()
    );

    new.media.workers = 2;
    new.metrics.listen = Some(DEFAULT_METRICS_LISTEN);
    new.log.format = LogFormat::Json;
    assert_eq!(
        old.changes_needing_restart(&new).unwrap(),
        vec!["log.format", "media.workers", "metrics.listen"]
    );
}

/// The data plane's test keys (X25519, RSA-2048, RSA-1024), written to a
/// temporary directory.
fn encryption_keys() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf, PathBuf) {
    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dataplane/src/recording/sealed/testdata"
    );
    let tmp = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let to = tmp.path().join(name);
        std::fs::copy(format!("{DIR}/{name}"), &to).unwrap();
        to
    };
    let x = copy("x25519.pub");
    let rsa = copy("rsa2048.pub");
    let small = copy("rsa1024.pub");
    let private = copy("x25519.key");
    (tmp, x, rsa, small, private)
}

#[test]
fn encryption_needs_a_usable_public_key() {
    let (_tmp, x, rsa, small, private) = encryption_keys();
    let with = |path: &std::path::Path| {
        format!(
            "[encryption]\nenabled = true\npublic_key = \"{}\"\n",
            path.display()
        )
    };
    expect_err(
        "[encryption]\nenabled = true\n",
        "encryption.public_key",
        "is required",
    );
    expect_err(
        &with(&x.with_file_name("missing.pub")),
        "encryption.public_key",
        "missing.pub",
    );
    expect_err(&with(&small), "encryption.public_key", "1024 bits");
    expect_err(&with(&private), "encryption.public_key", "is a private key");
    expect_err(
        "[encryption]\ntenant = \"a b\"\n",
        "encryption.tenant",
        "printable ASCII",
    );
    expect_err(
        "[encryption]\nkey_id = \"\"\n",
        "encryption.key_id",
        "is empty",
    );

    let c = parse(&with(&x)).unwrap();
    let to = c.dataplane().encryption.expect("sealing on");
    assert_eq!(to.key_id, to.public_key.fingerprint());
    assert!(to.key_id.starts_with("sha256:") && to.key_id.len() == 7 + 32);
    assert_eq!(to.tenant, "default");
    let c = parse(&format!(
        "{}key_id = \"tenant-a-2024\"\ntenant = \"tenant-a\"\n",
        with(&rsa)
    ))
    .unwrap();
    let to = c.try_dataplane().unwrap().encryption.unwrap();
    assert_eq!(
        (to.key_id.as_str(), to.tenant.as_str()),
        ("tenant-a-2024", "tenant-a")
    );
    assert_eq!(to.public_key.describe(), "RSA-2048");

    // Off by default, and off means plain files, with a warning when a key
    // is configured but not used.
    assert!(Config::default().dataplane().encryption.is_none());
    let c = parse(&format!("[encryption]\npublic_key = \"{}\"\n", x.display())).unwrap();
    assert!(c.dataplane().encryption.is_none());
    assert!(c
        .warnings()
        .iter()
        .any(|w| w.key == "encryption.public_key"));
}
