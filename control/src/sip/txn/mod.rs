//! UAS transactions and dialogs (RFC 3261 §17.2, §12; RFC 6026), sans IO.
//!
//! [`ServerTransactions`] is a state machine in the style of `quinn-proto`:
//! the driver passes in parsed requests, the TU's responses, transport
//! errors and the current time (an [`Instant`](std::time::Instant) it
//! chooses, so tests use a fake clock), and takes out [`Transmit`]s,
//! [`TuEvent`]s and the next deadline. Nothing here reads a clock, opens a
//! socket or spawns a task.
//!
//! The layer does what RFC 3261 leaves to the transaction layer, plus three
//! things it leaves to the UAS core but that every recorder needs the same
//! way: 100 Trying, answering CANCEL (200 + 487, §9.2), and retransmitting
//! a 2xx until its ACK (§13.3.1.4). [`dialog`] holds the dialog state the
//! TU keeps per call.

pub mod dialog;
mod error;
mod event;
mod invite;
mod key;
mod non_invite;
mod server;
mod tag;
pub(crate) mod timers;
mod transport;

pub use dialog::{CseqError, Dialog, DialogError, DialogId, DialogState, Dialogs};
pub use error::{RequestError, RespondError};
pub use event::{TuEvent, TxnId, TxnState};
pub use server::ServerTransactions;
pub use tag::TagGenerator;
pub use timers::Timers;
pub use transport::{Peer, Transmit, Transport};

#[cfg(test)]
mod tests;
