//! Times on the command line: RFC 3339, or "that long ago" (`30m`, `2d`).

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

const EXPECTED: &str =
    "expected an RFC 3339 time (2024-05-01T08:00:00Z) or a time ago such as 30s, 30m, 1h, 2d, 1w, 1h30m";

/// A `--since`/`--until` value, relative to now.
pub fn parse_when(s: &str) -> Result<OffsetDateTime, String> {
    parse_when_at(s, OffsetDateTime::now_utc())
}

/// A `--since`/`--until` value, relative to `now`; always in UTC.
pub fn parse_when_at(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.to_offset(UtcOffset::UTC));
    }
    let ago = parse_ago(s).ok_or_else(|| EXPECTED.to_string())?;
    now.checked_sub(ago)
        .map(|t| t.to_offset(UtcOffset::UTC))
        .ok_or_else(|| format!("{s} ago is before the calendar starts"))
}

/// `1h30m` → 90 minutes. Units: s, m, h, d, w; at least one number+unit.
fn parse_ago(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(Duration::seconds(n.checked_mul(secs)?))?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Some(total)
}

/// RFC 3339 in UTC (`...Z`): no `+` that a query string would turn into a
/// space.
pub fn format_utc(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2024-05-10 12:00 UTC);

    #[test]
    fn relative_times_count_back_from_now() {
        assert_eq!(
            parse_when_at("30m", NOW),
            Ok(datetime!(2024-05-10 11:30 UTC))
        );
        assert_eq!(
            parse_when_at("1h", NOW),
            Ok(datetime!(2024-05-10 11:00 UTC))
        );
        assert_eq!(
            parse_when_at("2d", NOW),
            Ok(datetime!(2024-05-08 12:00 UTC))
        );
        assert_eq!(
            parse_when_at("1w", NOW),
            Ok(datetime!(2024-05-03 12:00 UTC))
        );
        assert_eq!(
            parse_when_at("1h30m", NOW),
            Ok(datetime!(2024-05-10 10:30 UTC))
        );
        assert_eq!(
            parse_when_at("45s", NOW),
            Ok(datetime!(2024-05-10 11:59:15 UTC))
        );
        assert_eq!(parse_when_at("0m", NOW), Ok(NOW));
    }

    #[test]
    fn absolute_times_become_utc() {
        assert_eq!(
            parse_when_at("2024-05-01T10:00:00+02:00", NOW),
            Ok(datetime!(2024-05-01 08:00 UTC))
        );
        assert_eq!(
            format_utc(datetime!(2024-05-01 10:00:00.5 +2)),
            "2024-05-01T08:00:00.5Z"
        );
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "h",
            "1",
            "1x",
            "1h 30m",
            "-1h",
            "yesterday",
            "2024-05-01",
            "99999999999999999999d",
        ] {
            let err = parse_when_at(bad, NOW).unwrap_err();
            assert!(
                err.contains("RFC 3339") || err.contains("calendar"),
                "{bad}: {err}"
            );
        }
    }
}
