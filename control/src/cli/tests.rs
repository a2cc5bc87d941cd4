//! The CLI against a real admin server on 127.0.0.1:0, with a fake loop.

use std::time::Duration;

use clap::Parser;

use super::args::AdminCommand;
use super::client::{
    CliError, Client, Endpoint, EXIT_NOT_FOUND, EXIT_SERVER_ERROR, EXIT_UNREACHABLE,
};
use super::execute;
use crate::admin::api::CallEvent;
use crate::admin::http::{serve, AdminState};
use crate::admin::test_loop::{self, write_meta};

#[derive(Parser)]
struct TestCli {
    #[command(subcommand)]
    command: AdminCommand,
}

struct Server {
    runtime: tokio::runtime::Runtime,
    base: String,
    state: AdminState,
    _dir: tempfile::TempDir,
}

fn server(token: Option<&str>) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_meta(dir.path(), "2024/05/01", "rec-a", "2024-05-01T08:00:00Z");
    let (state, base) = runtime.block_on(async {
        let fake = test_loop::start(token, dir.path().to_path_buf());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener, fake.state.clone()));
        (fake.state, base)
    });
    Server {
        runtime,
        base,
        state,
        _dir: dir,
    }
}

/// Runs `mediafork ARGS` against `base`; returns what it printed, or the
/// error (whose exit code the tests check).
fn cli(base: &str, token: Option<&str>, args: &[&str]) -> Result<String, CliError> {
    let cmd = TestCli::try_parse_from(std::iter::once("mediafork").chain(args.iter().copied()))
        .unwrap()
        .command;
    let client = Client::new(Endpoint {
        base: base.to_string(),
        token: token.map(str::to_string),
    });
    let mut out = Vec::new();
    execute(&cmd, &client, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn status_human_and_json() {
    let s = server(None);
    let human = cli(&s.base, None, &["status"]).unwrap();
    assert!(human.contains("version:"), "{human}");
    assert!(human.contains("9.9.9-test"));
    assert!(human.contains("1 (#0 on core 2)"), "{human}");
    let json: serde_json::Value =
        serde_json::from_str(&cli(&s.base, None, &["status", "--json"]).unwrap()).unwrap();
    assert_eq!(json["version"], "9.9.9-test");
    assert_eq!(json["active_calls"], 1);
}

#[test]
fn calls_list_show_and_errors() {
    let s = server(None);
    let list = cli(&s.base, None, &["calls", "list"]).unwrap();
    assert!(list.starts_with("RECORDING_ID"), "{list}");
    assert!(list.contains("r1"));
    let show = cli(
        &s.base,
        None,
        &["calls", "show", "c1@host", "--by", "call_id"],
    )
    .unwrap();
    assert!(show.contains("track-0.wav"), "{show}");

    let err = cli(&s.base, None, &["calls", "show", "zzz"]).unwrap_err();
    assert_eq!(err.exit_code(), EXIT_NOT_FOUND);
    assert!(err.to_string().contains("no call zzz"), "{err}");
    let err = cli(&s.base, None, &["calls", "show", "dup"]).unwrap_err();
    assert_eq!(err.exit_code(), EXIT_SERVER_ERROR);
    assert!(err.to_string().contains("409"), "{err}");
}

#[test]
fn controls_and_tags() {
    let s = server(None);
    let out = cli(
        &s.base,
        None,
        &[
            "pause",
            "G-1",
            "--by",
            "cisco_guid",
            "--who",
            "finesse",
            "--reason",
            "pci",
            "--json",
        ],
    )
    .unwrap();
    let detail: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(detail["state"], "paused");
    assert_eq!(detail["intervals"][0]["reason"], "pci");
    let err = cli(&s.base, None, &["pause", "r1"]).unwrap_err();
    assert_eq!(err.exit_code(), EXIT_SERVER_ERROR);
    assert!(err.to_string().contains("already paused"), "{err}");
    let out = cli(&s.base, None, &["resume", "r1"]).unwrap();
    assert!(out.contains("recording"), "{out}");

    let out = cli(&s.base, None, &["tag", "r1", "queue=billing", "crm=C-9"]).unwrap();
    assert!(out.contains("queue  billing"), "{out}");
    let out = cli(&s.base, None, &["tag", "r1", "queue=", "--json"]).unwrap();
    let detail: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(detail["tags"], serde_json::json!({"crm": "C-9"}));
    let err = cli(&s.base, None, &["tag", "nobody", "a=b"]).unwrap_err();
    assert_eq!(err.exit_code(), EXIT_NOT_FOUND);
}

#[test]
fn stats_drain_reload() {
    let s = server(None);
    let out = cli(&s.base, None, &["stats"]).unwrap();
    assert!(out.contains("7 (unknown_port=7)"), "{out}");
    let out = cli(&s.base, None, &["drain"]).unwrap();
    assert!(out.starts_with("draining"), "{out}");
    let out = cli(&s.base, None, &["undrain", "--json"]).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["draining"],
        false
    );
    let out = cli(&s.base, None, &["reload"]).unwrap();
    assert!(out.contains("media.workers"), "{out}");
}

#[test]
fn recordings_list_and_show() {
    let s = server(None);
    let out = cli(
        &s.base,
        None,
        &["recordings", "list", "--since", "2024-04-30T00:00:00Z"],
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[1].contains("rec-a") && lines[1].contains("1:02"),
        "{out}"
    );
    let out = cli(&s.base, None, &["recordings", "list", "--since", "1h"]).unwrap();
    assert_eq!(out, "no recordings\n");
    let out = cli(&s.base, None, &["recordings", "show", "rec-a"]).unwrap();
    assert!(out.contains("PCMA"), "{out}");
    let out = cli(&s.base, None, &["recordings", "show", "rec-a", "--json"]).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["call"]["x_refci"],
        "17"
    );
    let err = cli(&s.base, None, &["recordings", "show", "nope"]).unwrap_err();
    assert_eq!(err.exit_code(), EXIT_NOT_FOUND);
}

#[test]
fn token_and_unreachable_servers() {
    let s = server(Some("s3cret"));
    let err = cli(&s.base, None, &["status"]).unwrap_err();
    assert_eq!(err.exit_code(), EXIT_SERVER_ERROR);
    assert!(err.to_string().contains("401"), "{err}");
    let err = cli(&s.base, Some("wrong"), &["status"]).unwrap_err();
    assert!(err.to_string().contains("wrong admin token"), "{err}");
    assert!(cli(&s.base, Some("s3cret"), &["status"]).is_ok());

    // A port nobody listens on any more.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let err = cli(&base, None, &["status"]).unwrap_err();
    assert_eq!(err.exit_code(), EXIT_UNREACHABLE);
    assert!(
        err.to_string().contains("is `mediafork run` running?"),
        "{err}"
    );
    assert!(err.to_string().contains(&base));
}

#[test]
fn events_follow_and_count() {
    let s = server(None);
    let events = s.state.events.clone();
    // Publish once the CLI has subscribed, so no event is sent into the void.
    let publisher = s.runtime.spawn(async move {
        while events.receiver_count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for (seq, kind) in [(1, "call_started"), (2, "paused"), (3, "call_ended")] {
            let _ = events.send(CallEvent {
                seq,
                at: "2024-05-01T08:00:00Z".into(),
                event: kind.into(),
                recording_id: Some("r1".into()),
                ..CallEvent::default()
            });
        }
    });
    let out = cli(&s.base, None, &["events", "--count", "2", "--json"]).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["event"], "call_started");
    assert_eq!(lines[1]["seq"], 2);
    s.runtime.block_on(publisher).unwrap();

    // The first stream's subscription may outlive its client for a while,
    // so the count of subscribers cannot tell when the second one is in:
    // send until the test is done.
    let events = s.state.events.clone();
    let repeat = s.runtime.spawn(async move {
        loop {
            let _ = events.send(CallEvent {
                seq: 9,
                at: "2024-05-01T08:00:09Z".into(),
                event: "call_ended".into(),
                recording_id: Some("r1".into()),
                ..CallEvent::default()
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let out = cli(&s.base, None, &["events", "--count", "1"]).unwrap();
    repeat.abort();
    assert_eq!(out, "2024-05-01T08:00:09Z  call_ended  r1\n");
}
