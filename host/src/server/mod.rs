//! The governance server: `lexecon server`.
//!
//! [`start`] opens the node's engine on its own thread ([`worker`]), checks
//! and loads what the configuration asks (`ledger.auto_verify`,
//! `policy.auto_load`), binds the listeners and serves the API ([`app`])
//! over HTTP or HTTPS ([`tls`]). [`RunningServer::shutdown`] stops
//! accepting, lets in-flight requests finish, lets the engine finish what is
//! queued and closes the ledger; [`run`] does all of it for the CLI, with
//! SIGTERM/SIGINT/SIGHUP as the signal to stop.
//!
//! Environment: `LEXECON_API_KEY` (the API key; when set, every route but
//! `/health` needs it), plus the configuration overrides listed in
//! [`crate::config::ENV_OVERRIDES`].

pub mod app;
pub mod auth;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod rate_limit;
pub mod tls;
pub mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::config::API_KEY_ENV;
use crate::node::{Access, LedgerStorage, Node, open_engine};
use crate::storage::file::Recovery;
use crate::storage::postgres::PostgresStorage;
use app::{AppState, PolicyHistory, Shared};
use auth::ApiKey;
use lexecon_core::engine::EngineError;
use metrics::Metrics;
use rate_limit::RateLimiter;
use worker::{Durability, EngineWorker, ReaderPool, ReaderThreads};

/// Threads reading the ledger for the API.
const READER_THREADS: usize = 2;
/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the server could not start or run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError(pub String);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

fn err(e: impl std::fmt::Display) -> ServerError {
    ServerError(e.to_string())
}

/// Settings from the command line and environment that override the configuration.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `--host`.
    pub host: Option<String>,
    /// `--port` (0: any free port).
    pub port: Option<u16>,
    /// The API key (`LEXECON_API_KEY`); `None`: no authentication.
    pub api_key: Option<String>,
}

impl ServerOptions {
    /// Options with the API key from `LEXECON_API_KEY`; unset: no
    /// authentication.
    ///
    /// # Errors
    /// When the variable is set but empty (or blank): a secret that did not
    /// resolve must not silently turn authentication off; when it has
    /// surrounding whitespace or control characters, which no HTTP header
    /// can carry (every request would be refused).
    pub fn from_env() -> Result<Self, String> {
        Self::with_api_key(std::env::var(API_KEY_ENV).ok())
    }

    /// Options with `api_key` as `LEXECON_API_KEY` would give it.
    ///
    /// # Errors
    /// As [`ServerOptions::from_env`].
    pub fn with_api_key(api_key: Option<String>) -> Result<Self, String> {
        if api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err(format!(
                "{API_KEY_ENV} is set but empty: set it to the API key, or unset it to run without authentication"
            ));
        }
        // HTTP trims a header value's surrounding whitespace and cannot
        // carry control characters: such a key could never be presented.
        if let Some(k) = api_key.as_deref()
            && (k.trim() != k || k.chars().any(char::is_control))
        {
            return Err(format!(
                "{API_KEY_ENV} has surrounding whitespace, a line break or a control character \
                 (a secret file written with `echo`?): no client could send it in a header; \
                 set it to the key alone"
            ));
        }
        Ok(Self {
            api_key,
            ..Self::default()
        })
    }
}

/// How a reader thread opens its own handle on the ledger.
#[derive(Debug, Clone)]
enum ReaderSource {
    File(crate::storage::file::FileStorage),
    Postgres(String),
    Memory(lexecon_core::MemoryStorage),
}

/// What the engine thread hands back after opening: how readers open the
/// ledger, and what crash recovery did.
type Opened = (ReaderSource, Option<Recovery>);

/// A server that is serving.
#[derive(Debug)]
pub struct RunningServer {
    /// The API's address.
    pub addr: SocketAddr,
    /// The metrics listener's address (`monitoring.prometheus_port`).
    pub metrics_addr: Option<SocketAddr>,
    /// Whether it speaks HTTPS.
    pub tls: bool,
    state: Shared,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    worker: EngineWorker,
    readers: ReaderThreads,
}

impl RunningServer {
    /// `http://addr` or `https://addr`.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// The state the handlers share (tests, embedding).
    pub fn state(&self) -> &Shared {
        &self.state
    }

    /// Stops accepting, waits for in-flight requests (up to 30 s), lets the
    /// engine finish its queue, and closes the ledger.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        stop_workers(self.state, self.worker, self.readers, self.tasks).await;
        tracing::info!("server stopped; ledger closed");
    }
}

/// Waits for `tasks`, drops the last handles on the engine and the readers,
/// lets the engine finish its queue and waits for every thread, so the
/// ledger is closed (its lock released) when this returns.
async fn stop_workers(
    state: Shared,
    worker: EngineWorker,
    readers: ReaderThreads,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) {
    for t in tasks {
        let _ = t.await;
    }
    drop(state);
    worker.shutdown().await;
    let joined = tokio::task::spawn_blocking(move || readers.join(Duration::from_secs(5))).await;
    if !matches!(joined, Ok(true)) {
        tracing::warn!(
            "ledger readers still running 5 s after shutdown (a handle on the server state was kept)"
        );
    }
}

/// Starts the server for `node`.
///
/// # Errors
/// A [`ServerError`] naming what failed: keys, ledger (for instance locked
/// by another server), verification (`ledger.auto_verify`), a policy in
/// `policy.auto_load`, TLS files, or the address.
pub async fn start(node: &Node, opts: &ServerOptions) -> Result<RunningServer, ServerError> {
    let mut config = node.config.clone();
    if let Some(h) = &opts.host {
        config.server.host.clone_from(h);
    }
    if let Some(p) = opts.port {
        config.server.port = p;
    }
    config.check().map_err(err)?;
    let signer = node.signer().map_err(err)?;
    let public_key = lexecon_core::Signer::public_key(&signer);
    let tls = match (
        &config.server.tls.enabled,
        &config.server.tls.cert_file,
        &config.server.tls.key_file,
    ) {
        (true, Some(c), Some(k)) => Some(tls::acceptor(c, k).map_err(err)?),
        _ => None,
    };

    // The engine thread opens the ledger (and a PostgreSQL client) on itself.
    let open_node = node.clone();
    let engine_config = node.engine_config();
    let open =
        move || -> Result<(Box<dyn crate::engine::DecisionEngine>, Durability, Opened), String> {
            let (storage, recovery) = open_node
                .open_storage(Access::ReadWrite)
                .map_err(|e| e.to_string())?;
            // The file ledger syncs on the committer thread, so the engine
            // decides the next group while the disk syncs the last (worker.rs).
            let durability = match &storage {
                LedgerStorage::File(f) => {
                    f.defer_sync();
                    let f = f.clone();
                    Durability::Deferred(Box::new(move || {
                        f.sync().map(drop).map_err(EngineError::Storage)
                    }))
                }
                LedgerStorage::Postgres(_) | LedgerStorage::Memory(_) => Durability::OnAppend,
            };
            let source = match &storage {
                LedgerStorage::File(f) => ReaderSource::File(f.clone()),
                LedgerStorage::Postgres(_) => ReaderSource::Postgres(
                    open_node
                        .config
                        .ledger
                        .connection_string
                        .clone()
                        .unwrap_or_default(),
                ),
                LedgerStorage::Memory(m) => ReaderSource::Memory(m.clone()),
            };
            let engine = open_engine(engine_config, signer, storage).map_err(|e| e.to_string())?;
            Ok((engine, durability, (source, recovery)))
        };
    let metrics = Arc::new(Metrics::default());
    let counter = Arc::clone(&metrics);
    let on_decided: worker::OnDecided = Arc::new(move |d| counter.decided(d));
    let (worker, (source, recovery)) =
        tokio::task::spawn_blocking(move || EngineWorker::spawn(open, on_decided))
            .await
            .map_err(err)?
            .map_err(err)?;
    if let Some(r) = &recovery {
        if r.truncated_bytes > 0 {
            tracing::warn!(
                bytes = r.truncated_bytes,
                "cut a torn tail off the ledger (an append interrupted by a crash; it was never acknowledged)"
            );
        }
        for p in &r.problems {
            tracing::error!(index = p.index, offset = p.offset, detail = %p.detail, "ledger file is damaged");
        }
    }
    let storage_kind = match &source {
        ReaderSource::File(_) => "file",
        ReaderSource::Postgres(_) => "postgresql",
        ReaderSource::Memory(_) => "memory",
    };
    let ledger_file = match &source {
        ReaderSource::File(f) => Some(f.clone()),
        ReaderSource::Postgres(_) | ReaderSource::Memory(_) => None,
    };
    let reader = tokio::task::spawn_blocking(move || {
        ReaderPool::spawn(READER_THREADS, move || match &source {
            ReaderSource::File(f) => Ok(LedgerStorage::File(f.clone())),
            ReaderSource::Memory(m) => Ok(LedgerStorage::Memory(m.clone())),
            ReaderSource::Postgres(conn) => PostgresStorage::connect(conn)
                .map(|s| LedgerStorage::Postgres(Box::new(s)))
                .map_err(|e| format!("cannot open a PostgreSQL reader: {e}")),
        })
    })
    .await
    .map_err(err)?;
    let (reader, readers) = match reader {
        Ok(r) => r,
        Err(e) => {
            worker.shutdown().await;
            return Err(ServerError(e));
        }
    };

    let rl = &config.server.rate_limit;
    let (stop, stop_rx) = watch::channel(false);
    let state: Shared = Arc::new(AppState {
        node_id: node.id.clone(),
        engine: worker.handle(),
        reader,
        metrics,
        auth: opts.api_key.as_deref().map(ApiKey::new),
        limiter: rl
            .enabled
            .then(|| RateLimiter::new(rl.requests_per_second, rl.burst)),
        public_key,
        started: Instant::now(),
        default_mode: config.policy.default_mode,
        metrics_enabled: config.monitoring.enabled,
        request_timeout: Duration::from_secs(config.server.request_timeout),
        storage_kind,
        ledger_file,
        policy_history: Arc::new(Mutex::new(PolicyHistory::default())),
        verify_gate: tokio::sync::Semaphore::new(1),
        stopping: stop_rx.clone(),
    });

    if let Err(e) = prepare(node, &config, &state).await {
        stop_workers(state, worker, readers, Vec::new()).await;
        return Err(e);
    }

    let bind = |host: &str, port: u16| {
        let host = host.to_string();
        async move {
            TcpListener::bind((host.as_str(), port))
                .await
                .map_err(|e| ServerError(format!("cannot listen on {host}:{port}: {e}")))
        }
    };
    let listener = match bind(&config.server.host, config.server.port).await {
        Ok(l) => l,
        Err(e) => {
            stop_workers(state, worker, readers, Vec::new()).await;
            return Err(e);
        }
    };
    let addr = listener.local_addr().map_err(err)?;
    let timeout = Duration::from_secs(config.server.request_timeout);
    let mut tasks = vec![tokio::spawn(serve(
        listener,
        app::app(Arc::clone(&state)),
        tls.clone(),
        stop_rx.clone(),
        timeout,
    ))];
    let mut metrics_addr = None;
    if let Some(port) = config
        .monitoring
        .prometheus_port
        .filter(|_| config.monitoring.enabled)
    {
        let l = match bind(&config.server.host, port).await {
            Ok(l) => l,
            Err(e) => {
                let _ = stop.send(true);
                stop_workers(state, worker, readers, tasks).await;
                return Err(e);
            }
        };
        metrics_addr = l.local_addr().ok();
        tasks.push(tokio::spawn(serve(
            l,
            app::metrics_app(Arc::clone(&state)),
            tls.clone(),
            stop_rx.clone(),
            timeout,
        )));
    }
    if let Some(secs) = config.ledger.integrity_check_interval.filter(|s| *s > 0) {
        tasks.push(tokio::spawn(integrity_checks(
            Arc::clone(&state),
            Duration::from_secs(secs),
            stop_rx.clone(),
        )));
    }
    let snap = state.engine.snapshot();
    tracing::info!(
        node_id = %node.id,
        %addr,
        tls = tls.is_some(),
        storage = storage_kind,
        ledger_entries = snap.ledger_len,
        policy = snap.policy.as_ref().map(|p| p.name.as_str()),
        auth = state.auth.is_some(),
        "lexecon server listening"
    );
    Ok(RunningServer {
        addr,
        metrics_addr,
        tls: tls.is_some(),
        state,
        stop,
        tasks,
        worker,
        readers,
    })
}

/// `ledger.auto_verify` and `policy.auto_load`.
async fn prepare(
    node: &Node,
    config: &crate::config::Config,
    state: &Shared,
) -> Result<(), ServerError> {
    if config.ledger.auto_verify {
        let report = handlers::verify_chain(state)
            .await
            .map_err(|e| ServerError(format!("cannot verify the ledger: {}", e.detail)))?;
        if let Some(f) = &report.failure {
            return Err(ServerError(format!(
                "ledger verification failed at entry {}: {} (ledger.auto_verify is on; run `lexecon ledger verify --verbose`)",
                f.index, f.message
            )));
        }
        tracing::info!(entries = report.entries, "ledger verified");
    }
    // Every file is read and checked before the first is loaded: a server
    // that does not start changes nothing.
    let mut policies = Vec::with_capacity(config.policy.auto_load.len());
    for path in &config.policy.auto_load {
        let path = crate::config::resolve_path(&path.to_string_lossy(), &node.paths.dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ServerError(format!(
                "cannot read policy `{}` (policy.auto_load): {e}",
                path.display()
            ))
        })?;
        let (text, _) =
            crate::node::prepare_policy(&text, config.policy.default_mode).map_err(|e| {
                ServerError(format!(
                    "policy `{}` (policy.auto_load) is invalid: {e}",
                    path.display()
                ))
            })?;
        policies.push((path, text));
    }
    // One policy is active at a time and each load replaces the one before:
    // loading every file in turn would make each but the last active for a
    // moment, for every replica on a shared ledger, and record it. The last
    // file is the one that ends up active, so it alone is loaded.
    if policies.len() > 1 {
        tracing::warn!(
            files = policies.len(),
            "policy.auto_load lists several files: every one was checked, only the last is loaded (one policy is active at a time)"
        );
    }
    if let Some((path, text)) = policies.pop() {
        let loaded = state.engine.load_policy(text).await.map_err(|e| {
            ServerError(format!(
                "cannot load policy `{}` (policy.auto_load): {e}",
                path.display()
            ))
        })?;
        tracing::info!(file = %path.display(), name = %loaded.policy.name, policy_hash = %loaded.policy.policy_hash, recorded = loaded.recorded, "policy auto-loaded");
    }
    if state.engine.snapshot().policy.is_none() {
        tracing::warn!(
            "no policy is loaded: every decision is denied until one is loaded (POST /policies or `lexecon policy load`)"
        );
    }
    Ok(())
}

async fn integrity_checks(state: Shared, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match handlers::verify_chain(&state).await {
                    Ok(r) if r.valid => tracing::debug!(entries = r.entries, "periodic ledger verification passed"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(detail = %e.detail, "periodic ledger verification could not run"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Accepts connections until `stop`, then drains them.
async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
    timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout);
    builder.http2().timer(TokioTimer::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // Set when the connection's first request reaches the router.
                let requested = Arc::new(AtomicBool::new(false));
                let seen = Arc::clone(&requested);
                let svc = router.clone().map_request(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    seen.store(true, Ordering::Relaxed);
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                });
                let svc = TowerToHyperService::new(svc);
                let watcher = graceful.watcher();
                let builder = builder.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let started = tokio::time::Instant::now();
                    match tls {
                        Some(acceptor) => match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => {
                                let conn = watcher.watch(builder.serve_connection(TokioIo::new(s), svc));
                                first_request_within(conn, started + timeout, &requested, peer).await;
                            }
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        },
                        None => {
                            let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), svc));
                            first_request_within(conn, started + timeout, &requested, peer).await;
                        }
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them"),
    }
}

/// Runs a connection, closing it at `deadline` unless its first request has
/// arrived by then. hyper's header read timeout starts only once the
/// connection's protocol is known (hyper-util's auto builder reads the
/// first bytes to tell HTTP/1 from HTTP/2 with no timer), so a peer that
/// connects and sends nothing, or a few bytes, would otherwise hold its
/// connection, and a file descriptor, for as long as it likes. Between
/// requests, hyper's own timeout applies.
async fn first_request_within<F: std::future::Future>(
    conn: F,
    deadline: tokio::time::Instant,
    requested: &AtomicBool,
    peer: std::net::SocketAddr,
) {
    tokio::pin!(conn);
    tokio::select! {
        _ = &mut conn => return,
        () = tokio::time::sleep_until(deadline) => {}
    }
    if !requested.load(Ordering::Relaxed) {
        tracing::debug!(%peer, "closed a connection that sent no request in time");
        return;
    }
    conn.await;
}

/// Resolves on SIGTERM, SIGINT or SIGHUP. SIGHUP (the terminal went away,
/// or a supervisor's reload) would otherwise end the process on the spot;
/// the server reads its configuration only at start, so it stops as on
/// SIGTERM, finishing what it acknowledged.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let on = |kind: SignalKind| async move {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = on(SignalKind::terminate()) => {}
        () = on(SignalKind::hangup()) => {}
    }
}

/// Runs the server until SIGTERM/SIGINT/SIGHUP (the `lexecon server` command):
/// logging per `logging:`, a runtime with `server.workers` threads, then
/// [`start`]; prints `listening on URL` on stdout once serving.
///
/// # Errors
/// As [`start`]; logging and runtime failures.
pub fn run(node: &Node, opts: &ServerOptions) -> Result<(), ServerError> {
    crate::logging::init(&node.config.logging).map_err(err)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = node.config.server.workers {
        rt.worker_threads(n);
    }
    let rt = rt
        .enable_all()
        .thread_name("lexecon-http")
        .build()
        .map_err(|e| err(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let server = start(node, opts).await?;
        {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "lexecon server: node `{}` listening on {}",
                node.id,
                server.base_url()
            );
            if let Some(m) = server.metrics_addr {
                let _ = writeln!(
                    out,
                    "lexecon server: metrics on {}://{m}/metrics",
                    if server.tls { "https" } else { "http" }
                );
            }
            let _ = out.flush();
        }
        if let Err(e) = node.record_server_url(&server.base_url()) {
            tracing::warn!(path = %node.paths.server_url.display(), error = %e, "cannot record the server's address (used only by the CLI's hints)");
        }
        shutdown_signal().await;
        tracing::info!(
            "shutdown signal received: no new connections; finishing in-flight requests"
        );
        server.shutdown().await;
        node.forget_server_url();
        Ok(())
    })
}
