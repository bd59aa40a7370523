//! Helpers for the CLI and server tests: throwaway nodes under a temporary
//! `LEXECON_HOME`, an in-process server on `127.0.0.1:<ephemeral port>`, the
//! real `lexecon` binary as a child process, and the guide's requests.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lexecon::node::{self, Node};
use lexecon::server::{RunningServer, ServerOptions};
use lexecon_core::DecisionRequest;

/// The repository's `examples/policies/NAME`.
pub fn example_policy(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/policies")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The path of `examples/policies/NAME`.
pub fn example_policy_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/policies")
        .join(name)
}

/// The guide's `test_governance.py` requests.
pub fn web_search() -> DecisionRequest {
    DecisionRequest::new("model", "Execute web_search", "web_search", "Research", 1)
}
pub fn system_command() -> DecisionRequest {
    DecisionRequest::new(
        "model",
        "Execute system_command",
        "execute",
        "Run command",
        5,
    )
}
pub fn database_write() -> DecisionRequest {
    DecisionRequest::new(
        "model",
        "Write to database",
        "database_write",
        "Update records",
        4,
    )
}

/// A `config.yaml` for tests: file ledger, no periodic checks, quiet logs,
/// plus `extra` YAML appended under the given top-level sections.
pub fn config_yaml(node_id: &str, server_extra: &str, rest: &str) -> String {
    format!(
        "node_id: {node_id}\nversion: \"0.1.0\"\nserver:\n  host: \"127.0.0.1\"\n  port: 0\n{server_extra}\nledger:\n  storage: file\n  auto_verify: true\nlogging:\n  level: warn\n{rest}\n"
    )
}

/// A node in its own temporary `LEXECON_HOME`.
pub struct TestNode {
    pub home: tempfile::TempDir,
    pub id: String,
}

impl TestNode {
    /// A node with the default test config, and `policy` loaded when given.
    pub fn new(policy: Option<&str>) -> Self {
        Self::with_config(policy, &config_yaml("test-node", "", ""))
    }

    /// A node with `config` as its `config.yaml`.
    ///
    /// Made and loaded through the `lexecon` binary, so this test process
    /// never holds the ledger's lock itself: a child spawned by a concurrent
    /// test inherits open files between fork and exec, and would otherwise
    /// keep a just-released lock held for a moment.
    pub fn with_config(policy: Option<&str>, config: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let config_file = home.path().join("init-config.yaml");
        std::fs::write(&config_file, config).unwrap();
        let o = cli(
            home.path(),
            &[
                "init",
                "--node-id",
                "test-node",
                "--config",
                &config_file.display().to_string(),
            ],
        );
        assert!(o.status.success(), "init: {}", stderr(&o));
        let n = Self {
            home,
            id: "test-node".into(),
        };
        if let Some(p) = policy {
            let file = n.home.path().join("policy.json");
            std::fs::write(&file, p).unwrap();
            let o = n.cli(&["policy", "load", "--file", &file.display().to_string()]);
            assert!(o.status.success(), "policy load: {}", stderr(&o));
        }
        n
    }

    pub fn node(&self) -> Node {
        node::open_node(self.home.path(), Some(&self.id), None).unwrap()
    }

    pub fn dir(&self) -> PathBuf {
        self.home.path().join("nodes").join(&self.id)
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.dir().join("ledger.db")
    }

    /// Rewrites the node's `config.yaml`.
    pub fn set_config(&self, config: &str) {
        std::fs::write(self.dir().join("config.yaml"), config).unwrap();
    }

    /// Runs the `lexecon` binary with this node's `LEXECON_HOME`.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(self.home.path(), args)
    }

    /// Starts `lexecon server --port 0` as a child process and waits for its URL.
    pub fn spawn_server(&self, env: &[(&str, &str)]) -> ServerProcess {
        spawn_server(
            self.home.path(),
            &["server", "--node-id", &self.id, "--port", "0"],
            env,
        )
    }
}

/// Runs the `lexecon` binary.
pub fn cli(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lexecon"))
        .args(args)
        .env("LEXECON_HOME", home)
        .env_remove("LEXECON_NODE_ID")
        .env_remove("LEXECON_CONFIG")
        .env_remove("LEXECON_API_KEY")
        .env_remove("LEXECON_PORT")
        .env_remove("LEXECON_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A `lexecon server` child process.
pub struct ServerProcess {
    pub child: Child,
    pub url: String,
    pub stderr_lines: mpsc::Receiver<String>,
}

impl ServerProcess {
    /// `kill -9`.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (up to 30 s) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM")
    }

    /// Sends SIG`name` (`TERM`, `HUP`, …), then waits (up to 30 s) for the
    /// exit status.
    pub fn signal(&mut self, name: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let st = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(st.success());
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill9();
        panic!("server did not stop within 30 s of SIG{name}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill9();
        }
    }
}

/// Starts the binary with `args` and reads `listening on URL` from its stdout.
pub fn spawn_server(home: &Path, args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lexecon"));
    cmd.args(args)
        .env("LEXECON_HOME", home)
        .env_remove("LEXECON_NODE_ID")
        .env_remove("LEXECON_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn_command(cmd)
}

/// Starts `cmd` (a server, or a script that execs one) and reads
/// `listening on URL` from its stdout.
pub fn spawn_command(mut cmd: Command) -> ServerProcess {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let (url_tx, url_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on ") {
                let _ = url_tx.send(line[i + 13..].trim().to_string());
            }
        }
    });
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    match url_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => ServerProcess {
            child,
            url,
            stderr_lines: err_rx,
        },
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().unwrap();
            let lines: Vec<String> = err_rx.try_iter().collect();
            panic!("server did not start ({status}):\n{}", lines.join("\n"));
        }
    }
}

/// An in-process server with its own runtime.
pub struct InProcess {
    pub rt: tokio::runtime::Runtime,
    pub server: Option<RunningServer>,
}

impl InProcess {
    pub fn start(node: &Node, opts: &ServerOptions) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(lexecon::server::start(node, opts)).unwrap();
        Self {
            rt,
            server: Some(server),
        }
    }

    pub fn url(&self) -> String {
        self.server.as_ref().unwrap().base_url()
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Opens `node`'s ledger for writing, retrying for a few seconds while it is
/// locked: a child process spawned by a concurrent test may hold a copy of
/// this process's just-released lock between its fork and its exec.
pub fn open_for_writing(node: &Node) -> lexecon::node::LedgerStorage {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match node.open_storage(lexecon::node::Access::ReadWrite) {
            Ok((s, _)) => return s,
            Err(lexecon::node::NodeError::File(
                lexecon::storage::file::FileStorageError::Locked { .. },
            )) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}
