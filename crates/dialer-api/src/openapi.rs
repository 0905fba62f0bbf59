//! The OpenAPI document, generated from the handlers' annotations (utoipa). A copy is checked
//! in as `crates/dialer-api/openapi.json`; a test fails when it differs from the generated one
//! (regenerate with `UPDATE_OPENAPI=1 cargo test -p dialer-api openapi`).

use crate::routes;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dialer",
        description = "Outbound dialer engine: campaigns, spool, blacklist, agents, events. Every /api request and /metrics needs `Authorization: Bearer <token>`; read-only tokens may only GET. Errors are application/problem+json with a stable `code`, a `detail` sentence and the `field` at fault."
    ),
    paths(
        routes::healthz, routes::metrics, routes::status, routes::history, routes::events,
        routes::list_campaigns, routes::get_campaign, routes::put_campaign,
        routes::start_campaign, routes::stop_campaign, routes::counters, routes::queue_wait,
        routes::campaign_log, routes::upload, routes::get_upload, routes::respool,
        routes::schedule_call, routes::remove_schedules, routes::add_task, routes::manual_dial,
        routes::remove_contact, routes::get_record, routes::blacklist_add,
        routes::blacklist_delete_bulk, routes::blacklist_delete, routes::list_agents,
        routes::get_agent, routes::agent_action, routes::dispose, routes::preview,
        routes::get_record_by_external_id, routes::remove_record, routes::record_position, routes::supervision, routes::hangup, routes::hold, routes::unhold, routes::get_result_codes, routes::put_result_codes, routes::get_breaks,
        routes::put_breaks, routes::update_fields, routes::agent_activity,
        routes::set_campaign_state, routes::record_status, routes::update_record_status,
        routes::blacklist_list, routes::get_call,
    ),
    components(schemas(crate::today::Today)),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON (what is checked in).
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    // The crate version would make the checked-in copy churn on every release bump.
    doc.info.version = "1".into();
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

/// `GET /openapi.json`.
pub async fn serve() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
}
