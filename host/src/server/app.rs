//! The router: routes, shared state, and the guard every route but
//! `/health` passes (per-client rate limit, then API key).
//!
//! [`app`] builds the whole API as an axum `Router`, so tests can drive it
//! with `oneshot` and no socket.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lexecon_core::policy::Mode;

use super::auth::ApiKey;
use super::error::ApiError;
use super::handlers;
use super::metrics::{Metrics, inc};
use super::rate_limit::{RateLimiter, retry_after_secs};
use super::worker::{EngineHandle, ReaderPool};
use crate::ledger_view::PolicyLoad;

/// Largest body of `/decide` and `/tokens/verify`, bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest body of `/decide/batch` and `/policies`, bytes.
pub const MAX_LARGE_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The policy loads seen so far (scanned incrementally from the ledger).
#[derive(Debug, Default)]
pub struct PolicyHistory {
    /// Ledger entries scanned.
    pub scanned: u64,
    /// Loads found, oldest first.
    pub loads: Vec<PolicyLoad>,
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The node's id.
    pub node_id: String,
    /// The engine thread.
    pub engine: EngineHandle,
    /// The ledger readers.
    pub reader: ReaderPool,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The API key, when one is configured.
    pub auth: Option<ApiKey>,
    /// Per-client rate limiting, when enabled.
    pub limiter: Option<RateLimiter>,
    /// The node's public key (token verification).
    pub public_key: [u8; 32],
    /// When the server started.
    pub started: Instant,
    /// `policy.default_mode`.
    pub default_mode: Mode,
    /// `monitoring.enabled`.
    pub metrics_enabled: bool,
    /// How long a client may take to send a body, and the longest wait for the engine.
    pub request_timeout: Duration,
    /// `file` or `postgresql`.
    pub storage_kind: &'static str,
    /// The file ledger's handle, to ask whether it became unusable until
    /// the server restarts (`GET /health`); `None` for PostgreSQL, whose
    /// connections recover by themselves.
    pub ledger_file: Option<crate::storage::file::FileStorage>,
    /// Policy loads, for `GET /policies`.
    pub policy_history: Arc<Mutex<PolicyHistory>>,
    /// One chain verification at a time.
    pub verify_gate: tokio::sync::Semaphore,
    /// Becomes `true` when the server starts shutting down: requests still
    /// receiving their body are answered 503 then (nothing was decided),
    /// so a stalled upload cannot hold the shutdown up.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// The shared state handlers receive.
pub type Shared = Arc<AppState>;

/// The whole API.
pub fn app(state: Shared) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/status", get(handlers::status))
        .route("/metrics", get(handlers::metrics))
        .route("/decide", post(handlers::decide))
        .route("/decide/batch", post(handlers::decide_batch))
        .route("/tokens/verify", post(handlers::verify_token))
        .route("/ledger/entries", get(handlers::ledger_entries))
        .route("/ledger/entries/{hash}", get(handlers::ledger_entry))
        .route("/ledger/verify", get(handlers::ledger_verify))
        .route(
            "/policies",
            get(handlers::list_policies).post(handlers::load_policy),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .with_state(state)
}

/// Only `/metrics` and `/health` (the `monitoring.prometheus_port` listener).
pub fn metrics_app(state: Shared) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/metrics", get(handlers::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .with_state(state)
}

/// 404 `no_route`: distinct from `not_found` (no such ledger entry), so a
/// client with a wrong base URL is not told that an entry does not exist.
async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// The client's address (the TCP peer; proxies' headers are not trusted).
pub fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Largest unread body that is read and dropped, so the connection can be
/// reused, when a request is refused before its handler runs.
const DISCARD_LIMIT: u64 = 64 * 1024;

/// Reads and drops a refused request's body when it is small; `false` when
/// the connection should be closed instead (large, unknown or stalled body).
pub async fn discard_body(req: Request) -> bool {
    let headers = req.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return false;
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if declared == 0 {
        return true;
    }
    if declared > DISCARD_LIMIT {
        return false;
    }
    let read = axum::body::to_bytes(req.into_body(), DISCARD_LIMIT as usize);
    matches!(
        tokio::time::timeout(Duration::from_secs(1), read).await,
        Ok(Ok(_))
    )
}

async fn guard(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/health" {
        return next.run(req).await;
    }
    // A Prometheus scraper may share an address with busy clients: its
    // scrapes are not theirs to use up (it still needs the API key).
    if let Some(limiter) = state
        .limiter
        .as_ref()
        .filter(|_| req.uri().path() != "/metrics")
        && let Err(wait) = limiter.check(client_ip(&req), Instant::now())
    {
        inc(&state.metrics.rate_limited);
        let secs = retry_after_secs(wait).max(1);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests from this client; retry after {secs} s"),
        );
        e.retry_after = Some(secs);
        e.close = !discard_body(req).await;
        return e.into_response();
    }
    if let Some(key) = &state.auth
        && !key.authorizes(req.headers())
    {
        inc(&state.metrics.unauthorized);
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server requires an API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`",
        );
        e.close = !discard_body(req).await;
        return e.into_response();
    }
    next.run(req).await
}
