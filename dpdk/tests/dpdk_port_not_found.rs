//! Asking for a port that does not exist says which ports exist and what to
//! do to get the one asked for.

mod common;

use common::RuntimeDir;
use mediafork_dpdk::{DpdkError, Eal, Mempool, Port};

#[test]
fn dpdk_port_not_found_is_clear_error() {
    let dir = RuntimeDir::new("port-not-found");
    let eal = Eal::init(&dir.eal_args(&["--vdev=net_null0"])).expect("EAL init");
    assert_eq!(eal.ports(), vec![(0, "net_null0".to_string())]);
    let pool = Mempool::new(&eal, "nf-pool", 511, 0, None).expect("mempool");

    let err = Port::configure("net_pcap3", 1, 128, &pool).expect_err("no such vdev");
    assert!(matches!(err, DpdkError::PortNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("\"net_pcap3\""), "{msg}");
    assert!(
        msg.contains("0: net_null0"),
        "lists the ports that exist: {msg}"
    );
    assert!(
        msg.contains("--vdev=net_pcap3"),
        "says how to create it: {msg}"
    );

    let err = Port::configure("0000:3b:00.1", 1, 128, &pool).expect_err("no such NIC");
    let msg = err.to_string();
    assert!(msg.contains("vfio-pci"), "{msg}");
    assert!(msg.contains("hugepage-setup --nic 0000:3b:00.1"), "{msg}");

    let err = Port::configure(7u16, 1, 128, &pool).expect_err("no port 7");
    assert!(err.to_string().contains("with id 7"), "{err}");

    // The port that exists still works after the failed lookups.
    let port = Port::configure("net_null0", 1, 128, &pool).expect("net_null0");
    // A second Port for the same device is refused.
    let err = Port::configure(0u16, 1, 128, &pool).expect_err("port already configured");
    assert!(matches!(err, DpdkError::PortInUse { port: 0 }), "{err:?}");
    drop(port);
}
