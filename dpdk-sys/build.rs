//! Finds the system's DPDK with pkg-config, compiles the C shim for DPDK's
//! inline fast path, and generates the Rust bindings with bindgen.
//!
//! Both the shim and bindgen get exactly the flags pkg-config prints: DPDK's
//! headers need `-include rte_config.h`, and `-march=corei7` changes which
//! code paths (and so which struct layouts and inline bodies) the headers pick.

use std::env;
use std::path::PathBuf;

const MIN_DPDK: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    // Probe without emitting link flags yet: the shim's static library must
    // come before DPDK's shared libraries on the link line, or `--as-needed`
    // drops the libraries only the shim uses.
    let dpdk = match pkg_config::Config::new()
        .atleast_version(MIN_DPDK)
        .cargo_metadata(false)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => panic!(
            "\n\ndpdk-sys needs DPDK >= {MIN_DPDK} found through pkg-config (libdpdk.pc), \
             and libclang for bindgen.\n\
             On Debian/Ubuntu install them with:\n\n    \
             apt-get install libdpdk-dev libclang-dev pkg-config\n\n\
             If DPDK is installed elsewhere, point PKG_CONFIG_PATH at the folder holding libdpdk.pc.\n\
             pkg-config said: {e}\n\n"
        ),
    };
    println!("cargo:version={}", dpdk.version);

    // pkg-config splits off -I paths; everything else (-include rte_config.h,
    // -march=..., -D...) is in the raw cflags list.
    let cflags = cflags_other_than_includes();

    let mut build = cc::Build::new();
    build.file("src/shim.c").include("src");
    for inc in &dpdk.include_paths {
        build.include(inc);
    }
    for flag in &cflags {
        build.flag(flag);
    }
    // DPDK's headers trip a few of cc's default warnings; they are not ours to fix.
    build.warnings(false).extra_warnings(false);
    build.compile("mediafork_dpdk_shim");

    // Now the shared libraries, after the shim.
    for path in &dpdk.link_paths {
        println!("cargo:rustc-link-search=native={}", path.display());
    }
    for lib in &dpdk.libs {
        println!("cargo:rustc-link-lib={lib}");
    }

    let mut builder = bindgen::Builder::default()
        // Generate code for the workspace's declared minimum Rust, not for
        // the newest one bindgen knows (which would need e.g. `unsafe extern`).
        .rust_target(msrv())
        .header("src/wrapper.h")
        .clang_arg("-Isrc")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        // The EAL and setup calls the safe layer makes.
        .allowlist_function("rte_eal_init")
        .allowlist_function("rte_eal_cleanup")
        .allowlist_function("rte_eal_process_type")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_socket_id")
        .allowlist_function("rte_lcore_count")
        .allowlist_function("rte_version")
        .allowlist_function("rte_thread_register")
        .allowlist_function("rte_thread_unregister")
        .allowlist_function("rte_pktmbuf_pool_create")
        .allowlist_function("rte_mempool_free")
        .allowlist_function("rte_mempool_avail_count")
        .allowlist_function("rte_mempool_in_use_count")
        .allowlist_function("rte_eth_dev_count_avail")
        .allowlist_function("rte_eth_dev_get_port_by_name")
        .allowlist_function("rte_eth_dev_get_name_by_port")
        .allowlist_function("rte_eth_dev_is_valid_port")
        .allowlist_function("rte_eth_find_next_owned_by")
        .allowlist_function("rte_eth_dev_socket_id")
        .allowlist_function("rte_eth_dev_info_get")
        .allowlist_function("rte_eth_dev_configure")
        .allowlist_function("rte_eth_dev_adjust_nb_rx_tx_desc")
        .allowlist_function("rte_eth_rx_queue_setup")
        .allowlist_function("rte_eth_tx_queue_setup")
        .allowlist_function("rte_eth_dev_start")
        .allowlist_function("rte_eth_dev_stop")
        .allowlist_function("rte_eth_dev_close")
        .allowlist_function("rte_eth_promiscuous_enable")
        .allowlist_function("rte_eth_promiscuous_get")
        .allowlist_function("rte_eth_stats_get")
        .allowlist_function("rte_eth_stats_reset")
        .allowlist_function("rte_eth_xstats_get")
        .allowlist_function("rte_eth_xstats_get_names")
        .allowlist_function("rte_eth_xstats_reset")
        .allowlist_function("rte_eth_dev_rss_hash_conf_get")
        .allowlist_function("rte_eth_macaddr_get")
        .allowlist_function("rte_eth_link_get_nowait")
        // The shim.
        .allowlist_function("mf_.*")
        .allowlist_type("mf_pkt_view")
        .allowlist_type("rte_eth_conf")
        .allowlist_type("rte_eth_dev_info")
        .allowlist_type("rte_eth_stats")
        .allowlist_type("rte_eth_xstat")
        .allowlist_type("rte_eth_xstat_name")
        .allowlist_type("rte_eth_rx_mq_mode")
        .allowlist_type("rte_eth_tx_mq_mode")
        .allowlist_type("rte_eth_link")
        .allowlist_var("RTE_ETHDEV_QUEUE_STAT_CNTRS")
        .allowlist_var("RTE_ETH_NAME_MAX_LEN")
        .allowlist_var("RTE_ETH_XSTATS_NAME_SIZE")
        .allowlist_var("RTE_MAX_ETHPORTS")
        .allowlist_var("RTE_MAX_LCORE")
        .allowlist_var("RTE_MEMPOOL_NAMESIZE")
        .allowlist_var("RTE_PKTMBUF_HEADROOM")
        .allowlist_var("SOCKET_ID_ANY")
        .allowlist_var("LCORE_ID_ANY")
        // Every access to these goes through the shim: keeping them opaque
        // keeps their (large, version-specific) layout out of Rust.
        .opaque_type("rte_mbuf")
        .opaque_type("rte_mempool")
        .opaque_type("rte_device")
        .opaque_type("rte_eth_dev")
        // bindgen still emits the opaque structs' inner anonymous types; nothing uses them.
        .blocklist_type("rte_mbuf_.*")
        .blocklist_type("rte_mempool_.*")
        .default_enum_style(bindgen::EnumVariation::ModuleConsts)
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .generate_comments(false)
        .merge_extern_blocks(true);
    for inc in &dpdk.include_paths {
        builder = builder.clang_arg(format!("-I{}", inc.display()));
    }
    for flag in &cflags {
        builder = builder.clang_arg(flag.clone());
    }

    let bindings = builder.generate().unwrap_or_else(|e| {
        panic!(
            "\n\nbindgen could not read DPDK's headers: {e}\n\
             It needs libclang (apt-get install libclang-dev); set LIBCLANG_PATH if it is \
             installed somewhere unusual.\n\n"
        )
    });
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs to OUT_DIR");
}

/// The compiler flags from `pkg-config --cflags libdpdk` other than `-I`
/// (which the pkg-config crate already returns as include paths), keeping
/// two-word flags such as `-include rte_config.h` together.
fn cflags_other_than_includes() -> Vec<String> {
    let out =
        std::process::Command::new(env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into()))
            .args(["--cflags", "libdpdk"])
            .output()
            .expect("run pkg-config --cflags libdpdk (apt-get install pkg-config)");
    assert!(
        out.status.success(),
        "pkg-config --cflags libdpdk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("pkg-config prints UTF-8");
    let mut flags = Vec::new();
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w.starts_with("-I") {
            continue;
        }
        if w == "-include" {
            if let Some(file) = words.next() {
                flags.push(w.to_string());
                flags.push(file.to_string());
            }
            continue;
        }
        flags.push(w.to_string());
    }
    flags
}

/// The package's `rust-version` as a bindgen target (latest stable if unset).
fn msrv() -> bindgen::RustTarget {
    let v = env::var("CARGO_PKG_RUST_VERSION").unwrap_or_default();
    let mut parts = v.split('.').skip(1).map(|p| p.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten().unwrap_or(0)) {
        (Some(minor), patch) => bindgen::RustTarget::stable(minor, patch)
            .unwrap_or_else(|e| panic!("rust-version {v} is not a bindgen target: {e}")),
        _ => bindgen::RustTarget::default(),
    }
}
