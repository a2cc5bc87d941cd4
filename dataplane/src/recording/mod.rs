//! What a recording is on disk: its directory, `meta.json`, the
//! start-up pass that repairs recordings a crash left open, and the sealed
//! (encrypted) form of its files.

pub mod layout;
pub mod meta;
pub mod recovery;
pub mod sealed;
