//! The threads that touch the engine and the ledger, away from the async
//! runtime.
//!
//! Engine and storage calls are synchronous (the sync `postgres` client
//! panics inside a tokio runtime; the wasmtime component is sync), so:
//!
//! - [`EngineWorker`]: one `std::thread` owns the `Box<dyn DecisionEngine>`.
//!   Handlers send jobs over a bounded channel with a oneshot reply. The
//!   thread takes everything queued (up to [`MAX_GROUP`] requests) and calls
//!   `decide_batch` once, so the ledger appends the whole group with one
//!   fsync or one transaction (group commit), then answers each caller. A
//!   decision is answered only after `decide_batch` returned, that is after
//!   its entry is durable. A group-level error reaches every caller in the
//!   group (they answer 503: fail closed, never an allow).
//! - [`ReaderPool`]: a few threads, each with its own read handle on the
//!   ledger (a clone of the file handle, or another database connection),
//!   for `GET /ledger/…`, verification and the policy history.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use lexecon_core::engine::{EngineError, PolicyLoaded};
use lexecon_core::request::MAX_BATCH;
use lexecon_core::{Decision, DecisionRequest, RequestError};
use tokio::sync::{mpsc, oneshot};

use crate::engine::{DecisionEngine, PolicyInfo};
use crate::node::LedgerStorage;

/// Most requests decided in one group commit (a single larger batch request
/// is still decided whole, up to the core's `MAX_BATCH`).
pub const MAX_GROUP: usize = 256;
/// Jobs that may wait for the engine before callers wait to enqueue.
pub const QUEUE_DEPTH: usize = 4096;

/// The outcome of a batch of decisions.
pub type DecideResult = Result<Vec<Result<Decision, RequestError>>, WorkerError>;

/// Why the engine or a reader did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerError {
    /// The engine answered with an error.
    Engine(EngineError),
    /// The thread is gone (shut down or crashed): nothing was decided by it.
    Stopped,
}

impl std::fmt::Display for WorkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Engine(e) => write!(f, "{e}"),
            Self::Stopped => f.write_str("the engine is not running (the server is shutting down or the engine thread failed)"),
        }
    }
}

enum Job {
    Decide {
        requests: Vec<DecisionRequest>,
        reply: oneshot::Sender<DecideResult>,
    },
    LoadPolicy {
        text: String,
        reply: oneshot::Sender<Result<PolicyLoaded, WorkerError>>,
    },
    Stop,
}

/// What the rest of the server may know about the engine without asking it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The active policy.
    pub policy: Option<PolicyInfo>,
    /// Entries in the ledger.
    pub ledger_len: u64,
    /// Hash of the last entry.
    pub head_hash: String,
}

/// A cheap, cloneable handle for sending work to the engine thread.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    tx: mpsc::Sender<Job>,
    snapshot: Arc<RwLock<Snapshot>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Decide { .. } => "Decide",
            Self::LoadPolicy { .. } => "LoadPolicy",
            Self::Stop => "Stop",
        })
    }
}

impl EngineHandle {
    /// Decides `requests`; answers after their entries are durable.
    ///
    /// # Errors
    /// [`WorkerError`] for the batch as a whole.
    pub async fn decide(&self, requests: Vec<DecisionRequest>) -> DecideResult {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Decide { requests, reply })
            .await
            .map_err(|_| WorkerError::Stopped)?;
        rx.await.map_err(|_| WorkerError::Stopped)?
    }

    /// Loads a policy (already checked by the caller) and records it.
    ///
    /// # Errors
    /// [`WorkerError`].
    pub async fn load_policy(&self, text: String) -> Result<PolicyLoaded, WorkerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::LoadPolicy { text, reply })
            .await
            .map_err(|_| WorkerError::Stopped)?;
        rx.await.map_err(|_| WorkerError::Stopped)?
    }

    /// Whether the engine thread is still taking work.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// The engine's state after its last operation.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.read().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The engine thread.
#[derive(Debug)]
pub struct EngineWorker {
    handle: EngineHandle,
    thread: Option<JoinHandle<()>>,
}

impl EngineWorker {
    /// Starts the thread; `open` runs on it and builds the engine (and
    /// anything else that must be made there, returned as `T`).
    ///
    /// # Errors
    /// What `open` returned, or a thread that could not start.
    pub fn spawn<T, F>(open: F) -> Result<(Self, T), String>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<(Box<dyn DecisionEngine>, T), String> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let snapshot = Arc::new(RwLock::new(Snapshot::default()));
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let snap = Arc::clone(&snapshot);
        let thread = std::thread::Builder::new()
            .name("lexecon-engine".into())
            .spawn(move || {
                let (engine, extra) = match open() {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                publish(&snap, engine.as_ref(), true);
                if ready_tx.send(Ok(extra)).is_err() {
                    return;
                }
                run(engine, rx, &snap);
            })
            .map_err(|e| format!("cannot start the engine thread: {e}"))?;
        let extra = match ready_rx.recv() {
            Ok(Ok(extra)) => extra,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err("the engine thread stopped while opening".into());
            }
        };
        Ok((
            Self {
                handle: EngineHandle { tx, snapshot },
                thread: Some(thread),
            },
            extra,
        ))
    }

    /// A handle for sending work.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Lets the thread finish the jobs queued so far, then stops it and
    /// waits for it (dropping the engine closes the ledger).
    pub async fn shutdown(mut self) {
        let _ = self.handle.tx.send(Job::Stop).await;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

fn publish(snap: &RwLock<Snapshot>, engine: &dyn DecisionEngine, with_policy: bool) {
    let policy = with_policy.then(|| engine.policy());
    if let Ok(mut s) = snap.write() {
        s.ledger_len = engine.ledger_len();
        s.head_hash = engine.head_hash();
        if let Some(p) = policy {
            s.policy = p;
        }
    }
}

fn run(mut engine: Box<dyn DecisionEngine>, mut rx: mpsc::Receiver<Job>, snap: &RwLock<Snapshot>) {
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(j) => j,
            None => match rx.blocking_recv() {
                Some(j) => j,
                None => return,
            },
        };
        match job {
            Job::Stop => return,
            Job::LoadPolicy { text, reply } => {
                let result = engine.load_policy(&text).map_err(WorkerError::Engine);
                publish(snap, engine.as_ref(), true);
                let _ = reply.send(result);
            }
            Job::Decide { requests, reply } => {
                let mut all = requests;
                let mut callers = vec![(all.len(), reply)];
                while all.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(Job::Decide { requests, reply })
                            if all.len() + requests.len() <= MAX_BATCH =>
                        {
                            callers.push((requests.len(), reply));
                            all.extend(requests);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let result = engine.decide_batch(&all);
                publish(snap, engine.as_ref(), false);
                match result {
                    Ok(decisions) => {
                        let mut it = decisions.into_iter();
                        for (n, reply) in callers {
                            let part: Vec<_> = it.by_ref().take(n).collect();
                            let answer = if part.len() == n {
                                Ok(part)
                            } else {
                                Err(WorkerError::Stopped)
                            };
                            let _ = reply.send(answer);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, code = e.code(), requests = all.len(), "decision batch failed; answering 503 (fail closed)");
                        for (_, reply) in callers {
                            let _ = reply.send(Err(WorkerError::Engine(e.clone())));
                        }
                    }
                }
            }
        }
    }
}

type ReadJob = Box<dyn FnOnce(&mut LedgerStorage) + Send>;

/// The reader threads. They stop, closing their ledger handles, once every
/// [`ReaderPool`] handle is dropped.
#[derive(Debug)]
pub struct ReaderThreads(Vec<JoinHandle<()>>);

impl ReaderThreads {
    /// Waits up to `limit` for the readers to stop; `false` if some did not.
    pub fn join(self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let mut all = true;
        for h in self.0 {
            while !h.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                all = false;
            }
        }
        all
    }
}

/// Threads that read the ledger, each with its own handle.
#[derive(Clone, Debug)]
pub struct ReaderPool {
    tx: std_mpsc::Sender<ReadJob>,
}

impl ReaderPool {
    /// Starts `threads` readers; `open` makes each one's ledger handle, on its thread.
    ///
    /// # Errors
    /// The first reader that could not open.
    pub fn spawn<F>(threads: usize, open: F) -> Result<(Self, ReaderThreads), String>
    where
        F: Fn() -> Result<LedgerStorage, String> + Send + Sync + 'static,
    {
        let (tx, rx) = std_mpsc::channel::<ReadJob>();
        let rx = Arc::new(Mutex::new(rx));
        let open = Arc::new(open);
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (rx, open) = (Arc::clone(&rx), Arc::clone(&open));
            let (ready_tx, ready_rx) = std_mpsc::channel();
            let handle = std::thread::Builder::new()
                .name(format!("lexecon-reader-{i}"))
                .spawn(move || {
                    let mut storage = match open() {
                        Ok(s) => {
                            let _ = ready_tx.send(Ok(()));
                            s
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut storage),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| format!("cannot start a ledger reader thread: {e}"))?;
            handles.push(handle);
            ready_rx
                .recv()
                .map_err(|_| "a ledger reader thread stopped while opening".to_string())??;
        }
        Ok((Self { tx }, ReaderThreads(handles)))
    }

    /// Runs `f` on a reader thread with its ledger handle.
    ///
    /// # Errors
    /// [`WorkerError::Stopped`] when the readers are gone.
    pub async fn run<T, F>(&self, f: F) -> Result<T, WorkerError>
    where
        T: Send + 'static,
        F: FnOnce(&mut LedgerStorage) -> T + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |s| {
            let _ = reply.send(f(s));
        });
        self.tx.send(job).map_err(|_| WorkerError::Stopped)?;
        rx.await.map_err(|_| WorkerError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::engine::{NativeEngine, core_engine};
    use lexecon_core::{Ed25519Signer, MemoryStorage, NodeConfig, Storage as _};

    fn open() -> Result<(Box<dyn DecisionEngine>, ()), String> {
        let engine = core_engine(NodeConfig::default(), Ed25519Signer::from_seed(&[3; 32]));
        let e = NativeEngine::open(engine, MemoryStorage::new()).map_err(|e| e.to_string())?;
        Ok((Box::new(e), ()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_are_grouped_and_answered_in_order() {
        let (worker, ()) = EngineWorker::spawn(open).unwrap();
        let h = worker.handle();
        h.load_policy(include_str!("../../../examples/policies/read_only.json").into())
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                let mut r = DecisionRequest::new("model", "p", "read", "i", 1);
                r.request_id = Some(format!("r{i}"));
                let d = h.decide(vec![r]).await.unwrap();
                assert_eq!(d.len(), 1);
                let d = d.into_iter().next().unwrap().unwrap();
                assert_eq!(d.request_id, format!("r{i}"));
                d.ledger_index
            }));
        }
        let mut idx = Vec::new();
        for t in tasks {
            idx.push(t.await.unwrap());
        }
        idx.sort_unstable();
        idx.dedup();
        assert_eq!(idx.len(), 200);
        assert_eq!(h.snapshot().ledger_len, 201);
        worker.shutdown().await;
        assert_eq!(
            h.decide(vec![DecisionRequest::new("m", "p", "t", "i", 1)])
                .await,
            Err(WorkerError::Stopped)
        );
    }

    #[tokio::test]
    async fn readers_run_jobs() {
        let (pool, threads) =
            ReaderPool::spawn(2, || Ok(LedgerStorage::Memory(MemoryStorage::new()))).unwrap();
        let n = pool.run(|s| s.len().unwrap()).await.unwrap();
        assert_eq!(n, 0);
        drop(pool);
        assert!(threads.join(std::time::Duration::from_secs(5)));
    }
}
