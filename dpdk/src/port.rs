//! Ethernet ports (ethdev): lookup, configuration, start/stop, statistics.

use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use dpdk_sys::{rte_eth_conf, rte_eth_dev_info, rte_eth_stats, rte_eth_xstat, rte_eth_xstat_name};

use crate::error::{call_error, DpdkError};
use crate::mempool::Mempool;
use crate::queue::{RxQueue, TxQueue};

const MAX_PORTS: usize = dpdk_sys::RTE_MAX_ETHPORTS as usize;

/// Ports claimed by a live `Port` in this process: DPDK lets anyone
/// reconfigure a port under a running worker; this makes a second `Port`
/// for the same id an error instead.
static CLAIMED: [AtomicBool; MAX_PORTS] = [const { AtomicBool::new(false) }; MAX_PORTS];

/// Which port: by id, or by name — a PCI address (`0000:01:00.0`, or the
/// short `01:00.0`) or a vdev name (`net_pcap0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    Id(u16),
    Name(String),
}

impl From<u16> for PortSpec {
    fn from(id: u16) -> Self {
        PortSpec::Id(id)
    }
}

impl From<&str> for PortSpec {
    fn from(name: &str) -> Self {
        PortSpec::Name(name.to_owned())
    }
}

impl From<String> for PortSpec {
    fn from(name: String) -> Self {
        PortSpec::Name(name)
    }
}

impl From<&String> for PortSpec {
    fn from(name: &String) -> Self {
        PortSpec::Name(name.clone())
    }
}

impl FromStr for PortSpec {
    type Err = std::convert::Infallible;

    /// For configuration files: a plain number is a port id, anything else a name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<u16>() {
            Ok(id) => PortSpec::Id(id),
            Err(_) => PortSpec::Name(s.to_owned()),
        })
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Id(id) => write!(f, "with id {id}"),
            PortSpec::Name(n) => write!(f, "named {n:?}"),
        }
    }
}

/// How to set a port up. [`Port::configure`] covers the usual case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Receive queues: one per worker.
    pub n_rx_queues: u16,
    /// Transmit queues (a recorder needs none, but some drivers want one).
    pub n_tx_queues: u16,
    /// Descriptors per rx queue (adjusted to the driver's limits).
    pub rx_desc: u16,
    /// Descriptors per tx queue (adjusted to the driver's limits).
    pub tx_desc: u16,
    /// RSS hash types to spread packets across rx queues when there are
    /// several; `None` means IP addresses and UDP ports
    /// ([`rss_ip_udp`]). Masked with what the device supports.
    pub rss_hf: Option<u64>,
    /// Receive frames not addressed to the port's MAC (a SPAN/mirror port
    /// needs it). Drivers that cannot are left as they are.
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            n_rx_queues: 1,
            n_tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rss_hf: None,
            promiscuous: true,
        }
    }
}

/// DPDK's `RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP`: hash on IPv4/IPv6 addresses and
/// UDP ports, so each RTP stream stays on one queue.
pub fn rss_ip_udp() -> u64 {
    // SAFETY: the shim returns compile-time constants.
    unsafe { dpdk_sys::mf_eth_rss_ip() | dpdk_sys::mf_eth_rss_udp() }
}

/// Counters of one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub packets: u64,
    pub bytes: u64,
    /// Receive queues only: packets dropped on this queue.
    pub errors: u64,
}

/// A port's basic counters (`rte_eth_stats_get`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Packets the NIC dropped because no rx descriptor was free: the
    /// workers are not keeping up.
    pub imissed: u64,
    /// Erroneous packets received.
    pub ierrors: u64,
    /// Receive mbuf allocation failures: the mempool is too small.
    pub rx_nombuf: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Failed transmits.
    pub oerrors: u64,
    /// Per rx queue (the first 16 queues at most, and only for drivers that
    /// fill them; most newer ones report per-queue counters in xstats).
    pub rx_queues: Vec<QueueStats>,
    /// Per tx queue (same limits).
    pub tx_queues: Vec<QueueStats>,
}

/// A configured ethdev port. Take one [`RxQueue`] per worker with
/// [`Port::rx_queue`] after [`Port::start`].
///
/// Queues keep the port (and its mempool and the EAL) alive, and
/// `stop`/`close` refuse while any exists, so a worker can never poll a
/// stopped or freed ring. Dropping the `Port` stops and closes it once its
/// last queue is dropped.
pub struct Port {
    inner: Arc<PortInner>,
}

pub(crate) struct PortInner {
    pub(crate) id: u16,
    name: String,
    driver: String,
    socket: Option<u32>,
    n_rx: u16,
    n_tx: u16,
    rx_desc: u16,
    tx_desc: u16,
    rss_hf: u64,
    started: AtomicBool,
    rx_taken: Box<[AtomicBool]>,
    tx_taken: Box<[AtomicBool]>,
    /// Pools of mbufs handed to the driver for transmission: they must live
    /// until the port is closed, which frees mbufs still in its tx rings.
    tx_pools: Mutex<Vec<Mempool>>,
    /// The pool the rx rings are filled from; dropped after the port closes
    /// (fields drop after `Drop::drop`), and it holds the EAL.
    mempool: Mempool,
}

impl Drop for PortInner {
    fn drop(&mut self) {
        let id = self.id;
        if self.started.load(Ordering::Acquire) {
            // SAFETY: last reference: no queue handle exists, so no thread
            // polls the port's rings. The EAL is alive (mempool holds it).
            let ret = unsafe { dpdk_sys::rte_eth_dev_stop(id) };
            if ret != 0 {
                tracing::warn!(port = id, error = %call_error("rte_eth_dev_stop", format!("port {id}"), ret), "stopping port on drop");
            }
        }
        // SAFETY: as above; the port is stopped (DPDK refuses to close a
        // started port). Mbufs in its rings go back to pools that are still
        // alive (`mempool`, `tx_pools`, dropped after this).
        let ret = unsafe { dpdk_sys::rte_eth_dev_close(id) };
        if ret != 0 {
            tracing::warn!(port = id, error = %call_error("rte_eth_dev_close", format!("port {id}"), ret), "closing port on drop");
        }
        CLAIMED[usize::from(id)].store(false, Ordering::Release);
        tracing::debug!(port = id, name = %self.name, "port closed");
    }
}

impl PortInner {
    pub(crate) fn release_rx(&self, q: u16) {
        self.rx_taken[usize::from(q)].store(false, Ordering::Release);
    }

    pub(crate) fn release_tx(&self, q: u16) {
        self.tx_taken[usize::from(q)].store(false, Ordering::Release);
    }

    pub(crate) fn rx_mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// Keeps `pool` alive until the port closes (its mbufs may sit in a tx ring).
    pub(crate) fn keep_tx_pool(&self, pool: &Mempool) {
        if pool.same_pool(&self.mempool) {
            return;
        }
        let mut pools = self.tx_pools.lock().unwrap_or_else(|e| e.into_inner());
        if !pools.iter().any(|p| p.same_pool(pool)) {
            pools.push(pool.clone());
        }
    }
}

impl fmt::Debug for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Port")
            .field("id", &i.id)
            .field("name", &i.name)
            .field("driver", &i.driver)
            .field("n_rx_queues", &i.n_rx)
            .field("n_tx_queues", &i.n_tx)
            .field("started", &i.started.load(Ordering::Relaxed))
            .finish()
    }
}

impl Port {
    /// Configures `port` with `n_rx_queues` receive queues of `rx_desc`
    /// descriptors each, filled from `mempool`, one transmit queue, RSS on IP
    /// addresses and UDP ports when there are several rx queues (as far as
    /// the device supports it), and promiscuous mode on. The port is not
    /// started: call [`Port::start`].
    pub fn configure(
        port: impl Into<PortSpec>,
        n_rx_queues: u16,
        rx_desc: u16,
        mempool: &Mempool,
    ) -> Result<Port, DpdkError> {
        let config = PortConfig {
            n_rx_queues,
            rx_desc,
            ..PortConfig::default()
        };
        Self::configure_with(port, &config, mempool)
    }

    /// Configures a port with every setting spelt out. See [`Port::configure`].
    pub fn configure_with(
        port: impl Into<PortSpec>,
        config: &PortConfig,
        mempool: &Mempool,
    ) -> Result<Port, DpdkError> {
        // `mempool` holds the EAL, so DPDK is initialised from here on.
        let id = resolve(&port.into())?;
        if CLAIMED[usize::from(id)].swap(true, Ordering::AcqRel) {
            return Err(DpdkError::PortInUse { port: id });
        }
        match configure_claimed(id, config, mempool) {
            Ok(inner) => Ok(Port {
                inner: Arc::new(inner),
            }),
            Err(e) => {
                CLAIMED[usize::from(id)].store(false, Ordering::Release);
                Err(e)
            }
        }
    }

    /// Starts the port: packets flow into the rx queues from now on.
    pub fn start(&mut self) -> Result<(), DpdkError> {
        if self.inner.started.load(Ordering::Acquire) {
            return Ok(());
        }
        let id = self.inner.id;
        // SAFETY: the port is configured with all its queues set up; `&mut
        // self` and the queue check in `stop` mean no one else changes its state.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(id) };
        if ret != 0 {
            return Err(call_error("rte_eth_dev_start", self.target(), ret));
        }
        self.inner.started.store(true, Ordering::Release);
        tracing::info!(port = id, name = %self.inner.name, "port started");
        Ok(())
    }

    /// Stops the port. Refused while any queue handle exists (a worker may
    /// be polling it): stop the workers first.
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        self.ensure_no_queues()?;
        if !self.inner.started.load(Ordering::Acquire) {
            return Ok(());
        }
        // SAFETY: no queue handle exists (checked above; none can be created
        // concurrently since that needs `&self` and we hold `&mut self`).
        let ret = unsafe { dpdk_sys::rte_eth_dev_stop(self.inner.id) };
        if ret != 0 {
            return Err(call_error("rte_eth_dev_stop", self.target(), ret));
        }
        self.inner.started.store(false, Ordering::Release);
        Ok(())
    }

    /// Stops and closes the port now. If queue handles still exist this
    /// returns [`DpdkError::PortBusy`], and the port closes when the last of
    /// them is dropped.
    pub fn close(self) -> Result<(), DpdkError> {
        self.ensure_no_queues()
        // Dropping `self` (the last reference) stops and closes the port.
    }

    fn ensure_no_queues(&self) -> Result<(), DpdkError> {
        let outstanding = Arc::strong_count(&self.inner) - 1;
        if outstanding > 0 {
            return Err(DpdkError::PortBusy {
                port: self.inner.id,
                outstanding,
            });
        }
        Ok(())
    }

    fn target(&self) -> String {
        format!("port {} ({})", self.inner.id, self.inner.name)
    }

    /// Takes receive queue `queue` for one worker. Each queue can be held by
    /// one `RxQueue` at a time; dropping it gives the queue back.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue, DpdkError> {
        self.take_queue("rx", queue, self.inner.n_rx, &self.inner.rx_taken)?;
        Ok(RxQueue::new(Arc::clone(&self.inner), queue))
    }

    /// Takes transmit queue `queue` (one holder at a time).
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue, DpdkError> {
        self.take_queue("tx", queue, self.inner.n_tx, &self.inner.tx_taken)?;
        Ok(TxQueue::new(Arc::clone(&self.inner), queue))
    }

    fn take_queue(
        &self,
        kind: &'static str,
        queue: u16,
        count: u16,
        taken: &[AtomicBool],
    ) -> Result<(), DpdkError> {
        let port = self.inner.id;
        if !self.inner.started.load(Ordering::Acquire) {
            return Err(DpdkError::PortNotStarted { port });
        }
        if queue >= count {
            return Err(DpdkError::QueueUnavailable {
                kind,
                port,
                queue,
                why: format!("the port was configured with {count} {kind} queue(s)"),
            });
        }
        if taken[usize::from(queue)].swap(true, Ordering::AcqRel) {
            return Err(DpdkError::QueueUnavailable {
                kind,
                port,
                queue,
                why: "another handle holds it; one queue serves one worker".into(),
            });
        }
        Ok(())
    }

    /// The port's basic counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = rte_eth_stats::default();
        // SAFETY: the port is configured and alive; `s` is a valid out-param.
        let ret = unsafe { dpdk_sys::rte_eth_stats_get(self.inner.id, &mut s) };
        if ret != 0 {
            return Err(call_error("rte_eth_stats_get", self.target(), ret));
        }
        let per_queue = |n: u16, packets: &[u64], bytes: &[u64], errors: Option<&[u64]>| {
            (0..usize::from(n).min(packets.len()))
                .map(|q| QueueStats {
                    packets: packets[q],
                    bytes: bytes[q],
                    errors: errors.map_or(0, |e| e[q]),
                })
                .collect()
        };
        Ok(PortStats {
            ipackets: s.ipackets,
            ibytes: s.ibytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            rx_nombuf: s.rx_nombuf,
            opackets: s.opackets,
            obytes: s.obytes,
            oerrors: s.oerrors,
            rx_queues: per_queue(
                self.inner.n_rx,
                &s.q_ipackets,
                &s.q_ibytes,
                Some(&s.q_errors),
            ),
            tx_queues: per_queue(self.inner.n_tx, &s.q_opackets, &s.q_obytes, None),
        })
    }

    /// Zeroes the basic counters.
    pub fn reset_stats(&self) -> Result<(), DpdkError> {
        // SAFETY: the port is configured and alive.
        let ret = unsafe { dpdk_sys::rte_eth_stats_reset(self.inner.id) };
        if ret != 0 {
            return Err(call_error("rte_eth_stats_reset", self.target(), ret));
        }
        Ok(())
    }

    /// The driver's extended counters by name (`rx_good_packets`,
    /// `rx_q0_packets`, `rx_missed_errors`, ...).
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        let id = self.inner.id;
        // The count can change between calls (a driver adding queues): retry.
        for _ in 0..3 {
            // SAFETY: NULL/0 asks for the count only.
            let n = unsafe { dpdk_sys::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0) };
            if n < 0 {
                return Err(call_error("rte_eth_xstats_get_names", self.target(), n));
            }
            let len = n as usize;
            let mut names = vec![rte_eth_xstat_name::default(); len];
            let mut values = vec![rte_eth_xstat::default(); len];
            // SAFETY: `names` has room for `n` entries.
            let got_names =
                unsafe { dpdk_sys::rte_eth_xstats_get_names(id, names.as_mut_ptr(), n as u32) };
            // SAFETY: `values` has room for `n` entries.
            let got_values =
                unsafe { dpdk_sys::rte_eth_xstats_get(id, values.as_mut_ptr(), n as u32) };
            if got_names < 0 {
                return Err(call_error(
                    "rte_eth_xstats_get_names",
                    self.target(),
                    got_names,
                ));
            }
            if got_values < 0 {
                return Err(call_error("rte_eth_xstats_get", self.target(), got_values));
            }
            if got_names > n || got_values > n {
                continue;
            }
            let names = &names[..got_names as usize];
            return Ok(values[..got_values as usize]
                .iter()
                .filter_map(|v| {
                    let name = names.get(usize::try_from(v.id).ok()?)?;
                    Some((c_name(&name.name), v.value))
                })
                .collect());
        }
        Err(DpdkError::Call {
            call: "rte_eth_xstats_get",
            target: self.target(),
            errno: libc::EAGAIN,
            reason: "the number of counters kept changing".into(),
            hint: "try again".into(),
        })
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.inner.id
    }

    /// The port's name (PCI address or vdev name).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The driver's name (`net_ixgbe`, `net_pcap`, ...).
    pub fn driver(&self) -> &str {
        &self.inner.driver
    }

    /// NUMA socket of the device, if known: put its mempool and workers there.
    pub fn socket_id(&self) -> Option<u32> {
        self.inner.socket
    }

    /// Number of rx queues configured.
    pub fn n_rx_queues(&self) -> u16 {
        self.inner.n_rx
    }

    /// Number of tx queues configured.
    pub fn n_tx_queues(&self) -> u16 {
        self.inner.n_tx
    }

    /// Rx descriptors per queue after adjustment to the driver's limits.
    pub fn rx_desc(&self) -> u16 {
        self.inner.rx_desc
    }

    /// Tx descriptors per queue after adjustment to the driver's limits.
    pub fn tx_desc(&self) -> u16 {
        self.inner.tx_desc
    }

    /// RSS hash types in effect (0: packets are not spread by hash).
    pub fn rss_hf(&self) -> u64 {
        self.inner.rss_hf
    }

    /// Whether the port is started.
    pub fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::Acquire)
    }

    /// The mempool the rx queues are filled from.
    pub fn mempool(&self) -> &Mempool {
        self.inner.rx_mempool()
    }

    /// The port's MAC address.
    pub fn mac_address(&self) -> Result<[u8; 6], DpdkError> {
        let mut mac = dpdk_sys::rte_ether_addr::default();
        // SAFETY: the port is alive; `mac` is a valid out-param.
        let ret = unsafe { dpdk_sys::rte_eth_macaddr_get(self.inner.id, &mut mac) };
        if ret != 0 {
            return Err(call_error("rte_eth_macaddr_get", self.target(), ret));
        }
        Ok(mac.addr_bytes)
    }
}

/// A NUL-terminated C string in a fixed array, as a String.
fn c_name(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn port_name(id: u16) -> String {
    let mut buf = [0 as c_char; dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: buf has RTE_ETH_NAME_MAX_LEN bytes, the size DPDK writes at most.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if ret != 0 {
        return format!("port{id}");
    }
    c_name(&buf)
}

/// Every usable port as (id, name). Only called with the EAL initialised.
pub(crate) fn list_ports() -> Vec<(u16, String)> {
    let mut ports = Vec::new();
    // RTE_ETH_FOREACH_DEV: ports not owned by another DPDK component.
    // SAFETY: walks DPDK's port table; EAL is initialised by our callers.
    let mut p = unsafe { dpdk_sys::rte_eth_find_next_owned_by(0, 0) };
    while p < MAX_PORTS as u64 {
        let id = p as u16;
        ports.push((id, port_name(id)));
        // SAFETY: as above.
        p = unsafe { dpdk_sys::rte_eth_find_next_owned_by(id + 1, 0) };
    }
    ports
}

/// `01:00.0`: a PCI address without its domain.
fn is_short_pci(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 7
        && b[2] == b':'
        && b[5] == b'.'
        && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_hexdigit())
        && (b'0'..=b'7').contains(&b[6])
}

fn looks_like_pci(name: &str) -> bool {
    is_short_pci(name)
        || (name.len() == 12 && name.as_bytes()[4] == b':' && is_short_pci(&name[5..]))
}

fn lookup_by_name(name: &str) -> Option<u16> {
    let cname = CString::new(name).ok()?;
    let mut id = 0u16;
    // SAFETY: cname is NUL-terminated; id is a valid out-param. EAL is up.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    (ret == 0).then_some(id)
}

/// Finds the port id of `spec`, or says clearly why it does not exist.
/// Only called with the EAL initialised.
pub(crate) fn resolve(spec: &PortSpec) -> Result<u16, DpdkError> {
    let found = match spec {
        PortSpec::Id(id) => {
            // SAFETY: any id may be asked about.
            (usize::from(*id) < MAX_PORTS
                && unsafe { dpdk_sys::rte_eth_dev_is_valid_port(*id) } == 1)
                .then_some(*id)
        }
        PortSpec::Name(name) => lookup_by_name(name).or_else(|| {
            // DPDK names PCI ports with their domain.
            is_short_pci(name)
                .then(|| lookup_by_name(&format!("0000:{name}")))
                .flatten()
        }),
    };
    found.ok_or_else(|| not_found(spec, &list_ports()))
}

pub(crate) fn not_found(spec: &PortSpec, ports: &[(u16, String)]) -> DpdkError {
    let available = if ports.is_empty() {
        "none".to_owned()
    } else {
        ports
            .iter()
            .map(|(id, n)| format!("{id}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hint = match spec {
        PortSpec::Name(n) if looks_like_pci(n) => format!(
            "a NIC shows up only when bound to a DPDK driver: run `hugepage-setup/hugepage-setup \
             --nic {n}` as root (binds it to vfio-pci; `--check` shows the binding), and do not \
             pass --no-pci or an -a/--allow list that leaves it out"
        ),
        PortSpec::Name(n) if n.starts_with("net_") => format!(
            "a virtual device exists only when created at EAL start: pass \
             `--vdev={n},...` (e.g. `--vdev={n},rx_pcap=FILE` for net_pcap) to Eal::init"
        ),
        _ => "pass a PCI address (0000:01:00.0) of a NIC bound to vfio-pci, or the name of a \
              --vdev given to Eal::init"
            .to_owned(),
    };
    DpdkError::PortNotFound {
        wanted: spec.to_string(),
        available,
        hint,
    }
}

fn configure_claimed(
    id: u16,
    config: &PortConfig,
    mempool: &Mempool,
) -> Result<PortInner, DpdkError> {
    let name = port_name(id);
    let target = format!("port {id} ({name})");
    let invalid = |why: String| DpdkError::InvalidArgument {
        what: format!("configuration of {target}"),
        why,
    };

    let mut info = rte_eth_dev_info::default();
    // SAFETY: the port id is valid (resolved); info is a valid out-param.
    let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut info) };
    if ret != 0 {
        return Err(call_error("rte_eth_dev_info_get", target, ret));
    }
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: DPDK's driver names are static NUL-terminated strings.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };

    if config.n_rx_queues == 0 || config.n_rx_queues > info.max_rx_queues {
        return Err(invalid(format!(
            "{} rx queues asked for; driver {driver} allows 1 to {}",
            config.n_rx_queues, info.max_rx_queues
        )));
    }
    if config.n_tx_queues > info.max_tx_queues {
        return Err(invalid(format!(
            "{} tx queues asked for; driver {driver} allows at most {}",
            config.n_tx_queues, info.max_tx_queues
        )));
    }

    let mut conf = rte_eth_conf::default();
    let mut rss_hf = 0;
    if config.n_rx_queues > 1 {
        let wanted = config.rss_hf.unwrap_or_else(rss_ip_udp);
        rss_hf = wanted & info.flow_type_rss_offloads;
        if rss_hf == 0 {
            // Virtual devices (net_ring, net_pcap) have no RSS; asking for it
            // would make configure fail. Their queues are fed separately.
            tracing::warn!(
                port = id,
                %driver,
                "the device has no RSS for the requested hash types: packets are not spread \
                 across its rx queues by flow"
            );
        } else {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            // NULL key: the driver's default key.
            conf.rx_adv_conf.rss_conf.rss_key = std::ptr::null_mut();
            if rss_hf != wanted {
                tracing::info!(
                    port = id,
                    wanted,
                    supported = rss_hf,
                    "RSS hash types reduced to what the device supports"
                );
            }
        }
    }

    // SAFETY: valid port, conf fully initialised (zeroed = DPDK defaults).
    let ret = unsafe {
        dpdk_sys::rte_eth_dev_configure(id, config.n_rx_queues, config.n_tx_queues, &conf)
    };
    if ret != 0 {
        return Err(call_error("rte_eth_dev_configure", target, ret));
    }

    let mut rx_desc = config.rx_desc;
    let mut tx_desc = config.tx_desc;
    // SAFETY: valid configured port; out-params are valid.
    let ret = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rx_desc, &mut tx_desc) };
    if ret != 0 {
        return Err(call_error("rte_eth_dev_adjust_nb_rx_tx_desc", target, ret));
    }

    // SAFETY: valid port id.
    let socket_raw = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
    let socket = u32::try_from(socket_raw).ok();
    let queue_socket = socket.unwrap_or(dpdk_sys::SOCKET_ID_ANY as u32);

    for q in 0..config.n_rx_queues {
        // SAFETY: configured port; NULL rxconf = driver defaults; the mempool
        // outlives the port (PortInner holds a clone, dropped after close).
        let ret = unsafe {
            dpdk_sys::rte_eth_rx_queue_setup(
                id,
                q,
                rx_desc,
                queue_socket,
                std::ptr::null(),
                mempool.as_ptr(),
            )
        };
        if ret != 0 {
            return Err(call_error(
                "rte_eth_rx_queue_setup",
                format!("{target} rx queue {q}"),
                ret,
            ));
        }
    }
    for q in 0..config.n_tx_queues {
        // SAFETY: configured port; NULL txconf = driver defaults.
        let ret = unsafe {
            dpdk_sys::rte_eth_tx_queue_setup(id, q, tx_desc, queue_socket, std::ptr::null())
        };
        if ret != 0 {
            return Err(call_error(
                "rte_eth_tx_queue_setup",
                format!("{target} tx queue {q}"),
                ret,
            ));
        }
    }

    if config.promiscuous {
        // SAFETY: configured port.
        let ret = unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
        if ret == -libc::ENOTSUP {
            tracing::debug!(port = id, %driver, "driver has no promiscuous mode");
        } else if ret != 0 {
            return Err(call_error("rte_eth_promiscuous_enable", target, ret));
        }
    }

    if let (Some(port_socket), Some(pool_socket)) = (socket, mempool.socket()) {
        if port_socket != pool_socket {
            tracing::warn!(
                port = id,
                port_socket,
                pool_socket,
                "mempool is on another NUMA socket than the port: every packet crosses sockets"
            );
        }
    }

    tracing::info!(
        port = id,
        %name,
        %driver,
        rx_queues = config.n_rx_queues,
        tx_queues = config.n_tx_queues,
        rx_desc,
        tx_desc,
        rss_hf,
        max_rx_queues = info.max_rx_queues,
        "port configured"
    );
    Ok(PortInner {
        id,
        name,
        driver,
        socket,
        n_rx: config.n_rx_queues,
        n_tx: config.n_tx_queues,
        rx_desc,
        tx_desc,
        rss_hf,
        started: AtomicBool::new(false),
        rx_taken: (0..config.n_rx_queues)
            .map(|_| AtomicBool::new(false))
            .collect(),
        tx_taken: (0..config.n_tx_queues)
            .map(|_| AtomicBool::new(false))
            .collect(),
        tx_pools: Mutex::new(Vec::new()),
        mempool: mempool.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_spec_from_str_reads_ids_and_names() {
        assert_eq!("3".parse::<PortSpec>().unwrap(), PortSpec::Id(3));
        assert_eq!(
            "net_pcap0".parse::<PortSpec>().unwrap(),
            PortSpec::Name("net_pcap0".into())
        );
        assert_eq!(
            "0000:01:00.0".parse::<PortSpec>().unwrap(),
            PortSpec::Name("0000:01:00.0".into())
        );
    }

    #[test]
    fn pci_addresses_are_recognised() {
        assert!(is_short_pci("01:00.0"));
        assert!(looks_like_pci("0000:af:00.1"));
        assert!(!looks_like_pci("net_pcap0"));
        assert!(!is_short_pci("01:00.8"));
    }

    #[test]
    fn not_found_for_pci_suggests_binding() {
        let e = not_found(&"0000:01:00.0".into(), &[(0, "net_null0".into())]);
        let msg = e.to_string();
        assert!(msg.contains("--nic 0000:01:00.0"), "{msg}");
        assert!(msg.contains("0: net_null0"), "{msg}");
    }

    #[test]
    fn not_found_for_vdev_suggests_vdev_option() {
        let msg = not_found(&"net_pcap1".into(), &[]).to_string();
        assert!(msg.contains("--vdev=net_pcap1"), "{msg}");
        assert!(msg.contains("are: none"), "{msg}");
    }
}
