//! The floor: the least a kernel-socket recorder can do. One thread, one
//! UDP socket per stream (as mediafork's socket backend), level-triggered
//! epoll and `recvmmsg` in bursts of 32, each packet's payload appended to
//! its stream's file through a 64 KiB buffer. No jitter buffer, no WAV, no
//! loss accounting beyond a count, no metadata: what the kernel costs to
//! deliver the packets and write the same bytes.
//!
//! It runs as a child process (the bench re-executes itself with
//! `__floor`), so its CPU time is measured like the other recorders'. It
//! stops when its stdin closes and writes a JSON result file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, IoSliceMut, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{recvmmsg, setsockopt, sockopt, MsgFlags, MultiHeaders, SockaddrIn};

use crate::sip::{answer_sdp, m_lines, Recorder, Uas};

const BURST: usize = 32;
const BUF: usize = 2048;
const SIP_TOKEN: u64 = u64::MAX;
const RTP_HEADER: usize = 12;

struct Stream {
    sock: UdpSocket,
    port: u16,
    file: BufWriter<File>,
    packets: u64,
    bytes: u64,
}

struct Floor {
    epoll: Epoll,
    dir: PathBuf,
    free_ports: Vec<u16>,
    /// token → stream
    streams: HashMap<u64, Stream>,
    /// Call-ID → the call's stream tokens
    calls: HashMap<String, Vec<u64>>,
    next_token: u64,
    headers: MultiHeaders<SockaddrIn>,
    bufs: Vec<u8>,
    /// Finished streams: (packets, bytes, flushed without error)
    done: Vec<(u64, u64, bool)>,
    rcvbuf: usize,
}

impl Floor {
    /// Read everything queued on stream `token` and append it to its file.
    fn drain(&mut self, token: u64) {
        let Some(st) = self.streams.get_mut(&token) else {
            return;
        };
        let fd = st.sock.as_raw_fd();
        loop {
            let mut chunks = self.bufs.chunks_exact_mut(BUF);
            let mut iovs: [[IoSliceMut<'_>; 1]; BURST] =
                std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
            let lens: Vec<usize> = match recvmmsg(
                fd,
                &mut self.headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(r) => r.map(|m| m.bytes).collect(),
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            };
            for (i, len) in lens.iter().enumerate() {
                let pkt = &self.bufs[i * BUF..i * BUF + (*len).min(BUF)];
                if pkt.len() > RTP_HEADER {
                    let _ = st.file.write_all(&pkt[RTP_HEADER..]);
                    st.bytes += (pkt.len() - RTP_HEADER) as u64;
                }
                st.packets += 1;
            }
            if lens.len() < BURST {
                break;
            }
        }
    }

    fn close(&mut self, token: u64) {
        self.drain(token);
        if let Some(mut st) = self.streams.remove(&token) {
            let _ = self.epoll.delete(&st.sock);
            let ok = st.file.flush().is_ok();
            self.done.push((st.packets, st.bytes, ok));
            self.free_ports.push(st.port);
        }
    }
}

impl Recorder for Floor {
    fn invite(
        &mut self,
        call_id: &str,
        _from_tag: &str,
        _to_tag: &str,
        sdp: &str,
    ) -> Result<String, (u16, String)> {
        let n = m_lines(sdp).max(1);
        let mut tokens = Vec::with_capacity(n);
        let mut ports = Vec::with_capacity(n);
        for j in 0..n {
            let Some(port) = self.free_ports.pop() else {
                for t in tokens {
                    self.close(t);
                }
                return Err((503, "Out of ports".into()));
            };
            let sock = UdpSocket::bind(("127.0.0.1", port))
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .map_err(|e| (503, format!("bind {port}: {e}")))?;
            let _ = setsockopt(&sock, sockopt::RcvBuf, &self.rcvbuf);
            let token = self.next_token;
            self.next_token += 1;
            self.epoll
                .add(&sock, EpollEvent::new(EpollFlags::EPOLLIN, token))
                .map_err(|e| (503, format!("epoll: {e}")))?;
            let name = format!("{}-{j}.raw", self.next_token);
            let file = File::create(self.dir.join(name)).map_err(|e| (503, e.to_string()))?;
            self.streams.insert(
                token,
                Stream {
                    sock,
                    port,
                    file: BufWriter::with_capacity(64 << 10, file),
                    packets: 0,
                    bytes: 0,
                },
            );
            tokens.push(token);
            ports.push(port);
        }
        self.calls.insert(call_id.to_string(), tokens);
        Ok(answer_sdp("127.0.0.1", &ports))
    }

    fn bye(&mut self, call_id: &str, _from_tag: &str) {
        if let Some(tokens) = self.calls.remove(call_id) {
            for t in tokens {
                self.close(t);
            }
        }
    }
}

/// `capacity __floor SIP_ADDR PORT_LO PORT_HI DIR RESULT_FILE RCVBUF`
pub fn serve(args: &[String]) -> Result<(), String> {
    let [sip, lo, hi, dir, out, rcvbuf] = args else {
        return Err("usage: __floor SIP_ADDR PORT_LO PORT_HI DIR RESULT_FILE RCVBUF".into());
    };
    let sip: SocketAddr = sip.parse().map_err(|e| format!("{sip}: {e}"))?;
    let lo: u16 = lo.parse().map_err(|e| format!("{lo}: {e}"))?;
    let hi: u16 = hi.parse().map_err(|e| format!("{hi}: {e}"))?;
    let mut uas = Uas::bind(sip).map_err(|e| format!("bind {sip}: {e}"))?;
    uas.sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let _ = setsockopt(&uas.sock, sockopt::RcvBuf, &(4usize << 20));
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| e.to_string())?;
    epoll
        .add(&uas.sock, EpollEvent::new(EpollFlags::EPOLLIN, SIP_TOKEN))
        .map_err(|e| e.to_string())?;
    let mut floor = Floor {
        epoll,
        dir: PathBuf::from(dir),
        free_ports: (lo..=hi).rev().filter(|p| p % 2 == 0).collect(),
        streams: HashMap::new(),
        calls: HashMap::new(),
        next_token: 0,
        headers: MultiHeaders::preallocate(BURST, None),
        bufs: vec![0u8; BURST * BUF],
        done: Vec::new(),
        rcvbuf: rcvbuf.parse().unwrap_or(1 << 20),
    };
    // Stop when the bench closes our stdin.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            stop.store(true, Relaxed);
        });
    }
    let mut events = vec![EpollEvent::empty(); 256];
    let mut sipbuf = vec![0u8; 65_536];
    while !stop.load(Relaxed) {
        let n = match floor.epoll.wait(&mut events, EpollTimeout::from(100u16)) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("epoll_wait: {e}")),
        };
        for ev in events.iter().take(n) {
            let token = ev.data();
            if token == SIP_TOKEN {
                while let Ok((len, from)) = uas.sock.recv_from(&mut sipbuf) {
                    uas.handle(&sipbuf[..len], from, &mut floor);
                }
            } else {
                floor.drain(token);
            }
        }
    }
    let open: Vec<u64> = floor.streams.keys().copied().collect();
    let unfinished = open.len();
    for t in open {
        floor.close(t);
    }
    let packets: u64 = floor.done.iter().map(|d| d.0).sum();
    let bytes: u64 = floor.done.iter().map(|d| d.1).sum();
    let flushed = floor.done.iter().all(|d| d.2);
    let per_stream: Vec<u64> = floor.done.iter().map(|d| d.0).collect();
    let result = serde_json::json!({
        "calls": uas.invites,
        "calls_ended": uas.byes,
        "refused": uas.refused,
        "streams": floor.done.len(),
        "unfinished_streams": unfinished,
        "packets": packets,
        "bytes": bytes,
        "flushed": flushed,
        "min_stream_packets": per_stream.iter().min().copied().unwrap_or(0),
    });
    std::fs::write(out, result.to_string()).map_err(|e| format!("{out}: {e}"))?;
    Ok(())
}
