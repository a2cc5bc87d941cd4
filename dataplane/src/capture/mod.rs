//! Reading pcap and pcapng capture files for offline replay.
//!
//! Both formats are decoded by hand rather than through `pcap-file`: we need
//! exact control over three things that crate does not give us — one packet
//! buffer reused for the whole file (no allocation per packet), pcapng's
//! per-interface `if_tsresol`/`if_tsoffset` (it assumes nanoseconds), and
//! errors that name the byte offset where the file went wrong. The formats
//! are small enough that the hand-written readers are shorter than the glue.
//!
//! A reader is fused: after the first error (truncation, a corrupt length, an
//! I/O failure) it returns `None`, because nothing after a broken record can
//! be trusted to be framed correctly.

mod link;
mod pcap;
mod pcapng;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

pub use link::strip_link;

/// What the bytes of a captured packet start with, from the file's link
/// type (pcap: per file; pcapng: per interface).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// IPv4 or IPv6 with no link header: LINKTYPE_RAW (101), LINKTYPE_IPV4
    /// (228) and LINKTYPE_IPV6 (229).
    Raw,
    /// Linux "cooked" capture v1 (113), what `tcpdump -i any` writes.
    LinuxSll,
    /// Linux "cooked" capture v2 (276), newer `tcpdump -i any`.
    LinuxSll2,
    /// BSD loopback (0): a 4-byte address family in the writer's byte order.
    Null,
    /// OpenBSD loopback (108): a 4-byte address family in network order.
    Loop,
    /// Any other link type; its packets are dropped as `NotIp`.
    Other(u32),
}

impl LinkType {
    /// The link type for a LINKTYPE_* number, as found in file headers.
    pub const fn from_code(code: u32) -> LinkType {
        match code {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            101 | 228 | 229 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }
}

/// One packet read from a capture, borrowed from the reader's buffer until
/// the next call to [`CaptureReader::next_packet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapturedPacket<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    pub link: LinkType,
    /// The captured bytes, possibly fewer than `orig_len` if the capture
    /// used a snap length.
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
}

/// Why a capture file cannot be read (further). Every message starts with
/// the file name, since replay may be given many files.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{file}: cannot {op}: {source}")]
    Io {
        file: String,
        /// "open" or "read".
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{file}: empty file, not a pcap or pcapng file")]
    Empty { file: String },
    /// `magic` is the first four bytes in file order (as a hex dump shows
    /// them), whatever the endianness.
    #[error("{file}: not a pcap or pcapng file (magic 0x{magic:08x})")]
    BadMagic { file: String, magic: u32 },
    /// The file ends inside a header, record or block.
    #[error("{file}: truncated {what} at byte offset {offset}")]
    Truncated {
        file: String,
        what: &'static str,
        offset: u64,
    },
    /// A header or block whose fields contradict each other or the format.
    #[error("{file}: {detail} at byte offset {offset}")]
    Malformed {
        file: String,
        offset: u64,
        detail: String,
    },
}

/// A failure before the file name is attached, so the format readers need
/// not carry it around.
#[derive(Debug)]
enum Fault {
    Io(io::Error),
    Truncated { what: &'static str, offset: u64 },
    Malformed { offset: u64, detail: String },
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Self {
        Fault::Io(e)
    }
}

impl Fault {
    fn malformed(offset: u64, detail: impl Into<String>) -> Self {
        Fault::Malformed {
            offset,
            detail: detail.into(),
        }
    }

    fn with_file(self, file: &str) -> CaptureError {
        let file = file.to_owned();
        match self {
            Fault::Io(source) => CaptureError::Io {
                file,
                op: "read",
                source,
            },
            Fault::Truncated { what, offset } => CaptureError::Truncated { file, what, offset },
            Fault::Malformed { offset, detail } => CaptureError::Malformed {
                file,
                offset,
                detail,
            },
        }
    }
}

/// The byte order a file (or pcapng section) was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    /// A u32 at `off` in `s`, if it is there.
    fn u32_at(self, s: &[u8], off: usize) -> Option<u32> {
        let b = s.get(off..)?.first_chunk::<4>()?;
        Some(self.u32(*b))
    }

    fn u16_at(self, s: &[u8], off: usize) -> Option<u16> {
        let b = s.get(off..)?.first_chunk::<2>()?;
        Some(self.u16(*b))
    }
}

/// The input stream, counting bytes so errors can say where they are.
struct Input {
    r: Box<dyn Read + Send>,
    offset: u64,
}

impl Input {
    /// Fill `dst` as far as the stream allows; returns the number of bytes
    /// read, which is less than `dst.len()` only at end of file. (Unlike
    /// `read_exact`, this tells a clean EOF at a record boundary from a
    /// truncated record.)
    fn fill(&mut self, dst: &mut [u8]) -> Result<usize, Fault> {
        let mut n = 0;
        while let Some(rest) = dst.get_mut(n..).filter(|r| !r.is_empty()) {
            match self.r.read(rest) {
                Ok(0) => break,
                Ok(k) => n += k.min(rest.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fault::Io(e)),
            }
        }
        self.offset += n as u64;
        Ok(n)
    }

    /// Read exactly `len` bytes into the front of `buf` (growing it if
    /// needed, never shrinking, so steady state does not allocate), or fail
    /// as a truncated `what` starting at `start`.
    fn read_into<'b>(
        &mut self,
        buf: &'b mut Vec<u8>,
        len: usize,
        what: &'static str,
        start: u64,
    ) -> Result<&'b [u8], Fault> {
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let dst = buf.get_mut(..len).ok_or(Fault::Truncated {
            what,
            offset: start,
        })?;
        if self.fill(dst)? < len {
            return Err(Fault::Truncated {
                what,
                offset: start,
            });
        }
        Ok(dst)
    }
}

/// Where in the reader's buffer the next packet is, and what it is; found
/// by a format reader, turned into a [`CapturedPacket`] by the caller (this
/// split keeps the buffer borrow out of the format readers' loops).
struct PacketMeta {
    timestamp_ns: u64,
    link: LinkType,
    start: usize,
    len: usize,
    orig_len: u32,
}

enum Format {
    Pcap(pcap::State),
    PcapNg(pcapng::State),
}

/// Reads the packets of one pcap or pcapng file in order.
pub struct CaptureReader {
    name: String,
    input: Input,
    buf: Vec<u8>,
    format: Format,
    finished: bool,
}

impl fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = match &self.format {
            Format::Pcap(_) => "pcap",
            Format::PcapNg(_) => "pcapng",
        };
        f.debug_struct("CaptureReader")
            .field("name", &self.name)
            .field("format", &format)
            .field("offset", &self.input.offset)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// Read ahead in large chunks so a record header is not a system call.
const READ_BUFFER: usize = 256 * 1024;

impl CaptureReader {
    /// Open a capture file, telling pcap from pcapng by its first bytes
    /// (file names lie; `.cap` is either).
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        match File::open(path) {
            Ok(f) => Self::from_reader(f, &name),
            Err(source) => Err(CaptureError::Io {
                file: name,
                op: "open",
                source,
            }),
        }
    }

    /// Read a capture from any stream (a pipe, a decompressor, a test
    /// buffer); `name` is used in error messages. The file header is read
    /// and checked here, so a file that is not a capture fails now rather
    /// than at the first packet.
    pub fn from_reader<R: Read + Send + 'static>(r: R, name: &str) -> Result<Self, CaptureError> {
        let mut input = Input {
            r: Box::new(BufReader::with_capacity(READ_BUFFER, r)),
            offset: 0,
        };
        let mut buf = Vec::new();
        let format = Self::sniff(&mut input, &mut buf).map_err(|f| match f {
            Sniff::Fault(f) => f.with_file(name),
            Sniff::Empty => CaptureError::Empty {
                file: name.to_owned(),
            },
            Sniff::BadMagic(magic) => CaptureError::BadMagic {
                file: name.to_owned(),
                magic,
            },
        })?;
        Ok(CaptureReader {
            name: name.to_owned(),
            input,
            buf,
            format,
            finished: false,
        })
    }

    fn sniff(input: &mut Input, buf: &mut Vec<u8>) -> Result<Format, Sniff> {
        let mut magic = [0u8; 4];
        match input.fill(&mut magic)? {
            0 => return Err(Sniff::Empty),
            4 => {}
            _ => {
                return Err(Sniff::Fault(Fault::Truncated {
                    what: "file header",
                    offset: 0,
                }))
            }
        }
        if let Some((endian, nanos)) = pcap::magic(magic) {
            return Ok(Format::Pcap(pcap::State::read_header(
                input, endian, nanos,
            )?));
        }
        if magic == pcapng::SHB_TYPE {
            return Ok(Format::PcapNg(pcapng::State::open(input, buf)?));
        }
        Err(Sniff::BadMagic(u32::from_be_bytes(magic)))
    }

    /// The name given at open, for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Next packet, borrowed from an internal buffer reused across calls (no
    /// allocation per packet after warm-up). `None` at clean EOF, and after
    /// an error has been returned once.
    pub fn next_packet(&mut self) -> Option<Result<CapturedPacket<'_>, CaptureError>> {
        if self.finished {
            return None;
        }
        let next = match &mut self.format {
            Format::Pcap(st) => st.next(&mut self.input, &mut self.buf),
            Format::PcapNg(st) => st.next(&mut self.input, &mut self.buf),
        };
        match next {
            Ok(Some(m)) => {
                let data = m
                    .start
                    .checked_add(m.len)
                    .and_then(|end| self.buf.get(m.start..end));
                match data {
                    Some(data) => Some(Ok(CapturedPacket {
                        timestamp_ns: m.timestamp_ns,
                        link: m.link,
                        data,
                        orig_len: m.orig_len,
                    })),
                    // Unreachable by construction; fail rather than panic.
                    None => {
                        self.finished = true;
                        let f =
                            Fault::malformed(self.input.offset, "internal: packet outside buffer");
                        Some(Err(f.with_file(&self.name)))
                    }
                }
            }
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(f) => {
                self.finished = true;
                Some(Err(f.with_file(&self.name)))
            }
        }
    }
}

/// Failures possible while recognising the file, before it is a capture.
enum Sniff {
    Fault(Fault),
    Empty,
    BadMagic(u32),
}

impl From<Fault> for Sniff {
    fn from(f: Fault) -> Self {
        Sniff::Fault(f)
    }
}
