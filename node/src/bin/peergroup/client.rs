//! The CLI's side of the control API: finds the node (the `api.url` and
//! `api.token` files in its data directory, or `--api` and `--token-file`),
//! sends [`Request`]s and reads the event stream.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Result;
use peergroup_node::{
    Request, Response,
    control::{TOKEN_FILE, URL_FILE},
};
use serde::Deserialize;

use crate::exit::Exit;

/// How long a request may take. Generous: a join waits for the first
/// synchronization of a whole group, a connect for `connect_timeout` (30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// A connection to a node's control API.
#[derive(Clone)]
pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

/// The error body the API sends.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    name: String,
    code: u32,
    message: String,
}

/// One message of the event stream.
#[derive(Debug)]
pub(crate) struct StreamEvent {
    /// The event's kind (`RecordChanged`, ..., or `missed`).
    pub(crate) kind: String,
    /// Its JSON.
    pub(crate) data: String,
}

impl Client {
    /// Finds the node: `api` (else the data directory's `api.url`) and
    /// `token_file` (else the data directory's `api.token`).
    pub(crate) fn locate(
        data_dir: Option<&Path>,
        api: Option<&str>,
        token_file: Option<&Path>,
    ) -> Result<Client, Exit> {
        let in_dir = |name: &str| -> Result<PathBuf, Exit> {
            data_dir.map(|d| d.join(name)).ok_or_else(|| {
                Exit::Usage("no data directory to find the node in: pass --data-dir".into())
            })
        };
        let base = match api {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let path = in_dir(URL_FILE)?;
                std::fs::read_to_string(&path)
                    .map_err(|e| {
                        Exit::Unreachable(format!(
                            "no node is running with data directory {} ({}: {e}); start one with `peergroup run`",
                            data_dir.map(|d| d.display().to_string()).unwrap_or_default(),
                            path.display()
                        ))
                    })?
                    .trim()
                    .trim_end_matches('/')
                    .to_owned()
            }
        };
        let token_path = match token_file {
            Some(path) => path.to_path_buf(),
            None => in_dir(TOKEN_FILE)?,
        };
        let token = std::fs::read_to_string(&token_path)
            .map_err(|e| {
                Exit::Unreachable(format!(
                    "cannot read the API token {}: {e}",
                    token_path.display()
                ))
            })?
            .trim()
            .to_owned();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Ok(Client { agent, base, token })
    }

    /// The API's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> Exit {
        Exit::Unreachable(format!("cannot reach the node at {}: {e}", self.base))
    }

    /// Turns a non-success answer into the matching [`Exit`].
    fn failure(&self, status: u16, body: &str) -> Exit {
        if status == 401 {
            return Exit::Unreachable(format!(
                "the node at {} refused the API token (is the token file from this node?)",
                self.base
            ));
        }
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(ErrorBody { error }) => Exit::Refused {
                name: error.name,
                code: error.code,
                message: error.message,
            },
            Err(_) => Exit::Unreachable(format!(
                "unexpected answer from {} (HTTP {status}): {body}",
                self.base
            )),
        }
    }

    /// Sends `request`; its response, or the node's refusal.
    pub(crate) fn request(&self, request: &Request) -> Result<Response, Exit> {
        let body =
            serde_json::to_string(request).map_err(|e| Exit::Usage(format!("request: {e}")))?;
        let mut answer = self
            .agent
            .post(format!("{}/v1/request", self.base))
            .config()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .header("Authorization", &format!("Bearer {}", self.token))
            .content_type("application/json")
            .send(body)
            .map_err(|e| self.unreachable(e))?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .map_err(|e| self.unreachable(e))?;
        if status != 200 {
            return Err(self.failure(status, &text));
        }
        serde_json::from_str(&text)
            .map_err(|e| Exit::Unreachable(format!("cannot read the node's answer: {e}")))
    }

    /// A GET of `path` as text (for `/metrics` and the schema).
    pub(crate) fn get_text(&self, path: &str) -> Result<String, Exit> {
        let mut answer = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .map_err(|e| self.unreachable(e))?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .read_to_string()
            .map_err(|e| self.unreachable(e))?;
        if status != 200 {
            return Err(self.failure(status, &text));
        }
        Ok(text)
    }

    /// Opens the event stream with `query` (the `/v1/events` query string)
    /// and calls `each` for every message until it returns `false` or the
    /// node goes away.
    pub(crate) fn events(
        &self,
        query: &str,
        mut each: impl FnMut(StreamEvent) -> Result<bool>,
    ) -> Result<()> {
        let answer = self
            .agent
            .get(format!("{}/v1/events?{query}", self.base))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .map_err(|e| self.unreachable(e))?;
        let status = answer.status().as_u16();
        if status != 200 {
            let text = answer
                .into_body()
                .read_to_string()
                .map_err(|e| self.unreachable(e))?;
            return Err(self.failure(status, &text).into());
        }
        let reader = BufReader::new(answer.into_body().into_reader());
        let (mut kind, mut data) = (String::new(), String::new());
        for line in reader.lines() {
            let line = line.map_err(|e| self.unreachable(e))?;
            if line.is_empty() {
                if !data.is_empty() {
                    let event = StreamEvent {
                        kind: std::mem::take(&mut kind),
                        data: std::mem::take(&mut data),
                    };
                    if !each(event)? {
                        return Ok(());
                    }
                }
                kind.clear();
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
            // `id:` and `:` comments (keep-alives) need nothing.
        }
        Ok(())
    }
}
