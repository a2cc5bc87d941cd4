//! The Environment Abstraction Layer: DPDK's process-wide runtime.

use std::ffi::{c_char, c_int, CStr, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::error::{rte_errno, strerror, DpdkError};

/// What became of the one `rte_eal_init` call this process may make.
/// DPDK refuses a second successful init (even after `rte_eal_cleanup`), and
/// a retry after a failed one is not clean either: options parsed by the
/// failed attempt (e.g. `--no-huge`) stay in DPDK's global configuration and
/// silently apply to the retry. So there is exactly one attempt per process;
/// checking before calling DPDK keeps a second call harmless and its message
/// clear.
static INIT_STATE: AtomicU8 = AtomicU8::new(NOT_CALLED);
const NOT_CALLED: u8 = 0;
const CALLED: u8 = 1;
const FAILED: u8 = 2;

/// Handle to the initialised EAL. Clones share it; `rte_eal_cleanup` runs
/// when the last handle is dropped. Mempools and ports hold a handle, so the
/// EAL outlives everything built on it whatever order they are dropped in.
#[derive(Clone)]
pub struct Eal {
    inner: Arc<EalInner>,
}

struct EalInner {
    tsc_hz: u64,
    // rte_eal_init may keep pointers into argv (it permutes the array and
    // some drivers keep option strings); they stay valid until cleanup.
    _argv: Vec<CString>,
    _argv_ptrs: Vec<*mut c_char>,
}

// SAFETY: after rte_eal_init the EAL's query functions used through `Eal` are
// thread-safe reads of process-wide state; `_argv_ptrs` is never touched again
// (it only keeps memory alive). rte_eal_cleanup runs once, from the drop of
// the last handle, on whichever thread that is, which DPDK allows.
unsafe impl Send for EalInner {}
// SAFETY: see Send; no method mutates EalInner.
unsafe impl Sync for EalInner {}

impl Drop for EalInner {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised (an EalInner exists only after a
        // successful rte_eal_init) and every Mempool/Port/queue holds an Eal
        // clone, so none of them is left to use DPDK after this.
        let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
        if ret != 0 {
            tracing::warn!(
                error = %strerror(ret.saturating_abs()),
                "rte_eal_cleanup failed; DPDK resources are released at process exit anyway"
            );
        }
    }
}

impl std::fmt::Debug for Eal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eal")
            .field("tsc_hz", &self.inner.tsc_hz)
            .finish()
    }
}

impl Eal {
    /// Initialises DPDK's EAL with `args`: the EAL options alone, without a
    /// program name (one is prepended) — e.g. `["-l", "0", "--no-huge",
    /// "-m", "256", "--no-pci", "--vdev=net_pcap0,rx_pcap=in.pcap",
    /// "--file-prefix=mf0"]`.
    ///
    /// Once per process: a second call returns
    /// [`DpdkError::AlreadyInitialized`], also after the first `Eal` was
    /// dropped, or [`DpdkError::EalInitFailedEarlier`] if the first failed
    /// (DPDK keeps options from a failed attempt; restart the process to
    /// retry). Things to know:
    /// - the calling thread becomes DPDK's main lcore and is pinned to the
    ///   CPU(s) of `-l`/`--lcores`; threads it spawns afterwards inherit that
    ///   affinity, so set each worker's affinity explicitly;
    /// - `--help` makes DPDK print its usage and exit the process;
    /// - each DPDK process on a host needs its own `--file-prefix` unless it
    ///   runs `--in-memory`; the prefix's runtime folder
    ///   (`/var/run/dpdk/PREFIX` as root) is left behind.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(CString::new("mediafork").expect("no NUL in a literal"));
        for a in args {
            let a = a.as_ref();
            argv.push(CString::new(a).map_err(|_| DpdkError::InvalidArgument {
                what: format!("EAL argument {a:?}"),
                why: "it contains a NUL byte".into(),
            })?);
        }
        let mut argv_ptrs: Vec<*mut c_char> = argv.iter().map(|s| s.as_ptr().cast_mut()).collect();
        let argc = c_int::try_from(argv_ptrs.len()).map_err(|_| DpdkError::InvalidArgument {
            what: "EAL arguments".into(),
            why: "too many".into(),
        })?;
        match INIT_STATE.compare_exchange(NOT_CALLED, CALLED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {}
            Err(FAILED) => return Err(DpdkError::EalInitFailedEarlier),
            Err(_) => return Err(DpdkError::AlreadyInitialized),
        }
        // SAFETY: argv_ptrs holds argc pointers to NUL-terminated strings that
        // live in `argv`, which is kept in EalInner until after cleanup. DPDK
        // may reorder the pointer array (getopt) but does not write through the
        // pointers. INIT_STATE guarantees this is the only call in the
        // process while it runs.
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv_ptrs.as_mut_ptr()) };
        if ret < 0 {
            let errno = rte_errno();
            if errno == libc::EALREADY {
                // Someone called rte_eal_init behind our back.
                return Err(DpdkError::AlreadyInitialized);
            }
            INIT_STATE.store(FAILED, Ordering::Release);
            let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
            return Err(DpdkError::EalInit {
                errno,
                reason: strerror(errno),
                hint: eal_init_hint(errno, &args, &HostFacts::read()),
            });
        }
        // rte_eal_init returns how many options it consumed (not counting
        // the program name); anything after `--` is left for the application.
        if (ret as usize) < args.len() {
            tracing::debug!(
                parsed = ret,
                given = args.len(),
                "EAL left some arguments unparsed"
            );
        }
        // SAFETY: EAL is initialised; this reads the TSC rate it calibrated.
        let tsc_hz = unsafe { dpdk_sys::mf_get_tsc_hz() };
        tracing::info!(
            version = %version(),
            lcores = Self::lcore_count_raw(),
            ports = Self::port_count_raw(),
            tsc_hz,
            "DPDK EAL initialised"
        );
        Ok(Eal {
            inner: Arc::new(EalInner {
                tsc_hz,
                _argv: argv,
                _argv_ptrs: argv_ptrs,
            }),
        })
    }

    /// TSC ticks per second, as calibrated by the EAL.
    pub fn tsc_hz(&self) -> u64 {
        self.inner.tsc_hz
    }

    /// Number of lcores the EAL was given (`-l`/`--lcores`).
    pub fn lcore_count(&self) -> u32 {
        Self::lcore_count_raw()
    }

    fn lcore_count_raw() -> u32 {
        // SAFETY: only called with the EAL initialised; reads its config.
        unsafe { dpdk_sys::rte_lcore_count() }
    }

    /// NUMA socket of the calling thread (0 when NUMA is unknown).
    pub fn socket_id(&self) -> u32 {
        // SAFETY: EAL is initialised (self exists); reads a per-thread value.
        unsafe { dpdk_sys::rte_socket_id() }
    }

    /// Number of usable ethdev ports (NICs bound to a DPDK driver, vdevs).
    pub fn port_count(&self) -> u16 {
        Self::port_count_raw()
    }

    fn port_count_raw() -> u16 {
        // SAFETY: only called with the EAL initialised.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }

    /// Every usable port as `(port id, name)`; names are PCI addresses
    /// (`0000:01:00.0`) or vdev names (`net_pcap0`).
    pub fn ports(&self) -> Vec<(u16, String)> {
        crate::port::list_ports()
    }

    /// Makes the calling (non-EAL) thread an EAL thread with its own lcore
    /// id, so that mempool operations on it use a per-lcore cache instead of
    /// the shared ring. Call it first thing in each worker thread; the thread
    /// is unregistered when the returned guard drops (it must drop on the same
    /// thread, so the guard is not `Send`).
    ///
    /// DPDK allows this only for a primary process with multi-process
    /// disabled (`rte_mp_disable`, done implicitly); it fails if the thread is
    /// already an EAL thread or all `RTE_MAX_LCORE` ids are taken.
    pub fn register_thread(&self) -> Result<LcoreRegistration, DpdkError> {
        // SAFETY: reads this thread's per-lcore id; no preconditions.
        let current = unsafe { dpdk_sys::mf_lcore_id() };
        if current != dpdk_sys::LCORE_ID_ANY {
            return Err(DpdkError::InvalidArgument {
                what: "thread registration".into(),
                why: format!(
                    "this thread already is EAL lcore {current} (the thread that called Eal::init \
                     is the main lcore); register only threads you spawned"
                ),
            });
        }
        // SAFETY: EAL is initialised (self exists); registers the calling thread.
        let ret = unsafe { dpdk_sys::rte_thread_register() };
        if ret != 0 {
            let errno = rte_errno();
            return Err(DpdkError::Call {
                call: "rte_thread_register",
                target: "the calling thread".into(),
                errno,
                reason: strerror(errno),
                hint: "DPDK allows it only in a primary process without multi-process peers and \
                       while free lcore ids remain (RTE_MAX_LCORE = 128)"
                    .into(),
            });
        }
        // SAFETY: as above.
        let lcore_id = unsafe { dpdk_sys::mf_lcore_id() };
        Ok(LcoreRegistration {
            lcore_id,
            _eal: self.clone(),
            _not_send: PhantomData,
        })
    }
}

/// A thread registered with the EAL by [`Eal::register_thread`];
/// unregisters it on drop.
pub struct LcoreRegistration {
    lcore_id: u32,
    _eal: Eal,
    // rte_thread_unregister acts on the calling thread: keep the guard on the
    // thread that registered.
    _not_send: PhantomData<*const ()>,
}

impl LcoreRegistration {
    /// The lcore id DPDK gave this thread.
    pub fn lcore_id(&self) -> u32 {
        self.lcore_id
    }
}

impl Drop for LcoreRegistration {
    fn drop(&mut self) {
        // SAFETY: this guard is !Send, so we are on the thread that registered;
        // the EAL is alive (we hold a handle).
        unsafe { dpdk_sys::rte_thread_unregister() };
    }
}

/// DPDK's version string, e.g. `DPDK 22.11.11`. Usable before `Eal::init`.
pub fn version() -> String {
    // SAFETY: returns a pointer to a static string; no EAL needed.
    let p = unsafe { dpdk_sys::rte_version() };
    if p.is_null() {
        return "DPDK (unknown version)".into();
    }
    // SAFETY: non-null, static, NUL-terminated.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// What the host looks like, for the hint of a failed `rte_eal_init`.
#[derive(Debug, Default, Clone)]
pub(crate) struct HostFacts {
    pub euid: Option<u32>,
    pub hugepages_total: Option<u64>,
    pub hugepages_free: Option<u64>,
    pub hugetlbfs_mounted: bool,
    pub cpus: usize,
}

impl HostFacts {
    pub(crate) fn read() -> HostFacts {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |name: &str| {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        };
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        HostFacts {
            // SAFETY: geteuid cannot fail and has no preconditions.
            euid: Some(unsafe { libc::geteuid() }),
            hugepages_total: field("HugePages_Total:"),
            hugepages_free: field("HugePages_Free:"),
            hugetlbfs_mounted: mounts
                .lines()
                .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs")),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        }
    }
}

/// What to tell the operator when `rte_eal_init` fails with `errno`.
pub(crate) fn eal_init_hint(errno: i32, args: &[&str], host: &HostFacts) -> String {
    let has = |opt: &str| {
        args.iter()
            .any(|a| *a == opt || a.starts_with(&format!("{opt}=")))
    };
    let no_huge = has("--no-huge");
    let mut hints: Vec<String> = Vec::new();

    let not_root = host.euid.is_some_and(|u| u != 0);
    if not_root {
        hints.push(format!(
            "DPDK needs root (or CAP_SYS_ADMIN, CAP_IPC_LOCK and access to /dev/hugepages and \
             /dev/vfio); this process runs as uid {}: run it as root",
            host.euid.unwrap_or_default()
        ));
    }
    let no_hugepages = host.hugepages_free.unwrap_or(0) == 0 || !host.hugetlbfs_mounted;
    // Without hugepages DPDK 22.11 fails with EACCES ("Cannot get hugepage
    // information"), even as root.
    if !no_huge
        && matches!(
            errno,
            libc::ENOMEM | libc::ENODEV | libc::EAGAIN | libc::EACCES
        )
    {
        let free = host.hugepages_free.unwrap_or(0);
        if no_hugepages {
            hints.push(format!(
                "no usable hugepages (HugePages_Total {}, HugePages_Free {}, hugetlbfs {}): reserve \
                 them once per host with `hugepage-setup/hugepage-setup --pages 1024` as root, or \
                 for tests only pass `--no-huge -m 256`",
                host.hugepages_total.unwrap_or(0),
                free,
                if host.hugetlbfs_mounted { "mounted" } else { "not mounted" },
            ));
        } else if errno == libc::ENOMEM {
            hints.push(format!(
                "not enough hugepage memory ({free} pages free) for -m/--socket-mem: reserve more \
                 with `hugepage-setup/hugepage-setup --pages N` or ask for less memory"
            ));
        }
    }
    if no_huge && errno == libc::ENOMEM {
        hints.push(
            "--no-huge takes -m megabytes of ordinary memory: lower -m, or check `ulimit -l` and \
             the cgroup memory limit"
                .into(),
        );
    }
    match errno {
        libc::EACCES | libc::EPERM if !not_root && (no_huge || !no_hugepages) => hints.push(
            "permission denied although running as root: check that the hugetlbfs mount and \
             /dev/vfio are accessible, and in a container that it has CAP_SYS_ADMIN and \
             CAP_IPC_LOCK (or runs privileged)"
                .into(),
        ),
        libc::EINVAL => {
            hints.push(format!(
                "DPDK rejected an argument (its log above names it): -l/--lcores must name CPUs this \
                 machine has (it has {}), each --vdev must name a driver DPDK has (net_pcap, \
                 net_ring, net_null, net_af_packet, ...), and --in-memory cannot be combined with \
                 --no-huge",
                host.cpus
            ));
        }
        libc::ENODEV if args.iter().any(|a| a.starts_with("--vdev")) => hints.push(
            "DPDK could not create a --vdev: check the driver name (net_pcap, net_ring, net_null, \
             net_af_packet, net_tap, ...; drivers load from DPDK's pmds folder, e.g. \
             /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0) and its options (the EAL's log above \
             names the device)"
                .into(),
        ),
        libc::EPROTO => hints.push(
            "DPDK could not read the PCI bus: run as root, or pass --no-pci when only virtual \
             devices (--vdev) are used"
                .into(),
        ),
        libc::ENOTSUP => hints.push(
            "the EAL cannot run on this system: Debian's DPDK needs a CPU with SSE4.2 (corei7) \
             and a 64-bit kernel with /proc and /sys"
                .into(),
        ),
        libc::ENOEXEC => {
            hints.push("a service core failed to start: check -s/--service-corelist".into())
        }
        libc::EFAULT => hints.push(
            "DPDK's shared configuration does not match: another DPDK program (or version) uses \
             the same --file-prefix; give this process its own --file-prefix"
                .into(),
        ),
        _ => {}
    }
    if hints.is_empty() {
        hints.push(
            "see the EAL's log lines above for the cause; two DPDK processes on one host need \
             different --file-prefix values"
                .into(),
        );
    }
    hints.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_without_hugepages() -> HostFacts {
        HostFacts {
            euid: Some(0),
            hugepages_total: Some(0),
            hugepages_free: Some(0),
            hugetlbfs_mounted: false,
            cpus: 2,
        }
    }

    #[test]
    fn hint_without_hugepages_names_hugepage_setup_and_no_huge() {
        let h = eal_init_hint(libc::ENOMEM, &["-l", "0"], &root_without_hugepages());
        assert!(h.contains("hugepage-setup"), "{h}");
        assert!(h.contains("--no-huge"), "{h}");
        assert!(!h.contains("needs root"), "{h}");
    }

    #[test]
    fn hint_for_eacces_as_root_without_hugepages_is_about_hugepages() {
        // What DPDK 22.11 reports when no hugepages are reserved.
        let h = eal_init_hint(libc::EACCES, &["-l", "0"], &root_without_hugepages());
        assert!(h.contains("hugepage-setup"), "{h}");
        assert!(!h.contains("root:"), "{h}");
        assert!(!h.contains("needs root"), "{h}");
    }

    #[test]
    fn hint_for_eacces_as_root_with_hugepages_is_about_privileges() {
        let host = HostFacts {
            hugepages_total: Some(512),
            hugepages_free: Some(512),
            hugetlbfs_mounted: true,
            ..root_without_hugepages()
        };
        let h = eal_init_hint(libc::EACCES, &["-l", "0"], &host);
        assert!(h.contains("although running as root"), "{h}");
    }

    #[test]
    fn hint_when_not_root_says_so() {
        let host = HostFacts {
            euid: Some(1000),
            ..root_without_hugepages()
        };
        let h = eal_init_hint(libc::EACCES, &["-l", "0"], &host);
        assert!(h.contains("needs root"), "{h}");
        assert!(h.contains("uid 1000"), "{h}");
    }

    #[test]
    fn hint_for_bad_arguments_mentions_lcores_and_cpu_count() {
        let h = eal_init_hint(
            libc::EINVAL,
            &["--no-huge", "-l", "7"],
            &root_without_hugepages(),
        );
        assert!(h.contains("--lcores"), "{h}");
        assert!(h.contains("it has 2"), "{h}");
        assert!(!h.contains("hugepage-setup"), "{h}");
    }

    #[test]
    fn hint_for_unknown_vdev_names_drivers() {
        let h = eal_init_hint(
            libc::ENODEV,
            &["--no-huge", "--vdev=net_foo0"],
            &root_without_hugepages(),
        );
        assert!(h.contains("--vdev"), "{h}");
        assert!(h.contains("net_pcap"), "{h}");
    }

    #[test]
    fn hint_fallback_points_at_log_and_file_prefix() {
        let h = eal_init_hint(12345, &["--no-huge"], &root_without_hugepages());
        assert!(h.contains("--file-prefix"), "{h}");
    }

    #[test]
    fn version_is_available_before_init() {
        assert!(version().starts_with("DPDK"), "{}", version());
    }
}
