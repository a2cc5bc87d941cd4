//! The loadgen as a standalone command, until (and besides) `mediafork
//! loadgen`: `cargo run --release -p mediafork-loadgen --example loadgen --
//! --target HOST:PORT --calls 200 --duration 10s`.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "loadgen")]
struct Cli {
    #[command(flatten)]
    args: mediafork_loadgen::LoadgenArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match mediafork_loadgen::run(&cli.args) {
        Ok(summary) => {
            mediafork_loadgen::print_summary(&cli.args, &summary);
            if summary.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
