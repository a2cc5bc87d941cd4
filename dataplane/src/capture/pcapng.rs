//! pcapng (draft-ietf-opsawg-pcapng): a sequence of sections, each a Section
//! Header Block setting the byte order, Interface Description Blocks giving
//! each interface's link type and timestamp unit, then packet blocks that
//! name their interface.

use super::{Endian, Fault, Input, LinkType, PacketMeta};

/// The Section Header Block type, a byte palindrome so it reads the same in
/// either byte order (it must be recognised before the order is known).
pub(super) const SHB_TYPE: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

const IDB: u32 = 1;
/// The obsolete Packet Block, still written by old tools.
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// libpcap's limit on a block: larger ones are treated as corruption rather
/// than read into memory.
const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;
/// Type, length, and the trailing copy of the length.
const BLOCK_OVERHEAD: u32 = 12;
/// SHB: the overhead plus byte-order magic, version and section length.
const MIN_SHB_LEN: u32 = 28;
const EPB_FIXED: usize = 20;
const SPB_FIXED: usize = 4;
const IDB_FIXED: usize = 8;

/// How a raw timestamp of one interface converts to nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scale {
    Mul(u128),
    Div(u128),
    /// Binary resolution 2^-n s: ns = raw * 10^9 >> n.
    Shift(u32),
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    scale: Scale,
    /// if_tsoffset, in seconds, added to every timestamp.
    offset_s: i64,
}

impl Interface {
    fn timestamp_ns(&self, raw: u64) -> u64 {
        let raw = u128::from(raw);
        let ns = match self.scale {
            Scale::Mul(m) => raw * m,
            Scale::Div(d) => raw / d,
            Scale::Shift(n) => (raw * 1_000_000_000) >> n,
        };
        // Both terms are far inside i128; clamp the sum into u64.
        let ns = ns as i128 + i128::from(self.offset_s) * 1_000_000_000;
        ns.clamp(0, i128::from(u64::MAX)) as u64
    }
}

pub(super) struct State {
    endian: Endian,
    /// Interfaces of the current section; ids restart with every section.
    interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no timestamp; they get the previous
    /// packet's so that replay pacing does not jump to 1970.
    last_ts: u64,
}

fn block_name(kind: u32) -> &'static str {
    match kind {
        IDB => "interface description block",
        OPB => "packet block",
        SPB => "simple packet block",
        EPB => "enhanced packet block",
        4 => "name resolution block",
        5 => "interface statistics block",
        _ => "block",
    }
}

impl State {
    /// Read the first Section Header Block, whose type the caller already
    /// consumed while sniffing the format.
    pub(super) fn open(input: &mut Input, buf: &mut Vec<u8>) -> Result<Self, Fault> {
        let mut st = State {
            endian: Endian::Little,
            interfaces: Vec::new(),
            last_ts: 0,
        };
        st.read_shb(input, buf, 0)?;
        Ok(st)
    }

    /// The rest of a Section Header Block starting at `start`, type consumed.
    fn read_shb(&mut self, input: &mut Input, buf: &mut Vec<u8>, start: u64) -> Result<(), Fault> {
        const WHAT: &str = "section header block";
        let mut h = [0u8; 8];
        if input.fill(&mut h)? < h.len() {
            return Err(Fault::Truncated {
                what: WHAT,
                offset: start,
            });
        }
        let bom = [h[4], h[5], h[6], h[7]];
        let endian = if u32::from_le_bytes(bom) == BYTE_ORDER_MAGIC {
            Endian::Little
        } else if u32::from_be_bytes(bom) == BYTE_ORDER_MAGIC {
            Endian::Big
        } else {
            return Err(Fault::malformed(
                start,
                format!(
                    "pcapng section header with bad byte-order magic 0x{:08x}",
                    u32::from_be_bytes(bom)
                ),
            ));
        };
        let len = endian.u32([h[0], h[1], h[2], h[3]]);
        check_len(len, MIN_SHB_LEN, WHAT, start)?;
        // Type, length and byte-order magic are read; the rest ends with the
        // trailing length.
        let rest = input.read_into(buf, (len - 12) as usize, WHAT, start)?;
        check_trailer(endian, rest, len, WHAT, start)?;
        let major = endian.u16_at(rest, 0).unwrap_or(0);
        let minor = endian.u16_at(rest, 2).unwrap_or(0);
        if major != 1 {
            return Err(Fault::malformed(
                start,
                format!("unsupported pcapng version {major}.{minor}"),
            ));
        }
        self.endian = endian;
        self.interfaces.clear();
        Ok(())
    }

    pub(super) fn next(
        &mut self,
        input: &mut Input,
        buf: &mut Vec<u8>,
    ) -> Result<Option<PacketMeta>, Fault> {
        loop {
            let start = input.offset;
            let mut h = [0u8; 8];
            let (kind_bytes, len_bytes) = h.split_at_mut(4);
            match input.fill(kind_bytes)? {
                0 => return Ok(None),
                4 => {}
                _ => {
                    return Err(Fault::Truncated {
                        what: "block header",
                        offset: start,
                    })
                }
            }
            if kind_bytes == SHB_TYPE {
                self.read_shb(input, buf, start)?;
                continue;
            }
            if input.fill(len_bytes)? < 4 {
                return Err(Fault::Truncated {
                    what: "block header",
                    offset: start,
                });
            }
            let e = self.endian;
            let kind = e.u32([h[0], h[1], h[2], h[3]]);
            let len = e.u32([h[4], h[5], h[6], h[7]]);
            let what = block_name(kind);
            check_len(len, BLOCK_OVERHEAD, what, start)?;
            let rest = input.read_into(buf, (len - 8) as usize, what, start)?;
            check_trailer(e, rest, len, what, start)?;
            let body = rest
                .get(..(len - BLOCK_OVERHEAD) as usize)
                .unwrap_or_default();
            let meta = match kind {
                IDB => {
                    let iface = self.interface(body, start)?;
                    self.interfaces.push(iface);
                    continue;
                }
                EPB | OPB => self.packet(kind, body, start)?,
                SPB => self.simple_packet(body, start)?,
                // Statistics, name resolution, decryption secrets, custom
                // blocks: nothing a recorder needs.
                _ => continue,
            };
            self.last_ts = meta.timestamp_ns;
            return Ok(Some(meta));
        }
    }

    fn interface(&self, body: &[u8], start: u64) -> Result<Interface, Fault> {
        let e = self.endian;
        let (Some(link), Some(snaplen)) = (e.u16_at(body, 0), e.u32_at(body, 4)) else {
            return Err(Fault::malformed(
                start,
                "interface description block too short",
            ));
        };
        let mut iface = Interface {
            link: LinkType::from_code(u32::from(link)),
            snaplen,
            // The default resolution is microseconds.
            scale: Scale::Mul(1_000),
            offset_s: 0,
        };
        let mut off = IDB_FIXED;
        while let Some(code) = e.u16_at(body, off) {
            let value = e
                .u16_at(body, off + 2)
                .map(usize::from)
                .and_then(|n| body.get(off + 4..off + 4 + n));
            let Some(value) = value else {
                return Err(Fault::malformed(
                    start,
                    format!("interface option {code} runs past the end of its block"),
                ));
            };
            match (code, value) {
                (OPT_END, _) => break,
                (OPT_IF_TSRESOL, &[res]) => iface.scale = scale(res, start)?,
                (OPT_IF_TSOFFSET, v) => {
                    let Some(v) = v.first_chunk::<8>().filter(|_| v.len() == 8) else {
                        return Err(Fault::malformed(start, "if_tsoffset option is not 8 bytes"));
                    };
                    iface.offset_s = match e {
                        Endian::Little => i64::from_le_bytes(*v),
                        Endian::Big => i64::from_be_bytes(*v),
                    };
                }
                (OPT_IF_TSRESOL, _) => {
                    return Err(Fault::malformed(start, "if_tsresol option is not 1 byte"))
                }
                _ => {}
            }
            // Option values are padded to 32 bits.
            off += 4 + value.len().next_multiple_of(4);
        }
        Ok(iface)
    }

    fn lookup(&self, id: u32, start: u64) -> Result<Interface, Fault> {
        self.interfaces.get(id as usize).copied().ok_or_else(|| {
            Fault::malformed(
                start,
                format!(
                    "packet for interface {id}, but the section describes {}",
                    self.interfaces.len()
                ),
            )
        })
    }

    /// Enhanced Packet Block, or the obsolete Packet Block whose layout
    /// differs only in a 16-bit interface id followed by a drop count.
    fn packet(&self, kind: u32, body: &[u8], start: u64) -> Result<PacketMeta, Fault> {
        let e = self.endian;
        let iface_id = if kind == OPB {
            e.u16_at(body, 0).map(u32::from)
        } else {
            e.u32_at(body, 0)
        };
        let fields = (
            iface_id,
            e.u32_at(body, 4),
            e.u32_at(body, 8),
            e.u32_at(body, 12),
            e.u32_at(body, 16),
        );
        let (Some(iface_id), Some(ts_hi), Some(ts_lo), Some(caplen), Some(orig_len)) = fields
        else {
            return Err(Fault::malformed(
                start,
                format!("{} too short", block_name(kind)),
            ));
        };
        let len = caplen as usize;
        if len > body.len().saturating_sub(EPB_FIXED) {
            return Err(Fault::malformed(
                start,
                format!(
                    "captured length {caplen} runs past the end of its {}",
                    block_name(kind)
                ),
            ));
        }
        let iface = self.lookup(iface_id, start)?;
        Ok(PacketMeta {
            timestamp_ns: iface.timestamp_ns((u64::from(ts_hi) << 32) | u64::from(ts_lo)),
            link: iface.link,
            start: EPB_FIXED,
            len,
            orig_len,
        })
    }

    /// Simple Packet Block: interface 0, no timestamp, and a captured length
    /// implied by the block length and the interface's snap length.
    fn simple_packet(&self, body: &[u8], start: u64) -> Result<PacketMeta, Fault> {
        let Some(orig_len) = self.endian.u32_at(body, 0) else {
            return Err(Fault::malformed(start, "simple packet block too short"));
        };
        let iface = self.lookup(0, start)?;
        let mut len = body.len().saturating_sub(SPB_FIXED).min(orig_len as usize);
        if iface.snaplen != 0 {
            len = len.min(iface.snaplen as usize);
        }
        Ok(PacketMeta {
            timestamp_ns: self.last_ts,
            link: iface.link,
            start: SPB_FIXED,
            len,
            orig_len,
        })
    }
}

/// if_tsresol: the low 7 bits are an exponent, of 10 when the top bit is
/// clear and of 2 when it is set; the unit is 10^-n or 2^-n seconds.
fn scale(res: u8, start: u64) -> Result<Scale, Fault> {
    let n = u32::from(res & 0x7f);
    if res & 0x80 != 0 {
        return Ok(Scale::Shift(n));
    }
    let s = if n <= 9 {
        10u128.checked_pow(9 - n).map(Scale::Mul)
    } else {
        10u128.checked_pow(n - 9).map(Scale::Div)
    };
    s.ok_or_else(|| Fault::malformed(start, format!("unsupported if_tsresol 0x{res:02x}")))
}

fn check_len(len: u32, min: u32, what: &str, start: u64) -> Result<(), Fault> {
    if len < min || len % 4 != 0 || len > MAX_BLOCK_LEN {
        return Err(Fault::malformed(
            start,
            format!("{what} has invalid length {len}"),
        ));
    }
    Ok(())
}

/// A block ends with a copy of its length; a mismatch means we lost the
/// framing (or the file is corrupt), and everything after would be garbage.
fn check_trailer(e: Endian, rest: &[u8], len: u32, what: &str, start: u64) -> Result<(), Fault> {
    let trailer = rest.len().checked_sub(4).and_then(|at| e.u32_at(rest, at));
    if trailer != Some(len) {
        return Err(Fault::malformed(
            start,
            format!("{what} length {len} does not match its trailing copy"),
        ));
    }
    Ok(())
}
