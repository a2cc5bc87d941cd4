//! What a recording is on disk: its directory, `meta.json`, and the
//! start-up pass that repairs recordings a crash left open.

pub mod layout;
pub mod meta;
pub mod recovery;
