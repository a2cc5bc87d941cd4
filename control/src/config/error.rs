//! Configuration errors, and turning TOML/serde errors into messages that
//! name the file, the line and the key.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// Why a configuration was refused. The `Display` form is the whole message
/// for the operator (file, line, key, problem and what to do), so callers
/// print it as it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type or form.
    #[error("{origin}:{line}:{column}: {}{message}", key_prefix(.key))]
    Parse {
        origin: String,
        line: usize,
        column: usize,
        /// Dotted path of the key the error is about, when it is known.
        key: Option<String>,
        message: String,
    },
    /// A key that no section has: usually a typo.
    #[error("{origin}:{line}:{column}: unknown key \"{key}\"{}", hint(.suggestion, .expected))]
    UnknownKey {
        origin: String,
        line: usize,
        column: usize,
        /// Dotted path of the unknown key.
        key: String,
        /// The closest valid key, if one is close.
        suggestion: Option<String>,
        /// The keys valid at that place.
        expected: Vec<String>,
    },
    /// The values are well-formed but do not make a working configuration.
    /// Every problem found is listed, not just the first.
    #[error("{}", ProblemList { origin, problems })]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
    /// The configuration could not be written as TOML (only possible for a
    /// value set in code that TOML cannot hold, e.g. an integer above
    /// `i64::MAX`).
    #[error("cannot write the configuration as TOML: {0}")]
    Serialize(String),
}

impl ConfigError {
    /// The dotted key paths the error is about (empty when unknown): for
    /// callers that highlight keys, and for tests.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            ConfigError::Parse { key, .. } => key.as_deref().into_iter().collect(),
            ConfigError::UnknownKey { key, .. } => vec![key.as_str()],
            ConfigError::Invalid { problems, .. } => {
                problems.iter().map(|p| p.key.as_str()).collect()
            }
            ConfigError::Read { .. } | ConfigError::Serialize(_) => Vec::new(),
        }
    }
}

fn key_prefix(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default()
}

fn hint(suggestion: &Option<String>, expected: &[String]) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean \"{s}\"?)"),
        None if expected.is_empty() => String::new(),
        None => format!("; valid keys here: {}", expected.join(", ")),
    }
}

/// One thing wrong with a configuration (or, from
/// [`Config::warnings`](super::Config::warnings), worth a look).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `media.rtp_ports`.
    pub key: String,
    /// Line of the key in the file, when it came from a file and is there.
    pub line: Option<usize>,
    /// What is wrong and what to do, e.g. `"43500-39500": the low port is
    /// above the high port`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// One problem per line, compiler style (`file:line: key: message`), so
/// editors can jump to each.
struct ProblemList<'a> {
    origin: &'a str,
    problems: &'a [Problem],
}

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match p.line {
                Some(line) => write!(f, "{}:{line}: {p}", self.origin)?,
                None => write!(f, "{}: {p}", self.origin)?,
            }
        }
        Ok(())
    }
}

/// Turns a `toml` error into a [`ConfigError`] naming `origin`, the line and
/// column, and the key path.
pub(crate) fn from_toml(err: &toml::de::Error, text: &str, origin: &str) -> ConfigError {
    let start = err.span().map(|s| s.start);
    let (line, column) = start.map_or((1, 1), |p| line_column(text, p));
    let index = start.and_then(|_| KeyIndex::build(text));
    let key = start.and_then(|p| index.as_ref().and_then(|ix| ix.key_at(p)));
    let message = err.message().trim_end().to_string();

    if let Some((name, expected)) = parse_unknown(&message, "unknown field") {
        let key = key.unwrap_or(name.clone());
        let suggestion = suggest_key(&key, &name, &expected);
        return ConfigError::UnknownKey {
            origin: origin.to_string(),
            line,
            column,
            key,
            suggestion,
            expected,
        };
    }
    let message = match parse_unknown(&message, "unknown variant") {
        Some((name, expected)) => {
            let quoted: Vec<String> = expected.iter().map(|e| format!("\"{e}\"")).collect();
            match closest(&name, expected.iter().map(String::as_str)) {
                Some(s) => format!(
                    "unknown value \"{name}\" (did you mean \"{s}\"?); valid values: {}",
                    quoted.join(", ")
                ),
                None => format!(
                    "unknown value \"{name}\"; valid values: {}",
                    quoted.join(", ")
                ),
            }
        }
        None => plain_words(&message),
    };
    ConfigError::Parse {
        origin: origin.to_string(),
        line,
        column,
        key,
        message,
    }
}

/// Serde's Rust type names in operator words, on one line: "expected
/// usize" means nothing to someone editing a TOML file.
fn plain_words(message: &str) -> String {
    let mut m = message
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    for (rust, plain) in [
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u8", "expected a whole number"),
        ("expected a sequence", "expected an array ([...])"),
    ] {
        if let Some(rest) = m.strip_suffix(rust) {
            m = format!("{rest}{plain}");
        }
    }
    if let Some(i) = m.find("expected struct ") {
        m = format!("{}expected a table", &m[..i]);
    }
    m
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_column(text: &str, pos: usize) -> (usize, usize) {
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Picks apart serde's `unknown field `x`, expected one of `a`, `b``
/// (and the `unknown variant` twin). The wording is serde's own and has
/// been stable for years; if it ever changes this returns `None` and the
/// message is passed through as it is.
fn parse_unknown(message: &str, what: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(what)?.strip_prefix(" `")?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((name.to_string(), expected))
}

/// A suggestion for an unknown key: a close spelling among the keys valid
/// at that place, or the same name in another section (a key put under the
/// wrong header).
fn suggest_key(path: &str, name: &str, expected: &[String]) -> Option<String> {
    if let Some(s) = closest(name, expected.iter().map(String::as_str)) {
        return Some(s.to_string());
    }
    super::known_keys()
        .into_iter()
        .find(|k| k != path && k.rsplit('.').next() == Some(name))
}

/// The candidate nearest to `name` by edit distance, if it is near enough
/// to be a typo (at most a third of the name, at least one edit).
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters, ASCII case ignored.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Where each key of a TOML document starts, by dotted path: finds the key
/// an error position belongs to, and the line of a key that failed
/// validation.
pub(crate) struct KeyIndex {
    /// (byte offset of the key, dotted path), sorted by offset.
    keys: Vec<(usize, String)>,
}

impl KeyIndex {
    /// `None` when the text does not parse as TOML, or holds a value the
    /// index cannot walk (a date-time): the message then goes without a key.
    pub(crate) fn build(text: &str) -> Option<KeyIndex> {
        let root: Node = toml::from_str(text).ok()?;
        let mut keys = Vec::new();
        root.collect("", &mut keys);
        keys.sort();
        Some(KeyIndex { keys })
    }

    /// The key a position belongs to: the last key that starts at or before
    /// it. An error about a value points into the value, which comes after
    /// its key and before the next one.
    pub(crate) fn key_at(&self, pos: usize) -> Option<String> {
        self.keys
            .iter()
            .take_while(|(start, _)| *start <= pos)
            .last()
            .map(|(_, k)| k.clone())
    }

    /// 1-based line where `key` is written, if it is in the document.
    pub(crate) fn line_of(&self, text: &str, key: &str) -> Option<usize> {
        self.keys
            .iter()
            .find(|(_, k)| k == key)
            .map(|(start, _)| line_column(text, *start).0)
    }
}

/// A TOML document as a tree of keys with their positions, values dropped.
enum Node {
    Table(Vec<(Spanned<String>, Node)>),
    Array(Vec<Node>),
    Leaf,
}

impl Node {
    fn collect(&self, prefix: &str, out: &mut Vec<(usize, String)>) {
        match self {
            Node::Table(entries) => {
                for (k, v) in entries {
                    let path = if prefix.is_empty() {
                        k.get_ref().clone()
                    } else {
                        format!("{prefix}.{}", k.get_ref())
                    };
                    out.push((k.span().start, path.clone()));
                    v.collect(&path, out);
                }
            }
            Node::Array(items) => {
                for item in items {
                    item.collect(prefix, out);
                }
            }
            Node::Leaf => {}
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any TOML value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Node::Table(entries))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}
