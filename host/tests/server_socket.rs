//! The server on a real socket (`127.0.0.1:<ephemeral port>`), driven by
//! the Rust client: the guide's integration test, token expiry, no deadlock
//! under many requests from one address, rate limiting, concurrency, TLS,
//! the metrics port, slow clients and graceful shutdown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lexecon::client::{ClientError, ClientOptions, LexeconClient};
use lexecon::server::ServerOptions;
use support::server::{
    InProcess, TestNode, config_yaml, example_policy, system_command, web_search,
};

fn start(policy: Option<&str>, server_extra: &str, rest: &str) -> (TestNode, InProcess) {
    let node = TestNode::with_config(policy, &config_yaml("test-node", server_extra, rest));
    let server = InProcess::start(&node.node(), &ServerOptions::default());
    (node, server)
}

#[test]
fn guide_end_to_end_decide_verify_token_fetch_ledger_entry() {
    let (_node, server) = start(Some(&example_policy("ai_assistant.json")), "", "");
    let client = LexeconClient::new(&server.url(), None).unwrap();
    client.health().unwrap();
    // 1. Request decision.
    let decision = client.decide(&web_search()).unwrap();
    assert!(decision.allowed, "{}", decision.reason);
    let token = decision
        .capability_token
        .as_ref()
        .expect("a token with an allow");
    // 2. Verify the token is valid.
    let v = client.verify_token(&token.token).unwrap();
    assert!(v.valid, "{v:?}");
    assert_eq!(v.claims.unwrap().decision_hash, decision.decision_hash);
    assert!(
        client
            .verify_token_for(&token.token, Some("web_search"), Some("model"))
            .unwrap()
            .valid
    );
    assert!(
        !client
            .verify_token_for(&token.token, Some("shell"), None)
            .unwrap()
            .valid
    );
    // 4. Verify the ledger entry.
    let entry = client
        .get_ledger_entry(&decision.ledger_entry_hash)
        .unwrap();
    assert_eq!(
        entry.decision_hash.as_deref(),
        Some(decision.decision_hash.as_str())
    );
    assert_eq!(entry.index, decision.ledger_index);
    // The other guide cases through the client.
    let denied = client.decide(&system_command()).unwrap();
    assert!(!denied.allowed && denied.reason.to_lowercase().contains("forbidden"));
    // Batch, ledger pages and verification.
    let batch = client
        .decide_batch(&[web_search(), system_command()])
        .unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch[0].allowed && !batch[1].allowed);
    assert_eq!(client.ledger_entries(0, 10).unwrap().len(), 5);
    assert!(client.verify_ledger().unwrap().valid);
    let missing = client.get_ledger_entry(&"ab".repeat(32)).unwrap_err();
    assert!(
        matches!(missing, ClientError::Api { status: 404, .. }),
        "{missing}"
    );
    let bad = client
        .decide(&lexecon_core::DecisionRequest::new(
            "model", "p", "t", "u", 7,
        ))
        .unwrap_err();
    assert!(
        matches!(bad, ClientError::Api { status: 422, ref code, .. } if code == "invalid_request"),
        "{bad}"
    );
}

#[test]
fn guide_token_expiry() {
    let (_node, server) = start(Some(&example_policy("ai_assistant.json")), "", "");
    let client = LexeconClient::new(&server.url(), None).unwrap();
    let mut req = web_search();
    req.token_ttl = Some(1);
    let d = client.decide(&req).unwrap();
    let token = d.capability_token.unwrap();
    assert_eq!(token.claims.expires_at - token.claims.issued_at, 1);
    // Valid until `expires_at` (whole seconds), invalid from then on.
    let wait = token.claims.expires_at.saturating_sub(now_s()) + 1;
    std::thread::sleep(Duration::from_secs(wait));
    let v = client.verify_token(&token.token).unwrap();
    assert!(!v.valid);
    assert_eq!(v.error.as_deref(), Some("expired"));
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn many_requests_from_one_address_never_hang() {
    // The Python original deadlocked after ~100 requests from one address.
    let (_node, server) = start(Some(&example_policy("read_only.json")), "", "");
    let client = LexeconClient::new(&server.url(), None).unwrap();
    let started = Instant::now();
    for i in 0..600 {
        let d = client
            .decide(&lexecon_core::DecisionRequest::new(
                "model", "read", "read", "i", 1,
            ))
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert!(d.allowed);
    }
    // Fresh connections too, not only one kept-alive connection.
    for i in 0..150 {
        let c = LexeconClient::new(&server.url(), None).unwrap();
        c.health().unwrap_or_else(|e| panic!("connection {i}: {e}"));
        c.status().unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn rate_limited_clients_get_429_with_retry_after_and_recover() {
    let (_node, server) = start(
        Some(&example_policy("read_only.json")),
        "  rate_limit:\n    requests_per_second: 20\n    burst: 40\n",
        "",
    );
    let client = LexeconClient::new(&server.url(), None).unwrap();
    let (mut ok, mut limited, mut retry) = (0, 0, None);
    for _ in 0..300 {
        match client.decide(&lexecon_core::DecisionRequest::new(
            "model", "read", "read", "i", 1,
        )) {
            Ok(_) => ok += 1,
            Err(ClientError::Api {
                status: 429,
                code,
                retry_after,
                ..
            }) => {
                assert_eq!(code, "rate_limited");
                limited += 1;
                retry = retry_after;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(ok >= 40 && limited > 0, "ok {ok}, limited {limited}");
    let retry = retry.expect("Retry-After header");
    assert!((1..=2).contains(&retry));
    std::thread::sleep(Duration::from_secs(retry));
    client
        .decide(&lexecon_core::DecisionRequest::new(
            "model", "read", "read", "i", 1,
        ))
        .unwrap();
    client.health().unwrap();
}

#[test]
fn concurrent_clients_get_distinct_durable_decisions() {
    let (_node, server) = start(Some(&example_policy("read_only.json")), "", "");
    let url = server.url();
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = LexeconClient::new(&url, None).unwrap();
                (0..40)
                    .map(|i| {
                        let mut r =
                            lexecon_core::DecisionRequest::new("model", "read", "read", "i", 1);
                        r.request_id = Some(format!("t{t}-{i}"));
                        client.decide(&r).unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let decisions: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let mut idx: Vec<u64> = decisions.iter().map(|d| d.ledger_index).collect();
    idx.sort_unstable();
    idx.dedup();
    assert_eq!(idx.len(), 640);
    let client = LexeconClient::new(&url, None).unwrap();
    let report = client.verify_ledger().unwrap();
    assert!(report.valid);
    assert_eq!(report.entries, 641);
    for d in decisions.iter().step_by(37) {
        assert_eq!(
            client
                .get_ledger_entry(&d.ledger_entry_hash)
                .unwrap()
                .decision_hash
                .unwrap(),
            d.decision_hash
        );
    }
}

#[test]
fn tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let tls = format!(
        "  tls:\n    enabled: true\n    cert_file: {}\n    key_file: {}\n",
        cert.display(),
        key.display()
    );
    let (_node, server) = start(
        Some(&example_policy("ai_assistant.json")),
        &tls,
        "monitoring:\n  prometheus_port: 0\n",
    );
    let url = server.url();
    assert!(url.starts_with("https://"), "{url}");
    let options = ClientOptions {
        root_certificates_pem: Some(ck.cert.pem().into_bytes()),
        ..ClientOptions::default()
    };
    let client = LexeconClient::with_options(&url, None, options.clone()).unwrap();
    let d = client.decide(&web_search()).unwrap();
    assert!(d.allowed);
    assert!(
        client
            .verify_token(&d.capability_token.unwrap().token)
            .unwrap()
            .valid
    );
    // Without trusting the certificate the client refuses the server.
    let untrusting = LexeconClient::new(&url, None).unwrap();
    assert!(matches!(
        untrusting.health(),
        Err(ClientError::Transport(_))
    ));
    // Plain HTTP to the TLS port gets nowhere.
    let plain = LexeconClient::new(&url.replace("https://", "http://"), None).unwrap();
    assert!(plain.health().is_err());
    // The metrics listener speaks TLS too.
    let m = server.server.as_ref().unwrap().metrics_addr.unwrap();
    let metrics = LexeconClient::with_options(&format!("https://{m}"), None, options).unwrap();
    metrics.health().unwrap();
}

/// HTTP/2 (h2c, prior knowledge; over TLS the same): an error answered
/// without reading the body (413 here) arrives as its JSON answer, and the
/// connection goes on serving. (The server then resets the stream with
/// NO_ERROR, as RFC 9113 §8.1 allows; curl 7.88 reports that as a "stream
/// error" and drops the answer, hyper and other clients keep it.)
#[test]
fn http2_clients_get_error_answers() {
    use http_body_util::{BodyExt as _, Full};
    use hyper::body::Bytes;
    let (_node, server) = start(Some(&example_policy("ai_assistant.json")), "", "");
    let url = server.url();
    server.rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let post = |body: Vec<u8>| {
            hyper::Request::post(format!("{url}/decide"))
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        };
        let big = vec![b' '; 2 * 1024 * 1024];
        let resp = send.send_request(post(big)).await.unwrap();
        assert_eq!(resp.status(), 413);
        assert!(resp.headers().get("connection").is_none());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "payload_too_large", "{body}");

        send.ready().await.unwrap();
        let req = serde_json::to_vec(&web_search()).unwrap();
        let resp = send.send_request(post(req)).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let d: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(d["allowed"], true, "{d}");
    });
}

#[test]
fn metrics_port_serves_metrics_only() {
    let (_node, server) = start(
        Some(&example_policy("ai_assistant.json")),
        "",
        "monitoring:\n  prometheus_port: 0\n",
    );
    let m = server
        .server
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("metrics listener");
    let client = LexeconClient::new(&server.url(), None).unwrap();
    client.decide(&web_search()).unwrap();
    let text = http_get(&m.to_string(), "/metrics");
    assert!(text.contains("200 OK"), "{text}");
    assert!(
        text.contains("lexecon_decision_requests_allowed 1"),
        "{text}"
    );
    assert!(http_get(&m.to_string(), "/decide").contains("404"));
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    answer(&mut s)
}

/// What the server sends on `s` until it closes it (at most 5 s).
fn answer(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn slow_and_broken_clients_do_not_block_others() {
    let (_node, server) = start(
        Some(&example_policy("read_only.json")),
        "  request_timeout: 1\n",
        "",
    );
    let addr = server.url().trim_start_matches("http://").to_string();
    // A client that sends half a request and stalls.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled.write_all(b"POST /decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"actor\"").unwrap();
    // One that never finishes its headers.
    let mut slowloris = TcpStream::connect(&addr).unwrap();
    slowloris
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Others are served meanwhile.
    let client = LexeconClient::new(&server.url(), None).unwrap();
    for _ in 0..20 {
        client
            .decide(&lexecon_core::DecisionRequest::new(
                "model", "read", "read", "i", 1,
            ))
            .unwrap();
    }
    // The stalled body gets 408 after the timeout; the slow headers a closed connection.
    let out = answer(&mut stalled);
    assert!(
        out.contains("408") && out.contains("request_timeout"),
        "{out}"
    );
    slowloris
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    let started = Instant::now();
    let _ = slowloris.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "slow headers were not cut off"
    );
    // Connections that send nothing, a few bytes of HTTP/2's preface (the
    // server reads them to tell HTTP/1 from HTTP/2), or nothing more after a
    // first request, are closed too: each would hold a file descriptor.
    let silent = TcpStream::connect(&addr).unwrap();
    let mut preface = TcpStream::connect(&addr).unwrap();
    preface.write_all(b"PRI * HTTP").unwrap();
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    for (name, mut s) in [("silent", silent), ("preface", preface), ("idle", idle)] {
        s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        let started = Instant::now();
        let mut got = Vec::new();
        let read = s.read_to_end(&mut got);
        assert!(
            read.is_ok() && started.elapsed() < Duration::from_secs(5),
            "{name}: still open after {:?} ({read:?})",
            started.elapsed()
        );
        if name == "idle" {
            assert!(
                String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
                "{got:?}"
            );
        }
    }
    // Garbage instead of HTTP.
    let mut garbage = TcpStream::connect(&addr).unwrap();
    garbage.write_all(b"\x00\x01\x02 not http\r\n\r\n").unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = garbage.read_to_end(&mut buf);
    client.health().unwrap();
    // The stalled body counts as a request, but not as a decision's latency:
    // that time was the client's.
    let metrics = http_get(&addr, "/metrics");
    assert!(
        metrics.contains("\nlexecon_decision_requests_total 21\n")
            && metrics.contains("\nlexecon_decision_latency_seconds_count 20\n"),
        "{metrics}"
    );
}

/// Clients that hang up right after sending: the engine still decides
/// their requests, and each decision is observed in the latency histogram
/// (one observation per decision asked of the engine), not lost with the
/// dropped call.
#[test]
fn decisions_of_clients_that_hung_up_are_observed() {
    let (_node, server) = start(
        Some(&example_policy("read_only.json")),
        "  rate_limit:\n    enabled: false\n",
        "",
    );
    let addr = server.url().trim_start_matches("http://").to_string();
    let body = r#"{"actor":"model","proposed_action":"read","tool":"read","user_intent":"i","risk_level":1}"#;
    let request = format!(
        "POST /decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let sent = 200;
    for _ in 0..sent {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
    }
    let metric = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    };
    // Some connections close before the server reads them (no decision);
    // once the count settles, every decision made has its observation.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let m = http_get(&addr, "/metrics");
        let decided = metric(&m, "lexecon_decision_requests_allowed")
            + metric(&m, "lexecon_decision_requests_denied");
        let observed = metric(&m, "lexecon_decision_latency_seconds_count");
        if decided > 0 && observed == decided && last == Some(decided) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{decided} of {sent} sent decided, {observed} observed:\n{m}"
        );
        last = Some(decided);
    }
}

#[test]
fn shutdown_finishes_in_flight_requests() {
    let (node, mut server) = start(Some(&example_policy("read_only.json")), "", "");
    let url = server.url();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = LexeconClient::new(&url, None).unwrap();
                let mut got = Vec::new();
                for _ in 0..2000 {
                    match client.decide(&lexecon_core::DecisionRequest::new(
                        "model", "read", "read", "i", 1,
                    )) {
                        Ok(d) => got.push(d),
                        Err(ClientError::Transport(_) | ClientError::Api { status: 503, .. }) => {
                            break;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                got
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    server.stop();
    let received: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(!received.is_empty());
    // The ledger is closed (the lock is free) and holds every decision a client received.
    let n = node.node();
    let mut storage = support::server::open_for_writing(&n);
    let report = lexecon_core::engine::verify_storage(&mut storage, |_| {}).unwrap();
    assert!(report.valid);
    for d in &received {
        let i = lexecon_core::Storage::find(&mut storage, &d.ledger_entry_hash).unwrap();
        assert_eq!(i, Some(d.ledger_index));
    }
}

/// A stalled upload does not hold the shutdown up (systemd's stop timeout
/// would kill the process): its request is answered 503 at once, nothing
/// decided, and its time is not a decision's latency.
#[test]
fn shutdown_does_not_wait_for_a_stalled_upload() {
    use std::io::Write as _;
    let (_node, mut server) = start(Some(&example_policy("read_only.json")), "", "");
    let addr = server.url().trim_start_matches("http://").to_string();
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled
        .write_all(b"POST /decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"actor\"")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    server.stop();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        t0.elapsed()
    );
    let out = answer(&mut stalled);
    assert!(
        out.starts_with("HTTP/1.1 503") && out.contains("shutting_down"),
        "{out}"
    );
}

#[test]
fn tampering_while_running_is_reported_and_counted() {
    let config = config_yaml("test-node", "", "").replace(
        "  auto_verify: true\n",
        "  auto_verify: true\n  integrity_check_interval: 1\n",
    );
    let node = TestNode::with_config(Some(&example_policy("read_only.json")), &config);
    let server = InProcess::start(&node.node(), &ServerOptions::default());
    let client = LexeconClient::new(&server.url(), None).unwrap();
    let mut r = lexecon_core::DecisionRequest::new("model", "read", "read", "tamper-me", 1);
    let d = client.decide(&r).unwrap();
    r.user_intent = "after".into();
    client.decide(&r).unwrap();
    assert!(client.verify_ledger().unwrap().valid);
    let mut bytes = std::fs::read(node.ledger_path()).unwrap();
    let at = bytes.windows(9).position(|w| w == b"tamper-me").unwrap();
    bytes[at] = b'T';
    std::fs::write(node.ledger_path(), &bytes).unwrap();
    let report = client.verify_ledger().unwrap();
    assert!(!report.valid);
    assert_eq!(report.first_invalid, Some(d.ledger_index));
    // Reading the damaged record is the ledger's failure: 503, never a 500.
    let addr = server.url().trim_start_matches("http://").to_string();
    for path in ["/ledger/entries?offset=0&limit=10", "/policies"] {
        let answer = http_get(&addr, path);
        assert!(
            answer.starts_with("HTTP/1.1 503") && answer.contains("\"error\":\"ledger_corrupt\""),
            "{path}: {answer}"
        );
    }
    // The periodic check (every second) counts too.
    std::thread::sleep(Duration::from_millis(2500));
    let metrics = http_get(server.url().trim_start_matches("http://"), "/metrics");
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lexecon_ledger_verification_failures "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(failures >= 2, "{metrics}");
}

#[test]
fn auto_load_policies_at_start() {
    let ai = support::server::example_policy_path("ai_assistant.json");
    let ro = support::server::example_policy_path("read_only.json");
    let rest = format!(
        "policy:\n  auto_load:\n    - {}\n    - {}\n",
        ai.display(),
        ro.display()
    );
    let (_node, server) = start(None, "", &rest);
    let client = LexeconClient::new(&server.url(), None).unwrap();
    assert_eq!(
        client.status().unwrap()["policy"]["name"],
        "Read-Only Policy",
        "the last file wins"
    );
    // And it alone is recorded: the first was never active, not even for a
    // moment (replicas on a shared ledger would decide under it).
    let status = client.status().unwrap();
    assert_eq!(status["ledger_length"], 1, "{status}");
    // A broken file stops the start, naming it, before any file is loaded.
    let rest = format!(
        "policy:\n  auto_load:\n    - {}\n    - /nonexistent/policy.json\n",
        ai.display()
    );
    let node = TestNode::with_config(None, &config_yaml("test-node", "", &rest));
    let e = start_error(&node);
    assert!(
        e.contains("/nonexistent/policy.json") && e.contains("auto_load"),
        "{e}"
    );
    // And the ledger lock was released: the node opens again, with nothing
    // recorded by the server that did not start.
    let mut storage = support::server::open_for_writing(&node.node());
    assert_eq!(lexecon_core::Storage::len(&mut storage).unwrap(), 0);
}

/// Why `node`'s server refuses to start.
fn start_error(node: &TestNode) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(lexecon::server::start(
        &node.node(),
        &ServerOptions::default(),
    ))
    .unwrap_err()
    .0
}

#[test]
fn a_second_server_on_the_same_ledger_is_refused() {
    let (node, _server) = start(Some(&example_policy("read_only.json")), "", "");
    let e = start_error(&node);
    assert!(e.contains("locked"), "{e}");
}
