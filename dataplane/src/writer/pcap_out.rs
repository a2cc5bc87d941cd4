//! The optional `call.pcap`: every packet of the call as it arrived,
//! Ethernet link type. Packets that came without link or IP headers
//! (socket backend) get synthetic ones so tshark decodes them. With
//! `[encryption]` it is `call.pcap.sealed`: each flush seals what was
//! written since the last one as a chunk.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::recording::sealed::{Content, RecordingKey, SealedWriter};
use crate::worker::{decode_addrs, ADDR_BLOCK};

const LINKTYPE_ETHERNET: u32 = 1;

/// Plaintext sealed per chunk at most, between flushes.
const SEALED_BUFFER: usize = 1 << 20;

/// Where the pcap bytes go.
enum Out {
    Plain(BufWriter<File>),
    Sealed { w: SealedWriter, buf: Vec<u8> },
}

impl Write for Out {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Out::Plain(f) => f.write(data),
            Out::Sealed { w, buf } => {
                buf.extend_from_slice(data);
                if buf.len() >= SEALED_BUFFER {
                    w.chunk(buf)?;
                    buf.clear();
                }
                Ok(data.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Plain(f) => f.flush(),
            Out::Sealed { w, buf } => {
                // Cleared even on failure: the writer gives the file up then.
                let res = w.chunk(buf);
                buf.clear();
                res
            }
        }
    }
}

pub struct PcapOut {
    out: Out,
    scratch: Vec<u8>,
}

impl PcapOut {
    pub fn create(path: &Path) -> io::Result<PcapOut> {
        let out = BufWriter::with_capacity(64 << 10, File::create(path)?);
        PcapOut::start(Out::Plain(out))
    }

    /// `call.pcap` sealed with `key`, at `path` (`call.pcap.sealed`).
    pub fn create_sealed(path: &Path, key: &RecordingKey) -> io::Result<PcapOut> {
        let w = SealedWriter::create(path, key, "call.pcap", Content::Bytes)?;
        PcapOut::start(Out::Sealed {
            w,
            buf: Vec::with_capacity(64 << 10),
        })
    }

    fn start(mut out: Out) -> io::Result<PcapOut> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes()); // nanosecond pcap
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapOut {
            out,
            scratch: Vec::with_capacity(2048),
        })
    }

    /// Write one packet; `kind` is the ring record's frame kind (0 Ethernet,
    /// 1 IP, 2 socket payload with an address block in front).
    pub fn write(&mut self, ts_ns: u64, kind: u32, data: &[u8]) -> io::Result<()> {
        self.scratch.clear();
        match kind {
            0 => self.scratch.extend_from_slice(data),
            1 => {
                let ethertype = if data.first().is_some_and(|b| b >> 4 == 6) {
                    0x86DDu16
                } else {
                    0x0800
                };
                push_ethernet(&mut self.scratch, ethertype);
                self.scratch.extend_from_slice(data);
            }
            _ => {
                let Some((src, dst)) = decode_addrs(data) else {
                    return Ok(());
                };
                synthesize_udp(&mut self.scratch, &src, &dst, &data[ADDR_BLOCK..]);
            }
        }
        let len = self.scratch.len() as u32;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&self.scratch)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The call is over: flush, and for a sealed file seal the final chunk.
    pub fn finish(&mut self) -> io::Result<()> {
        match &mut self.out {
            Out::Plain(f) => f.flush(),
            Out::Sealed { w, buf } => {
                let res = w.finish(buf);
                buf.clear();
                res
            }
        }
    }
}

fn push_ethernet(b: &mut Vec<u8>, ethertype: u16) {
    b.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]);
    b.extend_from_slice(&ethertype.to_be_bytes());
}

fn synthesize_udp(b: &mut Vec<u8>, src: &SocketAddr, dst: &SocketAddr, payload: &[u8]) {
    let udp_len = (8 + payload.len()) as u16;
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            push_ethernet(b, 0x0800);
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
            ip[8] = 64;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let mut sum = 0u32;
            for w in ip.chunks(2) {
                sum += u16::from_be_bytes([w[0], w[1]]) as u32;
            }
            while sum > 0xFFFF {
                sum = (sum & 0xFFFF) + (sum >> 16);
            }
            ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            b.extend_from_slice(&ip);
        }
        (s, d) => {
            push_ethernet(b, 0x86DD);
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
            ip[6] = 17;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&v6(s));
            ip[24..40].copy_from_slice(&v6(d));
            b.extend_from_slice(&ip);
        }
    }
    b.extend_from_slice(&src.port().to_be_bytes());
    b.extend_from_slice(&dst.port().to_be_bytes());
    b.extend_from_slice(&udp_len.to_be_bytes());
    // Checksum 0: "not computed", valid for IPv4; tshark flags it for IPv6
    // but decodes the packet.
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(payload);
}
