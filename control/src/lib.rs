//! The mediafork control plane: the slow path. Call setup from SIP/SIPREC,
//! port and worker assignment, offline replay, and what the `mediafork`
//! command line drives.

pub mod admin;
pub mod call_info;
pub mod cli;
pub mod config;
#[cfg(feature = "dpdk")]
pub mod dpdk_backend;
pub mod media_plan;
pub mod metrics;
pub mod ports;
pub mod replay;
pub mod sdp;
pub mod server;
pub mod sip;
pub mod siprec;
pub mod storage;
