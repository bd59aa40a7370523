//! The HTTP handlers: JSON in, JSON out.
//!
//! Bodies are read here, not by axum's extractors, so that every client
//! mistake gets the API's JSON error: a `Content-Type` other than JSON is
//! 415 (it also keeps browsers from posting here cross-site without a CORS
//! preflight), a body over the limit 413, a body that is not JSON 400, a
//! request that does not validate 422, and a body that does not arrive in
//! `server.request_timeout` 408.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lexecon_core::capability::{Expect, verify_token as core_verify_token};
use lexecon_core::engine::verify_storage_from;
use lexecon_core::ledger::Entry;
use lexecon_core::policy::PolicyError;
use lexecon_core::request::MAX_BATCH;
use lexecon_core::storage::{Storage as _, StorageError};
use lexecon_core::{Decision, DecisionRequest};
use serde::Serialize;
use serde_json::{Value, json};

use super::app::{AppState, MAX_BODY_BYTES, MAX_LARGE_BODY_BYTES, Shared, discard_body};
use super::error::ApiError;
use super::metrics::{add, inc};
use super::worker::WorkerError;
use crate::ledger_view::{ScanError, entry_json, scan_policy_loads};
use crate::storage::file::FileStorage;

/// Decisions slower than this are logged as warnings.
const SLOW_DECISION: Duration = Duration::from_millis(50);
/// Default and largest `limit` of `GET /ledger/entries`.
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut resp = (status, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot encode the answer: {e}"),
        )
        .into_response(),
    }
}

/// 200 with one decision's JSON ([`Decision::write_json`]: what
/// `serde_json` writes, without its generic serialiser on every decision).
fn decision_response(d: &Decision) -> Response {
    let mut body = Vec::with_capacity(2048);
    d.write_json(&mut body);
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Reads and parses a JSON body of at most `limit` bytes within the request timeout.
async fn read_body(state: &Shared, req: Request, limit: usize) -> Result<(Bytes, Value), ApiError> {
    let bytes = read_bytes(state, req, limit).await?;
    let value = serde_json::from_slice::<Value>(&bytes).map_err(|e| syntax_error(&e))?;
    Ok((bytes, value))
}

/// 400 `invalid_json` with the position the parser stopped at.
fn syntax_error(e: &serde_json::Error) -> ApiError {
    invalid_json(
        format!("the body is not valid JSON: {e}"),
        e.line(),
        e.column(),
    )
}

/// For a body the typed parse refused: 400 `invalid_json` (with position)
/// when it is not JSON at all — the client's first problem — else `invalid`.
/// Runs only on the error path, so a good body is parsed once.
fn refused(bytes: &[u8], invalid: ApiError) -> ApiError {
    match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        Err(e) => syntax_error(&e),
        Ok(_) => invalid,
    }
}

fn invalid_json(detail: String, line: usize, column: usize) -> ApiError {
    let mut err = ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", detail);
    err.extra.insert("line".into(), json!(line));
    err.extra.insert("column".into(), json!(column));
    err
}

/// Reads a JSON body of at most `limit` bytes within the request timeout.
async fn read_bytes(state: &Shared, req: Request, limit: usize) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        let mut e = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        );
        e.close = !discard_body(req).await;
        return Err(e);
    }
    // A compressed body would be read as JSON text and refused as malformed,
    // or worse, misread: say what is wrong instead.
    if let Some(encoding) = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|e| e != "identity")
    {
        let mut e = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("`Content-Encoding: {encoding}` is not supported: send the body uncompressed"),
        );
        e.close = !discard_body(req).await;
        return Err(e);
    }
    let (parts, body) = req.into_parts();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large().closing());
    }
    let read = tokio::time::timeout(state.request_timeout, axum::body::to_bytes(body, limit));
    let mut stopping = state.stopping.clone();
    let read = tokio::select! {
        read = read => read,
        _ = stopping.wait_for(|stop| *stop) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down and the body had not arrived; nothing was decided",
            )
            .closing());
        }
    };
    match read {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the body did not arrive in time",
        )
        .closing()),
        Ok(Err(e)) => {
            let is_limit = std::error::Error::source(&e).is_some_and(|s| {
                s.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
            }) || e.to_string().contains("length limit");
            let e = if is_limit {
                too_large()
            } else {
                ApiError::bad_request(format!("cannot read the body: {e}"))
            };
            Err(e.closing())
        }
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// `GET /health`: liveness; 503 once the engine thread has stopped, or the
/// file ledger became unusable until reopened (a failed sync): every
/// decision then fails closed, and a restart, which rescans the file, is
/// what brings the node back.
pub async fn health(State(state): State<Shared>) -> Response {
    if !state.engine.is_running() {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "engine_stopped"}),
        );
    }
    if let Some(why) = ledger_fault(&state) {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "storage_unusable", "detail": why}),
        );
    }
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// Why the file ledger is unusable until the server restarts, if it is.
fn ledger_fault(state: &AppState) -> Option<String> {
    state.ledger_file.as_ref().and_then(FileStorage::unusable)
}

/// `GET /status`.
pub async fn status(State(state): State<Shared>) -> Response {
    refresh_replica(&state).await;
    let snap = state.engine.snapshot();
    let fault = ledger_fault(&state);
    json_response(
        StatusCode::OK,
        &json!({
            // As `/health` says it: `storage_unusable` until restarted.
            "status": if fault.is_some() { "storage_unusable" } else { "ok" },
            "storage_fault": fault,
            "node_id": state.node_id,
            "version": env!("CARGO_PKG_VERSION"),
            "storage": state.storage_kind,
            "policy_hash": snap.policy.as_ref().map(|p| p.policy_hash.clone()),
            "policy": snap.policy,
            "ledger_length": snap.ledger_len,
            "head_hash": snap.head_hash,
            // What a tool needs to verify this node's tokens offline.
            "public_key": lexecon_core::hash::hex(&state.public_key),
            "uptime_seconds": state.started.elapsed().as_secs_f64(),
        }),
    )
}

/// On a replica of a PostgreSQL ledger, catches up with what the others
/// appended (a policy they loaded, the head), so what it reports is the
/// ledger's, not what it knew at its own last decision.
async fn refresh_replica(state: &Shared) {
    if state.storage_kind == "postgresql" {
        state.engine.refresh().await;
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<Shared>) -> Response {
    if !state.metrics_enabled {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics_disabled",
            "metrics are disabled (`monitoring.enabled: false`)",
        )
        .into_response();
    }
    let text = state.metrics.render(
        state.engine.snapshot().ledger_len,
        now_s(),
        state.started.elapsed(),
    );
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Observes the latency of the `asked` decisions a call asked of the
/// engine together, when dropped: after the answer, or when the client hung
/// up and the call was dropped mid-way (the engine still decides them).
/// Nothing when `asked` is 0: a request refused before the engine is not a
/// decision, and its quick answer would hide slow ones.
struct Latency {
    state: Shared,
    start: Instant,
    what: &'static str,
    asked: usize,
}

impl Latency {
    fn new(state: &Shared, what: &'static str) -> Self {
        Self {
            state: Arc::clone(state),
            start: Instant::now(),
            what,
            asked: 0,
        }
    }
}

impl Drop for Latency {
    fn drop(&mut self) {
        if self.asked == 0 {
            return;
        }
        let elapsed = self.start.elapsed();
        self.state
            .metrics
            .latency
            .observe_n(elapsed, self.asked as u64);
        if elapsed > SLOW_DECISION {
            tracing::warn!(
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                requests = self.asked,
                "slow {}: high decision latency",
                self.what
            );
        }
    }
}

async fn run_engine(
    state: &Shared,
    requests: Vec<DecisionRequest>,
) -> Result<Vec<Decision>, ApiError> {
    let n = requests.len() as u64;
    let fail = |e: &WorkerError| {
        add(&state.metrics.failed, n);
        ApiError::from_worker(e)
    };
    let answer = tokio::time::timeout(state.request_timeout, state.engine.decide(requests)).await;
    let results = match answer {
        Err(_) => {
            add(&state.metrics.failed, n);
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "engine_timeout",
                "the engine did not answer in time; treat this as a denial",
            );
            e.retry_after = Some(1);
            return Err(e);
        }
        Ok(Err(e)) => return Err(fail(&e)),
        Ok(Ok(r)) => r,
    };
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            // Counted by the engine worker (`Metrics::decided`) once durable.
            Ok(d) => out.push(d),
            Err(e) => {
                inc(&state.metrics.invalid);
                return Err(ApiError::invalid_request(&e, ""));
            }
        }
    }
    Ok(out)
}

/// Parses a decision request straight from the body: malformed JSON is 400
/// `invalid_json`, a well-formed body that is not a valid request 422
/// `invalid_request` naming the field.
fn parse_request(bytes: &[u8]) -> Result<DecisionRequest, ApiError> {
    // One parse on the way to a decision: the core checks the request's
    // shape and values. Only a body it refuses is parsed again, to tell one
    // that is not JSON (400, with line and column) from a request that is
    // not valid (422 naming the field).
    match std::str::from_utf8(bytes).map(DecisionRequest::from_json) {
        Ok(Ok(request)) => Ok(request),
        Ok(Err(e)) => Err(refused(bytes, ApiError::invalid_request(&e, ""))),
        Err(_) => Err(refused(
            bytes,
            invalid_json("the body is not valid UTF-8".into(), 0, 0),
        )),
    }
}

/// `POST /decide`: the guide's request body; the decision.
pub async fn decide(State(state): State<Shared>, req: Request) -> Response {
    // Only what reaches the engine is a decision's latency: a body that
    // never arrived was the client's time, a refused request no decision.
    let mut latency = Latency::new(&state, "decision");
    inc(&state.metrics.requests_total);
    let result = async {
        let bytes = read_bytes(&state, req, MAX_BODY_BYTES).await?;
        let request = parse_request(&bytes)?;
        latency.asked = 1;
        let mut decisions = run_engine(&state, vec![request]).await?;
        decisions
            .pop()
            .ok_or_else(|| ApiError::from_worker(&WorkerError::Stopped))
    }
    .await;
    let resp = match result {
        Ok(d) => decision_response(&d),
        Err(e) => {
            if e.status.is_client_error() {
                inc(&state.metrics.invalid);
            }
            e.into_response()
        }
    };
    drop(latency);
    resp
}

/// What a `POST /decide/batch` body holds: its `requests` member, kept as
/// text, and the first member of another name. A second `requests` is an
/// error (a map would keep the last one, deciding requests the client may
/// not know it sent). One pass, whatever the number of members.
struct BatchMembers<'a> {
    requests: Option<&'a serde_json::value::RawValue>,
    unknown: Option<String>,
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for BatchMembers<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Members<'a> {
            type Value = BatchMembers<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut members = BatchMembers {
                    requests: None,
                    unknown: None,
                };
                while let Some((key, value)) =
                    map.next_entry::<String, &'a serde_json::value::RawValue>()?
                {
                    if key != "requests" {
                        members.unknown.get_or_insert(key);
                    } else if members.requests.replace(value).is_some() {
                        return Err(serde::de::Error::custom("duplicate field `requests`"));
                    }
                }
                Ok(members)
            }
        }
        d.deserialize_map(Members(std::marker::PhantomData))
    }
}

/// The requests of a `POST /decide/batch` body, each kept as its text (so
/// each is parsed once, by the core, as `/decide` does, and a duplicated
/// field is an error rather than "the last one wins"). Malformed JSON is 400
/// `invalid_json`; JSON of another shape is 422 `invalid_request`.
fn batch_items(bytes: &[u8]) -> Result<Vec<&serde_json::value::RawValue>, ApiError> {
    let shape_error = |detail: &str, field: Option<&str>| {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", detail);
        e.field = field.map(str::to_string);
        e
    };
    let members: BatchMembers<'_> = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            // The wrong shape; it may also be malformed further on.
            let said = e.to_string();
            let detail = if said.starts_with("duplicate field") {
                said.as_str()
            } else {
                "expected `{\"requests\": [...]}`"
            };
            refused(bytes, shape_error(detail, None))
        } else {
            syntax_error(&e)
        }
    })?;
    if let Some(k) = &members.unknown {
        return Err(shape_error(
            &format!("unknown field `{k}`, expected `requests`"),
            Some(k),
        ));
    }
    let not_an_array = || {
        shape_error(
            "`requests` must be an array of decision requests",
            Some("requests"),
        )
    };
    let requests = members.requests.ok_or_else(not_an_array)?;
    serde_json::from_str(requests.get()).map_err(|_| not_an_array())
}

/// `POST /decide/batch`: `{"requests": [...]}` → `{"decisions": [...]}`.
/// Invalid requests reject the whole batch (422 naming `requests[i].field`);
/// nothing is decided then. In the metrics each item counts as a request; a
/// body that cannot be read as a batch counts as one invalid request.
pub async fn decide_batch(State(state): State<Shared>, req: Request) -> Response {
    let mut latency = Latency::new(&state, "batch");
    let result = async {
        let unreadable = |e: ApiError| {
            inc(&state.metrics.requests_total);
            if e.status.is_client_error() {
                inc(&state.metrics.invalid);
            }
            e
        };
        let bytes = read_bytes(&state, req, MAX_LARGE_BODY_BYTES)
            .await
            .map_err(unreadable)?;
        let items = batch_items(&bytes).map_err(unreadable)?;
        add(&state.metrics.requests_total, items.len() as u64);
        if items.len() > MAX_BATCH {
            add(&state.metrics.invalid, items.len() as u64);
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                format!(
                    "{} requests in one batch; the limit is {MAX_BATCH}",
                    items.len()
                ),
            ));
        }
        let n = items.len() as u64;
        let mut requests = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match DecisionRequest::from_json(item.get()) {
                Ok(r) => requests.push(r),
                Err(e) => {
                    add(&state.metrics.invalid, n);
                    return Err(ApiError::invalid_request(&e, &format!("requests[{i}]")));
                }
            }
        }
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        latency.asked = requests.len();
        run_engine(&state, requests).await
    }
    .await;
    let resp = match result {
        Ok(decisions) => json_response(StatusCode::OK, &json!({ "decisions": decisions })),
        Err(e) => e.into_response(),
    };
    drop(latency);
    resp
}

/// The claims a capability token object carries beside its compact `token`
/// (`TokenClaims`' fields, as decisions write them).
const CLAIM_FIELDS: [&str; 10] = [
    "action",
    "actor",
    "decision_hash",
    "expires_at",
    "issued_at",
    "key_id",
    "node_id",
    "policy_version_hash",
    "token_id",
    "tool",
];

/// `POST /tokens/verify`: `{"token": "lxc2…" | {…, "token": "lxc2…"}, "tool"?, "actor"?}`
/// → `{"valid": true, "claims": …}` or `{"valid": false, "error": code, "detail": …}`.
pub async fn verify_token(State(state): State<Shared>, req: Request) -> Response {
    let result = async {
        let (_, value) = read_body(&state, req, MAX_BODY_BYTES).await?;
        let Value::Object(obj) = value else {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "expected `{\"token\": ...}`",
            ));
        };
        let field_err = |field: &str, msg: String| {
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("{field}: {msg}"),
            );
            e.field = Some(field.to_string());
            e
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "token" | "tool" | "actor"))
        {
            return Err(field_err(
                k,
                "unknown field, expected `token`, `tool` or `actor`".into(),
            ));
        }
        // The object form's other fields are what the token claims; they
        // must say what its signed claims say (checked below).
        let mut beside = None;
        let token = match obj.get("token") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(t)) => match t.get("token") {
                Some(Value::String(s)) => {
                    if let Some(k) = t
                        .keys()
                        .find(|k| *k != "token" && !CLAIM_FIELDS.contains(&k.as_str()))
                    {
                        return Err(field_err(
                            &format!("token.{k}"),
                            "unknown field of a capability token".into(),
                        ));
                    }
                    beside = Some(t);
                    s.clone()
                }
                _ => {
                    return Err(field_err(
                        "token.token",
                        "a capability token object must carry the compact `token` string".into(),
                    ));
                }
            },
            Some(_) => {
                return Err(field_err(
                    "token",
                    "must be the compact token string or the capability_token object".into(),
                ));
            }
            None => return Err(field_err("token", "missing field".into())),
        };
        let opt = |k: &str| -> Result<Option<String>, ApiError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(field_err(k, "must be a string".into())),
            }
        };
        let (tool, actor) = (opt("tool")?, opt("actor")?);
        let expect = Expect {
            tool: tool.as_deref(),
            actor: actor.as_deref(),
        };
        Ok(
            match core_verify_token(&token, &state.public_key, now_s(), expect) {
                Ok(claims) => {
                    let signed = serde_json::to_value(&claims).unwrap_or_default();
                    for (k, v) in beside.into_iter().flatten() {
                        match signed.get(k) {
                            Some(c) if c != v => {
                                return Err(field_err(
                                    &format!("token.{k}"),
                                    format!(
                                        "says {v}, but the token it carries says {c}: send the capability_token as the decision returned it, or the compact token alone"
                                    ),
                                ));
                            }
                            _ => {}
                        }
                    }
                    json!({"valid": true, "claims": claims})
                }
                Err(e) => json!({"valid": false, "error": e.code(), "detail": e.to_string()}),
            },
        )
    }
    .await;
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

fn storage_error(e: &StorageError) -> ApiError {
    match e {
        // A ledger failure, not a client's mistake: 503, as every engine or
        // ledger failure (no Retry-After: it will not mend on its own).
        StorageError::Corrupt { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_corrupt",
            format!("{e}; run `lexecon ledger verify --verbose`"),
        ),
        _ => {
            let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string());
            err.retry_after = Some(1);
            err
        }
    }
}

/// Reads `key=value` pairs (percent-decoded, as `application/x-www-form-urlencoded`)
/// whose keys are among `allowed`, each at most once, with values that are
/// non-negative integers.
fn parse_query(raw: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, u64)>, ApiError> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter `{k}`; expected {}",
                allowed.join(", ")
            )));
        }
        // Parsers disagree on which of two values wins: refused.
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(ApiError::bad_request(format!(
                "query parameter `{k}` is given more than once"
            )));
        }
        // Digits only: `u64::from_str` would also take a leading `+`.
        let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        let n = v.parse::<u64>().ok().filter(|_| digits).ok_or_else(|| {
            ApiError::bad_request(format!(
                "query parameter `{k}` must be a non-negative integer, got `{v}`"
            ))
        })?;
        out.push((k.into_owned(), n));
    }
    Ok(out)
}

/// `GET /ledger/entries?offset&limit` (limit 1 to 1000, default 100).
pub async fn ledger_entries(State(state): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let params = match parse_query(q.as_deref(), &["offset", "limit"]) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let offset = get("offset").unwrap_or(0);
    let limit = get("limit").unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return ApiError::bad_request(format!("`limit` must be between 1 and {MAX_PAGE}"))
            .into_response();
    }
    let result = state
        .reader
        .run(move |s| -> Result<(u64, Vec<Value>), ApiError> {
            let total = s.len().map_err(|e| storage_error(&e))?;
            let end = total.min(offset.saturating_add(limit));
            let mut entries = Vec::new();
            if offset < end {
                for (i, bytes) in s
                    .get_range(offset, end)
                    .map_err(|e| storage_error(&e))?
                    .into_iter()
                    .enumerate()
                {
                    let entry = Entry::parse(&bytes).map_err(|e| {
                        storage_error(&StorageError::Corrupt {
                            index: offset + i as u64,
                            detail: e.to_string(),
                        })
                    })?;
                    entries.push(entry_json(&entry));
                }
            }
            Ok((total, entries))
        })
        .await;
    match result {
        Ok(Ok((total, entries))) => json_response(
            StatusCode::OK,
            &json!({"offset": offset, "limit": limit, "total": total, "entries": entries}),
        ),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::from_worker(&e).into_response(),
    }
}

/// `GET /ledger/entries/{hash}`.
pub async fn ledger_entry(State(state): State<Shared>, Path(hash): Path<String>) -> Response {
    let hash = hash.to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return ApiError::bad_request("expected a ledger entry hash: 64 hexadecimal digits")
            .into_response();
    }
    let wanted = hash.clone();
    let result = state
        .reader
        .run(move |s| -> Result<Option<Value>, ApiError> {
            let Some(index) = s.find(&wanted).map_err(|e| storage_error(&e))? else {
                return Ok(None);
            };
            let Some(bytes) = s.get(index).map_err(|e| storage_error(&e))? else {
                return Ok(None);
            };
            let entry = Entry::parse(&bytes).map_err(|e| {
                storage_error(&StorageError::Corrupt {
                    index,
                    detail: e.to_string(),
                })
            })?;
            Ok(Some(entry_json(&entry)))
        })
        .await;
    match result {
        Ok(Ok(Some(v))) => json_response(StatusCode::OK, &v),
        Ok(Ok(None)) => {
            ApiError::not_found(format!("no ledger entry has hash `{hash}`")).into_response()
        }
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::from_worker(&e).into_response(),
    }
}

/// Verifies the whole chain on a reader thread, counting failures.
///
/// # Errors
/// The API error when storage cannot be read or the readers are gone.
pub async fn verify_chain(state: &Shared) -> Result<lexecon_core::VerifyReport, ApiError> {
    let _permit = state
        .verify_gate
        .acquire()
        .await
        .map_err(|_| ApiError::from_worker(&WorkerError::Stopped))?;
    // Taken first: the ledger only grows while it is read. The chain is
    // held to it: an end this server committed that is gone, or a chain
    // rewritten up to its head, does not verify.
    let committed = state.engine.snapshot();
    let verifier = lexecon_core::ledger::ChainVerifier::new()
        .committed(committed.ledger_len, &committed.head_hash);
    let report = state
        .reader
        .run(move |s| verify_storage_from(s, verifier, 1, |_| {}))
        .await
        .map_err(|e| ApiError::from_worker(&e))?
        .map_err(|e| ApiError::from_worker(&WorkerError::Engine(e)))?;
    if !report.valid {
        inc(&state.metrics.verification_failures);
        tracing::error!(
            first_invalid = report.first_invalid,
            failure = report.failure.as_ref().map(|f| f.message.as_str()),
            "ledger verification failed"
        );
    }
    Ok(report)
}

/// `GET /ledger/verify`: the chain report (200 whether valid or not).
pub async fn ledger_verify(State(state): State<Shared>, RawQuery(q): RawQuery) -> Response {
    // Refused rather than ignored: a caller who adds `?expect_head=…` must
    // not read the answer as a check it did not make.
    if let Some((k, _)) = form_urlencoded::parse(q.as_deref().unwrap_or_default().as_bytes()).next()
    {
        return ApiError::bad_request(format!(
            "GET /ledger/verify takes no query parameters, got `{k}`; to check that an entry recorded earlier is still held, fetch GET /ledger/entries/{{hash}} or run `lexecon ledger verify --expect-head HASH`"
        ))
        .into_response();
    }
    match verify_chain(&state).await {
        Ok(report) => json_response(StatusCode::OK, &report),
        Err(e) => e.into_response(),
    }
}

/// `GET /policies`: the active policy and every load recorded in the ledger.
pub async fn list_policies(State(state): State<Shared>) -> Response {
    let history = std::sync::Arc::clone(&state.policy_history);
    let result = state
        .reader
        .run(
            move |s| -> Result<Vec<crate::ledger_view::PolicyLoad>, ScanError> {
                let len = s.len()?;
                let Ok(mut h) = history.lock() else {
                    return Err(ScanError::Malformed(
                        0,
                        "policy history lock poisoned".into(),
                    ));
                };
                if len > h.scanned {
                    let start = h.scanned;
                    scan_policy_loads(s, start, len, &mut h.loads)?;
                    h.scanned = len;
                }
                Ok(h.loads.clone())
            },
        )
        .await;
    match result {
        Ok(Ok(loads)) => {
            refresh_replica(&state).await;
            let snap = state.engine.snapshot();
            json_response(
                StatusCode::OK,
                &json!({"active": snap.policy, "policies": loads}),
            )
        }
        Ok(Err(ScanError::Storage(e))) => storage_error(&e).into_response(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_corrupt",
            e.to_string(),
        )
        .into_response(),
        Err(e) => ApiError::from_worker(&e).into_response(),
    }
}

/// `POST /policies`: the policy document, or `{"policy": …}`; loads it and
/// records its hash in the ledger.
pub async fn load_policy(State(state): State<Shared>, req: Request) -> Response {
    let result = async {
        let (bytes, value) = read_body(&state, req, MAX_LARGE_BODY_BYTES).await?;
        let body = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
        let wrapped =
            matches!(&value, Value::Object(obj) if obj.len() == 1 && obj.contains_key("policy"));
        let (text, at) = if wrapped {
            wrapped_policy(body).map_err(|e| ApiError::invalid_policy(&e))?
        } else {
            (body, Position::START)
        };
        let (text, _) = crate::node::prepare_policy(text, state.default_mode)
            .map_err(|e| ApiError::invalid_policy(&at.shift(e)))?;
        let loaded = state
            .engine
            .load_policy(text)
            .await
            .map_err(|e| ApiError::from_worker(&e))?;
        tracing::info!(
            name = %loaded.policy.name,
            policy_hash = %loaded.policy.policy_hash,
            ledger_index = loaded.ledger_index,
            recorded = loaded.recorded,
            "policy loaded"
        );
        Ok::<_, ApiError>(loaded)
    }
    .await;
    match result {
        Ok(loaded) => json_response(StatusCode::OK, &loaded),
        Err(e) => e.into_response(),
    }
}

/// `{"policy": …}`: the policy's own text, exactly as the client sent it (so
/// the parser sees its duplicate keys and every other mistake), and where it
/// starts in the body.
fn wrapped_policy(body: &str) -> Result<(&str, Position), PolicyError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapper<'a> {
        #[serde(borrow)]
        policy: &'a serde_json::value::RawValue,
    }
    let wrapper: Wrapper<'_> = serde_json::from_str(body).map_err(|e| PolicyError {
        path: "policy".into(),
        message: e.to_string(),
        line: Some(e.line()),
        column: Some(e.column()),
    })?;
    let text = wrapper.policy.get();
    // `text` borrows from `body`: its offset there is the pointers' distance.
    let start = (text.as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
    let before = body.get(..start).unwrap_or_default();
    let at = Position {
        line: before.matches('\n').count(),
        column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()),
    };
    Ok((text, at))
}

/// Where a policy's text starts in a request body: the lines and columns
/// (characters) before it, added to the positions its errors name.
#[derive(Debug, Clone, Copy)]
struct Position {
    line: usize,
    column: usize,
}

impl Position {
    const START: Self = Self { line: 0, column: 0 };

    fn shift(self, mut e: PolicyError) -> PolicyError {
        if let Some(line) = e.line.as_mut() {
            if *line == 1
                && let Some(column) = e.column.as_mut()
            {
                *column += self.column;
            }
            *line += self.line;
        }
        e
    }
}
