//! The control API: HTTP/JSON on loopback, for the `peergroup` CLI and for
//! any program that drives a node from outside (`docs/control-api.md`; the
//! schema is `docs/openapi.json`, served at `/v1/openapi.json`).
//!
//! - `POST /v1/request`: a [`Request`] as JSON, answered by its
//!   [`Response`] as JSON; the very types [`crate::Handle::request`] takes
//!   and returns, so the API cannot drift from the library.
//! - `GET /v1/events`: the node's events as server-sent events, filtered by
//!   `kind` (comma-separated [`EventKind`] names), `group` and `record_type`.
//!   A client that falls behind gets an event of type `missed` with the
//!   count, and the stream goes on.
//! - `GET /metrics`: Prometheus text exposition.
//! - `GET /v1/openapi.json`: the schema.
//!
//! Every route needs `Authorization: Bearer <token>`, the token the node
//! wrote to [`TOKEN_FILE`] in its data directory (mode 0600; a new one on
//! every start): only a user who can read the node's data directory can
//! drive it (the cookie-file scheme of bitcoind and others). Failures are
//! [`ApiError`]s.

mod error;
mod events;
#[cfg(test)]
mod schema_tests;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Request as HttpRequest, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response as HttpResponse},
    routing::{get, post},
};
use peergroup_protocol::Error as PeerError;
use prometheus_client::registry::Registry;

pub use self::error::{ApiError, status_of};
use crate::node::{EventKind, Handle, Request, Response};

/// The file in the data directory that holds the API token.
pub const TOKEN_FILE: &str = "api.token";
/// The file in the data directory that holds the API's URL
/// (`http://127.0.0.1:PORT`), written once the API listens and removed when
/// the node stops cleanly: how the CLI finds its node.
pub const URL_FILE: &str = "api.url";
/// The default API port on loopback (the grouping port + 1); a taken port
/// falls back to one the OS chooses, which [`URL_FILE`] then names.
pub const DEFAULT_API_PORT: u16 = 3588;
/// The largest request body, in bytes: a record at the data limit
/// (256 KiB) in base64 with room for its other fields.
pub const MAX_BODY: usize = 512 * 1024;

/// The OpenAPI schema of this API, as kept in `docs/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// The API's routes as (method, path); the schema documents exactly these
/// (a test checks both ways).
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/request"),
    ("get", "/v1/events"),
    ("get", "/v1/openapi.json"),
    ("get", "/metrics"),
];

/// What the routes share.
#[derive(Clone)]
struct Api {
    handle: Handle,
    token: Arc<str>,
    metrics: Option<Arc<Registry>>,
}

/// The control API's router for `handle`. `token` is what clients must send
/// as their bearer token; `metrics`, when given, is served at `/metrics`
/// (otherwise it answers 404).
pub fn router(handle: Handle, token: &str, metrics: Option<Arc<Registry>>) -> Router {
    let api = Api {
        handle,
        token: token.into(),
        metrics,
    };
    Router::new()
        .route("/v1/request", post(request))
        .route("/v1/events", get(events::stream))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(api.clone(), authenticate))
        .with_state(api)
}

/// A new random token: 32 bytes from the OS, hex.
pub fn new_token() -> Result<String, crate::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| crate::Error::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `token` to [`TOKEN_FILE`] in `dir`, readable by its owner only
/// (0600 on Unix; the file is replaced, never appended to).
pub fn write_token(dir: &Path, token: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(TOKEN_FILE);
    let tmp = dir.join(format!("{TOKEN_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    {
        use std::io::Write;
        let mut file = options.open(&tmp)?;
        file.write_all(token.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Checks the bearer token (in constant time) before any route runs.
async fn authenticate(State(api): State<Api>, request: HttpRequest, next: Next) -> HttpResponse {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme is case-insensitive (RFC 9110, section 11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), api.token.as_bytes()) => {
            next.run(request).await
        }
        _ => {
            let mut response = ApiError::unauthorized().into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"peergroup\""),
            );
            response
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /v1/request`.
async fn request(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::Json<Response>, ApiError> {
    let body = body.map_err(|e| {
        ApiError::http(
            e.status(),
            &PeerError::InvalidArg(String::new()),
            format!("cannot read the request body (at most {MAX_BODY} bytes): {e}"),
        )
    })?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::bad_request(
            "the request body must be JSON (Content-Type: application/json)",
        ));
    }
    let request: Request = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?;
    Ok(axum::Json(api.handle.request(request).await?))
}

/// Any other path: 404 with an error body.
async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::http(
        StatusCode::NOT_FOUND,
        &PeerError::NotFound(String::new()),
        format!("no route {} (see /v1/openapi.json)", uri.path()),
    )
}

/// A known path with another method: 405 with an error body.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::http(
        StatusCode::METHOD_NOT_ALLOWED,
        &PeerError::InvalidArg(String::new()),
        format!(
            "{method} is not allowed on {} (see /v1/openapi.json)",
            uri.path()
        ),
    )
}

/// `GET /v1/openapi.json`.
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// `GET /metrics`.
async fn metrics_text(State(api): State<Api>) -> Result<HttpResponse, ApiError> {
    let Some(registry) = api.metrics else {
        return Err(ApiError::http(
            StatusCode::NOT_FOUND,
            &PeerError::NotFound(String::new()),
            "this node serves no metrics".into(),
        ));
    };
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|e| ApiError::internal(format!("cannot encode the metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Parses an [`EventKind`] from its name, as the `kind` filter gives it.
pub fn parse_event_kind(name: &str) -> Result<EventKind, ApiError> {
    EventKind::from_name(name).ok_or_else(|| {
        // The stream carries every kind but `OperationCompleted` (the
        // node consumes those itself): the hint names those.
        let names: Vec<&str> = EventKind::all()
            .iter()
            .filter(|kind| **kind != EventKind::OperationCompleted)
            .map(|kind| kind.name())
            .collect();
        ApiError::bad_request(format!(
            "unknown event kind {name:?} (one of {})",
            names.join(", ")
        ))
    })
}
