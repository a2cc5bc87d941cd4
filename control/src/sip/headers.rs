//! The header fields of a message, in wire order, looked up by name
//! case-insensitively and with RFC 3261 §7.3.3 compact forms (`i` = Call-ID,
//! ...) treated as their long names.

use super::syntax::split_outside_quotes;

/// One header field as received (or as set): the name keeps its spelling, the
/// value is unfolded and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// Header fields in order. Several fields may share a name; lookups see
/// `v` and `Via` as the same name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<Header>,
}

/// Compact header forms (RFC 3261 §7.3.3 and the extensions that define one).
const COMPACT_FORMS: [(char, &str); 19] = [
    ('i', "Call-ID"),
    ('f', "From"),
    ('t', "To"),
    ('v', "Via"),
    ('m', "Contact"),
    ('l', "Content-Length"),
    ('c', "Content-Type"),
    ('k', "Supported"),
    ('s', "Subject"),
    ('e', "Content-Encoding"),
    ('o', "Event"),
    ('r', "Refer-To"),
    ('x', "Session-Expires"),
    ('u', "Allow-Events"),
    ('a', "Accept-Contact"),
    ('j', "Reject-Contact"),
    ('d', "Request-Disposition"),
    ('b', "Referred-By"),
    ('y', "Identity"),
];

/// The long form of a header name: compact one-letter names are expanded,
/// anything else is returned unchanged (compare it case-insensitively).
pub fn long_name(name: &str) -> &str {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let c = c.to_ascii_lowercase();
        if let Some((_, long)) = COMPACT_FORMS.iter().find(|(short, _)| *short == c) {
            return long;
        }
    }
    name
}

/// Whether two header names denote the same header.
pub fn same_name(a: &str, b: &str) -> bool {
    long_name(a).eq_ignore_ascii_case(long_name(b))
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|h| same_name(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every value of `name`, one per header field, in order (a field holding
    /// a comma-separated list is one item; see [`Headers::get_list`]).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |h| same_name(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every comma-separated element of every `name` field, split outside
    /// quoted strings and `<...>`: for list headers such as Via, Contact,
    /// Require, Supported, Record-Route. Do not use it for headers whose
    /// values contain bare commas (Date, WWW-Authenticate).
    pub fn get_list<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        self.get_all(name)
            .flat_map(|v| split_outside_quotes(v, ','))
            .collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Replaces the first `name` field's value (keeping its position) and
    /// removes the others; appends the field if absent.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.entries.iter().position(|h| same_name(&h.name, name)) {
            Some(first) => {
                if let Some(h) = self.entries.get_mut(first) {
                    h.value = value;
                }
                let mut index = 0;
                self.entries.retain(|h| {
                    let keep = index <= first || !same_name(&h.name, name);
                    index += 1;
                    keep
                });
            }
            None => self.add(name, value),
        }
    }

    /// Appends a field (after any existing field of the same name).
    pub fn add(&mut self, name: &str, value: impl Into<String>) {
        self.entries.push(Header {
            name: name.to_owned(),
            value: value.into(),
        });
    }

    /// Removes every `name` field; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|h| !same_name(&h.name, name));
        before - self.entries.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive_lookup() {
        let mut h = Headers::new();
        h.add("i", "abc@host");
        h.add("v", "SIP/2.0/UDP a;branch=z9hG4bK1");
        h.add("VIA", "SIP/2.0/UDP b;branch=z9hG4bK2, SIP/2.0/UDP c");
        assert_eq!(h.get("call-id"), Some("abc@host"));
        assert_eq!(h.get("I"), Some("abc@host"));
        assert_eq!(h.get_all("Via").count(), 2);
        assert_eq!(h.get_list("v").len(), 3);
        assert!(!h.contains("Contact"));
    }

    #[test]
    fn set_replaces_in_place_and_remove_counts() {
        let mut h = Headers::new();
        h.add("Via", "1");
        h.add("To", "x");
        h.add("v", "2");
        h.set("via", "3");
        let names: Vec<_> = h
            .iter()
            .map(|x| (x.name.as_str(), x.value.as_str()))
            .collect();
        assert_eq!(names, vec![("Via", "3"), ("To", "x")]);
        h.set("Contact", "<sip:a@b>");
        assert_eq!(h.len(), 3);
        assert_eq!(h.remove("m"), 1);
        assert_eq!(h.remove("m"), 0);
    }
}
