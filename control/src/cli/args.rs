//! Command-line arguments of the admin subcommands (`mediafork status`,
//! `mediafork calls list`, ...). `main.rs` flattens [`AdminCommand`] into
//! its own subcommands, next to `run`, `replay` and `config`.

use std::path::PathBuf;

use time::OffsetDateTime;

use super::when::parse_when;
use crate::admin::api::IdKind;

/// Shown at the end of every admin subcommand's `--help`.
pub const EXIT_CODES: &str =
    "Exit status: 0 ok; 1 the server answered with an error (its message is printed); \
    2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found.";

/// Where the admin API is found, and how output looks. Accepted after any
/// admin subcommand (`mediafork calls list --json`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct AdminOpts {
    /// Admin API address: http://HOST:PORT or HOST:PORT. Default: `[admin]
    /// listen` of --config, else http://127.0.0.1:8960.
    #[arg(long, global = true, value_name = "URL")]
    pub admin: Option<String>,
    /// Bearer token (`admin.token`); default: `[admin] token` of --config.
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "MEDIAFORK_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Read the admin address and token from this configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the server's JSON answer instead of tables (one JSON object per
    /// line for `events`).
    #[arg(long, global = true)]
    pub json: bool,
}

/// Options only.
#[derive(Clone, Debug, clap::Args)]
pub struct Plain {
    #[command(flatten)]
    pub opts: AdminOpts,
}

/// The subcommands that talk to a running server's admin API.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Show the running server: version, uptime, workers, ports, storage,
    /// call counts, draining.
    #[command(after_help = concat!(
        "Examples:\n  mediafork status\n  mediafork status --admin 10.0.0.5:8960 --token \"$TOKEN\"\n  \
         mediafork status --config /etc/mediafork/mediafork.toml --json\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed); \
         2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found."
    ))]
    Status(Plain),
    /// Calls in progress: list them, or show one in detail.
    #[command(after_help = concat!(
        "Examples:\n  mediafork calls list\n  mediafork calls show 0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01\n  \
         mediafork calls show 3F2A5C10-1DD211B2-8F6BD1A2-5E4C7A90 --by cisco_guid --json\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed); \
         2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found."
    ))]
    Calls(CallsArgs),
    /// Packet and writer counters per worker (and NIC counters with DPDK).
    #[command(after_help = concat!(
        "Examples:\n  mediafork stats\n  mediafork stats --json | jq '.workers[].drops'\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed); \
         2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found."
    ))]
    Stats(Plain),
    /// Refuse new calls (SIP 503) while calls in progress go on: before a
    /// restart or maintenance.
    #[command(after_help = concat!(
        "Examples:\n  mediafork drain\n  \
         mediafork drain && while [ \"$(mediafork status --json | jq .active_calls)\" != 0 ]; do sleep 5; done\n\n\
         Prints the number of calls still in progress. Undo with `mediafork undrain`.\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed); \
         2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found."
    ))]
    Drain(Plain),
    /// Accept new calls again after `drain`.
    #[command(after_help = concat!(
        "Example:\n  mediafork undrain\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed); \
         2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found."
    ))]
    Undrain(Plain),
    /// Re-read the configuration file, as SIGHUP does.
    #[command(after_help = concat!(
        "Example:\n  mediafork reload\n\n\
         Keys that need a restart are listed and not applied.\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed) \
         or refused the new configuration; 2 usage error; 3 cannot reach the admin API \
         (is `mediafork run` running?); 4 not found."
    ))]
    Reload(Plain),
    /// Finished (and interrupted) recordings on disk.
    #[command(after_help = concat!(
        "Examples:\n  mediafork recordings list --since 1h\n  \
         mediafork recordings list --since 2024-05-01T00:00:00Z --until 2024-05-02T00:00:00Z --limit 500\n  \
         mediafork recordings show 0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01 --json > meta.json\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed); \
         2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found."
    ))]
    Recordings(RecordingsArgs),
    /// Store a call's audio again after `stop` (a new segment starts), or
    /// for the first time with recordings.mode = "on_demand".
    #[command(after_help = concat!(
        "Examples:\n  mediafork start 0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01\n  \
         mediafork start 'a84b4c76e66710@pc33.example.com' --by call_id --who agent-4711\n\n\
         Prints the call after the change.\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed; \
         409 when the call is not stopped or the id is ambiguous); 2 usage error; \
         3 cannot reach the admin API (is `mediafork run` running?); 4 no such call."
    ))]
    Start(ControlArgs),
    /// Store nothing of a call until `start`: the stopped time is left out
    /// of the WAV files.
    #[command(after_help = concat!(
        "Examples:\n  mediafork stop 0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01 --who supervisor --reason \"customer objected\"\n\n\
         Prints the call after the change.\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed; \
         409 when the call is already stopped or the id is ambiguous); 2 usage error; \
         3 cannot reach the admin API (is `mediafork run` running?); 4 no such call."
    ))]
    Stop(ControlArgs),
    /// Replace a call's audio with silence until `resume` (card numbers,
    /// PCI DSS); the timeline is kept and meta.json lists the pause.
    #[command(after_help = concat!(
        "Examples:\n  mediafork pause 3F2A5C10-1DD211B2-8F6BD1A2-5E4C7A90 --by cisco_guid --who finesse --reason pci\n  \
         mediafork resume 3F2A5C10-1DD211B2-8F6BD1A2-5E4C7A90 --by cisco_guid --who finesse\n\n\
         Prints the call after the change.\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed; \
         409 when the call is already paused or the id is ambiguous); 2 usage error; \
         3 cannot reach the admin API (is `mediafork run` running?); 4 no such call."
    ))]
    Pause(ControlArgs),
    /// End a pause: audio is stored again.
    #[command(after_help = concat!(
        "Example:\n  mediafork resume 0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01 --who agent-4711\n\n\
         Prints the call after the change.\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed; \
         409 when the call is not paused or the id is ambiguous); 2 usage error; \
         3 cannot reach the admin API (is `mediafork run` running?); 4 no such call."
    ))]
    Resume(ControlArgs),
    /// Attach key=value metadata to a call in progress (kept in meta.json);
    /// `KEY=` with nothing after the `=` removes the key.
    #[command(after_help = concat!(
        "Examples:\n  mediafork tag 0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01 customer=C-1009 queue=billing\n  \
         mediafork tag 3F2A5C10-1DD211B2-8F6BD1A2-5E4C7A90 --by cisco_guid queue=\n\n\
         Prints the call after the change.\n\n",
        "Exit status: 0 ok; 1 the server answered with an error (its message is printed); \
         2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 no such call."
    ))]
    Tag(TagArgs),
    /// Follow call events as they happen (call_started, paused, call_ended,
    /// storage_state, ...), one line each.
    #[command(after_help = concat!(
        "Examples:\n  mediafork events\n  mediafork events --json | jq -c 'select(.event == \"call_ended\")'\n  \
         mediafork events --count 1     # wait for the next event, then exit\n\n\
         A line `lagged` (seq 0, `missed`: N) says this reader fell behind and N events were lost.\n\n",
        "Exit status: 0 after --count events (or when the output is closed); 1 the server \
         answered with an error; 2 usage error; 3 cannot reach the admin API, or the server \
         ended the stream (shutdown)."
    ))]
    Events(EventsArgs),
}

impl AdminCommand {
    pub fn opts(&self) -> &AdminOpts {
        match self {
            AdminCommand::Status(p)
            | AdminCommand::Stats(p)
            | AdminCommand::Drain(p)
            | AdminCommand::Undrain(p)
            | AdminCommand::Reload(p) => &p.opts,
            AdminCommand::Calls(a) => &a.opts,
            AdminCommand::Recordings(a) => &a.opts,
            AdminCommand::Start(a)
            | AdminCommand::Stop(a)
            | AdminCommand::Pause(a)
            | AdminCommand::Resume(a) => &a.opts,
            AdminCommand::Tag(a) => &a.opts,
            AdminCommand::Events(a) => &a.opts,
        }
    }
}

#[derive(Clone, Debug, clap::Args)]
pub struct CallsArgs {
    #[command(flatten)]
    pub opts: AdminOpts,
    #[command(subcommand)]
    pub command: CallsCommand,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum CallsCommand {
    /// List the calls in progress.
    #[command(
        after_help = "Examples:\n  mediafork calls list\n  mediafork calls list --json | jq -r '.[].recording_id'\n\n\
        Exit status: 0 ok; 1 the server answered with an error (its message is printed); 2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found."
    )]
    List,
    /// Show one call in progress: tracks, pauses and stops, tags.
    #[command(
        after_help = "Examples:\n  mediafork calls show 0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01\n  \
        mediafork calls show 'a84b4c76e66710@pc33.example.com' --by call_id --json\n\n\
        Exit status: 0 ok; 1 the server answered with an error (its message is printed); 2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found."
    )]
    Show(CallRef),
}

/// A call in progress, named by one of its identifiers.
#[derive(Clone, Debug, clap::Args)]
pub struct CallRef {
    /// Recording id, SIP Call-ID, Cisco-GUID or x-refci of the call.
    pub id: String,
    /// Which identifier ID is: recording_id, call_id, cisco_guid or x_refci.
    /// Without it each is tried in that order.
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    pub by: Option<IdKind>,
}

#[derive(Clone, Debug, clap::Args)]
pub struct ControlArgs {
    #[command(flatten)]
    pub opts: AdminOpts,
    #[command(flatten)]
    pub call: CallRef,
    /// Who asks (agent id, application); kept in meta.json.
    #[arg(long, value_name = "NAME")]
    pub who: Option<String>,
    /// Why; kept in meta.json.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, clap::Args)]
pub struct TagArgs {
    #[command(flatten)]
    pub opts: AdminOpts,
    /// Recording id, SIP Call-ID, Cisco-GUID or x-refci of the call.
    pub id: String,
    /// Tags to set, as KEY=VALUE; KEY= removes KEY.
    #[arg(required = true, value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Which identifier ID is: recording_id, call_id, cisco_guid or x_refci.
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    pub by: Option<IdKind>,
    /// Who tags (agent id, application); kept in meta.json.
    #[arg(long, value_name = "NAME")]
    pub who: Option<String>,
}

#[derive(Clone, Debug, clap::Args)]
pub struct RecordingsArgs {
    #[command(flatten)]
    pub opts: AdminOpts,
    #[command(subcommand)]
    pub command: RecordingsCommand,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum RecordingsCommand {
    /// List recordings, newest first.
    #[command(after_help = "Examples:\n  mediafork recordings list --since 1h\n  \
        mediafork recordings list --since 2d --until 1d --limit 1000 --json\n  \
        mediafork recordings list --since 2024-05-01T00:00:00Z --until 2024-05-02T00:00:00Z\n\n\
        TIME is RFC 3339 or a time ago: 30s, 30m, 1h, 2d, 1w, 1h30m.\n\n\
        Exit status: 0 ok; 1 the server answered with an error (its message is printed); 2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found.")]
    List(RecordingWindow),
    /// Print a recording's meta.json (a summary; --json for the whole file).
    #[command(
        after_help = "Examples:\n  mediafork recordings show 0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01\n  \
        mediafork recordings show 0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01 --json > meta.json\n\n\
        Exit status: 0 ok; 1 the server answered with an error (its message is printed); 2 usage error; 3 cannot reach the admin API (is `mediafork run` running?); 4 not found."
    )]
    Show {
        /// The recording id (its directory name).
        id: String,
    },
    /// Restore an encrypted recording (`[encryption]`) to plain WAV, pcap,
    /// XML and meta.json files with its private key. Offline: reads the
    /// recording's directory, needs no running server.
    #[command(
        after_help = "Examples:\n  mediafork recordings decrypt /var/lib/mediafork/recordings/2024/05/01/0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01 \\\n      --private-key tenant.key --out /secure/0190a6f2\n  \
        mediafork recordings decrypt ./0190a6f2-7c1e-7b3a-9f10-2b5c4d6e8f01 --private-key tenant.key --json\n\n\
        Every chunk is authenticated before it is written. meta.json's `encryption.key_id` names the key a \
        recording needs; a wrong key is refused with that key id.\n\n\
        Exit status: 0 every file restored whole; 1 error (wrong key, a file altered or damaged, unreadable); \
        2 usage error; 3 restored, but incomplete: the recorder stopped abruptly (crash, kill -9) and what it had \
        flushed is restored."
    )]
    Decrypt(DecryptArgs),
}

#[derive(Clone, Debug, clap::Args)]
pub struct DecryptArgs {
    /// The recording's directory (`<recordings>/YYYY/MM/DD/<recording-id>`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// PEM private key (X25519 or RSA, unencrypted) of the recording's key id.
    #[arg(long, value_name = "KEY.pem")]
    pub private_key: PathBuf,
    /// Directory for the plain files (created; must be new or empty).
    /// Default: ./<recording-id>.
    #[arg(long, value_name = "OUTDIR")]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Debug, clap::Args)]
pub struct RecordingWindow {
    /// Only recordings started at or after TIME: RFC 3339
    /// (2024-05-01T08:00:00Z) or a time ago (30m, 1h, 2d, 1w, 1h30m).
    #[arg(long, value_name = "TIME", value_parser = parse_when)]
    pub since: Option<OffsetDateTime>,
    /// Only recordings started at or before TIME (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_when)]
    pub until: Option<OffsetDateTime>,
    /// At most N recordings (the server's default: 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

#[derive(Clone, Debug, clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub opts: AdminOpts,
    /// Exit after N events (default: follow until interrupted).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// `--by KIND`.
pub fn parse_kind(s: &str) -> Result<IdKind, String> {
    IdKind::parse(s).ok_or_else(|| {
        format!(
            "expected one of: {}",
            IdKind::ALL.map(IdKind::name).join(", ")
        )
    })
}

/// `KEY=VALUE` (the value may be empty, and may itself contain `=`).
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE (KEY= to remove), got {s:?}"))?;
    if k.trim().is_empty() {
        return Err(format!("empty key in {s:?}"));
    }
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AdminCommand,
    }

    fn parse(args: &[&str]) -> Result<AdminCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("mediafork").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn command_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_documents_examples_and_exit_status() {
        use clap::CommandFactory;
        fn check(cmd: &clap::Command, path: &str) {
            let path = format!("{path} {}", cmd.get_name());
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("Exit status:"),
                "{path}: no exit status in after_help"
            );
            assert!(
                help.contains("mediafork "),
                "{path}: no example in after_help"
            );
            for sub in cmd.get_subcommands() {
                check(sub, &path);
            }
        }
        for cmd in Cli::command().get_subcommands() {
            check(cmd, "mediafork");
        }
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let cmd = parse(&["calls", "--json", "list", "--admin", "10.0.0.5:8960"]).unwrap();
        assert!(cmd.opts().json);
        assert_eq!(cmd.opts().admin.as_deref(), Some("10.0.0.5:8960"));
        assert!(matches!(
            cmd,
            AdminCommand::Calls(CallsArgs {
                command: CallsCommand::List,
                ..
            })
        ));
    }

    #[test]
    fn show_and_controls_take_a_kind() {
        let AdminCommand::Calls(CallsArgs {
            command: CallsCommand::Show(r),
            ..
        }) = parse(&["calls", "show", "G1", "--by", "cisco_guid"]).unwrap()
        else {
            panic!("not calls show")
        };
        assert_eq!((r.id.as_str(), r.by), ("G1", Some(IdKind::CiscoGuid)));

        let AdminCommand::Pause(a) =
            parse(&["pause", "X", "--who", "finesse", "--reason", "pci"]).unwrap()
        else {
            panic!("not pause")
        };
        assert_eq!(a.call.by, None);
        assert_eq!(a.who.as_deref(), Some("finesse"));
        assert_eq!(a.reason.as_deref(), Some("pci"));

        let err = parse(&["stop", "X", "--by", "guid"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("cisco_guid"), "{err}");
    }

    #[test]
    fn tags_need_key_value_pairs() {
        let AdminCommand::Tag(t) = parse(&["tag", "X", "a=1", "b=", "c=x=y"]).unwrap() else {
            panic!("not tag")
        };
        assert_eq!(
            t.tags,
            [
                ("a".into(), "1".into()),
                ("b".into(), String::new()),
                ("c".into(), "x=y".into())
            ]
        );
        assert_eq!(parse(&["tag", "X"]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["tag", "X", "novalue"]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["tag", "X", "=v"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn recording_window_parses_times_and_limits() {
        let AdminCommand::Recordings(RecordingsArgs {
            command: RecordingsCommand::List(w),
            ..
        }) = parse(&[
            "recordings",
            "list",
            "--since",
            "2024-05-01T10:00:00+02:00",
            "--until",
            "1h",
            "--limit",
            "5",
        ])
        .unwrap()
        else {
            panic!("not recordings list")
        };
        assert_eq!(w.since, Some(time::macros::datetime!(2024-05-01 08:00 UTC)));
        let ago = OffsetDateTime::now_utc() - w.until.unwrap();
        assert!((3590..=3610).contains(&ago.whole_seconds()), "{ago}");
        assert_eq!(w.limit, Some(5));
        assert!(parse(&["recordings", "list", "--limit", "0"]).is_err());
        assert!(parse(&["recordings", "list", "--since", "yesterday"]).is_err());
    }

    #[test]
    fn events_count() {
        let AdminCommand::Events(e) = parse(&["events", "--count", "3", "--json"]).unwrap() else {
            panic!("not events")
        };
        assert_eq!(e.count, Some(3));
        assert!(e.opts.json);
        assert!(parse(&["events", "--count", "0"]).is_err());
    }
}
