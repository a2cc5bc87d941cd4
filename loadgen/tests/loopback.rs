//! The loadgen against a tiny fake recorder on loopback: calls are set up,
//! RTP arrives at the answered ports at 50 packets/s per stream with the
//! verifiable pattern, every call ends with a BYE; failures, retransmission
//! and recorder-initiated BYEs are handled.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mediafork_control::sip::{Method, SipMessage};
use mediafork_control::siprec::{classify_invite, InviteKind};
use mediafork_loadgen::{Codec, LoadgenArgs, PortList, Style};
use mediafork_testkit::payload::pattern_index;
use mediafork_testkit::rtp::RtpPacket;

fn args(target: SocketAddr) -> LoadgenArgs {
    LoadgenArgs {
        target: Some(target.to_string()),
        calls: 2,
        rate: 200.0,
        duration: Duration::from_secs(1),
        total: None,
        codec: Codec::Pcmu,
        ptime: 20,
        style: Style::Generic,
        local_ip: Some("127.0.0.1".parse().unwrap()),
        sip_port: 0,
        rtp_only: None,
        pcap: None,
        pcap_ports: "39500-43500".parse().unwrap(),
        sockets: 2,
        tx: mediafork_loadgen::TxKind::Socket,
        dpdk_eal: None,
        dpdk_port: "0".into(),
        dst_mac: None,
        json: false,
        quiet: true,
    }
}

/// Packets one receiving port saw, by SSRC: (arrival, packet).
type Received = HashMap<u32, Vec<(Instant, RtpPacket)>>;

struct RtpSink {
    port: u16,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Received>,
}

impl RtpSink {
    fn start() -> RtpSink {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut got: Received = HashMap::new();
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let p = RtpPacket::parse(&buf[..n]).expect("RTP");
                    got.entry(p.ssrc).or_default().push((Instant::now(), p));
                }
            }
            got
        });
        RtpSink { port, stop, handle }
    }

    fn finish(self) -> Received {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    Answer,
    Reject(u16),
    /// Ignore the first copy of each INVITE: the retransmission is answered.
    DropFirstInvite,
    /// Answer, then end the call with our own BYE after this long.
    ByeAfter(Duration),
}

#[derive(Default, Debug)]
struct UasLog {
    /// (Call-ID, arrival) of every INVITE copy.
    invites: Vec<(String, Instant)>,
    siprec_with_metadata: usize,
    acks: usize,
    byes: HashSet<String>,
    /// Responses to our own BYEs.
    bye_answers: BTreeMap<u16, usize>,
}

struct Uas {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<UasLog>,
}

impl Uas {
    fn start(behaviour: Behaviour, media: [u16; 2]) -> Uas {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let log = Mutex::new(UasLog::default());
            let mut pending_byes: Vec<(Instant, Vec<u8>, SocketAddr)> = Vec::new();
            let mut buf = [0u8; 65536];
            let mut bye_cseq = 1;
            while !s.load(Ordering::Relaxed) {
                let now = Instant::now();
                pending_byes.retain(|(at, bytes, to)| {
                    if *at <= now {
                        sock.send_to(bytes, to).unwrap();
                        false
                    } else {
                        true
                    }
                });
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let msg = SipMessage::parse(&buf[..n]).expect("loadgen sends valid SIP");
                let mut log = log.lock().unwrap();
                match msg.method() {
                    Some(Method::Invite) => {
                        let call_id = msg.call_id().unwrap().to_string();
                        let first = !log.invites.iter().any(|(c, _)| *c == call_id);
                        log.invites.push((call_id.clone(), now));
                        if first {
                            if let Ok(InviteKind::Siprec {
                                metadata: Some(_), ..
                            }) = classify_invite(&msg)
                            {
                                log.siprec_with_metadata += 1;
                            }
                        }
                        if first && matches!(behaviour, Behaviour::DropFirstInvite) {
                            continue;
                        }
                        let trying = SipMessage::response(&msg, 100, "Trying");
                        sock.send_to(&trying.to_bytes(), from).unwrap();
                        let code = match behaviour {
                            Behaviour::Reject(c) => c,
                            _ => 200,
                        };
                        let mut r = SipMessage::response(&msg, code, "X");
                        r.set_to_tag("uas1");
                        if code == 200 {
                            r.add_header("Contact", format!("<sip:srs@{addr}>"));
                            let sdp = format!(
                                "v=0\r\no=rec 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                                 m=audio {} RTP/AVP 0\r\na=recvonly\r\na=label:1\r\n\
                                 m=audio {} RTP/AVP 0\r\na=recvonly\r\na=label:2\r\n",
                                media[0], media[1]
                            );
                            r.set_body("application/sdp", sdp);
                        }
                        sock.send_to(&r.to_bytes(), from).unwrap();
                        if let (Behaviour::ByeAfter(after), 200) = (behaviour, code) {
                            let contact = msg.header("Contact").unwrap();
                            let uri = contact
                                .trim_start_matches(|c| c != '<')
                                .trim_start_matches('<')
                                .split('>')
                                .next()
                                .unwrap()
                                .to_string();
                            let bye = format!(
                                "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKuasbye{bye_cseq}\r\n\
                                 Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {call_id}\r\n\
                                 CSeq: {bye_cseq} BYE\r\nContent-Length: 0\r\n\r\n",
                                r.header("To").unwrap(),
                                msg.header("From").unwrap(),
                            );
                            bye_cseq += 1;
                            pending_byes.push((now + after, bye.into_bytes(), from));
                        }
                    }
                    Some(Method::Ack) => log.acks += 1,
                    Some(Method::Bye) => {
                        log.byes.insert(msg.call_id().unwrap().to_string());
                        let mut ok = SipMessage::response(&msg, 200, "OK");
                        ok.set_to_tag("uas1");
                        sock.send_to(&ok.to_bytes(), from).unwrap();
                    }
                    Some(_) => {}
                    None => {
                        if msg.cseq().is_ok_and(|(_, m)| m == Method::Bye) {
                            *log.bye_answers.entry(msg.status().unwrap()).or_default() += 1;
                        }
                    }
                }
            }
            log.into_inner().unwrap()
        });
        Uas { addr, stop, handle }
    }

    fn finish(self) -> UasLog {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// Check one stream: contiguous sequence numbers and timestamps, marker on
/// the first packet, the pattern in order, exactly duration / ptime packets
/// at ~50 packets/s.
fn check_stream(ssrc: u32, pkts: &[(Instant, RtpPacket)], expect_packets: usize) {
    let n = pkts.len();
    assert_eq!(
        n, expect_packets,
        "ssrc {ssrc:08x}: duration / ptime packets"
    );
    for (i, (_, p)) in pkts.iter().enumerate() {
        assert_eq!(p.payload.len(), 160);
        assert_eq!(p.sequence, pkts[0].1.sequence.wrapping_add(i as u16));
        assert_eq!(
            p.timestamp,
            pkts[0].1.timestamp.wrapping_add(160 * i as u32)
        );
        assert_eq!(pattern_index(p.payload[0]), Some(i as u32 % 200));
        assert_eq!(p.marker, i == 0);
    }
    let span = pkts[n - 1].0 - pkts[0].0;
    let pps = (n - 1) as f64 / span.as_secs_f64();
    assert!(
        (45.0..=55.0).contains(&pps),
        "ssrc {ssrc:08x}: {pps:.1} packets/s over {span:?}"
    );
}

#[test]
fn calls_are_set_up_paced_and_hung_up() {
    let sinks = [RtpSink::start(), RtpSink::start()];
    let uas = Uas::start(Behaviour::Answer, [sinks[0].port, sinks[1].port]);
    let mut a = args(uas.addr);
    a.calls = 3;
    a.total = Some(4);
    a.style = Style::Cube;
    let started = Instant::now();
    let summary = mediafork_loadgen::run(&a).unwrap();
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_millis(50));
    let log = uas.finish();
    let [s0, s1] = sinks.map(RtpSink::finish);

    assert_eq!(summary.calls_attempted, 4, "{summary:#?}");
    assert_eq!(summary.calls_answered, 4);
    assert_eq!(summary.calls_failed, 0);
    assert_eq!(summary.calls_completed, 4);
    assert_eq!(summary.max_calls_up, 3, "--calls limits concurrency");
    assert!(summary.is_success());
    // Three calls at once, then the fourth: two call durations.
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");

    assert_eq!(log.siprec_with_metadata, 4, "{log:?}");
    assert_eq!(log.acks, 4);
    assert_eq!(log.byes.len(), 4);

    // Stream 1 of each call to the first port, stream 2 to the second.
    assert_eq!(s0.len(), 4);
    assert_eq!(s1.len(), 4);
    let mut received = 0;
    for (ssrc, pkts) in s0.iter().chain(&s1) {
        check_stream(*ssrc, pkts, 50);
        received += pkts.len() as u64;
    }
    assert_eq!(summary.streams, 8);
    assert_eq!(received, summary.packets_sent, "loopback loses nothing");
    assert_eq!(received, 8 * 50);
    assert_eq!(summary.send_errors, 0);
    assert!(summary.lag_p50_us < 1000, "{summary:#?}");
}

#[test]
fn rejected_calls_are_acked_and_counted() {
    let uas = Uas::start(Behaviour::Reject(486), [40000, 40002]);
    let mut a = args(uas.addr);
    a.calls = 3;
    a.style = Style::Acme;
    let summary = mediafork_loadgen::run(&a).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let log = uas.finish();
    assert_eq!(summary.calls_attempted, 3);
    assert_eq!(summary.calls_failed, 3);
    assert_eq!(summary.failures.get("486"), Some(&3));
    assert_eq!(summary.packets_sent, 0);
    assert!(!summary.is_success());
    assert_eq!(log.acks, 3, "non-2xx finals are ACKed");
    assert!(log.byes.is_empty());
}

#[test]
fn unanswered_invite_is_retransmitted() {
    let sinks = [RtpSink::start(), RtpSink::start()];
    let uas = Uas::start(Behaviour::DropFirstInvite, [sinks[0].port, sinks[1].port]);
    let mut a = args(uas.addr);
    a.calls = 1;
    a.duration = Duration::from_millis(200);
    let summary = mediafork_loadgen::run(&a).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let log = uas.finish();
    for s in sinks {
        s.finish();
    }
    assert_eq!(summary.calls_answered, 1, "{summary:#?}");
    assert_eq!(log.invites.len(), 2, "{log:?}");
    let gap = log.invites[1].1 - log.invites[0].1;
    assert!(
        gap >= Duration::from_millis(450) && gap < Duration::from_millis(800),
        "retransmission after T1: {gap:?}"
    );
}

#[test]
fn recorder_bye_ends_the_call() {
    let sinks = [RtpSink::start(), RtpSink::start()];
    let uas = Uas::start(
        Behaviour::ByeAfter(Duration::from_millis(300)),
        [sinks[0].port, sinks[1].port],
    );
    let mut a = args(uas.addr);
    a.calls = 1;
    a.duration = Duration::from_secs(30);
    let started = Instant::now();
    let summary = mediafork_loadgen::run(&a).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(50));
    let log = uas.finish();
    let [s0, _] = sinks.map(RtpSink::finish);
    assert_eq!(summary.ended_by_recorder, 1, "{summary:#?}");
    assert_eq!(log.bye_answers.get(&200), Some(&1), "{log:?}");
    assert!(log.byes.is_empty(), "the loadgen sends no BYE of its own");
    let n = s0.values().next().unwrap().len();
    assert!((12..=18).contains(&n), "about 300 ms of media: {n}");
}

#[test]
fn rtp_only_sends_to_the_listed_ports() {
    let sinks = [RtpSink::start(), RtpSink::start()];
    let mut a = args("127.0.0.1:9".parse().unwrap());
    a.target = Some("127.0.0.1".into());
    a.rtp_only = Some(PortList(vec![sinks[0].port, sinks[1].port]));
    a.calls = 2;
    a.codec = Codec::Pcma;
    let summary = mediafork_loadgen::run(&a).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let [s0, s1] = sinks.map(RtpSink::finish);
    assert_eq!(summary.mode, "rtp-only");
    assert_eq!(summary.calls_completed, 2);
    assert_eq!(s0.len(), 2);
    assert_eq!(s1.len(), 2);
    for (ssrc, pkts) in s0.iter().chain(&s1) {
        assert_eq!(pkts[0].1.payload_type, 8);
        check_stream(*ssrc, pkts, 50);
    }
}
