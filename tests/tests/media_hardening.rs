//! The media path under attack and failure, against `mediafork run`:
//! packets spoofed to an allocated port from another address never enter
//! the recording (`media.source_policy`), and a writer that stops (a hung
//! disk) never stalls the workers: the lost audio is counted per call and
//! listed with its position in `meta.json`.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mediafork_e2e::admin::{cli_json, RawCall};
use mediafork_e2e::server::{Server, ServerOptions, Slot};
use mediafork_e2e::{track, wav_blocks};
use mediafork_testkit::payload::{pattern, Block, Law, PATTERN_PERIOD};
use mediafork_testkit::rtp::RtpPacket;
use serde_json::Value;

const SLOT_FIRST: Slot = Slot(37);
const SLOT_SDP: Slot = Slot(38);
const SLOT_STALL: Slot = Slot(39);

/// The spoofer's audio: pattern indices the real sender's first 100
/// packets never use (indices repeat every `PATTERN_PERIOD`).
const SPOOF_BASE: u32 = 150;

/// One RTP stream as a sender at `from` sends it.
struct Sender {
    sock: UdpSocket,
    dst: SocketAddr,
    ssrc: u32,
    seq: u16,
    ts: u32,
    index: u32,
}

impl Sender {
    fn new(from: &str, port: u16, ssrc: u32, index: u32) -> Sender {
        Sender {
            sock: UdpSocket::bind((from, 0)).expect("bind RTP sender"),
            dst: SocketAddr::new("127.0.0.1".parse().unwrap(), port),
            ssrc,
            seq: (ssrc & 0x3fff) as u16,
            ts: ssrc / 3,
            index,
        }
    }

    fn send(&mut self) {
        let p = RtpPacket::new(0, self.seq, self.ts, self.ssrc, pattern(self.index, 160));
        self.sock
            .send_to(&p.to_bytes(), self.dst)
            .expect("send RTP");
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        self.index += 1;
    }
}

/// Rounds of one packet per sender, one round every `interval`.
fn rounds(senders: &mut [&mut Sender], n: u32, interval: Duration) {
    let start = Instant::now();
    for k in 0..n {
        for s in senders.iter_mut() {
            s.send();
        }
        if let Some(d) = (start + interval * (k + 1)).checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
}

fn worker_sum(stats: &Value, f: impl Fn(&Value) -> u64) -> u64 {
    stats["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(f)
        .sum()
}

fn drops(stats: &Value, reason: &str) -> u64 {
    worker_sum(stats, |w| w["drops"][reason].as_u64().unwrap_or(0))
}

fn with_config(toml: &str) -> ServerOptions {
    ServerOptions {
        config: Some(toml.to_string()),
        ..ServerOptions::default()
    }
}

fn packet_indices(dir: &std::path::Path, t: &Value) -> Vec<u32> {
    wav_blocks(dir, t, Law::Ulaw)
        .into_iter()
        .filter_map(|b| match b {
            Block::Packet(i) => Some(i),
            _ => None,
        })
        .collect()
}

/// Default policy (`first`): the SBC sends first; a second host then
/// sends packets of the same SSRC, with sequence numbers that would fit,
/// to the same port, and a third floods the port with garbage and the rest
/// of the range with RTP. None of it is in the WAV; every packet that
/// reached the recorder is counted.
#[test]
fn spoofed_packets_to_an_allocated_port_never_enter_the_recording() {
    let mut server = Server::start(SLOT_FIRST);
    let admin = server.admin_url();
    let call = RawCall::place(server.sip, "spoof-first@127.0.0.1", 1, &[]);
    let port = call.ports[0];
    let mut sbc = Sender::new("127.0.0.1", port, 0x5B0F_0001, 0);
    rounds(&mut [&mut sbc], 10, Duration::from_millis(5));
    // Same SSRC, the SBC's next sequence numbers: only the address differs.
    let mut spoofer = Sender::new("127.0.0.2", port, 0x5B0F_0001, SPOOF_BASE);
    spoofer.seq = sbc.seq.wrapping_add(1);
    spoofer.ts = sbc.ts;
    for _ in 0..40 {
        spoofer.send();
        spoofer.seq = spoofer.seq.wrapping_add(1);
        sbc.send();
        std::thread::sleep(Duration::from_millis(5));
    }
    // A flood of garbage to the allocated port, and RTP to ports of the
    // range no call owns (the kernel drops those: no socket is bound).
    let flood = UdpSocket::bind(("127.0.0.3", 0)).unwrap();
    let (lo, hi) = SLOT_FIRST.rtp_range();
    for k in 0..2000u32 {
        let garbage: &[u8] = if k % 2 == 0 { &[0u8; 60] } else { &[0x80] };
        flood.send_to(garbage, ("127.0.0.1", port)).unwrap();
        let other = lo + (k % u32::from(hi - lo + 1)) as u16;
        if !call.ports.contains(&other) && !call.ports.contains(&(other - 1)) {
            let p = RtpPacket::new(0, k as u16, k * 160, 0xF100D, pattern(SPOOF_BASE, 160));
            flood.send_to(&p.to_bytes(), ("127.0.0.1", other)).unwrap();
        }
        if k % 200 == 0 {
            sbc.send();
        }
        // Fast, but within what the socket buffer holds on a busy machine:
        // the count must be exact.
        if k % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    rounds(&mut [&mut sbc], 10, Duration::from_millis(5));
    std::thread::sleep(Duration::from_millis(300));
    let stats = cli_json(&admin, &["stats"]);
    assert_eq!(drops(&stats, "wrong_source"), 40, "{stats:#}");
    assert_eq!(
        drops(&stats, "not_rtp") + drops(&stats, "malformed"),
        2000,
        "{stats:#}"
    );
    assert_eq!(call.bye(), Some(200));
    let (dir, meta) = server.only_recording();
    server.stop();
    let t = track(&meta, "1");
    assert_eq!(t["wrong_source"], 40, "{meta:#}");
    assert_eq!(t["packets"], 70, "{meta:#}");
    let audio = packet_indices(&dir, t);
    assert_eq!(audio, (0..70).collect::<Vec<u32>>(), "only the SBC's audio");
}

/// `sdp` policy: a spoofer that reaches the port before the SBC (which
/// would own the stream under `first`) is dropped from its first packet,
/// and the SBC, at the SDP's address, is recorded.
#[test]
fn sdp_policy_refuses_a_spoofer_that_sends_first() {
    let mut server =
        Server::start_with(SLOT_SDP, with_config("[media]\nsource_policy = \"sdp\"\n"));
    let admin = server.admin_url();
    let call = RawCall::place(server.sip, "spoof-sdp@127.0.0.1", 1, &[]);
    assert!(call.invite.body.contains("c=IN IP4 127.0.0.1"));
    let port = call.ports[0];
    let mut spoofer = Sender::new("127.0.0.2", port, 0x5B0F_0002, SPOOF_BASE);
    rounds(&mut [&mut spoofer], 20, Duration::from_millis(2));
    let mut sbc = Sender::new("127.0.0.1", port, 0x5B0F_0003, 0);
    rounds(&mut [&mut sbc, &mut spoofer], 30, Duration::from_millis(5));
    std::thread::sleep(Duration::from_millis(300));
    let stats = cli_json(&admin, &["stats"]);
    assert_eq!(drops(&stats, "wrong_source"), 50, "{stats:#}");
    assert_eq!(call.bye(), Some(200));
    let (dir, meta) = server.only_recording();
    server.stop();
    let t = track(&meta, "1");
    assert_eq!(t["wrong_source"], 50, "{meta:#}");
    assert_eq!(t["ssrc"], 0x5B0F_0003u32, "the SBC's stream: {meta:#}");
    assert_eq!(packet_indices(&dir, t), (0..30).collect::<Vec<u32>>());
}

/// The thread ids of `pid`'s threads named `name`.
fn threads_named(pid: u32, name: &str) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("/proc/PID/task")
        .filter_map(|e| {
            let e = e.ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            (comm.trim() == name).then(|| e.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

/// Stops one thread of another process as a hung `write()` would, until
/// dropped. ptrace stops exactly that thread; the rest of the process runs.
struct StoppedThread(nix::unistd::Pid);

impl StoppedThread {
    fn stop(tid: i32) -> StoppedThread {
        use nix::sys::ptrace;
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        let pid = nix::unistd::Pid::from_raw(tid);
        ptrace::seize(pid, ptrace::Options::empty()).expect("PTRACE_SEIZE the writer thread");
        ptrace::interrupt(pid).expect("PTRACE_INTERRUPT");
        match waitpid(pid, Some(WaitPidFlag::__WALL)).expect("waitpid") {
            WaitStatus::PtraceEvent(..) | WaitStatus::Stopped(..) => {}
            other => panic!("writer thread: {other:?}"),
        }
        StoppedThread(pid)
    }
}

impl Drop for StoppedThread {
    fn drop(&mut self) {
        let _ = nix::sys::ptrace::detach(self.0, None);
    }
}

/// The writer stops for over a second mid-call (a hung disk). The worker
/// goes on receiving; what does not fit on the ring is dropped and counted
/// as `ring_full`; a new call is answered meanwhile; and when the writer
/// comes back, the recording closes complete in length, with silence
/// where the audio was lost and `losses` saying how much and where.
#[test]
fn a_stalled_writer_never_stalls_the_workers_and_the_loss_is_located() {
    // The smallest ring (64 KiB, about 320 packets) so the stall overflows
    // it in well under a second.
    let mut server = Server::start_with(SLOT_STALL, with_config("[media]\nring_bytes = 65536\n"));
    let admin = server.admin_url();
    let call = RawCall::place(server.sip, "stall-1@127.0.0.1", 2, &[]);
    let mut a = Sender::new("127.0.0.1", call.ports[0], 0x57A1_0001, 0);
    let mut b = Sender::new("127.0.0.1", call.ports[1], 0x57A1_0002, 0);
    rounds(&mut [&mut a, &mut b], 100, Duration::from_millis(5));
    // Let the writer take all of it before it stops.
    std::thread::sleep(Duration::from_millis(500));
    let writers = threads_named(server.pid(), "mf-writer-0");
    assert_eq!(writers.len(), 1, "one writer thread");
    let before = cli_json(&admin, &["stats"]);
    let stalled = StoppedThread::stop(writers[0]);
    let t0 = Instant::now();
    rounds(&mut [&mut a, &mut b], 400, Duration::from_millis(2));
    std::thread::sleep(Duration::from_millis(200));
    // The control plane and the workers carry on without the writer.
    let during = cli_json(&admin, &["stats"]);
    let rx = |s: &Value| worker_sum(s, |w| w["rx_packets"].as_u64().unwrap_or(0));
    assert_eq!(
        rx(&during) - rx(&before),
        800,
        "every packet received: {during:#}"
    );
    let ring_full = drops(&during, "ring_full");
    assert!(ring_full > 300, "the ring overflowed: {during:#}");
    let other = RawCall::place(server.sip, "stall-2@127.0.0.1", 1, &[]);
    assert!(t0.elapsed() < Duration::from_secs(10));
    drop(stalled);
    rounds(&mut [&mut a, &mut b], 100, Duration::from_millis(5));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(call.bye(), Some(200));
    assert_eq!(other.bye(), Some(200));
    let recs = server.wait_recordings(Duration::from_secs(10), |r| {
        r.len() == 2 && r.iter().all(|(_, m)| m["ended_at"].is_string())
    });
    let after = cli_json(&admin, &["stats"]);
    server.stop();
    let (dir, meta) = recs
        .iter()
        .find(|(_, m)| m["call"]["sip_call_id"] == "stall-1@127.0.0.1")
        .expect("the stalled call's recording");
    assert_eq!(meta["complete"], true, "{meta:#}");
    let mut per_call = 0;
    for label in ["1", "2"] {
        let t = track(meta, label);
        let lost = t["ring_drops"].as_u64().unwrap();
        per_call += lost;
        let losses = t["losses"].as_array().expect("losses listed");
        let listed: u64 = losses.iter().map(|l| l["packets"].as_u64().unwrap()).sum();
        assert_eq!(listed, lost, "{t:#}");
        assert!(losses.iter().all(|l| l["reason"] == "ring_full"), "{t:#}");
        // The run starts after the 100 packets before the stall and the
        // ones that still fitted on the ring, and within the stall.
        let at = losses[0]["at_seconds"].as_f64().unwrap();
        assert!((2.0..10.0).contains(&at), "{t:#}");
        // The WAV keeps the call's length: all 600 packets' worth, with
        // silence where audio was lost.
        assert_eq!(t["samples"], 600 * 160, "{t:#}");
        let blocks = wav_blocks(dir, t, Law::Ulaw);
        let first_lost = (losses[0]["at_sample"].as_u64().unwrap() / 160) as usize;
        assert_eq!(blocks[first_lost], Block::Silence, "silence at the loss");
        let audio = packet_indices(dir, t);
        assert_eq!(audio.len() as u64 + lost, 600, "{t:#}");
        assert_eq!(&audio[..100], &(0..100).collect::<Vec<u32>>()[..]);
        assert_eq!(
            *audio.last().unwrap(),
            599 % PATTERN_PERIOD,
            "recording resumed after the stall"
        );
    }
    assert_eq!(
        per_call,
        drops(&after, "ring_full"),
        "all drops are this call's"
    );
}
