//! Cisco Unified CM network-based recording (built-in bridge / "BIB").
//!
//! CUCM sends no SIPREC metadata. For each recorded call it sends the recorder
//! **two** plain INVITEs (two separate dialogs): one whose media is the
//! near-end party's voice and one whose media is the far-end party's voice,
//! both forked by the near-end (recording-enabled) phone. The call is
//! described by parameters in the From header (the "SIP header enhancement"
//! of CUCM 8.5 and later), documented by Cisco like this:
//!
//! ```text
//! From: <sip:2000@ucm1;x-nearend;x-refci=ci2;x-nearenddevice=deviceB;
//!        x-farendrefci=ci1;x-farenddevice=deviceA;x-farendaddr=1000>;tag=fromtag1
//! From: <sip:2000@ucm1;x-farend;x-refci=ci2;x-nearenddevice=deviceB;
//!        x-farendrefci=ci1;x-farenddevice=deviceA;x-farendaddr=1000>;tag=fromtag2
//! ```
//!
//! What this module assumes, and why:
//! - The parameters are **URI parameters** (inside `<...>`), as Cisco's
//!   examples show; header parameters (after `>`) are also accepted, in case a
//!   CUBE or SBC normalisation moved them.
//! - The flag parameter `x-nearend` or `x-farend` says whose voice *this*
//!   INVITE carries. It is the only per-INVITE difference besides the dialog
//!   identifiers; without it the stream is unknown.
//! - `x-refci` is the call-leg id of the **near-end** party (the
//!   recording-enabled line) and is the same in both INVITEs: it is the key to
//!   pair them. `x-farendrefci` is the far-end leg's id.
//! - The From user part is the near-end party's directory number in both
//!   INVITEs; it is used as the near-end DN when `x-nearendaddr` is absent
//!   (Cisco's own examples omit it). `x-farendaddr` is the far-end DN.
//! - `x-nearendclusterid`/`x-farendclusterid` appear when the parties are in
//!   different clusters; they are optional.
//! - Mid-call changes (transfer, conference, forwarding to another far end)
//!   arrive as re-INVITE or UPDATE with new `x-farend*` values and the same
//!   `x-refci`, so [`CucmLeg::from_message`] accepts any request.

use crate::sip::syntax::find_param;
use crate::sip::{NameAddr, SipMessage};
use serde::Serialize;

/// Whose voice an INVITE from CUCM carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CucmStream {
    /// The recording-enabled party (typically the agent).
    NearEnd,
    /// The party the near end is talking to (typically the customer).
    FarEnd,
}

/// One end of the recorded call as CUCM describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// CUCM call-leg reference (`x-refci` for the near end,
    /// `x-farendrefci` for the far end).
    pub refci: Option<String>,
    /// `x-nearendclusterid` / `x-farendclusterid`.
    pub cluster_id: Option<String>,
    /// Device name (`SEP001122334455`, a trunk or gateway name).
    pub device: Option<String>,
    /// Directory number (`x-nearendaddr` / `x-farendaddr`; for the near end,
    /// the From user part when the parameter is absent).
    pub addr: Option<String>,
}

/// The recording leg described by one CUCM INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CucmLeg {
    /// `x-refci`: identical in the near-end and far-end INVITEs of one call;
    /// pair them on it (together with the near-end cluster id across clusters).
    pub refci: String,
    /// Whose voice this INVITE's media is; `None` without an `x-nearend` or
    /// `x-farend` flag.
    pub stream: Option<CucmStream>,
    pub near_end: Endpoint,
    pub far_end: Endpoint,
}

impl CucmLeg {
    /// The leg described by the From header, if it carries `x-refci`.
    pub fn from_message(msg: &SipMessage) -> Option<CucmLeg> {
        Self::from_name_addr(&msg.from().ok()?)
    }

    /// The leg described by a From value.
    pub fn from_name_addr(from: &NameAddr) -> Option<CucmLeg> {
        let uri_params = from.uri_params();
        let get = |name: &str| -> Option<String> {
            find_param(&uri_params, name)
                .or_else(|| from.param(name))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let has = |name: &str| find_param(&uri_params, name).is_some() || from.has_param(name);
        let refci = get("x-refci")?;
        let stream = match (has("x-nearend"), has("x-farend")) {
            (true, false) => Some(CucmStream::NearEnd),
            (false, true) => Some(CucmStream::FarEnd),
            _ => None,
        };
        Some(CucmLeg {
            near_end: Endpoint {
                refci: Some(refci.clone()),
                cluster_id: get("x-nearendclusterid"),
                device: get("x-nearenddevice"),
                addr: get("x-nearendaddr").or_else(|| from.uri_user().map(str::to_owned)),
            },
            far_end: Endpoint {
                refci: get("x-farendrefci"),
                cluster_id: get("x-farendclusterid"),
                device: get("x-farenddevice"),
                addr: get("x-farendaddr"),
            },
            refci,
            stream,
        })
    }

    /// Whether this INVITE carries the near-end party's voice (`x-nearend`).
    /// `false` when the flag is absent as well as for the far end: check
    /// [`CucmLeg::stream`] to tell those apart.
    pub fn is_near_end(&self) -> bool {
        self.stream == Some(CucmStream::NearEnd)
    }

    /// Whether this INVITE carries the far-end party's voice (`x-farend`).
    pub fn is_far_end(&self) -> bool {
        self.stream == Some(CucmStream::FarEnd)
    }

    /// The endpoint whose voice this INVITE carries, if known.
    pub fn speaker(&self) -> Option<&Endpoint> {
        match self.stream? {
            CucmStream::NearEnd => Some(&self.near_end),
            CucmStream::FarEnd => Some(&self.far_end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEAR: &[u8] = include_bytes!("../../tests/fixtures/sip/cucm_nearend_invite.sip");
    const FAR: &[u8] = include_bytes!("../../tests/fixtures/sip/cucm_farend_invite.sip");

    #[test]
    fn near_and_far_end_invites_pair_on_refci() {
        let near = CucmLeg::from_message(&SipMessage::parse(NEAR).unwrap()).unwrap();
        let far = CucmLeg::from_message(&SipMessage::parse(FAR).unwrap()).unwrap();
        assert_eq!(near.refci, "25463731");
        assert_eq!(near.refci, far.refci);
        assert_eq!(near.stream, Some(CucmStream::NearEnd));
        assert_eq!(far.stream, Some(CucmStream::FarEnd));
        assert!(near.is_near_end() && !near.is_far_end());
        assert!(far.is_far_end() && !far.is_near_end());
        assert_eq!(near.near_end.device.as_deref(), Some("SEP0022905C7710"));
        assert_eq!(near.near_end.addr.as_deref(), Some("2000"));
        assert_eq!(
            near.near_end.cluster_id.as_deref(),
            Some("StandAloneCluster")
        );
        assert_eq!(near.far_end.refci.as_deref(), Some("25463730"));
        assert_eq!(near.far_end.device.as_deref(), Some("SEP003094C2D343"));
        assert_eq!(near.far_end.addr.as_deref(), Some("1000"));
        assert_eq!(far.speaker().and_then(|e| e.addr.as_deref()), Some("1000"));
        assert_eq!(near.speaker().and_then(|e| e.addr.as_deref()), Some("2000"));
        assert_eq!(near.near_end, far.near_end);
        assert_eq!(near.far_end, far.far_end);
    }

    #[test]
    fn cisco_documented_form_without_nearendaddr() {
        let from = NameAddr::parse(
            "<sip:2000@ucm1;x-farend;x-refci=ci2;x-nearenddevice=deviceB; x-farendrefci=ci1;x-farenddevice=deviceA;x-farendaddr=1000>;tag=fromtag2",
        )
        .unwrap();
        let leg = CucmLeg::from_name_addr(&from).unwrap();
        assert_eq!(leg.refci, "ci2");
        assert_eq!(leg.stream, Some(CucmStream::FarEnd));
        assert_eq!(leg.near_end.addr.as_deref(), Some("2000"), "From user part");
        assert_eq!(leg.near_end.cluster_id, None);
        assert_eq!(leg.far_end.refci.as_deref(), Some("ci1"));
    }

    #[test]
    fn header_params_and_absent_refci() {
        let from =
            NameAddr::parse("<sip:3000@192.0.2.60>;tag=1;x-refci=77;x-nearend;x-farendaddr=4000")
                .unwrap();
        let leg = CucmLeg::from_name_addr(&from).unwrap();
        assert_eq!(leg.refci, "77");
        assert_eq!(leg.stream, Some(CucmStream::NearEnd));
        assert_eq!(leg.far_end.addr.as_deref(), Some("4000"));
        assert!(
            CucmLeg::from_name_addr(&NameAddr::parse("<sip:3000@192.0.2.60>;tag=1").unwrap())
                .is_none()
        );
        assert!(CucmLeg::from_name_addr(
            &NameAddr::parse("<sip:3000@192.0.2.60;x-refci=>").unwrap()
        )
        .is_none());
        let both = NameAddr::parse("<sip:1@h;x-refci=5;x-nearend;x-farend>").unwrap();
        assert_eq!(CucmLeg::from_name_addr(&both).unwrap().stream, None);
    }
}
