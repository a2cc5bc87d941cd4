//! The admin subcommands of the `mediafork` binary: `status`, `calls`,
//! `stats`, `drain`, `undrain`, `reload`, `recordings`, `start`, `stop`,
//! `pause`, `resume`, `tag`, `events`. Each is one request to a running
//! server's admin API (`crate::admin::http`), printed as a table or, with
//! `--json`, as the server's JSON; except `recordings decrypt`, which works
//! on the files alone ([`decrypt`]).
//!
//! Exit status: see [`client::CliError::exit_code`] and
//! [`args::EXIT_CODES`].

pub mod args;
pub mod client;
pub mod decrypt;
pub mod output;
pub mod when;

use std::io::{BufRead, Write};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::admin::api::{
    CallDetail, CallEvent, CallSummary, ControlAction, ControlRequest, DrainStatus, IdKind,
    RecordingSummary, ReloadResult, Stats, Status, TagRequest,
};
use args::{AdminCommand, CallsCommand, RecordingsCommand};
use client::{encode, CliError, Client, Endpoint};

/// Runs one admin subcommand against the API the options point at;
/// prints to stdout (errors to stderr) and returns the exit status.
pub fn run(cmd: &AdminCommand) -> u8 {
    if let AdminCommand::Recordings(args::RecordingsArgs {
        command: RecordingsCommand::Decrypt(a),
        opts,
    }) = cmd
    {
        // Offline: the recording's files and the key, no admin API.
        return decrypt::run(a, opts.json, &mut std::io::stdout().lock());
    }
    let result = Endpoint::resolve(cmd.opts()).and_then(|endpoint| {
        let client = Client::new(endpoint);
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        execute(cmd, &client, &mut out)
    });
    match result {
        Ok(()) => client::EXIT_OK,
        // `mediafork events | head -3`: the reader left, which is no error.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => client::EXIT_OK,
        Err(e) => {
            eprintln!("mediafork: error: {e}");
            e.exit_code()
        }
    }
}

/// Runs one admin subcommand with `client`, writing what it prints to `out`.
pub fn execute(cmd: &AdminCommand, client: &Client, out: &mut dyn Write) -> Result<(), CliError> {
    let json = cmd.opts().json;
    match cmd {
        AdminCommand::Status(_) => {
            show::<Status>(out, json, client.get("/status")?, output::status)
        }
        AdminCommand::Calls(a) => match &a.command {
            CallsCommand::List => {
                show::<Vec<CallSummary>>(out, json, client.get("/calls")?, |l| output::calls(l))
            }
            CallsCommand::Show(r) => {
                let path = format!("/calls/{}{}", encode(&r.id), by_query(r.by));
                show::<CallDetail>(out, json, client.get(&path)?, output::call_detail)
            }
        },
        AdminCommand::Stats(_) => show::<Stats>(out, json, client.get("/stats")?, output::stats),
        AdminCommand::Drain(_) => {
            show::<DrainStatus>(out, json, client.post("/drain", None)?, output::drain)
        }
        AdminCommand::Undrain(_) => {
            show::<DrainStatus>(out, json, client.post("/undrain", None)?, output::drain)
        }
        AdminCommand::Reload(_) => {
            let answer = client.post("/reload", None)?;
            let result: ReloadResult = typed(&answer)?;
            if json {
                print_json(out, &answer)?;
            } else {
                out.write_all(output::reload(&result).as_bytes())?;
            }
            if result.applied {
                Ok(())
            } else {
                Err(CliError::Refused(format!(
                    "the configuration was not reloaded: {}",
                    result.message
                )))
            }
        }
        AdminCommand::Recordings(a) => match &a.command {
            RecordingsCommand::List(w) => {
                let mut query = Vec::new();
                if let Some(t) = w.since {
                    query.push(format!("since={}", encode(&when::format_utc(t))));
                }
                if let Some(t) = w.until {
                    query.push(format!("until={}", encode(&when::format_utc(t))));
                }
                if let Some(n) = w.limit {
                    query.push(format!("limit={n}"));
                }
                let path = if query.is_empty() {
                    "/recordings".to_string()
                } else {
                    format!("/recordings?{}", query.join("&"))
                };
                show::<Vec<RecordingSummary>>(out, json, client.get(&path)?, |l| {
                    output::recordings(l)
                })
            }
            RecordingsCommand::Show { id } => {
                let answer = client.get(&format!("/recordings/{}", encode(id)))?;
                match serde_json::from_value(answer.clone()) {
                    Ok(meta) if !json => Ok(out.write_all(output::recording(&meta).as_bytes())?),
                    // A meta.json of a newer schema: show it as it is.
                    _ => print_json(out, &answer),
                }
            }
            RecordingsCommand::Decrypt(_) => Err(CliError::Refused(
                "recordings decrypt runs offline, not through the admin API".into(),
            )),
        },
        AdminCommand::Start(a)
        | AdminCommand::Stop(a)
        | AdminCommand::Pause(a)
        | AdminCommand::Resume(a) => {
            let action = match cmd {
                AdminCommand::Start(_) => ControlAction::Start,
                AdminCommand::Stop(_) => ControlAction::Stop,
                AdminCommand::Pause(_) => ControlAction::Pause,
                _ => ControlAction::Resume,
            };
            let body = ControlRequest {
                by: a.who.clone(),
                reason: a.reason.clone(),
            };
            let path = format!(
                "/calls/{}/{}{}",
                encode(&a.call.id),
                action.name(),
                by_query(a.call.by)
            );
            let answer = client.post(&path, Some(&to_value(&body)?))?;
            show::<CallDetail>(out, json, answer, output::call_detail)
        }
        AdminCommand::Tag(a) => {
            let body = TagRequest {
                tags: a.tags.iter().cloned().collect(),
                by: a.who.clone(),
            };
            let path = format!("/calls/{}/tags{}", encode(&a.id), by_query(a.by));
            let answer = client.post(&path, Some(&to_value(&body)?))?;
            show::<CallDetail>(out, json, answer, output::call_detail)
        }
        AdminCommand::Events(a) => follow_events(client, json, a.count, out),
    }
}

/// Prints each event as it arrives; returns after `count` events.
fn follow_events(
    client: &Client,
    json: bool,
    count: Option<u64>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut lines = client.events()?;
    let mut seen = 0u64;
    let mut line = String::new();
    while !matches!(count, Some(n) if seen >= n) {
        line.clear();
        let read = lines
            .read_line(&mut line)
            .map_err(|e| CliError::Unreachable {
                url: client.endpoint().base.clone(),
                detail: format!("event stream broken: {e}"),
            })?;
        if read == 0 {
            return Err(CliError::StreamEnded {
                url: client.endpoint().base.clone(),
            });
        }
        let text = line.trim_end();
        if text.is_empty() {
            continue;
        }
        if json {
            writeln!(out, "{text}")?;
        } else {
            match serde_json::from_str::<CallEvent>(text) {
                Ok(e) => writeln!(out, "{}", output::event(&e))?,
                // An event this CLI does not know the shape of: as it came.
                Err(_) => writeln!(out, "{text}")?,
            }
        }
        // Followers (`| grep`, a terminal) want each event when it happens.
        out.flush()?;
        seen += 1;
    }
    Ok(())
}

fn by_query(by: Option<IdKind>) -> String {
    by.map(|k| format!("?by={}", k.name())).unwrap_or_default()
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, CliError> {
    serde_json::to_value(v).map_err(|e| CliError::Protocol(format!("encoding the request: {e}")))
}

fn typed<T: DeserializeOwned>(answer: &Value) -> Result<T, CliError> {
    T::deserialize(answer).map_err(|e| {
        CliError::Protocol(format!(
            "unexpected answer from the admin API ({e}); is the server a different mediafork version? --json shows the raw answer"
        ))
    })
}

fn print_json(out: &mut dyn Write, v: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| CliError::Protocol(format!("printing the answer: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// `--json`: the answer as it came (pretty-printed); otherwise `render`.
fn show<T: DeserializeOwned>(
    out: &mut dyn Write,
    json: bool,
    answer: Value,
    render: impl FnOnce(&T) -> String,
) -> Result<(), CliError> {
    if json {
        return print_json(out, &answer);
    }
    let value: T = typed(&answer)?;
    out.write_all(render(&value).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests;
