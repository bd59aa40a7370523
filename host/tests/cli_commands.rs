//! The `lexecon` binary as a user runs it: `init`, `policy`, `decide`,
//! `ledger`, `token`, `server` start-up errors, node selection, `--help`,
//! and the tamper test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::os::unix::fs::PermissionsExt as _;

use lexecon::client::LexeconClient;
use serde_json::Value;
use support::server::{
    TestNode, cli, config_yaml, example_policy, example_policy_path, stderr, stdout,
};

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Fails with exit status 1 and exactly one `error: …` line on stderr.
fn failed(o: &std::process::Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{err}");
    lines[0].to_string()
}

fn p(name: &str) -> String {
    example_policy_path(name).display().to_string()
}

/// `lexecon decide` for the guide's web search, from flags (a permit under
/// `ai_assistant.json`).
const DECIDE_WEB_SEARCH: [&str; 11] = [
    "decide",
    "--actor",
    "model",
    "--tool",
    "web_search",
    "--action",
    "Execute web_search",
    "--intent",
    "Research",
    "--risk",
    "1",
];

/// [`DECIDE_WEB_SEARCH`] naming the node with `--node-id`.
fn with_node_id(id: &str) -> Vec<&str> {
    let mut args = vec!["decide", "--node-id", id];
    args.extend_from_slice(&DECIDE_WEB_SEARCH[1..]);
    args
}

#[test]
fn init_creates_the_guides_layout_and_refuses_to_overwrite() {
    let home = tempfile::tempdir().unwrap();
    let out = ok(&cli(home.path(), &["init", "--node-id", "production-node"]));
    assert!(out.contains("initialized node `production-node`"), "{out}");
    let dir = home.path().join("nodes/production-node");
    for f in [
        "config.yaml",
        "keys/private_key.pem",
        "keys/public_key.pem",
        "ledger.db",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let mode = std::fs::metadata(dir.join("keys/private_key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        std::fs::read_to_string(dir.join("keys/private_key.pem"))
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        std::fs::read_to_string(dir.join("keys/public_key.pem"))
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let config = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(config.contains("node_id: production-node"));
    let old_key = std::fs::read(dir.join("keys/public_key.pem")).unwrap();
    let e = failed(&cli(home.path(), &["init", "--node-id", "production-node"]));
    assert!(e.contains("--force"), "{e}");
    assert_eq!(
        std::fs::read(dir.join("keys/public_key.pem")).unwrap(),
        old_key,
        "not overwritten"
    );
    ok(&cli(
        home.path(),
        &["init", "--node-id", "production-node", "--force"],
    ));
    assert_ne!(
        std::fs::read(dir.join("keys/public_key.pem")).unwrap(),
        old_key
    );
    let e = failed(&cli(home.path(), &["init"]));
    assert!(e.contains("--node-id"), "{e}");
    let e = failed(&cli(home.path(), &["init", "--node-id", "../evil"]));
    assert!(e.contains("not valid"), "{e}");
    // A configuration given with --config that does not load is named as given.
    let bad = home.path().join("bad.yaml");
    std::fs::write(&bad, "node_id: n3\nserver:\n  prot: 8000\n").unwrap();
    let e = failed(&cli(
        home.path(),
        &[
            "init",
            "--node-id",
            "n3",
            "--config",
            &bad.display().to_string(),
        ],
    ));
    assert!(e.contains("bad.yaml") && e.contains("server.prot"), "{e}");
    assert!(!home.path().join("nodes/n3").exists());
}

#[test]
fn help_on_every_command() {
    let home = tempfile::tempdir().unwrap();
    let commands: &[&[&str]] = &[
        &[],
        &["init"],
        &["policy"],
        &["policy", "validate"],
        &["policy", "load"],
        &["policy", "list"],
        &["policy", "show"],
        &["server"],
        &["decide"],
        &["ledger"],
        &["ledger", "show"],
        &["ledger", "verify"],
        &["ledger", "check-integrity"],
        &["token"],
        &["token", "verify"],
    ];
    for c in commands {
        let mut args = c.to_vec();
        args.push("--help");
        let out = ok(&cli(home.path(), &args));
        assert!(out.contains("Usage: lexecon"), "{c:?}: {out}");
        assert!(
            out.contains("--node-id") && out.contains("--config"),
            "{c:?} lacks the global options: {out}"
        );
    }
    let o = cli(home.path(), &["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    // Usage errors are one line too: the reason, then the usage.
    for (args, says) in [
        (
            &["frobnicate"][..],
            "error: unrecognized subcommand 'frobnicate' (usage: lexecon [OPTIONS] <COMMAND>)",
        ),
        (
            &["policy", "validate"][..],
            "error: the following required arguments were not provided: --file <FILE> (usage: lexecon policy validate --file <FILE>)",
        ),
        (
            &["decide", "--actor", "m", "--tool", "t"][..],
            "error: the following required arguments were not provided: --action <ACTION>, --intent <INTENT>, --risk <RISK> (usage: lexecon decide --tool <TOOL> --action <ACTION> --intent <INTENT> --risk <RISK> <--actor <ACTOR>|--json-file <FILE>>)",
        ),
        (
            &["ledger", "show", "--last", "x"][..],
            "error: invalid value 'x' for '--last <N>': invalid digit found in string",
        ),
    ] {
        let o = cli(home.path(), args);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(stderr(&o), format!("{says}\n"), "{args:?}");
    }
}

#[test]
fn policy_validate_names_path_line_and_column() {
    let home = tempfile::tempdir().unwrap();
    let out = ok(&cli(
        home.path(),
        &["policy", "validate", "--file", &p("ai_assistant.json")],
    ));
    assert!(
        out.contains("valid") && out.contains("AI Assistant Policy"),
        "{out}"
    );
    for f in [
        "read_only.json",
        "tiered.json",
        "time_based.json",
        "rate_limiting.json",
        "guide_ai_assistant.json",
    ] {
        ok(&cli(home.path(), &["policy", "validate", "--file", &p(f)]));
    }
    let bad = home.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"name\": \"x\",\n  \"relations\": [\n    {\"type\": \"permits\", \"subject\": \"actor:model\", \"action\": \"action:read\", \"object\": \"*\", \"when\": 1}\n  ]\n}\n").unwrap();
    let e = failed(&cli(
        home.path(),
        &["policy", "validate", "--file", &bad.display().to_string()],
    ));
    assert!(
        e.contains("bad.json:4:") && e.contains("relations[0]") && e.contains("when"),
        "{e}"
    );
    let e = failed(&cli(
        home.path(),
        &["policy", "validate", "--file", "/nonexistent.json"],
    ));
    assert!(e.contains("cannot read"), "{e}");
}

#[test]
fn policy_load_list_show_and_the_active_policy_survives_restart() {
    let node = TestNode::new(None);
    let id = node.id.clone();
    let out = ok(&node.cli(&[
        "policy",
        "load",
        "--node-id",
        &id,
        "--file",
        &p("ai_assistant.json"),
    ]));
    assert!(out.contains("loaded policy `AI Assistant Policy`"), "{out}");
    let hash_line = out.lines().find(|l| l.contains("policy hash:")).unwrap();
    let ai_hash = hash_line.split_whitespace().last().unwrap().to_string();
    let again = ok(&node.cli(&["policy", "load", "--file", &p("ai_assistant.json")]));
    assert!(again.contains("already the active policy"), "{again}");
    ok(&node.cli(&["policy", "load", "--file", &p("read_only.json")]));
    let list = ok(&node.cli(&["policy", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with("  #0") && lines[0].contains(&ai_hash),
        "{list}"
    );
    assert!(
        lines[1].starts_with("* #1") && lines[1].contains("Read-Only Policy"),
        "{list}"
    );
    let json: Value = serde_json::from_str(&ok(&node.cli(&["policy", "list", "--json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    // show by file stem, by name and by hash prefix.
    for name in [
        "ai_assistant",
        "AI Assistant Policy",
        "ai_assistant_policy",
        &ai_hash[..12],
    ] {
        let shown: Value =
            serde_json::from_str(&ok(&node.cli(&["policy", "show", "--name", name]))).unwrap();
        assert_eq!(shown["policy_hash"], ai_hash.as_str(), "{name}");
        assert_eq!(shown["active"], false);
        assert_eq!(shown["policy"]["name"], "AI Assistant Policy");
    }
    let e = failed(&node.cli(&["policy", "show", "--name", "nope"]));
    assert!(
        e.contains("AI Assistant Policy"),
        "lists what is loaded: {e}"
    );
    let e = failed(&node.cli(&["policy", "show", "--name", &ai_hash[..4]]));
    assert!(e.contains("at least 6 hex digits"), "{e}");

    // A server started now runs the last loaded policy.
    let mut server = node.spawn_server(&[]);
    let client = LexeconClient::new(&server.url, None).unwrap();
    let status = client.status().unwrap();
    assert_eq!(status["policy"]["name"], "Read-Only Policy");
    // While it runs, the ledger is locked: the CLI says to use the API.
    let e = failed(&node.cli(&["policy", "load", "--file", &p("ai_assistant.json")]));
    assert!(e.contains("POST") && e.contains("/policies"), "{e}");
    // Read-only commands still work.
    ok(&node.cli(&["policy", "list"]));
    ok(&node.cli(&["ledger", "verify"]));
    // Load through the API, restart: still active.
    client
        .load_policy(&example_policy("ai_assistant.json"))
        .unwrap();
    assert!(server.terminate().success());
    let server = node.spawn_server(&[]);
    let client = LexeconClient::new(&server.url, None).unwrap();
    assert_eq!(client.status().unwrap()["policy_hash"], ai_hash.as_str());
}

#[test]
fn decide_from_flags_and_from_a_json_file() {
    let node = TestNode::new(Some(&example_policy("ai_assistant.json")));
    let out = ok(&node.cli(&DECIDE_WEB_SEARCH));
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["allowed"], true);
    assert!(
        d["capability_token"]["token"]
            .as_str()
            .unwrap()
            .starts_with("lxc2.")
    );
    let file = node.home.path().join("req.json");
    std::fs::write(&file, r#"{"actor": "model", "proposed_action": "Execute system_command", "tool": "execute", "user_intent": "Run command", "risk_level": 5}"#).unwrap();
    let d: Value = serde_json::from_str(&ok(&node.cli(&[
        "decide",
        "--json-file",
        &file.display().to_string(),
    ])))
    .unwrap();
    assert_eq!(d["allowed"], false);
    assert!(d["reason"].as_str().unwrap().contains("forbidden"));
    let read_wiki_with = |context: &str| {
        node.cli(&[
            "decide",
            "--actor",
            "model",
            "--tool",
            "read_wiki",
            "--action",
            "read",
            "--intent",
            "answer",
            "--risk",
            "1",
            "--context",
            context,
        ])
    };
    let out = ok(&read_wiki_with(r#"{"user_approved": true}"#));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["allowed"],
        true
    );
    // A key given twice is refused, as the server refuses it: the last one
    // must not quietly win.
    let e = failed(&read_wiki_with(
        r#"{"user_approved": false, "user_approved": true}"#,
    ));
    assert!(
        e.contains("--context") && e.contains("duplicate key `user_approved`"),
        "{e}"
    );
    // Usage errors are exit 2; invalid requests exit 1 with one line.
    assert_eq!(
        node.cli(&[
            "decide", "--actor", "model", "--tool", "t", "--action", "a", "--intent", "i",
            "--risk", "9"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        node.cli(&["decide", "--actor", "model"]).status.code(),
        Some(2)
    );
    assert_eq!(node.cli(&["decide"]).status.code(), Some(2));
    std::fs::write(&file, r#"{"actor": "model", "tool": "t", "risk_level": 1}"#).unwrap();
    let e = failed(&node.cli(&["decide", "--json-file", &file.display().to_string()]));
    assert!(e.contains("proposed_action"), "{e}");
}

#[test]
fn ledger_show_and_token_verify() {
    let node = TestNode::new(Some(&example_policy("ai_assistant.json")));
    let allowed = ok(&node.cli(&[
        "decide",
        "--actor",
        "model",
        "--tool",
        "web_search",
        "--action",
        "s",
        "--intent",
        "r",
        "--risk",
        "1",
    ]));
    ok(&node.cli(&[
        "decide", "--actor", "model", "--tool", "execute", "--action", "x", "--intent", "r",
        "--risk", "5",
    ]));
    let all = ok(&node.cli(&["ledger", "show"]));
    assert_eq!(all.lines().count(), 3, "{all}");
    // The guide's `lexecon ledger show --last 100 | grep "allowed: false"`.
    let last = ok(&node.cli(&["ledger", "show", "--last", "100"]));
    let denials: Vec<&str> = last
        .lines()
        .filter(|l| l.contains("allowed: false"))
        .collect();
    assert_eq!(denials.len(), 1, "{last}");
    assert!(
        denials[0].contains("tool: execute") && denials[0].contains("forbidden"),
        "{last}"
    );
    let one = ok(&node.cli(&["ledger", "show", "--last", "1", "--json"]));
    assert_eq!(one.lines().count(), 1);
    let e: Value = serde_json::from_str(one.trim()).unwrap();
    assert_eq!(e["index"], 2);
    assert!(e["decision_hash"].is_string());

    let d: Value = serde_json::from_str(&allowed).unwrap();
    let token = d["capability_token"]["token"].as_str().unwrap();
    let v: Value = serde_json::from_str(&ok(&node.cli(&["token", "verify", token]))).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["claims"]["tool"], "web_search");
    ok(&node.cli(&[
        "token",
        "verify",
        token,
        "--tool",
        "web_search",
        "--actor",
        "model",
    ]));
    let whole = d["capability_token"].to_string();
    ok(&node.cli(&["token", "verify", &whole]));
    let e = failed(&node.cli(&["token", "verify", token, "--tool", "shell"]));
    assert!(e.contains("shell"), "{e}");
    let e = failed(&node.cli(&["token", "verify", "lxc2.nope.nope"]));
    assert!(e.contains("malformed"), "{e}");
}

#[test]
fn node_selection_and_config_errors() {
    let home = tempfile::tempdir().unwrap();
    let e = failed(&cli(home.path(), &["ledger", "show"]));
    assert!(e.contains("lexecon init"), "{e}");
    ok(&cli(home.path(), &["init", "--node-id", "alpha"]));
    ok(&cli(home.path(), &["ledger", "show"]));
    ok(&cli(home.path(), &["init", "--node-id", "beta"]));
    let e = failed(&cli(home.path(), &["ledger", "show"]));
    assert!(e.contains("alpha, beta") && e.contains("--node-id"), "{e}");
    ok(&cli(home.path(), &["ledger", "show", "--node-id", "beta"]));
    let e = failed(&cli(home.path(), &["ledger", "show", "--node-id", "gamma"]));
    assert!(e.contains("`gamma` does not exist"), "{e}");

    // Unknown keys and unsupported values stop the server, naming them.
    let cfg = home.path().join("nodes/alpha/config.yaml");
    let base = config_yaml("alpha", "", "");
    std::fs::write(
        &cfg,
        format!("{base}capability:\n  default_ttl: 300\n  kms_provider: aws\n"),
    )
    .unwrap();
    let e = failed(&cli(
        home.path(),
        &["server", "--node-id", "alpha", "--port", "0"],
    ));
    assert!(e.contains("capability.kms_provider"), "{e}");
    std::fs::write(&cfg, base.replace("  port: 0\n", "  port: 0\n  prot: 1\n")).unwrap();
    let e = failed(&cli(home.path(), &["server", "--node-id", "alpha"]));
    assert!(
        e.contains("server.prot") && e.contains("unknown key"),
        "{e}"
    );
    std::fs::write(&cfg, config_yaml("beta", "", "")).unwrap();
    let e = failed(&cli(home.path(), &["ledger", "show", "--node-id", "alpha"]));
    assert!(e.contains("is for node `beta`"), "{e}");
    // --config points at another file.
    std::fs::write(&cfg, config_yaml("alpha", "", "")).unwrap();
    let other = home.path().join("other.yaml");
    std::fs::write(
        &other,
        format!(
            "{}policy:\n  cache_evaluations: true\n",
            config_yaml("alpha", "", "")
        ),
    )
    .unwrap();
    let e = failed(&cli(
        home.path(),
        &["ledger", "show", "--config", &other.display().to_string()],
    ));
    assert!(e.contains("policy.cache_evaluations"), "{e}");
    // A bad environment override.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lexecon"))
        .args(["ledger", "show", "--node-id", "alpha"])
        .env("LEXECON_HOME", home.path())
        .env("LEXECON_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(failed(&out).contains("LEXECON_LOG_FORMAT"));
    // A bad value clap takes from the environment names the variable, not
    // only the flag the user did not type; a bad flag is the flag's.
    let server = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lexecon"))
            .args(args)
            .env("LEXECON_HOME", home.path())
            .env("LEXECON_PORT", "80a")
            .output()
            .unwrap()
    };
    let out = server(&["server", "--node-id", "alpha"]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("'80a' for '--port <PORT>' (from the environment variable LEXECON_PORT)"),
        "{e}"
    );
    let out = server(&["server", "--node-id", "alpha", "--port", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("'x' for '--port <PORT>'") && !e.contains("LEXECON_PORT"),
        "{e}"
    );
}

#[test]
fn server_api_key_and_json_logs_from_the_environment() {
    let node = TestNode::new(Some(&example_policy("ai_assistant.json")));
    let server = node.spawn_server(&[
        ("LEXECON_API_KEY", "k-123"),
        ("LEXECON_LOG_FORMAT", "json"),
        ("LEXECON_LOG_LEVEL", "info"),
    ]);
    let anonymous = LexeconClient::new(&server.url, None).unwrap();
    anonymous.health().unwrap();
    assert!(matches!(
        anonymous.status(),
        Err(lexecon::client::ClientError::Api { status: 401, .. })
    ));
    let client = LexeconClient::new(&server.url, Some("k-123")).unwrap();
    let d = client.decide(&support::server::web_search()).unwrap();
    assert!(d.allowed);
    let line = server
        .stderr_lines
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert!(v.get("level").is_some(), "{line}");
    // Neither the API key nor a token appears in the logs.
    let logs: Vec<String> = server.stderr_lines.try_iter().collect();
    let token = d.capability_token.unwrap().token;
    for l in std::iter::once(&line).chain(logs.iter()) {
        assert!(!l.contains("k-123") && !l.contains(&token), "{l}");
    }
}

#[test]
fn an_empty_api_key_is_refused_not_ignored() {
    // A secret that resolved to nothing must not start an open server.
    let node = TestNode::new(Some(&example_policy("ai_assistant.json")));
    // Nor one no client could send (HTTP trims header values).
    let empty = "LEXECON_API_KEY is set but empty";
    let unsendable = "no client could send it";
    for (key, says) in [
        ("", empty),
        ("  ", empty),
        ("key\n", unsendable),
        (" key", unsendable),
        ("key ", unsendable),
        ("ke\ty", unsendable),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lexecon"))
            .args(["server", "--node-id", &node.id, "--port", "0"])
            .env("LEXECON_HOME", node.home.path())
            .env("LEXECON_API_KEY", key)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let e = failed(&out);
        assert!(e.contains(says), "{key:?}: {e}");
    }
}

#[test]
fn a_running_server_is_named_by_the_address_it_bound() {
    // The config says port 8000; the server binds whatever port 0 gives.
    let node = TestNode::new(Some(&example_policy("ai_assistant.json")));
    let mut server = node.spawn_server(&[]);
    let record = node
        .home
        .path()
        .join("nodes")
        .join(&node.id)
        .join("server.url");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !record.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let e = failed(&node.cli(&with_node_id(&node.id)));
    assert!(
        e.contains(&format!("curl -X POST {}/decide", server.url)),
        "{e}"
    );
    assert!(server.terminate().success());
    assert!(
        !record.exists(),
        "a server that stopped leaves no address behind"
    );
    ok(&node.cli(&with_node_id(&node.id)));
}

/// Finds the byte offset of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn tampering_with_one_byte_is_found_and_named() {
    let node = TestNode::new(Some(&example_policy("ai_assistant.json")));
    let mut hashes = Vec::new();
    for i in 0..5 {
        let out = ok(&node.cli(&[
            "decide",
            "--actor",
            "model",
            "--tool",
            "web_search",
            "--action",
            "search",
            "--intent",
            &format!("intent-{i}"),
            "--risk",
            "1",
        ]));
        hashes.push(
            serde_json::from_str::<Value>(&out).unwrap()["ledger_entry_hash"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(ok(&node.cli(&["ledger", "verify"])).contains("ledger valid: 6 entries"));
    let clean = std::fs::read(node.ledger_path()).unwrap();

    // 1. Change one byte of entry 3's payload (its user_intent).
    let mut bytes = clean.clone();
    let at = find(&bytes, b"intent-2");
    bytes[at + 7] = b'X';
    std::fs::write(node.ledger_path(), &bytes).unwrap();
    let e = failed(&node.cli(&["ledger", "verify"]));
    assert!(e.contains("entry 3"), "{e}");
    let verbose = node.cli(&["ledger", "verify", "--verbose"]);
    assert_eq!(verbose.status.code(), Some(1));
    assert!(
        stdout(&verbose).contains("first bad entry: 3"),
        "{}",
        stdout(&verbose)
    );
    let e = failed(&node.cli(&["ledger", "check-integrity"]));
    assert!(e.contains("entry 3"), "{e}");
    // `ledger show` shows every readable entry, marks the damaged one and
    // fails naming it.
    let show = node.cli(&["ledger", "show"]);
    assert_eq!(show.status.code(), Some(1));
    let (shown, e) = (
        stdout(&show),
        String::from_utf8_lossy(&show.stderr).into_owned(),
    );
    assert_eq!(shown.lines().count(), 6, "{shown}");
    assert!(
        shown.contains("#3 damaged") && shown.contains(&hashes[3][..12]),
        "{shown}"
    );
    assert!(e.contains("entry #3 is damaged"), "{e}");

    // 2. The same change with the record checksum fixed up: the storage
    // check passes, the hash chain does not.
    let record_start = find(&bytes, hashes[2].as_bytes()) - 48 - "{\"entry_hash\":\"".len();
    let len =
        u32::from_le_bytes(bytes[record_start..record_start + 4].try_into().unwrap()) as usize;
    let crc = crc32fast::hash(&bytes[record_start + 8..record_start + 48 + len]);
    bytes[record_start + 4..record_start + 8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(node.ledger_path(), &bytes).unwrap();
    ok(&node.cli(&["ledger", "check-integrity"]));
    let e = failed(&node.cli(&["ledger", "verify"]));
    assert!(e.contains("entry 3") && e.contains("altered"), "{e}");
    // A server refuses to start on it (ledger.auto_verify).
    let o = node.cli(&["server", "--port", "0"]);
    let e = failed(&o);
    assert!(e.contains("entry 3"), "{e}");

    // Restored, all is well again.
    std::fs::write(node.ledger_path(), &clean).unwrap();
    ok(&node.cli(&["ledger", "verify"]));
    ok(&node.cli(&["ledger", "check-integrity"]));

    // 3. The last two entries cut off: the rest is a valid chain; the head
    // recorded before (here the last decision's entry) shows what is gone.
    let head = &hashes[4];
    ok(&node.cli(&["ledger", "verify", "--expect-head", head]));
    let cut = find(&clean, hashes[3].as_bytes()) - 48 - "{\"entry_hash\":\"".len();
    std::fs::write(node.ledger_path(), &clean[..cut]).unwrap();
    assert!(ok(&node.cli(&["ledger", "verify"])).contains("ledger valid: 4 entries"));
    let e = failed(&node.cli(&["ledger", "verify", "--expect-head", head]));
    assert!(
        e.contains(head.as_str())
            && e.contains("removed from its end")
            && e.contains("4 entries left"),
        "{e}"
    );
    // An older anchor still holds.
    ok(&node.cli(&["ledger", "verify", "--expect-head", &hashes[1]]));
    let e = failed(&node.cli(&["ledger", "verify", "--expect-head", "abc"]));
    assert!(e.contains("not an entry hash"), "{e}");

    // 4. The same cut, with the cut-off head's hash written into an earlier
    // record's header (the file's hash index; CRC fixed up): the anchor is
    // checked against the entry itself, so the index cannot vouch for it.
    let mut forged = clean[..cut].to_vec();
    let at = find(&forged, hashes[2].as_bytes()) - 48 - "{\"entry_hash\":\"".len();
    let raw: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&head[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    forged[at + 16..at + 48].copy_from_slice(&raw);
    let len = u32::from_le_bytes(forged[at..at + 4].try_into().unwrap()) as usize;
    let crc = crc32fast::hash(&forged[at + 8..at + 48 + len]);
    forged[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(node.ledger_path(), &forged).unwrap();
    let e = failed(&node.cli(&["ledger", "verify", "--expect-head", head]));
    assert!(
        e.contains("index was altered") && e.contains(head.as_str()),
        "{e}"
    );
    // The storage check finds it too, though the record's CRC matches.
    let o = node.cli(&["ledger", "check-integrity"]);
    let shown = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "{shown}");
    assert!(
        shown.contains("hash index was altered") && shown.contains(head.as_str()),
        "{shown}"
    );

    // 5. An empty ledger's head is the genesis hash, which it holds.
    std::fs::write(node.ledger_path(), &clean[..8]).unwrap();
    let shown = ok(&node.cli(&["ledger", "verify"]));
    assert!(
        shown.contains(lexecon_core::ledger::GENESIS_HASH),
        "{shown}"
    );
    ok(&node.cli(&[
        "ledger",
        "verify",
        "--expect-head",
        lexecon_core::ledger::GENESIS_HASH,
    ]));
    std::fs::write(node.ledger_path(), &clean).unwrap();
}

#[test]
fn verify_signatures_finds_decisions_and_policy_loads_rewritten_with_hashes_recomputed() {
    use lexecon::storage::file::FileStorage;
    use lexecon_core::ledger::{Entry, EntryKind, build_entry_value};

    let node = TestNode::new(Some(&example_policy("ai_assistant.json")));
    ok(&node.cli(&DECIDE_WEB_SEARCH));
    let denied = ok(&node.cli(&[
        "decide", "--actor", "model", "--tool", "execute", "--action", "run it", "--intent", "x",
        "--risk", "1",
    ]));
    assert!(denied.contains("\"allowed\": false"), "{denied}");
    let shown = ok(&node.cli(&["ledger", "verify", "--signatures", "--verbose"]));
    assert!(
        shown.contains("ledger valid: 3 entries") && shown.contains("signatures checked"),
        "{shown}"
    );

    // The denial (the last entry) rewritten as a permit, with its decision
    // hash and entry hash recomputed: a valid chain.
    let (mut stored, _) = FileStorage::open_read_only(node.ledger_path()).unwrap();
    let mut records = support::ledger::export(&mut stored);
    drop(stored);
    assert_eq!(records.len(), 3);
    let mut last = Entry::parse(&records[2].bytes).unwrap();
    let record = &mut last.payload["record"];
    record["allowed"] = true.into();
    record["decision"] = "permit".into();
    let hash = lexecon_core::hash::sha256_hex(&lexecon_core::canonical::to_vec(record));
    last.payload["decision_hash"] = hash.into();
    records[2] = build_entry_value(
        2,
        &last.prev_hash,
        &last.timestamp,
        EntryKind::Decision,
        &last.payload,
    );
    std::fs::remove_file(node.ledger_path()).unwrap();
    let (file, _) = FileStorage::open(node.ledger_path()).unwrap();
    file.append(&records).unwrap();
    drop(file);

    assert!(ok(&node.cli(&["ledger", "verify"])).contains("ledger valid: 3 entries"));
    let e = failed(&node.cli(&["ledger", "verify", "--signatures"]));
    assert!(
        e.contains("failed at entry 2") && e.contains("does not verify with this node's key"),
        "{e}"
    );

    // The policy load (entry 0) rewritten to name another policy, every
    // hash after it recomputed: the decisions still name the real one.
    let (mut stored, _) = FileStorage::open_read_only(node.ledger_path()).unwrap();
    let original = support::ledger::export(&mut stored);
    drop(stored);
    let mut prev = lexecon_core::ledger::GENESIS_HASH.to_string();
    let rewritten: Vec<_> = original
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut e = Entry::parse(&r.bytes).unwrap();
            if i == 0 {
                e.payload["policy_hash"] = "f".repeat(64).into();
            }
            let kind = e.kind;
            let r = build_entry_value(e.index, &prev, &e.timestamp, kind, &e.payload);
            prev.clone_from(&r.entry_hash);
            r
        })
        .collect();
    std::fs::remove_file(node.ledger_path()).unwrap();
    let (file, _) = FileStorage::open(node.ledger_path()).unwrap();
    file.append(&rewritten).unwrap();
    drop(file);
    assert!(ok(&node.cli(&["ledger", "verify"])).contains("ledger valid: 3 entries"));
    let e = failed(&node.cli(&["ledger", "verify", "--signatures"]));
    assert!(
        e.contains("failed at entry 1")
            && e.contains("loaded by entry 0")
            && e.contains("the policy history was rewritten"),
        "{e}"
    );
}

/// An entry altered with its storage checksum fixed reads fine; `ledger
/// show` marks it, as `verify` finds it, and exits 1 (the guide's
/// troubleshooting reads `show`'s output).
#[test]
fn ledger_show_marks_an_altered_entry_and_fails() {
    use lexecon::storage::file::FileStorage;

    let node = TestNode::new(Some(&example_policy("ai_assistant.json")));
    let denied = ok(&node.cli(&[
        "decide", "--actor", "model", "--tool", "execute", "--action", "run it", "--intent", "x",
        "--risk", "1",
    ]));
    assert!(denied.contains("\"allowed\": false"), "{denied}");
    ok(&node.cli(&DECIDE_WEB_SEARCH));
    let (mut stored, _) = FileStorage::open_read_only(node.ledger_path()).unwrap();
    let mut records = support::ledger::export(&mut stored);
    drop(stored);
    let text = String::from_utf8(records[1].bytes.clone()).unwrap();
    assert!(text.contains("\"allowed\":false"));
    records[1].bytes = text
        .replacen("\"allowed\":false", "\"allowed\":true", 1)
        .into_bytes();
    std::fs::remove_file(node.ledger_path()).unwrap();
    let (file, _) = FileStorage::open(node.ledger_path()).unwrap();
    file.append(&records).unwrap();
    drop(file);

    let o = node.cli(&["ledger", "show"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let shown = stdout(&o);
    assert!(
        shown.contains("#1 does not verify: content does not match its entry_hash"),
        "{shown}"
    );
    assert!(
        shown.lines().any(|l| l.starts_with("#2 ")),
        "entries after it are shown: {shown}"
    );
    let e = stderr(&o);
    assert!(
        e.contains("1 shown entry does not verify, the first #1") && e.contains("ledger verify"),
        "{e}"
    );
    let o = node.cli(&["ledger", "show", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let marked: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v.get("does_not_verify").is_some())
        .collect();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0]["index"], 1);
}

/// An installed layout: `prefix/bin/lexecon` finds
/// `prefix/lib/lexecon/lexecon.wasm` with no LEXECON_COMPONENT (the deploy
/// example's). A file that is not a component there proves which it read.
#[test]
fn an_installed_binary_finds_its_component_under_lib() {
    let node = TestNode::new(Some(&example_policy("ai_assistant.json")));
    let prefix = tempfile::tempdir().unwrap();
    let bin = prefix.path().join("bin");
    let lib = prefix.path().join("lib/lexecon");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_lexecon"), bin.join("lexecon")).unwrap();
    std::fs::write(lib.join("lexecon.wasm"), b"not a component").unwrap();
    let o = std::process::Command::new(bin.join("lexecon"))
        .args(DECIDE_WEB_SEARCH)
        .env("LEXECON_HOME", node.home.path())
        .env_remove("LEXECON_COMPONENT")
        .env_remove("LEXECON_NODE_ID")
        .env_remove("LEXECON_CONFIG")
        .output()
        .unwrap();
    let e = failed(&o);
    assert!(
        e.contains(&lib.join("lexecon.wasm").display().to_string()),
        "{e}"
    );
}

#[test]
fn a_missing_ledger_file_is_an_error_until_created_on_purpose() {
    let node = TestNode::new(Some(&example_policy("ai_assistant.json")));
    ok(&node.cli(&DECIDE_WEB_SEARCH));
    std::fs::remove_file(node.ledger_path()).unwrap();
    // Neither a decision nor a server starts an empty ledger in its place.
    for args in [&DECIDE_WEB_SEARCH[..], &["server", "--port", "0"][..]] {
        let e = failed(&node.cli(args));
        assert!(
            e.contains("does not exist")
                && e.contains("history is missing")
                && e.contains("lexecon ledger create"),
            "{e}"
        );
    }
    assert!(!node.ledger_path().exists());
    let created = ok(&node.cli(&["ledger", "create"]));
    assert!(created.contains("created an empty ledger"), "{created}");
    let e = failed(&node.cli(&["ledger", "create"]));
    assert!(e.contains("already exists"), "{e}");
    let policy = node.ledger_path().with_file_name("policy.json");
    std::fs::write(&policy, example_policy("ai_assistant.json")).unwrap();
    ok(&node.cli(&["policy", "load", "--file", policy.to_str().unwrap()]));
    ok(&node.cli(&DECIDE_WEB_SEARCH));
    assert!(ok(&node.cli(&["ledger", "verify"])).contains("ledger valid: 2 entries"));
}
