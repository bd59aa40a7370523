//! The deployment files in `examples/deploy/`, used as a user would use
//! them: the systemd unit is checked by `systemd-analyze verify` and its
//! `ExecStart`, `Environment` and `EnvironmentFile` start a working server;
//! a real Prometheus scrapes a server with `prometheus.yml`, loads
//! `prometheus-alerts.yaml`, and evaluates every alert and dashboard
//! expression; the container image's entry point runs as the image runs it
//! (the Dockerfile's `ENV`), and, where podman and the base image are at
//! hand (an ignored test: no registry is reachable from CI), the image is
//! built and run. Needs `systemd-analyze`, `prometheus` and `promtool`
//! (`scripts/setup.sh` installs Debian's `prometheus`); these tests fail,
//! never skip, without them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lexecon::client::LexeconClient;
use serde_json::Value;
use support::server::{
    TestNode, example_policy_path, spawn_server, stderr, system_command, web_search,
};

fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/deploy")
        .join(name)
}

fn read_deploy_file(name: &str) -> String {
    let path = deploy_file(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a tool that must be installed; fails with what to install if not.
fn tool(name: &str, args: &[&str]) -> std::process::Output {
    Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{name}` ({e}): run scripts/setup.sh"))
}

/// The unit's `[Service]` settings that start the server, with the paths
/// the unit installs to mapped onto this test's.
struct Unit {
    env: Vec<(String, String)>,
    env_files: Vec<PathBuf>,
    exec_start: Vec<String>,
}

fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit {
        env: Vec::new(),
        env_files: Vec::new(),
        exec_start: Vec::new(),
    };
    for line in text.lines().map(str::trim) {
        if let Some(assignment) = line.strip_prefix("Environment=") {
            let (k, v) = assignment.split_once('=').unwrap();
            unit.env.push((k.to_string(), v.to_string()));
        } else if let Some(path) = line.strip_prefix("EnvironmentFile=") {
            unit.env_files
                .push(PathBuf::from(path.strip_prefix('-').unwrap_or(path)));
        } else if let Some(cmd) = line.strip_prefix("ExecStart=") {
            unit.exec_start = cmd.split_whitespace().map(str::to_string).collect();
        }
    }
    unit
}

#[test]
fn systemd_unit_verifies_and_starts_the_server_as_written() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("var-lib-lexecon");
    let etc = root.path().join("etc-lexecon");
    std::fs::create_dir_all(&etc).unwrap();
    let bin = env!("CARGO_BIN_EXE_lexecon");
    let component = lexecon::component::component_path();
    // The unit as installed, with this test's paths for the install's.
    let unit_text = read_deploy_file("lexecon.service")
        .replace("/usr/local/bin/lexecon", bin)
        .replace(
            "/usr/local/lib/lexecon/lexecon.wasm",
            component.to_str().unwrap(),
        )
        .replace("/var/lib/lexecon", state.to_str().unwrap())
        .replace("/etc/lexecon", etc.to_str().unwrap());
    let unit_path = root.path().join("lexecon.service");
    std::fs::write(&unit_path, &unit_text).unwrap();
    let verify = tool("systemd-analyze", &["verify", unit_path.to_str().unwrap()]);
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        stderr(&verify)
    );

    let unit = parse_unit(&unit_text);
    assert_eq!(unit.exec_start, [bin, "server"], "ExecStart");
    let mut env: Vec<(String, String)> = unit.env.clone();
    // The optional EnvironmentFile holds the API key.
    assert_eq!(unit.env_files, [etc.join("lexecon.env")]);
    std::fs::write(&unit.env_files[0], "LEXECON_API_KEY=unit-test-key\n").unwrap();
    env.push(("LEXECON_API_KEY".into(), "unit-test-key".into()));
    let get = |k: &str| env.iter().find(|(key, _)| key == k).unwrap().1.clone();
    assert_eq!(get("LEXECON_HOME"), state.to_str().unwrap());
    let node_id = get("LEXECON_NODE_ID");

    // The install steps in the unit's header: init, then load a policy.
    // Commands run with the unit's environment, as its user would.
    let admin = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("LEXECON_API_KEY")
            .output()
            .unwrap();
        assert!(out.status.success(), "lexecon {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    std::fs::create_dir_all(&state).unwrap();
    admin(&["init", "--node-id", &node_id]);
    let policy = example_policy_path("ai_assistant.json");
    admin(&["policy", "load", "--file", policy.to_str().unwrap()]);

    // ExecStart with the unit's environment; only the port differs (the
    // node's config says 8000; a test takes any free one).
    let mut run_env: Vec<(&str, &str)> =
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_env.push(("LEXECON_PORT", "0"));
    run_env.push(("LEXECON_HOST", "127.0.0.1"));
    let args: Vec<&str> = unit.exec_start[1..].iter().map(String::as_str).collect();
    let mut server = spawn_server(&state, &args, &run_env);

    let anonymous = LexeconClient::new(&server.url, None).unwrap();
    anonymous.health().unwrap();
    assert!(
        anonymous.decide(&web_search()).is_err(),
        "the EnvironmentFile's API key must be required"
    );
    let client = LexeconClient::new(&server.url, Some("unit-test-key")).unwrap();
    assert!(client.decide(&web_search()).unwrap().allowed);
    assert!(!client.decide(&system_command()).unwrap().allowed);
    // The compile cache the unit points at was used.
    assert!(state.join("cache").is_dir(), "LEXECON_COMPILE_CACHE");

    // systemd stops the service with SIGTERM: a graceful, clean exit.
    let status = server.terminate();
    assert!(status.success(), "exit after SIGTERM: {status}");
    let verified = admin(&["ledger", "verify"]);
    assert!(verified.contains("ledger valid: 3 entries"), "{verified}");
}

/// A `prometheus` server over `dir`, killed on drop.
struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .current_dir(dir)
            .args([
                "--config.file=prometheus.yml",
                "--storage.tsdb.path=data",
                &format!("--web.listen-address=127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `prometheus` ({e}): run scripts/setup.sh"));
        let p = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        p.wait_until("ready", || {
            ureq::get(format!("{}/-/ready", p.url)).call().is_ok()
        });
        p
    }

    fn wait_until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "prometheus: not {what} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// An instant query's result vector; panics on a query error.
    fn query(&self, expr: &str) -> Vec<Value> {
        let body: Value = ureq::get(format!("{}/api/v1/query", self.url))
            .query("query", expr)
            .call()
            .unwrap_or_else(|e| panic!("query `{expr}`: {e}"))
            .body_mut()
            .read_json()
            .unwrap();
        assert_eq!(body["status"], "success", "query `{expr}`: {body}");
        body["data"]["result"].as_array().unwrap().clone()
    }

    fn get(&self, path: &str) -> Value {
        ureq::get(format!("{}{path}", self.url))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }
}

fn sample(result: &[Value]) -> f64 {
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn prometheus_scrapes_the_server_and_every_alert_and_panel_evaluates() {
    // The guide's AI assistant policy without its web_search rate limit (the
    // load runs' policy), so the allowed rate is not cut off mid-test.
    let policy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/load/policy.json"),
    )
    .unwrap();
    let node = TestNode::new(Some(&policy));
    let server = node.spawn_server(&[]);
    let client = LexeconClient::new(&server.url, None).unwrap();

    // Our metrics pass promtool's checks, except the `_total` suffix that the
    // guide's counter names lack (the guide's names are the contract).
    let metrics = ureq::get(format!("{}/metrics", server.url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run `promtool`: run scripts/setup.sh");
    std::io::Write::write_all(&mut check.stdin.take().unwrap(), metrics.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    let guide_names = [
        "lexecon_decision_requests_allowed",
        "lexecon_decision_requests_denied",
        "lexecon_decision_requests_escalated",
        "lexecon_decision_requests_failed",
        "lexecon_decision_requests_invalid",
        "lexecon_ledger_verification_failures",
    ];
    for line in String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| !l.trim().is_empty())
    {
        let allowed = guide_names
            .iter()
            .any(|n| line == format!("{n} counter metrics should have \"_total\" suffix"));
        assert!(allowed, "promtool check metrics: {line}");
    }

    // The shipped config and rules, pointed at this server, scraped every
    // second so the test need not wait for 15 s intervals.
    let dir = tempfile::tempdir().unwrap();
    let host_port = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let config = read_deploy_file("prometheus.yml")
        .replace("localhost:8000", host_port)
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
    assert!(config.contains(host_port), "the target line changed");
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    std::fs::copy(
        deploy_file("prometheus-alerts.yaml"),
        dir.path().join("prometheus-alerts.yaml"),
    )
    .unwrap();
    for args in [
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "prometheus-alerts.yaml"],
    ] {
        let out = Command::new("promtool")
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "promtool {args:?}: {}", stderr(&out));
    }
    let prom = Prometheus::start(dir.path());

    // Decisions while Prometheus scrapes, allowed and denied, until it has
    // seen them go up: a rate needs two scrapes within its window.
    let mut decided = 0.0;
    prom.wait_until("scraping decisions", || {
        assert!(client.decide(&web_search()).unwrap().allowed);
        assert!(!client.decide(&system_command()).unwrap().allowed);
        decided += 2.0;
        !prom
            .query("rate(lexecon_decision_requests_total[5m]) > 0")
            .is_empty()
    });
    assert!(sample(&prom.query("lexecon_decision_requests_total")) <= decided);
    assert_eq!(sample(&prom.query("up{job=\"lexecon\"}")), 1.0);

    // Every dashboard panel evaluates to a number.
    let dashboard: Value =
        serde_json::from_str(&read_deploy_file("grafana-dashboard.json")).unwrap();
    for panel in dashboard["dashboard"]["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let r = prom.query(expr);
            assert!(!r.is_empty(), "panel {}: `{expr}` is empty", panel["title"]);
            assert!(
                sample(&r).is_finite(),
                "panel {}: `{expr}` = {r:?}",
                panel["title"]
            );
        }
    }
    let ratio = sample(&prom.query(
        "rate(lexecon_decision_requests_allowed[5m]) / rate(lexecon_decision_requests_total[5m])",
    ));
    assert!((0.3..=0.7).contains(&ratio), "allow ratio {ratio}");
    let p95 = sample(&prom.query(
        "histogram_quantile(0.95, sum by (le) (rate(lexecon_decision_latency_seconds_bucket[5m])))",
    ));
    assert!(p95 > 0.0 && p95 < 1.0, "p95 {p95}");

    // Every alert rule was loaded and evaluates without error; a healthy
    // node fires none.
    prom.wait_until("evaluating the rules", || {
        let rules = prom.get("/api/v1/rules");
        let group = &rules["data"]["groups"][0];
        group["rules"]
            .as_array()
            .is_some_and(|r| r.len() == 4 && r.iter().all(|r| r["health"] == "ok"))
    });
    let rules = prom.get("/api/v1/rules");
    for rule in rules["data"]["groups"][0]["rules"].as_array().unwrap() {
        assert_eq!(rule["state"], "inactive", "{rule}");
    }
}

/// The `ENV` settings of `examples/deploy/Dockerfile`.
fn dockerfile_env() -> Vec<(String, String)> {
    let text = read_deploy_file("Dockerfile");
    let mut env = Vec::new();
    // Within an `ENV` instruction continued with `\`.
    let mut continued = false;
    for line in text.lines().map(str::trim) {
        let body = match line.strip_prefix("ENV ") {
            Some(rest) => rest,
            None if continued => line,
            None => continue,
        };
        continued = body.ends_with('\\');
        let (k, v) = body.trim_end_matches('\\').trim().split_once('=').unwrap();
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// A run that must fail and say `text` on stderr.
fn assert_fails_with(out: &std::process::Output, text: &str) {
    assert!(!out.status.success(), "expected a failure: {}", stderr(out));
    assert!(stderr(out).contains(text), "{}", stderr(out));
}

/// `PATH` with this build's `lexecon` first, as the image installs it.
fn entrypoint_path() -> String {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_lexecon"));
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs `examples/deploy/docker-entrypoint.sh` as the image does (its `ENV`,
/// with this test's paths for the image's), `lexecon` on the `PATH`.
fn start_entrypoint(home: &Path, extra: &[(&str, &str)]) -> support::server::ServerProcess {
    let mut cmd = Command::new("sh");
    cmd.arg(deploy_file("docker-entrypoint.sh"))
        .env_remove("LEXECON_NODE_ID")
        .env_remove("LEXECON_API_KEY")
        .env_remove("LEXECON_CONFIG")
        .env("PATH", entrypoint_path());
    for (k, v) in dockerfile_env() {
        let v = match k.as_str() {
            "LEXECON_HOME" => home.to_str().unwrap().to_string(),
            "LEXECON_COMPONENT" => lexecon::component::component_path()
                .to_str()
                .unwrap()
                .to_string(),
            "LEXECON_COMPILE_CACHE" => home.join("cache").to_str().unwrap().to_string(),
            // Loopback and any free port; the image listens on 0.0.0.0:8000.
            "LEXECON_HOST" => "127.0.0.1".to_string(),
            "LEXECON_PORT" => "0".to_string(),
            _ => v,
        };
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    support::server::spawn_command(cmd)
}

#[test]
fn container_entrypoint_creates_the_node_loads_the_policy_and_serves() {
    let env = dockerfile_env();
    let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "LEXECON_HOME",
            "LEXECON_COMPONENT",
            "LEXECON_COMPILE_CACHE",
            "LEXECON_HOST",
            "LEXECON_PORT"
        ]
    );
    let dockerfile = read_deploy_file("Dockerfile");
    assert!(
        dockerfile.contains(
            "COPY examples/deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh"
        )
    );
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]"#));

    // The guide's Kubernetes sidecar: LEXECON_NODE_ID, the policy mounted
    // as a file, nothing created beforehand.
    let home = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap();
    let policy = etc.path().join("policy.json");
    std::fs::copy(example_policy_path("ai_assistant.json"), &policy).unwrap();
    let sidecar = [
        ("LEXECON_NODE_ID", "app-sidecar"),
        ("LEXECON_POLICY_FILE", policy.to_str().unwrap()),
    ];
    let mut server = start_entrypoint(home.path(), &sidecar);
    let client = LexeconClient::new(&server.url, None).unwrap();
    assert_eq!(client.status().unwrap()["node_id"], "app-sidecar");
    assert!(client.decide(&web_search()).unwrap().allowed);
    assert!(!client.decide(&system_command()).unwrap().allowed);
    let key = std::fs::read(home.path().join("nodes/app-sidecar/keys/public_key.pem")).unwrap();
    let status = server.terminate();
    assert!(status.success(), "exit after SIGTERM: {status}");

    // A restart (a new container on the same volume) keeps the node, and
    // loading the same policy again records nothing.
    let mut server = start_entrypoint(home.path(), &sidecar);
    let client = LexeconClient::new(&server.url, None).unwrap();
    assert!(client.decide(&web_search()).unwrap().allowed);
    assert!(server.terminate().success());
    let again = std::fs::read(home.path().join("nodes/app-sidecar/keys/public_key.pem")).unwrap();
    assert_eq!(key, again, "the node's key survives a restart");
    let verify = support::server::cli(
        home.path(),
        &["ledger", "verify", "--node-id", "app-sidecar"],
    );
    let out = support::server::stdout(&verify);
    assert!(
        out.contains("ledger valid: 4 entries"),
        "{out} {}",
        stderr(&verify)
    );

    // The guide's `docker run -v ~/.lexecon:/data/.lexecon`: a home with one
    // node made by `lexecon init` outside, served as it is.
    let mounted = tempfile::tempdir().unwrap();
    let init = support::server::cli(mounted.path(), &["init", "--node-id", "production-node"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let mut server = start_entrypoint(mounted.path(), &[]);
    let client = LexeconClient::new(&server.url, None).unwrap();
    assert_eq!(client.status().unwrap()["node_id"], "production-node");
    assert!(server.terminate().success());

    // An empty home and no node id: a node `lexecon` is created. The
    // policy mounted as the guide's manifest mounts its ConfigMap (at the
    // file's path, no `subPath`): a directory holding policy.json.
    let empty = tempfile::tempdir().unwrap();
    let config_map = etc.path().join("policy-dir");
    std::fs::create_dir(&config_map).unwrap();
    std::fs::copy(&policy, config_map.join("policy.json")).unwrap();
    let mut server = start_entrypoint(
        empty.path(),
        &[("LEXECON_POLICY_FILE", config_map.to_str().unwrap())],
    );
    let client = LexeconClient::new(&server.url, None).unwrap();
    assert_eq!(client.status().unwrap()["node_id"], "lexecon");
    assert!(client.decide(&web_search()).unwrap().allowed);
    assert!(server.terminate().success());

    // A policy file that was named but is not there: no server that denies
    // everything, an error.
    let missing = etc.path().join("missing.json");
    let out = Command::new("sh")
        .arg(deploy_file("docker-entrypoint.sh"))
        .env("LEXECON_HOME", empty.path())
        .env("LEXECON_POLICY_FILE", &missing)
        .env("PATH", entrypoint_path())
        .output()
        .unwrap();
    assert_fails_with(&out, "missing.json does not exist");
}

/// Runs `podman` with `args`; its stdout, or a panic with its stderr.
fn podman(args: &[&str]) -> String {
    let out = tool("podman", args);
    assert!(out.status.success(), "podman {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the test's container and image, however the test ends.
struct PodmanCleanup {
    container: String,
    image: String,
}

impl Drop for PodmanCleanup {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", &self.container])
            .output();
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

/// `examples/deploy/Dockerfile` built by podman and run as the guide's
/// sidecar. Ignored: it needs podman and the `debian:bookworm-slim` image,
/// and no container registry is reachable from CI. Run it with
/// `cargo test -p lexecon --test deploy -- --ignored container_image`
/// (README.md, "Running it as a service").
#[test]
#[ignore = "needs podman and the debian:bookworm-slim image"]
fn container_image_builds_and_serves_as_the_guide_runs_it() {
    // The build context the Dockerfile expects (the repository root), with
    // this build's binary and component.
    let context = tempfile::tempdir().unwrap();
    let put = |from: &Path, to: &str| {
        let dest = context.path().join(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, &dest).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    };
    put(
        Path::new(env!("CARGO_BIN_EXE_lexecon")),
        "target/release/lexecon",
    );
    put(&lexecon::component::component_path(), "target/lexecon.wasm");
    put(
        &deploy_file("docker-entrypoint.sh"),
        "examples/deploy/docker-entrypoint.sh",
    );
    put(&deploy_file("Dockerfile"), "examples/deploy/Dockerfile");

    let tag = format!("localhost/lexecon-test:{}", std::process::id());
    let name = format!("lexecon-test-{}", std::process::id());
    let _cleanup = PodmanCleanup {
        container: name.clone(),
        image: tag.clone(),
    };
    let ctx = context.path().to_str().unwrap();
    let dockerfile = context.path().join("examples/deploy/Dockerfile");
    podman(&[
        "build",
        "-q",
        "-t",
        &tag,
        "-f",
        dockerfile.to_str().unwrap(),
        ctx,
    ]);

    // The guide's sidecar: LEXECON_NODE_ID and the policy as a mounted file.
    let policy = example_policy_path("ai_assistant.json");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    podman(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &format!("127.0.0.1:{port}:8000"),
        "-e",
        "LEXECON_NODE_ID=app-sidecar",
        "-v",
        &format!("{}:/etc/lexecon/policy.json:ro", policy.display()),
        &tag,
    ]);
    let client = LexeconClient::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
    let start = Instant::now();
    while client.health().is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the container did not answer: {}",
            podman(&["logs", &name])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(client.status().unwrap()["node_id"], "app-sidecar");
    assert!(client.decide(&web_search()).unwrap().allowed);
    assert!(!client.decide(&system_command()).unwrap().allowed);
    // `docker stop` sends SIGTERM to PID 1, the server: a clean exit.
    podman(&["stop", "-t", "30", &name]);
    assert_eq!(
        podman(&["inspect", "--format", "{{.State.ExitCode}}", &name]),
        "0",
        "{}",
        podman(&["logs", &name])
    );
    let logs = podman(&["logs", &name]);
    assert!(logs.contains("listening on"), "{logs}");

    // The guide's `docker run -v ~/.lexecon:/data/.lexecon`, with a home
    // that the image's user cannot write: a clear refusal, not a new node.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("podman")
        .args([
            "run",
            "--rm",
            "-v",
            &format!("{}:/data/.lexecon", home.path().display()),
            &tag,
        ])
        .output()
        .unwrap();
    assert_fails_with(&out, "/data/.lexecon is not writable by uid 10001");
}
