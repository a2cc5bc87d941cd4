//! A failed EAL initialisation says what to fix, and a retry in the same
//! process is refused (DPDK would mix in options from the failed attempt).

mod common;

use common::RuntimeDir;
use mediafork_dpdk::{DpdkError, Eal};

#[test]
fn dpdk_eal_bad_args_are_a_clear_error() {
    let dir = RuntimeDir::new("eal-bad-args");
    let args = dir.eal_args(&["--vdev=net_nosuchdriver0"]);
    let err = Eal::init(&args).expect_err("unknown vdev driver");
    match &err {
        DpdkError::EalInit { errno, .. } => assert_eq!(*errno, 19, "ENODEV: {err}"),
        other => panic!("unexpected error {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("--vdev"), "{msg}");

    let retry = Eal::init(&dir.eal_args(&[])).expect_err("no retry in the same process");
    assert!(
        matches!(retry, DpdkError::EalInitFailedEarlier),
        "{retry:?}"
    );
    assert!(retry.to_string().contains("restart the process"), "{retry}");
}
