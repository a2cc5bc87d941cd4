//! Capture files built byte by byte, so each test controls exactly what the
//! reader sees (endianness, options, truncation points).

use std::io::Cursor;

use proptest::prelude::*;

use super::*;
use crate::packet::testutil::{ether, ipv4, ipv6, rtp_packet, udp, V6A, V6B};
use crate::packet::{classify, parse_frame, Media, ETHERTYPE_IPV4};
use crate::source::Frame;
use crate::DropReason;

// ---------------------------------------------------------------- builders

#[derive(Clone, Copy)]
enum E {
    Le,
    Be,
}

impl E {
    fn u16(self, v: u16) -> [u8; 2] {
        match self {
            E::Le => v.to_le_bytes(),
            E::Be => v.to_be_bytes(),
        }
    }
    fn u32(self, v: u32) -> [u8; 4] {
        match self {
            E::Le => v.to_le_bytes(),
            E::Be => v.to_be_bytes(),
        }
    }
}

/// (seconds, fraction, data, original length)
type Rec<'a> = (u32, u32, &'a [u8], u32);

fn pcap(e: E, nanos: bool, link: u32, records: &[Rec<'_>]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(e.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    f.extend(e.u16(2));
    f.extend(e.u16(4));
    f.extend([0; 8]);
    f.extend(e.u32(65535));
    f.extend(e.u32(link));
    for &(sec, frac, data, orig) in records {
        f.extend(e.u32(sec));
        f.extend(e.u32(frac));
        f.extend(e.u32(data.len() as u32));
        f.extend(e.u32(orig));
        f.extend_from_slice(data);
    }
    f
}

/// A pcapng writer that knows nothing of our reader.
struct Ng {
    e: E,
    out: Vec<u8>,
}

impl Ng {
    fn new(e: E) -> Self {
        let mut ng = Ng { e, out: Vec::new() };
        ng.shb(e);
        ng
    }

    fn block(&mut self, kind: u32, body: &[u8]) -> &mut Self {
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = body.len() as u32 + 12;
        let e = self.e;
        self.out.extend(e.u32(kind));
        self.out.extend(e.u32(len));
        self.out.extend(body);
        self.out.extend(e.u32(len));
        self
    }

    fn shb(&mut self, e: E) -> &mut Self {
        self.e = e;
        let mut body = Vec::new();
        body.extend(e.u32(0x1a2b_3c4d));
        body.extend(e.u16(1));
        body.extend(e.u16(0));
        body.extend([0xff; 8]); // section length unknown
                                // An shb_userappl option, to check SHB options are skipped.
        body.extend(e.u16(4));
        body.extend(e.u16(5));
        body.extend(b"test\0\0\0\0");
        body.extend([0; 4]);
        self.block(0x0a0d_0d0a, &body)
    }

    /// `options`: (code, value) pairs, the end-of-options marker added.
    fn idb(&mut self, link: u16, snaplen: u32, options: &[(u16, &[u8])]) -> &mut Self {
        let e = self.e;
        let mut body = Vec::new();
        body.extend(e.u16(link));
        body.extend([0, 0]);
        body.extend(e.u32(snaplen));
        for &(code, value) in options {
            body.extend(e.u16(code));
            body.extend(e.u16(value.len() as u16));
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        if !options.is_empty() {
            body.extend([0; 4]);
        }
        self.block(1, &body)
    }

    fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig: u32) -> &mut Self {
        let e = self.e;
        let mut body = Vec::new();
        body.extend(e.u32(iface));
        body.extend(e.u32((ts >> 32) as u32));
        body.extend(e.u32(ts as u32));
        body.extend(e.u32(data.len() as u32));
        body.extend(e.u32(orig));
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    fn opb(&mut self, iface: u16, ts: u64, data: &[u8]) -> &mut Self {
        let e = self.e;
        let mut body = Vec::new();
        body.extend(e.u16(iface));
        body.extend(e.u16(0));
        body.extend(e.u32((ts >> 32) as u32));
        body.extend(e.u32(ts as u32));
        body.extend(e.u32(data.len() as u32));
        body.extend(e.u32(data.len() as u32));
        body.extend_from_slice(data);
        self.block(2, &body)
    }

    fn spb(&mut self, data: &[u8], orig: u32) -> &mut Self {
        let mut body = self.e.u32(orig).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Got {
    ts: u64,
    link: LinkType,
    data: Vec<u8>,
    orig: u32,
}

fn reader(bytes: Vec<u8>) -> Result<CaptureReader, CaptureError> {
    CaptureReader::from_reader(Cursor::new(bytes), "test.cap")
}

/// All packets, then the error that ended the file if any; also checks the
/// reader stays finished afterwards.
fn read_all(bytes: Vec<u8>) -> (Vec<Got>, Option<CaptureError>) {
    let mut r = reader(bytes).expect("open");
    let mut got = Vec::new();
    let mut err = None;
    while let Some(p) = r.next_packet() {
        match p {
            Ok(p) => got.push(Got {
                ts: p.timestamp_ns,
                link: p.link,
                data: p.data.to_vec(),
                orig: p.orig_len,
            }),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert!(r.next_packet().is_none(), "reader must be fused");
    assert!(r.next_packet().is_none(), "reader must be fused");
    (got, err)
}

fn got(ts: u64, link: LinkType, data: &[u8]) -> Got {
    Got {
        ts,
        link,
        data: data.to_vec(),
        orig: data.len() as u32,
    }
}

fn sample_frame() -> Vec<u8> {
    let rtp = rtp_packet(0x80, 0, 7, 160, 0x1111, &[0xff; 20]);
    ether(
        ETHERTYPE_IPV4,
        &[],
        &ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, &udp(16384, 16386, &rtp)),
    )
}

// ---------------------------------------------------------------- pcap

#[test]
fn pcap_little_endian_microseconds() {
    let f = sample_frame();
    let bytes = pcap(
        E::Le,
        false,
        1,
        &[
            (1_700_000_000, 123_456, &f, 1514),
            (1_700_000_001, 0, b"xy", 2),
        ],
    );
    let (pkts, err) = read_all(bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        pkts,
        vec![
            Got {
                ts: 1_700_000_000_123_456_000,
                link: LinkType::Ethernet,
                data: f,
                orig: 1514
            },
            got(1_700_000_001_000_000_000, LinkType::Ethernet, b"xy"),
        ]
    );
}

#[test]
fn pcap_all_four_magics() {
    for (e, nanos, frac, want) in [
        (E::Le, false, 5u32, 5_000u64),
        (E::Be, false, 5, 5_000),
        (E::Le, true, 5, 5),
        (E::Be, true, 999_999_999, 999_999_999),
    ] {
        let (pkts, err) = read_all(pcap(e, nanos, 101, &[(2, frac, b"\x45", 1)]));
        assert!(err.is_none());
        assert_eq!(
            pkts,
            vec![got(2_000_000_000 + want, LinkType::Raw, b"\x45")]
        );
    }
}

#[test]
fn pcap_big_endian_nanoseconds_magic_bytes() {
    let bytes = pcap(E::Be, true, 113, &[(0, 1, b"a", 1)]);
    assert_eq!(bytes[..4], [0xa1, 0xb2, 0x3c, 0x4d]);
    let (pkts, _) = read_all(bytes);
    assert_eq!(pkts, vec![got(1, LinkType::LinuxSll, b"a")]);
}

#[test]
fn pcap_link_types() {
    for (code, want) in [
        (0u32, LinkType::Null),
        (1, LinkType::Ethernet),
        (101, LinkType::Raw),
        (228, LinkType::Raw),
        (229, LinkType::Raw),
        (108, LinkType::Loop),
        (113, LinkType::LinuxSll),
        (276, LinkType::LinuxSll2),
        (147, LinkType::Other(147)),
        // FCS-length bits in the top of the field are not part of the type.
        (0x1000_0001, LinkType::Ethernet),
    ] {
        let (pkts, _) = read_all(pcap(E::Le, false, code, &[(0, 0, b"z", 1)]));
        assert_eq!(pkts[0].link, want, "{code:#x}");
    }
}

#[test]
fn pcap_no_packets() {
    let (pkts, err) = read_all(pcap(E::Le, false, 1, &[]));
    assert!(pkts.is_empty());
    assert!(err.is_none());
}

#[test]
fn pcap_snap_length_shorter_than_packet() {
    let (pkts, _) = read_all(pcap(E::Le, false, 1, &[(0, 0, b"head", 1500)]));
    assert_eq!(pkts[0].data, b"head");
    assert_eq!(pkts[0].orig, 1500);
}

#[test]
fn pcap_truncated_record_header_and_data() {
    let f = sample_frame();
    let full = pcap(E::Le, false, 1, &[(1, 0, &f, 70), (2, 0, &f, 70)]);
    let second = 24 + 16 + f.len();
    // Cut inside the second record's header, then inside its data.
    for cut in [second + 1, second + 15, second + 16, full.len() - 1] {
        let (pkts, err) = read_all(full[..cut].to_vec());
        assert_eq!(pkts.len(), 1, "cut {cut}");
        let err = err.expect("truncation must be reported");
        assert!(
            matches!(err, CaptureError::Truncated { offset, .. } if offset == second as u64),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("test.cap: truncated packet record at byte offset {second}")
        );
    }
    // A cut exactly at a record boundary is a clean end.
    let (pkts, err) = read_all(full[..second].to_vec());
    assert_eq!((pkts.len(), err.is_none()), (1, true));
}

#[test]
fn pcap_truncated_or_bad_file_header() {
    for cut in [1, 3, 4, 10, 23] {
        let bytes = pcap(E::Le, false, 1, &[])[..cut].to_vec();
        let err = reader(bytes).expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "test.cap: truncated file header at byte offset 0",
            "cut {cut}"
        );
    }
    let mut v1 = pcap(E::Be, false, 1, &[]);
    v1[4..6].copy_from_slice(&[0, 1]);
    let err = reader(v1).expect_err("version");
    assert_eq!(
        err.to_string(),
        "test.cap: unsupported pcap version 1.4 at byte offset 4"
    );
}

#[test]
fn bad_magic_and_empty_file() {
    let err = reader(b"\x7fELF\x02\x01\x01\0\0\0\0\0".to_vec()).expect_err("elf");
    assert_eq!(
        err.to_string(),
        "test.cap: not a pcap or pcapng file (magic 0x7f454c46)"
    );
    assert!(matches!(
        err,
        CaptureError::BadMagic {
            magic: 0x7f45_4c46,
            ..
        }
    ));
    let err = reader(Vec::new()).expect_err("empty");
    assert!(matches!(err, CaptureError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("empty file"));
}

#[test]
fn pcap_absurd_captured_length() {
    let mut bytes = pcap(E::Le, false, 1, &[(0, 0, b"abc", 3)]);
    bytes[24 + 8..24 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let (pkts, err) = read_all(bytes);
    assert!(pkts.is_empty());
    let msg = err.expect("error").to_string();
    assert!(
        msg.starts_with("test.cap: packet record claims 2147483647 captured bytes"),
        "{msg}"
    );
    assert!(msg.ends_with("at byte offset 24"), "{msg}");
}

#[test]
fn packet_buffer_is_reused() {
    let f = sample_frame();
    let recs: Vec<Rec<'_>> = (0..50).map(|i| (i, 0, &f[..], f.len() as u32)).collect();
    let mut r = reader(pcap(E::Le, false, 1, &recs)).expect("open");
    let first = r.next_packet().expect("some").expect("ok").data.as_ptr();
    while let Some(p) = r.next_packet() {
        assert_eq!(p.expect("ok").data.as_ptr(), first);
    }
}

#[test]
fn interop_with_pcap_file_writer() {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::{DataLink, Endianness, TsResolution};
    use std::time::Duration;
    let f = sample_frame();
    for (endianness, ts_resolution) in [
        (Endianness::Big, TsResolution::MicroSecond),
        (Endianness::Little, TsResolution::NanoSecond),
    ] {
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            endianness,
            ts_resolution,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).expect("writer");
        let ts = Duration::new(1_600_000_000, 250_000_000);
        w.write_packet(&PcapPacket::new(ts, 1000, &f))
            .expect("write");
        let (pkts, err) = read_all(w.into_writer());
        assert!(err.is_none());
        assert_eq!(
            pkts,
            vec![Got {
                ts: 1_600_000_000_250_000_000,
                link: LinkType::Ethernet,
                data: f.clone(),
                orig: 1000
            }]
        );
    }
}

#[test]
fn open_reads_files_and_names_them_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("call.pcap");
    std::fs::write(&path, pcap(E::Le, true, 1, &[(1, 2, b"pkt", 3)])).expect("write");
    let mut r = CaptureReader::open(&path).expect("open");
    assert_eq!(r.name(), path.display().to_string());
    let p = r.next_packet().expect("one").expect("ok");
    assert_eq!((p.timestamp_ns, p.data), (1_000_000_002, &b"pkt"[..]));
    assert!(r.next_packet().is_none());

    let missing = dir.path().join("missing.pcap");
    let err = CaptureReader::open(&missing).expect_err("missing");
    assert!(matches!(err, CaptureError::Io { op: "open", .. }));
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: cannot open: ", missing.display())),
        "{msg}"
    );

    let junk = dir.path().join("notes.txt");
    std::fs::write(&junk, "hello world").expect("write");
    let msg = CaptureReader::open(&junk).expect_err("junk").to_string();
    assert_eq!(
        msg,
        format!(
            "{}: not a pcap or pcapng file (magic 0x68656c6c)",
            junk.display()
        )
    );
}

/// A reader whose stream fails mid-file reports the I/O error once.
#[test]
fn io_error_mid_file() {
    struct Failing(Cursor<Vec<u8>>);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::other("disk on fire")),
                n => Ok(n),
            }
        }
    }
    let bytes = pcap(E::Le, false, 1, &[(0, 0, b"abc", 3)]);
    let mut r = CaptureReader::from_reader(Failing(Cursor::new(bytes)), "x.pcap").expect("open");
    assert!(r.next_packet().expect("one").is_ok());
    let err = r.next_packet().expect("error").expect_err("io");
    assert_eq!(err.to_string(), "x.pcap: cannot read: disk on fire");
    assert!(r.next_packet().is_none());
}

// ---------------------------------------------------------------- pcapng

#[test]
fn pcapng_two_interfaces_with_their_own_link_and_resolution() {
    let f = sample_frame();
    let raw = ipv6(V6A, V6B, 17, &udp(1, 2, b"v6"));
    let bytes = Ng::new(E::Le)
        // Ethernet, default microsecond resolution.
        .idb(1, 0, &[])
        // Raw IP, nanoseconds, and an interface name option before it.
        .idb(101, 65535, &[(2, b"tun0"), (9, &[9])])
        .epb(0, 1_700_000_000_000_001, &f, f.len() as u32)
        .epb(1, 1_700_000_000_000_000_002, &raw, 200)
        .epb(0, 1_700_000_000_000_003, b"eth", 3)
        .bytes();
    let (pkts, err) = read_all(bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        pkts,
        vec![
            got(1_700_000_000_000_001_000, LinkType::Ethernet, &f),
            Got {
                ts: 1_700_000_000_000_000_002,
                link: LinkType::Raw,
                data: raw,
                orig: 200
            },
            got(1_700_000_000_000_003_000, LinkType::Ethernet, b"eth"),
        ]
    );
}

#[test]
fn pcapng_big_endian_section() {
    let bytes = Ng::new(E::Be)
        .idb(113, 0, &[(9, &[3])]) // milliseconds
        .epb(0, 1_234, b"sll-ish", 7)
        .bytes();
    assert_eq!(bytes[8..12], [0x1a, 0x2b, 0x3c, 0x4d]);
    let (pkts, err) = read_all(bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        pkts,
        vec![got(1_234_000_000, LinkType::LinuxSll, b"sll-ish")]
    );
}

#[test]
fn pcapng_timestamp_resolutions_and_offset() {
    type Opts<'a> = &'a [(u16, &'a [u8])];
    let cases: [(Opts<'_>, u64, u64); 6] = [
        (&[], 7, 7_000),
        (&[(9, &[0])], 7, 7_000_000_000),                // seconds
        (&[(9, &[12])], 7_000, 7),                       // picoseconds
        (&[(9, &[0x80 | 10])], 1024 * 3, 3_000_000_000), // 2^-10 s
        (&[(9, &[0x80 | 20])], 1, 953),                  // 2^-20 s, floored
        (&[(14, &100i64.to_le_bytes())], 5, 100_000_005_000),
    ];
    for (opts, raw, want) in cases {
        let bytes = Ng::new(E::Le).idb(1, 0, opts).epb(0, raw, b"x", 1).bytes();
        let (pkts, err) = read_all(bytes);
        assert!(err.is_none(), "{opts:?}: {err:?}");
        assert_eq!(pkts[0].ts, want, "{opts:?}");
    }
    // A negative offset cannot take a timestamp before the epoch.
    let bytes = Ng::new(E::Le)
        .idb(1, 0, &[(14, &(-10i64).to_le_bytes())])
        .epb(0, 1_000_000, b"x", 1)
        .bytes();
    assert_eq!(read_all(bytes).0[0].ts, 0);
    // An absurd decimal resolution is refused, not silently zeroed.
    let bytes = Ng::new(E::Le)
        .idb(1, 0, &[(9, &[127])])
        .epb(0, 1, b"x", 1)
        .bytes();
    let msg = read_all(bytes).1.expect("error").to_string();
    assert!(msg.contains("unsupported if_tsresol 0x7f"), "{msg}");
}

#[test]
fn pcapng_simple_and_obsolete_packet_blocks() {
    let bytes = Ng::new(E::Le)
        .idb(1, 4, &[(9, &[9])])
        .opb(0, 42, b"old")
        .spb(b"simple", 6) // snap length 4 applies
        .spb(b"ab", 2) // padded block: the original length bounds it
        .bytes();
    let (pkts, err) = read_all(bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        pkts,
        vec![
            got(42, LinkType::Ethernet, b"old"),
            Got {
                ts: 42,
                link: LinkType::Ethernet,
                data: b"simp".to_vec(),
                orig: 6
            },
            got(42, LinkType::Ethernet, b"ab"),
        ]
    );
}

#[test]
fn pcapng_skips_other_blocks() {
    let mut ng = Ng::new(E::Le);
    ng.idb(1, 0, &[]);
    ng.block(4, &[0; 4]); // name resolution (just the end record)
    ng.block(5, &[0; 12]); // interface statistics
    ng.block(0x0000_0bad, b"custom block data");
    ng.block(0x4000_0bad, &[]);
    ng.epb(0, 1, b"after", 5);
    let (pkts, err) = read_all(ng.bytes());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts, vec![got(1_000, LinkType::Ethernet, b"after")]);
}

#[test]
fn pcapng_new_section_resets_interfaces_and_byte_order() {
    let mut ng = Ng::new(E::Le);
    ng.idb(1, 0, &[]).idb(101, 0, &[]).epb(1, 1, b"a", 1);
    ng.shb(E::Be);
    ng.idb(276, 0, &[]).epb(0, 2, b"b", 1);
    let (pkts, err) = read_all(ng.bytes());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        pkts,
        vec![
            got(1_000, LinkType::Raw, b"a"),
            got(2_000, LinkType::LinuxSll2, b"b")
        ]
    );
    // Interface 1 no longer exists in the second section.
    let mut ng = Ng::new(E::Le);
    ng.idb(1, 0, &[]).idb(101, 0, &[]);
    ng.shb(E::Le);
    ng.idb(1, 0, &[]);
    let at = ng.out.len();
    ng.epb(1, 1, b"x", 1);
    let (pkts, err) = read_all(ng.bytes());
    assert!(pkts.is_empty());
    assert_eq!(
        err.expect("error").to_string(),
        format!(
            "test.cap: packet for interface 1, but the section describes 1 at byte offset {at}"
        )
    );
}

#[test]
fn pcapng_truncated_anywhere() {
    let f = sample_frame();
    let mut ng = Ng::new(E::Le);
    ng.idb(1, 0, &[(9, &[6])]).epb(0, 1, &f, 1500);
    let second = ng.out.len();
    ng.epb(0, 2, &f, 1500);
    let full = ng.bytes();
    for cut in second + 1..full.len() {
        let (pkts, err) = read_all(full[..cut].to_vec());
        assert_eq!(pkts.len(), 1, "cut {cut}");
        let err = err.expect("truncation");
        assert!(
            matches!(err, CaptureError::Truncated { offset, .. } if offset == second as u64),
            "cut {cut}: {err}"
        );
        if cut >= second + 8 {
            assert_eq!(
                err.to_string(),
                format!("test.cap: truncated enhanced packet block at byte offset {second}")
            );
        }
    }
    // Every cut inside the headers fails cleanly too, at open or later.
    for cut in 1..second {
        match reader(full[..cut].to_vec()) {
            Err(e) => assert!(matches!(e, CaptureError::Truncated { .. }), "{cut}: {e}"),
            Ok(mut r) => {
                let mut errors = 0;
                while let Some(p) = r.next_packet() {
                    errors += usize::from(p.is_err());
                }
                assert!(errors <= 1, "{cut}");
            }
        }
    }
}

#[test]
fn pcapng_corrupt_blocks() {
    let base = || {
        let mut ng = Ng::new(E::Le);
        ng.idb(1, 0, &[]);
        let at = ng.out.len();
        ng.epb(0, 1, b"abcd", 4);
        (ng.bytes(), at)
    };
    let msg = |bytes: Vec<u8>| read_all(bytes).1.expect("error").to_string();

    // Length not a multiple of 4.
    let (mut b, at) = base();
    b[at + 4] += 1;
    assert!(msg(b).contains("enhanced packet block has invalid length 37"));
    // Length below the minimum.
    let (mut b, at) = base();
    b[at + 4..at + 8].copy_from_slice(&8u32.to_le_bytes());
    assert!(msg(b).contains("invalid length 8"));
    // Huge length.
    let (mut b, at) = base();
    b[at + 4..at + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert!(msg(b).contains("invalid length"));
    // Trailer disagrees.
    let (mut b, _) = base();
    let n = b.len();
    b[n - 4] = 0x40;
    assert!(msg(b).contains("does not match its trailing copy"));
    // Captured length past the block.
    let (mut b, at) = base();
    b[at + 20..at + 24].copy_from_slice(&5u32.to_le_bytes());
    assert_eq!(
        msg(b),
        format!(
            "test.cap: captured length 5 runs past the end of its enhanced packet block at byte offset {at}"
        )
    );
    // An EPB too short for its fixed fields.
    let mut ng = Ng::new(E::Le);
    ng.idb(1, 0, &[]);
    ng.block(6, &[0; 16]);
    assert!(msg(ng.bytes()).contains("enhanced packet block too short"));
    // An option running past its block.
    let mut ng = Ng::new(E::Le);
    ng.block(1, &[1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 40, 0]);
    assert!(msg(ng.bytes()).contains("interface option 9 runs past the end"));
    // A packet before any interface.
    let mut ng = Ng::new(E::Le);
    ng.spb(b"x", 1);
    assert!(msg(ng.bytes()).contains("packet for interface 0, but the section describes 0"));
    // Bad byte-order magic and unsupported version in the first SHB.
    let mut b = Ng::new(E::Le).bytes();
    b[8] = 0;
    let e = reader(b).expect_err("bom").to_string();
    assert_eq!(
        e,
        "test.cap: pcapng section header with bad byte-order magic 0x003c2b1a at byte offset 0"
    );
    let mut b = Ng::new(E::Le).bytes();
    b[12] = 2;
    let e = reader(b).expect_err("version").to_string();
    assert_eq!(
        e,
        "test.cap: unsupported pcapng version 2.0 at byte offset 0"
    );
}

#[test]
fn interop_with_pcap_file_pcapng_writer() {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::{DataLink, Endianness};
    use std::borrow::Cow;
    use std::time::Duration;

    let f = sample_frame();
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Big).expect("writer");
    let mut eth = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0);
    // pcap-file writes the Duration's nanoseconds whatever the interface
    // says, so its files are only correct with if_tsresol = 9.
    eth.options.push(InterfaceDescriptionOption::IfTsResol(9));
    let mut sll = InterfaceDescriptionBlock::new(DataLink::LINUX_SLL, 0);
    sll.options.push(InterfaceDescriptionOption::IfTsResol(9));
    w.write_pcapng_block(eth).expect("idb");
    w.write_pcapng_block(sll).expect("idb");
    for (iface, data) in [(1u32, &b"cooked"[..]), (0, &f[..])] {
        let epb = EnhancedPacketBlock {
            interface_id: iface,
            timestamp: Duration::new(1_650_000_000, 7),
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options: vec![],
        };
        w.write_pcapng_block(epb).expect("epb");
    }
    let (pkts, err) = read_all(w.into_inner());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        pkts,
        vec![
            got(1_650_000_000_000_000_007, LinkType::LinuxSll, b"cooked"),
            got(1_650_000_000_000_000_007, LinkType::Ethernet, &f),
        ]
    );
}

// ---------------------------------------------------------------- strip_link

fn sll(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    h.extend(proto.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn sll2(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = proto.to_be_bytes().to_vec();
    h.extend([0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    h.extend_from_slice(payload);
    h
}

fn v4_rtp() -> Vec<u8> {
    ipv4(
        [172, 16, 0, 1],
        [172, 16, 0, 2],
        17,
        &udp(20000, 20002, &rtp_packet(0x80, 18, 1, 2, 3, b"g729")),
    )
}

#[test]
fn strip_link_passes_ethernet_and_raw_through() {
    let f = sample_frame();
    assert_eq!(
        strip_link(LinkType::Ethernet, &f),
        Ok((Frame::Ethernet, &f[..]))
    );
    let ip = v4_rtp();
    assert_eq!(strip_link(LinkType::Raw, &ip), Ok((Frame::Ip, &ip[..])));
    assert_eq!(strip_link(LinkType::Other(147), &f), Err(DropReason::NotIp));
}

#[test]
fn strip_link_sll_and_sll2() {
    let ip = v4_rtp();
    let v6 = ipv6(V6A, V6B, 17, &udp(1, 2, b"x"));
    for (frame, payload) in [
        (sll(0x0800, &ip), &ip),
        (sll(0x86dd, &v6), &v6),
        (sll2(0x0800, &ip), &ip),
        (sll2(0x86dd, &v6), &v6),
    ] {
        let link = if frame.len() - payload.len() == 16 {
            LinkType::LinuxSll
        } else {
            LinkType::LinuxSll2
        };
        assert_eq!(strip_link(link, &frame), Ok((Frame::Ip, &payload[..])));
    }
    // ARP, and 802.2 LLC (protocol < 0x600).
    assert_eq!(
        strip_link(LinkType::LinuxSll, &sll(0x0806, &[0; 28])),
        Err(DropReason::NotIp)
    );
    assert_eq!(
        strip_link(LinkType::LinuxSll, &sll(0x0004, &[0; 28])),
        Err(DropReason::NotIp)
    );
    assert_eq!(
        strip_link(LinkType::LinuxSll2, &sll2(0x88cc, &[0; 28])),
        Err(DropReason::NotIp)
    );
    // Truncated cooked headers.
    assert_eq!(
        strip_link(LinkType::LinuxSll, &[0; 15]),
        Err(DropReason::Malformed)
    );
    assert_eq!(
        strip_link(LinkType::LinuxSll2, &[0; 19]),
        Err(DropReason::Malformed)
    );
}

#[test]
fn strip_link_sll_with_vlan_tags_left_in() {
    let ip = v4_rtp();
    let mut tagged = vec![0x00, 0x64, 0x08, 0x00];
    tagged.extend_from_slice(&ip);
    assert_eq!(
        strip_link(LinkType::LinuxSll, &sll(0x8100, &tagged)),
        Ok((Frame::Ip, &ip[..]))
    );
    let mut qinq = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00];
    qinq.extend_from_slice(&ip);
    assert_eq!(
        strip_link(LinkType::LinuxSll2, &sll2(0x88a8, &qinq)),
        Ok((Frame::Ip, &ip[..]))
    );
    // Three tags, a truncated tag, and a tagged ARP.
    let three = [0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 8, 0];
    assert_eq!(
        strip_link(LinkType::LinuxSll, &sll(0x8100, &three)),
        Err(DropReason::Malformed)
    );
    assert_eq!(
        strip_link(LinkType::LinuxSll, &sll(0x8100, &[0, 1])),
        Err(DropReason::Malformed)
    );
    assert_eq!(
        strip_link(LinkType::LinuxSll, &sll(0x8100, &[0, 1, 8, 6, 0, 0])),
        Err(DropReason::NotIp)
    );
}

#[test]
fn strip_link_null_and_loop() {
    let ip = v4_rtp();
    for af in [2u32, 10, 23, 24, 28, 30] {
        for (link, header) in [
            (LinkType::Null, af.to_le_bytes()),
            (LinkType::Null, af.to_be_bytes()),
            (LinkType::Loop, af.to_be_bytes()),
        ] {
            let mut f = header.to_vec();
            f.extend_from_slice(&ip);
            assert_eq!(
                strip_link(link, &f),
                Ok((Frame::Ip, &ip[..])),
                "{link:?} {af}"
            );
        }
    }
    for af in [0u32, 1, 7, 17, 0x0200_0001] {
        let mut f = af.to_le_bytes().to_vec();
        f.extend_from_slice(&ip);
        assert_eq!(
            strip_link(LinkType::Null, &f),
            Err(DropReason::NotIp),
            "{af}"
        );
    }
    assert_eq!(
        strip_link(LinkType::Null, &[2, 0, 0]),
        Err(DropReason::Malformed)
    );
    assert_eq!(strip_link(LinkType::Loop, &[]), Err(DropReason::Malformed));
}

#[test]
fn capture_to_rtp_end_to_end() {
    let ip = v4_rtp();
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip);
    let mut ng = Ng::new(E::Le);
    ng.idb(113, 0, &[])
        .idb(0, 0, &[])
        .idb(1, 0, &[])
        .idb(101, 0, &[]);
    ng.epb(0, 1, &sll(0x0800, &ip), 0);
    ng.epb(1, 2, &null, 0);
    ng.epb(2, 3, &ether(ETHERTYPE_IPV4, &[(0x8100, 9)], &ip), 0);
    ng.epb(3, 4, &ip, 0);
    ng.epb(0, 5, &sll(0x0806, &[0; 28]), 0);
    let mut r = reader(ng.bytes()).expect("open");
    let mut seen = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.expect("ok");
        let outcome = strip_link(p.link, p.data)
            .and_then(|(kind, bytes)| parse_frame(kind, bytes))
            .and_then(|d| Ok((d.dst.port(), d.vlan_outer, classify(d.payload)?)));
        match outcome {
            Ok((port, vlan, Media::Rtp(h))) => {
                assert_eq!((port, h.payload_type, h.payload), (20002, 18, &b"g729"[..]));
                seen.push(Ok(vlan));
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => seen.push(Err(e)),
        }
    }
    assert_eq!(
        seen,
        vec![Ok(0), Ok(0), Ok(9), Ok(0), Err(DropReason::NotIp)]
    );
}

// ---------------------------------------------------------------- robustness

#[test]
fn reader_can_move_to_a_worker_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<CaptureReader>();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Garbage after a valid file header, or a valid file with bytes
    /// overwritten: never a panic, at most one error, always an end.
    #[test]
    fn corrupt_files_never_panic(
        ng in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..400),
        muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
    ) {
        let f = sample_frame();
        let mut bytes = if ng {
            let mut ng = Ng::new(E::Le);
            ng.idb(1, 0, &[(9, &[9])]).epb(0, 1, &f, 1500).spb(b"x", 1);
            ng.bytes()
        } else {
            pcap(E::Be, false, 1, &[(1, 2, &f, 1500), (3, 4, b"x", 1)])
        };
        bytes.extend_from_slice(&tail);
        for (i, b) in muts {
            let n = bytes.len();
            bytes[i % n] = b;
        }
        if let Ok(mut r) = reader(bytes) {
            let mut errors = 0;
            let mut packets = 0;
            while let Some(p) = r.next_packet() {
                match p {
                    Ok(p) => {
                        packets += 1;
                        if let Ok((kind, data)) = strip_link(p.link, p.data) {
                            let _ = parse_frame(kind, data);
                        }
                    }
                    Err(_) => errors += 1,
                }
                prop_assert!(packets < 10_000);
            }
            prop_assert!(errors <= 1);
        }
    }

    #[test]
    fn strip_link_never_panics(code in prop_oneof![0u32..2, Just(101), Just(108), Just(113), Just(276)],
                               data in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok((kind, rest)) = strip_link(LinkType::from_code(code), &data) {
            prop_assert!(rest.len() <= data.len());
            let _ = parse_frame(kind, rest);
        }
    }
}
