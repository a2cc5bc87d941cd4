//! `name-addr` / `addr-spec` values of From, To, Contact, Route, Refer-To
//! (RFC 3261 §20.10, §25.1).

use super::syntax::{find_param, parse_params, split_outside_quotes, unquote};
use serde::Serialize;

/// A parsed `["display name"] <uri>;params` or `uri;params` value.
///
/// Without angle brackets everything after the first `;` is a header
/// parameter (RFC 3261 §20.10), so `sip:a@b;tag=1` has the tag as a param,
/// not as part of the URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameAddr {
    /// Unquoted, unescaped display name, if any.
    pub display_name: Option<String>,
    /// The URI without the brackets (may itself carry `;uri-params`).
    pub uri: String,
    /// Header parameters (`tag`, `+sip.src`, `expires`, ...), values unquoted.
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// Parses one value (not a comma-separated list). `None` when it is not a
    /// name-addr: empty URI, unbalanced quotes or brackets, trailing garbage.
    pub fn parse(value: &str) -> Option<NameAddr> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let (display_name, rest) = if value.starts_with('"') {
            let end = closing_quote(value)?;
            let quoted = value.get(..=end)?;
            (Some(unquote(quoted)), value.get(end + 1..)?.trim_start())
        } else if let Some(lt) = value.find('<') {
            let name = value.get(..lt)?.trim();
            let name = (!name.is_empty()).then(|| name.to_owned());
            (name, value.get(lt..)?)
        } else {
            // addr-spec: the URI runs to the first ';'.
            let (uri, params) = match value.find(';') {
                Some(semi) => (value.get(..semi)?, value.get(semi..)?),
                None => (value, ""),
            };
            let uri = uri.trim();
            if uri.is_empty() || uri.contains(char::is_whitespace) {
                return None;
            }
            return Some(NameAddr {
                display_name: None,
                uri: uri.to_owned(),
                params: parse_params(params),
            });
        };
        let inner = rest.strip_prefix('<')?;
        let gt = inner.find('>')?;
        let uri = inner.get(..gt)?.trim();
        let after = inner.get(gt + 1..)?.trim();
        if uri.is_empty() || !(after.is_empty() || after.starts_with(';')) {
            return None;
        }
        Some(NameAddr {
            display_name,
            uri: uri.to_owned(),
            params: parse_params(after),
        })
    }

    /// The `tag` parameter (dialog identification).
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").filter(|t| !t.is_empty())
    }

    /// A header parameter by case-insensitive name: `Some("")` for a flag
    /// such as `;+sip.src`.
    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.param(name).is_some()
    }

    /// The parameters inside the URI (`sip:a@b;user=phone;x-refci=1` →
    /// `user`, `x-refci`), up to any `?headers` part.
    pub fn uri_params(&self) -> Vec<(String, Option<String>)> {
        let uri = self.uri.split('?').next().unwrap_or("");
        match uri.find(';') {
            Some(semi) => parse_params(uri.get(semi..).unwrap_or("")),
            None => Vec::new(),
        }
    }

    /// A URI parameter by case-insensitive name (`Some("")` for a flag).
    pub fn uri_param(&self, name: &str) -> Option<String> {
        find_param(&self.uri_params(), name).map(str::to_owned)
    }

    /// The user part of a `sip:`/`sips:`/`tel:` URI (`sip:2000@host` →
    /// `2000`, `tel:+1555` → `+1555`).
    pub fn uri_user(&self) -> Option<&str> {
        let (_, rest) = self.uri.split_once(':')?;
        let rest = rest.split([';', '?']).next()?;
        let user = match rest.rfind('@') {
            Some(at) => rest.get(..at)?,
            None if self.uri.to_ascii_lowercase().starts_with("tel:") => rest,
            None => return None,
        };
        let user = user.split(':').next()?; // drop a password
        (!user.is_empty()).then_some(user)
    }
}

/// Index of the quote that closes the quoted string starting at index 0.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i);
        }
    }
    None
}

/// Parses every element of a comma-separated list of name-addrs (Contact,
/// Route). `None` if any element is malformed.
pub fn parse_name_addr_list<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Option<Vec<NameAddr>> {
    values
        .into_iter()
        .flat_map(|v| split_outside_quotes(v, ','))
        .map(NameAddr::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        let a =
            NameAddr::parse(r#""Alice \"A\" Smith" <sip:alice@192.0.2.1>;tag=1928301774"#).unwrap();
        assert_eq!(a.display_name.as_deref(), Some(r#"Alice "A" Smith"#));
        assert_eq!(a.uri, "sip:alice@192.0.2.1");
        assert_eq!(a.tag(), Some("1928301774"));

        let b = NameAddr::parse("Bob <sips:bob@example.com>").unwrap();
        assert_eq!(b.display_name.as_deref(), Some("Bob"));
        assert_eq!(b.tag(), None);

        let c = NameAddr::parse("sip:carol@example.com;tag=xyz;+sip.src").unwrap();
        assert_eq!(c.uri, "sip:carol@example.com");
        assert_eq!(c.tag(), Some("xyz"));
        assert!(c.has_param("+SIP.SRC"));
        assert_eq!(NameAddr::parse("*").unwrap().uri, "*");
    }

    #[test]
    fn uri_params_and_user() {
        let a =
            NameAddr::parse("<sip:2000@ucm1;x-nearend;x-refci=ci2; x-nearenddevice=deviceB>;tag=t")
                .unwrap();
        assert_eq!(a.uri_param("X-REFCI").as_deref(), Some("ci2"));
        assert_eq!(a.uri_param("x-nearend").as_deref(), Some(""));
        assert_eq!(a.uri_param("x-nearenddevice").as_deref(), Some("deviceB"));
        assert_eq!(a.uri_user(), Some("2000"));
        assert_eq!(
            NameAddr::parse("<tel:+15555550100>").unwrap().uri_user(),
            Some("+15555550100")
        );
        assert_eq!(NameAddr::parse("<sip:192.0.2.1>").unwrap().uri_user(), None);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "<>",
            "\"unterminated <sip:a@b>",
            "<sip:a@b",
            "<sip:a@b> junk",
            "sip:a b@c",
        ] {
            assert!(NameAddr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn parses_lists() {
        let list =
            parse_name_addr_list(["<sip:a@b>;expires=60, \"x,y\" <sip:c@d>", "sip:e@f"]).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[1].display_name.as_deref(), Some("x,y"));
        assert!(parse_name_addr_list(["<sip:a@b>, <"]).is_none());
    }
}
