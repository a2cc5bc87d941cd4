//! The `mediafork` command line. Thin: parsing, logging, exit codes; the
//! work lives in the libraries.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mediafork_control::replay;
use mediafork_dataplane::config::{DataplaneConfig, PortRange};

/// Exit code when a replay finished but the capture file was damaged.
const EXIT_PARTIAL: u8 = 3;

#[derive(Parser)]
#[command(
    name = "mediafork",
    version,
    about = "Kernel-bypass call-recording capture engine for SIPREC and CUCM recording",
    long_about = "mediafork records calls that SBCs (Cisco CUBE, Oracle/Acme Packet, Ribbon) and CUCM fork to it: \
                  one WAV per track plus meta.json per call.\n\nLogging: set MEDIAFORK_LOG (e.g. MEDIAFORK_LOG=debug)."
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
        mediafork replay --pcap sbc.pcapng --out rec --rtp-ports 16384-32767 --write-pcap --json\n\n\
        Calls are set up from the SIP in the capture (INVITE + 200 OK with SDP, SIPREC multipart bodies, \
        CUCM x-refci legs; BYE ends them). RTP to the port range with no signalling becomes one recording \
        per destination address and port, one track per SSRC.\n\n\
        Exit status: 0 done, 1 error (nothing recorded), 3 done but the capture was truncated or corrupt.")]
    Replay(ReplayArgs),
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Capture file to read.
    #[arg(long, value_name = "FILE")]
    pcap: PathBuf,
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
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEDIAFORK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
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
    let summary = replay::replay(&a.pcap, config)
        .with_context(|| format!("replaying {}", a.pcap.display()))?;
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Replay(a) => run_replay(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mediafork: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
