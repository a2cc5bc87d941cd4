//! The classic libpcap format: a 24-byte file header, then 16-byte record
//! headers each followed by the captured bytes.

use super::{Endian, Fault, Input, LinkType, PacketMeta};

/// libpcap's MAXIMUM_SNAPLEN: tcpdump refuses larger records, and a bigger
/// value is far more likely a corrupt header than a real packet. A file
/// whose header declares a larger snap length is trusted up to that.
const MAX_CAPLEN: u32 = 262_144;
/// Even a declared snap length is not trusted beyond this.
const HARD_MAX_CAPLEN: u32 = 16 * 1024 * 1024;
const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// The byte order and timestamp unit a pcap magic announces, for the four
/// magics (microsecond and nanosecond, written on either endianness).
pub(super) fn magic(m: [u8; 4]) -> Option<(Endian, bool)> {
    match u32::from_le_bytes(m) {
        0xa1b2_c3d4 => Some((Endian::Little, false)),
        0xa1b2_3c4d => Some((Endian::Little, true)),
        _ => match u32::from_be_bytes(m) {
            0xa1b2_c3d4 => Some((Endian::Big, false)),
            0xa1b2_3c4d => Some((Endian::Big, true)),
            _ => None,
        },
    }
}

pub(super) struct State {
    endian: Endian,
    /// Nanosecond timestamps (magic 0xa1b23c4d) rather than microseconds.
    nanos: bool,
    link: LinkType,
    max_caplen: u32,
}

impl State {
    /// Read the rest of the file header (the magic is already consumed).
    pub(super) fn read_header(
        input: &mut Input,
        endian: Endian,
        nanos: bool,
    ) -> Result<Self, Fault> {
        let mut h = [0u8; FILE_HEADER_LEN - 4];
        if input.fill(&mut h)? < h.len() {
            return Err(Fault::Truncated {
                what: "file header",
                offset: 0,
            });
        }
        let major = endian.u16([h[0], h[1]]);
        let minor = endian.u16([h[2], h[3]]);
        if major != 2 {
            return Err(Fault::malformed(
                4,
                format!("unsupported pcap version {major}.{minor}"),
            ));
        }
        // h[4..12]: thiszone and sigfigs, always 0 in practice and ignored by
        // libpcap too.
        let snaplen = endian.u32([h[12], h[13], h[14], h[15]]);
        // The top bits of the link-type field carry FCS information
        // (libpcap's LT_LINKTYPE mask); an FCS after the IP packet is trimmed
        // by the IP length anyway.
        let link = endian.u32([h[16], h[17], h[18], h[19]]) & 0x03ff_ffff;
        Ok(State {
            endian,
            nanos,
            link: LinkType::from_code(link),
            max_caplen: snaplen.clamp(MAX_CAPLEN, HARD_MAX_CAPLEN),
        })
    }

    pub(super) fn next(
        &mut self,
        input: &mut Input,
        buf: &mut Vec<u8>,
    ) -> Result<Option<PacketMeta>, Fault> {
        let start = input.offset;
        let mut h = [0u8; RECORD_HEADER_LEN];
        match input.fill(&mut h)? {
            0 => return Ok(None),
            RECORD_HEADER_LEN => {}
            _ => {
                return Err(Fault::Truncated {
                    what: "packet record",
                    offset: start,
                })
            }
        }
        let e = self.endian;
        let sec = e.u32([h[0], h[1], h[2], h[3]]);
        let frac = e.u32([h[4], h[5], h[6], h[7]]);
        let caplen = e.u32([h[8], h[9], h[10], h[11]]);
        let orig_len = e.u32([h[12], h[13], h[14], h[15]]);
        if caplen > self.max_caplen {
            return Err(Fault::malformed(
                start,
                format!(
                    "packet record claims {caplen} captured bytes, more than the maximum of {}",
                    self.max_caplen
                ),
            ));
        }
        let len = caplen as usize;
        input.read_into(buf, len, "packet record", start)?;
        // Cannot overflow: at most 2^32 * 10^9 + 2^32 * 10^3 < 2^64.
        let unit = if self.nanos { 1 } else { 1_000 };
        let timestamp_ns = u64::from(sec) * 1_000_000_000 + u64::from(frac) * unit;
        Ok(Some(PacketMeta {
            timestamp_ns,
            link: self.link,
            start: 0,
            len,
            orig_len,
        }))
    }
}
