//! The API's error answer: a status and `{"error": code, "detail": …}`
//! (plus `field` when one input field is at fault).
//!
//! Codes: `invalid_json` (400), `bad_request` (400), `unauthorized` (401),
//! `not_found` (404), `method_not_allowed` (405), `request_timeout` (408),
//! `payload_too_large` / `batch_too_large` (413), `unsupported_media_type`
//! (415), `invalid_request` / `invalid_policy` (422), `rate_limited` (429),
//! `metrics_disabled` (404), and, for failures on our side, the engine's
//! codes (`storage`, `signer`, `random`, `ledger_corrupt`,
//! `ledger_contention`), `engine_unavailable` or `shutting_down` (503).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lexecon_core::engine::EngineError;
use lexecon_core::policy::PolicyError;
use lexecon_core::request::RequestError;
use serde_json::{Map, Value, json};

use super::worker::WorkerError;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// In words.
    pub detail: Value,
    /// The input field at fault.
    pub field: Option<String>,
    /// `Retry-After` seconds (429, 503).
    pub retry_after: Option<u64>,
    /// Extra members (policy line and column).
    pub extra: Map<String, Value>,
    /// Answer with `Connection: close` (the request body was left unread).
    pub close: bool,
}

impl ApiError {
    /// An error with a status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: Value::String(detail.into()),
            field: None,
            retry_after: None,
            extra: Map::new(),
            close: false,
        }
    }

    /// The same error, answered with `Connection: close` (for a request
    /// whose body is left unread).
    #[must_use]
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 422 `invalid_request` for a request that does not validate.
    pub fn invalid_request(e: &RequestError, prefix: &str) -> Self {
        let field = if prefix.is_empty() {
            e.field.clone()
        } else {
            format!("{prefix}.{}", e.field)
        };
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("{field}: {}", e.message),
        );
        err.field = Some(field);
        err
    }

    /// 422 `invalid_policy` with the JSON path, line and column.
    pub fn invalid_policy(e: &PolicyError) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_policy",
            e.to_string(),
        );
        err.field = Some(e.path.clone());
        if let (Some(l), Some(c)) = (e.line, e.column) {
            err.extra.insert("line".into(), json!(l));
            err.extra.insert("column".into(), json!(c));
        }
        err
    }

    /// The answer for an engine that could not decide: 503 (fail closed).
    pub fn from_worker(e: &WorkerError) -> Self {
        match e {
            WorkerError::Engine(EngineError::Request(r)) => Self::invalid_request(r, ""),
            WorkerError::Engine(EngineError::Policy(p)) => Self::invalid_policy(p),
            WorkerError::Engine(EngineError::BatchTooLarge(_)) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                e.to_string(),
            ),
            WorkerError::Engine(inner) => {
                let mut err =
                    Self::new(StatusCode::SERVICE_UNAVAILABLE, inner.code(), e.to_string());
                err.retry_after = Some(1);
                err
            }
            WorkerError::Stopped => {
                let mut err = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "engine_unavailable",
                    e.to_string(),
                );
                err.retry_after = Some(1);
                err
            }
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("error".into(), Value::from(self.code));
        obj.insert("detail".into(), self.detail.clone());
        if let Some(f) = &self.field {
            obj.insert("field".into(), Value::from(f.clone()));
        }
        for (k, v) in &self.extra {
            obj.insert(k.clone(), v.clone());
        }
        Value::Object(obj)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        if self.close {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lexecon\""),
            );
        }
        resp
    }
}
