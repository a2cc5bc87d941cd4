//! The mediafork control plane: the slow path. Call setup from SIP/SIPREC,
//! port and worker assignment, and the `mediafork` command line.

pub mod sdp;
pub mod sip;
pub mod siprec;
