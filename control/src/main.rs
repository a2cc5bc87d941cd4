//! The `mediafork` command line. Thin: parsing, logging, exit codes; the
//! work lives in the libraries.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mediafork_control::cli;
use mediafork_control::config::{Backend, Config, Overrides};
use mediafork_control::replay;
use mediafork_control::server::driver::Reload;
use mediafork_dataplane::config::{DataplaneConfig, PortRange};

/// `mediafork --version`: the packet backends compiled in (tests and
/// operators check for `dpdk`).
#[cfg(feature = "dpdk")]
const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (backends: socket, dpdk)");
#[cfg(not(feature = "dpdk"))]
const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (backends: socket)");

/// Exit code when a replay finished but the capture file was damaged.
const EXIT_PARTIAL: u8 = 3;

#[derive(Parser)]
#[command(
    name = "mediafork",
    version,
    long_version = LONG_VERSION,
    about = "Kernel-bypass call-recording capture engine for SIPREC and CUCM recording",
    long_about = "mediafork records calls that SBCs (Cisco CUBE, Oracle/Acme Packet, Ribbon) and CUCM fork to it: \
                  one WAV per track plus meta.json per call.\n\nLogging: set MEDIAFORK_LOG (e.g. MEDIAFORK_LOG=debug).",
    after_help = "The commands from `status` on talk to a running server's admin API \
                  (--admin URL, or [admin] listen of --config FILE, else http://127.0.0.1:8960; \
                  token from --token, MEDIAFORK_ADMIN_TOKEN or [admin] token). docs/admin-api.yaml \
                  describes the API.\n\nExamples:\n  mediafork status\n  mediafork calls list\n  \
                  mediafork pause CALL-ID --by call_id --who agent-7 --reason pci\n  \
                  mediafork recordings list --since 1h\n  mediafork events --json"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Record the calls in a capture file (pcap or pcapng), offline.
    #[command(after_help = "Examples:\n  \
        mediafork replay --pcap call.pcap --out /tmp/rec\n  \
        mediafork replay --pcap sbc.pcapng --out rec --rtp-ports 16384-32767 --write-pcap --json\n  \
        mediafork replay --pcap call.pcap --out rec --backend dpdk     # through DPDK's net_pcap\n\n\
        Calls are set up from the SIP in the capture (INVITE + 200 OK with SDP, SIPREC multipart bodies, \
        CUCM x-refci legs; BYE ends them). RTP to the port range with no signalling becomes one recording \
        per destination address and port, one track per SSRC.\n\n\
        Exit status: 0 done, 1 error (nothing recorded), 3 done but the capture was truncated or corrupt.")]
    Replay(ReplayArgs),
    /// Run the recording server: SIP (SIPREC, CUCM) in, recordings out.
    #[command(after_help = "Examples:\n  \
        mediafork run                                   # embedded defaults, no file needed\n  \
        mediafork run --config /etc/mediafork/mediafork.toml\n  \
        mediafork run --sip-listen 127.0.0.1:5060 --media-addr 127.0.0.1 --rtp-ports 40000-40999 --recordings /tmp/rec\n  \
        mediafork run --config mediafork.toml --backend dpdk   # [dpdk] eal_args, port: see docs/dpdk.md\n\n\
        Defaults: SIP on 0.0.0.0:5060 (UDP and TCP), media ports 39500-43500 on the host's address, \
        recordings under ./recordings. Flags override the file. SIGTERM or Ctrl-C: new calls get 503, \
        calls in progress get shutdown.grace_period to end, then every file is closed cleanly.\n\n\
        Exit status: 0 after a clean shutdown, 1 when the server cannot start (the message says why).")]
    Run(RunArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    #[command(flatten)]
    Admin(cli::args::AdminCommand),
    /// Simulate SBCs: SIPREC calls with real-time RTP against a recorder
    /// (mediafork or another), or the same traffic into a pcap file.
    Loadgen(mediafork_loadgen::LoadgenArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file and print the effective configuration.
    #[command(
        after_help = "Example:\n  mediafork config check /etc/mediafork/mediafork.toml\n\n\
        Exit status: 0 valid, 1 invalid (each problem names its key)."
    )]
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Configuration file (TOML); without it, embedded defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen for SIP (UDP and TCP) on this address; repeatable.
    #[arg(long, value_name = "ADDR:PORT")]
    sip_listen: Vec<std::net::SocketAddr>,
    /// Address media is received on (put into SDP answers).
    #[arg(long, value_name = "IP")]
    media_addr: Option<std::net::IpAddr>,
    /// UDP ports for media.
    #[arg(long, value_name = "LO-HI")]
    rtp_ports: Option<PortRange>,
    /// Directory for recordings.
    #[arg(long, value_name = "DIR")]
    recordings: Option<PathBuf>,
    /// Prometheus metrics listen address.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Admin API listen address.
    #[arg(long, value_name = "ADDR:PORT")]
    admin_listen: Option<std::net::SocketAddr>,
    /// Packet I/O backend.
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Worker threads (one packet source each).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BackendArg {
    Socket,
    Dpdk,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Capture file to read.
    #[arg(long, value_name = "FILE", required_unless_present = "dpdk_port")]
    pcap: Option<PathBuf>,
    /// Directory to write recordings into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// UDP destination ports that carry recorded media.
    #[arg(long, value_name = "LO-HI", default_value_t = PortRange::DEFAULT)]
    rtp_ports: PortRange,
    /// Also write call.pcap with each call's packets.
    #[arg(long)]
    write_pcap: bool,
    /// Audio held back so reordered packets land in place (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 200)]
    reorder_window_ms: u64,
    /// Timestamp jump that starts a new segment instead of silence (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    max_gap_secs: u64,
    /// Put recordings directly under --out instead of YYYY/MM/DD/.
    #[arg(long)]
    flat: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Where frames come from: the capture file read directly, or a DPDK
    /// rx queue (with --pcap, a net_pcap vdev reading that file; needs a
    /// build with `--features dpdk`).
    #[arg(long, value_enum, default_value = "file")]
    backend: ReplayBackend,
    /// EAL options for --backend dpdk, as one string split on whitespace.
    /// Default: "--no-huge --no-pci -m 256 --no-telemetry"; mediafork adds
    /// --lcores, a --file-prefix of its own (removed afterwards) and, with
    /// --pcap, the net_pcap vdev, unless given here.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    eal_args: Option<String>,
    /// Read from this DPDK port (created by a --vdev in --eal-args, or a bound
    /// NIC) instead of --pcap, until it has been quiet for --dpdk-idle-ms.
    #[arg(long, value_name = "PORT", conflicts_with = "pcap")]
    dpdk_port: Option<String>,
    /// --backend dpdk: the replay ends when the port has been quiet this long
    /// after its first packet.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    dpdk_idle_ms: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReplayBackend {
    /// Read the capture file.
    File,
    /// Receive the frames from a DPDK port.
    Dpdk,
}

/// Set up logging; returns a function that changes the level later
/// (SIGHUP). `MEDIAFORK_LOG` wins over the configured level.
fn init_logging(
    format: LogFormat,
    default_level: &str,
) -> mediafork_control::server::driver::SetLogLevel {
    use tracing_subscriber::prelude::*;
    let from_env = std::env::var("MEDIAFORK_LOG").ok();
    let filter =
        tracing_subscriber::EnvFilter::try_new(from_env.as_deref().unwrap_or(default_level))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
    Box::new(move |level: &str| {
        if from_env.is_some() {
            return Ok(());
        }
        let f = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(f).map_err(|e| e.to_string())
    })
}

fn run_replay(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = DataplaneConfig {
        port_range: a.rtp_ports,
        recordings_dir: a.out.clone(),
        date_partitions: !a.flat,
        write_pcap: a.write_pcap,
        reorder_window: Duration::from_millis(a.reorder_window_ms),
        max_gap: Duration::from_secs(a.max_gap_secs),
        ..DataplaneConfig::default()
    };
    let summary = match a.backend {
        ReplayBackend::File => {
            if a.eal_args.is_some() || a.dpdk_port.is_some() {
                anyhow::bail!("--eal-args and --dpdk-port need --backend dpdk");
            }
            let Some(pcap) = &a.pcap else {
                anyhow::bail!("--pcap FILE is required");
            };
            replay::replay(pcap, config).with_context(|| format!("replaying {}", pcap.display()))?
        }
        ReplayBackend::Dpdk => replay_dpdk(&a, config)?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.render());
    }
    if summary.capture_error.is_some() {
        return Ok(ExitCode::from(EXIT_PARTIAL));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "dpdk")]
fn replay_dpdk(a: &ReplayArgs, config: DataplaneConfig) -> anyhow::Result<replay::ReplaySummary> {
    let opts = replay::DpdkReplay {
        pcap: a.pcap.clone(),
        port: a.dpdk_port.clone(),
        eal_args: a
            .eal_args
            .as_deref()
            .map(|s| s.split_whitespace().map(str::to_string).collect()),
        idle: Duration::from_millis(a.dpdk_idle_ms),
        ..replay::DpdkReplay::default()
    };
    let what = match (&a.pcap, &a.dpdk_port) {
        (Some(p), _) => format!("{} through DPDK's net_pcap", p.display()),
        (None, Some(port)) => format!("DPDK port {port}"),
        (None, None) => "DPDK".to_string(),
    };
    replay::replay_dpdk(&opts, config).with_context(|| format!("replaying {what}"))
}

#[cfg(not(feature = "dpdk"))]
fn replay_dpdk(_: &ReplayArgs, _: DataplaneConfig) -> anyhow::Result<replay::ReplaySummary> {
    anyhow::bail!(
        "--backend dpdk: this mediafork was built without DPDK support; rebuild with \
         `cargo build --release -p mediafork-control --features dpdk` (needs libdpdk-dev)"
    )
}

fn run_server(a: RunArgs, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    let loaded = match &a.config {
        Some(path) => Config::load(path),
        None => Ok(Config::default()),
    };
    let format = match (&loaded, log_format) {
        (_, LogFormat::Json) => LogFormat::Json,
        (Ok(c), LogFormat::Text) if c.log.format == mediafork_control::config::LogFormat::Json => {
            LogFormat::Json
        }
        _ => LogFormat::Text,
    };
    let level = loaded
        .as_ref()
        .map(|c| c.log.level.clone())
        .unwrap_or_else(|_| "info".into());
    let set_log_level = init_logging(format, &level);
    let mut config = loaded?;
    let overrides = Overrides {
        sip_listen: a.sip_listen,
        media_addr: a.media_addr,
        rtp_ports: a.rtp_ports,
        recordings: a.recordings,
        metrics_listen: a.metrics_listen,
        admin_listen: a.admin_listen,
        backend: a.backend.map(|b| match b {
            BackendArg::Socket => Backend::Socket,
            BackendArg::Dpdk => Backend::Dpdk,
        }),
        workers: a.workers,
    };
    config.apply(overrides.clone())?;
    let reload = Reload {
        path: a.config.clone(),
        overrides,
        set_log_level,
    };
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("mf-sip")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(mediafork_control::server::driver::run(config, reload))?;
    Ok(ExitCode::SUCCESS)
}

fn config_check(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    for w in config.warnings() {
        eprintln!("warning: {w}");
    }
    println!("{}: valid\n", file.display());
    print!("{}", config.redacted().to_toml_string()?);
    Ok(ExitCode::SUCCESS)
}

/// `mediafork loadgen`: Ctrl-C or SIGTERM stops new calls and ends those up
/// with BYE, then the summary is printed. Exit 0 when every call was
/// answered and completed, 2 when some failed, 1 on an error.
fn run_loadgen(args: &mediafork_loadgen::LoadgenArgs) -> anyhow::Result<ExitCode> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // Signals through tokio: the one way to catch them without `unsafe`.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("mf-loadgen-signals".into())
        .spawn(move || {
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut term) = signal(SignalKind::terminate()) else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                eprintln!("loadgen: stopping: ending the calls that are up");
                flag.store(true, Ordering::Release);
            })
        })?;
    let summary = mediafork_loadgen::run_until(args, &stop)?;
    mediafork_loadgen::print_summary(args, &summary);
    Ok(if summary.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `run` sets up logging from its configuration (after loading it);
    // one-shot commands log only what goes wrong.
    if !matches!(cli.command, Command::Run(_)) {
        let _ = init_logging(cli.log_format, "warn");
    }
    let result = match cli.command {
        Command::Replay(a) => run_replay(a),
        Command::Run(a) => run_server(a, cli.log_format),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
        // Prints its own errors: its exit status says what kind of failure.
        Command::Admin(cmd) => return ExitCode::from(cli::run(&cmd)),
        Command::Loadgen(a) => run_loadgen(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mediafork: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
