//! A blocking HTTP client for the admin API. Plain HTTP only: the API
//! listens on loopback, or behind a token on a management network.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde_json::Value;

use super::args::AdminOpts;
use crate::admin::api::{ErrorBody, API_PREFIX};
use crate::config::Config;

/// Where the CLI looks without `--admin` or `--config` (the default of
/// `[admin] listen`).
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:8960";

/// Per-request time limit (not for the event stream, which is open-ended).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Largest answer read: a `recordings list --limit` in the hundred
/// thousands is a few tens of MB.
const MAX_BODY: u64 = 256 * 1024 * 1024;

pub const EXIT_OK: u8 = 0;
pub const EXIT_SERVER_ERROR: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;
pub const EXIT_NOT_FOUND: u8 = 4;

/// Why a CLI command failed; each maps to an exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server answered 4xx/5xx.
    #[error("{message} (HTTP {status}, {code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error(
        "cannot reach the admin API at {url}: {detail}\n\
         is `mediafork run` running? admin API expected at {url}; set --admin or [admin] listen"
    )]
    Unreachable { url: String, detail: String },
    /// The server closed the event stream (it is shutting down).
    #[error("the server at {url} ended the event stream")]
    StreamEnded { url: String },
    #[error("{0}")]
    Usage(String),
    /// The server answered, but did not do what was asked (a reload that
    /// was not applied).
    #[error("{0}")]
    Refused(String),
    /// An answer that is not what the API promises.
    #[error("{0}")]
    Protocol(String),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api { status: 404, .. } => EXIT_NOT_FOUND,
            CliError::Api { .. }
            | CliError::Refused(_)
            | CliError::Protocol(_)
            | CliError::Output(_) => EXIT_SERVER_ERROR,
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Unreachable { .. } | CliError::StreamEnded { .. } => EXIT_UNREACHABLE,
        }
    }
}

/// The admin API's base URL (`http://host:port`, no trailing slash) and
/// token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub base: String,
    pub token: Option<String>,
}

impl Endpoint {
    /// From the options: `--admin`, else `--config`'s `[admin] listen`, else
    /// the default; token from `--token`/`MEDIAFORK_ADMIN_TOKEN`, else
    /// `--config`'s `[admin] token`.
    pub fn resolve(opts: &AdminOpts) -> Result<Endpoint, CliError> {
        let config = match &opts.config {
            Some(path) => Some(
                Config::load(path)
                    .map_err(|e| CliError::Usage(format!("--config: {e}")))?
                    .admin,
            ),
            None => None,
        };
        let base = match (&opts.admin, &config) {
            (Some(url), _) => normalize_url(url)?,
            (None, Some(admin)) => url_for_listen(admin.listen),
            (None, None) => DEFAULT_ADMIN_URL.to_string(),
        };
        let token = opts
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| config.and_then(|a| a.token));
        Ok(Endpoint { base, token })
    }
}

/// `--admin`: `http://host:port[/]` or `host:port`.
pub fn normalize_url(s: &str) -> Result<String, CliError> {
    let s = s.trim().trim_end_matches('/');
    if s.starts_with("https://") {
        return Err(CliError::Usage(format!(
            "--admin {s}: the admin API speaks plain HTTP; use http:// (put a TLS proxy in front to reach it remotely)"
        )));
    }
    let rest = s.strip_prefix("http://").unwrap_or(s);
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) || rest.contains("://") {
        return Err(CliError::Usage(format!(
            "--admin {s}: expected http://HOST:PORT or HOST:PORT"
        )));
    }
    Ok(format!("http://{rest}"))
}

/// The URL to reach a server listening on `addr`: a wildcard listen
/// address is reached on loopback.
pub fn url_for_listen(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// Percent-encodes one path segment or query value: Call-IDs carry `@`,
/// `/` and worse.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A connection to one admin API.
pub struct Client {
    endpoint: Endpoint,
    agent: ureq::Agent,
    stream_agent: ureq::Agent,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Client {
        let config = |total: Option<Duration>| {
            ureq::Agent::config_builder()
                // Error answers carry the message to print: read them.
                .http_status_as_error(false)
                // Reach the admin address directly, whatever HTTP_PROXY says.
                .proxy(None)
                .timeout_connect(Some(TIMEOUT))
                .timeout_global(total)
                .user_agent(concat!("mediafork-cli/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Client {
            endpoint,
            agent: ureq::Agent::new_with_config(config(Some(TIMEOUT))),
            stream_agent: ureq::Agent::new_with_config(config(None)),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.endpoint.base)
    }

    fn auth(&self) -> Option<String> {
        self.endpoint.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    fn unreachable(&self, e: &ureq::Error) -> CliError {
        CliError::Unreachable {
            url: self.endpoint.base.clone(),
            detail: e.to_string(),
        }
    }

    fn transport_error(&self, e: ureq::Error) -> CliError {
        match e {
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed => self.unreachable(&e),
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
                CliError::Usage(format!("admin URL {}: {e}", self.endpoint.base))
            }
            other => CliError::Protocol(format!(
                "bad answer from the admin API at {}: {other}",
                self.endpoint.base
            )),
        }
    }

    /// `GET /v1{path}` (path includes any query string).
    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        let mut req = self.agent.get(self.url(path));
        if let Some(a) = self.auth() {
            req = req.header("authorization", a);
        }
        let resp = req.call().map_err(|e| self.transport_error(e))?;
        self.answer(resp)
    }

    /// `POST /v1{path}` with a JSON body, or none.
    pub fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let mut req = self.agent.post(self.url(path));
        if let Some(a) = self.auth() {
            req = req.header("authorization", a);
        }
        let resp = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .send(b.to_string()),
            None => req.send_empty(),
        }
        .map_err(|e| self.transport_error(e))?;
        self.answer(resp)
    }

    fn answer(&self, mut resp: ureq::http::Response<ureq::Body>) -> Result<Value, CliError> {
        let status = resp.status();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| self.transport_error(e))?;
        if status.is_client_error() || status.is_server_error() {
            return Err(api_error(status.as_u16(), &text));
        }
        serde_json::from_str(&text).map_err(|e| {
            CliError::Protocol(format!(
                "the admin API at {} answered with something that is not JSON ({e}); is that address really mediafork's admin API?",
                self.endpoint.base
            ))
        })
    }

    /// `GET /v1/events`: the stream's lines, as they come.
    pub fn events(&self) -> Result<impl BufRead + 'static, CliError> {
        let mut req = self.stream_agent.get(self.url("/events"));
        if let Some(a) = self.auth() {
            req = req.header("authorization", a);
        }
        let resp = req.call().map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        if status.is_client_error() || status.is_server_error() {
            let text = resp
                .into_body()
                .with_config()
                .limit(MAX_BODY)
                .lossy_utf8(true)
                .read_to_string()
                .unwrap_or_default();
            return Err(api_error(status.as_u16(), &text));
        }
        Ok(std::io::BufReader::new(resp.into_body().into_reader()))
    }
}

/// The error of a 4xx/5xx answer: its JSON message, else its text.
fn api_error(status: u16, text: &str) -> CliError {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(b) => CliError::Api {
            status,
            code: b.error,
            message: b.message,
        },
        Err(_) => CliError::Api {
            status,
            code: "http".to_string(),
            message: if text.trim().is_empty() {
                format!("the server answered HTTP {status}")
            } else {
                text.trim().to_string()
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls() {
        assert_eq!(
            normalize_url("127.0.0.1:8960").unwrap(),
            "http://127.0.0.1:8960"
        );
        assert_eq!(
            normalize_url("http://[::1]:8960/").unwrap(),
            "http://[::1]:8960"
        );
        assert_eq!(normalize_url("mf-01:8960").unwrap(), "http://mf-01:8960");
        assert_eq!(
            normalize_url("https://x:1").unwrap_err().exit_code(),
            EXIT_USAGE
        );
        assert_eq!(
            normalize_url("http://x:1/v1").unwrap_err().exit_code(),
            EXIT_USAGE
        );
        assert_eq!(normalize_url("").unwrap_err().exit_code(), EXIT_USAGE);
    }

    #[test]
    fn wildcard_listen_is_reached_on_loopback() {
        assert_eq!(
            url_for_listen("0.0.0.0:8960".parse().unwrap()),
            "http://127.0.0.1:8960"
        );
        assert_eq!(
            url_for_listen("[::]:9000".parse().unwrap()),
            "http://[::1]:9000"
        );
        assert_eq!(
            url_for_listen("10.1.2.3:8960".parse().unwrap()),
            "http://10.1.2.3:8960"
        );
    }

    #[test]
    fn endpoint_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mf.toml");
        std::fs::write(
            &file,
            "[admin]\nlisten = \"0.0.0.0:9001\"\ntoken = \"from-file-0123456789abcdef\"\n",
        )
        .unwrap();
        let mut opts = AdminOpts::default();
        assert_eq!(
            Endpoint::resolve(&opts).unwrap(),
            Endpoint {
                base: DEFAULT_ADMIN_URL.into(),
                token: None
            }
        );
        opts.config = Some(file.clone());
        assert_eq!(
            Endpoint::resolve(&opts).unwrap(),
            Endpoint {
                base: "http://127.0.0.1:9001".into(),
                token: Some("from-file-0123456789abcdef".into())
            }
        );
        opts.admin = Some("10.0.0.5:8960".into());
        opts.token = Some("from-flag".into());
        assert_eq!(
            Endpoint::resolve(&opts).unwrap(),
            Endpoint {
                base: "http://10.0.0.5:8960".into(),
                token: Some("from-flag".into())
            }
        );
        opts.config = Some(dir.path().join("missing.toml"));
        let err = Endpoint::resolve(&opts).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(err.to_string().contains("missing.toml"), "{err}");
    }

    #[test]
    fn encoding_keeps_ids_in_one_segment() {
        assert_eq!(
            encode("a84b4c76e66710@pc33.example.com"),
            "a84b4c76e66710%40pc33.example.com"
        );
        assert_eq!(encode("x/../y z"), "x%2F..%2Fy%20z");
        assert_eq!(encode("2024-05-01T08:00:00Z"), "2024-05-01T08%3A00%3A00Z");
    }

    #[test]
    fn error_answers_keep_the_server_message() {
        let e = api_error(404, r#"{"error":"not_found","message":"no call X"}"#);
        assert_eq!(e.exit_code(), EXIT_NOT_FOUND);
        assert!(e.to_string().starts_with("no call X"), "{e}");
        let e = api_error(502, "Bad Gateway");
        assert_eq!(e.exit_code(), EXIT_SERVER_ERROR);
        assert!(e.to_string().contains("Bad Gateway"));
        assert!(api_error(500, "").to_string().contains("HTTP 500"));
    }
}
