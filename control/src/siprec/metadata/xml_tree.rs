//! A small, bounded element tree built with quick-xml. Metadata documents are
//! tiny (a few KiB), and a tree lets the interpreter accept the elements in
//! any order and in any vendor's nesting, which a streaming match would not.
//!
//! Hardening: DOCTYPE (and so any entity declaration) is refused, undeclared
//! entity references are an error (quick-xml only knows the five predefined
//! ones and character references), nesting, element count and size are
//! capped, and the document must be UTF-8.

use super::MetadataError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Largest metadata document accepted.
pub const MAX_METADATA_LEN: usize = 1024 * 1024;
/// Deepest element nesting accepted (RFC 7865 documents need about 5).
pub const MAX_DEPTH: usize = 32;
/// Most elements accepted: a 100-party conference needs about 2,000; the cap
/// bounds the tree's memory at a small multiple of the document size.
pub const MAX_ELEMENTS: usize = 20_000;

/// Namespaces whose prefix is dropped from element names: RFC 7865's and the
/// pre-RFC draft's (`urn:ietf:params:xml:ns:recording` without `:1`).
const RECORDING_NS: &[u8] = b"urn:ietf:params:xml:ns:recording";

#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    /// Local name (`participant`), for matching.
    pub local: String,
    /// Name for reporting extensions: `prefix:local` when the element is in a
    /// foreign namespace (`apkt:ucid`), else just the local name (so Ribbon's
    /// `tns:` prefix on the recording namespace disappears).
    pub name: String,
    /// Attributes by local name (namespace declarations dropped), unescaped.
    pub attrs: Vec<(String, String)>,
    /// Concatenated, unescaped text content directly inside the element.
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// An attribute value by case-insensitive local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first of several attribute spellings that is present.
    pub fn attr_any(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.attr(n))
    }

    /// Whether the local name is `name` (case-insensitive: vendors vary it).
    pub fn is(&self, name: &str) -> bool {
        self.local.eq_ignore_ascii_case(name)
    }

    /// Trimmed text, `None` if blank.
    pub fn text(&self) -> Option<String> {
        let t = self.text.trim();
        (!t.is_empty()).then(|| t.to_owned())
    }

    /// Trimmed text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.children
            .iter()
            .find(|c| c.is(name))
            .and_then(Element::text)
    }
}

fn xml_error(e: impl std::fmt::Display) -> MetadataError {
    MetadataError::Xml(crate::sip::syntax::excerpt(&e.to_string(), 120))
}

/// Parses `xml` into its root element.
pub(crate) fn parse_tree(xml: &[u8]) -> Result<Element, MetadataError> {
    if xml.len() > MAX_METADATA_LEN {
        return Err(MetadataError::TooLarge {
            len: xml.len(),
            max: MAX_METADATA_LEN,
        });
    }
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    let text = std::str::from_utf8(xml).map_err(|_| MetadataError::NotUtf8)?;
    // Belt and braces: quick-xml reports DOCTYPE as an event, but refuse any
    // declaration-looking markup outright so no later change can expand it.
    let lower = text.to_ascii_lowercase();
    if lower.contains("<!doctype") || lower.contains("<!entity") {
        return Err(MetadataError::DoctypeForbidden);
    }
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(xml_error)?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(MetadataError::Xml(
                    "content after the root element".to_owned(),
                ));
            }
            Event::Start(start) => {
                check_size(&stack, &mut elements)?;
                stack.push(element(&ns, &start)?);
            }
            Event::Empty(start) => {
                check_size(&stack, &mut elements)?;
                let el = element(&ns, &start)?;
                close(el, &mut stack, &mut root);
            }
            Event::End(_) => {
                // quick-xml checks that end names match their start.
                let el = stack
                    .pop()
                    .ok_or_else(|| MetadataError::Xml("unexpected closing tag".to_owned()))?;
                close(el, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let t = t.unescape().map_err(xml_error)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&t),
                    None if t.trim().is_empty() => {}
                    None => {
                        return Err(MetadataError::Xml(
                            "text outside the root element".to_owned(),
                        ))
                    }
                }
            }
            Event::CData(c) => {
                let c = c.decode().map_err(xml_error)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&c),
                    None => {
                        return Err(MetadataError::Xml(
                            "text outside the root element".to_owned(),
                        ))
                    }
                }
            }
            Event::DocType(_) => return Err(MetadataError::DoctypeForbidden),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(MetadataError::Xml(format!(
            "document ends inside <{}>",
            crate::sip::syntax::excerpt(&open.local, 40)
        )));
    }
    root.ok_or(MetadataError::Empty)
}

/// Enforces [`MAX_DEPTH`] and [`MAX_ELEMENTS`] before opening an element.
fn check_size(stack: &[Element], elements: &mut usize) -> Result<(), MetadataError> {
    if stack.len() >= MAX_DEPTH {
        return Err(MetadataError::TooDeep { max: MAX_DEPTH });
    }
    *elements += 1;
    if *elements > MAX_ELEMENTS {
        return Err(MetadataError::TooManyElements { max: MAX_ELEMENTS });
    }
    Ok(())
}

/// Attaches a finished element to its parent, or makes it the root.
fn close(el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn element(ns: &ResolveResult, start: &BytesStart) -> Result<Element, MetadataError> {
    let qname = start.name();
    let local = String::from_utf8_lossy(qname.local_name().as_ref()).into_owned();
    let in_recording_ns =
        matches!(ns, ResolveResult::Bound(n) if n.as_ref().starts_with(RECORDING_NS));
    let name = match qname.prefix() {
        Some(prefix) if !in_recording_ns => {
            format!("{}:{}", String::from_utf8_lossy(prefix.as_ref()), local)
        }
        _ => local.clone(),
    };
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(xml_error)?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let value = attr.unescape_value().map_err(xml_error)?;
        attrs.push((
            String::from_utf8_lossy(key.local_name().as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(Element {
        local,
        name,
        attrs,
        text: String::new(),
        children: Vec::new(),
    })
}
