//! Socket backend tests on real loopback sockets (127.0.0.1 and ::1 only).
//! Ports are taken with [`open_free`], which skips ports other processes
//! hold, so the tests can run beside anything else on the machine.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::socket::{SocketBackend, SocketConfig, SocketError, SocketSource, SocketStats};
use crate::source::{Frame, PacketSource};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

#[derive(Debug)]
struct Got {
    src: SocketAddr,
    dst: SocketAddr,
    data: Vec<u8>,
    arrival_ns: u64,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
}

/// One poll; appends what it got. Returns the count `poll_burst` reported.
fn poll_once(src: &mut SocketSource, out: &mut Vec<Got>) -> usize {
    let mut calls = 0;
    let n = src.poll_burst(|pkts| {
        calls += 1;
        assert!(!pkts.is_empty() && pkts.len() <= crate::source::MAX_BURST);
        for p in pkts {
            let Frame::Udp { src, dst } = p.frame else {
                panic!("socket frames are UDP payloads, got {:?}", p.frame);
            };
            out.push(Got {
                src,
                dst,
                data: p.data.to_vec(),
                arrival_ns: p.arrival_ns,
            });
        }
    });
    assert!(calls <= 1, "one sink call per burst");
    n
}

/// Poll until `n` datagrams arrived (or 10 s passed).
fn poll_until(src: &mut SocketSource, n: usize) -> Vec<Got> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if poll_once(src, &mut out) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    out
}

/// Poll for `d` and return whatever arrived.
fn poll_for(src: &mut SocketSource, d: Duration) -> Vec<Got> {
    let deadline = Instant::now() + d;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if poll_once(src, &mut out) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    out
}

/// Open the first port of `ports` nobody else holds.
fn open_free(b: &SocketBackend, ip: IpAddr, worker: usize, ports: Range<u16>) -> SocketAddr {
    for p in ports.clone() {
        match b.open(SocketAddr::new(ip, p), worker) {
            Ok(a) => return a,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free port in {ports:?}");
}

/// Make room for `want` descriptors when the soft limit is lower (a 1024
/// default would stop the many-sockets test, not the code under test).
fn raise_fd_limit(want: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < want {
        setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard).expect("setrlimit");
    }
}

fn sender(ip: IpAddr) -> UdpSocket {
    UdpSocket::bind(SocketAddr::new(ip, 0)).expect("sender")
}

#[test]
fn sockets_across_workers_deliver_sender_local_address_and_bytes() {
    let (backend, mut sources) = SocketBackend::new(2).expect("backend");
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0].name(), "socket:0");
    assert_eq!(sources[1].worker(), 1);
    let mut ports = 46000..46200;
    let addrs: Vec<(SocketAddr, usize)> = (0..6)
        .map(|i| {
            let a = open_free(&backend, V4, i % 2, ports.clone());
            ports.start = a.port() + 1;
            (a, i % 2)
        })
        .collect();
    assert_eq!(backend.open_count(), 6);
    for (a, w) in &addrs {
        assert_eq!(backend.worker_of(*a), Some(*w));
    }
    let tx = sender(V4);
    let before = now_ns();
    for round in 0..2 {
        for (i, (a, _)) in addrs.iter().enumerate() {
            tx.send_to(format!("dgram {i} {round}").as_bytes(), a)
                .expect("send");
        }
    }
    for (w, src) in sources.iter_mut().enumerate() {
        let got = poll_until(src, 6);
        assert_eq!(got.len(), 6, "worker {w}");
        let after = now_ns();
        for g in &got {
            assert_eq!(g.src, tx.local_addr().expect("addr"));
            let (i, (a, aw)) = addrs
                .iter()
                .enumerate()
                .find(|(_, (a, _))| *a == g.dst)
                .expect("dst is one of the bound sockets");
            assert_eq!(*aw, w, "{a} delivered by the wrong worker");
            let text = String::from_utf8(g.data.clone()).expect("utf8");
            assert!(text.starts_with(&format!("dgram {i} ")), "{text} on {a}");
            assert!(g.arrival_ns >= before && g.arrival_ns <= after);
        }
        // Per socket, datagrams arrive in order.
        for (a, _) in addrs.iter().filter(|(_, aw)| *aw == w) {
            let rounds: Vec<String> = got
                .iter()
                .filter(|g| g.dst == *a)
                .map(|g| String::from_utf8_lossy(&g.data).into_owned())
                .collect();
            assert_eq!(rounds.len(), 2);
            assert!(rounds[0].ends_with(" 0") && rounds[1].ends_with(" 1"));
        }
        let s = src.stats();
        assert_eq!((s.datagrams, s.truncated, s.recv_errors), (6, 0, 0));
        assert_eq!(
            s.bytes,
            got.iter().map(|g| g.data.len() as u64).sum::<u64>()
        );
        assert_eq!((s.sockets, s.opened, s.closed), (3, 3, 0));
        assert_eq!(backend.stats(w), Some(s), "published after the poll");
    }
    assert_eq!(backend.total_stats().datagrams, 12);
    assert_eq!(backend.stats(2), None);
}

#[test]
fn ipv6_loopback_and_v6only() {
    let (backend, mut sources) = SocketBackend::new(1).expect("backend");
    let a = open_free(&backend, V6, 0, 46200..46400);
    assert!(a.is_ipv6());
    let tx = sender(V6);
    tx.send_to(b"over ipv6", a).expect("send");
    let got = poll_until(&mut sources[0], 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].src, tx.local_addr().expect("addr"));
    assert_eq!(got[0].dst, a);
    assert_eq!(got[0].data, b"over ipv6");
    // A wildcard IPv6 socket covers [::1] on its port...
    let v4 = backend
        .open(SocketAddr::new(V4, a.port()), 0)
        .expect("127.0.0.1 beside [::1] on one port");
    let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), a.port());
    let r = backend.open(any6, 0);
    assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::AddrInUse));
    // ...but not 127.0.0.1: sockets are IPV6_V6ONLY, or this bind would
    // claim the IPv4 port too and fail.
    backend.close(a).expect("close v6");
    let _ = poll_for(&mut sources[0], Duration::from_millis(20));
    backend
        .open(any6, 0)
        .expect("[::] beside 127.0.0.1 on one port");
    // Both families through the same source, with the right senders.
    let tx4 = sender(V4);
    tx4.send_to(b"v4", v4).expect("send");
    let got = poll_until(&mut sources[0], 1);
    assert_eq!((got[0].src, got[0].dst), (tx4.local_addr().expect("a"), v4));
    let tx6 = sender(V6);
    tx6.send_to(b"v6", SocketAddr::new(V6, a.port()))
        .expect("send");
    let got = poll_until(&mut sources[0], 1);
    assert_eq!(got[0].src, tx6.local_addr().expect("a"));
    assert_eq!(got[0].dst, any6, "dst is the bound address");
}

#[test]
fn close_reads_what_was_queued_then_stops_delivery() {
    let (backend, mut sources) = SocketBackend::new(1).expect("backend");
    let src = &mut sources[0];
    let a = open_free(&backend, V4, 0, 46400..46600);
    let b = open_free(&backend, V4, 0, a.port() + 1..46600);
    let tx = sender(V4);
    // Queued before the worker ever saw the close: still delivered.
    for i in 0..3u8 {
        tx.send_to(&[i; 20], a).expect("send");
    }
    // The worker takes the open and the close in the same poll.
    backend.close(a).expect("close");
    assert_eq!(backend.worker_of(a), None);
    assert_eq!(backend.open_count(), 1);
    let got = poll_until(src, 3);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|g| g.dst == a));
    let s = src.stats();
    assert_eq!((s.sockets, s.closed), (1, 1), "dropped once drained");
    // After the close nothing more arrives from it; the other socket works.
    let _ = tx.send_to(b"late", a);
    tx.send_to(b"still open", b).expect("send");
    let got = poll_for(src, Duration::from_millis(100));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].dst, &got[0].data[..]), (b, &b"still open"[..]));
    // The port is free again.
    assert!(matches!(backend.close(a), Err(SocketError::NotOpen { .. })));
    let again = backend
        .open(a, 0)
        .expect("the closed port can be bound again");
    assert_eq!(again, a);
}

#[test]
fn close_of_an_idle_socket_drops_it_at_the_next_poll() {
    let config = SocketConfig {
        close_drain_limit: 0,
        ..SocketConfig::default()
    };
    let (backend, mut sources) = SocketBackend::with_config(1, config).expect("backend");
    let a = open_free(&backend, V4, 0, 46600..46700);
    let tx = sender(V4);
    tx.send_to(b"queued", a).expect("send");
    let _ = poll_once(&mut sources[0], &mut Vec::new());
    // Drain limit 0: the close discards what is queued.
    let _ = tx.send_to(b"queued too", a);
    backend.close(a).expect("close");
    let got = poll_for(&mut sources[0], Duration::from_millis(30));
    assert!(got.iter().all(|g| g.data != b"queued too"));
    let s = sources[0].stats();
    assert_eq!((s.sockets, s.opened, s.closed), (0, 1, 1));
}

#[test]
fn thousands_of_sockets_a_few_busy_none_starved() {
    const SOCKETS: usize = 2000;
    raise_fd_limit(SOCKETS as u64 + 512);
    let (backend, mut sources) = SocketBackend::new(1).expect("backend");
    let src = &mut sources[0];
    let addrs: Vec<SocketAddr> = (0..SOCKETS)
        .map(|_| backend.open(SocketAddr::new(V4, 0), 0).expect("open"))
        .collect();
    assert_eq!(addrs.iter().collect::<HashSet<_>>().len(), SOCKETS);
    // A poll takes a bounded number of opens; a few polls take them all.
    let mut polls = 0;
    while src.stats().sockets < SOCKETS as u64 {
        assert_eq!(poll_once(src, &mut Vec::new()), 0, "nothing sent yet");
        polls += 1;
        assert!(polls <= SOCKETS, "opens not taken");
    }
    assert!(polls > 1, "opens are taken in bounded batches");

    // Four floods, then one datagram to a quiet socket at the far end.
    let tx = sender(V4);
    let hot = [addrs[0], addrs[1], addrs[500], addrs[1000]];
    let quiet = addrs[SOCKETS - 1];
    for i in 0..200u32 {
        for h in hot {
            tx.send_to(&i.to_be_bytes(), h).expect("send");
        }
    }
    tx.send_to(b"quiet", quiet).expect("send");
    let total = hot.len() * 200 + 1;
    let got = poll_until(src, total);
    assert_eq!(got.len(), total);
    let at = got
        .iter()
        .position(|g| g.dst == quiet)
        .expect("quiet datagram");
    // A round serves each ready socket once: the quiet one waits for at
    // most a burst from each flood per round, not for the floods to end
    // (two rounds allowed, in case its readiness landed after a fetch).
    assert!(
        at <= 2 * hot.len() * crate::source::MAX_BURST,
        "quiet socket served after {at} datagrams"
    );
    for h in hot {
        let seq: Vec<u32> = got
            .iter()
            .filter(|g| g.dst == h)
            .map(|g| u32::from_be_bytes(g.data[..4].try_into().expect("4 bytes")))
            .collect();
        assert_eq!(seq, (0..200).collect::<Vec<_>>(), "{h}: all, in order");
    }

    // One datagram to every socket: each arrives once, at its own socket.
    for (i, a) in addrs.iter().enumerate() {
        tx.send_to(&(i as u32).to_be_bytes(), a).expect("send");
    }
    let got = poll_until(src, SOCKETS);
    assert_eq!(got.len(), SOCKETS);
    let mut seen = HashSet::new();
    for g in &got {
        let i = u32::from_be_bytes(g.data[..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(g.dst, addrs[i]);
        assert!(seen.insert(i), "datagram {i} twice");
    }
    assert!(poll_for(src, Duration::from_millis(20)).is_empty());
    let s = src.stats();
    assert_eq!(s.datagrams, (total + SOCKETS) as u64);
    assert_eq!((s.truncated, s.recv_errors, s.poll_errors), (0, 0, 0));
    // Batching: the floods were read 32 at a time.
    assert!(s.recv_calls < s.datagrams, "{s:?}");
}

#[test]
fn oversized_datagrams_are_counted_not_delivered() {
    let (backend, mut sources) = SocketBackend::new(1).expect("backend");
    let a = open_free(&backend, V4, 0, 46700..46800);
    let tx = sender(V4);
    tx.send_to(&[1u8; 3000], a).expect("send");
    tx.send_to(&[2u8; 2048], a).expect("send");
    tx.send_to(&[3u8; 100], a).expect("send");
    let got = poll_until(&mut sources[0], 2);
    assert!(poll_for(&mut sources[0], Duration::from_millis(20)).is_empty());
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].data, vec![2u8; 2048], "exactly the buffer size fits");
    assert_eq!(got[1].data, vec![3u8; 100]);
    let s = sources[0].stats();
    assert_eq!((s.datagrams, s.truncated, s.bytes), (2, 1, 2148));
    assert_eq!(backend.stats(0).map(|s| s.truncated), Some(1));
}

#[test]
fn errors_name_the_address() {
    assert!(matches!(
        SocketBackend::new(0).map(|_| ()),
        Err(SocketError::NoWorkers)
    ));
    let (backend, _sources) = SocketBackend::new(1).expect("backend");
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let e = backend.open(addr, 0).expect_err("port is taken");
    assert_eq!(
        e.to_string(),
        format!("cannot bind {addr}: Address already in use")
    );
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    let io_err: io::Error = e.into();
    assert_eq!(io_err.kind(), io::ErrorKind::AddrInUse);
    assert!(io_err.to_string().contains(&addr.to_string()));

    let a = open_free(&backend, V4, 0, 46800..46900);
    let e = backend.open(a, 0).expect_err("twice");
    assert_eq!(e.to_string(), format!("{a} is already open"));
    let e = backend
        .open(SocketAddr::new(V4, 0), 3)
        .expect_err("worker 3");
    assert!(matches!(
        e,
        SocketError::NoSuchWorker {
            worker: 3,
            workers: 1,
            ..
        }
    ));
    assert!(e.to_string().contains("127.0.0.1:0"), "{e}");
    backend.close(a).expect("close");
    let e = backend.close(a).expect_err("twice");
    assert_eq!(e.to_string(), format!("{a} is not open"));

    let bad = SocketConfig {
        datagram_capacity: 0,
        ..SocketConfig::default()
    };
    assert!(matches!(
        SocketBackend::with_config(1, bad).map(|_| ()),
        Err(SocketError::Config(_))
    ));
}

#[test]
fn open_after_the_worker_stopped_is_an_error() {
    let (backend, sources) = SocketBackend::new(1).expect("backend");
    drop(sources);
    let e = backend
        .open(SocketAddr::new(V4, 0), 0)
        .expect_err("no worker to serve it");
    assert!(matches!(e, SocketError::WorkerGone { worker: 0, .. }));
    assert_eq!(backend.open_count(), 0);
}

#[test]
fn idle_poll_calls_no_sink_and_publishes() {
    let (backend, mut sources) = SocketBackend::new(1).expect("backend");
    let n = sources[0].poll_burst(|_| panic!("no packets"));
    assert_eq!(n, 0);
    let s = backend.stats(0).expect("stats");
    assert_eq!(s.epoll_waits, 1);
    assert_eq!(s, sources[0].stats());
    let mut total = SocketStats::default();
    total.add(&s);
    total.add(&s);
    assert_eq!(total.epoll_waits, 2);
}

#[test]
fn types_cross_threads() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<SocketSource>();
    send::<SocketBackend>();
    sync::<SocketBackend>();
}

/// The socket source feeding the real data plane: 50 RTP packets at a
/// socket become a 50-packet track and 8000 samples of WAV.
#[test]
fn engine_records_rtp_received_on_a_socket() {
    use crate::codec::Codec;
    use crate::config::{DataplaneConfig, PortRange};
    use crate::engine::{Binding, CallSetup, Engine, TrackSetup};
    use crate::packet::testutil::rtp_packet;
    use crate::writer::WriterEvent;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = DataplaneConfig {
        port_range: PortRange::new(46900, 46999).expect("range"),
        recordings_dir: dir.path().to_path_buf(),
        max_tracks: 64,
        ring_bytes: 1 << 20,
        flush_interval: Duration::from_millis(50),
        ..DataplaneConfig::default()
    };
    let workers = config.workers;
    let (engine, cores) = Engine::start(config).expect("engine");
    let (backend, sources) = SocketBackend::new(workers).expect("backend");
    let addr = open_free(&backend, V4, 0, 46900..47000);
    let call = engine.open_call(CallSetup::default()).expect("call");
    engine
        .add_track(
            &call,
            TrackSetup {
                bindings: vec![Binding::Port(addr)],
                payload_types: vec![(0, Codec::Pcmu)],
                ..TrackSetup::default()
            },
        )
        .expect("track");
    engine.spawn_workers(cores, sources).expect("workers");

    let tx = sender(V4);
    for seq in 0..50u16 {
        let pkt = rtp_packet(0x80, 0, seq, u32::from(seq) * 160, 0x5eed, &[0xd5; 160]);
        assert_eq!(pkt.len(), 12 + 160);
        tx.send_to(&pkt, addr).expect("send");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.worker_counters()[0].recorded < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(engine.worker_counters()[0].recorded, 50);
    assert_eq!(backend.stats(0).map(|s| s.datagrams), Some(50));

    engine.end_call(&call, now_ns()).expect("end");
    let closed = match engine.recv_closed(Duration::from_secs(10)) {
        Some(WriterEvent::Closed(c)) => c,
        #[allow(unreachable_patterns)]
        other => panic!("expected the closed call, got {other:?}"),
    };
    backend.close(addr).expect("close");
    let t = &closed.meta.tracks[0];
    assert_eq!(t.packets, 50);
    assert_eq!((t.lost, t.duplicates), (0, 0));
    assert_eq!(t.samples, 50 * 160);
    let wav = std::fs::read(closed.dir.join(&t.file)).expect("wav");
    assert_eq!(&wav[0..4], b"RIFF");
    let data_len = u32::from_le_bytes(wav[40..44].try_into().expect("4 bytes"));
    assert_eq!(data_len as usize, 50 * 160 * 2, "16-bit samples");
    assert_eq!(wav.len(), 44 + 50 * 160 * 2);
    engine.shutdown();
}
