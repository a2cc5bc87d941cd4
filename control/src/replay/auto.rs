//! Recordings for RTP that arrives with no signalling in the capture: one
//! recording per destination (address, port), one track per SSRC, codecs
//! from the static payload types.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use mediafork_dataplane::engine::{Binding, CallHandle, CallSetup, Engine, TrackSetup};

#[derive(Default)]
pub struct AutoRecordings {
    by_dst: HashMap<SocketAddr, CallHandle>,
    /// Destinations that belonged to a signalled call: their strays are
    /// late packets of that call, never a new recording.
    signalled: HashSet<SocketAddr>,
}

impl AutoRecordings {
    /// Remember that `dst` was negotiated in SIP.
    pub fn mark_signalled(&mut self, dst: SocketAddr) {
        self.signalled.insert(dst);
    }

    /// Create a track for a stream to `dst` with `ssrc`. Returns false when
    /// the packet should stay an unknown-port drop.
    pub fn adopt(&mut self, engine: &Engine, dst: SocketAddr, ssrc: u32, ts_ns: u64) -> bool {
        if self.signalled.contains(&dst) {
            return false;
        }
        let handle = match self.by_dst.get(&dst) {
            Some(h) => h.clone(),
            None => {
                let setup = CallSetup {
                    source: "rtp".into(),
                    started_at_ns: ts_ns,
                    ..CallSetup::default()
                };
                let Ok(h) = engine.open_call(setup) else {
                    return false;
                };
                let dest = dst.to_string();
                engine.update_call(&h, move |m| {
                    m.extensions
                        .insert("destination".into(), serde_json::Value::String(dest));
                });
                self.by_dst.insert(dst, h.clone());
                h
            }
        };
        let setup = TrackSetup {
            index: None,
            label: Some(format!("ssrc-{ssrc:08x}")),
            payload_types: Vec::new(),
            bindings: vec![Binding::Ssrc(dst, ssrc)],
            srtp: None,
            // A capture replays whatever it holds; the SSRC already
            // separates streams on the shared port.
            source: mediafork_dataplane::source_lock::SourcePolicy::Any,
        };
        match engine.add_track(&handle, setup) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(%dst, ssrc, error = %e, "cannot record stream without signalling");
                false
            }
        }
    }

    /// End every recording at `ts_ns`.
    pub fn end_all(&mut self, engine: &Engine, ts_ns: u64) {
        for (_, h) in self.by_dst.drain() {
            let _ = engine.end_call(&h, ts_ns);
        }
    }
}
