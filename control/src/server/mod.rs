//! `mediafork run`: the live recording server. A sans-IO core (transaction
//! layer + [`recorder::Recorder`]) driven by a thin tokio layer that owns the
//! sockets.

pub mod admin_ops;
pub mod answer;
pub mod driver;
pub mod flood;
pub mod housekeeping;
pub mod log_window;
pub mod recorder;
pub mod transport;
