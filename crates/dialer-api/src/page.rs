//! The supervisor page: static HTML, JavaScript and CSS embedded in the binary (no build
//! step). The page itself holds no data; it asks the token once (kept in the browser tab's
//! session storage, or passed as `#token=...`), then reads `/api/status` (with each
//! campaign's dials, answers and abandons since its local midnight) and `/api/history`, and
//! follows `/api/events` live.

use crate::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

const SECURITY: [(header::HeaderName, &str); 3] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async {
                (
                    SECURITY,
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (
                            header::CONTENT_SECURITY_POLICY,
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
                        ),
                    ],
                    INDEX,
                )
                    .into_response()
            }),
        )
        .route(
            "/app.js",
            get(|| async {
                (SECURITY, [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS)
            }),
        )
        .route(
            "/style.css",
            get(|| async { (SECURITY, [(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
}
