//! Capture files: classic pcap (µs or ns timestamps) and a minimal pcapng,
//! written to any [`Write`], plus a reader that accepts both so tests can
//! inspect what mediafork itself writes.
//!
//! Written from the published formats (the tcpdump.org pcap header and
//! draft-ietf-opsawg-pcapng) rather than through a crate, so the exact bytes
//! are under the test's control, including deliberately odd ones such as a
//! record shorter than its original length.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Link type of Ethernet frames.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Link type of raw IPv4/IPv6 packets with no link header.
pub const LINKTYPE_RAW: u32 = 101;
/// Magic of a classic pcap with microsecond timestamps.
pub const MAGIC_MICROS: u32 = 0xA1B2_C3D4;
/// Magic of a classic pcap with nanosecond timestamps.
pub const MAGIC_NANOS: u32 = 0xA1B2_3C4D;
/// Snap length written in headers: the customary 256 KiB, larger than any
/// frame the kit builds.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Timestamp resolution of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TsResolution {
    /// Microseconds: the classic default every tool reads.
    #[default]
    Micro,
    /// Nanoseconds: what a capture made with hardware timestamps carries.
    Nano,
}

/// Writes a classic pcap stream, little-endian, version 2.4.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    resolution: TsResolution,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Start a microsecond pcap of `link_type` on `out` (writes the global
    /// header immediately).
    pub fn new(out: W, link_type: u32) -> io::Result<Self> {
        Self::with_options(out, link_type, TsResolution::Micro, DEFAULT_SNAPLEN)
    }

    /// Start a pcap with the given timestamp resolution.
    pub fn with_resolution(out: W, link_type: u32, resolution: TsResolution) -> io::Result<Self> {
        Self::with_options(out, link_type, resolution, DEFAULT_SNAPLEN)
    }

    /// Start a pcap with the given resolution and snap length. Records longer
    /// than `snaplen` are cut to it, keeping their original length, as
    /// tcpdump `-s` does.
    pub fn with_options(
        mut out: W,
        link_type: u32,
        resolution: TsResolution,
        snaplen: u32,
    ) -> io::Result<Self> {
        let magic = match resolution {
            TsResolution::Micro => MAGIC_MICROS,
            TsResolution::Nano => MAGIC_NANOS,
        };
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&magic.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone: UTC
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&link_type.to_le_bytes());
        out.write_all(&h)?;
        Ok(Self {
            out,
            resolution,
            snaplen,
        })
    }

    /// Append one packet received at `ts_ns` (ns since the epoch; truncated
    /// to µs in a microsecond file).
    pub fn write_packet(&mut self, ts_ns: u64, data: &[u8]) -> io::Result<()> {
        let orig = u32::try_from(data.len()).map_err(|_| invalid("packet over 4 GiB"))?;
        self.write_record(ts_ns, data, orig)
    }

    /// Append a record whose stored bytes are `data` (cut to the snap length)
    /// but whose original length is `orig_len`: how a capture says a packet
    /// was truncated. The reader must not trust the frame to be complete.
    pub fn write_record(&mut self, ts_ns: u64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let stored = &data[..data.len().min(self.snaplen as usize)];
        let secs =
            u32::try_from(ts_ns / 1_000_000_000).map_err(|_| invalid("timestamp beyond 2106"))?;
        let frac = match self.resolution {
            TsResolution::Micro => (ts_ns % 1_000_000_000 / 1_000) as u32,
            TsResolution::Nano => (ts_ns % 1_000_000_000) as u32,
        };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(stored)
    }

    /// Flush and hand back the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Write `packets` (`(ts_ns, bytes)`, in the given order) to a microsecond
/// pcap at `path`. Accepts borrowed or owned packet bytes.
pub fn write_pcap<B: AsRef<[u8]>>(
    path: impl AsRef<Path>,
    link_type: u32,
    packets: &[(u64, B)],
) -> io::Result<()> {
    write_pcap_with(path, link_type, TsResolution::Micro, packets)
}

/// [`write_pcap`] with a chosen timestamp resolution.
pub fn write_pcap_with<B: AsRef<[u8]>>(
    path: impl AsRef<Path>,
    link_type: u32,
    resolution: TsResolution,
    packets: &[(u64, B)],
) -> io::Result<()> {
    let mut w =
        PcapWriter::with_resolution(BufWriter::new(File::create(path)?), link_type, resolution)?;
    for (ts, data) in packets {
        w.write_packet(*ts, data.as_ref())?;
    }
    w.finish()?;
    Ok(())
}

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 0x0000_0001;
const PCAPNG_SPB: u32 = 0x0000_0003;
const PCAPNG_EPB: u32 = 0x0000_0006;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;

/// Writes a pcapng stream, little-endian: one section header, interfaces
/// added on demand, enhanced packet blocks.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    interfaces: Vec<TsResolution>,
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

impl<W: Write> PcapngWriter<W> {
    /// Start a pcapng stream on `out` (writes the section header block).
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&PCAPNG_BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&u64::MAX.to_le_bytes()); // section length: unknown
        out.write_all(&block(PCAPNG_SHB, &body))?;
        Ok(Self {
            out,
            interfaces: Vec::new(),
        })
    }

    /// Declare an interface of `link_type` and return its id. With
    /// [`TsResolution::Micro`] the block carries no `if_tsresol` option (µs
    /// is the default); with nanoseconds it carries `if_tsresol = 9`.
    pub fn add_interface(&mut self, link_type: u32, resolution: TsResolution) -> io::Result<u32> {
        let lt = u16::try_from(link_type).map_err(|_| invalid("pcapng link types are 16 bits"))?;
        let mut body = Vec::with_capacity(20);
        body.extend_from_slice(&lt.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&DEFAULT_SNAPLEN.to_le_bytes());
        if resolution == TsResolution::Nano {
            body.extend_from_slice(&OPT_IF_TSRESOL.to_le_bytes());
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&[9, 0, 0, 0]);
            body.extend_from_slice(&OPT_END.to_le_bytes());
            body.extend_from_slice(&0u16.to_le_bytes());
        }
        self.out.write_all(&block(PCAPNG_IDB, &body))?;
        self.interfaces.push(resolution);
        Ok(self.interfaces.len() as u32 - 1)
    }

    /// Append an enhanced packet block on interface `interface`.
    pub fn write_packet(&mut self, interface: u32, ts_ns: u64, data: &[u8]) -> io::Result<()> {
        let res = *self
            .interfaces
            .get(interface as usize)
            .ok_or_else(|| invalid("unknown pcapng interface"))?;
        let units = match res {
            TsResolution::Micro => ts_ns / 1_000,
            TsResolution::Nano => ts_ns,
        };
        let len = u32::try_from(data.len()).map_err(|_| invalid("packet over 4 GiB"))?;
        let mut body = Vec::with_capacity(20 + data.len());
        body.extend_from_slice(&interface.to_le_bytes());
        body.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(units as u32).to_le_bytes());
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(data);
        self.out.write_all(&block(PCAPNG_EPB, &body))
    }

    /// Flush and hand back the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Write a pcapng at `path` from `(ts_ns, link_type, bytes)` records: one
/// interface (µs resolution) per distinct link type, in order of first
/// appearance, so Ethernet and raw-IP packets can share one file.
pub fn write_pcapng<B: AsRef<[u8]>>(
    path: impl AsRef<Path>,
    packets: &[(u64, u32, B)],
) -> io::Result<()> {
    let mut w = PcapngWriter::new(BufWriter::new(File::create(path)?))?;
    let mut ifaces: Vec<(u32, u32)> = Vec::new(); // (link type, interface id)
    for (ts, lt, data) in packets {
        let id = match ifaces.iter().find(|(l, _)| l == lt) {
            Some(&(_, id)) => id,
            None => {
                let id = w.add_interface(*lt, TsResolution::Micro)?;
                ifaces.push((*lt, id));
                id
            }
        };
        w.write_packet(id, *ts, data.as_ref())?;
    }
    w.finish()?;
    Ok(())
}

/// One record read back from a capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRecord {
    /// Timestamp in nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Link type of the record's file (pcap) or interface (pcapng).
    pub link_type: u32,
    /// Length of the packet on the wire (may exceed `data.len()`).
    pub orig_len: u32,
    /// The stored bytes.
    pub data: Vec<u8>,
}

/// Read a classic pcap or a pcapng file as `(ts_ns, bytes)` pairs.
pub fn read_pcap(path: impl AsRef<Path>) -> io::Result<Vec<(u64, Vec<u8>)>> {
    Ok(parse_capture(&std::fs::read(path)?)?
        .into_iter()
        .map(|r| (r.ts_ns, r.data))
        .collect())
}

/// Parse capture-file bytes: classic pcap in either byte order and either
/// resolution, or pcapng (SHB, IDB with `if_tsresol`, EPB and SPB; other
/// blocks are skipped).
pub fn parse_capture(bytes: &[u8]) -> io::Result<Vec<PcapRecord>> {
    let magic = bytes.get(0..4).ok_or_else(|| invalid("file too short"))?;
    if magic == PCAPNG_SHB.to_le_bytes() {
        parse_pcapng(bytes)
    } else {
        parse_classic(bytes)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn u16_at(&self, pos: usize) -> io::Result<u16> {
        let b: [u8; 2] = self
            .bytes
            .get(pos..pos + 2)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| invalid("truncated capture"))?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32_at(&self, pos: usize) -> io::Result<u32> {
        let b: [u8; 4] = self
            .bytes
            .get(pos..pos + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| invalid("truncated capture"))?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn slice(&self, pos: usize, len: usize) -> io::Result<&[u8]> {
        self.bytes
            .get(
                pos..pos
                    .checked_add(len)
                    .ok_or_else(|| invalid("length overflow"))?,
            )
            .ok_or_else(|| invalid("truncated capture"))
    }
}

fn parse_classic(bytes: &[u8]) -> io::Result<Vec<PcapRecord>> {
    let le = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let (big_endian, nanos) = match le {
        MAGIC_MICROS => (false, false),
        MAGIC_NANOS => (false, true),
        m if m.swap_bytes() == MAGIC_MICROS => (true, false),
        m if m.swap_bytes() == MAGIC_NANOS => (true, true),
        _ => return Err(invalid("not a pcap or pcapng file")),
    };
    let r = Reader { bytes, big_endian };
    let link_type = r.u32_at(20)?;
    let mut pos = 24;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let secs = u64::from(r.u32_at(pos)?);
        let frac = u64::from(r.u32_at(pos + 4)?);
        let incl = r.u32_at(pos + 8)? as usize;
        let orig_len = r.u32_at(pos + 12)?;
        let data = r.slice(pos + 16, incl)?.to_vec();
        let ts_ns = secs * 1_000_000_000 + if nanos { frac } else { frac * 1_000 };
        out.push(PcapRecord {
            ts_ns,
            link_type,
            orig_len,
            data,
        });
        pos += 16 + incl;
    }
    Ok(out)
}

/// Convert a pcapng timestamp in `if_tsresol` units to nanoseconds.
fn pcapng_ts_to_ns(units: u64, tsresol: u8) -> u64 {
    let exp = u32::from(tsresol & 0x7F);
    let v = if tsresol & 0x80 == 0 {
        if exp <= 9 {
            u128::from(units) * 10u128.pow(9 - exp)
        } else {
            u128::from(units) / 10u128.pow(exp.min(38) - 9)
        }
    } else {
        (u128::from(units) * 1_000_000_000) >> exp.min(127)
    };
    v.min(u128::from(u64::MAX)) as u64
}

fn parse_pcapng(bytes: &[u8]) -> io::Result<Vec<PcapRecord>> {
    let mut r = Reader {
        bytes,
        big_endian: false,
    };
    let mut ifaces: Vec<(u32, u8)> = Vec::new(); // (link type, tsresol)
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let raw_kind = r.slice(pos, 4)?;
        if raw_kind == PCAPNG_SHB.to_le_bytes() {
            // The byte-order magic decides the endianness of this section.
            let bom = r.slice(pos + 8, 4)?;
            r.big_endian = bom == PCAPNG_BYTE_ORDER_MAGIC.to_be_bytes();
            ifaces.clear();
        }
        let kind = r.u32_at(pos)?;
        let total = r.u32_at(pos + 4)? as usize;
        if total < 12 || total % 4 != 0 {
            return Err(invalid("bad pcapng block length"));
        }
        let body = r.slice(pos + 8, total - 12)?;
        match kind {
            PCAPNG_IDB => {
                let lt = u32::from(r.u16_at(pos + 8)?);
                let mut tsresol = 6u8;
                let mut opt = 8; // options start after linktype, reserved, snaplen
                while opt + 4 <= body.len() {
                    let code = r.u16_at(pos + 8 + opt)?;
                    let len = usize::from(r.u16_at(pos + 8 + opt + 2)?);
                    if code == OPT_END {
                        break;
                    }
                    if code == OPT_IF_TSRESOL && len >= 1 {
                        tsresol = *body
                            .get(opt + 4)
                            .ok_or_else(|| invalid("truncated option"))?;
                    }
                    opt += 4 + len.div_ceil(4) * 4;
                }
                ifaces.push((lt, tsresol));
            }
            PCAPNG_EPB => {
                let iface = r.u32_at(pos + 8)? as usize;
                let (link_type, tsresol) = *ifaces
                    .get(iface)
                    .ok_or_else(|| invalid("EPB names an unknown interface"))?;
                let units = (u64::from(r.u32_at(pos + 12)?) << 32) | u64::from(r.u32_at(pos + 16)?);
                let cap = r.u32_at(pos + 20)? as usize;
                let orig_len = r.u32_at(pos + 24)?;
                let data = r.slice(pos + 28, cap)?.to_vec();
                out.push(PcapRecord {
                    ts_ns: pcapng_ts_to_ns(units, tsresol),
                    link_type,
                    orig_len,
                    data,
                });
            }
            PCAPNG_SPB => {
                let (link_type, _) = *ifaces
                    .first()
                    .ok_or_else(|| invalid("SPB before any interface"))?;
                let orig_len = r.u32_at(pos + 8)?;
                let cap = (orig_len as usize).min(total - 16);
                out.push(PcapRecord {
                    ts_ns: 0,
                    link_type,
                    orig_len,
                    data: r.slice(pos + 12, cap)?.to_vec(),
                });
            }
            _ => {}
        }
        pos += total;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_header_and_record_bytes() {
        let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET).unwrap();
        w.write_packet(1_500_000_123, &[1, 2, 3]).unwrap();
        let b = w.finish().unwrap();
        #[rustfmt::skip]
        let expected = vec![
            0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0x00, 0x00, 0x04, 0x00, 1, 0, 0, 0,
            1, 0, 0, 0, 0x20, 0xA1, 0x07, 0x00, 3, 0, 0, 0, 3, 0, 0, 0,
            1, 2, 3,
        ];
        assert_eq!(b, expected);
    }

    #[test]
    fn nanosecond_and_snaplen() {
        let mut w =
            PcapWriter::with_options(Vec::new(), LINKTYPE_RAW, TsResolution::Nano, 2).unwrap();
        w.write_packet(5_000_000_007, &[9, 8, 7]).unwrap();
        let b = w.finish().unwrap();
        assert_eq!(&b[0..4], &[0x4D, 0x3C, 0xB2, 0xA1]);
        let recs = parse_capture(&b).unwrap();
        assert_eq!(
            recs,
            vec![PcapRecord {
                ts_ns: 5_000_000_007,
                link_type: LINKTYPE_RAW,
                orig_len: 3,
                data: vec![9, 8],
            }]
        );
    }

    #[test]
    fn big_endian_classic_is_read() {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC_MICROS.to_be_bytes());
        b.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&65535u32.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&7u32.to_be_bytes());
        b.extend_from_slice(&9u32.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        b.push(0xEE);
        let recs = parse_capture(&b).unwrap();
        assert_eq!(recs[0].ts_ns, 7_000_009_000);
        assert_eq!(recs[0].data, vec![0xEE]);
    }

    #[test]
    fn pcapng_round_trip_with_two_link_types() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let eth = w
            .add_interface(LINKTYPE_ETHERNET, TsResolution::Micro)
            .unwrap();
        let raw = w.add_interface(LINKTYPE_RAW, TsResolution::Nano).unwrap();
        w.write_packet(eth, 1_000_001_999, &[1, 2, 3, 4, 5])
            .unwrap();
        w.write_packet(raw, 2_000_000_001, &[6]).unwrap();
        let b = w.finish().unwrap();
        assert_eq!(&b[0..4], &[0x0A, 0x0D, 0x0D, 0x0A]);
        assert_eq!(u32::from_le_bytes(b[4..8].try_into().unwrap()), 28);
        let recs = parse_capture(&b).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].ts_ns, recs[0].link_type),
            (1_000_001_000, LINKTYPE_ETHERNET)
        );
        assert_eq!(recs[0].data, vec![1, 2, 3, 4, 5]);
        assert_eq!(
            (recs[1].ts_ns, recs[1].link_type),
            (2_000_000_001, LINKTYPE_RAW)
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse_capture(&[1, 2, 3]).is_err());
        assert!(parse_capture(&[0u8; 24]).is_err());
        let mut w = PcapWriter::new(Vec::new(), 1).unwrap();
        w.write_packet(0, &[1, 2, 3, 4]).unwrap();
        let b = w.finish().unwrap();
        assert!(parse_capture(&b[..b.len() - 1]).is_err(), "cut record");
    }

    #[test]
    fn tsresol_conversion() {
        assert_eq!(pcapng_ts_to_ns(5, 6), 5_000);
        assert_eq!(pcapng_ts_to_ns(5, 9), 5);
        assert_eq!(pcapng_ts_to_ns(5_000, 12), 5);
        assert_eq!(pcapng_ts_to_ns(1 << 20, 0x80 | 20), 1_000_000_000);
    }
}
