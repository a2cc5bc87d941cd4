//! rtpengine as a recorder: the daemon in userspace mode with
//! `--recording-method=pcap`, and a SIP front end in the bench that turns
//! each of loadgen's INVITEs into ng `offer` + `answer` (with
//! `record call: yes`) and each BYE into ng `delete`.
//!
//! The answer SDP is the callee's: its streams are `recvonly` on
//! `0.0.0.0`. rtpengine ignores the direction and would still forward every
//! packet (to 0.0.0.0:9, i.e. this host, which answers ICMP port
//! unreachable), so after the answer the front end sends ng `block media`
//! for the SRC's side: rtpengine then receives and records the packets and
//! forwards nothing, which is a recorder's job and the cheapest thing it can
//! do with them (checked: the pcaps hold every packet, and `Udp NoPorts`
//! stays flat). `MF_RTPENGINE_FORWARD=1` leaves forwarding on, for the
//! figure of rtpengine as an in-path proxy that also records.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::sip::{Recorder, Uas};

/// A bencode value.
#[derive(Debug, Clone, PartialEq)]
pub enum Ben {
    Int(i64),
    Str(Vec<u8>),
    List(Vec<Ben>),
    Dict(BTreeMap<Vec<u8>, Ben>),
}

impl Ben {
    pub fn s(v: &str) -> Ben {
        Ben::Str(v.as_bytes().to_vec())
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ben::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Ben::Str(s) => {
                out.extend_from_slice(format!("{}:", s.len()).as_bytes());
                out.extend_from_slice(s);
            }
            Ben::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Ben::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    Ben::Str(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decode one value from the front of `b`; returns it and the rest.
    pub fn decode(b: &[u8]) -> Option<(Ben, &[u8])> {
        match *b.first()? {
            b'i' => {
                let end = b.iter().position(|&c| c == b'e')?;
                let n = std::str::from_utf8(&b[1..end]).ok()?.parse().ok()?;
                Some((Ben::Int(n), &b[end + 1..]))
            }
            b'l' => {
                let mut rest = &b[1..];
                let mut l = Vec::new();
                while *rest.first()? != b'e' {
                    let (v, r) = Ben::decode(rest)?;
                    l.push(v);
                    rest = r;
                }
                Some((Ben::List(l), &rest[1..]))
            }
            b'd' => {
                let mut rest = &b[1..];
                let mut d = BTreeMap::new();
                while *rest.first()? != b'e' {
                    let (Ben::Str(k), r) = Ben::decode(rest)? else {
                        return None;
                    };
                    let (v, r) = Ben::decode(r)?;
                    d.insert(k, v);
                    rest = r;
                }
                Some((Ben::Dict(d), &rest[1..]))
            }
            b'0'..=b'9' => {
                let colon = b.iter().position(|&c| c == b':')?;
                let n: usize = std::str::from_utf8(&b[..colon]).ok()?.parse().ok()?;
                let s = b.get(colon + 1..colon + 1 + n)?.to_vec();
                Some((Ben::Str(s), &b[colon + 1 + n..]))
            }
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Ben> {
        match self {
            Ben::Dict(d) => d.get(key.as_bytes()),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Ben::Str(s) => std::str::from_utf8(s).ok(),
            _ => None,
        }
    }
}

/// An ng protocol client: one request at a time, over UDP.
pub struct Ng {
    sock: UdpSocket,
    /// Unique per client: rtpengine caches replies by cookie.
    prefix: String,
    cookie: u64,
}

impl Ng {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Ng> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.connect(addr)?;
        sock.set_read_timeout(Some(Duration::from_millis(500)))?;
        let prefix = format!("c{}_{}", std::process::id(), sock.local_addr()?.port());
        Ok(Ng {
            sock,
            prefix,
            cookie: 0,
        })
    }

    /// Send `cmd` (a dict) and wait for the answer; retries on timeout.
    pub fn request(&mut self, pairs: &[(&str, Ben)]) -> Result<Ben, String> {
        let dict: BTreeMap<Vec<u8>, Ben> = pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
            .collect();
        self.cookie += 1;
        let cookie = format!("{}_{}", self.prefix, self.cookie);
        let mut msg = format!("{cookie} ").into_bytes();
        Ben::Dict(dict).encode(&mut msg);
        let mut buf = vec![0u8; 65_536];
        for _ in 0..10 {
            self.sock.send(&msg).map_err(|e| format!("ng send: {e}"))?;
            // A timeout (or refused) ends the wait: resend.
            while let Ok(n) = self.sock.recv(&mut buf) {
                let reply = &buf[..n];
                let Some(sp) = reply.iter().position(|&c| c == b' ') else {
                    continue;
                };
                if &reply[..sp] != cookie.as_bytes() {
                    continue; // a late answer to an earlier retry
                }
                let (v, _) = Ben::decode(&reply[sp + 1..]).ok_or("ng: undecodable reply")?;
                return match v.get("result").and_then(Ben::as_str) {
                    Some("ok") | Some("pong") => Ok(v),
                    other => Err(format!(
                        "ng {:?}: {:?} {:?}",
                        pairs.first().map(|p| &p.1),
                        other,
                        v.get("error-reason").and_then(Ben::as_str)
                    )),
                };
            }
        }
        Err("ng: no answer from rtpengine".into())
    }
}

/// The callee side's SDP: every offered stream answered `recvonly` on hold.
fn callee_sdp(streams: usize) -> String {
    let mut s =
        String::from("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n");
    for _ in 0..streams {
        s.push_str("m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n");
    }
    s
}

struct Front {
    ng: Ng,
    errors: u64,
    last_error: Option<String>,
}

impl Recorder for Front {
    fn invite(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        sdp: &str,
    ) -> Result<String, (u16, String)> {
        let common = |extra: Vec<(&'static str, Ben)>| {
            let mut v = vec![("call-id", Ben::s(call_id)), ("from-tag", Ben::s(from_tag))];
            v.extend(extra);
            v
        };
        let r = self
            .ng
            .request(&common(vec![
                ("command", Ben::s("offer")),
                ("sdp", Ben::s(sdp)),
                ("record call", Ben::s("yes")),
                ("replace", Ben::List(vec![Ben::s("origin")])),
            ]))
            .and_then(|_| {
                self.ng.request(&common(vec![
                    ("command", Ben::s("answer")),
                    ("to-tag", Ben::s(to_tag)),
                    ("sdp", Ben::s(&callee_sdp(crate::sip::m_lines(sdp).max(1)))),
                    ("record call", Ben::s("yes")),
                ]))
            });
        let r = r.and_then(|v| {
            if std::env::var_os("MF_RTPENGINE_FORWARD").is_none() {
                self.ng
                    .request(&common(vec![("command", Ben::s("block media"))]))?;
            }
            Ok(v)
        });
        match r {
            Ok(v) => match v.get("sdp").and_then(Ben::as_str) {
                Some(answer) => Ok(answer.to_string()),
                None => {
                    self.errors += 1;
                    self.last_error = Some(format!("ng answer without SDP: {v:?}"));
                    Err((500, "ng answer without SDP".into()))
                }
            },
            Err(e) => {
                self.errors += 1;
                self.last_error = Some(e.clone());
                Err((500, e))
            }
        }
    }

    fn bye(&mut self, call_id: &str, from_tag: &str) {
        if let Err(e) = self.ng.request(&[
            ("command", Ben::s("delete")),
            ("call-id", Ben::s(call_id)),
            ("from-tag", Ben::s(from_tag)),
        ]) {
            self.errors += 1;
            self.last_error = Some(e);
        }
    }
}

/// The SIP front end, running in a thread until `stop`.
pub struct FrontEnd {
    pub sip: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u64, Option<String>)>>,
}

impl FrontEnd {
    pub fn start(ng_addr: SocketAddr) -> Result<FrontEnd, String> {
        let mut uas = Uas::bind("127.0.0.1:0".parse().expect("valid"))
            .map_err(|e| format!("front end bind: {e}"))?;
        uas.sock
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let sip = uas.local();
        let mut front = Front {
            ng: Ng::connect(ng_addr).map_err(|e| format!("ng socket: {e}"))?,
            errors: 0,
            last_error: None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !s2.load(Relaxed) {
                if let Ok((n, from)) = uas.sock.recv_from(&mut buf) {
                    uas.handle(&buf[..n], from, &mut front);
                }
            }
            (front.errors, front.last_error)
        });
        Ok(FrontEnd {
            sip,
            stop,
            thread: Some(thread),
        })
    }

    /// Stop the front end; returns its ng error count and the last error.
    pub fn finish(mut self) -> (u64, Option<String>) {
        self.stop.store(true, Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or((1, Some("front end thread panicked".into())))
    }
}

/// Wait until rtpengine answers an ng `ping`.
pub fn wait_ready(ng_addr: SocketAddr, secs: u64) -> Result<(), String> {
    let mut ng = Ng::connect(ng_addr).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match ng.request(&[("command", Ben::s("ping"))]) {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(format!("rtpengine not ready: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// RTP packets recorded in the pcap files under `dir` (recursively), and
/// the number of files.
pub fn count_pcap_packets(dir: &Path) -> (u64, u64, Vec<u64>) {
    let mut packets = 0;
    let mut files = 0;
    let mut per_file = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap") {
                let n = count_records(&p);
                files += 1;
                packets += n;
                per_file.push(n);
            }
        }
    }
    (packets, files, per_file)
}

/// Records of one classic pcap file (either byte order); a truncated last
/// record is not counted.
fn count_records(path: &Path) -> u64 {
    let Ok(b) = std::fs::read(path) else {
        return 0;
    };
    if b.len() < 24 {
        return 0;
    }
    let le = b[0..4] == [0xd4, 0xc3, 0xb2, 0xa1] || b[0..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let mut off = 24;
    let mut n = 0;
    while off + 16 <= b.len() {
        let raw = [b[off + 8], b[off + 9], b[off + 10], b[off + 11]];
        let len = if le {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        } as usize;
        if off + 16 + len > b.len() {
            break;
        }
        off += 16 + len;
        n += 1;
    }
    n
}
