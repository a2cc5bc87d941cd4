//! Call setup from SIP seen in a capture rather than terminated: an INVITE
//! and the 2xx that answers it define a recording and where its media
//! arrives; a BYE ends it. CUCM's two legs share one recording by x-refci.

use std::collections::HashMap;
use std::net::SocketAddr;

use mediafork_dataplane::demux::TrackRef;
use mediafork_dataplane::engine::{Binding, CallHandle, Engine};

use super::auto::AutoRecordings;
use crate::call_info::{call_setup, participants};
use crate::media_plan::plan_from_answer;
use crate::sdp::Sdp;
use crate::sip::{Method, SipMessage};
use crate::siprec::{classify_invite, metadata_in, InviteKind};

/// An INVITE waiting for its answer.
struct Offer {
    invite: SipMessage,
    kind: InviteKind,
}

struct Dialog {
    /// Key into `recordings`.
    recording: String,
    /// m-line index → (track, port the answer gave it).
    tracks: HashMap<usize, (TrackRef, SocketAddr)>,
}

struct Recording {
    handle: CallHandle,
    /// Dialogs still up that feed this recording (CUCM: two).
    legs: usize,
    metadata_versions: usize,
}

/// Counters of what the observer saw.
#[derive(Default, Debug, Clone, Copy)]
pub struct PassiveCounters {
    pub messages: u64,
    pub malformed: u64,
    pub unusable_invites: u64,
}

#[derive(Default)]
pub struct PassiveSip {
    offers: HashMap<(String, u32), Offer>,
    dialogs: HashMap<String, Dialog>,
    recordings: HashMap<String, Recording>,
    pub counters: PassiveCounters,
}

impl PassiveSip {
    /// Feed one SIP datagram seen at `ts_ns`.
    pub fn on_datagram(
        &mut self,
        engine: &Engine,
        auto: &mut AutoRecordings,
        bytes: &[u8],
        ts_ns: u64,
    ) {
        let msg = match SipMessage::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.counters.malformed += 1;
                tracing::debug!(error = %e, "malformed SIP in capture");
                return;
            }
        };
        self.counters.messages += 1;
        let Ok(call_id) = msg.call_id().map(str::to_string) else {
            return;
        };
        let Ok((cseq, cseq_method)) = msg.cseq() else {
            return;
        };
        if let Some(method) = msg.method() {
            match method {
                Method::Invite => match classify_invite(&msg) {
                    Ok(kind) => {
                        self.offers
                            .insert((call_id, cseq), Offer { invite: msg, kind });
                    }
                    Err(e) => {
                        self.counters.unusable_invites += 1;
                        tracing::debug!(error = %e, "INVITE in capture cannot be recorded");
                    }
                },
                Method::Bye => self.end_dialog(engine, &call_id, ts_ns),
                Method::Update => self.on_metadata_update(engine, &call_id, &msg),
                _ => {}
            }
            return;
        }
        let Some(code) = msg.status() else { return };
        if cseq_method != Method::Invite || code < 200 {
            return;
        }
        let Some(offer) = self.offers.remove(&(call_id.clone(), cseq)) else {
            return;
        };
        if code >= 300 {
            return;
        }
        let Ok(answer) = std::str::from_utf8(&msg.body)
            .map_err(|_| ())
            .and_then(|t| Sdp::parse(t).map_err(|_| ()))
        else {
            self.counters.unusable_invites += 1;
            return;
        };
        self.on_answer(engine, auto, call_id, offer, &answer, ts_ns);
    }

    fn on_answer(
        &mut self,
        engine: &Engine,
        auto: &mut AutoRecordings,
        call_id: String,
        offer: Offer,
        answer: &Sdp,
        ts_ns: u64,
    ) {
        let offer_sdp = offer.kind.sdp();
        let plans = plan_from_answer(answer, Some(offer_sdp));
        let range = engine.shared().demux.range();
        let metadata = match &offer.kind {
            InviteKind::Siprec {
                metadata: Some((raw, md)),
                ..
            } => Some((raw.clone(), md.clone())),
            _ => None,
        };
        // Which recording: the dialog's own, CUCM's sibling leg's, or new.
        let key = match (&offer.kind, self.dialogs.get(&call_id)) {
            (_, Some(d)) => d.recording.clone(),
            (InviteKind::Cucm { leg, .. }, None) => format!("refci:{}", leg.refci),
            _ => format!("call:{call_id}"),
        };
        let new_dialog = !self.dialogs.contains_key(&call_id);
        if !self.recordings.contains_key(&key) {
            let setup = call_setup(&offer.invite, &offer.kind, ts_ns);
            let Ok(handle) = engine.open_call(setup) else {
                return;
            };
            self.recordings.insert(
                key.clone(),
                Recording {
                    handle,
                    legs: 0,
                    metadata_versions: 0,
                },
            );
        }
        let Some(rec) = self.recordings.get_mut(&key) else {
            return;
        };
        if new_dialog {
            rec.legs += 1;
            self.dialogs.insert(
                call_id.clone(),
                Dialog {
                    recording: key.clone(),
                    tracks: HashMap::new(),
                },
            );
        }
        if let Some((raw, md)) = metadata {
            rec.metadata_versions += 1;
            let name = metadata_file_name(rec.metadata_versions);
            engine.write_call_file(&rec.handle, &name, raw);
            if rec.metadata_versions > 1 {
                let parts = participants(&md);
                engine.update_call(&rec.handle, move |m| m.participants = parts);
            }
        }
        let Some(dialog) = self.dialogs.get_mut(&call_id) else {
            return;
        };
        for plan in plans {
            let rtp = SocketAddr::new(plan.addr, plan.rtp_port);
            auto.mark_signalled(rtp);
            if let Some(p) = plan.rtcp_port {
                auto.mark_signalled(SocketAddr::new(plan.addr, p));
            }
            match dialog.tracks.get(&plan.index) {
                Some((track, port)) if *port != rtp => {
                    // Re-INVITE moved the stream: keep the track, add the port.
                    if let Err(e) = engine.bind(&rec.handle, *track, Binding::Port(rtp)) {
                        tracing::warn!(error = %e, "re-INVITE port not recordable");
                    }
                }
                Some(_) => {}
                None => {
                    let mut setup = plan.track_setup(range);
                    if let InviteKind::Cucm { leg, .. } = &offer.kind {
                        // One stream per CUCM leg: the near end's is track 0.
                        setup.index = Some(if leg.is_near_end() { 0 } else { 1 });
                    }
                    match engine.add_track(&rec.handle, setup) {
                        Ok(t) => {
                            dialog.tracks.insert(plan.index, (t, rtp));
                        }
                        Err(e) => tracing::warn!(error = %e, "stream not recordable"),
                    }
                }
            }
        }
    }

    fn on_metadata_update(&mut self, engine: &Engine, call_id: &str, msg: &SipMessage) {
        let Some(d) = self.dialogs.get(call_id) else {
            return;
        };
        let Some(rec) = self.recordings.get_mut(&d.recording) else {
            return;
        };
        if let Ok(Some((raw, md))) = metadata_in(msg) {
            rec.metadata_versions += 1;
            engine.write_call_file(&rec.handle, &metadata_file_name(rec.metadata_versions), raw);
            let parts = participants(&md);
            engine.update_call(&rec.handle, move |m| m.participants = parts);
        }
    }

    fn end_dialog(&mut self, engine: &Engine, call_id: &str, ts_ns: u64) {
        self.offers.retain(|(c, _), _| c != call_id);
        let Some(d) = self.dialogs.remove(call_id) else {
            return;
        };
        let Some(rec) = self.recordings.get_mut(&d.recording) else {
            return;
        };
        rec.legs = rec.legs.saturating_sub(1);
        if rec.legs == 0 {
            if let Some(rec) = self.recordings.remove(&d.recording) {
                let _ = engine.end_call(&rec.handle, ts_ns);
            }
        }
    }

    /// End what the capture left open (no BYE seen) at `ts_ns`.
    pub fn end_all(&mut self, engine: &Engine, ts_ns: u64) {
        self.dialogs.clear();
        for (_, rec) in self.recordings.drain() {
            engine.update_call(&rec.handle, |m| {
                m.extensions.insert(
                    "ended_by".into(),
                    serde_json::Value::String("capture_end".into()),
                );
            });
            let _ = engine.end_call(&rec.handle, ts_ns);
        }
    }
}

/// `metadata.xml`, then `metadata-2.xml`, ... for each version received.
pub fn metadata_file_name(version: usize) -> String {
    if version <= 1 {
        "metadata.xml".to_string()
    } else {
        format!("metadata-{version}.xml")
    }
}
