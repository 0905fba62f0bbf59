//! Errors as JSON problems (`application/problem+json`, RFC 9457): a stable machine code, a
//! sentence, and the field at fault. One function maps each typed error of the handle and the
//! spool to its HTTP status; every handler answers through it.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use dialer_core::RejectReason;
use dialer_runtime::OpError;
use serde::Serialize;
use spool_store::StoreError;
use utoipa::ToSchema;

/// A problem response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// The HTTP status.
    pub status: u16,
    /// A stable machine code (`unknown_campaign`, `blacklisted`, `bad_token`...).
    pub code: String,
    /// What went wrong, as a sentence.
    pub detail: String,
    /// The request field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            status: status.as_u16(),
            code: code.to_owned(),
            detail: detail.into(),
            field: None,
        }
    }

    /// Bad input in a named field.
    pub fn bad_field(field: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_field", detail).field(field)
    }

    pub fn field(mut self, field: &str) -> Problem {
        self.field = Some(field.to_owned());
        self
    }

    pub fn not_found(code: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// The spool could not be read or written (the database failed, not the request).
    pub fn internal(detail: impl std::fmt::Display) -> Problem {
        tracing::error!(error = %detail, "request failed inside the dialer");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the dialer failed: {detail}"),
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)?;
        if let Some(field) = &self.field {
            write!(f, " (field `{field}`)")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

/// The status and code of a rule's refusal.
fn reject(r: &RejectReason) -> (StatusCode, &'static str, Option<&'static str>) {
    use RejectReason as R;
    match r {
        R::UnknownCampaign(_) => (StatusCode::NOT_FOUND, "unknown_campaign", Some("campaign")),
        R::InvalidCampaign { .. } => (StatusCode::BAD_REQUEST, "invalid_campaign", None),
        R::UnknownRecord(_) => (StatusCode::NOT_FOUND, "unknown_record", Some("record")),
        R::RecordInFlight(_) => (StatusCode::CONFLICT, "record_in_flight", Some("record")),
        R::UnknownCall(_) => (StatusCode::NOT_FOUND, "unknown_call", Some("call")),
        R::CallNotLinked(_) => (StatusCode::CONFLICT, "call_not_linked", Some("call")),
        R::HoldState { .. } => (StatusCode::CONFLICT, "hold_state", Some("call")),
        R::UnknownAgent(_) => (StatusCode::NOT_FOUND, "unknown_agent", Some("agent")),
        R::AgentLoggedOut(_) => (StatusCode::CONFLICT, "agent_logged_out", Some("agent")),
        R::InvalidAgentTimeout { .. } => (
            StatusCode::BAD_REQUEST,
            "invalid_agent_timeout",
            Some("inactivity_timeout_s"),
        ),
        R::NumberLiveOnAnotherRecord { .. } => (
            StatusCode::CONFLICT,
            "number_live_on_another_record",
            Some("numbers"),
        ),
        R::Blacklisted { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "blacklisted",
            Some("numbers"),
        ),
        R::InvalidSchedule(dialer_core::ScheduleError::AlreadyScheduled) => (
            StatusCode::CONFLICT,
            "already_scheduled",
            Some("disposition"),
        ),
        R::InvalidSchedule(dialer_core::ScheduleError::BadContactName { .. }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_contact_name",
            Some("contact_name"),
        ),
        R::InvalidSchedule(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_schedule",
            Some("when"),
        ),
        R::Disposition(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_disposition",
            Some("disposition"),
        ),
        R::NotOffered { .. } => (StatusCode::CONFLICT, "not_offered", Some("record")),
        R::NotEligible { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_eligible",
            Some("record"),
        ),
        R::TelephonyDown { .. } => (StatusCode::SERVICE_UNAVAILABLE, "telephony_down", None),
        R::UnsafeVariable { .. } => (StatusCode::BAD_REQUEST, "unsafe_variable", Some("data")),
    }
}

/// The status and code of a spool refusal; `None` when the database itself failed.
fn store(e: &StoreError) -> Option<(StatusCode, &'static str, Option<&'static str>)> {
    use StoreError as S;
    Some(match e {
        S::UnknownCampaign(_) => (StatusCode::NOT_FOUND, "unknown_campaign", Some("campaign")),
        S::InvalidCampaign { .. } => (StatusCode::BAD_REQUEST, "invalid_campaign", None),
        S::UnknownRecord(_) => (StatusCode::NOT_FOUND, "unknown_record", Some("record")),
        S::UnknownAttempt(_) => (StatusCode::NOT_FOUND, "unknown_call", Some("call")),
        S::DuplicateDestination { .. } => (
            StatusCode::CONFLICT,
            "duplicate_destination",
            Some("numbers"),
        ),
        S::DuplicateSchedule { .. } => (StatusCode::CONFLICT, "duplicate_schedule", Some("when")),
        S::InvalidSchedule(dialer_core::ScheduleError::AlreadyScheduled) => (
            StatusCode::CONFLICT,
            "already_scheduled",
            Some("reschedule"),
        ),
        S::InvalidSchedule(dialer_core::ScheduleError::BadContactName { .. }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_contact_name",
            Some("new_contact_name"),
        ),
        S::InvalidSchedule(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_schedule",
            Some("when"),
        ),
        S::RecordInFlight(_) => (StatusCode::CONFLICT, "record_in_flight", Some("record")),
        S::RecordFinished { .. } => (StatusCode::CONFLICT, "record_finished", Some("record")),
        S::RecordState { .. } => (StatusCode::CONFLICT, "record_state", Some("status")),
        S::ManualDialQueued { .. } => (StatusCode::CONFLICT, "manual_dial_queued", Some("numbers")),
        S::InvalidCallOptions(e) => {
            use dialer_core::CallOptionsError as C;
            let field = match e {
                C::CallerId { .. } => "caller_id",
                C::DialPrefix(_) => "dial_prefix",
                C::NeedsAgent(_) => "agent",
                C::NotManual => "kind",
            };
            (StatusCode::BAD_REQUEST, "invalid_call_options", Some(field))
        }
        S::UnknownAgent(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_agent",
            Some("agent"),
        ),
        S::DuplicateExternalId { .. } => (
            StatusCode::CONFLICT,
            "duplicate_external_id",
            Some("external_id"),
        ),
        S::UnknownExternalId { .. } => (
            StatusCode::NOT_FOUND,
            "unknown_external_id",
            Some("external_id"),
        ),
        S::ReservedPriority(_) => (
            StatusCode::BAD_REQUEST,
            "reserved_priority",
            Some("priority"),
        ),
        S::Disposition { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_disposition",
            Some("disposition"),
        ),
        S::InvalidRecord { .. } => (StatusCode::BAD_REQUEST, "invalid_record", None),
        S::BadBlacklistNumber(_) => (StatusCode::BAD_REQUEST, "invalid_number", Some("number")),
        S::Import(_) => (StatusCode::BAD_REQUEST, "invalid_upload", None),
        S::CampaignNotAccepting { .. } => (
            StatusCode::CONFLICT,
            "campaign_not_accepting",
            Some("campaign"),
        ),
        S::CampaignState { .. } => (StatusCode::CONFLICT, "campaign_state", Some("state")),
        S::OnGlobalDnc { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "dnc_global",
            Some("numbers"),
        ),
        S::OnCampaignDnc { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "dnc_campaign",
            Some("numbers"),
        ),
        S::InvalidFilter { .. } => (StatusCode::BAD_REQUEST, "invalid_filter", None),
        S::UnknownResultCode { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_result_code",
            Some("result_code"),
        ),
        S::InactiveResultCode { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "inactive_result_code",
            Some("result_code"),
        ),
        S::InvalidCatalogue { .. } => (StatusCode::BAD_REQUEST, "invalid_catalogue", None),
        S::InvalidConclusion { .. } => (StatusCode::BAD_REQUEST, "invalid_conclusion", None),
        S::InvalidField { .. } => (StatusCode::BAD_REQUEST, "invalid_field", Some("fields")),
        S::UnknownBreak { .. } => (StatusCode::NOT_FOUND, "unknown_break", Some("break_id")),
        S::InactiveBreak { .. } => (StatusCode::NOT_FOUND, "inactive_break", Some("break_id")),
        S::AlreadyInBreak { .. } => (StatusCode::CONFLICT, "already_in_break", Some("break_id")),
        S::DatabaseTooNew { .. } | S::NeedsUpgrade { .. } | S::FormatTooNew { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "spool_version", None)
        }
        S::DuplicateAttempt(_)
        | S::Sqlite(_)
        | S::Migration(_)
        | S::IdOutOfRange { .. }
        | S::Corrupt(_) => return None,
    })
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match store(&e) {
            Some((status, code, field)) => {
                let mut p = Problem::new(status, code, e.to_string());
                p.field = field.map(str::to_owned);
                p
            }
            None => Problem::internal(e),
        }
    }
}

impl From<OpError> for Problem {
    fn from(e: OpError) -> Problem {
        let (status, code, field) = match &e {
            OpError::Rejected(r) => reject(r),
            OpError::Store(s) => {
                return match store(s) {
                    Some(_) => Problem::from(match e {
                        OpError::Store(s) => s,
                        _ => unreachable!("matched above"),
                    }),
                    None => Problem::internal(s),
                }
            }
            OpError::InvalidCampaign(_) => (StatusCode::BAD_REQUEST, "invalid_campaign", None),
            OpError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request", None),
            OpError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "dialer_stopped", None),
            OpError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "dialer_busy", None),
        };
        let mut p = Problem::new(status, code, e.to_string());
        p.field = field.map(str::to_owned);
        p
    }
}

/// A JSON body that could not be read: malformed, wrong type, unknown field, too large.
impl From<axum::extract::rejection::JsonRejection> for Problem {
    fn from(r: axum::extract::rejection::JsonRejection) -> Problem {
        use axum::extract::rejection::JsonRejection as J;
        match &r {
            J::JsonDataError(e) => {
                // serde's message names the field ("unknown field `x`", "missing field `y`").
                let text = std::error::Error::source(e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| e.body_text());
                let field = field_in_message(&text);
                let mut p = Problem::new(StatusCode::BAD_REQUEST, "invalid_body", text);
                p.field = field;
                p
            }
            J::JsonSyntaxError(e) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                std::error::Error::source(e)
                    .map(|s| format!("the body is not valid JSON: {s}"))
                    .unwrap_or_else(|| e.body_text()),
            ),
            J::MissingJsonContentType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "json_expected",
                "the body must be JSON (Content-Type: application/json)",
            ),
            J::BytesRejection(_) => too_large_or(r.body_text()),
            _ => Problem::new(StatusCode::BAD_REQUEST, "invalid_body", r.body_text()),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for Problem {
    fn from(r: axum::extract::rejection::QueryRejection) -> Problem {
        let text = r.body_text();
        let field = field_in_message(&text);
        let mut p = Problem::new(StatusCode::BAD_REQUEST, "invalid_query", text);
        p.field = field;
        p
    }
}

impl From<axum::extract::rejection::PathRejection> for Problem {
    fn from(r: axum::extract::rejection::PathRejection) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text())
    }
}

fn too_large_or(text: String) -> Problem {
    if text.contains("length limit") || text.contains("too large") {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than the server accepts",
        )
    } else {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_body", text)
    }
}

/// The first back-quoted name in a serde message (`unknown field `x``), or a path before `:`.
fn field_in_message(text: &str) -> Option<String> {
    if let Some(start) = text.find('`') {
        let rest = &text[start + 1..];
        if let Some(end) = rest.find('`') {
            return Some(rest[..end].to_owned());
        }
    }
    let (path, _) = text.split_once(": ")?;
    (!path.contains(' ') && !path.is_empty()).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_the_field() {
        assert_eq!(
            field_in_message("unknown field `max_lnes`, expected one of ..."),
            Some("max_lnes".into())
        );
        assert_eq!(
            field_in_message("entries[0].expires_at: premature end of input"),
            Some("entries[0].expires_at".into())
        );
        assert_eq!(field_in_message("nothing to see here"), None);
    }

    #[test]
    fn a_blacklisted_number_is_a_422_naming_numbers() {
        let p = Problem::from(OpError::Rejected(RejectReason::Blacklisted {
            number: "+12125550101".into(),
            record: dialer_core::RecordId(4),
        }));
        assert_eq!((p.status, p.code.as_str()), (422, "blacklisted"));
        assert_eq!(p.field.as_deref(), Some("numbers"));
        assert!(p.detail.contains("+12125550101"), "{}", p.detail);
    }
}
