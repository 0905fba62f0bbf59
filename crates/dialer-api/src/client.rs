//! A small blocking client of the API (the `dialer campaign|spool|blacklist|agent|events`
//! subcommands and the tests use it). Problems come back typed.

use crate::problem::Problem;
use serde_json::Value;
use std::io::BufRead;
use std::time::Duration;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a problem.
    #[error("{0}")]
    Problem(Problem),
    /// No answer (connection refused, timeout...).
    #[error("cannot reach the dialer at {server}: {detail}")]
    Transport { server: String, detail: String },
    /// The answer was not what the API sends.
    #[error(
        "the dialer at {server} answered {status} with a body that is not the API's: {detail}"
    )]
    Unexpected {
        server: String,
        status: u16,
        detail: String,
    },
}

/// A response: status and JSON body (`Value::Null` for an empty one).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// A client for one server and one token.
#[derive(Clone)]
pub struct Client {
    server: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.server)
    }
}

impl Client {
    /// `server` such as `http://127.0.0.1:8640`; `token` as given by the operator.
    pub fn new(server: &str, token: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        Client {
            server: server.trim_end_matches('/').to_owned(),
            token,
            agent,
        }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.server, path)
    }

    fn transport(&self, e: ureq::Error) -> ClientError {
        ClientError::Transport {
            server: self.server.clone(),
            detail: e.to_string(),
        }
    }

    /// Sends a request; any status is returned (use [`Client::call`] for "success or problem").
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ClientError> {
        let url = self.url(path);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        macro_rules! with_auth {
            ($req:expr) => {{
                let r = $req;
                match &auth {
                    Some(a) => r.header("Authorization", a),
                    None => r,
                }
            }};
        }
        let resp = match (method, body) {
            ("GET", _) => with_auth!(self.agent.get(&url)).call(),
            ("DELETE", _) => with_auth!(self.agent.delete(&url)).call(),
            (m, b) => {
                let req = match m {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    other => {
                        return Err(ClientError::Unexpected {
                            server: self.server.clone(),
                            status: 0,
                            detail: format!("unsupported method {other}"),
                        })
                    }
                };
                let req = with_auth!(req);
                match b {
                    Some(v) => req
                        .header("Content-Type", "application/json")
                        .send(v.to_string().as_bytes()),
                    None => req.send_empty(),
                }
            }
        }
        .map_err(|e| self.transport(e))?;
        self.reply(resp)
    }

    /// Uploads raw bytes (a base file).
    pub fn upload(&self, path: &str, bytes: &[u8]) -> Result<Reply, ClientError> {
        let mut req = self
            .agent
            .post(&self.url(path))
            .header("Content-Type", "text/plain");
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let resp = req.send(bytes).map_err(|e| self.transport(e))?;
        self.reply(resp)
    }

    fn reply(&self, resp: ureq::http::Response<ureq::Body>) -> Result<Reply, ClientError> {
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .read_to_string()
            .map_err(|e| self.transport(e))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Reply { status, body })
    }

    /// Sends a request and turns a non-2xx answer into [`ClientError::Problem`].
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let r = self.send(method, path, body)?;
        if (200..300).contains(&r.status) {
            return Ok(r.body);
        }
        match serde_json::from_value::<Problem>(r.body.clone()) {
            Ok(p) => Err(ClientError::Problem(p)),
            Err(_) => Err(ClientError::Unexpected {
                server: self.server.clone(),
                status: r.status,
                detail: r.body.to_string(),
            }),
        }
    }

    /// Follows the event stream, calling `on_event(id, name, data)` for each event until it
    /// returns `false` or the stream ends.
    pub fn events(
        &self,
        query: &str,
        last_event_id: Option<u64>,
        mut on_event: impl FnMut(Option<u64>, &str, &str) -> bool,
    ) -> Result<(), ClientError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut req = agent
            .get(&self.url(&format!("/api/events{query}")))
            .header("Accept", "text/event-stream");
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", &id.to_string());
        }
        let resp = req.call().map_err(|e| self.transport(e))?;
        if resp.status() != 200 {
            let r = self.reply(resp)?;
            return Err(match serde_json::from_value::<Problem>(r.body.clone()) {
                Ok(p) => ClientError::Problem(p),
                Err(_) => ClientError::Unexpected {
                    server: self.server.clone(),
                    status: r.status,
                    detail: r.body.to_string(),
                },
            });
        }
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        let (mut id, mut name, mut data) = (None, String::from("message"), String::new());
        for line in reader.lines() {
            let line = line.map_err(|e| ClientError::Transport {
                server: self.server.clone(),
                detail: e.to_string(),
            })?;
            if line.is_empty() {
                if !data.is_empty() && !on_event(id, &name, &data) {
                    return Ok(());
                }
                name = "message".into();
                data.clear();
                id = None;
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        Ok(())
    }
}
