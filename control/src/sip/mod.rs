//! SIP messages (RFC 3261), sans IO: parse one message from a datagram or a
//! framed stream slice, read the headers the recorder needs, build responses.
//! No transactions or dialogs here.
//!
//! Parsing is strict about framing (start line, header syntax,
//! Content-Length) and lenient about content that real SBCs get wrong but
//! that does not change meaning: bare-LF line endings, compact header names,
//! folded lines, odd case, non-UTF-8 bytes in header values (replaced).
//! Nothing panics on any input; limits ([`ParseLimits`]) bound memory.

mod content_type;
mod error;
pub mod framing;
mod head;
mod headers;
mod limits;
mod message;
mod method;
mod name_addr;
pub mod session_timer;
pub(crate) mod syntax;
pub mod txn;

pub use content_type::ContentType;
pub use error::SipParseError;
pub use headers::{long_name, same_name, Header, Headers};
pub use limits::ParseLimits;
pub use message::{SipMessage, StartLine};
pub use method::Method;
pub use name_addr::{parse_name_addr_list, NameAddr};

#[cfg(test)]
mod tests;
