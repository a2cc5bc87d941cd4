//! `mediafork run` as an operator runs it: configuration reload on SIGHUP,
//! SIP over TLS, configuration errors at start. Loopback only.

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mediafork_e2e::server::STORAGE_OFF;
use mediafork_e2e::{mediafork, mediafork_bin, tool};

struct Server {
    child: Child,
}

impl Server {
    /// Start `mediafork run ARGS` and wait for its ready line.
    fn start(args: &[&str]) -> Server {
        // Tests run in parallel: an admin port of the test's own, beside
        // the SIP port its configuration or flags name.
        let admin = format!("127.0.0.1:{}", 17000 + std::process::id() % 2000);
        let mut child = Command::new(mediafork_bin())
            .arg("run")
            .args(args)
            .args(["--admin-listen", &admin])
            .env("MEDIAFORK_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mediafork run");
        mediafork_e2e::ready_line(&mut child, Duration::from_secs(20))
            .expect("mediafork run did not become ready");
        Server { child }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// SIGTERM and wait; returns the exit code.
    fn stop(mut self) -> Option<i32> {
        mediafork_e2e::sigterm_and_wait(&mut self.child, Duration::from_secs(10), "mediafork")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn options(branch: &str, from_port: u16, to: &str) -> String {
    format!(
        "OPTIONS sip:srs@{to} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{from_port};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p{branch}\r\nTo: <sip:srs@{to}>\r\n\
         Call-ID: {branch}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Send OPTIONS over UDP; the status line of the answer, if one came.
fn udp_options(to: &str, branch: &str) -> Option<String> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let port = s.local_addr().unwrap().port();
    s.send_to(options(branch, port, to).as_bytes(), to).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .map(str::to_string)
}

fn write_config(path: &Path, sip: &str, rec: &Path, allowed: &str, extra: &str) {
    let text = format!(
        "[sip]\nlisten = [\"{sip}\"]\nallowed_sources = [{allowed}]\n{extra}\n\
         [media]\naddress = \"127.0.0.1\"\nrtp_ports = \"42000-42099\"\n\n\
         [recordings]\ndir = \"{}\"\n{STORAGE_OFF}",
        rec.display()
    );
    std::fs::write(path, text).unwrap();
}

#[test]
fn sighup_reloads_the_source_acl() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("mediafork.toml");
    let sip = "127.0.0.1:16071";
    write_config(&cfg, sip, &tmp.path().join("rec"), "\"127.0.0.0/8\"", "");
    let server = Server::start(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(udp_options(sip, "a1").as_deref(), Some("SIP/2.0 200 OK"));
    // Only a documentation prefix allowed now: loopback is shut out.
    write_config(&cfg, sip, &tmp.path().join("rec"), "\"192.0.2.0/24\"", "");
    server.signal("-HUP");
    let mut refused = false;
    for i in 0..20 {
        if udp_options(sip, &format!("b{i}")).is_none() {
            refused = true;
            break;
        }
    }
    assert!(refused, "after SIGHUP, SIP from 127.0.0.1 must be dropped");
    // A broken file is refused and the running configuration stays.
    std::fs::write(&cfg, "[sip]\nlisten = 5\n").unwrap();
    server.signal("-HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(udp_options(sip, "c1"), None);
    assert_eq!(server.stop(), Some(0));
}

/// `openssl ARGS`, which must succeed.
fn openssl(args: &[&str]) {
    let o = tool("openssl", args);
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A key and a certificate for `cn` signed by `ca` (or self-signed).
fn issue(dir: &std::path::Path, name: &str, cn: &str, ca: Option<&str>) -> (String, String) {
    let key = dir.join(format!("{name}.key")).display().to_string();
    let cert = dir.join(format!("{name}.pem")).display().to_string();
    let subj = format!("/CN={cn}");
    match ca {
        None => openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &key,
            "-out",
            &cert,
        ]),
        Some(ca) => {
            let csr = dir.join(format!("{name}.csr")).display().to_string();
            let ext = dir.join(format!("{name}.ext"));
            std::fs::write(
                &ext,
                format!("subjectAltName=DNS:{cn}\nextendedKeyUsage=clientAuth,serverAuth\n"),
            )
            .unwrap();
            openssl(&[
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subj, "-keyout", &key, "-out",
                &csr,
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                ext.to_str().unwrap(),
                "-out",
                &cert,
            ]);
        }
    }
    (cert, key)
}

/// Send OPTIONS over TLS with `openssl s_client` (with a client
/// certificate when given); the first line of the answer, or "" when the
/// handshake was refused.
fn tls_options(port: u16, client: Option<&(String, String)>, ca: &str) -> String {
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_client",
        "-quiet",
        "-connect",
        &addr,
        "-servername",
        "localhost",
        "-CAfile",
        ca,
    ];
    if let Some((cert, key)) = client {
        args.extend(["-cert", cert.as_str(), "-key", key.as_str()]);
    }
    let mut child = Command::new("openssl")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let req = options("mtls", 5061, &addr).replace("SIP/2.0/UDP", "SIP/2.0/TLS");
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(req.as_bytes());
    let _ = stdin.flush();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    first.trim_end().to_string()
}

// sip.tls.client_ca: only SBCs with a certificate from the configured CA
// get through the TLS handshake.
#[test]
fn mutual_tls_accepts_only_clients_certified_by_the_configured_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    issue(d, "ca", "mediafork test CA", None);
    let ca = d.join("ca").display().to_string();
    let server_cert = issue(d, "server", "localhost", Some(&ca));
    let sbc = issue(d, "sbc", "sbc1.example.net", Some(&ca));
    issue(d, "rogue-ca", "rogue CA", None);
    let rogue = issue(
        d,
        "rogue",
        "sbc1.example.net",
        Some(&d.join("rogue-ca").display().to_string()),
    );
    let cfg = d.join("mediafork.toml");
    let tls = format!(
        "[sip.tls]\nlisten = \"127.0.0.1:16078\"\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{ca}.pem\"\n",
        server_cert.0, server_cert.1
    );
    write_config(&cfg, "127.0.0.1:16077", &d.join("rec"), "", &tls);
    let server = Server::start(&["--config", cfg.to_str().unwrap()]);
    let ca_pem = format!("{ca}.pem");
    assert_eq!(tls_options(16078, Some(&sbc), &ca_pem), "SIP/2.0 200 OK");
    assert_eq!(
        tls_options(16078, None, &ca_pem),
        "",
        "no client certificate"
    );
    assert_eq!(
        tls_options(16078, Some(&rogue), &ca_pem),
        "",
        "certificate from another CA"
    );
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn sip_over_tls_answers_options() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let o = tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg = tmp.path().join("mediafork.toml");
    let tls = format!(
        "[sip.tls]\nlisten = \"127.0.0.1:16073\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    write_config(&cfg, "127.0.0.1:16072", &tmp.path().join("rec"), "", &tls);
    let server = Server::start(&["--config", cfg.to_str().unwrap()]);
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            "127.0.0.1:16073",
            "-servername",
            "localhost",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let req = options("tls1", 5061, "127.0.0.1:16073").replace("SIP/2.0/UDP", "SIP/2.0/TLS");
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(req.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    drop(stdin);
    let _ = client.kill();
    let _ = client.wait();
    assert_eq!(first.trim_end(), "SIP/2.0 200 OK");
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn bad_configuration_is_refused_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "[media]\nrtp_ports = \"43500-39500\"\n").unwrap();
    let o = mediafork(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("media.rtp_ports"), "{err}");
    let o = mediafork(&["config", "check", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    std::fs::write(&cfg, "[sip]\nlisten = [\"127.0.0.1:5060\"]\n").unwrap();
    let o = mediafork(&["config", "check", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("valid"));
}

#[test]
fn dpdk_backend_without_dpdk_support_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let o = mediafork(&[
        "run",
        "--backend",
        "dpdk",
        "--sip-listen",
        "127.0.0.1:16074",
        "--recordings",
        rec.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--features dpdk") || err.contains("dpdk"),
        "{err}"
    );
}

/// A SIPREC call over UDP from the test itself: returns the media ports the
/// recorder answered.
fn place_call(sip: &str, sock: &UdpSocket, call_id: &str) -> Vec<u16> {
    use mediafork_testkit::sip::{self as tsip, CallSpec, Vendor};
    let local = sock.local_addr().unwrap();
    let call = CallSpec::two_streams(call_id, local, sip.parse().unwrap(), Vendor::Generic);
    sock.send_to(tsip::siprec_invite(&call).as_bytes(), sip)
        .unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = sock.recv(&mut buf).expect("answer to INVITE");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.starts_with("SIP/2.0 1") {
            continue;
        }
        assert!(text.starts_with("SIP/2.0 200"), "{text}");
        return text
            .lines()
            .filter_map(|l| l.strip_prefix("m=audio "))
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
    }
}

fn meta_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "meta.json") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn kill_9_mid_call_leaves_playable_wavs_and_restart_closes_the_recording() {
    use mediafork_testkit::payload::pattern;
    use mediafork_testkit::rtp::RtpPacket;
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let sip = "127.0.0.1:16075";
    // Storage thresholds off: the test must not depend on the machine's disk.
    let cfg = tmp.path().join("storage-off.toml");
    std::fs::write(&cfg, STORAGE_OFF).unwrap();
    let args = [
        "--config",
        cfg.to_str().unwrap(),
        "--sip-listen",
        sip,
        "--media-addr",
        "127.0.0.1",
        "--rtp-ports",
        "42100-42199",
        "--recordings",
        rec.to_str().unwrap(),
    ];
    let mut server = Server::start(&args);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ports = place_call(sip, &sock, "crash-1@127.0.0.1");
    assert_eq!(ports.len(), 2);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    // 3 s of audio on the first stream, then wait past a flush.
    for i in 0..150u32 {
        let p = RtpPacket::new(0, i as u16, i * 160, 0xC0FFEE, pattern(i, 160)).to_bytes();
        rtp.send_to(&p, ("127.0.0.1", ports[0])).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(2500));
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let metas = meta_files(&rec);
    assert_eq!(metas.len(), 1);
    let dir = metas[0].parent().unwrap().to_path_buf();
    let before: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metas[0]).unwrap()).unwrap();
    assert!(
        before.get("ended_at").is_none(),
        "the crash left the recording open"
    );
    // The WAV on disk is valid and holds the flushed audio.
    let wav = dir.join("track-0.wav");
    let info = tool("sox", &["--i", "-s", wav.to_str().unwrap()]);
    assert!(
        info.status.success(),
        "sox cannot read the WAV after kill -9: {}",
        String::from_utf8_lossy(&info.stderr)
    );
    let samples: u64 = String::from_utf8_lossy(&info.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        samples >= 140 * 160,
        "flushed audio missing: {samples} samples"
    );
    // Restart: the recording is repaired and closed, marked incomplete; the
    // server takes calls at once.
    let server = Server::start(&args);
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metas[0]).unwrap()).unwrap();
    assert!(after["ended_at"].is_string(), "{after:#}");
    assert_eq!(after["complete"], false);
    assert!(
        after["errors"].to_string().contains("not closed"),
        "{after:#}"
    );
    assert_eq!(
        udp_options(sip, "after-crash").as_deref(),
        Some("SIP/2.0 200 OK")
    );
    assert_eq!(server.stop(), Some(0));
}
