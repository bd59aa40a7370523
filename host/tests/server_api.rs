//! The HTTP API through `app()` and `oneshot` (no socket): the guide's
//! `test_governance.py` cases, every endpoint, bad input, auth, rate limits
//! and metrics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use lexecon::server::ServerOptions;
use lexecon::server::app::app;
use serde_json::{Value, json};
use support::server::{
    InProcess, TestNode, config_yaml, database_write, example_policy, system_command, web_search,
};
use tower::ServiceExt as _;

/// Fields drop in order: the router's handle on the state before the
/// server shuts down (so its ledger readers stop), the node's files last.
struct Api {
    router: Router,
    inproc: InProcess,
    _node: TestNode,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl Api {
    fn new(policy: Option<&str>) -> Self {
        Self::with(policy, "", "", None)
    }

    fn with(policy: Option<&str>, server_extra: &str, rest: &str, api_key: Option<&str>) -> Self {
        let node = TestNode::with_config(policy, &config_yaml("test-node", server_extra, rest));
        let opts = ServerOptions {
            api_key: api_key.map(str::to_string),
            ..ServerOptions::default()
        };
        let inproc = InProcess::start(&node.node(), &opts);
        let router = app(inproc.server.as_ref().unwrap().state().clone());
        Self {
            _node: node,
            inproc,
            router,
        }
    }

    fn send(&self, req: Request<Body>) -> Reply {
        let resp = self
            .inproc
            .rt
            .block_on(self.router.clone().oneshot(req))
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = self
            .inproc
            .rt
            .block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::from(body)).unwrap())
    }

    fn post(&self, path: &str, v: &Value) -> Reply {
        self.request(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            serde_json::to_vec(v).unwrap(),
        )
    }

    fn post_raw(&self, path: &str, body: &str) -> Reply {
        self.request(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            body.as_bytes().to_vec(),
        )
    }

    fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, &[], Vec::new())
    }
}

fn req_json(r: &lexecon_core::DecisionRequest) -> Value {
    serde_json::to_value(r).unwrap()
}

fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"], code, "{}", r.text);
    assert!(r.body.get("detail").is_some(), "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/json");
}

#[test]
fn guide_permitted_action_is_allowed_with_a_token() {
    let api = Api::new(Some(&example_policy("ai_assistant.json")));
    let r = api.post("/decide", &req_json(&web_search()));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["allowed"], true);
    assert_eq!(r.body["decision"], "permit");
    let token = &r.body["capability_token"];
    assert!(token["token"].as_str().unwrap().starts_with("lxc2."));
    assert_eq!(token["tool"], "web_search");
    for field in [
        "request_id",
        "decision_id",
        "reason",
        "policy_version_hash",
        "decision_hash",
        "ledger_entry_hash",
        "signature",
        "timestamp",
    ] {
        assert!(r.body[field].is_string(), "{field} in {}", r.text);
    }
}

#[test]
fn guide_forbidden_action_is_denied_with_forbidden_in_the_reason() {
    let api = Api::new(Some(&example_policy("ai_assistant.json")));
    let r = api.post("/decide", &req_json(&system_command()));
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["allowed"], false);
    assert!(r.body["capability_token"].is_null());
    assert!(
        r.body["reason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("forbidden"),
        "{}",
        r.text
    );
}

#[test]
fn guide_high_risk_is_denied_or_needs_confirmation() {
    let api = Api::new(Some(&example_policy("ai_assistant.json")));
    let r = api.post("/decide", &req_json(&database_write()));
    assert_eq!(r.status, StatusCode::OK);
    let reason = r.body["reason"].as_str().unwrap().to_lowercase();
    assert!(
        r.body["allowed"] == false || reason.contains("confirmation"),
        "{}",
        r.text
    );
    // A permitted tool at risk 4 escalates.
    let mut risky = web_search();
    risky.risk_level = 4;
    let r = api.post("/decide", &req_json(&risky));
    assert_eq!(r.body["allowed"], false);
    assert_eq!(r.body["decision"], "escalate");
    assert!(r.body["reason"].as_str().unwrap().contains("confirmation"));
}

#[test]
fn without_a_policy_everything_is_denied() {
    let api = Api::new(None);
    let r = api.post("/decide", &req_json(&web_search()));
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["allowed"], false);
    assert_eq!(r.body["policy_version_hash"], "none");
}

#[test]
fn client_mistakes_get_json_errors_never_500() {
    let api = Api::new(Some(&example_policy("ai_assistant.json")));
    assert_error(
        &api.post_raw("/decide", "{"),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_error(
        &api.post_raw("/decide", ""),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_error(
        &api.post_raw("/decide", "not json"),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let r = api.post_raw("/decide", &deep);
    assert!(
        r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        r.text
    );
    let deep_context = format!(
        r#"{{"actor": "model", "proposed_action": "p", "tool": "t", "user_intent": "u", "risk_level": 1, "context": {{"a": {}{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    // Well-formed JSON, nested deeper than a request may be: 422, naming it
    // as a context 20 levels deep is named.
    let r = api.post_raw("/decide", &deep_context);
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    let body: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(body["field"], "context.a", "{}", r.text);
    assert!(r.text.contains("nests deeper than 16 levels"), "{}", r.text);
    assert_error(
        &api.post_raw("/decide", "[]"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    let mut v = req_json(&web_search());
    v["risk_level"] = json!(9);
    let r = api.post("/decide", &v);
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert_eq!(r.body["field"], "risk_level");
    v["risk_level"] = json!(300);
    assert_error(
        &api.post("/decide", &v),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    v["risk_level"] = json!(-1);
    assert_error(
        &api.post("/decide", &v),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    v["risk_level"] = json!("1");
    assert_error(
        &api.post("/decide", &v),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    let mut v = req_json(&web_search());
    v["risk_levle"] = json!(1);
    let r = api.post("/decide", &v);
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert!(r.body["detail"].as_str().unwrap().contains("risk_levle"));
    let mut v = req_json(&web_search());
    v.as_object_mut().unwrap().remove("tool");
    let r = api.post("/decide", &v);
    assert!(
        r.body["detail"].as_str().unwrap().contains("tool"),
        "{}",
        r.text
    );
    // No JSON content type.
    let r = api.request(
        Method::POST,
        "/decide",
        &[],
        serde_json::to_vec(&req_json(&web_search())).unwrap(),
    );
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let r = api.request(
        Method::POST,
        "/decide",
        &[("content-type", "text/plain")],
        b"{}".to_vec(),
    );
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // A compressed body is refused as such, not read as malformed JSON.
    let r = api.request(
        Method::POST,
        "/decide",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        b"\x1f\x8b\x08\x00".to_vec(),
    );
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert!(r.text.contains("Content-Encoding: gzip"), "{}", r.text);
    let r = api.request(
        Method::POST,
        "/decide",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "identity"),
        ],
        b"{}".to_vec(),
    );
    // `identity` is no encoding: read, and refused for what it holds.
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    // Over the documented 1 MiB limit.
    let mut big = req_json(&web_search());
    big["user_intent"] = json!("x".repeat(1024 * 1024 + 10));
    assert_error(
        &api.post("/decide", &big),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // Under the body limit but over the core's field limits: 422.
    let mut long = req_json(&web_search());
    long["user_intent"] = json!("x".repeat(5000));
    assert_error(
        &api.post("/decide", &long),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    // Unknown routes and methods.
    assert_error(&api.get("/nope"), StatusCode::NOT_FOUND, "no_route");
    assert_error(
        &api.get("/decide"),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    // Nothing was recorded for any of those.
    assert_eq!(api.get("/status").body["ledger_length"], 1);
}

#[test]
fn batch_decides_in_order_and_rejects_invalid_batches_whole() {
    let api = Api::new(Some(&example_policy("ai_assistant.json")));
    let reqs = json!({"requests": [req_json(&web_search()), req_json(&system_command()), req_json(&database_write())]});
    let r = api.post("/decide/batch", &reqs);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let d = r.body["decisions"].as_array().unwrap();
    assert_eq!(d.len(), 3);
    assert_eq!(d[0]["allowed"], true);
    assert_eq!(d[1]["allowed"], false);
    let idx: Vec<u64> = d
        .iter()
        .map(|x| x["ledger_index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![1, 2, 3]);

    let mut bad = reqs.clone();
    bad["requests"][1]["risk_level"] = json!(0);
    let r = api.post("/decide/batch", &bad);
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert_eq!(r.body["field"], "requests[1].risk_level");
    // A duplicated field is an error, as on `/decide`, never "last one wins".
    let dup = r#"{"requests": [{"actor": "model", "actor": "admin", "proposed_action": "p", "tool": "web_search", "user_intent": "u", "risk_level": 1}]}"#;
    let r = api.post_raw("/decide/batch", dup);
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert!(r.text.contains("duplicate field `actor`"), "{}", r.text);
    assert_eq!(r.body["field"], "requests[0].actor", "{}", r.text);
    assert_error(
        &api.post("/decide/batch", &json!([])),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    assert_error(
        &api.post("/decide/batch", &json!({"requests": 1})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    // So is a duplicated `requests`: which list would the client mean?
    let one = serde_json::to_string(&req_json(&web_search())).unwrap();
    let r = api.post_raw(
        "/decide/batch",
        &format!(r#"{{"requests": [{one}], "requests": [{one}, {one}]}}"#),
    );
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert!(r.text.contains("duplicate field `requests`"), "{}", r.text);
    let r = api.post("/decide/batch", &json!({"requests": [], "x": 1}));
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert_eq!(r.body["field"], "x", "{}", r.text);
    let r = api.post("/decide/batch", &json!({}));
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert_eq!(r.body["field"], "requests", "{}", r.text);
    // Malformed JSON is 400 with its position, whatever its shape so far.
    for malformed in ["[1, 2", "{\"requests\": [1", "{\"requests\": []} x", "nul"] {
        let r = api.post_raw("/decide/batch", malformed);
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json");
        assert!(r.body["line"].as_u64().is_some(), "{}", r.text);
    }
    let many: Vec<Value> = (0..1001).map(|_| req_json(&web_search())).collect();
    assert_error(
        &api.post("/decide/batch", &json!({ "requests": many })),
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch_too_large",
    );
    assert_eq!(
        api.post("/decide/batch", &json!({"requests": []})).body["decisions"],
        json!([])
    );
    // An array is not an object whose fields it fills by position.
    let positional = json!([
        "req_1",
        "model",
        "Execute web_search",
        "web_search",
        "Research",
        1
    ]);
    let r = api.post("/decide", &positional);
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert!(
        r.text
            .contains("expected a decision request (a JSON object)"),
        "{}",
        r.text
    );
    let r = api.post("/decide/batch", &json!({ "requests": [positional] }));
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    let r = api.post("/policies", &json!(["Seq", "2.0", "permissive"]));
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy");
    assert_eq!(
        api.get("/status").body["ledger_length"],
        4,
        "rejected batches record nothing"
    );
}

#[test]
fn tokens_verify_as_string_or_object_and_scope() {
    let api = Api::new(Some(&example_policy("ai_assistant.json")));
    let d = api.post("/decide", &req_json(&web_search())).body;
    let token = d["capability_token"].clone();
    let r = api.post("/tokens/verify", &json!({"token": token["token"]}));
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["valid"], true, "{}", r.text);
    assert_eq!(r.body["claims"]["decision_hash"], d["decision_hash"]);
    let r = api.post(
        "/tokens/verify",
        &json!({"token": token, "tool": "web_search"}),
    );
    assert_eq!(r.body["valid"], true, "{}", r.text);
    let r = api.post(
        "/tokens/verify",
        &json!({"token": token, "tool": "execute"}),
    );
    assert_eq!(r.body["valid"], false);
    assert_eq!(r.body["error"], "wrong_tool");
    let r = api.post("/tokens/verify", &json!({"token": "lxc2.garbage.garbage"}));
    assert_eq!(r.body["valid"], false);
    assert_eq!(r.body["error"], "malformed");
    let mut forged = token["token"].as_str().unwrap().as_bytes().to_vec();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        api.post("/tokens/verify", &json!({"token": forged})).body["valid"],
        false
    );
    assert_error(
        &api.post("/tokens/verify", &json!({})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    assert_error(
        &api.post("/tokens/verify", &json!({"token": 5})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    assert_error(
        &api.post("/tokens/verify", &json!({"token": "x", "extra": 1})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    // The object's claims must be the token's: one that says another tool,
    // or a later expiry, is refused, naming the field; so is a field no
    // token has.
    for (field, value) in [
        ("tool", json!("execute")),
        ("actor", json!("admin")),
        (
            "expires_at",
            json!(token["expires_at"].as_u64().unwrap() + 31_536_000),
        ),
    ] {
        let mut altered = token.clone();
        altered[field] = value;
        let r = api.post("/tokens/verify", &json!({ "token": altered }));
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert_eq!(r.body["field"], format!("token.{field}"), "{}", r.text);
        assert!(
            r.text.contains("but the token it carries says"),
            "{}",
            r.text
        );
    }
    let mut extra = token.clone();
    extra["scope"] = json!("everything");
    let r = api.post("/tokens/verify", &json!({ "token": extra }));
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert_eq!(r.body["field"], "token.scope", "{}", r.text);
}

#[test]
fn ledger_entries_by_page_and_by_hash() {
    let api = Api::new(Some(&example_policy("ai_assistant.json")));
    let d = api.post("/decide", &req_json(&web_search())).body;
    api.post("/decide", &req_json(&system_command()));
    let r = api.get(&format!(
        "/ledger/entries/{}",
        d["ledger_entry_hash"].as_str().unwrap()
    ));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["decision_hash"], d["decision_hash"],
        "the guide's ledger_entry.decision_hash"
    );
    assert_eq!(r.body["kind"], "decision");
    assert_eq!(r.body["index"], d["ledger_index"]);
    for f in ["prev_hash", "timestamp", "entry_hash", "payload"] {
        assert!(!r.body[f].is_null(), "{f}");
    }
    let upper = d["ledger_entry_hash"].as_str().unwrap().to_uppercase();
    assert_eq!(
        api.get(&format!("/ledger/entries/{upper}")).status,
        StatusCode::OK
    );
    assert_error(
        &api.get(&format!("/ledger/entries/{}", "0".repeat(64))),
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let page = api.get("/ledger/entries?offset=1&limit=1");
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["entries"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["entries"][0]["index"], 1);
    let all = api.get("/ledger/entries");
    assert_eq!(all.body["entries"].as_array().unwrap().len(), 3);
    assert_eq!(all.body["entries"][0]["kind"], "policy_load");
    assert_eq!(
        api.get("/ledger/entries?offset=99").body["entries"],
        json!([])
    );
    // Percent-encoded names and values read as what they encode.
    let page = api.get("/ledger/entries?%6Fffset=%32&limit=%31");
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.body["entries"][0]["index"], 2);
    assert_eq!(page.body["entries"].as_array().unwrap().len(), 1);
    let twice = api.get("/ledger/entries?limit=1&limit=3");
    assert_error(&twice, StatusCode::BAD_REQUEST, "bad_request");
    assert!(twice.text.contains("more than once"), "{}", twice.text);
    for bad in [
        "/ledger/entries/xyz",
        "/ledger/entries?limit=0",
        "/ledger/entries?limit=5000",
        "/ledger/entries?offset=-1",
        "/ledger/entries?foo=1",
        "/ledger/entries?limit=%2B1",
    ] {
        assert_error(&api.get(bad), StatusCode::BAD_REQUEST, "bad_request");
    }

    let v = api.get("/ledger/verify");
    assert_eq!(v.status, StatusCode::OK);
    assert_eq!(v.body["valid"], true);
    assert_eq!(v.body["entries"], 3);
    // A parameter it does not take is refused, not ignored.
    let e = api.get(&format!("/ledger/verify?expect_head={}", "0".repeat(64)));
    assert_error(&e, StatusCode::BAD_REQUEST, "bad_request");
    assert!(e.text.contains("expect_head"), "{}", e.text);
    let e = api.get("/ledger/verify?expect%5Fhead=1");
    assert_error(&e, StatusCode::BAD_REQUEST, "bad_request");
    assert!(e.text.contains("`expect_head`"), "{}", e.text);
}

#[test]
fn policies_load_list_and_status() {
    let api = Api::new(None);
    assert_eq!(api.get("/policies").body["policies"], json!([]));
    assert!(api.get("/status").body["policy_hash"].is_null());
    // Bare document.
    let r = api.post_raw("/policies", &example_policy("read_only.json"));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["recorded"], true);
    let ro_hash = r.body["policy_hash"].clone();
    // The same again records nothing.
    assert_eq!(
        api.post_raw("/policies", &example_policy("read_only.json"))
            .body["recorded"],
        false
    );
    // Wrapped.
    let doc: Value = serde_json::from_str(&example_policy("ai_assistant.json")).unwrap();
    let r = api.post("/policies", &json!({ "policy": doc }));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let status = api.get("/status").body;
    assert_eq!(status["policy_hash"], r.body["policy_hash"]);
    assert_eq!(status["node_id"], "test-node");
    let public_key = status["public_key"].as_str().unwrap();
    assert!(
        public_key.len() == 64 && public_key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{status}"
    );
    assert!(status["uptime_seconds"].as_f64().unwrap() >= 0.0);
    let list = api.get("/policies").body;
    let loads = list["policies"].as_array().unwrap();
    assert_eq!(loads.len(), 2);
    assert_eq!(loads[0]["policy_hash"], ro_hash);
    assert_eq!(loads[0]["active"], false);
    assert_eq!(loads[1]["active"], true);
    assert_eq!(list["active"]["name"], "AI Assistant Policy");

    // Invalid policies: path, line and column.
    let r = api.post_raw(
        "/policies",
        "{\n  \"name\": \"x\",\n  \"relations\": [{\"type\": \"allows\"}]\n}",
    );
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy");
    assert!(
        r.body["field"]
            .as_str()
            .unwrap()
            .starts_with("relations[0]"),
        "{}",
        r.text
    );
    assert_eq!(r.body["line"], 3, "{}", r.text);
    // Wrapped, the policy is parsed as sent: a duplicated key is refused (a
    // map would have kept the last `relations`, dropping the forbid), and
    // positions are the body's own.
    let forbid = r#"{"type": "forbids", "subject": "actor:model", "action": "*"}"#;
    let permit = r#"{"type": "permits", "subject": "actor:model", "action": "*"}"#;
    let dup = format!(
        r#"{{"policy": {{"name": "dup", "relations": [{forbid}], "relations": [{permit}]}}}}"#
    );
    let r = api.post_raw("/policies", &dup);
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy");
    assert!(r.text.contains("duplicate field `relations`"), "{}", r.text);
    let at = dup.rfind(r#""relations""#).unwrap();
    assert_eq!(r.body["line"], 1, "{}", r.text);
    let column = r.body["column"].as_u64().unwrap() as usize;
    assert!(
        (at..at + 14).contains(&column),
        "column {column}, key at {}: {}",
        at + 1,
        r.text
    );
    let r = api.post_raw(
        "/policies",
        "{\"policy\":\n  {\"name\": \"x\", \"mode\": \"lax\"}}",
    );
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy");
    assert_eq!(
        (&r.body["line"], &r.body["column"]),
        (&json!(2), &json!(29)),
        "{}",
        r.text
    );
    let r = api.post_raw(
        "/policies",
        r#"{"policy": {"name": "a"}, "policy": {"name": "b"}}"#,
    );
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy");
    assert!(r.text.contains("duplicate field `policy`"), "{}", r.text);
    assert_error(
        &api.post_raw("/policies", "{"),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_eq!(
        api.get("/status").body["policy_hash"],
        status["policy_hash"],
        "a bad policy changes nothing"
    );
}

#[test]
fn the_guides_policy_patterns_all_load_and_decide() {
    let api = Api::new(None);
    let cases: [(&str, &str, &str, bool); 5] = [
        ("ai_assistant.json", "model", "web_search", true),
        ("read_only.json", "model", "read", true),
        ("tiered.json", "basic_model", "read", false),
        ("time_based.json", "model", "anything", false),
        ("rate_limiting.json", "model", "external_api", false),
    ];
    for (file, actor, tool, expect_allowed) in cases {
        let r = api.post_raw("/policies", &example_policy(file));
        assert_eq!(r.status, StatusCode::OK, "{file}: {}", r.text);
        let d = api.post(
            "/decide",
            &req_json(&lexecon_core::DecisionRequest::new(
                actor, "do it", tool, "test", 1,
            )),
        );
        assert_eq!(d.status, StatusCode::OK, "{file}: {}", d.text);
        assert_eq!(d.body["allowed"], expect_allowed, "{file}: {}", d.text);
    }
    // read-only forbids writes.
    api.post_raw("/policies", &example_policy("read_only.json"));
    let d = api
        .post(
            "/decide",
            &req_json(&lexecon_core::DecisionRequest::new(
                "model", "w", "write", "t", 1,
            )),
        )
        .body;
    assert!(d["reason"].as_str().unwrap().contains("forbidden"), "{d}");
    // guide_ai_assistant.json (verbatim) loads too.
    assert_eq!(
        api.post_raw("/policies", &example_policy("guide_ai_assistant.json"))
            .status,
        StatusCode::OK
    );
}

#[test]
fn the_guides_rate_limit_denies_the_eleventh_search() {
    let api = Api::new(Some(&example_policy("ai_assistant.json")));
    for i in 0..10 {
        assert_eq!(
            api.post("/decide", &req_json(&web_search())).body["allowed"],
            true,
            "call {i}"
        );
    }
    let r = api.post("/decide", &req_json(&web_search())).body;
    assert_eq!(r["allowed"], false);
    assert!(r["reason"].as_str().unwrap().contains("rate limit"), "{r}");
}

#[test]
fn default_mode_permissive_applies_to_policies_without_a_mode() {
    let api = Api::with(None, "", "policy:\n  default_mode: permissive\n", None);
    let r = api.post_raw("/policies", r#"{"name": "open", "relations": []}"#);
    assert_eq!(r.body["mode"], "permissive", "{}", r.text);
    assert_eq!(
        api.post("/decide", &req_json(&web_search())).body["allowed"],
        true
    );
}

#[test]
fn api_key_guards_everything_but_health() {
    let api = Api::with(
        Some(&example_policy("ai_assistant.json")),
        "",
        "",
        Some("s3cret-key"),
    );
    assert_eq!(api.get("/health").status, StatusCode::OK);
    let r = api.get("/status");
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(r.headers.contains_key("www-authenticate"));
    assert_error(
        &api.post("/decide", &req_json(&web_search())),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.get("/metrics"),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(&api.get("/nope"), StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = api.request(
        Method::GET,
        "/status",
        &[("authorization", "Bearer s3cret-kez")],
        Vec::new(),
    );
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let basic = api.request(
        Method::GET,
        "/status",
        &[("authorization", "Basic s3cret-key")],
        Vec::new(),
    );
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.request(
            Method::GET,
            "/status",
            &[("authorization", "Bearer s3cret-key")],
            Vec::new()
        )
        .status,
        StatusCode::OK
    );
    assert_eq!(
        api.request(
            Method::GET,
            "/status",
            &[("x-api-key", "s3cret-key")],
            Vec::new()
        )
        .status,
        StatusCode::OK
    );
    let body = serde_json::to_vec(&req_json(&web_search())).unwrap();
    let r = api.request(
        Method::POST,
        "/decide",
        &[
            ("authorization", "bearer s3cret-key"),
            ("content-type", "application/json"),
        ],
        body,
    );
    assert_eq!(r.body["allowed"], true, "{}", r.text);
    let metrics = api
        .request(
            Method::GET,
            "/metrics",
            &[("x-api-key", "s3cret-key")],
            Vec::new(),
        )
        .text;
    assert!(
        metrics.contains("lexecon_http_requests_unauthorized_total 6"),
        "{metrics}"
    );
}

#[test]
fn per_client_rate_limit_answers_429_with_retry_after() {
    let api = Api::with(
        Some(&example_policy("ai_assistant.json")),
        "  rate_limit:\n    requests_per_second: 1\n    burst: 5\n",
        "",
        None,
    );
    let from = |ip: &str| {
        let addr: SocketAddr = format!("{ip}:4000").parse().unwrap();
        let mut req = Request::builder()
            .uri("/status")
            .body(Body::empty())
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        api.send(req)
    };
    for _ in 0..5 {
        assert_eq!(from("10.0.0.1").status, StatusCode::OK);
    }
    let r = from("10.0.0.1");
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        from("10.0.0.2").status,
        StatusCode::OK,
        "another client is not limited"
    );
    // /health and /metrics (a scraper beside busy clients) are never limited.
    for path in ["/health", "/metrics"] {
        let mut req = Request::builder().uri(path).body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo("10.0.0.1:1".parse::<SocketAddr>().unwrap()));
        assert_eq!(api.send(req).status, StatusCode::OK, "{path}");
    }
}

#[test]
fn metrics_count_what_happened() {
    let api = Api::new(Some(&example_policy("ai_assistant.json")));
    api.post("/decide", &req_json(&web_search()));
    api.post("/decide", &req_json(&web_search()));
    api.post("/decide", &req_json(&system_command()));
    let mut risky = web_search();
    risky.risk_level = 4;
    api.post("/decide", &req_json(&risky));
    api.post_raw("/decide", "{");
    api.post(
        "/decide/batch",
        &json!({"requests": [req_json(&system_command()), req_json(&web_search())]}),
    );
    // A batch body that is not a batch counts as one invalid request.
    api.post_raw("/decide/batch", "{\"requests\": 7");
    api.post_raw("/decide/batch", "[]");
    let mut broken = api.get("/ledger/verify");
    assert_eq!(broken.body["valid"], true);
    broken = api.get("/metrics");
    assert_eq!(broken.status, StatusCode::OK);
    assert!(
        broken.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let m = broken.text;
    for line in [
        "lexecon_decision_requests_total 9",
        "lexecon_decision_requests_allowed 3",
        "lexecon_decision_requests_denied 3",
        "lexecon_decision_requests_escalated 1",
        "lexecon_decision_requests_invalid 3",
        // One per decision (the batch's two included), none for the three
        // refused before the engine.
        "lexecon_decision_latency_seconds_count 6",
        "lexecon_ledger_entries_total 7",
        "lexecon_ledger_verification_failures 0",
        "lexecon_active_tokens 3",
        "# TYPE lexecon_decision_latency_seconds histogram",
    ] {
        assert!(m.contains(line), "`{line}` missing from\n{m}");
    }
}

#[test]
fn metrics_can_be_disabled() {
    let api = Api::with(None, "", "monitoring:\n  enabled: false\n", None);
    assert_error(
        &api.get("/metrics"),
        StatusCode::NOT_FOUND,
        "metrics_disabled",
    );
}
