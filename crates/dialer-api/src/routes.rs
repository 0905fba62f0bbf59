//! The endpoints. Each one reads its input, calls one method of the handle (or one read of
//! the spool), and answers; the rules live in the runtime and the core.

use crate::problem::Problem;
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use dialer_core::{
    AgentEvent, AgentId, BlacklistEntry, BlacklistScope, CallId, CallOptions, Campaign, CampaignId,
    Command, DialOrder, Direction, Disposition, ManualStart, PhoneNumber, RecordId, ScheduleWhen,
    TaskKind, TaskTiming,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spool_store::{
    BreakType, Callback, Conclusion, ImportOptions, ManualDial, ManualTarget, NewRecord,
    ResultCode, SpoolStore,
};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use utoipa::{IntoParams, ToSchema};

/// A JSON body; a bad one is a problem response.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters; bad ones are a problem response.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

/// Path parameters; bad ones are a problem response.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

type ApiResult<T> = Result<T, Problem>;

/// The authenticated API.
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/api/status", get(status))
        .route("/api/history", get(history))
        .route("/api/events", get(events))
        .route("/api/campaigns", get(list_campaigns))
        .route(
            "/api/campaigns/{campaign}",
            get(get_campaign).put(put_campaign),
        )
        .route("/api/campaigns/{campaign}/start", post(start_campaign))
        .route("/api/campaigns/{campaign}/stop", post(stop_campaign))
        .route("/api/campaigns/{campaign}/state", post(set_campaign_state))
        .route("/api/campaigns/{campaign}/counters", get(counters))
        .route("/api/campaigns/{campaign}/supervision", get(supervision))
        .route("/api/campaigns/{campaign}/queue-wait", get(queue_wait))
        .route("/api/campaigns/{campaign}/log", get(campaign_log))
        .route("/api/campaigns/{campaign}/uploads", post(upload))
        .route("/api/uploads/{upload}", get(get_upload))
        .route("/api/campaigns/{campaign}/records", post(respool))
        .route(
            "/api/campaigns/{campaign}/schedules",
            post(schedule_call).delete(remove_schedules),
        )
        .route("/api/campaigns/{campaign}/tasks", post(add_task))
        .route(
            "/api/campaigns/{campaign}/contacts/{number}",
            delete(remove_contact),
        )
        .route(
            "/api/records/{record}",
            get(get_record).delete(remove_record),
        )
        .route("/api/records/{record}/position", get(record_position))
        .route(
            "/api/records/{record}/status",
            get(record_status).post(update_record_status),
        )
        .route(
            "/api/campaigns/{campaign}/records/by-external-id/{external_id}",
            get(get_record_by_external_id),
        )
        .route("/api/records/{record}/fields", post(update_fields))
        .route(
            "/api/campaigns/{campaign}/result-codes",
            get(get_result_codes).put(put_result_codes),
        )
        .route(
            "/api/campaigns/{campaign}/breaks",
            get(get_breaks).put(put_breaks),
        )
        .route("/api/agents/{agent}/activity", get(agent_activity))
        .route("/api/blacklist", get(blacklist_list).post(blacklist_add))
        .route("/api/blacklist/delete", post(blacklist_delete_bulk))
        .route("/api/blacklist/{number}", delete(blacklist_delete))
        .route("/api/agents", get(list_agents))
        .route("/api/agents/{agent}", get(get_agent))
        .route("/api/agents/{agent}/{action}", post(agent_action))
        .route("/api/agents/{agent}/disposition", post(dispose))
        .route("/api/agents/{agent}/preview/{choice}", post(preview))
        .route("/api/agents/{agent}/manual-dial", post(manual_dial))
        .route("/api/calls/{call}", get(get_call))
        .route("/api/calls/{call}/hangup", post(hangup))
        .route("/api/calls/{call}/hold", post(hold))
        .route("/api/calls/{call}/unhold", post(unhold))
}

// ---- health, status, metrics -------------------------------------------------------------

/// Health of the dialer and its telephone system.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `telephony_down`, `draining`.
    pub status: String,
    pub telephony: String,
}

#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn healthz(State(st): State<AppState>) -> Response {
    match st.dialer.status().await {
        Ok(s) => {
            let (code, status) = if s.draining {
                (StatusCode::SERVICE_UNAVAILABLE, "draining")
            } else if matches!(s.health, dialer_runtime::HealthView::Down { .. }) {
                (StatusCode::SERVICE_UNAVAILABLE, "telephony_down")
            } else {
                (StatusCode::OK, "ok")
            };
            (
                code,
                axum::Json(Health {
                    status: status.into(),
                    telephony: s.telephony,
                }),
            )
                .into_response()
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "health", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    match &st.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => Problem::new(
            StatusCode::NOT_FOUND,
            "metrics_elsewhere",
            "metrics go to the recorder the embedding program installed",
        )
        .into_response(),
    }
}

/// What the dialer is doing now, with each campaign's day so far.
#[derive(Serialize)]
pub struct StatusView {
    /// The dialer's status: agents, calls in flight, campaigns, telephone system health.
    #[serde(flatten)]
    pub status: dialer_runtime::DialerStatus,
    /// Per campaign: dials, answers and abandons since its local midnight (from the spool).
    pub today: Vec<crate::today::Today>,
}

#[utoipa::path(get, path = "/api/status", tag = "status", security(("bearer" = [])),
    responses((status = 200, description = "Agents with their calls and records, calls in flight, campaign counters, abandonment position, telephone system health; `today`: per campaign, dials, answers and abandons since its local midnight (see the Today schema). A snapshot at most 100 ms old (`at` says when), shared by the requests that arrive together; `/api/agents` reads live.", body = Object)))]
pub async fn status(State(st): State<AppState>) -> ApiResult<Response> {
    let body = status_body(&st).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The serialized status with each campaign's day, shared by the requests within
/// [`crate::RECENT_MAX_AGE`]: one round trip through the dialer task, one spool read and one
/// serialization for all of them.
pub async fn status_body(st: &AppState) -> ApiResult<bytes::Bytes> {
    st.recent
        .get("status", crate::RECENT_MAX_AGE, || async {
            let status = st.op(st.dialer.status()).await?;
            let today = today_of(st, &status).await?;
            Ok(bytes::Bytes::from(
                serde_json::to_vec(&StatusView { status, today }).map_err(Problem::internal)?,
            ))
        })
        .await
}

/// Each campaign's day so far, at the status's time.
async fn today_of(
    st: &AppState,
    status: &dialer_runtime::DialerStatus,
) -> ApiResult<Vec<crate::today::Today>> {
    let campaigns: Vec<String> = status
        .engine
        .campaigns
        .iter()
        .map(|c| c.campaign.to_string())
        .collect();
    let at = status.at;
    st.read(move |s| {
        campaigns
            .iter()
            .map(|c| Ok(crate::today::today(s, c, at)?))
            .collect()
    })
    .await
}

#[utoipa::path(get, path = "/api/history", tag = "status", security(("bearer" = [])),
    responses((status = 200, body = Vec<crate::Sample>)))]
pub async fn history(State(st): State<AppState>) -> Json<Vec<crate::Sample>> {
    let h = st.history.lock().unwrap_or_else(|p| p.into_inner());
    Json(h.iter().cloned().collect())
}

// ---- events ------------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Only events of this campaign (events that name no campaign pass).
    pub campaign: Option<String>,
    /// Only events of this agent.
    pub agent: Option<String>,
    /// Resume after this event id (the `Last-Event-ID` header wins).
    pub last_event_id: Option<u64>,
}

#[utoipa::path(get, path = "/api/events", tag = "events", security(("bearer" = [])),
    params(EventFilter, ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event")),
    responses((status = 200, description = "text/event-stream: `id` is the sequence number, `event` the kind (dialed, skipped, progress, preview_offered, agent_linked, agent_unlinked, agent_away, rejected, telephony_down, telephony_up, telephony, draining; `lost` when events left the buffer before a resuming client got them)", content_type = "text/event-stream")))]
pub async fn events(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<EventFilter>,
) -> ApiResult<Response> {
    let last = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    Problem::bad_field(
                        "Last-Event-ID",
                        "Last-Event-ID must be an event id (a number)",
                    )
                })?,
        ),
        None => f.last_event_id,
    };
    let (campaign, agent) = (f.campaign, f.agent);
    let mut seen = last.unwrap_or(0);
    // A task feeds the response: replayed events first, then live ones; a subscriber that
    // lags behind the live channel catches up from the buffer. Frames are the hub's finished
    // bytes; events that are ready together go out in one write.
    let (tx, out) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, Infallible>>(64);
    let (replay, mut rx) = st.hub.subscribe(last);
    let hub = st.hub.clone();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let lost = |n: u64| crate::events::sse_frame(None, "lost", &format!("{{\"lost\":{n}}}"));
        let mut chunk = bytes::BytesMut::new();
        if replay.lost > 0 {
            chunk.extend_from_slice(&lost(replay.lost));
        }
        let mut pending: Vec<Arc<crate::events::Numbered>> = replay.events;
        loop {
            for e in pending.drain(..) {
                if e.id <= seen {
                    continue;
                }
                seen = e.id;
                if e.matches(campaign.as_deref(), agent.as_deref()) {
                    chunk.extend_from_slice(&e.frame);
                }
            }
            if !chunk.is_empty() && tx.send(Ok(chunk.split().freeze())).await.is_err() {
                return;
            }
            let first = match tokio::time::timeout(SSE_KEEP_ALIVE, rx.recv()).await {
                Err(_) => {
                    // A comment line keeps proxies and clients from timing the stream out.
                    if tx
                        .send(Ok(bytes::Bytes::from_static(b": keep-alive\n\n")))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                Ok(r) => r,
            };
            let mut next = first.map_err(|e| match e {
                RecvError::Lagged(n) => TryRecvError::Lagged(n),
                RecvError::Closed => TryRecvError::Closed,
            });
            loop {
                match next {
                    Ok(e) => pending.push(e),
                    Err(TryRecvError::Lagged(_)) => {
                        let r = hub.since(seen);
                        if r.lost > 0 {
                            chunk.extend_from_slice(&lost(r.lost));
                        }
                        pending.extend(r.events);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => {
                        // Deliver what is left, then end the stream.
                        pending.retain(|e| e.id > seen);
                        for e in pending.drain(..) {
                            if e.matches(campaign.as_deref(), agent.as_deref()) {
                                chunk.extend_from_slice(&e.frame);
                            }
                        }
                        if !chunk.is_empty() {
                            let _ = tx.send(Ok(chunk.split().freeze())).await;
                        }
                        return;
                    }
                }
                next = rx.try_recv();
            }
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream_from(out));
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// How long an idle event stream waits before it sends a keep-alive comment.
const SSE_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

// ---- campaigns ---------------------------------------------------------------------------

/// A campaign's settings and whether it is dialing.
#[derive(Serialize, ToSchema)]
pub struct CampaignView {
    /// Every setting (the same as a `[[campaign]]` section of the configuration file).
    #[schema(value_type = Object)]
    pub settings: Campaign,
    /// The engine's view when the campaign runs: pacer, hopper, calls in flight, waiting,
    /// agents, abandonment position.
    #[schema(value_type = Option<Object>)]
    pub running: Option<dialer_core::CampaignStatus>,
    /// `active`, `inactive` (stopped by an operator, refuses callbacks) or `finished` (its
    /// list is spent; re-opened when records are added).
    #[schema(value_type = String)]
    pub state: spool_store::CampaignState,
    /// When the state last changed.
    pub state_since: Option<DateTime<Utc>>,
}

async fn campaign_views(st: &AppState) -> ApiResult<Vec<CampaignView>> {
    campaign_views_of(st, None).await
}

/// The views of the campaigns named (all when `None`), in that order.
async fn campaign_views_of(
    st: &AppState,
    names: Option<Vec<String>>,
) -> ApiResult<Vec<CampaignView>> {
    let status = st.op(st.dialer.status()).await?;
    let settings = st
        .read(move |s| {
            let names = match names {
                Some(n) => n,
                None => s
                    .campaign_names()?
                    .into_iter()
                    .map(|c| c.to_string())
                    .collect(),
            };
            let mut out = Vec::new();
            for id in names {
                let (state, since) = s.campaign_state(&id)?;
                out.push((s.campaign(&id)?, state, since));
            }
            Ok(out)
        })
        .await?;
    Ok(settings
        .into_iter()
        .map(|(c, state, state_since)| CampaignView {
            running: status
                .engine
                .campaigns
                .iter()
                .find(|r| r.campaign == c.id)
                .cloned(),
            settings: c,
            state,
            state_since,
        })
        .collect())
}

/// ECCP `getcampaignlist` filters; every one optional.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CampaignListParams {
    /// `active`, `inactive` or `finished`.
    #[param(value_type = Option<String>)]
    pub state: Option<spool_store::CampaignState>,
    /// `preview`, `progressive`, `power` or `predictive`.
    pub dial_mode: Option<String>,
    /// Part of the name, any case.
    pub name: Option<String>,
    /// Campaigns whose dates reach this day (YYYY-MM-DD) or later.
    #[param(value_type = Option<String>)]
    pub from: Option<chrono::NaiveDate>,
    /// Campaigns whose dates begin this day or earlier.
    #[param(value_type = Option<String>)]
    pub to: Option<chrono::NaiveDate>,
    pub offset: Option<u32>,
    /// 1 to 1000, default 100.
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/campaigns", tag = "campaigns", security(("bearer" = [])),
    params(CampaignListParams),
    responses((status = 200, description = "Campaigns by name; `X-Total-Count` is how many matched before offset and limit", body = Vec<CampaignView>), (status = 400, body = Problem)))]
pub async fn list_campaigns(
    State(st): State<AppState>,
    Query(q): Query<CampaignListParams>,
) -> ApiResult<Response> {
    let filter = spool_store::CampaignFilter {
        state: q.state,
        dial_mode: q.dial_mode,
        name: q.name,
        from: q.from,
        to: q.to,
        offset: q.offset.unwrap_or(0),
        limit: q.limit,
    };
    let page = st.op(st.dialer.list_campaigns(filter)).await?;
    let names = page.campaigns.into_iter().map(|c| c.name).collect();
    let views = campaign_views_of(&st, Some(names)).await?;
    Ok((
        [("x-total-count", page.total.to_string())],
        axum::Json(views),
    )
        .into_response())
}

/// A campaign state to set.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateBody {
    /// `active` (started, re-opened if finished) or `inactive` (stopped until activated).
    #[schema(value_type = String)]
    pub state: spool_store::CampaignState,
}

#[utoipa::path(post, path = "/api/campaigns/{campaign}/state", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)), request_body = StateBody,
    responses((status = 200, body = CampaignView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn set_campaign_state(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(b): Json<StateBody>,
) -> ApiResult<Json<CampaignView>> {
    st.op(st
        .dialer
        .set_campaign_state(CampaignId::from(id.clone()), b.state))
        .await?;
    get_campaign(State(st), Path(id)).await
}

#[utoipa::path(get, path = "/api/campaigns/{campaign}", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 404, body = Problem)))]
pub async fn get_campaign(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    campaign_views(&st)
        .await?
        .into_iter()
        .find(|c| *c.settings.id.0 == *id)
        .map(Json)
        .ok_or_else(|| unknown_campaign(&id))
}

fn unknown_campaign(id: &str) -> Problem {
    Problem::not_found(
        "unknown_campaign",
        format!("campaign {id:?} does not exist"),
    )
    .field("campaign")
}

#[utoipa::path(put, path = "/api/campaigns/{campaign}", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)),
    request_body(content = Object, description = "Campaign settings, as in a [[campaign]] section: `time_zone` is required for a new campaign; what is left out takes its default; unknown settings are refused"),
    responses((status = 200, body = CampaignView), (status = 400, body = Problem)))]
pub async fn put_campaign(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<CampaignView>> {
    let Value::Object(mut map) = body else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body must be a JSON object of campaign settings",
        ));
    };
    match map.get("id") {
        None => {
            map.insert("id".into(), Value::String(id.clone()));
        }
        Some(Value::String(s)) if *s == id => {}
        Some(_) => {
            return Err(Problem::bad_field(
                "id",
                format!("the body's id must be the path's campaign {id:?}"),
            ))
        }
    }
    // An update lays the changes over the stored settings.
    let existing = st
        .read({
            let id = id.clone();
            move |s| {
                if s.has_campaign(&id)? {
                    Ok(Some(s.campaign(&id)?))
                } else {
                    Ok(None)
                }
            }
        })
        .await?;
    let user = match existing {
        Some(c) => {
            let mut base = serde_json::to_value(&c).map_err(Problem::internal)?;
            overlay(&mut base, &Value::Object(map));
            base
        }
        None => Value::Object(map),
    };
    let campaign =
        dialer_runtime::config::campaign_from_value(&user, 0).map_err(|(field, problem)| {
            Problem::new(StatusCode::BAD_REQUEST, "invalid_campaign", problem).field(&field)
        })?;
    st.op(st.dialer.upsert_campaign(campaign)).await?;
    get_campaign(State(st), Path(id)).await
}

fn overlay(base: &mut Value, user: &Value) {
    match (base, user) {
        (Value::Object(b), Value::Object(u)) => {
            for (k, v) in u {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => overlay(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

#[utoipa::path(post, path = "/api/campaigns/{campaign}/start", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 404, body = Problem)))]
pub async fn start_campaign(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    let campaign = st.read(campaign_settings(id.clone())).await?;
    st.op(st.dialer.upsert_campaign(campaign)).await?;
    get_campaign(State(st), Path(id)).await
}

fn campaign_settings(id: String) -> impl FnOnce(&SpoolStore) -> ApiResult<Campaign> + Send {
    move |s| {
        if !s.has_campaign(&id)? {
            return Err(unknown_campaign(&id));
        }
        Ok(s.campaign(&id)?)
    }
}

#[utoipa::path(post, path = "/api/campaigns/{campaign}/stop", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn stop_campaign(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.op(st.dialer.stop_campaign(CampaignId::from(id))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Supervision filters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SupervisionParams {
    /// Count the ledger's figures over attempts placed at or after this moment (RFC 3339;
    /// ECCP `datetime_start`); all attempts when absent.
    #[param(value_type = Option<String>)]
    pub since: Option<DateTime<Utc>>,
    /// Seconds within which a queued call must be taken to count for the service level;
    /// default 20, at most 3600.
    pub service_level_s: Option<u32>,
}

/// ECCP `getcampaignstatus` agents, active calls and stats; uContact `campaignstatus` and
/// `queuesummary`: one campaign as a supervisor reads it.
#[utoipa::path(get, path = "/api/campaigns/{campaign}/supervision", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path), SupervisionParams),
    responses((status = 200, description = "Agents by state with their call and record, calls in flight with dial, answer, queue and link times, callers waiting and the longest wait, calls on hold, the abandonment position, and talk, hold and service-level figures from the ledger", body = Object), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn supervision(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SupervisionParams>,
) -> ApiResult<Json<dialer_runtime::supervision::Supervision>> {
    let level = q.service_level_s.unwrap_or(20);
    if level > 3600 {
        return Err(Problem::bad_field(
            "service_level_s",
            format!("{level} s is more than an hour"),
        ));
    }
    Ok(Json(
        st.op(st.dialer.supervision(CampaignId::from(id), q.since, level))
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/campaigns/{campaign}/counters", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)),
    responses((status = 200, description = "ECCP getcampaignstatus: records (total, pending) and attempts (placing, ringing, onqueue, success, onhold, failure, shortcall, noanswer, abandoned, unknown) never mixed in one count; a copy at most 100 ms old, shared by the requests that arrive together", body = Object), (status = 404, body = Problem)))]
pub async fn counters(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    // Counting a large campaign scans its records: pollers share a copy at most
    // `RECENT_MAX_AGE` old.
    let key = format!("counters/{id}");
    let body = st
        .recent
        .get(&key, crate::RECENT_MAX_AGE, || async {
            let c = st.read(move |s| Ok(s.campaign_status(&id)?)).await?;
            Ok(bytes::Bytes::from(
                serde_json::to_vec(&c).map_err(Problem::internal)?,
            ))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[utoipa::path(get, path = "/api/campaigns/{campaign}/queue-wait", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)),
    responses((status = 200, description = "Seconds from queue to agent in buckets [0,4] [5,9] … [25,29] ≥30, plus abandoned", body = Object), (status = 404, body = Problem)))]
pub async fn queue_wait(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<spool_store::QueueWaitHistogram>> {
    Ok(Json(st.read(move |s| Ok(s.queue_wait(&id)?)).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// From (RFC 3339), inclusive.
    pub from: DateTime<Utc>,
    /// To (RFC 3339), inclusive.
    pub to: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/campaigns/{campaign}/log", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path), Range),
    responses((status = 200, body = Vec<Object>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn campaign_log(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(r): Query<Range>,
) -> ApiResult<Json<Vec<spool_store::LogEntry>>> {
    if r.to < r.from {
        return Err(Problem::bad_field("to", "`to` is before `from`"));
    }
    Ok(Json(
        st.read(move |s| Ok(s.campaign_log(&CampaignId::from(id), r.from, r.to)?))
            .await?,
    ))
}

// ---- uploads -----------------------------------------------------------------------------

/// Uploads in progress and done, by id.
#[derive(Clone, Default)]
pub struct Uploads {
    inner: Arc<Mutex<(u64, HashMap<u64, UploadView>)>>,
}

/// An upload's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UploadView {
    pub id: u64,
    pub campaign: String,
    pub file_name: String,
    /// `receiving`, `done`, `failed` (then `error` says why; lines already committed stay,
    /// and uploading the same file name again resumes after them).
    pub state: String,
    pub bytes: u64,
    pub lines: u64,
    pub imported: u64,
    pub rejected: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The spool's id of the base (set when the import finished).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_id: Option<u64>,
    /// Rejected lines with their reasons (when done; at most 1,000).
    #[schema(value_type = Vec<Object>)]
    pub rejects: Vec<spool_store::Reject>,
    /// The record lines the caller said the file holds (`lines`, uContact's `cant`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_lines: Option<u64>,
    /// Set when the file did not hold the declared number of record lines (a truncated or
    /// concatenated upload): what it held and what was declared. Lines imported stay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The warning of an upload whose file held `found` record lines (blank lines not counted)
/// where the caller declared `declared`; `None` when they agree.
fn declared_lines_warning(declared: Option<u64>, found: u64) -> Option<String> {
    let declared = declared?;
    if declared == found {
        return None;
    }
    let (n, word) = if found < declared {
        (declared - found, "fewer")
    } else {
        (found - declared, "more")
    };
    Some(format!(
        "the file held {found} record lines, {n} {word} than the {declared} declared: the upload may be truncated or hold another file; the lines imported stay"
    ))
}

impl Uploads {
    fn update(&self, id: u64, f: impl FnOnce(&mut UploadView)) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = g.1.get_mut(&id) {
            f(v);
        }
    }

    fn get(&self, id: u64) -> Option<UploadView> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .get(&id)
            .cloned()
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// Name of the file; an interrupted upload of the same name resumes.
    pub file_name: String,
    /// File-wide IANA zone of the callees (ECCP uploadbasewithtimezone).
    pub time_zone: Option<String>,
    /// ISO alpha-2 country for national numbers (default: the campaign's).
    pub country: Option<String>,
    /// Answer at once (202) instead of when the file is imported (201).
    #[serde(default)]
    pub wait: Option<bool>,
    /// The number of record lines the file holds (uContact's `cant`; blank lines not
    /// counted): when the file holds another number, the finished upload carries a `warning`.
    pub lines: Option<u64>,
}

/// Reads a streamed body as `std::io::Read` for the importer (which runs on a blocking thread).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>,
    cur: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

#[utoipa::path(post, path = "/api/campaigns/{campaign}/uploads", tag = "spool", security(("bearer" = [])),
    params(("campaign" = String, Path), UploadParams),
    request_body(content = String, description = "The base file: campaign;number;data;alternatives;priority;agentphone per line", content_type = "text/plain"),
    responses((status = 201, body = UploadView), (status = 202, body = UploadView), (status = 404, body = Problem), (status = 413, body = Problem)))]
pub async fn upload(
    State(st): State<AppState>,
    Path(campaign): Path<String>,
    Query(p): Query<UploadParams>,
    body: axum::body::Body,
) -> ApiResult<Response> {
    if p.file_name.trim().is_empty() || p.file_name.len() > 255 {
        return Err(Problem::bad_field(
            "file_name",
            "file_name must be 1 to 255 characters",
        ));
    }
    if let Some(z) = &p.time_zone {
        if !known_zone(z) {
            return Err(Problem::bad_field(
                "time_zone",
                format!("{z:?} is not an IANA time zone such as America/New_York"),
            ));
        }
    }
    st.read(campaign_settings(campaign.clone())).await?;
    let id = {
        let mut g = st.uploads.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        let id = g.0;
        g.1.insert(
            id,
            UploadView {
                id,
                campaign: campaign.clone(),
                file_name: p.file_name.clone(),
                state: "receiving".into(),
                bytes: 0,
                lines: 0,
                imported: 0,
                rejected: 0,
                error: None,
                base_id: None,
                rejects: Vec::new(),
                declared_lines: p.lines,
                warning: None,
            },
        );
        id
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut opts = ImportOptions::new(
        campaign.clone(),
        p.file_name.clone(),
        st.dialer.clock().now(),
    );
    opts.time_zone = p.time_zone.clone();
    opts.country = p.country.clone();
    opts.user = "api".into();
    opts.batch_lines = 2_000;
    let uploads = st.uploads.clone();
    let path = st.spool_path.clone();
    let import = tokio::task::spawn_blocking(move || {
        let mut store = SpoolStore::open(&path)?;
        let reader = ChannelReader {
            rx,
            cur: bytes::Bytes::new(),
        };
        let summary = store.import_base(reader, &opts, &mut |pr| {
            uploads.update(id, |v| {
                v.lines = pr.lines;
                v.imported = pr.imported;
                v.rejected = pr.rejected;
            })
        })?;
        let rejects = store.rejects(summary.base_id)?;
        Ok::<_, spool_store::StoreError>((summary, rejects))
    });
    // Feed the body, counting bytes against the limit.
    let limit = st.max_upload_bytes;
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    let mut too_large = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => {
                total += b.len() as u64;
                if total > limit {
                    too_large = true;
                    let _ = tx
                        .send(Err(format!("the upload is larger than {limit} bytes")))
                        .await;
                    break;
                }
                st.uploads.update(id, |v| v.bytes = total);
                if tx.send(Ok(b)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                // The client went away mid-upload: committed batches stay (resumable with
                // the same file name), the batch being read is rolled back.
                let _ = tx
                    .send(Err(format!("the upload was interrupted: {e}")))
                    .await;
                break;
            }
        }
    }
    drop(tx);
    let uploads = st.uploads.clone();
    let dialer = st.dialer.clone();
    let finish = async move {
        let result = import.await;
        match result {
            Ok(Ok((summary, rejects))) => {
                uploads.update(id, |v| {
                    v.state = "done".into();
                    v.lines = summary.lines;
                    v.imported = summary.imported;
                    v.rejected = summary.rejected;
                    v.base_id = Some(summary.base_id);
                    v.rejects = rejects.into_iter().take(1_000).collect();
                    v.warning = declared_lines_warning(
                        v.declared_lines,
                        summary.lines.saturating_sub(summary.blank_lines),
                    );
                });
                // The dialer reloads its hopper from the spool.
                let _ = dialer.refresh(CampaignId::from(campaign)).await;
            }
            Ok(Err(e)) => uploads.update(id, |v| {
                v.state = "failed".into();
                v.error = Some(e.to_string());
            }),
            Err(e) => uploads.update(id, |v| {
                v.state = "failed".into();
                v.error = Some(format!("the import stopped: {e}"));
            }),
        }
    };
    if too_large {
        finish.await;
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_too_large",
            format!("the upload is larger than {limit} bytes; lines already committed stay"),
        ));
    }
    if p.wait == Some(false) {
        tokio::spawn(finish);
        let view = st.uploads.get(id);
        return Ok((StatusCode::ACCEPTED, axum::Json(view)).into_response());
    }
    finish.await;
    let view = st
        .uploads
        .get(id)
        .ok_or_else(|| Problem::internal("upload lost"))?;
    if view.state == "failed" {
        let detail = view.error.clone().unwrap_or_default();
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "upload_failed",
            detail,
        ));
    }
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

/// Whether a zone name is one the importer and the engine know.
fn known_zone(z: &str) -> bool {
    z.parse::<chrono_tz::Tz>().is_ok()
}

#[utoipa::path(get, path = "/api/uploads/{upload}", tag = "spool", security(("bearer" = [])),
    params(("upload" = u64, Path)),
    responses((status = 200, body = UploadView), (status = 404, body = Problem)))]
pub async fn get_upload(
    State(st): State<AppState>,
    Path(id): Path<u64>,
) -> ApiResult<Json<UploadView>> {
    st.uploads
        .get(id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("unknown_upload", format!("upload {id} does not exist")))
}

// ---- records -----------------------------------------------------------------------------

/// A record to put into the spool.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordBody {
    /// Main number first, then alternatives; national numbers use the campaign's country.
    pub numbers: Vec<String>,
    /// Data fields, name to value.
    #[serde(default)]
    pub data: Vec<(String, String)>,
    /// 2 or more (1 is reserved for callbacks); default 2.
    pub priority: Option<u32>,
    /// The agent who owns the record (progressive ownership).
    pub owner_agent: Option<String>,
    /// The CRM's id of the contact.
    pub contact_id: Option<String>,
    /// The callee's IANA zone (default: the campaign's).
    pub time_zone: Option<String>,
    /// The id the caller knows the record by (UCCX `addrecord` id), unique in the campaign.
    pub external_id: Option<String>,
    /// When the contact entered the queue (UCCX `queuestarttime`), not in the future: a
    /// re-entered callback with its original queue start keeps its place.
    pub queue_start: Option<DateTime<Utc>>,
}

/// Parses numbers with the campaign's country into a new record.
async fn new_record(st: &AppState, campaign: &str, body: RecordBody) -> ApiResult<NewRecord> {
    let c = st.read(campaign_settings(campaign.to_owned())).await?;
    if body.numbers.is_empty() {
        return Err(Problem::bad_field(
            "numbers",
            "a record needs at least one number",
        ));
    }
    let mut numbers = Vec::with_capacity(body.numbers.len());
    for (i, raw) in body.numbers.iter().enumerate() {
        numbers.push(PhoneNumber::parse(raw, &c.default_country).map_err(|e| {
            Problem::bad_field(&format!("numbers[{i}]"), format!("number {raw:?}: {e}"))
        })?);
    }
    if let Some(z) = &body.time_zone {
        if !known_zone(z) {
            return Err(Problem::bad_field(
                "time_zone",
                format!("{z:?} is not an IANA time zone"),
            ));
        }
    }
    Ok(NewRecord {
        campaign: c.id,
        numbers,
        data: body.data,
        priority: body.priority,
        owner_agent: body.owner_agent.map(AgentId::from),
        contact_id: body.contact_id,
        time_zone: body.time_zone,
        external_id: body.external_id,
        queue_start: body.queue_start,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Created {
    #[schema(value_type = u64)]
    pub record: RecordId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<u64>,
}

/// VICIdial `external_add_lead`'s checks.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AddLeadParams {
    /// Refuse a number on the do-not-call list of every campaign (422 `dnc_global`).
    pub dnc_check: Option<bool>,
    /// Refuse a number on the campaign's own list (422 `dnc_campaign`).
    pub campaign_dnc_check: Option<bool>,
}

#[utoipa::path(post, path = "/api/campaigns/{campaign}/records", tag = "spool", security(("bearer" = [])),
    params(("campaign" = String, Path), AddLeadParams), request_body = RecordBody,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn respool(
    State(st): State<AppState>,
    Path(campaign): Path<String>,
    Query(q): Query<AddLeadParams>,
    Json(body): Json<RecordBody>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let new = new_record(&st, &campaign, body).await?;
    let checks = spool_store::DncChecks {
        dnc_check: q.dnc_check.unwrap_or(false),
        campaign_dnc_check: q.campaign_dnc_check.unwrap_or(false),
    };
    let record = st.op(st.dialer.add_lead(new, checks)).await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            record,
            schedule: None,
            task: None,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    pub record: RecordBody,
    /// `{"kind":"at","at":"2026-06-02T15:00:00Z"}` or `{"kind":"range","start_date":"2026-06-02","end_date":"2026-06-05","start_time":"10:00:00","end_time":"12:00:00"}` (callee's local time).
    #[schema(value_type = Object)]
    pub when: ScheduleWhen,
    /// Only this agent may take it.
    pub agent: Option<String>,
    /// Dial this number instead.
    pub new_phone: Option<String>,
    /// A new name for the contact (ECCP `newcontactname`): it overwrites the record's first
    /// data field.
    pub new_contact_name: Option<String>,
    /// Move the callback the record already has to this one; without it a second callback
    /// at another time is refused (`already_scheduled`).
    #[serde(default)]
    pub reschedule: bool,
}

#[utoipa::path(post, path = "/api/campaigns/{campaign}/schedules", tag = "spool", security(("bearer" = [])),
    params(("campaign" = String, Path)), request_body = ScheduleBody,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn schedule_call(
    State(st): State<AppState>,
    Path(campaign): Path<String>,
    Json(body): Json<ScheduleBody>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let new = new_record(&st, &campaign, body.record).await?;
    let new_phone = match &body.new_phone {
        None => None,
        Some(raw) => {
            let country = st
                .read(campaign_settings(campaign.clone()))
                .await?
                .default_country;
            Some(
                PhoneNumber::parse(raw, &country)
                    .map_err(|e| Problem::bad_field("new_phone", format!("number {raw:?}: {e}")))?,
            )
        }
    };
    let (record, schedule) = st
        .op(st.dialer.schedule_call(
            new,
            Callback {
                when: body.when,
                agent: body.agent.map(AgentId::from),
                new_phone,
                contact_name: body.new_contact_name,
                reschedule: body.reschedule,
            },
        ))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            record,
            schedule: Some(schedule.0),
            task: None,
        }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RemoveSchedules {
    /// The number whose callbacks go.
    pub number: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    pub removed: usize,
    /// Records removed (remove contact).
    #[schema(value_type = Vec<u64>)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordId>,
}

#[utoipa::path(delete, path = "/api/campaigns/{campaign}/schedules", tag = "spool", security(("bearer" = [])),
    params(("campaign" = String, Path), RemoveSchedules),
    responses((status = 200, body = Removed), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn remove_schedules(
    State(st): State<AppState>,
    Path(campaign): Path<String>,
    Query(q): Query<RemoveSchedules>,
) -> ApiResult<Json<Removed>> {
    if q.to < q.from {
        return Err(Problem::bad_field("to", "`to` is before `from`"));
    }
    let e164 = e164(&st, &campaign, &q.number, "number").await?;
    let removed = st
        .op(st
            .dialer
            .remove_schedules(CampaignId::from(campaign), e164, q.from, q.to))
        .await?;
    Ok(Json(Removed {
        removed,
        records: Vec::new(),
    }))
}

async fn e164(st: &AppState, campaign: &str, raw: &str, field: &str) -> ApiResult<String> {
    let c = st.read(campaign_settings(campaign.to_owned())).await?;
    PhoneNumber::parse(raw, &c.default_country)
        .map(|n| n.e164().to_owned())
        .map_err(|e| Problem::bad_field(field, format!("number {raw:?}: {e}")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskBody {
    pub record: RecordBody,
    /// `{"kind":"at","at":...}` (calldate set) or `{"kind":"when_free"}` (calldate null).
    #[schema(value_type = Object)]
    pub timing: TaskTiming,
    /// `automatic`, `bulk` or `manual`.
    #[schema(value_type = String)]
    pub kind: TaskKind,
}

#[utoipa::path(post, path = "/api/campaigns/{campaign}/tasks", tag = "spool", security(("bearer" = [])),
    params(("campaign" = String, Path)), request_body = TaskBody,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn add_task(
    State(st): State<AppState>,
    Path(campaign): Path<String>,
    Json(body): Json<TaskBody>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let new = new_record(&st, &campaign, body.record).await?;
    let (record, task) = st
        .op(st.dialer.add_task(new, body.timing, body.kind))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            record,
            schedule: None,
            task: Some(task.0),
        }),
    ))
}

#[utoipa::path(delete, path = "/api/campaigns/{campaign}/contacts/{number}", tag = "spool", security(("bearer" = [])),
    params(("campaign" = String, Path), ("number" = String, Path)),
    responses((status = 200, body = Removed), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn remove_contact(
    State(st): State<AppState>,
    Path((campaign, number)): Path<(String, String)>,
) -> ApiResult<Json<Removed>> {
    let e164 = e164(&st, &campaign, &number, "number").await?;
    let records = st
        .op(st.dialer.remove_contact(CampaignId::from(campaign), e164))
        .await?;
    if records.is_empty() {
        return Err(Problem::not_found(
            "unknown_number",
            format!("number {number:?} is in no record of the campaign"),
        )
        .field("number"));
    }
    Ok(Json(Removed {
        removed: records.len(),
        records,
    }))
}

/// One attempt of the ledger.
#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    #[schema(value_type = u64)]
    pub call: CallId,
    pub number: String,
    pub agent: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The outcome (`None` while in flight).
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<dialer_core::CallOutcome>,
    pub reconciled: bool,
    /// When it entered the queue, and when an agent took it.
    pub queued_at: Option<DateTime<Utc>>,
    pub linked_at: Option<DateTime<Utc>>,
    /// The agent who talked (`agent` is the one it was placed for, if any).
    pub linked_agent: Option<String>,
    /// Time on hold, milliseconds, and since when it is on hold now.
    pub hold_ms: u64,
    pub on_hold_since: Option<DateTime<Utc>>,
    /// What the telephone system calls the call: its unique id, the channel (trunk) it went
    /// out on, the queue it entered; each once reported.
    pub unique_id: Option<String>,
    pub channel: Option<String>,
    pub queue: Option<String>,
}

impl From<spool_store::AttemptRow> for AttemptView {
    fn from(a: spool_store::AttemptRow) -> Self {
        AttemptView {
            call: a.call,
            number: a.e164,
            agent: a.agent,
            started_at: a.started_at,
            ended_at: a.ended_at,
            outcome: a.outcome,
            reconciled: a.reconciled,
            queued_at: a.queued_at,
            linked_at: a.linked_at,
            linked_agent: a.linked_agent,
            hold_ms: a.hold_ms,
            on_hold_since: a.on_hold_since,
            unique_id: a.unique_id,
            channel: a.channel,
            queue: a.queue,
        }
    }
}

/// ECCP `getcallinfo`: one call of the ledger, with its times, agents, hold, outcome and
/// what the telephone system calls it.
#[utoipa::path(get, path = "/api/calls/{call}", tag = "spool", security(("bearer" = [])),
    params(("call" = u64, Path)),
    responses((status = 200, body = AttemptView), (status = 404, body = Problem)))]
pub async fn get_call(
    State(st): State<AppState>,
    Path(id): Path<u64>,
) -> ApiResult<Json<AttemptView>> {
    Ok(Json(
        st.read(move |s| Ok(AttemptView::from(s.attempt(CallId(id))?)))
            .await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct RecordView {
    #[schema(value_type = Object)]
    pub record: dialer_core::SpoolRecord,
    /// The id its caller knows it by, if one was given.
    pub external_id: Option<String>,
    pub attempts: Vec<AttemptView>,
    /// What agents concluded (agent, result code with its label and levels, comment, tags,
    /// the dialer action), oldest first; each names the attempt (`call`) it concluded.
    #[schema(value_type = Vec<Object>)]
    pub dispositions: Vec<spool_store::DispositionRow>,
}

#[utoipa::path(get, path = "/api/records/{record}", tag = "spool", security(("bearer" = [])),
    params(("record" = u64, Path)),
    responses((status = 200, body = RecordView), (status = 404, body = Problem)))]
pub async fn get_record(
    State(st): State<AppState>,
    Path(id): Path<u64>,
) -> ApiResult<Json<RecordView>> {
    Ok(Json(
        st.read(move |s| record_view(s, s.record(&RecordId(id))?))
            .await?,
    ))
}

/// A record with its attempts and conclusions, as the spool has them.
fn record_view(
    s: &spool_store::SpoolStore,
    record: dialer_core::SpoolRecord,
) -> Result<RecordView, Problem> {
    let attempts = s
        .attempts(&record.campaign.0)?
        .into_iter()
        .filter(|a| a.record == record.id)
        .map(AttemptView::from)
        .collect();
    let dispositions = s.conclusions(&record.id)?;
    let external_id = s.external_id(&record.id)?;
    Ok(RecordView {
        record,
        external_id,
        attempts,
        dispositions,
    })
}

/// UCCX `getrecord`: the record a campaign knows by the caller's id.
#[utoipa::path(get, path = "/api/campaigns/{campaign}/records/by-external-id/{external_id}", tag = "spool", security(("bearer" = [])),
    params(("campaign" = String, Path), ("external_id" = String, Path)),
    responses((status = 200, body = RecordView), (status = 404, body = Problem)))]
pub async fn get_record_by_external_id(
    State(st): State<AppState>,
    Path((campaign, external_id)): Path<(String, String)>,
) -> ApiResult<Json<RecordView>> {
    let record = st
        .op(st
            .dialer
            .record_by_external_id(CampaignId::from(campaign), external_id))
        .await?;
    Ok(Json(st.read(move |s| record_view(s, record)).await?))
}

/// What a removal did.
#[derive(Serialize, ToSchema)]
pub struct RemovedView {
    /// Whether the record was live (removing a finished record changes nothing).
    pub removed: bool,
}

/// UCCX `removerecord`: finishes one record as removed; refused while a call on it is in
/// flight.
#[utoipa::path(delete, path = "/api/records/{record}", tag = "spool", security(("bearer" = [])),
    params(("record" = u64, Path)),
    responses((status = 200, body = RemovedView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn remove_record(
    State(st): State<AppState>,
    Path(id): Path<u64>,
) -> ApiResult<Json<RemovedView>> {
    let removed = st.op(st.dialer.remove_record(RecordId(id))).await?;
    Ok(Json(RemovedView { removed }))
}

/// UCCX `getcontactpositionoffset`: how many records the dialer takes before this one.
#[utoipa::path(get, path = "/api/records/{record}/position", tag = "spool", security(("bearer" = [])),
    params(("record" = u64, Path)),
    responses((status = 200, body = Object), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn record_position(
    State(st): State<AppState>,
    Path(id): Path<u64>,
) -> ApiResult<Json<spool_store::QueuePosition>> {
    Ok(Json(st.op(st.dialer.queue_position(RecordId(id))).await?))
}

/// UCCX record status (seed row C1): NEW, RETRY, AGENTABANDONED, INACTIVE, REQUESTED,
/// PROCESSING, DIALINGTARGET, QUEUED, AGENTACKNOWLEDGED, COMPLETED,
/// EXCEEDEDNUMBEROFATTEMPTS, INVALID, REMOVED, from the record and its call in progress.
#[utoipa::path(get, path = "/api/records/{record}/status", tag = "spool", security(("bearer" = [])),
    params(("record" = u64, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn record_status(
    State(st): State<AppState>,
    Path(id): Path<u64>,
) -> ApiResult<Json<spool_store::RecordStatusView>> {
    Ok(Json(st.op(st.dialer.record_status(RecordId(id))).await?))
}

/// UCCX `updaterecord` (seed row C3): one change at a time.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordUpdate {
    /// `INACTIVE` takes the record out of dialing; `NEW`, `RETRY` or `ACTIVE` brings an
    /// inactive record back. The in-call statuses (REQUESTED, QUEUED, AGENTACKNOWLEDGED,
    /// DIALINGTARGET…) follow the call and are refused, and so are the final ones.
    pub status: Option<String>,
    /// Reserve the record for this agent (a same-agent callback); `""` = anyone.
    pub agentid: Option<String>,
}

#[utoipa::path(post, path = "/api/records/{record}/status", tag = "spool", security(("bearer" = [])),
    params(("record" = u64, Path)), request_body = RecordUpdate,
    responses((status = 200, body = Object), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_record_status(
    State(st): State<AppState>,
    Path(id): Path<u64>,
    Json(body): Json<RecordUpdate>,
) -> ApiResult<Json<spool_store::RecordStatusView>> {
    use spool_store::RecordChange;
    let change = match (body.status, body.agentid) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_field(
                "status",
                "give a status or an agentid, not both: each is its own change",
            ))
        }
        (None, None) => return Err(Problem::bad_field("status", "no status and no agentid")),
        (None, Some(agent)) => RecordChange::Assign {
            agent: Some(agent).filter(|a| !a.is_empty()),
        },
        (Some(status), None) => match status.to_ascii_uppercase().as_str() {
            "INACTIVE" => RecordChange::Deactivate,
            "NEW" | "RETRY" | "ACTIVE" => RecordChange::Reactivate,
            "REQUESTED" | "PROCESSING" | "DIALINGTARGET" | "QUEUED" | "AGENTACKNOWLEDGED"
            | "AGENTABANDONED" => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "status_not_settable",
                    format!(
                        "status {status} follows the call in progress: the dialer sets it, \
                         not a request"
                    ),
                )
                .field("status"))
            }
            "COMPLETED" | "EXCEEDEDNUMBEROFATTEMPTS" | "INVALID" | "IVR_FAILURE" | "REMOVED" => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "status_not_settable",
                    format!(
                        "status {status} is a record's end: conclude it with a disposition or \
                         remove it (DELETE /api/records/{id})"
                    ),
                )
                .field("status"))
            }
            _ => {
                return Err(Problem::bad_field(
                    "status",
                    format!("unknown status {status:?}: expected INACTIVE, NEW, RETRY or ACTIVE"),
                ))
            }
        },
    };
    Ok(Json(
        st.op(st.dialer.change_record(RecordId(id), change)).await?,
    ))
}

// ---- blacklist ---------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlacklistItem {
    /// E.164 (`+12125550101`) or national for the campaign's country when `campaign` is set.
    pub number: String,
    /// The campaign it covers; absent = every campaign.
    pub campaign: Option<String>,
    /// When it stops blocking; absent = never.
    pub expires_at: Option<DateTime<Utc>>,
    /// `outbound` (default), `inbound` or `both`.
    #[schema(value_type = Option<String>)]
    pub direction: Option<Direction>,
    /// The callee's name (uContact), at most 200 characters, no control characters.
    pub name: Option<String>,
    /// The callee's company (uContact).
    pub company: Option<String>,
    /// The user who added the entry (uContact).
    pub username: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlacklistAdd {
    /// One entry or many (bulk: one transaction, all or nothing).
    pub entries: Vec<BlacklistItem>,
}

#[derive(Serialize, ToSchema)]
pub struct Added {
    pub added: usize,
}

async fn scoped_number(
    st: &AppState,
    raw: &str,
    campaign: Option<String>,
    field: &str,
) -> ApiResult<(String, BlacklistScope)> {
    match campaign {
        Some(c) => {
            let n = e164(st, &c, raw, field).await?;
            Ok((n, BlacklistScope::Campaign(CampaignId::from(c))))
        }
        None => {
            if !raw.trim_start().starts_with('+') {
                return Err(Problem::bad_field(
                    field,
                    format!("number {raw:?}: a number for every campaign must be in E.164 form (+ and country code)"),
                ));
            }
            let n = PhoneNumber::parse(raw, "US")
                .map_err(|e| Problem::bad_field(field, format!("number {raw:?}: {e}")))?;
            Ok((n.e164().to_owned(), BlacklistScope::All))
        }
    }
}

#[utoipa::path(post, path = "/api/blacklist", tag = "blacklist", security(("bearer" = [])),
    request_body = BlacklistAdd,
    responses((status = 201, body = Added), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn blacklist_add(
    State(st): State<AppState>,
    Json(body): Json<BlacklistAdd>,
) -> ApiResult<(StatusCode, Json<Added>)> {
    if body.entries.is_empty() {
        return Err(Problem::bad_field("entries", "no entries to add"));
    }
    let mut entries = Vec::with_capacity(body.entries.len());
    for (i, e) in body.entries.into_iter().enumerate() {
        let (number, scope) =
            scoped_number(&st, &e.number, e.campaign, &format!("entries[{i}].number")).await?;
        entries.push(spool_store::DncEntry {
            entry: BlacklistEntry {
                number,
                scope,
                expires_at: e.expires_at,
                direction: e.direction.unwrap_or(Direction::Outbound),
            },
            details: spool_store::DncDetails {
                name: e.name,
                company: e.company,
                username: e.username,
            },
        });
    }
    let added = entries.len();
    st.op(st.dialer.blacklist_add_entries(entries)).await?;
    Ok((StatusCode::CREATED, Json(Added { added })))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BlacklistQuery {
    /// Only this number (E.164).
    pub number: Option<String>,
    /// Only the entries of this campaign; `*` = only the entries for every campaign.
    pub scope: Option<String>,
    pub offset: Option<usize>,
    /// 1 to 10000 (default 1000).
    pub limit: Option<usize>,
}

/// The do-not-call entries with uContact's fields (name, company, username), by number.
#[utoipa::path(get, path = "/api/blacklist", tag = "blacklist", security(("bearer" = [])),
    params(BlacklistQuery),
    responses((status = 200, body = Object), (status = 400, body = Problem)))]
pub async fn blacklist_list(
    State(st): State<AppState>,
    Query(q): Query<BlacklistQuery>,
) -> ApiResult<Json<Vec<spool_store::DncRow>>> {
    let filter = spool_store::DncFilter {
        number: q.number,
        scope: q.scope.map(|s| {
            if s == "*" {
                BlacklistScope::All
            } else {
                BlacklistScope::Campaign(CampaignId::from(s))
            }
        }),
        offset: q.offset.unwrap_or(0),
        limit: q.limit.unwrap_or(1000),
    };
    Ok(Json(st.op(st.dialer.blacklist_entries(filter)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlacklistKey {
    pub number: String,
    /// Absent = the entry for every campaign.
    pub campaign: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlacklistDelete {
    pub items: Vec<BlacklistKey>,
}

#[utoipa::path(post, path = "/api/blacklist/delete", tag = "blacklist", security(("bearer" = [])),
    request_body = BlacklistDelete,
    responses((status = 200, body = Removed), (status = 400, body = Problem)))]
pub async fn blacklist_delete_bulk(
    State(st): State<AppState>,
    Json(body): Json<BlacklistDelete>,
) -> ApiResult<Json<Removed>> {
    if body.items.is_empty() {
        return Err(Problem::bad_field("items", "no entries to delete"));
    }
    let mut items = Vec::with_capacity(body.items.len());
    for (i, k) in body.items.into_iter().enumerate() {
        items.push(scoped_number(&st, &k.number, k.campaign, &format!("items[{i}].number")).await?);
    }
    let removed = st.op(st.dialer.blacklist_remove(items)).await?;
    Ok(Json(Removed {
        removed,
        records: Vec::new(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ScopeParam {
    /// The campaign of the entry; absent = the entry for every campaign.
    pub campaign: Option<String>,
}

#[utoipa::path(delete, path = "/api/blacklist/{number}", tag = "blacklist", security(("bearer" = [])),
    params(("number" = String, Path), ScopeParam),
    responses((status = 200, body = Removed), (status = 404, body = Problem)))]
pub async fn blacklist_delete(
    State(st): State<AppState>,
    Path(number): Path<String>,
    Query(q): Query<ScopeParam>,
) -> ApiResult<Json<Removed>> {
    let item = scoped_number(&st, &number, q.campaign, "number").await?;
    let removed = st.op(st.dialer.blacklist_remove(vec![item])).await?;
    if removed == 0 {
        return Err(Problem::not_found(
            "unknown_entry",
            format!("number {number:?} is not on the do-not-call list in that scope"),
        )
        .field("number"));
    }
    Ok(Json(Removed {
        removed,
        records: Vec::new(),
    }))
}

// ---- agents and calls --------------------------------------------------------------------

/// An agent as the engine sees it.
#[derive(Serialize, ToSchema)]
pub struct AgentView {
    pub agent: String,
    /// `logged_out`, `ready`, `reserved`, `previewing`, `on_call`, `wrap_up`, `paused`.
    pub state: String,
    /// The state with its data (call, record, pause reason...).
    #[schema(value_type = Object)]
    pub detail: dialer_core::AgentState,
    pub since: DateTime<Utc>,
    pub campaign: Option<String>,
    #[schema(value_type = Option<u64>)]
    pub call: Option<CallId>,
    #[schema(value_type = Option<u64>)]
    pub record: Option<RecordId>,
    /// Leaves (pause or logout) after the current call.
    pub leaving: bool,
}

fn agent_view(a: dialer_core::AgentStatus) -> AgentView {
    AgentView {
        agent: a.agent.to_string(),
        state: crate::agent_state_name(&a.state).to_owned(),
        detail: a.state,
        since: a.since,
        campaign: a.campaign.map(|c| c.to_string()),
        call: a.call,
        record: a.record,
        leaving: a.leaving,
    }
}

#[utoipa::path(get, path = "/api/agents", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = Vec<AgentView>)))]
pub async fn list_agents(State(st): State<AppState>) -> ApiResult<Json<Vec<AgentView>>> {
    let s = st.op(st.dialer.status()).await?;
    Ok(Json(s.engine.agents.into_iter().map(agent_view).collect()))
}

#[utoipa::path(get, path = "/api/agents/{agent}", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path)),
    responses((status = 200, body = AgentView), (status = 404, body = Problem)))]
pub async fn get_agent(
    State(st): State<AppState>,
    Path(agent): Path<String>,
) -> ApiResult<Json<AgentView>> {
    let s = st.op(st.dialer.status()).await?;
    s.engine
        .agents
        .into_iter()
        .find(|a| *a.agent.0 == *agent)
        .map(|a| Json(agent_view(a)))
        .ok_or_else(|| {
            Problem::not_found(
                "unknown_agent",
                format!("agent {agent:?} is not known (log in first)"),
            )
            .field("agent")
        })
}

/// The body of an agent action; which fields count depends on the action.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    /// `login`: the campaigns.
    pub campaigns: Option<Vec<String>>,
    /// `login`: log the agent out after this many seconds without a `ping` (ECCP
    /// `loginagent` timeout); absent: never.
    pub inactivity_timeout_s: Option<u32>,
    /// `pause`, `pause-after-call`: the break, an id of the catalogue of the agent's
    /// campaigns (free text when they have no catalogue).
    pub break_id: Option<String>,
    /// The same as `break_id` (older clients).
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/api/agents/{agent}/{action}", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path), ("action" = String, Path, description = "login, ready, pause, pause-after-call, logout-after-call, wrap-up, logout, ping")),
    request_body(content = AgentBody, description = "login: {\"campaigns\": [...], \"inactivity_timeout_s\": 300}; pause and pause-after-call: {\"reason\": ...}; others: no body or {}"),
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn agent_action(
    State(st): State<AppState>,
    Path((agent, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let b: AgentBody = if body.iter().all(u8::is_ascii_whitespace) {
        AgentBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))?
    };
    let reason = |b: &AgentBody| {
        b.break_id
            .clone()
            .or_else(|| b.reason.clone())
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| Problem::bad_field("break_id", "a pause needs a break"))
    };
    let event = match action.as_str() {
        "login" => {
            let campaigns = b
                .campaigns
                .clone()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| Problem::bad_field("campaigns", "login needs the agent's campaigns"))?;
            AgentEvent::LoggedIn {
                campaigns: campaigns.into_iter().map(CampaignId::from).collect(),
                inactivity_timeout_s: b.inactivity_timeout_s,
            }
        }
        "ready" => AgentEvent::Ready,
        "pause" => AgentEvent::Paused { reason: reason(&b)? },
        "pause-after-call" => AgentEvent::PauseAfterCall { reason: reason(&b)? },
        "logout-after-call" => AgentEvent::LogoutAfterCall,
        "wrap-up" => AgentEvent::WrapUp,
        "logout" => AgentEvent::LoggedOut,
        "ping" => AgentEvent::Ping,
        other => {
            return Err(Problem::not_found(
                "unknown_action",
                format!("{other:?} is not an agent action (login, ready, pause, pause-after-call, logout-after-call, wrap-up, logout, ping)"),
            ))
        }
    };
    if agent.trim().is_empty() || agent.len() > 128 {
        return Err(Problem::bad_field(
            "agent",
            "an agent name is 1 to 128 characters",
        ));
    }
    st.op(st.dialer.agent(AgentId::from(agent), event)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispositionBody {
    #[schema(value_type = u64)]
    pub record: RecordId,
    /// `{"action":"done"}`, `{"action":"respool", ...}`, `{"action":"respool_alternative"}`,
    /// `{"action":"blacklist","scope":{"scope":"all"},"expires_at":null}`,
    /// `{"action":"schedule","schedule":{...},"campaign":null}`, `{"action":"reschedule",...}`.
    #[schema(value_type = Object)]
    pub disposition: Disposition,
    /// A code of the campaign's result-code catalogue (unknown or inactive: 422).
    pub result_code: Option<String>,
    pub comment: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[utoipa::path(post, path = "/api/agents/{agent}/disposition", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path)), request_body = DispositionBody,
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn dispose(
    State(st): State<AppState>,
    Path(agent): Path<String>,
    Json(b): Json<DispositionBody>,
) -> ApiResult<StatusCode> {
    let conclusion = Conclusion {
        agent: Some(AgentId::from(agent)),
        result_code: b.result_code,
        comment: b.comment,
        tags: b.tags,
    };
    st.op(st.dialer.conclude(b.record, conclusion, b.disposition))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    #[schema(value_type = u64)]
    pub record: RecordId,
}

#[utoipa::path(post, path = "/api/agents/{agent}/preview/{choice}", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path), ("choice" = String, Path, description = "dial or skip")),
    request_body = PreviewBody,
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn preview(
    State(st): State<AppState>,
    Path((agent, choice)): Path<(String, String)>,
    Json(b): Json<PreviewBody>,
) -> ApiResult<StatusCode> {
    let agent = AgentId::from(agent);
    let command = match choice.as_str() {
        "dial" => Command::PreviewDial {
            agent,
            record: b.record,
        },
        "skip" => Command::PreviewSkip {
            agent,
            record: b.record,
        },
        other => {
            return Err(Problem::not_found(
                "unknown_action",
                format!("{other:?} is not a preview choice (dial or skip)"),
            ))
        }
    };
    st.op(st.dialer.command(command)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/calls/{call}/hangup", tag = "agents", security(("bearer" = [])),
    params(("call" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn hangup(State(st): State<AppState>, Path(call): Path<u64>) -> ApiResult<StatusCode> {
    st.op(st.dialer.hangup(CallId(call))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// ECCP `hold`: the callee of a linked call goes on hold once the telephone system reports it.
#[utoipa::path(post, path = "/api/calls/{call}/hold", tag = "agents", security(("bearer" = [])),
    params(("call" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn hold(State(st): State<AppState>, Path(call): Path<u64>) -> ApiResult<StatusCode> {
    st.op(st.dialer.hold(CallId(call))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// ECCP `unhold`.
#[utoipa::path(post, path = "/api/calls/{call}/unhold", tag = "agents", security(("bearer" = [])),
    params(("call" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn unhold(State(st): State<AppState>, Path(call): Path<u64>) -> ApiResult<StatusCode> {
    st.op(st.dialer.unhold(CallId(call))).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- catalogues, record fields, agent activity -------------------------------------------

#[utoipa::path(get, path = "/api/campaigns/{campaign}/result-codes", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)),
    responses((status = 200, description = "The campaign's result codes (code, label, levels l1/l2/l3, active), active and inactive", body = Vec<Object>), (status = 404, body = Problem)))]
pub async fn get_result_codes(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ResultCode>>> {
    Ok(Json(
        st.op(st.dialer.result_codes(CampaignId::from(id))).await?,
    ))
}

/// A catalogue of result codes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultCodesBody {
    /// `{"code": "SALE", "label": "Sale", "l1": "positive", "l2": null, "l3": null, "active": true}`;
    /// codes the campaign had that are left out become inactive.
    #[schema(value_type = Vec<Object>)]
    pub result_codes: Vec<ResultCode>,
}

#[utoipa::path(put, path = "/api/campaigns/{campaign}/result-codes", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)), request_body = ResultCodesBody,
    responses((status = 200, body = Vec<Object>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn put_result_codes(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(b): Json<ResultCodesBody>,
) -> ApiResult<Json<Vec<ResultCode>>> {
    let campaign = CampaignId::from(id);
    st.op(st.dialer.set_result_codes(campaign.clone(), b.result_codes))
        .await?;
    Ok(Json(st.op(st.dialer.result_codes(campaign)).await?))
}

#[utoipa::path(get, path = "/api/campaigns/{campaign}/breaks", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)),
    responses((status = 200, description = "The campaign's breaks (id, name, active), active and inactive", body = Vec<Object>), (status = 404, body = Problem)))]
pub async fn get_breaks(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<BreakType>>> {
    Ok(Json(st.op(st.dialer.breaks(CampaignId::from(id))).await?))
}

/// A catalogue of breaks.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreaksBody {
    /// `{"id": "lunch", "name": "Lunch", "active": true}`; breaks the campaign had that are
    /// left out become inactive.
    #[schema(value_type = Vec<Object>)]
    pub breaks: Vec<BreakType>,
}

#[utoipa::path(put, path = "/api/campaigns/{campaign}/breaks", tag = "campaigns", security(("bearer" = [])),
    params(("campaign" = String, Path)), request_body = BreaksBody,
    responses((status = 200, body = Vec<Object>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn put_breaks(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(b): Json<BreaksBody>,
) -> ApiResult<Json<Vec<BreakType>>> {
    let campaign = CampaignId::from(id);
    st.op(st.dialer.set_breaks(campaign.clone(), b.breaks))
        .await?;
    Ok(Json(st.op(st.dialer.breaks(campaign)).await?))
}

/// Record data to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldsBody {
    /// `[["name", "value"], ...]`: each replaces the value of that name or is added.
    pub fields: Vec<(String, String)>,
}

#[utoipa::path(post, path = "/api/records/{record}/fields", tag = "spool", security(("bearer" = [])),
    params(("record" = u64, Path)), request_body = FieldsBody,
    responses((status = 200, description = "The record with its new data", body = Object), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn update_fields(
    State(st): State<AppState>,
    Path(id): Path<u64>,
    Json(b): Json<FieldsBody>,
) -> ApiResult<Json<dialer_core::SpoolRecord>> {
    Ok(Json(
        st.op(st.dialer.update_fields(RecordId(id), b.fields))
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/agents/{agent}/activity", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path), Range),
    responses((status = 200, description = "ECCP getagentactivitysummary: latest session start and end, sessions, breaks with durations, calls and talk seconds per campaign", body = Object), (status = 400, body = Problem)))]
pub async fn agent_activity(
    State(st): State<AppState>,
    Path(agent): Path<String>,
    Query(r): Query<Range>,
) -> ApiResult<Json<spool_store::AgentActivity>> {
    if r.to < r.from {
        return Err(Problem::bad_field("to", "`to` is before `from`"));
    }
    Ok(Json(
        st.op(st.dialer.agent_activity(AgentId::from(agent), r.from, r.to))
            .await?,
    ))
}

/// A manual dial for an agent: VICIdial `external_dial`, uContact `AgentCall` (with
/// `agent_first`, its two-step call) and `AgentCallwithData`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualDialBody {
    /// The campaign the call is for (uContact `outqueue`).
    pub campaign: String,
    /// The number to dial (VICIdial `value`, uContact `destination`): the campaign's live
    /// record holding it, else a new record. National numbers use `phone_code`'s country,
    /// else the campaign's. Either `number` or `record`.
    pub number: Option<String>,
    /// Country calling code of `number` (VICIdial `phone_code`: 1, 44, 598…).
    pub phone_code: Option<u16>,
    /// Data fields of a new record (uContact `AgentCallwithData`), name to value.
    #[serde(default)]
    pub data: Vec<(String, String)>,
    /// An existing record to dial (VICIdial `lead_id`).
    #[schema(value_type = Option<u64>)]
    pub record: Option<RecordId>,
    /// With `record`: which of its numbers to dial (VICIdial `alt_dial`), else its current.
    pub alt_number: Option<String>,
    /// Caller id for this call (VICIdial `group_alias`, uContact `callerid`):
    /// `"Name" <number>` or a number.
    pub caller_id: Option<String>,
    /// Digits in front of this call's dial string instead of the campaign's (VICIdial
    /// `dial_prefix`).
    pub dial_prefix: Option<String>,
    /// Ring the agent first and dial the callee once the agent answers (uContact's
    /// two-step `AgentCall`); default: the callee first, then the agent held for it.
    #[serde(default)]
    pub agent_first: bool,
    /// Offer the record to the agent first; nothing is dialed until the agent asks
    /// (`/api/agents/{agent}/preview/dial`) (VICIdial `preview=YES`).
    #[serde(default)]
    pub preview: bool,
}

#[utoipa::path(post, path = "/api/agents/{agent}/manual-dial", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path)), request_body = ManualDialBody,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn manual_dial(
    State(st): State<AppState>,
    Path(agent): Path<String>,
    Json(b): Json<ManualDialBody>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let c = st.read(campaign_settings(b.campaign.clone())).await?;
    let country = match b.phone_code {
        Some(code) => {
            dialer_core::model::phone::country_of_calling_code(code).ok_or_else(|| {
                Problem::bad_field("phone_code", format!("{code} is no country's calling code"))
            })?
        }
        None => c.default_country.clone(),
    };
    let parse = |field: &str, raw: &str| {
        PhoneNumber::parse(raw, &country)
            .map_err(|e| Problem::bad_field(field, format!("number {raw:?}: {e}")))
    };
    let target = match (b.record, &b.number) {
        (Some(record), None) => ManualTarget::Record {
            record,
            number: b
                .alt_number
                .as_deref()
                .map(|raw| parse("alt_number", raw))
                .transpose()?,
        },
        (None, Some(raw)) => {
            if b.alt_number.is_some() {
                return Err(Problem::bad_field(
                    "alt_number",
                    "alt_number picks a number of `record`; with `number`, dial that number",
                ));
            }
            let mut new = NewRecord::new(c.id.to_string(), vec![parse("number", raw)?]);
            new.data = b.data;
            ManualTarget::Number(new)
        }
        (Some(_), Some(_)) => {
            return Err(Problem::bad_field(
                "number",
                "give either `number` or `record`, not both",
            ))
        }
        (None, None) => {
            return Err(Problem::bad_field(
                "number",
                "a manual dial needs `number` or `record`",
            ))
        }
    };
    let dial = ManualDial {
        campaign: c.id,
        agent: AgentId::from(agent),
        target,
        call: CallOptions {
            caller_id: b.caller_id,
            dial_prefix: b.dial_prefix,
            order: if b.agent_first {
                DialOrder::AgentFirst
            } else {
                DialOrder::CalleeFirst
            },
            start: if b.preview {
                ManualStart::Preview
            } else {
                ManualStart::DialNow
            },
        },
    };
    let (record, task) = st.op(st.dialer.manual_dial(dial)).await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            record,
            schedule: None,
            task: Some(task.0),
        }),
    ))
}
