//! Support for the tests of the live server (`mediafork run`) driven by
//! real `sipp` processes: start and stop the server, run sipp scenarios
//! from `tests/sipp/`, send RTP to the ports the recorder answered, talk
//! raw SIP over UDP, and read back what was recorded.
//!
//! Everything runs on 127.0.0.1. Tests run in parallel processes (nextest),
//! so each test takes a *slot*: a block of SIP, sipp and RTP ports of its
//! own, derived from the slot number (see [`Slot`]).
//!
//! When a test panics, dropping its [`Server`] prints the server's log and
//! each finished sipp run prints its messages, so a failure explains itself.
//! Set `MEDIAFORK_E2E_KEEP=1` to keep the temporary directories.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mediafork_testkit::payload::pattern;
use mediafork_testkit::rtp::RtpPacket;
use serde_json::Value;

use crate::mediafork_bin;

/// The loopback address everything binds to.
pub const LOCALHOST: &str = "127.0.0.1";

/// A test's private block of ports.
///
/// - SIP: `20000 + 20 × slot` (the server listens there, UDP and TCP);
/// - sipp instance `i` (0..=2): main port `sip + 2 + 6i`, control port
///   `+1`, media ports `+2` and `+4` (sipp binds them even when unused);
/// - RTP: `24000 + 40 × slot` ..= `+39` (40 ports: 10 two-stream calls).
///
/// All of it stays below Linux's ephemeral range (32768–60999), so the
/// ports the kernel hands out to clients never collide with a test's.
#[derive(Clone, Copy, Debug)]
pub struct Slot(pub u16);

impl Slot {
    pub fn sip_port(self) -> u16 {
        assert!(self.0 >= 1 && self.0 < 100, "slots are 1..100");
        20000 + 20 * self.0
    }

    /// Base port of sipp instance `i` (its `-p`).
    pub fn sipp_port(self, i: u16) -> u16 {
        assert!(i < 3, "three sipp instances per slot");
        self.sip_port() + 2 + 6 * i
    }

    pub fn rtp_range(self) -> (u16, u16) {
        let lo = 24000 + 40 * self.0;
        (lo, lo + 39)
    }
}

/// A `[storage]` section with every threshold off, which the harness adds
/// to each server's configuration unless the test has its own.
pub const STORAGE_OFF: &str =
    "\n[storage]\nwarn_free_percent = 0.0\ncritical_free_percent = 0.0\ncritical_free_bytes = 0\n";

/// How to start the server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Contents of a TOML file given with `--config` (flags still set the
    /// SIP address, media address, ports and recordings directory).
    pub config: Option<String>,
    /// `MEDIAFORK_LOG`; `debug` by default, for useful failure output.
    pub log: Option<String>,
    /// More `mediafork run` flags (e.g. `--metrics-listen`).
    pub args: Vec<String>,
    /// Recordings directory; default `<tempdir>/recordings`.
    pub recordings: Option<PathBuf>,
    /// Media port range; default the slot's 40 ports.
    pub rtp_ports: Option<(u16, u16)>,
}

/// A running `mediafork run`. Dropping it kills the server if it is still
/// running (and prints its log if the test is failing).
pub struct Server {
    child: Option<Child>,
    exit: Option<ExitStatus>,
    pub slot: Slot,
    /// Where SIP is accepted (UDP and TCP).
    pub sip: SocketAddr,
    pub rtp: (u16, u16),
    /// Temporary directory: recordings, logs, sipp files.
    pub dir: PathBuf,
    pub recordings: PathBuf,
    log_path: PathBuf,
    /// The `mediafork: ready: ...` line.
    pub ready_line: String,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Start with flags only.
    pub fn start(slot: Slot) -> Server {
        Server::start_with(slot, ServerOptions::default())
    }

    /// Start and wait for the `ready` line (20 s at most).
    pub fn start_with(slot: Slot, opts: ServerOptions) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("mf-e2e-slot{}-", slot.0))
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let recordings = opts
            .recordings
            .clone()
            .unwrap_or_else(|| dir.join("recordings"));
        let log_path = dir.join("mediafork.log");
        let sip = SocketAddr::new(LOCALHOST.parse().unwrap(), slot.sip_port());
        let (lo, hi) = opts.rtp_ports.unwrap_or_else(|| slot.rtp_range());
        let mut cmd = Command::new(mediafork_bin());
        cmd.arg("run")
            .args(["--sip-listen", &sip.to_string()])
            .args(["--media-addr", LOCALHOST])
            .args(["--rtp-ports", &format!("{lo}-{hi}")])
            .arg("--recordings")
            .arg(&recordings)
            // The admin API defaults to 127.0.0.1:8960: give each test its own.
            .args([
                "--admin-listen",
                &format!("{LOCALHOST}:{}", slot.sip_port() + 19),
            ]);
        cmd.args(&opts.args);
        // Storage thresholds off unless the test sets them: a test must not
        // depend on how full the machine's disk is.
        let mut cfg = opts.config.clone().unwrap_or_default();
        if !cfg.contains("[storage]") {
            cfg.push_str(STORAGE_OFF);
        }
        let path = dir.join("mediafork.toml");
        std::fs::write(&path, cfg).expect("write config");
        cmd.arg("--config").arg(path);
        cmd.env("MEDIAFORK_LOG", opts.log.as_deref().unwrap_or("debug"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path).expect("log file"));
        let child = cmd.spawn().expect("spawn mediafork run");
        let keep = std::env::var_os("MEDIAFORK_E2E_KEEP").is_some();
        let mut server = Server {
            child: Some(child),
            exit: None,
            slot,
            sip,
            rtp: (lo, hi),
            dir,
            recordings,
            log_path,
            ready_line: String::new(),
            _tmp: if keep {
                eprintln!("keeping {}", tmp.path().display());
                let _ = tmp.keep();
                None
            } else {
                Some(tmp)
            },
        };
        match crate::ready_line(
            server.child.as_mut().expect("spawned"),
            Duration::from_secs(20),
        ) {
            Some(line) => server.ready_line = line,
            None => {
                let status = server.child.as_mut().unwrap().try_wait().ok().flatten();
                panic!(
                    "mediafork run did not print its ready line (exit: {status:?}):\n{}",
                    server.log()
                );
            }
        }
        server
    }

    /// The admin API's base URL, from the ready line.
    pub fn admin_url(&self) -> String {
        self.ready_line
            .split_whitespace()
            .skip_while(|w| *w != "admin")
            .nth(1)
            .unwrap_or_else(|| panic!("no admin URL in the ready line {:?}", self.ready_line))
            .to_string()
    }

    /// The configuration file the server was started with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("mediafork.toml")
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Send SIGTERM (drain and exit), without waiting.
    pub fn sigterm(&self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM failed");
    }

    /// Whether the process has exited (and reap it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(c) = self.child.as_mut() {
                self.exit = c.try_wait().expect("try_wait");
            }
        }
        self.exit
    }

    /// Wait for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.exited() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "mediafork did not exit within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, wait (15 s at most) and check for a clean exit (code 0).
    pub fn stop(&mut self) {
        self.sigterm();
        let st = self.wait_exit(Duration::from_secs(15));
        assert_eq!(
            st.code(),
            Some(0),
            "mediafork exit status {st}:\n{}",
            self.log()
        );
    }

    /// Every recording under the recordings directory: (dir, meta.json),
    /// in recording-id (= start time) order.
    pub fn recordings(&self) -> Vec<(PathBuf, Value)> {
        recordings_in(&self.recordings)
    }

    /// The only recording, once closed; panics (with the log) if there is
    /// not exactly one. Recordings are closed by the writer thread shortly
    /// after the BYE is answered, so this waits (5 s at most) until every
    /// recording has `ended_at`.
    pub fn only_recording(&self) -> (PathBuf, Value) {
        let mut all = self.wait_recordings(Duration::from_secs(5), |r| {
            !r.is_empty() && r.iter().all(|(_, m)| m["ended_at"].is_string())
        });
        assert_eq!(
            all.len(),
            1,
            "expected exactly one recording, found {}: {:#?}\n{}",
            all.len(),
            all.iter().map(|(d, _)| d).collect::<Vec<_>>(),
            self.log()
        );
        all.pop().unwrap()
    }

    /// Poll until `f(recordings)` holds, at most `timeout`.
    pub fn wait_recordings(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&[(PathBuf, Value)]) -> bool,
    ) -> Vec<(PathBuf, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.recordings();
            if f(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "recordings never reached the expected state within {timeout:?}: {:#?}\n{}",
                r.iter().map(|(_, m)| m).collect::<Vec<_>>(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A sipp run against this server: scenario `name` from `tests/sipp/`
    /// (or any path), as sipp instance `instance` of the slot.
    pub fn sipp(&self, scenario: &str, instance: u16) -> SippBuilder {
        SippBuilder {
            scenario: scenario_path(scenario),
            server: self.sip,
            local_port: self.slot.sipp_port(instance),
            tcp: false,
            keys: Vec::new(),
            timeout: Duration::from_secs(30),
            dir: self.dir.clone(),
        }
    }

    /// A raw SIP-over-UDP client bound to an ephemeral loopback port.
    pub fn udp_client(&self) -> SipClient {
        SipClient::new(self.sip)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.exit.is_none() && c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(150).collect();
            eprintln!(
                "---- mediafork log (last {} lines) {} ----",
                tail.len(),
                self.log_path.display()
            );
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// `tests/sipp/<name>` unless `name` is already a path that exists.
pub fn scenario_path(name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() || p.exists() {
        return p.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

/// Every `meta.json` under `dir`, sorted by recording id.
pub fn recordings_in(dir: &Path) -> Vec<(PathBuf, Value)> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|n| n == "meta.json") {
                out.push(p.parent().unwrap().to_path_buf());
            }
        }
    }
    let mut dirs = Vec::new();
    walk(dir, &mut dirs);
    let mut out: Vec<(PathBuf, Value)> = dirs
        .into_iter()
        .map(|d| {
            let text = std::fs::read_to_string(d.join("meta.json")).expect("read meta.json");
            let v = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}/meta.json is not JSON ({e}): {text}", d.display()));
            (d, v)
        })
        .collect();
    out.sort_by(|a, b| {
        a.1["recording_id"]
            .as_str()
            .cmp(&b.1["recording_id"].as_str())
    });
    out
}

/// How to run one sipp process.
pub struct SippBuilder {
    scenario: PathBuf,
    server: SocketAddr,
    local_port: u16,
    tcp: bool,
    keys: Vec<(String, String)>,
    timeout: Duration,
    dir: PathBuf,
}

impl SippBuilder {
    /// SIP over TCP (`-t t1`) instead of UDP (`-t u1`).
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// `-key NAME VALUE`: a `[NAME]` keyword in the scenario.
    pub fn key(mut self, name: &str, value: &str) -> Self {
        self.keys.push((name.into(), value.into()));
        self
    }

    /// sipp's own `-timeout` (the run fails when it is reached); the Rust
    /// side kills sipp 10 s later if it is still running.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    pub fn spawn(self) -> Sipp {
        let name = format!(
            "sipp-{}-{}",
            self.scenario.file_stem().unwrap().to_string_lossy(),
            self.local_port
        );
        let files = SippFiles {
            log: self.dir.join(format!("{name}.log")),
            messages: self.dir.join(format!("{name}.messages")),
            errors: self.dir.join(format!("{name}.errors")),
            screen: self.dir.join(format!("{name}.screen")),
        };
        for f in [&files.log, &files.messages, &files.errors] {
            let _ = std::fs::remove_file(f);
        }
        let p = self.local_port;
        let mut cmd = Command::new("sipp");
        cmd.arg("-sf")
            .arg(&self.scenario)
            .args(["-nostdin", "-m", "1", "-max_socket", "64"])
            .args(["-i", LOCALHOST, "-p", &p.to_string()])
            .args(["-ci", LOCALHOST, "-cp", &(p + 1).to_string()])
            .args(["-mi", LOCALHOST, "-mp", &(p + 2).to_string()])
            .args(["-t", if self.tcp { "t1" } else { "u1" }])
            .args([
                "-timeout",
                &format!("{}s", self.timeout.as_secs()),
                "-timeout_error",
            ])
            .arg("-trace_logs")
            .arg("-log_file")
            .arg(&files.log)
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(&files.messages)
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&files.errors);
        for (k, v) in &self.keys {
            cmd.args(["-key", k, v]);
        }
        cmd.arg(self.server.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&files.screen).expect("screen file"))
            .stderr(Stdio::inherit());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("sipp is needed by this test ({e}): apt-get install -y sip-tester")
        });
        Sipp {
            child: Some(child),
            files,
            started: Instant::now(),
            kill_after: self.timeout + Duration::from_secs(10),
            scenario: self.scenario,
        }
    }
}

struct SippFiles {
    log: PathBuf,
    messages: PathBuf,
    errors: PathBuf,
    screen: PathBuf,
}

/// A running sipp.
pub struct Sipp {
    child: Option<Child>,
    files: SippFiles,
    started: Instant,
    kill_after: Duration,
    scenario: PathBuf,
}

impl Sipp {
    /// The `<log>` output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.files.log).unwrap_or_default()
    }

    /// Wait for a `<log>` line starting with `tag ` and return its other
    /// words (`PORTS 24040 24042` → `["24040", "24042"]`). Panics if sipp
    /// exits first or `timeout` passes.
    pub fn wait_log(&mut self, tag: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let prefix = format!("{tag} ");
        loop {
            if let Some(line) = self.log().lines().find(|l| l.starts_with(&prefix)) {
                return line
                    .split_whitespace()
                    .skip(1)
                    .map(str::to_string)
                    .collect();
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "sipp exited ({st}) before logging {tag}:\n{}",
                    self.report()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sipp did not log {tag} within {timeout:?}:\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// [`Sipp::wait_log`] for a line of ports.
    pub fn wait_ports(&mut self, tag: &str, timeout: Duration) -> Vec<u16> {
        self.wait_log(tag, timeout)
            .iter()
            .map(|p| {
                p.parse()
                    .unwrap_or_else(|_| panic!("{tag}: {p:?} is not a port"))
            })
            .collect()
    }

    /// Wait for sipp to end (killing it after its timeout + 10 s).
    pub fn finish(mut self) -> SippRun {
        let mut child = self.child.take().unwrap();
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait sipp") {
                break Some(st);
            }
            if self.started.elapsed() > self.kill_after {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        SippRun {
            code: status.and_then(|s| s.code()),
            elapsed: self.started.elapsed(),
            log: read(&self.files.log),
            messages: read(&self.files.messages),
            errors: read(&self.files.errors),
            screen: read(&self.files.screen),
            scenario: self.scenario.clone(),
        }
    }

    fn report(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- sipp log ---\n{}\n--- sipp errors ---\n{}\n--- sipp messages ---\n{}",
            read(&self.files.log),
            read(&self.files.errors),
            read(&self.files.messages)
        )
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A finished sipp run.
pub struct SippRun {
    /// Exit code (`None`: killed after its timeout). 0 = scenario passed.
    pub code: Option<i32>,
    pub elapsed: Duration,
    /// `<log>` lines.
    pub log: String,
    /// Every message sent and received (`-trace_msg`).
    pub messages: String,
    /// Unexpected messages and errors (`-trace_err`).
    pub errors: String,
    /// The final statistics screen.
    pub screen: String,
    pub scenario: PathBuf,
}

impl SippRun {
    /// Panic with everything sipp said unless the scenario passed.
    pub fn assert_passed(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "sipp {} failed (exit {:?} after {:?}):\n--- errors ---\n{}\n--- log ---\n{}\n--- messages ---\n{}\n--- screen ---\n{}",
            self.scenario.display(),
            self.code,
            self.elapsed,
            self.errors,
            self.log,
            self.messages,
            self.screen
        );
    }

    /// Words of the first `<log>` line tagged `tag` (see [`Sipp::wait_log`]).
    pub fn log_words(&self, tag: &str) -> Option<Vec<String>> {
        let prefix = format!("{tag} ");
        self.log
            .lines()
            .find(|l| l.starts_with(&prefix))
            .map(|l| l.split_whitespace().skip(1).map(str::to_string).collect())
    }

    /// Every message in the trace, in order.
    pub fn traced(&self) -> Vec<Traced> {
        parse_trace(&self.messages)
    }
}

/// One message of a sipp `-trace_msg` file.
#[derive(Clone, Debug)]
pub struct Traced {
    /// Seconds since midnight of the trace's time stamp.
    pub at: f64,
    /// Sent by sipp (false: received).
    pub sent: bool,
    pub message: SipText,
}

/// Parse sipp's message trace: blocks introduced by a line of dashes and a
/// time stamp, then `UDP message sent (N bytes):` / `TCP message received
/// [N] bytes :`, a blank line and the message.
pub fn parse_trace(text: &str) -> Vec<Traced> {
    let mut out = Vec::new();
    for block in text
        .split("----------------------------------------------- ")
        .skip(1)
    {
        let mut lines = block.lines();
        let Some(stamp) = lines.next() else { continue };
        let Some(kind) = lines.next() else { continue };
        let sent = kind.contains("message sent");
        if !sent && !kind.contains("message received") {
            continue;
        }
        let at = stamp
            .split_whitespace()
            .nth(1)
            .and_then(|t| {
                let mut it = t.split(':');
                let h: f64 = it.next()?.parse().ok()?;
                let m: f64 = it.next()?.parse().ok()?;
                let s: f64 = it.next()?.parse().ok()?;
                Some(h * 3600.0 + m * 60.0 + s)
            })
            .unwrap_or(0.0);
        let body: Vec<&str> = lines.skip_while(|l| l.trim().is_empty()).collect();
        let msg = body.join("\r\n");
        if let Some(m) = SipText::parse(&msg) {
            out.push(Traced {
                at,
                sent,
                message: m,
            });
        }
    }
    out
}

/// A SIP message as text, split into start line, headers and body.
#[derive(Clone, Debug)]
pub struct SipText {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl SipText {
    pub fn parse(text: &str) -> Option<SipText> {
        let (head, body) = match text.find("\r\n\r\n") {
            Some(i) => (&text[..i], &text[i + 4..]),
            None => (text, ""),
        };
        let mut lines = head.split("\r\n");
        let start = lines.next()?.trim().to_string();
        if start.is_empty() {
            return None;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Some(SipText {
            start,
            headers,
            body: body.to_string(),
        })
    }

    /// Status code of a response.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.split_whitespace().next()?.parse().ok()
    }

    /// Reason phrase of a response.
    pub fn reason(&self) -> &str {
        self.start.splitn(3, ' ').nth(2).unwrap_or("")
    }

    /// Method of a request.
    pub fn method(&self) -> Option<&str> {
        (!self.start.starts_with("SIP/"))
            .then(|| self.start.split_whitespace().next())
            .flatten()
    }

    /// First header `name` (case-insensitive; compact forms not handled).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Method named in CSeq.
    pub fn cseq_method(&self) -> Option<&str> {
        self.header("CSeq")?.split_whitespace().nth(1)
    }

    /// The `tag` parameter of the To header.
    pub fn to_tag(&self) -> Option<&str> {
        tag_of(self.header("To")?)
    }
}

/// The `tag` parameter of a From/To value.
pub fn tag_of(v: &str) -> Option<&str> {
    let i = v.find(";tag=")?;
    let rest = &v[i + 5..];
    Some(rest.split([';', ' ', '>']).next().unwrap_or(rest))
}

/// The `m=audio` ports and `a=` directions of an SDP body, per m-line.
pub fn sdp_media(body: &str) -> Vec<(u16, String)> {
    let mut out: Vec<(u16, String)> = Vec::new();
    for l in body.lines().map(str::trim) {
        if let Some(rest) = l.strip_prefix("m=") {
            let port = rest
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            out.push((port, "sendrecv".into()));
        } else if let Some(d) = ["a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"]
            .iter()
            .find(|d| l == **d)
        {
            if let Some(last) = out.last_mut() {
                last.1 = d[2..].to_string();
            }
        }
    }
    out
}

/// One RTP stream the test sends to the recorder: the next packet's
/// sequence number, timestamp and pattern index advance as packets go out,
/// so a later call to [`send_rtp`] continues the stream.
#[derive(Clone, Debug)]
pub struct RtpStream {
    pub dst: SocketAddr,
    pub ssrc: u32,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    /// Pattern index of the next packet (`payload::pattern(index, 160)`).
    pub index: u32,
    /// Packets sent so far.
    pub sent: u32,
}

impl RtpStream {
    /// A stream to `127.0.0.1:port` starting at pattern index 0, sequence
    /// `ssrc & 0x3fff` and timestamp `ssrc / 3` (so streams differ).
    pub fn new(port: u16, ssrc: u32, payload_type: u8) -> RtpStream {
        RtpStream {
            dst: SocketAddr::new(LOCALHOST.parse().unwrap(), port),
            ssrc,
            payload_type,
            seq: (ssrc & 0x3fff) as u16,
            timestamp: ssrc / 3,
            index: 0,
            sent: 0,
        }
    }
}

/// Send `packets` 20 ms G.711 packets on each stream, interleaved, one
/// round every `interval` (faster than real time is fine: the recorder
/// places audio by RTP timestamp). Returns how long it took.
pub fn send_rtp(streams: &mut [RtpStream], packets: u32, interval: Duration) -> Duration {
    let sock = UdpSocket::bind((LOCALHOST, 0)).expect("bind RTP sender");
    let start = Instant::now();
    for k in 0..packets {
        for s in streams.iter_mut() {
            let mut p = RtpPacket::new(
                s.payload_type,
                s.seq,
                s.timestamp,
                s.ssrc,
                pattern(s.index, 160),
            );
            p.marker = s.sent == 0;
            sock.send_to(&p.to_bytes(), s.dst).expect("send RTP");
            s.seq = s.seq.wrapping_add(1);
            s.timestamp = s.timestamp.wrapping_add(160);
            s.index += 1;
            s.sent += 1;
        }
        // Pace against the start time, so sleeping late does not add up.
        let due = start + interval * (k + 1);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    start.elapsed()
}

/// A raw SIP client over UDP, for requests sipp is not needed for (or
/// cannot express): malformed messages, OPTIONS and INVITE during drain.
pub struct SipClient {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub local: SocketAddr,
}

impl SipClient {
    pub fn new(server: SocketAddr) -> SipClient {
        let sock = UdpSocket::bind((LOCALHOST, 0)).expect("bind SIP client");
        let local = sock.local_addr().unwrap();
        SipClient {
            sock,
            server,
            local,
        }
    }

    /// Build a request: Via (with `branch`), Max-Forwards, From (tag
    /// `from-<call_id>`), To, Call-ID, CSeq `1 METHOD`, Contact, then
    /// `extra` header lines, Content-Type and Content-Length.
    pub fn request(
        &self,
        method: &str,
        call_id: &str,
        branch: &str,
        extra: &[&str],
        body: Option<(&str, &str)>,
    ) -> String {
        let mut m = format!(
            "{method} sip:srs@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:src@{me}>;tag=from-{call_id}\r\nTo: <sip:srs@{srv}>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n\
             Contact: <sip:src@{me}>\r\n",
            srv = self.server,
            me = self.local,
        );
        for h in extra {
            m.push_str(h);
            m.push_str("\r\n");
        }
        match body {
            Some((ct, b)) => {
                m.push_str(&format!(
                    "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}",
                    b.len()
                ));
            }
            None => m.push_str("Content-Length: 0\r\n\r\n"),
        }
        m
    }

    pub fn send(&self, text: &str) {
        self.sock
            .send_to(text.as_bytes(), self.server)
            .expect("send SIP");
    }

    /// The next message from the server, or `None` after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<SipText> {
        self.sock.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => SipText::parse(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => None,
        }
    }

    /// Send `text` and return the first final (≥ 200) response, skipping
    /// provisional ones; panics after 5 s. A non-2xx final response to an
    /// INVITE is acknowledged, as RFC 3261 §17.1.1.3 requires.
    pub fn transact(&self, text: &str) -> SipText {
        self.send(text);
        let req = SipText::parse(text).expect("request parses");
        let deadline = Instant::now() + Duration::from_secs(8);
        // Retransmit over UDP as a real UAC does (RFC 3261 timers A/E: T1
        // doubling), until the first response of any kind.
        let mut resend = Some((
            Instant::now() + Duration::from_millis(500),
            Duration::from_millis(500),
        ));
        loop {
            let now = Instant::now();
            let left = deadline.checked_duration_since(now).unwrap_or_default();
            assert!(!left.is_zero(), "no final response to:\n{text}");
            let wait = match resend {
                Some((at, _)) => left.min(at.saturating_duration_since(now)),
                None => left,
            };
            let Some(r) = self.recv(wait.max(Duration::from_millis(1))) else {
                if let Some((at, interval)) = resend {
                    if Instant::now() >= at {
                        self.send(text);
                        let next = (interval * 2).min(Duration::from_secs(4));
                        resend = Some((Instant::now() + next, next));
                    }
                }
                continue;
            };
            resend = None;
            let Some(code) = r.status() else { continue };
            if code < 200 {
                continue;
            }
            if req.method() == Some("INVITE") && code >= 300 {
                self.send(&self.ack_for(&req, &r));
            }
            return r;
        }
    }

    /// ACK for a non-2xx final response (same branch as the INVITE).
    pub fn ack_for(&self, invite: &SipText, resp: &SipText) -> String {
        let via = invite.header("Via").unwrap_or_default();
        let cseq_n = invite
            .header("CSeq")
            .and_then(|c| c.split_whitespace().next())
            .unwrap_or("1");
        format!(
            "ACK {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq_n} ACK\r\nContent-Length: 0\r\n\r\n",
            uri = invite.start.split_whitespace().nth(1).unwrap_or(""),
            from = invite.header("From").unwrap_or_default(),
            to = resp.header("To").unwrap_or_default(),
            cid = invite.header("Call-ID").unwrap_or_default(),
        )
    }

    /// OPTIONS ping; returns the final response.
    pub fn options(&self, call_id: &str) -> SipText {
        let req = self.request(
            "OPTIONS",
            call_id,
            &format!("z9hG4bK-{call_id}"),
            &["Accept: application/sdp"],
            None,
        );
        self.transact(&req)
    }
}

/// A minimal recordable SDP offer (one PCMU stream, `a=sendonly`).
pub fn simple_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=SRC 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
    )
}

/// Poll `f` every 20 ms until it returns `Some`, at most `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
