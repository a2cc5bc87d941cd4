//! `Content-Type` media types (RFC 3261 §20.15, RFC 2045 §5.1).

use super::syntax::{is_token, parse_params};
use super::SipParseError;
use std::fmt;

/// A parsed media type: `type/subtype` lowercased, parameter names
/// lowercased, parameter values unquoted (a boundary keeps its case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// Lowercased `type/subtype`, e.g. `multipart/mixed`.
    pub mime_type: String,
    /// `(lowercased name, unquoted value)`; valueless parameters get `""`.
    pub params: Vec<(String, String)>,
}

impl ContentType {
    /// Parses a Content-Type value; error `malformed Content-Type header`
    /// when `type/subtype` is not two tokens.
    pub fn parse(value: &str) -> Result<ContentType, SipParseError> {
        let malformed = SipParseError::MalformedHeader("Content-Type");
        let (essence, params) = match value.find(';') {
            Some(semi) => (
                value.get(..semi).unwrap_or(""),
                value.get(semi..).unwrap_or(""),
            ),
            None => (value, ""),
        };
        let (top, sub) = essence.trim().split_once('/').ok_or(malformed.clone())?;
        let (top, sub) = (top.trim(), sub.trim());
        if !is_token(top) || !is_token(sub) {
            return Err(malformed);
        }
        Ok(ContentType {
            mime_type: format!("{top}/{sub}").to_ascii_lowercase(),
            params: parse_params(params)
                .into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.unwrap_or_default()))
                .collect(),
        })
    }

    /// A parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The multipart boundary (unquoted, case preserved).
    pub fn boundary(&self) -> Option<&str> {
        self.param("boundary").filter(|b| !b.is_empty())
    }

    /// Whether this is any `multipart/*` type.
    pub fn is_multipart(&self) -> bool {
        self.mime_type.starts_with("multipart/")
    }

    /// Whether the media type is `mime_type` (case-insensitive, no params).
    pub fn is(&self, mime_type: &str) -> bool {
        self.mime_type.eq_ignore_ascii_case(mime_type)
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mime_type)?;
        for (name, value) in &self.params {
            if is_token(value) {
                write!(f, ";{name}={value}")?;
            } else {
                let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, ";{name}=\"{escaped}\"")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_and_unquoted_boundaries() {
        let ct =
            ContentType::parse(r#"Multipart/Mixed; Boundary="uniqueBoundary:1 2";charset=UTF-8"#)
                .unwrap();
        assert_eq!(ct.mime_type, "multipart/mixed");
        assert_eq!(ct.boundary(), Some("uniqueBoundary:1 2"));
        assert_eq!(ct.param("CHARSET"), Some("UTF-8"));
        assert!(ct.is_multipart());
        let ct = ContentType::parse("multipart/mixed;boundary=foobar").unwrap();
        assert_eq!(ct.boundary(), Some("foobar"));
        assert_eq!(ct.to_string(), "multipart/mixed;boundary=foobar");
        assert!(ContentType::parse("application/sdp")
            .unwrap()
            .is("APPLICATION/SDP"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "application",
            "/sdp",
            "application/",
            "appli cation/sdp",
            "a/b c",
        ] {
            assert_eq!(
                ContentType::parse(bad),
                Err(SipParseError::MalformedHeader("Content-Type")),
                "{bad}"
            );
        }
    }

    #[test]
    fn display_quotes_non_tokens() {
        let ct = ContentType::parse("multipart/mixed;boundary=\"a b\"").unwrap();
        assert_eq!(ct.to_string(), "multipart/mixed;boundary=\"a b\"");
    }
}
