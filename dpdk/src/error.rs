//! Errors of the DPDK layer. DPDK reports failures as an errno (returned
//! negated by ethdev, left in `rte_errno` by the EAL and mempools) plus a log
//! line on stderr; an operator reading ours must learn what to do, so every
//! message says which piece is likely missing.

use std::ffi::CStr;

/// Everything that can go wrong between mediafork and DPDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpdkError {
    /// `Eal::init` ran before in this process. DPDK's EAL cannot be
    /// initialised twice, not even after `rte_eal_cleanup`.
    #[error(
        "DPDK's EAL is already initialised in this process, and it can be initialised only once \
         (even after cleanup): keep the one `Eal` handle and clone it, or run each DPDK test in its \
         own process (cargo nextest, or one test per integration-test file)"
    )]
    AlreadyInitialized,

    /// An earlier `Eal::init` in this process failed. DPDK keeps options
    /// parsed by a failed attempt, so a retry in the same process would run
    /// with a mix of old and new arguments.
    #[error(
        "an earlier DPDK EAL initialisation in this process failed, and DPDK cannot retry cleanly \
         in the same process: fix the EAL arguments (see the first error) and restart the process"
    )]
    EalInitFailedEarlier,

    /// A caller-supplied value that cannot be passed to DPDK.
    #[error("invalid {what}: {why}")]
    InvalidArgument { what: String, why: String },

    /// `rte_eal_init` failed.
    #[error("DPDK EAL initialisation failed: {reason} (rte_errno {errno}). {hint}")]
    EalInit {
        errno: i32,
        reason: String,
        hint: String,
    },

    /// No ethdev port with that id or name.
    #[error("no DPDK port {wanted}; the ports DPDK knows are: {available}. {hint}")]
    PortNotFound {
        wanted: String,
        available: String,
        hint: String,
    },

    /// A DPDK call failed.
    #[error("{call} failed for {target}: {reason} (errno {errno}). {hint}")]
    Call {
        call: &'static str,
        target: String,
        errno: i32,
        reason: String,
        hint: String,
    },

    /// The port is already configured by another `Port` in this process.
    #[error(
        "DPDK port {port} is already configured by another `Port` in this process: \
         take all queues from that one `Port`"
    )]
    PortInUse { port: u16 },

    /// Stopping or closing a port while queue handles exist would pull the
    /// rings from under a worker that may be polling them.
    #[error(
        "DPDK port {port} still has {outstanding} queue handle(s) in use: stop the workers and drop \
         every RxQueue/TxQueue of the port before stopping or closing it"
    )]
    PortBusy { port: u16, outstanding: usize },

    /// Queues are handed out only while the port runs.
    #[error("DPDK port {port} is not started: call Port::start() before taking its queues")]
    PortNotStarted { port: u16 },

    /// A queue id out of range, or one already handed to another worker.
    #[error("{kind} queue {queue} of DPDK port {port} is not available: {why}")]
    QueueUnavailable {
        kind: &'static str,
        port: u16,
        queue: u16,
        why: String,
    },

    /// Every mbuf of the pool is in use.
    #[error(
        "mempool {pool} has no free mbuf: more packets are held than the pool holds; make the pool \
         larger or free (drop or transmit) mbufs sooner"
    )]
    MempoolExhausted { pool: String },

    /// An mbuf does not have room for the bytes asked for.
    #[error("an mbuf of mempool {pool} has {tailroom} bytes of room, {wanted} were asked for")]
    MbufTooSmall {
        pool: String,
        tailroom: usize,
        wanted: usize,
    },
}

/// DPDK's text for an errno (it knows its own codes above 1000 as well as
/// the libc ones).
pub(crate) fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any int and returns a pointer to a static
    // or thread-local NUL-terminated string, valid until the next call on this
    // thread; it is copied out at once. It does not need the EAL.
    let p = unsafe { dpdk_sys::rte_strerror(errno) };
    if p.is_null() {
        return format!("error {errno}");
    }
    // SAFETY: non-null, NUL-terminated (see above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The calling thread's `rte_errno`, set by EAL and mempool calls.
pub(crate) fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local int through the shim; no preconditions.
    unsafe { dpdk_sys::mf_rte_errno() }
}

/// Builds `DpdkError::Call` from an ethdev return value (a negated errno).
pub(crate) fn call_error(call: &'static str, target: impl Into<String>, ret: i32) -> DpdkError {
    let errno = ret.saturating_abs();
    DpdkError::Call {
        call,
        target: target.into(),
        errno,
        reason: strerror(errno),
        hint: ethdev_hint(call, errno),
    }
}

/// What to do about a failed ethdev call.
fn ethdev_hint(call: &str, errno: i32) -> String {
    match errno {
        libc::ENOTSUP => format!(
            "the port's driver does not implement {call}: choose settings it supports \
             (dpdk-testpmd's `show port info` lists them)"
        ),
        libc::ENOMEM | libc::ENOBUFS => "DPDK ran out of memory for the port's rings or mbufs: reserve more \
             hugepages (hugepage-setup --pages N), raise -m/--socket-mem, or make the mempool larger \
             than the rx descriptors of all queues plus every worker's burst and cache"
            .to_string(),
        libc::EINVAL => format!(
            "{call} rejected a parameter: queue and descriptor counts must be within the driver's \
             limits (see Port::configure's log for max_rx_queues and descriptor limits)"
        ),
        libc::ENODEV => "the port went away (closed, detached, or its device was unbound)".to_string(),
        libc::EIO => "the device was removed or reset; check dmesg and the NIC's binding".to_string(),
        libc::EBUSY => "the port is in a state that forbids this: stop it first".to_string(),
        _ => "see DPDK's log lines above for the driver's reason".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strerror_knows_libc_codes() {
        assert!(strerror(libc::ENOMEM).to_lowercase().contains("memory"));
    }

    #[test]
    fn call_error_message_names_call_target_and_what_to_do() {
        let e = call_error("rte_eth_dev_configure", "port 3", -libc::ENOTSUP);
        let msg = e.to_string();
        assert!(msg.contains("rte_eth_dev_configure"), "{msg}");
        assert!(msg.contains("port 3"), "{msg}");
        assert!(msg.contains("does not implement"), "{msg}");
    }
}
