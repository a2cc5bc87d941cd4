//! RTP packets (RFC 3550 §5.1) with every optional header part a real sender
//! may use, and the RTCP reports that share the RTP port pair (or, with
//! rtcp-mux, the very same port) and must not be mistaken for audio.

/// One RTP packet. Every field maps one-to-one to the wire format; nothing is
/// validated beyond what the format can express, so tests can build odd but
/// legal packets (CSRC lists, header extensions, padding) on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtpPacket {
    /// Payload type, 0..=127 (0 PCMU, 8 PCMA, 96+ dynamic).
    pub payload_type: u8,
    /// The marker bit (first packet of a talkspurt for audio).
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp in clock-rate units.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Contributing sources, at most 15.
    pub csrcs: Vec<u32>,
    /// Header extension `(profile, data)`; `data` is zero-padded to a
    /// multiple of 4 bytes on the wire.
    pub extension: Option<(u16, Vec<u8>)>,
    /// Total padding bytes appended, including the final count byte;
    /// 0 means no padding (P bit clear).
    pub padding: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Fixed RTP header length without CSRCs or extension.
pub const RTP_HEADER_LEN: usize = 12;

impl RtpPacket {
    /// A packet with the given essentials and no CSRCs, extension or padding.
    pub fn new(
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            payload_type,
            sequence,
            timestamp,
            ssrc,
            payload,
            ..Self::default()
        }
    }

    /// The wire bytes.
    ///
    /// # Panics
    /// If `payload_type > 127` or there are more than 15 CSRCs: the format
    /// cannot express either, so the test is wrong.
    pub fn to_bytes(&self) -> Vec<u8> {
        assert!(self.payload_type <= 127, "RTP payload type exceeds 7 bits");
        assert!(self.csrcs.len() <= 15, "more than 15 CSRCs");
        let mut b = Vec::with_capacity(
            RTP_HEADER_LEN
                + 4 * self.csrcs.len()
                + self.payload.len()
                + usize::from(self.padding)
                + 8,
        );
        let mut first = 0x80 | self.csrcs.len() as u8;
        if self.padding > 0 {
            first |= 0x20;
        }
        if self.extension.is_some() {
            first |= 0x10;
        }
        b.push(first);
        b.push(self.payload_type | if self.marker { 0x80 } else { 0 });
        b.extend_from_slice(&self.sequence.to_be_bytes());
        b.extend_from_slice(&self.timestamp.to_be_bytes());
        b.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrcs {
            b.extend_from_slice(&c.to_be_bytes());
        }
        if let Some((profile, data)) = &self.extension {
            let words = data.len().div_ceil(4);
            b.extend_from_slice(&profile.to_be_bytes());
            b.extend_from_slice(
                &u16::try_from(words)
                    .expect("extension too long")
                    .to_be_bytes(),
            );
            b.extend_from_slice(data);
            b.resize(b.len() + (words * 4 - data.len()), 0);
        }
        b.extend_from_slice(&self.payload);
        if self.padding > 0 {
            b.resize(b.len() + usize::from(self.padding) - 1, 0);
            b.push(self.padding);
        }
        b
    }

    /// Decode `bytes` as an RTP packet; `None` if it is not version 2 or its
    /// lengths are inconsistent. The extension data comes back padded to a
    /// multiple of 4 (the wire cannot say how much was padding). Meant for
    /// tests that inspect what mediafork forwards or writes, not as a model
    /// for the data plane's parser.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < RTP_HEADER_LEN || bytes[0] >> 6 != 2 {
            return None;
        }
        let cc = usize::from(bytes[0] & 0x0F);
        let mut pos = RTP_HEADER_LEN;
        let mut csrcs = Vec::with_capacity(cc);
        for _ in 0..cc {
            csrcs.push(u32::from_be_bytes(
                bytes.get(pos..pos + 4)?.try_into().ok()?,
            ));
            pos += 4;
        }
        let extension = if bytes[0] & 0x10 != 0 {
            let hdr = bytes.get(pos..pos + 4)?;
            let profile = u16::from_be_bytes([hdr[0], hdr[1]]);
            let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]])) * 4;
            let data = bytes.get(pos + 4..pos + 4 + len)?.to_vec();
            pos += 4 + len;
            Some((profile, data))
        } else {
            None
        };
        let mut end = bytes.len();
        let padding = if bytes[0] & 0x20 != 0 {
            let p = *bytes.last()?;
            if p == 0 || usize::from(p) > end - pos {
                return None;
            }
            end -= usize::from(p);
            p
        } else {
            0
        };
        Some(Self {
            payload_type: bytes[1] & 0x7F,
            marker: bytes[1] & 0x80 != 0,
            sequence: u16::from_be_bytes([bytes[2], bytes[3]]),
            timestamp: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            ssrc: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
            csrcs,
            extension,
            padding,
            payload: bytes.get(pos..end)?.to_vec(),
        })
    }
}

/// RTCP packet type of a sender report.
pub const RTCP_SR: u8 = 200;
/// RTCP packet type of a receiver report.
pub const RTCP_RR: u8 = 201;
/// RTCP packet type of source description.
pub const RTCP_SDES: u8 = 202;
/// CNAME every report carries in its SDES chunk.
pub const RTCP_CNAME: &str = "testkit@mediafork.invalid";

/// NTP timestamp in sender reports: 2024-01-01T00:00:00Z (seconds since
/// 1900), fixed so the bytes never change between runs.
const SR_NTP_SECONDS: u32 = 3_913_056_000;

fn sdes_cname(ssrc: u32) -> Vec<u8> {
    let cname = RTCP_CNAME.as_bytes();
    // chunk: SSRC, CNAME item (type 1, length, text), END item (0), then
    // zero padding to a 32-bit boundary (at least one zero byte ends the list).
    let mut chunk = Vec::new();
    chunk.extend_from_slice(&ssrc.to_be_bytes());
    chunk.push(1);
    chunk.push(cname.len() as u8);
    chunk.extend_from_slice(cname);
    chunk.push(0);
    while chunk.len() % 4 != 0 {
        chunk.push(0);
    }
    let mut p = vec![0x81, RTCP_SDES];
    p.extend_from_slice(&((chunk.len() / 4) as u16).to_be_bytes());
    p.extend_from_slice(&chunk);
    p
}

/// A compound RTCP packet: a sender report from `ssrc` (no report blocks,
/// fixed NTP/RTP timestamps and counts) followed by an SDES CNAME chunk, as
/// RFC 3550 §6.1 requires every compound packet to carry. Its second byte
/// (200) is what distinguishes it from RTP on a muxed port (RFC 5761 §4).
pub fn rtcp_sender_report(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, RTCP_SR, 0x00, 0x06];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&SR_NTP_SECONDS.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes()); // NTP fraction
    p.extend_from_slice(&160u32.to_be_bytes()); // RTP timestamp
    p.extend_from_slice(&50u32.to_be_bytes()); // sender's packet count
    p.extend_from_slice(&8000u32.to_be_bytes()); // sender's octet count
    p.extend_from_slice(&sdes_cname(ssrc));
    p
}

/// A compound RTCP packet: an empty receiver report from `ssrc` (RC = 0,
/// legal when nothing has been received) followed by an SDES CNAME chunk.
pub fn rtcp_receiver_report(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, RTCP_RR, 0x00, 0x01];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&sdes_cname(ssrc));
    p
}

/// An RFC 4733 telephone-event payload (DTMF digit `event` 0..=15):
/// event, E bit and volume, 16-bit duration. Recorders commonly drop these
/// from the audio track, so tests need them in a stream.
pub fn telephone_event(event: u8, end: bool, volume: u8, duration: u16) -> Vec<u8> {
    let d = duration.to_be_bytes();
    vec![
        event,
        (if end { 0x80 } else { 0 }) | (volume & 0x3F),
        d[0],
        d[1],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_header_bytes() {
        let p = RtpPacket {
            marker: true,
            ..RtpPacket::new(8, 0xFFFF, 0x0102_0304, 0xDEAD_BEEF, vec![0x55, 0x66])
        };
        assert_eq!(
            p.to_bytes(),
            vec![0x80, 0x88, 0xFF, 0xFF, 1, 2, 3, 4, 0xDE, 0xAD, 0xBE, 0xEF, 0x55, 0x66]
        );
    }

    #[test]
    fn csrc_extension_padding_round_trip() {
        let p = RtpPacket {
            payload_type: 96,
            marker: false,
            sequence: 7,
            timestamp: 99,
            ssrc: 1,
            csrcs: vec![0x11, 0x22],
            extension: Some((0xBEDE, vec![0x10, 0xAB, 0x00, 0x00])),
            padding: 4,
            payload: vec![1, 2, 3],
        };
        let b = p.to_bytes();
        assert_eq!(b[0], 0x80 | 0x20 | 0x10 | 2);
        assert_eq!(b.len(), 12 + 8 + 4 + 4 + 3 + 4);
        assert_eq!(&b[b.len() - 4..], &[0, 0, 0, 4]);
        assert_eq!(RtpPacket::parse(&b), Some(p));
    }

    #[test]
    fn extension_data_is_padded_to_words() {
        let p = RtpPacket {
            extension: Some((0x1000, vec![1, 2, 3, 4, 5])),
            ..RtpPacket::new(0, 0, 0, 0, vec![])
        };
        let b = p.to_bytes();
        assert_eq!(&b[12..16], &[0x10, 0x00, 0x00, 0x02]);
        assert_eq!(&b[16..24], &[1, 2, 3, 4, 5, 0, 0, 0]);
    }

    #[test]
    fn rtcp_lengths_are_consistent() {
        for pkt in [rtcp_sender_report(5), rtcp_receiver_report(5)] {
            let mut pos = 0;
            let mut n = 0;
            while pos < pkt.len() {
                assert_eq!(pkt[pos] >> 6, 2);
                assert!((200..=204).contains(&pkt[pos + 1]));
                let words = usize::from(u16::from_be_bytes([pkt[pos + 2], pkt[pos + 3]]));
                pos += (words + 1) * 4;
                n += 1;
            }
            assert_eq!(pos, pkt.len());
            assert_eq!(n, 2);
        }
        assert_eq!(rtcp_sender_report(5)[1], RTCP_SR);
        assert_eq!(rtcp_receiver_report(5)[1], RTCP_RR);
    }

    #[test]
    fn telephone_event_layout() {
        // digit 5, end bit, volume 10, duration 800 (RFC 4733 §2.3)
        assert_eq!(telephone_event(5, true, 10, 800), vec![5, 0x8A, 0x03, 0x20]);
        assert_eq!(
            telephone_event(11, false, 0x7F, 0)[1],
            0x3F,
            "volume is 6 bits"
        );
    }

    #[test]
    fn parse_rejects_garbage() {
        assert_eq!(RtpPacket::parse(&[0x80; 11]), None);
        assert_eq!(RtpPacket::parse(&[0x40; 12]), None);
        // padding count larger than the packet
        let mut b = RtpPacket::new(0, 0, 0, 0, vec![]).to_bytes();
        b[0] |= 0x20;
        b.push(9);
        assert_eq!(RtpPacket::parse(&b), None);
    }
}
