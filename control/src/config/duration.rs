//! Durations as the configuration file writes them: `"500ms"`, `"30s"`,
//! `"2m"`, `"1h"`, or sums such as `"1m30s"`.
//!
//! A unit is mandatory. A bare `30` is ambiguous — SIP timers are usually
//! given in seconds, RTP buffers in milliseconds — and guessing wrong by a
//! factor of 1000 is the kind of mistake that only shows up in production.

use std::time::Duration;

/// The accepted units, in milliseconds, longest name first so that `"ms"`
/// is matched before `"m"`.
const UNITS: [(&str, u64); 4] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

const HOW: &str =
    "write a whole number and a unit: ms, s, m or h (e.g. \"500ms\", \"30s\", \"1m30s\")";

/// Parses a duration such as `"500ms"`, `"30s"`, `"2m"`, `"1h"` or
/// `"1h30m"`. Zero (`"0s"`) parses; whether zero is allowed is up to the key.
///
/// The error is a sentence for the operator that quotes the input.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("\"{text}\" is not a duration: {HOW}"));
    }
    if s.starts_with('-') {
        return Err(format!(
            "\"{text}\" is negative: durations cannot be negative"
        ));
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("\"{text}\" is not a duration: {HOW}"));
        }
        let (number, after) = rest.split_at(digits);
        if after.starts_with('.') || after.starts_with(',') {
            return Err(format!(
                "\"{text}\" has a fraction: use a smaller unit instead (e.g. \"1500ms\" for 1.5 s)"
            ));
        }
        let Some(&(unit, unit_ms)) = UNITS.iter().find(|(u, _)| {
            after.starts_with(u) && !after[u.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
        }) else {
            let what = if after.is_empty() {
                "has no unit"
            } else {
                "has an unknown unit"
            };
            return Err(format!("\"{text}\" {what}: {HOW}"));
        };
        let value: u64 = number
            .parse()
            .map_err(|_| format!("\"{text}\" is too large"))?;
        total_ms = value
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("\"{text}\" is too large"))?;
        rest = &after[unit.len()..];
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration in the largest unit that represents it exactly, so
/// that [`parse_duration`] gives it back: `"30m"`, `"90s"`, `"200ms"`.
///
/// The file cannot express less than a millisecond; a sub-millisecond
/// remainder (only possible for a value set in code) is rounded up so that
/// a small positive duration never turns into zero.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if d.subsec_nanos() % 1_000_000 != 0 {
        ms += 1;
    }
    if ms == 0 {
        return "0s".to_string();
    }
    for (unit, unit_ms) in UNITS.iter().rev() {
        let unit_ms = u128::from(*unit_ms);
        if ms % unit_ms == 0 {
            return format!("{}{unit}", ms / unit_ms);
        }
    }
    format!("{ms}ms")
}
