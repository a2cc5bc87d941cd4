//! The EAL initialises once per process; a second `Eal::init` is a clear
//! error, not undefined behaviour — also after the first handle is dropped.

mod common;

use common::RuntimeDir;
use mediafork_dpdk::{DpdkError, Eal};

#[test]
fn dpdk_eal_init_twice_is_an_error() {
    let dir = RuntimeDir::new("eal-twice");
    let args = dir.eal_args(&[]);
    let eal = Eal::init(&args).expect("first EAL init");
    assert!(eal.tsc_hz() > 0, "EAL calibrates the TSC");
    assert_eq!(eal.lcore_count(), 1);
    assert_eq!(eal.port_count(), 0, "--no-pci and no --vdev: no ports");
    assert!(
        dir.candidates().iter().any(|d| d.is_dir()),
        "EAL keeps its runtime folder under the test's --file-prefix"
    );

    let second = Eal::init(&args);
    let err = second.expect_err("second init must fail");
    assert!(matches!(err, DpdkError::AlreadyInitialized), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("only once"), "{msg}");
    assert!(msg.contains("own process"), "{msg}");

    // A clone shares the EAL; dropping every handle runs rte_eal_cleanup.
    let clone = eal.clone();
    drop(eal);
    assert!(clone.tsc_hz() > 0);
    drop(clone);

    // DPDK cannot re-initialise after cleanup either.
    let third = Eal::init(&args).expect_err("init after cleanup must fail");
    assert!(matches!(third, DpdkError::AlreadyInitialized), "{third:?}");

    drop(dir);
}
