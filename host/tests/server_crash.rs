//! Crash and shutdown tests against the real binary: `kill -9` mid-load,
//! restart, `lexecon ledger verify` passes and every decision a client
//! received is in the ledger; SIGTERM and SIGHUP drain in-flight requests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lexecon::client::{ClientError, ClientOptions, LexeconClient};
use lexecon_core::{Decision, DecisionRequest};
use support::server::{TestNode, config_yaml, example_policy, stderr, stdout};

/// `server:` lines that turn per-client rate limiting off: every client of
/// these tests is one address, and on a fast machine the load would exceed
/// the default 1,000 requests/s (burst 2,000) and be answered 429.
const UNLIMITED: &str = "  rate_limit:\n    enabled: false\n";

/// Drives `threads` clients against `url` until `stop` or an error; returns what they received.
fn drive(
    url: &str,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<Decision>>> {
    (0..threads)
        .map(|t| {
            let (url, stop) = (url.to_string(), Arc::clone(stop));
            std::thread::spawn(move || {
                let options = ClientOptions {
                    timeout: Duration::from_secs(5),
                    ..ClientOptions::default()
                };
                let client = LexeconClient::with_options(&url, None, options).unwrap();
                let mut got = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut r = DecisionRequest::new("model", "read", "read", "crash test", 1);
                    r.request_id = Some(format!("t{t}-{i}"));
                    i += 1;
                    match client.decide(&r) {
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
        .collect()
}

fn assert_all_recorded(node: &TestNode, received: &[Decision]) {
    let n = node.node();
    let (mut storage, _) = n.open_storage(lexecon::node::Access::ReadOnly).unwrap();
    for d in received {
        let index = lexecon_core::Storage::find(&mut storage, &d.ledger_entry_hash).unwrap();
        assert_eq!(
            index,
            Some(d.ledger_index),
            "acknowledged decision {} is missing from the ledger",
            d.request_id
        );
        let bytes = lexecon_core::Storage::get(&mut storage, d.ledger_index)
            .unwrap()
            .unwrap();
        let entry = lexecon_core::Entry::parse(&bytes).unwrap();
        assert_eq!(entry.payload["decision_hash"], d.decision_hash.as_str());
    }
}

#[test]
fn kill_9_mid_load_loses_no_acknowledged_decision() {
    let node = TestNode::with_config(
        Some(&example_policy("read_only.json")),
        &config_yaml("test-node", UNLIMITED, ""),
    );
    let mut all: Vec<Decision> = Vec::new();
    for round in 0..3 {
        let mut server = node.spawn_server(&[]);
        let stop = Arc::new(AtomicBool::new(false));
        let workers = drive(&server.url, 8, &stop);
        std::thread::sleep(Duration::from_millis(700 + 300 * round));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        let received: Vec<Decision> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        assert!(
            !received.is_empty(),
            "round {round}: no decision was made before the kill"
        );
        all.extend(received);

        // No server now: the CLI checks the ledger (a torn tail is reported, not an error).
        let v = node.cli(&["ledger", "verify", "--verbose"]);
        assert!(
            v.status.success(),
            "round {round}: {}\n{}",
            stdout(&v),
            stderr(&v)
        );
        let c = node.cli(&["ledger", "check-integrity"]);
        assert!(
            c.status.success(),
            "round {round}: {}\n{}",
            stdout(&c),
            stderr(&c)
        );
        assert_all_recorded(&node, &all);
    }
    // A restart recovers (auto_verify is on) and serves on top of the same chain.
    let server = node.spawn_server(&[]);
    let client = LexeconClient::new(&server.url, None).unwrap();
    let report = client.verify_ledger().unwrap();
    assert!(report.valid);
    let d = client
        .decide(&DecisionRequest::new("model", "read", "read", "after", 1))
        .unwrap();
    assert_eq!(d.ledger_index, report.entries);
    for d in all.iter().step_by(97) {
        assert_eq!(
            client
                .get_ledger_entry(&d.ledger_entry_hash)
                .unwrap()
                .decision_hash
                .as_deref(),
            Some(d.decision_hash.as_str())
        );
    }
    let v = node.cli(&["ledger", "verify"]);
    assert!(
        v.status.success(),
        "verify while the server runs: {}",
        stderr(&v)
    );
}

/// A ledger file that can no longer be written (made immutable under the
/// running server: the failed append cannot be cut back either) leaves the
/// handle unusable until reopened. Decisions fail closed, and `/health`
/// says so, so that a supervisor restarts the node, which then works.
#[test]
fn health_fails_while_the_ledger_is_unusable_and_a_restart_recovers() {
    let node = TestNode::with_config(
        Some(&example_policy("read_only.json")),
        &config_yaml("test-node", UNLIMITED, ""),
    );
    let ledger = node.ledger_path();
    let chattr = |flag: &str| {
        std::process::Command::new("chattr")
            .args([flag, &ledger.display().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut server = node.spawn_server(&[]);
    let client = LexeconClient::new(&server.url, None).unwrap();
    let request = DecisionRequest::new("model", "read", "read_wiki", "answer", 1);
    client.decide(&request).unwrap();
    client.health().unwrap();
    if !chattr("+i") {
        eprintln!(
            "skipped: `chattr +i` is not available here (needs root and ext4-like attributes)"
        );
        return;
    }
    let refused = client.decide(&request);
    let health = client.health();
    let status = client.status();
    assert!(chattr("-i"), "chattr -i");
    match refused {
        Err(ClientError::Api {
            status: 503, code, ..
        }) => assert_eq!(code, "storage"),
        other => panic!("a decision on an immutable ledger: {other:?}"),
    }
    match health {
        Err(ClientError::Api { status: 503, .. }) => {}
        other => panic!("/health on an unusable ledger: {other:?}"),
    }
    let status = status.unwrap();
    assert_eq!(status["status"], "storage_unusable", "{status}");
    assert!(
        status["storage_fault"]
            .as_str()
            .is_some_and(|f| f.contains("unusable until reopened")),
        "{status}"
    );
    // Writable again, but the handle stays unusable: what reached the disk
    // is known only after a rescan.
    assert!(client.health().is_err());
    assert!(server.terminate().success());
    let server = node.spawn_server(&[]);
    let client = LexeconClient::new(&server.url, None).unwrap();
    client.health().unwrap();
    client.decide(&request).unwrap();
    let v = node.cli(&["ledger", "verify"]);
    assert!(v.status.success(), "{}", stderr(&v));
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_cleanly() {
    stops_cleanly_on("TERM");
}

/// SIGHUP (a closed terminal, a supervisor's reload) stops the server as
/// SIGTERM does, instead of ending it on the spot.
#[test]
fn sighup_drains_in_flight_requests_and_exits_cleanly() {
    stops_cleanly_on("HUP");
}

fn stops_cleanly_on(signal: &str) {
    let node = TestNode::with_config(
        Some(&example_policy("read_only.json")),
        &config_yaml("test-node", UNLIMITED, ""),
    );
    let mut server = node.spawn_server(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let workers = drive(&server.url, 8, &stop);
    std::thread::sleep(Duration::from_millis(500));
    let status = server.signal(signal);
    stop.store(true, Ordering::Relaxed);
    assert!(status.success(), "exit status after SIG{signal}: {status}");
    let received: Vec<Decision> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(!received.is_empty());
    let v = node.cli(&["ledger", "verify"]);
    assert!(v.status.success(), "{}", stderr(&v));
    assert_all_recorded(&node, &received);
    // The lock was released: a writer can open the ledger at once.
    let c = node.cli(&["ledger", "check-integrity"]);
    assert!(stdout(&c).contains("all records intact"), "{}", stdout(&c));
    assert!(
        !stdout(&c).contains("torn tail"),
        "a clean shutdown leaves no torn tail"
    );
}
