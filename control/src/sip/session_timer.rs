//! Session timers (RFC 4028) on the UAS side, sans IO.
//!
//! A recorder never wants to refresh a session itself: refreshing means
//! sending re-INVITE/UPDATE to the SBC. So [`negotiate`] makes the UAC the
//! refresher whenever RFC 4028 §9 lets the UAS choose, and only reports
//! [`Refresher::Uas`] when the request asks for it or the UAC cannot refresh.
//! [`SessionTimer`] then tells the TU when to give up on a session the SBC
//! stopped refreshing (§10) and send BYE, so a lost BYE cannot leave a
//! recording open forever.

use std::time::{Duration, Instant};

use thiserror::Error;

use super::txn::timers::later;
use super::SipMessage;

/// The lowest session interval anyone may use: §4 (Session-Expires) and §5
/// (Min-SE) both say it "MUST NOT be less than 90 seconds".
pub const MIN_SE_FLOOR: Duration = Duration::from_secs(90);

/// §10: the non-refresher sends BYE this long before expiry at most ("the
/// minimum of 32 seconds and one third of the session interval").
const BYE_MARGIN_CAP: Duration = Duration::from_secs(32);

/// Which side of the dialog sends the refreshes (§4 `refresher` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// A parsed `Session-Expires` (compact `x`) value: `delta-seconds
/// [;refresher=uac|uas]` (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub interval: Duration,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses one value. `None` when the delta-seconds is not a number; an
    /// unknown refresher value counts as absent (lenient, like the rest of
    /// the parser).
    pub fn parse(value: &str) -> Option<SessionExpires> {
        let mut parts = value.split(';');
        let interval = parse_delta_seconds(parts.next()?)?;
        let refresher = parts.find_map(|param| {
            let (name, value) = param.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("refresher") {
                return None;
            }
            match value.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(Refresher::Uac),
                "uas" => Some(Refresher::Uas),
                _ => None,
            }
        });
        Some(SessionExpires {
            interval,
            refresher,
        })
    }

    /// The message's Session-Expires (first field), if present and parseable.
    pub fn from_message(msg: &SipMessage) -> Option<SessionExpires> {
        msg.header("Session-Expires")
            .and_then(SessionExpires::parse)
    }
}

/// The message's `Min-SE` (§5): delta-seconds, parameters ignored.
pub fn parse_min_se(msg: &SipMessage) -> Option<Duration> {
    let value = msg.header("Min-SE")?;
    parse_delta_seconds(value.split(';').next()?)
}

/// `1*DIGIT`; values beyond 2^32-1 saturate, as RFC 3261 §20.19 says of
/// delta-seconds in Expires.
fn parse_delta_seconds(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = s.trim_start_matches('0');
    let secs = if digits.len() > 10 {
        u64::from(u32::MAX)
    } else {
        digits.parse::<u64>().unwrap_or(0).min(u64::from(u32::MAX))
    };
    Some(Duration::from_secs(secs))
}

/// The session timer agreed for a dialog: put it in the 2xx with
/// [`Negotiated::apply_to`] and run it with [`SessionTimer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub interval: Duration,
    pub refresher: Refresher,
}

impl Negotiated {
    /// Whether we (the UAS) must send the refreshes.
    pub fn we_refresh(&self) -> bool {
        self.refresher == Refresher::Uas
    }

    /// The `Session-Expires` value for the 2xx: `1800;refresher=uac`.
    pub fn header_value(&self) -> String {
        format!(
            "{};refresher={}",
            self.interval.as_secs(),
            self.refresher.as_str()
        )
    }

    /// Adds `Session-Expires`, `Supported: timer`, and `Require: timer` when
    /// the UAC refreshes (§9: "the UAS MUST place a Require header field
    /// into the response with the value 'timer'", so that the UAC cannot
    /// miss that it must refresh) to a 2xx.
    pub fn apply_to(&self, response: &mut SipMessage) {
        response.set_header("Session-Expires", self.header_value());
        if self.refresher == Refresher::Uac {
            add_option_tag(response, "Require", "timer");
        }
        add_option_tag(response, "Supported", "timer");
    }
}

/// Adds `tag` to the option-tag list header `name` unless already listed.
pub fn add_option_tag(msg: &mut SipMessage, name: &str, tag: &str) {
    let listed = msg
        .header_list(name)
        .iter()
        .any(|t| t.eq_ignore_ascii_case(tag));
    if !listed {
        msg.add_header(name, tag);
    }
}

/// The request's session interval is below our minimum: answer 422 with
/// our Min-SE (§6, §9) so that the UAC retries with a larger one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("session interval below the minimum of {} s", min_se.as_secs())]
pub struct TooSmall {
    pub min_se: Duration,
}

impl TooSmall {
    /// `422 Session Interval Too Small` with `Min-SE` (§6). The caller adds
    /// the To tag like for any final response.
    pub fn response(&self, req: &SipMessage) -> SipMessage {
        let mut resp = SipMessage::response(req, 422, "Session Interval Too Small");
        resp.add_header("Min-SE", self.min_se.as_secs().to_string());
        resp
    }
}

/// Decides the session timer for a dialog-creating (or refreshing) request
/// per RFC 4028 §9, for a UAS that refreshes only when it must.
///
/// `min_se` is our minimum, raised to [`MIN_SE_FLOOR`] if lower. `default`
/// is the interval we ask for when the request has no Session-Expires (only
/// possible if the UAC supports timers, since it must refresh).
///
/// - Session-Expires below our minimum: [`TooSmall`] (answer 422).
/// - Session-Expires present: its interval unchanged; the refresher is the
///   one requested, else the UAC if it supports timers (§9 lets the UAS
///   choose), else the UAS (§9: a UAC without timer support cannot refresh).
/// - No Session-Expires: with `default` and a UAC that supports timers, the
///   UAC refreshes at `max(default, min_se, the request's Min-SE)`;
///   otherwise no session timer (`Ok(None)`).
///
/// A malformed Session-Expires is treated as absent.
pub fn negotiate(
    req: &SipMessage,
    min_se: Duration,
    default: Option<Duration>,
) -> Result<Option<Negotiated>, TooSmall> {
    let min_se = min_se.max(MIN_SE_FLOOR);
    let uac_supports = req.supports("timer") || req.requires("timer");
    match SessionExpires::from_message(req) {
        Some(offer) if offer.interval < min_se => Err(TooSmall { min_se }),
        Some(offer) => {
            let refresher = match (offer.refresher, uac_supports) {
                (Some(requested), _) => requested,
                (None, true) => Refresher::Uac,
                (None, false) => Refresher::Uas,
            };
            Ok(Some(Negotiated {
                interval: offer.interval,
                refresher,
            }))
        }
        None => Ok(default.filter(|_| uac_supports).map(|default| {
            let floor = parse_min_se(req).unwrap_or(Duration::ZERO).max(min_se);
            Negotiated {
                interval: default.max(floor),
                refresher: Refresher::Uac,
            }
        })),
    }
}

/// The running session timer of one dialog, fed with the time of each
/// refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    last_refresh: Instant,
    negotiated: Negotiated,
}

impl SessionTimer {
    /// Starts when the 2xx that set the timer is sent.
    pub fn new(now: Instant, negotiated: Negotiated) -> SessionTimer {
        SessionTimer {
            last_refresh: now,
            negotiated,
        }
    }

    /// A session refresh succeeded (a 2xx to a re-INVITE or UPDATE in the
    /// dialog, §10): the session expiration moves to `now + interval`.
    pub fn refreshed(&mut self, now: Instant) {
        self.last_refresh = now;
    }

    /// A refresh that renegotiated the interval or refresher (§9 applies to
    /// every refresh request).
    pub fn renegotiated(&mut self, now: Instant, negotiated: Negotiated) {
        self.last_refresh = now;
        self.negotiated = negotiated;
    }

    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// When the session expires: the last refresh plus the interval.
    pub fn expiration(&self) -> Instant {
        later(self.last_refresh, self.negotiated.interval)
    }

    /// When to send BYE if no refresh has arrived. RFC 4028 §10: "If the
    /// side not performing refreshes does not receive a session refresh
    /// request before the session expiration, it SHOULD send a BYE to
    /// terminate the session, slightly before the session expiration. The
    /// minimum of 32 seconds and one third of the session interval is
    /// RECOMMENDED." So: `last + interval - min(32 s, interval / 3)`.
    ///
    /// This is also the give-up time when we are the refresher and our own
    /// refreshes fail.
    pub fn deadline(&self) -> Instant {
        let interval = self.negotiated.interval;
        let margin = BYE_MARGIN_CAP.min(interval / 3);
        later(self.last_refresh, interval.saturating_sub(margin))
    }

    /// Whether the deadline has passed without a refresh: send BYE.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.deadline()
    }

    /// When we are the refresher, when to send the refresh: "once half the
    /// session interval has elapsed" (§7.2, §9). `None` when the UAC refreshes.
    pub fn refresh_at(&self) -> Option<Instant> {
        self.negotiated
            .we_refresh()
            .then(|| later(self.last_refresh, self.negotiated.interval / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(extra: &str) -> SipMessage {
        let raw = format!(
            "INVITE sip:srs@198.51.100.20 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKst\r\n\
             From: <sip:src@192.0.2.10>;tag=a\r\n\
             To: <sip:srs@198.51.100.20>\r\n\
             Call-ID: st-1\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:src@192.0.2.10>\r\n\
             {extra}\r\n"
        );
        SipMessage::parse(raw.as_bytes()).unwrap()
    }

    const MIN: Duration = Duration::from_secs(90);
    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn parses_session_expires_and_min_se() {
        assert_eq!(
            SessionExpires::parse("1800;refresher=uac"),
            Some(SessionExpires {
                interval: secs(1800),
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(
            SessionExpires::parse(" 600 ; x=1 ; Refresher = UAS "),
            Some(SessionExpires {
                interval: secs(600),
                refresher: Some(Refresher::Uas)
            })
        );
        assert_eq!(
            SessionExpires::parse("90;refresher=proxy")
                .unwrap()
                .refresher,
            None
        );
        assert_eq!(
            SessionExpires::parse("99999999999999999999")
                .unwrap()
                .interval,
            secs(u64::from(u32::MAX))
        );
        for bad in ["", "abc", "-5", "1.5;refresher=uac", ";refresher=uac"] {
            assert_eq!(SessionExpires::parse(bad), None, "{bad}");
        }
        // Compact form `x`.
        let req = invite("Supported: timer\r\nx: 1200;refresher=uac\r\nMin-SE: 120;p=1\r\n");
        assert_eq!(
            SessionExpires::from_message(&req).map(|s| s.interval),
            Some(secs(1200))
        );
        assert_eq!(parse_min_se(&req), Some(secs(120)));
    }

    #[test]
    fn too_small_gets_422_with_our_min_se() {
        let req = invite("Supported: timer\r\nSession-Expires: 60\r\n");
        let err = negotiate(&req, secs(120), None).unwrap_err();
        assert_eq!(err, TooSmall { min_se: secs(120) });
        let resp = err.response(&req);
        assert_eq!(resp.status(), Some(422));
        assert_eq!(resp.header("Min-SE"), Some("120"));
        assert_eq!(
            err.to_string(),
            "session interval below the minimum of 120 s"
        );
        // Our minimum never goes below the RFC floor of 90 s.
        let req = invite("Session-Expires: 89\r\n");
        assert_eq!(
            negotiate(&req, secs(30), None),
            Err(TooSmall { min_se: secs(90) })
        );
        // Exactly the minimum is fine.
        let req = invite("Supported: timer\r\nSession-Expires: 90\r\n");
        assert_eq!(
            negotiate(&req, MIN, None).unwrap().unwrap().interval,
            secs(90)
        );
    }

    #[test]
    fn refresher_choice_per_section_9() {
        let cases = [
            // Requested refresher is copied.
            (
                "Supported: timer\r\nx: 1800;refresher=uac\r\n",
                Refresher::Uac,
            ),
            (
                "Supported: timer\r\nx: 1800;refresher=uas\r\n",
                Refresher::Uas,
            ),
            // Our choice when the UAC supports timers: the UAC.
            ("Supported: 100rel, timer\r\nx: 1800\r\n", Refresher::Uac),
            ("Require: timer\r\nx: 1800\r\n", Refresher::Uac),
            // A UAC without timer support cannot refresh (a proxy added SE).
            ("x: 1800\r\n", Refresher::Uas),
        ];
        for (headers, refresher) in cases {
            let negotiated = negotiate(&invite(headers), MIN, None).unwrap().unwrap();
            assert_eq!(negotiated.refresher, refresher, "{headers}");
            assert_eq!(negotiated.interval, secs(1800));
        }
    }

    #[test]
    fn no_session_expires_in_the_request() {
        // Nothing requested and no default: no timer.
        assert_eq!(
            negotiate(&invite("Supported: timer\r\n"), MIN, None),
            Ok(None)
        );
        // Default with a UAC that can refresh; raised to its Min-SE.
        let req = invite("Supported: timer\r\nMin-SE: 2000\r\n");
        assert_eq!(
            negotiate(&req, MIN, Some(secs(1800))),
            Ok(Some(Negotiated {
                interval: secs(2000),
                refresher: Refresher::Uac
            }))
        );
        assert_eq!(
            negotiate(&invite("Supported: timer\r\n"), MIN, Some(secs(1800)))
                .unwrap()
                .unwrap()
                .interval,
            secs(1800)
        );
        // A UAC that cannot refresh: we would have to, so no timer.
        assert_eq!(negotiate(&invite(""), MIN, Some(secs(1800))), Ok(None));
        // Malformed Session-Expires counts as absent.
        assert_eq!(negotiate(&invite("x: soon\r\n"), MIN, None), Ok(None));
    }

    #[test]
    fn applies_headers_to_the_2xx() {
        let req = invite("Supported: timer\r\nx: 1800\r\n");
        let negotiated = negotiate(&req, MIN, None).unwrap().unwrap();
        let mut ok = SipMessage::response(&req, 200, "OK");
        ok.add_header("Supported", "replaces, TIMER");
        negotiated.apply_to(&mut ok);
        negotiated.apply_to(&mut ok);
        assert_eq!(ok.header("Session-Expires"), Some("1800;refresher=uac"));
        assert_eq!(ok.require(), ["timer"]);
        assert_eq!(ok.supported(), ["replaces", "TIMER"]);

        let uas = Negotiated {
            interval: secs(600),
            refresher: Refresher::Uas,
        };
        let mut ok = SipMessage::response(&req, 200, "OK");
        uas.apply_to(&mut ok);
        assert_eq!(ok.header("x"), Some("600;refresher=uas"));
        assert!(ok.require().is_empty());
        assert!(ok.supports("timer"));
    }

    #[test]
    fn deadline_math_per_section_10() {
        let t0 = Instant::now();
        let timer = |n: u64| {
            SessionTimer::new(
                t0,
                Negotiated {
                    interval: secs(n),
                    refresher: Refresher::Uac,
                },
            )
        };
        // Long intervals: 32 s before expiry.
        assert_eq!(timer(1800).deadline(), t0 + secs(1768));
        assert_eq!(timer(1800).expiration(), t0 + secs(1800));
        // Short ones: a third before (90 s -> 60 s; 96 s -> 64 s).
        assert_eq!(timer(90).deadline(), t0 + secs(60));
        assert_eq!(timer(96).deadline(), t0 + secs(64));
        assert_eq!(timer(1800).refresh_at(), None);

        let mut st = timer(1800);
        assert!(!st.expired(t0 + secs(1767)));
        assert!(st.expired(t0 + secs(1768)));
        // A refresh moves the deadline.
        st.refreshed(t0 + secs(1000));
        assert!(!st.expired(t0 + secs(1768)));
        assert_eq!(st.deadline(), t0 + secs(2768));
        // Renegotiation changes interval and role.
        st.renegotiated(
            t0 + secs(2000),
            Negotiated {
                interval: secs(600),
                refresher: Refresher::Uas,
            },
        );
        assert_eq!(st.deadline(), t0 + secs(2568));
        assert_eq!(st.refresh_at(), Some(t0 + secs(2300)));
        assert!(st.negotiated().we_refresh());
        // Absurd intervals do not overflow.
        assert!(timer(u64::from(u32::MAX)).deadline() > t0);
    }
}
