//! SRTP calls placed by hand: an INVITE whose m-lines are `RTP/SAVP` with
//! SDES keys (`a=crypto`), as Acme Packet and CUCM fork them to recorders,
//! and SRTP streams protected by the testkit's [`SrtpSender`].

use std::net::{SocketAddr, UdpSocket};

use mediafork_testkit::payload::pattern;
use mediafork_testkit::rtp::RtpPacket;
use mediafork_testkit::srtp::{SrtpSender, Suite};

use crate::admin::RawCall;
use crate::server::{SipClient, SipText, LOCALHOST};

/// One SRTP stream to the recorder: the plain RTP state (sequence,
/// timestamp, pattern index) and the sender's crypto context.
pub struct SrtpStream {
    pub dst: SocketAddr,
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    /// Pattern index of the next packet (`payload::pattern(index, 160)`).
    pub index: u32,
    pub sender: SrtpSender,
}

impl SrtpStream {
    /// The next 20 ms PCMU packet, protected; advances the stream.
    pub fn next_packet(&mut self) -> Vec<u8> {
        let p = RtpPacket::new(
            0,
            self.seq,
            self.timestamp,
            self.ssrc,
            pattern(self.index, 160),
        );
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        self.index += 1;
        self.sender.protect(&p)
    }
}

/// A call placed with SRTP m-lines, ACKed; ended with [`SrtpCall::bye`].
pub struct SrtpCall {
    pub client: SipClient,
    pub call_id: String,
    pub invite: SipText,
    pub ok: SipText,
    /// The recorder's port for each m-line.
    pub ports: Vec<u16>,
    /// The `a=crypto` values of the answer, in order.
    pub answer_crypto: Vec<String>,
    /// One stream per m-line, keyed as offered.
    pub streams: Vec<SrtpStream>,
    /// Where the media is sent from.
    pub media: UdpSocket,
}

/// An offer with one `RTP/SAVP` PCMU m-line per sender, labelled 1, 2, ...,
/// each offering that sender's key under tag 1.
pub fn srtp_offer(client: &SipClient, senders: &[&SrtpSender]) -> String {
    let mut sdp =
        format!("v=0\r\no=SRC 1 1 IN IP4 {LOCALHOST}\r\ns=-\r\nc=IN IP4 {LOCALHOST}\r\nt=0 0\r\n");
    for (i, s) in senders.iter().enumerate() {
        sdp.push_str(&format!(
            "m=audio {} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:{}\r\na=label:{}\r\na=sendonly\r\n",
            client.local.port() + 2 + 2 * i as u16,
            s.crypto_attribute(1),
            i + 1
        ));
    }
    sdp
}

impl SrtpCall {
    /// Send an INVITE with the given SDP body; its final response.
    pub fn try_offer(server: SocketAddr, call_id: &str, sdp: &str) -> SipText {
        let client = SipClient::new(server);
        let text = client.request(
            "INVITE",
            call_id,
            &format!("z9hG4bK-inv-{call_id}"),
            &[],
            Some(("application/sdp", sdp)),
        );
        client.transact(&text)
    }

    /// Place a call with one SRTP stream per suite (keys from `seed`).
    pub fn place(server: SocketAddr, call_id: &str, suites: &[Suite], seed: u64) -> SrtpCall {
        let client = SipClient::new(server);
        let senders: Vec<SrtpSender> = suites
            .iter()
            .enumerate()
            .map(|(i, s)| SrtpSender::new(*s, seed + i as u64))
            .collect();
        let sdp = srtp_offer(&client, &senders.iter().collect::<Vec<_>>());
        let RawCall {
            client,
            call_id: _,
            invite,
            ok,
            ports,
        } = RawCall::place_sdp(client, call_id, &sdp, &[]);
        let answer_crypto = ok
            .body
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a=crypto:").map(str::to_string))
            .collect();
        let streams = senders
            .into_iter()
            .zip(&ports)
            .enumerate()
            .map(|(i, (sender, port))| {
                let ssrc = 0x5E5E_0000 + (seed as u32) * 16 + i as u32;
                SrtpStream {
                    dst: SocketAddr::new(LOCALHOST.parse().unwrap(), *port),
                    ssrc,
                    seq: (ssrc & 0x3fff) as u16,
                    timestamp: ssrc / 3,
                    index: 0,
                    sender,
                }
            })
            .collect();
        SrtpCall {
            client,
            call_id: call_id.to_string(),
            invite,
            ok,
            ports,
            answer_crypto,
            streams,
            media: UdpSocket::bind((LOCALHOST, 0)).expect("bind SRTP sender"),
        }
    }

    /// Send raw bytes to stream `i`'s port.
    pub fn send(&self, i: usize, bytes: &[u8]) {
        self.media
            .send_to(bytes, self.streams[i].dst)
            .expect("send SRTP");
    }

    /// End the call; returns the BYE's final response code.
    pub fn bye(&self) -> Option<u16> {
        crate::admin::bye(&self.client, &self.call_id, &self.invite, &self.ok)
    }
}
