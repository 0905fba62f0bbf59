//! # dialer-api
//!
//! The HTTP/JSON API of a running dialer, one thin layer over the [`dialer_runtime::Dialer`]
//! handle: campaigns, spool, blacklist, agents, a server-sent-events stream (filterable,
//! resumable with `Last-Event-ID`), `/healthz`, Prometheus `/metrics`, the OpenAPI document
//! at `/openapi.json` and a live supervisor page at `/`.
//!
//! Every change goes through the handle (the dialer task is the one writer); reads of the
//! spool (counters, queue wait, campaign log, records and their attempts, today's dials) use
//! read-only SQLite connections of their own ([`READERS`] at most at once). What pollers read
//! (`/api/status`, campaign counters) is shared for [`RECENT_MAX_AGE`] ([`recent`]); each
//! event is serialized once into the SSE frame every subscriber writes ([`events`]). The
//! dialer task itself records its decision latency (`dialer_decision_seconds`, [`metrics`]). Uploads of base files stream into a second connection
//! and then tell the dialer to reload its hopper ([`dialer_runtime::Dialer::refresh`]).
//!
//! Security: every `/api` request and `/metrics` carries a bearer token (read-write, or
//! read-only for supervisors; compared in constant time, never logged); bodies and uploads
//! have size limits; a non-loopback listen address is refused unless `allow_plain_remote`
//! says TLS is terminated in front.
//!
//! ```no_run
//! # async fn demo(dialer: dialer_runtime::Dialer) -> Result<(), Box<dyn std::error::Error>> {
//! use dialer_runtime::config::{ApiConfig, Secret};
//! let mut config = ApiConfig::new("127.0.0.1:8640");
//! config.tokens.push(Secret::from("a-long-random-operator-token".to_owned()));
//! let server = dialer_api::ApiServer::bind(&config, dialer, "spool.db".into()).await?;
//! println!("supervisor page: http://{}/", server.local_addr());
//! server.serve().await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod client;
pub mod events;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod problem;
pub mod recent;
pub mod routes;
pub mod today;

use crate::auth::Tokens;
use crate::events::EventHub;
use crate::problem::Problem;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use dialer_core::AgentState;
use dialer_runtime::config::ApiConfig;
use dialer_runtime::{Dialer, DialerStatus};
use spool_store::SpoolStore;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why the server could not start, as a sentence.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("[api] listen `{0}` is not an address such as 127.0.0.1:8640")]
    BadAddress(String),
    #[error(
        "[api] listen {0} is not a loopback address: the API sends tokens in clear text, so put \
         TLS in front (a reverse proxy) and set allow_plain_remote = true, or listen on 127.0.0.1"
    )]
    PlainRemote(SocketAddr),
    #[error("{0}")]
    Tokens(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the API server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// One sample of the supervisor chart.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Sample {
    pub at: chrono::DateTime<chrono::Utc>,
    pub campaign: String,
    /// Agents on a call / agents logged in (0 when nobody is logged in).
    pub occupancy: f64,
    /// Abandoned / live answers over the legal window.
    pub abandonment: f64,
    pub cap: f64,
    pub lines_in_use: usize,
}

/// Samples kept for the chart: one every 10 s for 6 hours.
const HISTORY: usize = 6 * 360;
const SAMPLE_EVERY: u32 = 10;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub dialer: Dialer,
    pub tokens: Tokens,
    pub hub: EventHub,
    pub spool_path: PathBuf,
    /// Read-only connections not in use (opened on demand, at most [`READERS`]).
    readers: Arc<Mutex<Vec<SpoolStore>>>,
    read_slots: Arc<tokio::sync::Semaphore>,
    pub uploads: routes::Uploads,
    pub max_upload_bytes: u64,
    pub history: Arc<Mutex<VecDeque<Sample>>>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Shared recent copies of what pollers read (`/api/status`, campaign counters).
    pub recent: recent::Recent,
}

/// Read-only spool connections the API reads through at once.
pub const READERS: usize = 3;

/// How old a shared copy of the status or of a campaign's counters may be when served. The
/// page polls every 2 s; under load, the requests within this window share one read.
pub const RECENT_MAX_AGE: Duration = Duration::from_millis(100);

impl AppState {
    /// Runs a read on one of the spool's read-only connections, off the async threads. At
    /// most [`READERS`] reads run at once, each on a connection of its own (SQLite's WAL lets
    /// them read while the dialer task writes); connections are opened on first need and kept.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SpoolStore) -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, Problem> {
        let slot = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(Problem::internal)?;
        let readers = self.readers.clone();
        let path = self.spool_path.clone();
        tokio::task::spawn_blocking(move || {
            let idle = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let store = match idle {
                Some(s) => s,
                None => SpoolStore::open_read_only(&path)?,
            };
            let r = f(&store);
            readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(store);
            drop(slot);
            r
        })
        .await
        .map_err(Problem::internal)?
    }

    /// Times an operation through the handle and turns its error into a problem.
    pub async fn op<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, dialer_runtime::OpError>>,
    ) -> Result<T, Problem> {
        let start = std::time::Instant::now();
        let r = fut.await;
        metrics::observe_handle(start.elapsed().as_secs_f64());
        r.map_err(Problem::from)
    }
}

/// An API server bound to its address, not yet serving.
pub struct ApiServer {
    listener: tokio::net::TcpListener,
    router: Router,
    addr: SocketAddr,
}

impl ApiServer {
    /// Checks the configuration (address, tokens), binds, and starts numbering events.
    pub async fn bind(
        config: &ApiConfig,
        dialer: Dialer,
        spool_path: PathBuf,
    ) -> Result<ApiServer, ServeError> {
        let addr: SocketAddr = config
            .listen
            .parse()
            .map_err(|_| ServeError::BadAddress(config.listen.clone()))?;
        if !addr.ip().is_loopback() && !config.allow_plain_remote {
            return Err(ServeError::PlainRemote(addr));
        }
        let (rw, ro) = config.resolve_tokens().map_err(ServeError::Tokens)?;
        let tokens = Tokens::new(rw, ro).map_err(ServeError::Tokens)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen { addr, source })?;
        let addr = listener.local_addr()?;
        let state = AppState {
            hub: EventHub::start(&dialer, config.event_buffer),
            dialer,
            tokens,
            spool_path,
            readers: Arc::new(Mutex::new(Vec::new())),
            read_slots: Arc::new(tokio::sync::Semaphore::new(READERS)),
            uploads: routes::Uploads::default(),
            max_upload_bytes: config.max_upload_bytes,
            history: Arc::new(Mutex::new(VecDeque::new())),
            metrics: metrics::install(),
            recent: recent::Recent::default(),
        };
        tokio::spawn(sample_status(state.clone()));
        let router = router(state, config.max_body_bytes);
        Ok(ApiServer {
            listener,
            router,
            addr,
        })
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the process ends or the task is aborted.
    pub async fn serve(self) -> Result<(), ServeError> {
        tracing::info!(addr = %self.addr, "API and supervisor page listening");
        axum::serve(self.listener, self.router).await?;
        Ok(())
    }
}

/// The whole application: page, health, OpenAPI and metrics, and the authenticated API.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let api = routes::api()
        .route("/metrics", axum::routing::get(routes::metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes));
    Router::new()
        .merge(page::routes())
        .route("/healthz", axum::routing::get(routes::healthz))
        .route("/openapi.json", axum::routing::get(openapi::serve))
        .merge(api)
        .fallback(|| async {
            Problem::not_found(
                "not_found",
                "there is nothing at this path (see /openapi.json)",
            )
        })
        .with_state(state)
}

/// Refuses a request without a token that grants what its method needs.
async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match state.tokens.check(req.method(), req.headers()) {
        Ok(_) => {
            let resp = next.run(req).await;
            count_status(resp.status().as_u16());
            resp
        }
        Err(p) => {
            // The path and the refusal only: never the header.
            tracing::info!(method = %req.method(), path = %req.uri().path(), code = %p.code, "request refused");
            count_status(p.status);
            p.into_response()
        }
    }
}

fn count_status(status: u16) {
    let class = match status {
        200..=299 => "2xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    };
    ::metrics::counter!("dialer_api_requests_total", "class" => class).increment(1);
}

/// The name of an agent state, as the API and metrics spell it.
pub fn agent_state_name(s: &AgentState) -> &'static str {
    match s {
        AgentState::LoggedOut => "logged_out",
        AgentState::Ready => "ready",
        AgentState::Reserved { .. } => "reserved",
        AgentState::Previewing { .. } => "previewing",
        AgentState::OnCall { .. } => "on_call",
        AgentState::WrapUp { .. } => "wrap_up",
        AgentState::Paused { .. } => "paused",
    }
}

/// Every second: gauges from the status; every ten: a chart sample per campaign.
async fn sample_status(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u32 = 0;
    loop {
        tick.tick().await;
        let status = match state.dialer.status().await {
            Ok(s) => s,
            Err(dialer_runtime::OpError::Stopped) => return,
            Err(_) => continue,
        };
        metrics::on_status(&status);
        if n % SAMPLE_EVERY == 0 {
            let mut h = state.history.lock().unwrap_or_else(|p| p.into_inner());
            for s in samples(&status) {
                if h.len() == HISTORY * status.engine.campaigns.len().max(1) {
                    h.pop_front();
                }
                h.push_back(s);
            }
        }
        n = n.wrapping_add(1);
    }
}

/// One chart sample per campaign from a status snapshot.
pub fn samples(status: &DialerStatus) -> Vec<Sample> {
    status
        .engine
        .campaigns
        .iter()
        .map(|c| {
            let mine = status
                .engine
                .agents
                .iter()
                .filter(|a| a.campaign.as_ref() == Some(&c.campaign) || a.campaign.is_none());
            let (mut busy, mut present) = (0u32, 0u32);
            for a in mine {
                match a.state {
                    AgentState::LoggedOut => {}
                    AgentState::OnCall { .. } => {
                        busy += 1;
                        present += 1
                    }
                    _ => present += 1,
                }
            }
            let a = &c.abandonment;
            Sample {
                at: status.at,
                campaign: c.campaign.to_string(),
                occupancy: if present == 0 {
                    0.0
                } else {
                    f64::from(busy) / f64::from(present)
                },
                abandonment: if a.live_answers == 0 {
                    0.0
                } else {
                    a.abandoned as f64 / a.live_answers as f64
                },
                cap: a.cap,
                lines_in_use: c.calls_in_flight,
            }
        })
        .collect()
}

/// The API server running in the background; dropping it stops the server.
pub struct ApiTask {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Drop for ApiTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the server when the configuration has an `[api]` section (what `dialer run`
/// does); prints where the supervisor page is.
pub async fn spawn(
    config: Option<&ApiConfig>,
    dialer: &Dialer,
    spool_path: &std::path::Path,
) -> Result<Option<ApiTask>, ServeError> {
    let Some(config) = config else {
        return Ok(None);
    };
    let server = ApiServer::bind(config, dialer.clone(), spool_path.to_owned()).await?;
    let addr = server.local_addr();
    eprintln!("API and supervisor page on http://{addr}/");
    Ok(Some(ApiTask {
        addr,
        task: tokio::spawn(server.serve()),
    }))
}
