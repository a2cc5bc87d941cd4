//! The recording server's call logic (the SIP "transaction user"): turns
//! INVITE, re-INVITE, UPDATE, BYE and OPTIONS into recordings and answers.
//! It knows nothing of sockets or retransmissions: the driver feeds it
//! requests that the transaction layer passed up, with the time, and sends
//! what it returns. Deterministic and testable without I/O.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediafork_dataplane::demux::TrackRef;
use mediafork_dataplane::engine::{Binding, CallHandle, Engine, TrackSetup};
use mediafork_dataplane::recording::meta::now_ns;
use mediafork_dataplane::source_lock::SourcePolicy;

mod calls;

pub use calls::{CaptureState, PendingEvent};

use calls::{CallInfo, EventQueue};

use super::answer::{any_recordable, assess, build_answer, Ports, Verdict};
use super::log_window::LogWindow;
use crate::call_info::{call_setup, participants};
use crate::config::SourcePolicyConfig;
use crate::replay::metadata_file_name;
use crate::sdp::{Direction, Sdp};
use crate::sip::session_timer::{negotiate, Negotiated};
use crate::sip::{Method, SipMessage};
use crate::siprec::{classify_invite, metadata_in, ClassifyError, InviteKind};

/// Allocates media ports (the control plane's pool with its quarantine).
pub trait PortAllocator: Send {
    /// A pair (even RTP, odd RTCP) or, with `mux`, a single port.
    fn allocate(&mut self, now: Instant, mux: bool) -> Option<Ports>;
    /// Give ports back; they stay in quarantine before reuse.
    fn release(&mut self, now: Instant, ports: Ports);
    /// Ports free for new calls.
    fn free(&self) -> usize;
    /// Totals for `status` and metrics.
    fn usage(&self) -> PortUsage;
    /// End the quarantines that are over at `now`, so an idle server's
    /// counts do not wait for the next call to move.
    fn reclaim(&mut self, now: Instant);
}

/// How the media port range is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortUsage {
    pub total: usize,
    pub in_use: usize,
    pub quarantined: usize,
    pub free: usize,
    /// Free RTP/RTCP pairs (a call without rtcp-mux needs two per stream).
    pub free_pairs: usize,
}

/// Opens and closes whatever receives media on a local address (sockets
/// for the socket backend; nothing for DPDK, where the NIC sees all).
pub trait MediaReceivers: Send {
    fn open(&mut self, addr: SocketAddr) -> std::io::Result<()>;
    fn close(&mut self, addr: SocketAddr);
}

/// Settings of the recorder.
#[derive(Clone, Debug)]
pub struct RecorderConfig {
    pub media_addr: IpAddr,
    pub max_calls: usize,
    /// Most recordings started by one SIP source address at once
    /// (`limits.max_calls_per_source`); 0: no limit but `max_calls`.
    pub max_calls_per_source: usize,
    /// Write `call.pcap` for new calls.
    pub pcap: bool,
    /// Answer OPTIONS 200 even when draining or full (`sip.options_response
    /// = "always_ok"`), for SBCs that take a 503 to OPTIONS as "down".
    pub options_always_ok: bool,
    pub user_agent: String,
    /// Session interval we accept at least (RFC 4028 Min-SE).
    pub min_se: Duration,
    /// Interval we ask for when the SRC offers none but supports timers.
    pub session_expires: Duration,
    /// Our Contact URI host:port.
    pub contact: String,
    /// `recordings.mode = "on_demand"`: calls start stopped and nothing is
    /// stored until a `start` control.
    pub on_demand: bool,
    /// `media.source_policy`.
    pub source_policy: SourcePolicyConfig,
    /// `limits.no_media_timeout`: end a dialog (BYE) whose media stopped
    /// this long ago; `None`: never.
    pub no_media_timeout: Option<Duration>,
}

/// The SRC's media address for m-line `i`: its `c=`, else the session's.
fn sdp_address(offer: &Sdp, i: usize) -> Option<IpAddr> {
    offer
        .media
        .get(i)
        .and_then(|m| m.effective_connection(offer))
        .map(|c| c.addr)
}

/// A SIP request the recorder sends on its own (BYE on session expiry).
#[derive(Clone, Debug)]
pub struct Outbound {
    pub to: SocketAddr,
    pub request: SipMessage,
    /// Transport the dialog came in on.
    pub reliable_conn: Option<u64>,
}

/// One recorded m-line.
#[derive(Clone, Debug)]
struct StreamState {
    track: TrackRef,
    ports: Ports,
    /// Payload types last answered (a change updates the track).
    payload_types: Vec<(u8, mediafork_dataplane::codec::Codec)>,
    label: Option<String>,
    /// The SDES master key the stream is decrypted with (SRTP).
    srtp: Option<mediafork_dataplane::srtp::MasterKey>,
    /// The SRC's media address for the m-line (`c=`), which a re-INVITE
    /// may move (the source lock follows).
    sdp_addr: Option<IpAddr>,
}

/// A SIP dialog feeding a recording.
struct Dialog {
    recording: String,
    local_tag: String,
    remote_cseq: u32,
    /// Per offered m-line index.
    streams: Vec<Option<StreamState>>,
    /// Last answer's m-lines as (port or 0): a re-INVITE keeps them stable.
    session_id: u64,
    session_version: u64,
    peer: SocketAddr,
    conn: Option<u64>,
    remote_target: String,
    from_header: String,
    to_header: String,
    /// Session timer: interval and when the last refresh came.
    session_interval: Option<Negotiated>,
    /// Transport of the dialog (`UDP`, `TCP`, `TLS`), for our own requests' Via.
    via_transport: String,
    refreshed_at: Instant,
    /// We are the refresher (RFC 4028 §9) and the SRC allows UPDATE: we
    /// refresh at half the interval.
    we_refresh: bool,
    refresh_in_flight: bool,
    local_cseq: u32,
    cucm_near_end: Option<bool>,
    media: MediaWatch,
}

/// Whether a dialog's media still arrives, for `limits.no_media_timeout`:
/// the writer's record counts of its tracks, read every quarter of the
/// timeout, so a dialog ends between one and 1.25 timeouts after its last
/// packet.
struct MediaWatch {
    /// Sum of the tracks' media record counts at the last reading.
    count: u64,
    /// When the count last changed (or the clock last restarted).
    since: Instant,
    next_check: Instant,
    /// The SRC said it sends nothing (every recorded m-line `inactive` or
    /// `recvonly`: on hold): no media is expected, the clock stands still.
    on_hold: bool,
}

impl MediaWatch {
    fn new(now: Instant) -> Self {
        MediaWatch {
            count: 0,
            since: now,
            next_check: now,
            on_hold: false,
        }
    }

    /// An offer (INVITE or re-INVITE) restarts the clock.
    fn offer(&mut self, now: Instant, on_hold: bool) {
        self.since = now;
        self.next_check = now;
        self.on_hold = on_hold;
    }

    /// Whether the dialog has gone `timeout` without media, given its
    /// tracks' current `count`; schedules the next reading otherwise.
    fn expired(&mut self, now: Instant, count: u64, timeout: Duration) -> bool {
        if count != self.count || self.on_hold {
            self.count = count;
            self.since = now;
        } else if now >= self.since + timeout {
            return true;
        }
        self.next_check = (now + timeout / 4).min(self.since + timeout);
        false
    }
}

/// A request we sent (BYE on expiry, UPDATE to refresh the session),
/// retransmitted over UDP until answered (RFC 3261 §17.1.2.2: T1 doubling
/// to T2, given up after 64·T1).
struct PendingRequest {
    out: Outbound,
    call_id: String,
    cseq: u32,
    method: Method,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

struct Recording {
    handle: CallHandle,
    legs: usize,
    metadata_versions: usize,
    info: CallInfo,
}

/// Why a recording ended, written to `meta.json` as `extensions.ended_by`.
fn set_ended_by(engine: &Engine, handle: &CallHandle, why: &'static str) {
    engine.update_call(handle, move |m| {
        m.extensions
            .insert("ended_by".into(), serde_json::Value::String(why.into()));
    });
}

/// The recorder.
pub struct Recorder {
    engine: Arc<Engine>,
    config: RecorderConfig,
    ports: Box<dyn PortAllocator>,
    receivers: Box<dyn MediaReceivers>,
    dialogs: HashMap<String, Dialog>,
    recordings: HashMap<String, Recording>,
    draining: bool,
    pending: Vec<PendingRequest>,
    next_session: u64,
    counters: RecorderCounters,
    events: EventQueue,
    /// The recordings volume is critically full: refuse new calls.
    storage_critical: bool,
    /// Refusals over `max_calls_per_source`, logged once per source per
    /// window.
    refusal_log: LogWindow,
}

/// What the recorder counted, for metrics and `status`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct RecorderCounters {
    pub calls_started: u64,
    pub calls_ended: u64,
    pub calls_rejected: u64,
    pub session_expired: u64,
}

/// Option tags we support (RFC 3261 §19.2).
pub const SUPPORTED: &str = "timer, siprec, 100rel";
/// Methods we accept.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, PRACK";
/// Bodies we accept.
pub const ACCEPT: &str =
    "application/sdp, multipart/mixed, application/rs-metadata+xml, application/rs-metadata";

impl Recorder {
    pub fn new(
        engine: Arc<Engine>,
        config: RecorderConfig,
        ports: Box<dyn PortAllocator>,
        receivers: Box<dyn MediaReceivers>,
    ) -> Self {
        let seed = now_ns();
        Recorder {
            engine,
            config,
            ports,
            receivers,
            dialogs: HashMap::new(),
            recordings: HashMap::new(),
            draining: false,
            pending: Vec::new(),
            next_session: seed / 1000,
            counters: RecorderCounters::default(),
            events: EventQueue::default(),
            storage_critical: false,
            refusal_log: LogWindow::default(),
        }
    }

    /// Calls (recordings) in progress.
    pub fn active_recordings(&self) -> usize {
        self.recordings.len()
    }

    /// SIP dialogs in progress.
    pub fn active_dialogs(&self) -> usize {
        self.dialogs.len()
    }

    pub fn counters(&self) -> RecorderCounters {
        self.counters
    }

    /// Refuse new calls (503) and answer OPTIONS with 503, so SBCs fail
    /// over, while calls in progress go on.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// The storage monitor's verdict: at critical, new calls get 503 and
    /// OPTIONS 503 (the SBC fails over); calls in progress go on.
    pub fn set_storage_critical(&mut self, critical: bool) {
        self.storage_critical = critical;
    }

    pub fn is_storage_critical(&self) -> bool {
        self.storage_critical
    }

    /// Why new calls are refused right now (empty when they are not).
    pub fn refusing_because(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.draining {
            v.push("draining".to_string());
        }
        if self.storage_critical {
            v.push("storage_critical".to_string());
        }
        v
    }

    /// Media ports in use, free and in quarantine.
    pub fn port_usage(&self) -> PortUsage {
        self.ports.usage()
    }

    /// Tracks being received.
    pub fn active_tracks(&self) -> usize {
        self.dialogs
            .values()
            .map(|d| d.streams.iter().flatten().count())
            .sum()
    }

    /// Apply reloaded limits (SIGHUP): new calls see them, calls in
    /// progress are untouched.
    pub fn reload(
        &mut self,
        max_calls: usize,
        max_calls_per_source: usize,
        pcap: bool,
        no_media_timeout: Option<Duration>,
    ) {
        self.config.max_calls = max_calls;
        self.config.max_calls_per_source = max_calls_per_source;
        self.config.pcap = pcap;
        self.config.no_media_timeout = no_media_timeout;
    }

    /// Recordings in progress that `source` started (counted from the
    /// INVITE that opened them, before its ACK).
    pub fn recordings_from(&self, source: IpAddr) -> usize {
        let source = source.to_canonical();
        self.recordings
            .values()
            .filter(|r| r.info.peer.ip().to_canonical() == source)
            .count()
    }

    /// `limits.max_calls_per_source`: a new recording from `peer` when it
    /// already has that many is refused with a 503 (logged once per source
    /// per window); other sources are not affected.
    fn over_source_limit(
        &mut self,
        now: Instant,
        req: &SipMessage,
        peer: SocketAddr,
    ) -> Option<SipMessage> {
        let limit = self.config.max_calls_per_source;
        if limit == 0 {
            return None;
        }
        let active = self.recordings_from(peer.ip());
        if active < limit {
            return None;
        }
        if let Some(suppressed) = self.refusal_log.check("source_limit", peer.ip(), now) {
            tracing::warn!(
                source = %peer.ip(),
                active,
                limit,
                suppressed,
                "new call refused with 503: this source has limits.max_calls_per_source recordings in progress (logged once per source per 10 s)"
            );
        }
        Some(self.unavailable(
            req,
            "Service Unavailable (too many calls from this source)",
            "source_limit",
        ))
    }

    fn respond(
        &self,
        req: &SipMessage,
        code: u16,
        reason: &str,
        local_tag: Option<&str>,
    ) -> SipMessage {
        let mut r = SipMessage::response(req, code, reason);
        if let Some(tag) = local_tag {
            r.set_to_tag(tag);
        }
        r.set_header("Server", self.config.user_agent.clone());
        r
    }

    fn unavailable(&mut self, req: &SipMessage, why: &str, reason: &str) -> SipMessage {
        self.counters.calls_rejected += 1;
        crate::metrics::call_failed(invite_source(req), reason);
        let mut r = self.respond(req, 503, why, None);
        r.set_header("Retry-After", "30");
        r
    }

    /// A request passed up by the transaction layer. Returns the final
    /// response to send (None for ACK).
    pub fn on_request(
        &mut self,
        now: Instant,
        req: &SipMessage,
        peer: SocketAddr,
        conn: Option<u64>,
    ) -> Option<SipMessage> {
        let method = req.method()?.clone();
        Some(match method {
            Method::Invite => self.on_invite(now, req, peer, conn),
            Method::Ack => return None,
            Method::Bye => self.on_bye(now, req),
            Method::Options => self.on_options(req),
            Method::Update => self.on_update(now, req),
            Method::Info | Method::Prack => self.in_dialog_ok(now, req),
            Method::Cancel => self.respond(req, 200, "OK", None),
            _ => {
                let mut r = self.respond(req, 405, "Method Not Allowed", None);
                r.set_header("Allow", ALLOW);
                r
            }
        })
    }

    fn on_options(&mut self, req: &SipMessage) -> SipMessage {
        let (code, reason) = if self.config.options_always_ok {
            (200, "OK")
        } else if self.draining {
            (503, "Service Unavailable (draining)")
        } else if self.storage_critical {
            (503, "Service Unavailable (recordings disk full)")
        } else if self.recordings.len() >= self.config.max_calls || self.ports.free() < 2 {
            (503, "Service Unavailable (at capacity)")
        } else {
            (200, "OK")
        };
        let mut r = self.respond(req, code, reason, None);
        r.set_header("Allow", ALLOW);
        r.set_header("Accept", ACCEPT);
        r.set_header("Supported", SUPPORTED);
        if code == 503 {
            r.set_header("Retry-After", "30");
        }
        r
    }

    fn unsupported_requires(req: &SipMessage) -> Vec<String> {
        req.require()
            .into_iter()
            .filter(|t| {
                !["siprec", "timer", "100rel"]
                    .iter()
                    .any(|s| t.eq_ignore_ascii_case(s))
            })
            .collect()
    }

    fn on_invite(
        &mut self,
        now: Instant,
        req: &SipMessage,
        peer: SocketAddr,
        conn: Option<u64>,
    ) -> SipMessage {
        let unsupported = Self::unsupported_requires(req);
        if !unsupported.is_empty() {
            let mut r = self.respond(req, 420, "Bad Extension", None);
            r.set_header("Unsupported", unsupported.join(", "));
            return r;
        }
        let Ok(call_id) = req.call_id().map(str::to_string) else {
            return self.respond(req, 400, "Missing Call-ID", None);
        };
        let to_tag = req.to().ok().and_then(|t| t.tag().map(str::to_string));
        if let Some(tag) = to_tag {
            return self.on_reinvite(now, req, &call_id, &tag);
        }
        if self.dialogs.contains_key(&call_id) {
            // A second initial INVITE with the same Call-ID (forked or
            // looping): refuse rather than mix two dialogs.
            return self.respond(req, 482, "Loop Detected", None);
        }
        if self.draining {
            return self.unavailable(req, "Service Unavailable (draining)", "draining");
        }
        if self.storage_critical {
            return self.unavailable(
                req,
                "Service Unavailable (recordings disk full)",
                "storage_critical",
            );
        }
        if self.recordings.len() >= self.config.max_calls {
            return self.unavailable(req, "Service Unavailable (at capacity)", "at_capacity");
        }
        let kind = match classify_invite(req) {
            Ok(k) => k,
            Err(e) => return self.classify_error(req, &e),
        };
        // Which recording: CUCM's two legs share one by x-refci.
        let (rec_key, near) = match &kind {
            InviteKind::Cucm { leg, .. } => {
                (format!("refci:{}", leg.refci), Some(leg.is_near_end()))
            }
            _ => (format!("call:{call_id}"), None),
        };
        let new_recording = !self.recordings.contains_key(&rec_key);
        if new_recording {
            if let Some(refused) = self.over_source_limit(now, req, peer) {
                return refused;
            }
        }
        let offer = kind.sdp().clone();
        let verdicts = assess(&offer);
        if !any_recordable(&verdicts) {
            self.counters.calls_rejected += 1;
            crate::metrics::call_failed(kind_name(&kind), "no_recordable_stream");
            let why = verdicts
                .iter()
                .find_map(|v| match v {
                    Verdict::Refuse(w) => Some(*w),
                    _ => None,
                })
                .unwrap_or("no recordable stream");
            let mut r = self.respond(req, 488, &format!("Not Acceptable Here: {why}"), None);
            r.set_header("Accept", ACCEPT);
            return r;
        }
        let needed: usize = verdicts
            .iter()
            .map(|v| match v {
                Verdict::Record { rtcp_mux: true, .. } => 1,
                Verdict::Record { .. } => 2,
                Verdict::Refuse(_) => 0,
            })
            .sum();
        if self.ports.free() < needed {
            return self.unavailable(
                req,
                "Service Unavailable (out of media ports)",
                "out_of_ports",
            );
        }
        let interval = match self.session_interval(req) {
            Ok(i) => i,
            Err(r) => return r,
        };
        if new_recording {
            let started = now_ns();
            let mut setup = call_setup(req, &kind, started);
            setup.pcap = Some(self.config.pcap);
            setup.start_stopped = self.config.on_demand;
            let info = CallInfo::new(
                kind_name(&kind),
                setup.ids.clone(),
                started,
                peer,
                self.config.on_demand,
            );
            let handle = match self.engine.open_call(setup) {
                Ok(h) => h,
                Err(e) => {
                    return self.unavailable(req, &format!("Service Unavailable ({e})"), "engine")
                }
            };
            tracing::info!(recording_id = %handle.recording_id, call_id = %call_id, source = kind_name(&kind), "recording started");
            self.recordings.insert(
                rec_key.clone(),
                Recording {
                    handle,
                    legs: 0,
                    metadata_versions: 0,
                    info,
                },
            );
            self.counters.calls_started += 1;
            crate::metrics::call_started(kind_name(&kind));
            let mut data = serde_json::Map::new();
            data.insert("source".into(), kind_name(&kind).into());
            data.insert("peer".into(), peer.to_string().into());
            if let Some(r) = self.recordings.get(&rec_key) {
                data.insert("dir".into(), r.handle.dir.display().to_string().into());
                if let Some(x) = &r.info.ids.x_refci {
                    data.insert("x_refci".into(), x.clone().into());
                }
                if let Some(g) = &r.info.ids.cisco_guid {
                    data.insert("cisco_guid".into(), g.clone().into());
                }
                if self.config.on_demand {
                    data.insert("state".into(), "stopped".into());
                }
            }
            self.emit("call_started", started, &rec_key, data);
        }
        let local_tag = new_tag();
        self.next_session += 1;
        let mut dialog = Dialog {
            recording: rec_key.clone(),
            local_tag: local_tag.clone(),
            remote_cseq: req.cseq().map(|(n, _)| n).unwrap_or(0),
            streams: Vec::new(),
            session_id: self.next_session,
            session_version: 1,
            peer,
            conn,
            remote_target: req
                .contacts()
                .ok()
                .and_then(|c| c.first().map(|n| n.uri.clone()))
                .unwrap_or_else(|| req.request_uri().unwrap_or("").to_string()),
            from_header: req.header("From").unwrap_or("").to_string(),
            to_header: req.header("To").unwrap_or("").to_string(),
            session_interval: interval,
            via_transport: via_transport(req),
            refreshed_at: now,
            we_refresh: interval.is_some_and(|n| n.we_refresh()) && allows_update(req),
            refresh_in_flight: false,
            local_cseq: 1,
            cucm_near_end: near,
            media: MediaWatch::new(now),
        };
        let ports = self.apply_offer(now, &mut dialog, &offer, &verdicts);
        let short = verdicts
            .iter()
            .zip(&ports)
            .any(|(v, p)| matches!(v, Verdict::Record { .. }) && p.is_none());
        if short {
            // A stream we could record got no ports: a partial recording
            // would lose a direction, so refuse and let the SBC fail over.
            for stream in dialog.streams.drain(..).flatten() {
                if let Some(rec) = self.recordings.get(&rec_key) {
                    let _ = self.engine.unbind_track(&rec.handle, stream.track);
                }
                self.close_ports(now, stream.ports);
            }
            if new_recording {
                if let Some(rec) = self.recordings.remove(&rec_key) {
                    set_ended_by(&self.engine, &rec.handle, "rejected");
                    let _ = self.engine.end_call(&rec.handle, now_ns());
                }
            }
            return self.unavailable(
                req,
                "Service Unavailable (out of media ports)",
                "out_of_ports",
            );
        }
        if let Some(rec) = self.recordings.get_mut(&rec_key) {
            rec.legs += 1;
            if let InviteKind::Siprec {
                metadata: Some((raw, md)),
                ..
            } = &kind
            {
                rec.metadata_versions += 1;
                self.engine.write_call_file(
                    &rec.handle,
                    &metadata_file_name(rec.metadata_versions),
                    raw.clone(),
                );
                if rec.metadata_versions > 1 {
                    let parts = participants(md);
                    self.engine
                        .update_call(&rec.handle, move |m| m.participants = parts);
                }
            }
        }
        let r = self.answer(req, &dialog, &offer, &verdicts, &ports);
        self.dialogs.insert(call_id, dialog);
        r
    }

    /// The 200 OK to an (re-)INVITE: our SDP answer and, when the dialog
    /// runs a session timer, its interval.
    fn answer(
        &self,
        req: &SipMessage,
        dialog: &Dialog,
        offer: &Sdp,
        verdicts: &[Verdict],
        ports: &[Option<Ports>],
    ) -> SipMessage {
        let answer = build_answer(
            offer,
            verdicts,
            ports,
            self.config.media_addr,
            dialog.session_id,
            dialog.session_version,
        );
        let r = self.ok_with_answer(req, &dialog.local_tag, &answer);
        with_session_timer(r, dialog.session_interval)
    }

    fn ok_with_answer(&self, req: &SipMessage, local_tag: &str, answer: &Sdp) -> SipMessage {
        let mut r = self.respond(req, 200, "OK", Some(local_tag));
        r.set_header(
            "Contact",
            format!("<sip:mediafork@{}>;+sip.srs", self.config.contact),
        );
        r.set_header("Allow", ALLOW);
        r.set_header("Supported", SUPPORTED);
        r.set_body("application/sdp", answer.to_string().into_bytes());
        r
    }

    fn classify_error(&mut self, req: &SipMessage, e: &ClassifyError) -> SipMessage {
        self.counters.calls_rejected += 1;
        let code = e.status_code();
        crate::metrics::call_failed(
            invite_source(req),
            match code {
                415 => "unsupported_media_type",
                488 => "not_acceptable",
                _ => "bad_request",
            },
        );
        let reason = match code {
            415 => "Unsupported Media Type".to_string(),
            488 => format!("Not Acceptable Here: {e}"),
            _ => format!("Bad Request: {e}"),
        };
        let mut r = self.respond(req, code, &sanitize_reason(&reason), None);
        if code == 415 || code == 488 {
            r.set_header("Accept", ACCEPT);
        }
        r
    }

    /// The source lock of a stream whose SDP names `sdp_addr`.
    fn source_policy(&self, sdp_addr: Option<IpAddr>) -> SourcePolicy {
        match self.config.source_policy {
            SourcePolicyConfig::Any => SourcePolicy::Any,
            SourcePolicyConfig::First => SourcePolicy::First,
            SourcePolicyConfig::Sdp => sdp_addr.map_or(SourcePolicy::First, SourcePolicy::Expect),
        }
    }

    /// RFC 4028 negotiation (§9): the timer for this dialog, or a 422 with
    /// our Min-SE when the SRC asked for less.
    fn session_interval(&self, req: &SipMessage) -> Result<Option<Negotiated>, SipMessage> {
        match negotiate(req, self.config.min_se, Some(self.config.session_expires)) {
            Ok(n) => Ok(n),
            Err(too_small) => {
                let mut r = self.respond(req, 422, "Session Interval Too Small", None);
                r.set_header("Min-SE", too_small.min_se.as_secs().to_string());
                Err(r)
            }
        }
    }

    /// Allocate, bind and open media for each recordable m-line not yet
    /// recorded; returns where each m-line is received.
    fn apply_offer(
        &mut self,
        now: Instant,
        dialog: &mut Dialog,
        offer: &Sdp,
        verdicts: &[Verdict],
    ) -> Vec<Option<Ports>> {
        let Some(rec) = self.recordings.get(&dialog.recording) else {
            return vec![None; offer.media.len()];
        };
        let handle = rec.handle.clone();
        let mut out = Vec::with_capacity(offer.media.len());
        for (i, verdict) in verdicts.iter().enumerate() {
            if dialog.streams.len() <= i {
                dialog.streams.push(None);
            }
            let offered_key = match verdict {
                Verdict::Record { srtp, .. } => srtp.as_ref().map(|s| s.offered.master.clone()),
                Verdict::Refuse(_) => None,
            };
            // A stream that turns from RTP to SRTP or back is a new track on
            // new ports: a track's packets are one or the other throughout.
            if matches!(verdict, Verdict::Record { .. })
                && dialog.streams[i]
                    .as_ref()
                    .is_some_and(|s| s.srtp.is_some() != offered_key.is_some())
            {
                if let Some(stream) = dialog.streams[i].take() {
                    let _ = self.engine.unbind_track(&handle, stream.track);
                    self.close_ports(now, stream.ports);
                }
            }
            match (verdict, dialog.streams[i].as_mut()) {
                (Verdict::Record { payload_types, .. }, Some(stream)) => {
                    // Re-INVITE: same ports; a new codec updates the track.
                    if stream.payload_types != *payload_types {
                        let _ =
                            self.engine
                                .update_track(&handle, stream.track, payload_types.clone());
                        stream.payload_types = payload_types.clone();
                    }
                    // A new SDES key re-keys it.
                    if let Some(key) = offered_key.filter(|k| stream.srtp.as_ref() != Some(k)) {
                        let _ = self.engine.rekey_track(&handle, stream.track, &key);
                        stream.srtp = Some(key);
                    }
                    // The SRC moved the stream (failover to another SBC
                    // address): the source lock moves with it.
                    let sdp_addr = sdp_address(offer, i);
                    if sdp_addr != stream.sdp_addr {
                        let policy = self.source_policy(sdp_addr);
                        let _ = self.engine.relock_source(&handle, stream.track, policy);
                        stream.sdp_addr = sdp_addr;
                    }
                    out.push(Some(stream.ports));
                }
                (
                    Verdict::Record {
                        payload_types,
                        rtcp_mux,
                        srtp,
                    },
                    None,
                ) => {
                    let Some(ports) = self.ports.allocate(now, *rtcp_mux) else {
                        out.push(None);
                        continue;
                    };
                    let label = offer
                        .media
                        .get(i)
                        .and_then(|m| m.label())
                        .map(str::to_string);
                    let mut bindings = vec![Binding::Port(SocketAddr::new(
                        self.config.media_addr,
                        ports.rtp,
                    ))];
                    if let Some(rtcp) = ports.rtcp {
                        bindings.push(Binding::Port(SocketAddr::new(self.config.media_addr, rtcp)));
                    }
                    let index = dialog.cucm_near_end.map(|near| if near { 0 } else { 1 });
                    // CUCM's SDP has no labels: name the legs.
                    let label = label.or_else(|| {
                        dialog
                            .cucm_near_end
                            .map(|near| if near { "near" } else { "far" }.to_string())
                    });
                    let setup = TrackSetup {
                        index,
                        label: label.clone(),
                        payload_types: payload_types.clone(),
                        bindings: bindings.clone(),
                        srtp: offered_key.clone(),
                        source: self.source_policy(sdp_address(offer, i)),
                    };
                    let track = match self.engine.add_track(&handle, setup) {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot record stream");
                            self.ports.release(now, ports);
                            out.push(None);
                            continue;
                        }
                    };
                    for b in &bindings {
                        if let Binding::Port(a) = b {
                            if let Err(e) = self.receivers.open(*a) {
                                tracing::error!(addr = %a, error = %e, "cannot receive media");
                            }
                        }
                    }
                    let mut data = serde_json::Map::new();
                    if let Some(l) = &label {
                        data.insert("label".into(), l.clone().into());
                    }
                    data.insert(
                        "local".into(),
                        SocketAddr::new(self.config.media_addr, ports.rtp)
                            .to_string()
                            .into(),
                    );
                    data.insert(
                        "codecs".into(),
                        payload_types
                            .iter()
                            .map(|(_, c)| serde_json::Value::from(c.name()))
                            .collect::<Vec<_>>()
                            .into(),
                    );
                    if let Some(s) = srtp {
                        data.insert("srtp".into(), s.offered.suite.sdes_name().into());
                    }
                    self.emit("stream_added", now_ns(), &dialog.recording, data);
                    dialog.streams[i] = Some(StreamState {
                        track,
                        ports,
                        payload_types: payload_types.clone(),
                        label,
                        srtp: offered_key,
                        sdp_addr: sdp_address(offer, i),
                    });
                    out.push(Some(ports));
                }
                (Verdict::Refuse(_), Some(_)) => {
                    // The m-line was removed or refused now: stop receiving it.
                    if let Some(stream) = dialog.streams[i].take() {
                        let _ = self.engine.unbind_track(&handle, stream.track);
                        self.close_ports(now, stream.ports);
                    }
                    out.push(None);
                }
                (Verdict::Refuse(_), None) => out.push(None),
            }
        }
        // On hold when no recorded m-line has the SRC sending.
        let sending = verdicts.iter().enumerate().any(|(i, v)| {
            matches!(v, Verdict::Record { .. })
                && offer.media.get(i).is_some_and(|m| {
                    matches!(m.direction(), Direction::SendOnly | Direction::SendRecv)
                })
        });
        dialog.media.offer(now, !sending);
        out
    }

    fn close_ports(&mut self, now: Instant, ports: Ports) {
        self.receivers
            .close(SocketAddr::new(self.config.media_addr, ports.rtp));
        if let Some(rtcp) = ports.rtcp {
            self.receivers
                .close(SocketAddr::new(self.config.media_addr, rtcp));
        }
        self.ports.release(now, ports);
    }

    fn on_reinvite(
        &mut self,
        now: Instant,
        req: &SipMessage,
        call_id: &str,
        to_tag: &str,
    ) -> SipMessage {
        let Some(mut dialog) = self.dialogs.remove(call_id) else {
            return self.respond(req, 481, "Call/Transaction Does Not Exist", None);
        };
        if dialog.local_tag != to_tag {
            self.dialogs.insert(call_id.to_string(), dialog);
            return self.respond(req, 481, "Call/Transaction Does Not Exist", None);
        }
        let response = self.reinvite_in_dialog(now, req, &mut dialog);
        self.dialogs.insert(call_id.to_string(), dialog);
        response
    }

    fn reinvite_in_dialog(
        &mut self,
        now: Instant,
        req: &SipMessage,
        dialog: &mut Dialog,
    ) -> SipMessage {
        let cseq = req.cseq().map(|(n, _)| n).unwrap_or(0);
        if cseq <= dialog.remote_cseq {
            return self.respond(
                req,
                500,
                "Server Internal Error (CSeq out of order)",
                Some(&dialog.local_tag.clone()),
            );
        }
        dialog.remote_cseq = cseq;
        dialog.refreshed_at = now;
        let kind = match classify_invite(req) {
            Ok(k) => k,
            Err(ClassifyError::NoSdp) => {
                // A session refresh without an offer: answer with the last SDP
                // is what a full UA would do; we re-answer our current state.
                return self.respond(
                    req,
                    488,
                    "Not Acceptable Here: re-INVITE without SDP",
                    Some(&dialog.local_tag.clone()),
                );
            }
            Err(e) => return self.classify_error(req, &e),
        };
        let offer = kind.sdp().clone();
        let verdicts = assess(&offer);
        let ports = self.apply_offer(now, dialog, &offer, &verdicts);
        if let InviteKind::Siprec {
            metadata: Some((raw, md)),
            ..
        } = &kind
        {
            self.store_metadata(&dialog.recording, raw.clone(), participants(md));
        }
        dialog.session_version += 1;
        self.answer(req, dialog, &offer, &verdicts, &ports)
    }

    fn store_metadata(
        &mut self,
        rec_key: &str,
        raw: Vec<u8>,
        parts: Vec<mediafork_dataplane::recording::meta::ParticipantMeta>,
    ) {
        if let Some(rec) = self.recordings.get_mut(rec_key) {
            rec.metadata_versions += 1;
            self.engine.write_call_file(
                &rec.handle,
                &metadata_file_name(rec.metadata_versions),
                raw,
            );
            self.engine
                .update_call(&rec.handle, move |m| m.participants = parts);
        }
    }

    fn on_update(&mut self, now: Instant, req: &SipMessage) -> SipMessage {
        let Some((call_id, tag)) = dialog_ids(req) else {
            return self.respond(req, 481, "Call/Transaction Does Not Exist", None);
        };
        let Some(dialog) = self
            .dialogs
            .get_mut(&call_id)
            .filter(|d| d.local_tag == tag)
        else {
            return self.respond(req, 481, "Call/Transaction Does Not Exist", None);
        };
        dialog.refreshed_at = now;
        let rec_key = dialog.recording.clone();
        let local_tag = dialog.local_tag.clone();
        let interval = dialog.session_interval;
        match metadata_in(req) {
            Ok(Some((raw, md))) => self.store_metadata(&rec_key, raw, participants(&md)),
            Ok(None) => {}
            Err(e) => return self.classify_error(req, &e),
        }
        with_session_timer(self.respond(req, 200, "OK", Some(&local_tag)), interval)
    }

    fn in_dialog_ok(&mut self, now: Instant, req: &SipMessage) -> SipMessage {
        match dialog_ids(req)
            .and_then(|(c, t)| self.dialogs.get_mut(&c).filter(|d| d.local_tag == t))
        {
            Some(d) => {
                d.refreshed_at = now;
                let tag = d.local_tag.clone();
                self.respond(req, 200, "OK", Some(&tag))
            }
            None => self.respond(req, 481, "Call/Transaction Does Not Exist", None),
        }
    }

    fn on_bye(&mut self, now: Instant, req: &SipMessage) -> SipMessage {
        let Some((call_id, tag)) = dialog_ids(req) else {
            return self.respond(req, 481, "Call/Transaction Does Not Exist", None);
        };
        if !self
            .dialogs
            .get(&call_id)
            .is_some_and(|d| d.local_tag == tag)
        {
            return self.respond(req, 481, "Call/Transaction Does Not Exist", None);
        }
        self.end_dialog(now, &call_id, "bye");
        self.respond(req, 200, "OK", Some(&tag))
    }

    /// The INVITE of `call_id` was cancelled or never acknowledged.
    pub fn abort_dialog(&mut self, now: Instant, call_id: &str, why: &'static str) {
        self.end_dialog(now, call_id, why);
    }

    fn end_dialog(&mut self, now: Instant, call_id: &str, why: &'static str) {
        let Some(dialog) = self.dialogs.remove(call_id) else {
            return;
        };
        for stream in dialog.streams.into_iter().flatten() {
            self.close_ports(now, stream.ports);
        }
        let Some(rec) = self.recordings.get_mut(&dialog.recording) else {
            return;
        };
        rec.legs = rec.legs.saturating_sub(1);
        if rec.legs == 0 {
            if let Some(rec) = self.recordings.remove(&dialog.recording) {
                set_ended_by(&self.engine, &rec.handle, why);
                let _ = self.engine.end_call(&rec.handle, now_ns());
                self.counters.calls_ended += 1;
                crate::metrics::call_ended(rec.info.source, why);
                tracing::info!(recording_id = %rec.handle.recording_id, %call_id, ended_by = why, "recording ended");
            }
        }
    }

    /// `limits.no_media_timeout`: BYE and end the dialogs whose media
    /// stopped `timeout` ago (the SBC lost the call without a BYE, or its
    /// media path broke).
    fn end_silent_dialogs(&mut self, now: Instant, timeout: Duration) -> Vec<Outbound> {
        let mut silent = Vec::new();
        for (call_id, d) in &mut self.dialogs {
            if d.media.next_check > now {
                continue;
            }
            let count = d
                .streams
                .iter()
                .flatten()
                .filter_map(|s| self.engine.media_seen(s.track))
                .sum();
            if d.media.expired(now, count, timeout) {
                silent.push(call_id.clone());
            }
        }
        let mut out = Vec::new();
        for call_id in silent {
            if let Some(d) = self.dialogs.get_mut(&call_id) {
                d.local_cseq += 1;
                // Q.850 cause 102: recovery on timer expiry.
                let extra = "Reason: Q.850;cause=102;text=\"no media\"\r\n";
                let (cseq, to, conn) = (d.local_cseq, d.peer, d.conn);
                if let Some(request) = in_dialog_request("BYE", extra, &call_id, d, &self.config) {
                    let o = Outbound {
                        to,
                        request,
                        reliable_conn: conn,
                    };
                    out.push(self.send_tracked(now, o, &call_id, cseq, Method::Bye));
                }
                tracing::info!(%call_id, timeout_s = timeout.as_secs_f64(), "no media: ending the call");
            }
            // Counted in mediafork_calls_ended_total{reason="no_media"}.
            self.end_dialog(now, &call_id, "no_media");
        }
        out
    }

    /// Earliest session-timer deadline, refresh, retransmission or
    /// no-media check.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let resend = self.pending.iter().map(|b| b.next);
        let refresh = self.dialogs.values().filter_map(refresh_due);
        let silent = self
            .config
            .no_media_timeout
            .into_iter()
            .flat_map(|_| self.dialogs.values().map(|d| d.media.next_check));
        self.dialogs
            .values()
            .filter_map(expiry)
            .chain(resend)
            .chain(refresh)
            .chain(silent)
            .min()
    }

    /// A response the transport received, to a BYE or UPDATE of ours.
    pub fn on_response(&mut self, now: Instant, resp: &SipMessage) {
        let (Ok(call_id), Ok((cseq, _)), Some(code)) = (resp.call_id(), resp.cseq(), resp.status())
        else {
            return;
        };
        if code < 200 {
            return;
        }
        let Some(i) = self
            .pending
            .iter()
            .position(|p| p.call_id == call_id && p.cseq == cseq)
        else {
            return;
        };
        let req = self.pending.remove(i);
        if req.method != Method::Update {
            return;
        }
        let call_id = call_id.to_string();
        let Some(d) = self.dialogs.get_mut(&call_id) else {
            return;
        };
        d.refresh_in_flight = false;
        match code {
            200..=299 => d.refreshed_at = now,
            // RFC 4028 §10: the session is gone.
            408 | 481 => self.end_dialog(now, &call_id, "session_refresh_failed"),
            // The SRC refused UPDATE: stop refreshing; its own timer decides.
            _ => d.we_refresh = false,
        }
    }

    fn send_tracked(
        &mut self,
        now: Instant,
        out: Outbound,
        call_id: &str,
        cseq: u32,
        method: Method,
    ) -> Outbound {
        let reliable = out.reliable_conn.is_some();
        self.pending.push(PendingRequest {
            out: out.clone(),
            call_id: call_id.to_string(),
            cseq,
            method,
            // Reliable transports retransmit themselves; we only wait.
            next: if reliable { now + T1 * 64 } else { now + T1 },
            interval: T1,
            give_up: now + T1 * 64,
        });
        out
    }

    /// Session-timer work: resend unanswered requests, refresh the sessions
    /// we refresh, and end those whose timer expired (the SBC died without
    /// BYE): close the recording cleanly and send the SRC a BYE (RFC 4028 §10).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Outbound> {
        self.ports.reclaim(now);
        let mut out = Vec::new();
        // Unanswered refreshes: the session is as good as gone.
        let failed: Vec<String> = self
            .pending
            .iter()
            .filter(|p| p.give_up <= now && p.method == Method::Update)
            .map(|p| p.call_id.clone())
            .collect();
        self.pending.retain(|p| p.give_up > now);
        for call_id in failed {
            self.end_dialog(now, &call_id, "session_refresh_failed");
        }
        for p in &mut self.pending {
            if p.next <= now && p.out.reliable_conn.is_none() {
                out.push(p.out.clone());
                p.interval = (p.interval * 2).min(T2);
                p.next = now + p.interval;
            }
        }
        let due: Vec<String> = self
            .dialogs
            .iter()
            .filter(|(_, d)| refresh_due(d).is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for call_id in due {
            let Some(d) = self.dialogs.get_mut(&call_id) else {
                continue;
            };
            d.local_cseq += 1;
            d.refresh_in_flight = true;
            let interval = d.session_interval.map_or(0, |n| n.interval.as_secs());
            let extra =
                format!("Session-Expires: {interval};refresher=uas\r\nSupported: timer\r\n");
            let (cseq, to, conn) = (d.local_cseq, d.peer, d.conn);
            if let Some(request) = in_dialog_request("UPDATE", &extra, &call_id, d, &self.config) {
                let o = Outbound {
                    to,
                    request,
                    reliable_conn: conn,
                };
                out.push(self.send_tracked(now, o, &call_id, cseq, Method::Update));
            }
        }
        let expired: Vec<String> = self
            .dialogs
            .iter()
            .filter(|(_, d)| expiry(d).is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for call_id in expired {
            if let Some(d) = self.dialogs.get_mut(&call_id) {
                d.local_cseq += 1;
                let extra = "Reason: SIP;cause=408;text=\"session timer expired\"\r\n";
                let (cseq, to, conn) = (d.local_cseq, d.peer, d.conn);
                if let Some(request) = in_dialog_request("BYE", extra, &call_id, d, &self.config) {
                    let o = Outbound {
                        to,
                        request,
                        reliable_conn: conn,
                    };
                    out.push(self.send_tracked(now, o, &call_id, cseq, Method::Bye));
                }
            }
            self.counters.session_expired += 1;
            self.end_dialog(now, &call_id, "session_expired");
        }
        if let Some(timeout) = self.config.no_media_timeout {
            out.extend(self.end_silent_dialogs(now, timeout));
        }
        out
    }

    /// End every call (shutdown): files and metadata closed cleanly.
    pub fn end_all(&mut self, now: Instant, why: &'static str) {
        let ids: Vec<String> = self.dialogs.keys().cloned().collect();
        for id in ids {
            self.end_dialog(now, &id, why);
        }
    }
}

/// RFC 4028 §9: a 2xx in a dialog with a session timer carries its
/// interval, the UAC as refresher, and `Require: timer`.
fn with_session_timer(mut r: SipMessage, timer: Option<Negotiated>) -> SipMessage {
    if let Some(n) = timer {
        n.apply_to(&mut r);
    }
    r
}

/// The sent-protocol of the request's top Via (`SIP/2.0/TCP` → `TCP`).
fn via_transport(req: &SipMessage) -> String {
    req.header("Via")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|p| p.rsplit('/').next())
        .map(|t| t.to_ascii_uppercase())
        .filter(|t| ["UDP", "TCP", "TLS"].contains(&t.as_str()))
        .unwrap_or_else(|| "UDP".to_string())
}

/// The source label of a call refused before it was classified.
fn invite_source(req: &SipMessage) -> &'static str {
    classify_invite(req).map_or("unknown", |k| kind_name(&k))
}

fn kind_name(k: &InviteKind) -> &'static str {
    match k {
        InviteKind::Siprec { .. } => "siprec",
        InviteKind::Cucm { .. } => "cucm",
        InviteKind::Plain { .. } => "sip",
    }
}

/// RFC 4028 §10: without a refresh, the session ends at last refresh +
/// interval; the side that is not the refresher ends it a little before,
/// at interval − min(32 s, interval / 3). When the SRC asked us to refresh
/// (`refresher=uas`, or it does not support timers), this recorder sends no
/// refreshes and leaves the teardown to the SRC's own timer.
fn expiry(d: &Dialog) -> Option<Instant> {
    let n = d.session_interval.filter(|n| !n.we_refresh())?;
    let i = n.interval;
    let margin = (i / 3).min(Duration::from_secs(32));
    Some(d.refreshed_at + i - margin)
}

fn dialog_ids(req: &SipMessage) -> Option<(String, String)> {
    let call_id = req.call_id().ok()?.to_string();
    let tag = req.to().ok()?.tag()?.to_string();
    Some((call_id, tag))
}

fn new_tag() -> String {
    let u = uuid::Uuid::now_v7().simple().to_string();
    format!("mf{}", &u[u.len() - 12..])
}

/// Reason phrases go into a status line: one line, printable.
fn sanitize_reason(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// When we next refresh a session we are the refresher of (RFC 4028 §7.2:
/// at half the interval).
fn refresh_due(d: &Dialog) -> Option<Instant> {
    if !d.we_refresh || d.refresh_in_flight {
        return None;
    }
    Some(d.refreshed_at + d.session_interval?.interval / 2)
}

/// Whether the SRC's INVITE says it accepts UPDATE (our refresh request).
fn allows_update(req: &SipMessage) -> bool {
    req.header_list("Allow")
        .iter()
        .any(|m| m.trim().eq_ignore_ascii_case("UPDATE"))
}

/// An in-dialog request from the UAS side (From is our To, To is their
/// From), with `extra` header lines.
fn in_dialog_request(
    method: &str,
    extra: &str,
    call_id: &str,
    d: &Dialog,
    cfg: &RecorderConfig,
) -> Option<SipMessage> {
    let branch = format!("z9hG4bK{}", new_tag());
    let text = format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/{transport} {contact};branch={branch}\r\nMax-Forwards: 70\r\n\
         From: {from};tag={ltag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         {extra}User-Agent: {ua}\r\nContent-Length: 0\r\n\r\n",
        target = d.remote_target,
        transport = d.via_transport,
        contact = cfg.contact,
        from = strip_tag(&d.to_header),
        ltag = d.local_tag,
        to = d.from_header,
        cseq = d.local_cseq,
        ua = cfg.user_agent,
    );
    SipMessage::parse(text.as_bytes()).ok()
}

fn strip_tag(h: &str) -> String {
    // The To header of the INVITE has no tag; drop one defensively.
    match h.find(";tag=") {
        Some(i) => h[..i].to_string(),
        None => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediafork_dataplane::config::{DataplaneConfig, PortRange};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log {
        allocated: Vec<Ports>,
        released: Vec<Ports>,
        opened: Vec<SocketAddr>,
        closed: Vec<SocketAddr>,
    }

    struct FakePorts(Arc<Mutex<Log>>, u16);
    impl PortAllocator for FakePorts {
        fn allocate(&mut self, _now: Instant, mux: bool) -> Option<Ports> {
            if self.1 >= 40_010 {
                return None;
            }
            let p = Ports {
                rtp: self.1,
                rtcp: (!mux).then_some(self.1 + 1),
            };
            self.1 += 2;
            self.0.lock().unwrap().allocated.push(p);
            Some(p)
        }
        fn release(&mut self, _now: Instant, ports: Ports) {
            self.0.lock().unwrap().released.push(ports);
        }
        fn free(&self) -> usize {
            (40_010 - self.1) as usize
        }
        fn reclaim(&mut self, _now: Instant) {}
        fn usage(&self) -> PortUsage {
            PortUsage {
                total: 10,
                in_use: (self.1 - 40_000) as usize,
                quarantined: 0,
                free: self.free(),
                free_pairs: self.free() / 2,
            }
        }
    }

    struct FakeReceivers(Arc<Mutex<Log>>);
    impl MediaReceivers for FakeReceivers {
        fn open(&mut self, addr: SocketAddr) -> std::io::Result<()> {
            self.0.lock().unwrap().opened.push(addr);
            Ok(())
        }
        fn close(&mut self, addr: SocketAddr) {
            self.0.lock().unwrap().closed.push(addr);
        }
    }

    fn recorder() -> (Recorder, Arc<Mutex<Log>>, Arc<Engine>) {
        let dir = std::env::temp_dir().join(format!("mf-recorder-test-{}", std::process::id()));
        let cfg = DataplaneConfig {
            port_range: PortRange::new(40_000, 40_099).unwrap(),
            recordings_dir: dir,
            ..DataplaneConfig::default()
        };
        let (engine, _cores, _rings) = Engine::start_without_writers(cfg).unwrap();
        let engine = Arc::new(engine);
        let log = Arc::new(Mutex::new(Log::default()));
        let config = RecorderConfig {
            media_addr: "127.0.0.1".parse().unwrap(),
            max_calls: 10,
            max_calls_per_source: 0,
            pcap: false,
            options_always_ok: false,
            user_agent: "test".into(),
            min_se: Duration::from_secs(90),
            session_expires: Duration::from_secs(1800),
            contact: "127.0.0.1:5060".into(),
            on_demand: false,
            source_policy: SourcePolicyConfig::First,
            no_media_timeout: None,
        };
        let r = Recorder::new(
            engine.clone(),
            config,
            Box::new(FakePorts(log.clone(), 40_000)),
            Box::new(FakeReceivers(log.clone())),
        );
        (r, log, engine)
    }

    fn invite(
        call_id: &str,
        cseq: u32,
        to_tag: Option<&str>,
        sdp_media: &str,
        extra: &str,
    ) -> SipMessage {
        let sdp = format!("v=0\r\no=SBC 1 {cseq} IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n{sdp_media}");
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let text = format!(
            "INVITE sip:srs@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK{call_id}{cseq}\r\n\
             From: <sip:src@192.0.2.10>;tag=src1\r\nTo: <sip:srs@127.0.0.1>{to_tag}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\nContact: <sip:src@192.0.2.10>\r\n{extra}Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        SipMessage::parse(text.as_bytes()).unwrap()
    }

    fn bye(call_id: &str, tag: &str) -> SipMessage {
        let text = format!(
            "BYE sip:srs@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKbye\r\nFrom: <sip:src@192.0.2.10>;tag=src1\r\n\
             To: <sip:srs@127.0.0.1>;tag={tag}\r\nCall-ID: {call_id}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.as_bytes()).unwrap()
    }

    const TWO: &str = "m=audio 20000 RTP/AVP 0\r\na=label:1\r\na=sendonly\r\nm=audio 20002 RTP/AVP 8\r\na=label:2\r\na=sendonly\r\n";
    const PEER: &str = "192.0.2.10:5060";

    fn ports_of(r: &SipMessage) -> Vec<u16> {
        Sdp::parse(std::str::from_utf8(&r.body).unwrap())
            .unwrap()
            .media
            .iter()
            .map(|m| m.port)
            .collect()
    }

    /// With `media.source_policy = "sdp"` each track is locked to the SDP's
    /// address from the start, and a re-INVITE that moves the stream (SBC
    /// failover) moves the lock; one that does not leaves it alone.
    #[test]
    fn the_source_lock_follows_the_sdp_address() {
        use mediafork_dataplane::demux::Lookup;
        let (mut rec, _log, engine) = recorder();
        rec.config.source_policy = SourcePolicyConfig::Sdp;
        let now = Instant::now();
        let ok = rec
            .on_request(
                now,
                &invite("c-src", 1, None, TWO, ""),
                PEER.parse().unwrap(),
                None,
            )
            .unwrap();
        assert_eq!(ok.status(), Some(200));
        let tag = ok.to().unwrap().tag().unwrap().to_string();
        let shared = engine.shared();
        let lock = |port: u16| {
            let Lookup::Track(t) = shared
                .demux
                .lookup(&format!("127.0.0.1:{port}").parse().unwrap(), 0)
            else {
                panic!("port {port} not bound");
            };
            shared.tracks.get(t).expect("spec").source.current()
        };
        let key = shared.source_key;
        let sbc = key.tag(&"192.0.2.10".parse().unwrap());
        assert_eq!((lock(40_000), lock(40_002)), (sbc, sbc));
        // Same address, new codec: the lock stays.
        let codec = TWO.replace("RTP/AVP 8", "RTP/AVP 0");
        rec.on_request(
            now,
            &invite("c-src", 2, Some(&tag), &codec, ""),
            PEER.parse().unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(lock(40_002), sbc);
        // The stream moves to the standby SBC's address.
        // A media-level c= overrides the session's for the first m-line.
        let moved = codec.replacen(
            "m=audio 20000 RTP/AVP 0\r\n",
            "m=audio 20000 RTP/AVP 0\r\nc=IN IP4 192.0.2.20\r\n",
            1,
        );
        let r = rec
            .on_request(
                now,
                &invite("c-src", 3, Some(&tag), &moved, ""),
                PEER.parse().unwrap(),
                None,
            )
            .unwrap();
        assert_eq!(r.status(), Some(200));
        assert_eq!(lock(40_000), key.tag(&"192.0.2.20".parse().unwrap()));
        assert_eq!(lock(40_002), sbc, "the other m-line did not move");
    }

    #[test]
    fn invite_reinvite_bye_keep_ports_stable_and_release_them() {
        let (mut rec, log, _e) = recorder();
        let now = Instant::now();
        let ok = rec
            .on_request(
                now,
                &invite("c1", 1, None, TWO, ""),
                PEER.parse().unwrap(),
                None,
            )
            .unwrap();
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ports_of(&ok), vec![40_000, 40_002]);
        let tag = ok.to().unwrap().tag().unwrap().to_string();
        assert_eq!(
            log.lock().unwrap().opened.len(),
            4,
            "RTP and RTCP of two streams"
        );
        // Hold: inactive, same ports, no new allocation.
        let hold = TWO.replace("sendonly", "inactive");
        let r = rec
            .on_request(
                now,
                &invite("c1", 2, Some(&tag), &hold, ""),
                PEER.parse().unwrap(),
                None,
            )
            .unwrap();
        assert_eq!(ports_of(&r), vec![40_000, 40_002]);
        assert!(std::str::from_utf8(&r.body).unwrap().contains("a=inactive"));
        // A stale CSeq is refused.
        let r = rec
            .on_request(
                now,
                &invite("c1", 2, Some(&tag), TWO, ""),
                PEER.parse().unwrap(),
                None,
            )
            .unwrap();
        assert_eq!(r.status(), Some(500));
        assert_eq!(log.lock().unwrap().allocated.len(), 2);
        assert_eq!(
            rec.on_request(now, &bye("c1", "wrong"), PEER.parse().unwrap(), None)
                .unwrap()
                .status(),
            Some(481)
        );
        assert_eq!(
            rec.on_request(now, &bye("c1", &tag), PEER.parse().unwrap(), None)
                .unwrap()
                .status(),
            Some(200)
        );
        let l = log.lock().unwrap();
        assert_eq!(l.released.len(), 2);
        assert_eq!(l.closed.len(), 4);
        assert_eq!(rec.active_recordings(), 0);
    }

    #[test]
    fn refusals() {
        let (mut rec, _log, _e) = recorder();
        let now = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        let video = "m=video 20000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
        let r = rec
            .on_request(now, &invite("v", 1, None, video, ""), peer, None)
            .unwrap();
        assert_eq!(r.status(), Some(488));
        let r = rec
            .on_request(
                now,
                &invite("x", 1, None, TWO, "Require: foo\r\n"),
                peer,
                None,
            )
            .unwrap();
        assert_eq!(r.status(), Some(420));
        assert_eq!(r.header("Unsupported"), Some("foo"));
        let r = rec
            .on_request(
                now,
                &invite("s", 1, None, TWO, "Session-Expires: 30\r\n"),
                peer,
                None,
            )
            .unwrap();
        assert_eq!(r.status(), Some(422));
        assert_eq!(r.header("Min-SE"), Some("90"));
        rec.set_draining(true);
        let r = rec
            .on_request(now, &invite("d", 1, None, TWO, ""), peer, None)
            .unwrap();
        assert_eq!(r.status(), Some(503));
        assert!(r.header("Retry-After").is_some());
    }

    #[test]
    fn out_of_ports_is_503_and_leaks_nothing() {
        let (mut rec, log, _e) = recorder();
        let now = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        let mut oks = 0;
        for i in 0..5 {
            let r = rec
                .on_request(now, &invite(&format!("p{i}"), 1, None, TWO, ""), peer, None)
                .unwrap();
            if r.status() == Some(200) {
                oks += 1;
            }
        }
        // 5 pairs: two calls of two streams; the third would get only one
        // stream and is refused rather than recorded one-sided.
        assert_eq!(oks, 2);
        let r = rec
            .on_request(now, &invite("full", 1, None, TWO, ""), peer, None)
            .unwrap();
        assert_eq!(r.status(), Some(503));
        rec.end_all(now, "shutdown");
        let l = log.lock().unwrap();
        assert_eq!(
            l.allocated.len(),
            l.released.len(),
            "every allocated port came back"
        );
    }

    /// What the writer does for every media record of the call's tracks.
    fn media_arrives(rec: &Recorder, engine: &Engine) {
        for d in rec.dialogs.values() {
            for s in d.streams.iter().flatten() {
                engine.shared().tracks.get(s.track).unwrap().media.note();
            }
        }
    }

    #[test]
    fn no_media_timeout_ends_a_silent_call_with_bye_and_spares_a_live_one() {
        let (mut rec, _log, engine) = recorder();
        rec.config.no_media_timeout = Some(Duration::from_secs(20));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let peer: SocketAddr = PEER.parse().unwrap();
        let ok = rec
            .on_request(t0, &invite("nm", 1, None, TWO, ""), peer, None)
            .unwrap();
        assert_eq!(ok.status(), Some(200));
        // Checked every quarter of the timeout.
        assert_eq!(rec.poll_timeout(), Some(t0));
        assert!(rec.handle_timeout(t0).is_empty());
        assert_eq!(rec.poll_timeout(), Some(at(5)));
        // Media for 12 s: each reading sees it move.
        for s in [5, 10] {
            media_arrives(&rec, &engine);
            assert!(rec.handle_timeout(at(s)).is_empty());
        }
        assert_eq!(rec.poll_timeout(), Some(at(15)));
        // Then silence: the dialog ends 20 s after the last reading that
        // saw media move (at most 25 s after the last packet).
        for s in [15, 20, 25] {
            assert!(rec.handle_timeout(at(s)).is_empty(), "at {s} s");
            assert_eq!(rec.active_recordings(), 1);
        }
        assert_eq!(rec.poll_timeout(), Some(at(30)));
        let out = rec.handle_timeout(at(30));
        assert_eq!(out.len(), 1, "one BYE");
        let bye = &out[0].request;
        assert_eq!(bye.method(), Some(&Method::Bye));
        assert_eq!(bye.call_id().unwrap(), "nm");
        assert_eq!(
            bye.header("Reason"),
            Some("Q.850;cause=102;text=\"no media\"")
        );
        assert_eq!(out[0].to, peer);
        assert_eq!(rec.active_recordings(), 0);
        assert_eq!(
            rec.poll_timeout(),
            Some(at(30) + Duration::from_millis(500)),
            "only the BYE's retransmission is left"
        );
    }

    #[test]
    fn no_media_timeout_waits_while_the_call_is_on_hold() {
        let (mut rec, _log, _engine) = recorder();
        rec.config.no_media_timeout = Some(Duration::from_secs(20));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let peer: SocketAddr = PEER.parse().unwrap();
        let ok = rec
            .on_request(t0, &invite("h", 1, None, TWO, ""), peer, None)
            .unwrap();
        let tag = ok.to().unwrap().tag().unwrap().to_string();
        // Hold: both streams inactive. No media is expected however long.
        let hold = TWO.replace("sendonly", "inactive");
        let r = rec
            .on_request(at(1), &invite("h", 2, Some(&tag), &hold, ""), peer, None)
            .unwrap();
        assert_eq!(r.status(), Some(200));
        for s in (5..=120).step_by(5) {
            assert!(rec.handle_timeout(at(s)).is_empty(), "at {s} s");
        }
        assert_eq!(rec.active_recordings(), 1);
        // Resumed: the clock starts again at the re-INVITE.
        let r = rec
            .on_request(at(121), &invite("h", 3, Some(&tag), TWO, ""), peer, None)
            .unwrap();
        assert_eq!(r.status(), Some(200));
        for s in [125, 130, 135, 140] {
            assert!(rec.handle_timeout(at(s)).is_empty(), "at {s} s");
        }
        let out = rec.handle_timeout(at(141));
        assert_eq!(out.len(), 1, "BYE 20 s after the resume");
        assert_eq!(rec.active_recordings(), 0);
    }

    #[test]
    fn without_no_media_timeout_a_silent_call_stays() {
        let (mut rec, _log, _engine) = recorder();
        let t0 = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        rec.on_request(t0, &invite("q", 1, None, TWO, ""), peer, None)
            .unwrap();
        assert_eq!(rec.poll_timeout(), None);
        assert!(rec
            .handle_timeout(t0 + Duration::from_secs(3600))
            .is_empty());
        assert_eq!(rec.active_recordings(), 1);
        // A reload turns it on for calls in progress too.
        rec.reload(10, 0, false, Some(Duration::from_secs(30)));
        assert!(rec.poll_timeout().is_some());
    }

    #[test]
    fn session_expiry_ends_the_recording_and_sends_bye() {
        let (mut rec, _log, _e) = recorder();
        let now = Instant::now();
        let ok = rec
            .on_request(
                now,
                &invite(
                    "t",
                    1,
                    None,
                    TWO,
                    "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
                ),
                PEER.parse().unwrap(),
                None,
            )
            .unwrap();
        assert_eq!(ok.header("Session-Expires"), Some("90;refresher=uac"));
        // RFC 4028 §10: 90 − min(32, 30) = 60 s.
        assert_eq!(rec.poll_timeout(), Some(now + Duration::from_secs(60)));
        assert!(rec.handle_timeout(now + Duration::from_secs(59)).is_empty());
        let out = rec.handle_timeout(now + Duration::from_secs(60));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].request.method(), Some(&Method::Bye));
        assert_eq!(out[0].to, PEER.parse::<SocketAddr>().unwrap());
        assert_eq!(rec.active_recordings(), 0);
        assert_eq!(rec.counters().session_expired, 1);
        // Over UDP the BYE is resent (T1, then doubling) until answered.
        let t = now + Duration::from_secs(60);
        let again = rec.handle_timeout(t + Duration::from_millis(500));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].request.to_bytes(), out[0].request.to_bytes());
        assert!(rec
            .handle_timeout(t + Duration::from_millis(1000))
            .is_empty());
        let ok = SipMessage::response(&out[0].request, 200, "OK");
        rec.on_response(t, &ok);
        assert!(rec.handle_timeout(t + Duration::from_secs(5)).is_empty());
        assert_eq!(rec.poll_timeout(), None);
    }

    #[test]
    fn as_refresher_we_send_update_at_half_the_interval() {
        let (mut rec, _log, _e) = recorder();
        let now = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        let extra = "Supported: timer\r\nAllow: INVITE, ACK, BYE, UPDATE\r\nSession-Expires: 120;refresher=uas\r\n";
        let ok = rec
            .on_request(now, &invite("r", 1, None, TWO, extra), peer, None)
            .unwrap();
        assert_eq!(ok.header("Session-Expires"), Some("120;refresher=uas"));
        assert!(
            ok.header("Require").is_none(),
            "no Require: timer when we refresh"
        );
        assert_eq!(rec.poll_timeout(), Some(now + Duration::from_secs(60)));
        let out = rec.handle_timeout(now + Duration::from_secs(60));
        assert_eq!(out.len(), 1);
        let update = &out[0].request;
        assert_eq!(update.method(), Some(&Method::Update));
        assert_eq!(update.header("Session-Expires"), Some("120;refresher=uas"));
        // Answered: the next refresh is half an interval later.
        let t = now + Duration::from_secs(61);
        rec.on_response(t, &SipMessage::response(update, 200, "OK"));
        assert_eq!(rec.poll_timeout(), Some(t + Duration::from_secs(60)));
        let out = rec.handle_timeout(t + Duration::from_secs(60));
        assert_eq!(out.len(), 1);
        // The SRC no longer knows the dialog: the recording ends.
        rec.on_response(
            t + Duration::from_secs(61),
            &SipMessage::response(&out[0].request, 481, "Call/Transaction Does Not Exist"),
        );
        assert_eq!(rec.active_recordings(), 0);
    }

    #[test]
    fn session_timer_follows_rfc4028_negotiation() {
        let (mut rec, _log, _e) = recorder();
        let now = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        // A UAC without timer support: we would have to refresh, so no
        // Require: timer and no teardown of our own.
        let r = rec
            .on_request(
                now,
                &invite("n", 1, None, TWO, "Session-Expires: 1800\r\n"),
                peer,
                None,
            )
            .unwrap();
        assert_eq!(r.header("Session-Expires"), Some("1800;refresher=uas"));
        assert!(r.header("Require").is_none());
        assert_eq!(rec.poll_timeout(), None);
        // Over TCP the BYE's Via says TCP.
        let tcp = invite(
            "tcp",
            1,
            None,
            TWO,
            "Supported: timer\r\nSession-Expires: 90\r\n",
        );
        let text = String::from_utf8(tcp.to_bytes())
            .unwrap()
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
        let tcp = SipMessage::parse(text.as_bytes()).unwrap();
        rec.on_request(now, &tcp, peer, Some(7)).unwrap();
        let out = rec.handle_timeout(now + Duration::from_secs(60));
        assert_eq!(out.len(), 1);
        assert!(out[0]
            .request
            .header("Via")
            .unwrap()
            .starts_with("SIP/2.0/TCP"));
        assert_eq!(out[0].reliable_conn, Some(7));
        // Reliable transport: no retransmission.
        assert!(rec.handle_timeout(now + Duration::from_secs(61)).is_empty());
    }

    fn sel(id: &str) -> crate::admin::api::CallSelector {
        crate::admin::api::CallSelector {
            id: id.to_string(),
            by: None,
        }
    }

    #[test]
    fn calls_are_found_by_any_id_and_controls_follow_the_state() {
        use crate::admin::api::{AdminError, ControlAction, ControlRequest, IdKind, TagRequest};
        let (mut r, _log, _engine) = recorder();
        let peer: SocketAddr = PEER.parse().unwrap();
        let now = Instant::now();
        let guid = "Cisco-Guid: 2116681300-3661238766-2148922575-3797695020\r\n";
        let ok = r
            .on_request(now, &invite("c1@x", 1, None, TWO, guid), peer, None)
            .unwrap();
        assert_eq!(ok.status(), Some(200));
        let ok2 = r
            .on_request(now, &invite("c2@x", 1, None, TWO, guid), peer, None)
            .unwrap();
        assert_eq!(ok2.status(), Some(200));
        let calls = r.list_calls(now_ns());
        assert_eq!(calls.len(), 2);
        assert!(calls
            .iter()
            .all(|c| c.tracks == 2 && c.state == "recording"));
        let rec1 = calls
            .iter()
            .find(|c| c.call_id.as_deref() == Some("c1@x"))
            .unwrap()
            .recording_id
            .clone();

        // By Call-ID, recording id, and Cisco-GUID in either form; one GUID
        // on two calls is ambiguous; unknown ids are not found.
        assert_eq!(
            r.show_call(&sel("c1@x"), 0).unwrap().summary.recording_id,
            rec1
        );
        assert_eq!(
            r.show_call(&sel(&rec1), 0)
                .unwrap()
                .summary
                .call_id
                .as_deref(),
            Some("c1@x")
        );
        assert!(matches!(
            r.show_call(&sel("2116681300-3661238766-2148922575-3797695020"), 0),
            Err(AdminError::Ambiguous(_))
        ));
        assert!(matches!(
            r.show_call(&sel("7e29fe54da3a11ee8015f4cfe25c3a2c"), 0),
            Err(AdminError::Ambiguous(_))
        ));
        let by_kind = crate::admin::api::CallSelector {
            id: "c2@x".into(),
            by: Some(IdKind::RecordingId),
        };
        assert!(matches!(
            r.show_call(&by_kind, 0),
            Err(AdminError::NotFound(_))
        ));
        let detail = r.show_call(&sel("c1@x"), 0).unwrap();
        assert_eq!(detail.track_list.len(), 2);
        assert_eq!(detail.track_list[0].label.as_deref(), Some("1"));
        assert_eq!(detail.track_list[0].codecs, ["PCMU"]);

        let req = ControlRequest {
            by: Some("agent-7".into()),
            reason: None,
        };
        let c1 = sel("c1@x");
        assert!(matches!(
            r.control(&c1, ControlAction::Resume, &req, 1),
            Err(AdminError::Conflict(_))
        ));
        assert_eq!(
            r.control(&c1, ControlAction::Pause, &req, 2)
                .unwrap()
                .summary
                .state,
            "paused"
        );
        assert!(matches!(
            r.control(&c1, ControlAction::Pause, &req, 3),
            Err(AdminError::Conflict(_))
        ));
        // Stop while paused: the pause ends where the stop begins.
        let d = r.control(&c1, ControlAction::Stop, &req, 4).unwrap();
        assert_eq!(d.summary.state, "stopped");
        assert_eq!(d.intervals.len(), 2);
        assert!(d.intervals[0].kind == "pause" && d.intervals[0].ended_at.is_some());
        assert!(d.intervals[1].kind == "stop" && d.intervals[1].ended_at.is_none());
        assert!(matches!(
            r.control(&c1, ControlAction::Pause, &req, 5),
            Err(AdminError::Conflict(_))
        ));
        assert_eq!(
            r.control(&c1, ControlAction::Start, &req, 6)
                .unwrap()
                .summary
                .state,
            "recording"
        );

        let mut tags = std::collections::BTreeMap::new();
        tags.insert("agent_id".to_string(), "4711".to_string());
        let t = TagRequest { tags, by: None };
        assert_eq!(r.tag(&c1, &t, 7).unwrap().tags["agent_id"], "4711");
        let mut bad = std::collections::BTreeMap::new();
        bad.insert("no spaces".to_string(), "1".to_string());
        assert!(matches!(
            r.tag(
                &c1,
                &TagRequest {
                    tags: bad,
                    by: None
                },
                8
            ),
            Err(AdminError::BadRequest(_))
        ));

        let mut events = Vec::new();
        while let Some(e) = r.poll_event() {
            events.push((e.event, e.call_id));
        }
        let c1_events: Vec<&str> = events
            .iter()
            .filter(|(_, c)| c.as_deref() == Some("c1@x"))
            .map(|(e, _)| *e)
            .collect();
        assert_eq!(
            c1_events,
            [
                "call_started",
                "stream_added",
                "stream_added",
                "paused",
                "stopped",
                "started",
                "tagged"
            ]
        );
    }

    #[test]
    fn storage_critical_refuses_new_calls_and_options_but_not_calls_in_progress() {
        let (mut r, _log, _engine) = recorder();
        let peer: SocketAddr = PEER.parse().unwrap();
        let now = Instant::now();
        let ok = r
            .on_request(now, &invite("s1@x", 1, None, TWO, ""), peer, None)
            .unwrap();
        let tag = ok.to().unwrap().tag().unwrap().to_string();
        r.set_storage_critical(true);
        assert_eq!(r.refusing_because(), ["storage_critical"]);
        let no = r
            .on_request(now, &invite("s2@x", 1, None, TWO, ""), peer, None)
            .unwrap();
        assert_eq!(no.status(), Some(503));
        assert!(
            matches!(&no.start, crate::sip::StartLine::Response { reason, .. } if reason.contains("disk")),
            "{no:?}"
        );
        let opts = SipMessage::parse(
            b"OPTIONS sip:srs@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKo1\r\n\
              From: <sip:src@192.0.2.10>;tag=a\r\nTo: <sip:srs@127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n\
              Content-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            r.on_request(now, &opts, peer, None).unwrap().status(),
            Some(503)
        );
        // The call in progress goes on and ends normally.
        assert_eq!(r.active_recordings(), 1);
        assert_eq!(
            r.on_request(now, &bye("s1@x", &tag), peer, None)
                .unwrap()
                .status(),
            Some(200)
        );
        r.set_storage_critical(false);
        assert_eq!(
            r.on_request(now, &opts, peer, None).unwrap().status(),
            Some(200)
        );
    }

    #[test]
    fn max_calls_per_source_refuses_only_that_source() {
        const ONE: &str = "m=audio 20000 RTP/AVP 0\r\na=rtcp-mux\r\na=sendonly\r\n";
        let (mut r, _log, _engine) = recorder();
        r.reload(10, 2, false, None);
        let now = Instant::now();
        let sbc: SocketAddr = "192.0.2.10:5060".parse().unwrap();
        let other: SocketAddr = "192.0.2.20:5060".parse().unwrap();
        let call = |r: &mut Recorder, id: &str, from: SocketAddr| {
            r.on_request(now, &invite(id, 1, None, ONE, ""), from, None)
                .unwrap()
        };
        let a1 = call(&mut r, "a1", sbc);
        assert_eq!(a1.status(), Some(200));
        // Not yet acknowledged: a call being set up counts.
        assert_eq!(call(&mut r, "a2", sbc).status(), Some(200));
        assert_eq!(r.recordings_from(sbc.ip()), 2);
        let no = call(&mut r, "a3", sbc);
        assert_eq!(no.status(), Some(503));
        assert!(no.header("Retry-After").is_some());
        assert!(
            matches!(&no.start, crate::sip::StartLine::Response { reason, .. } if reason.contains("too many calls from this source")),
            "{no:?}"
        );
        // The source is its address, whatever the port (or transport).
        let sbc_other_port: SocketAddr = "192.0.2.10:5070".parse().unwrap();
        assert_eq!(call(&mut r, "a4", sbc_other_port).status(), Some(503));
        // Another source is not affected.
        assert_eq!(call(&mut r, "b1", other).status(), Some(200));
        assert_eq!(r.recordings_from(other.ip()), 1);
        // Calls in progress go on: a re-INVITE is not a new call.
        let tag = a1.to().unwrap().tag().unwrap().to_string();
        let re = r
            .on_request(now, &invite("a1", 2, Some(&tag), ONE, ""), sbc, None)
            .unwrap();
        assert_eq!(re.status(), Some(200));
        // A call that ends frees the source's slot.
        assert_eq!(
            r.on_request(now, &bye("a1", &tag), sbc, None)
                .unwrap()
                .status(),
            Some(200)
        );
        assert_eq!(call(&mut r, "a5", sbc).status(), Some(200));
        assert_eq!(call(&mut r, "a6", sbc).status(), Some(503));
        assert_eq!(r.counters().calls_rejected, 3);
        // Three refusals, one source: one entry in the log window.
        assert_eq!(r.refusal_log.tracked(), 1);
        // Reloaded to 0: no per-source limit.
        r.reload(10, 0, false, None);
        assert_eq!(call(&mut r, "a7", sbc).status(), Some(200));
        assert_eq!(r.recordings_from(sbc.ip()), 3);
    }
}
