//! The admin API: a small JSON-over-HTTP interface to a running
//! `mediafork run`, used by the `mediafork` CLI, dashboards and recording
//! controls (pause for PCI, tags from a CTI bridge).
//!
//! - [`api`]: the request/answer vocabulary shared with the server loop;
//! - [`http`]: the axum server that turns routes into [`api::AdminRequest`]s;
//! - [`catalog`]: finished recordings, read from disk without the loop;
//! - [`auth`]: the bearer-token check.
//!
//! `docs/admin-api.yaml` is the OpenAPI description of the routes.

pub mod api;
pub mod auth;
pub mod catalog;
pub mod http;

#[cfg(test)]
pub(crate) mod test_loop;
