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
//!   fsync or one transaction (group commit), then answers each caller —
//!   after handing every durable decision to an [`OnDecided`] observer (the
//!   server's metrics), so a decision is counted even when its caller has
//!   gone (a client that disconnected before its answer). A
//!   group-level error reaches every caller in the group (they answer 503:
//!   fail closed, never an allow).
//! - The committer thread, with [`Durability::Deferred`] (the file ledger):
//!   the engine's appends only write, and this thread syncs them — one
//!   `fdatasync` for every group written since its last — and only then
//!   answers those groups' callers, while the engine thread already decides
//!   the next group. With [`Durability::OnAppend`] (PostgreSQL) the engine
//!   thread answers as soon as `decide_batch` returned. Either way a decision
//!   is answered only after its ledger entry is durable. A failed sync
//!   answers every waiting caller 503, and the ledger refuses every later
//!   append until the server is restarted.
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

/// Called once for every decision whose ledger entry is durable, on the
/// thread that answers it, before its caller is answered.
pub type OnDecided = Arc<dyn Fn(&Decision) + Send + Sync>;

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
    /// Catch up with other writers, then publish the state.
    Refresh {
        reply: oneshot::Sender<()>,
    },
    Stop,
}

/// When the engine's ledger appends are durable.
pub enum Durability {
    /// When `decide_batch` returns (PostgreSQL's commit, a synced file).
    OnAppend,
    /// After this function returns `Ok`: it makes every entry appended
    /// before the call durable (the file ledger's deferred sync). It runs
    /// on the committer thread.
    Deferred(Box<dyn FnMut() -> Result<(), EngineError> + Send>),
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::OnAppend => "OnAppend",
            Self::Deferred(_) => "Deferred",
        })
    }
}

/// Answers for work the engine has done, sent once its entries are durable:
/// the engine's state to publish, and the callers' replies.
struct Answers {
    state: Snapshot,
    with_policy: bool,
    reply: Box<dyn FnOnce(Result<(), EngineError>) + Send>,
}

/// Sends [`Answers`] when their entries are durable: at once
/// ([`Durability::OnAppend`]) or through the committer thread.
struct Delivery {
    snapshot: Arc<RwLock<Snapshot>>,
    committer: Option<std_mpsc::Sender<Answers>>,
    on_decided: OnDecided,
}

impl Delivery {
    fn send(&self, answers: Answers) {
        match &self.committer {
            Some(tx) => {
                if let Err(std_mpsc::SendError(answers)) = tx.send(answers) {
                    // The committer is gone: nothing can be made durable.
                    (answers.reply)(Err(EngineError::Storage(
                        lexecon_core::StorageError::Unavailable(
                            "the ledger committer thread stopped".into(),
                        ),
                    )));
                }
            }
            None => deliver(&self.snapshot, answers, Ok(())),
        }
    }
}

fn deliver(snapshot: &RwLock<Snapshot>, answers: Answers, durable: Result<(), EngineError>) {
    if let (Ok(()), Ok(mut s)) = (&durable, snapshot.write()) {
        let policy = std::mem::take(&mut s.policy);
        *s = answers.state;
        if !answers.with_policy {
            s.policy = policy;
        }
    }
    (answers.reply)(durable);
}

/// The committer thread's loop: one sync for everything queued, then the
/// answers, in order.
fn commit(
    mut sync: Box<dyn FnMut() -> Result<(), EngineError> + Send>,
    rx: std_mpsc::Receiver<Answers>,
    snapshot: &RwLock<Snapshot>,
) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        group.extend(rx.try_iter());
        let durable = sync();
        if let Err(e) = &durable {
            tracing::error!(error = %e, groups = group.len(), "syncing the ledger failed; answering 503 (fail closed) until restarted");
        }
        for answers in group {
            deliver(snapshot, answers, durable.clone());
        }
    }
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
            Self::Refresh { .. } => "Refresh",
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

    /// Catches the engine up with entries other replicas appended and
    /// publishes its state, so that [`EngineHandle::snapshot`] shows the
    /// ledger's policy and head rather than those of this replica's last
    /// decision. Failures are logged; the snapshot then stays as it was.
    pub async fn refresh(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Job::Refresh { reply }).await.is_ok() {
            let _ = rx.await;
        }
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
    committer: Option<JoinHandle<()>>,
}

impl EngineWorker {
    /// Starts the thread; `open` runs on it and builds the engine, says
    /// when its appends are durable, and returns anything else that must be
    /// made there as `T`. `on_decided` sees every durable decision.
    ///
    /// # Errors
    /// What `open` returned, or a thread that could not start.
    pub fn spawn<T, F>(open: F, on_decided: OnDecided) -> Result<(Self, T), String>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<(Box<dyn DecisionEngine>, Durability, T), String> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let snapshot = Arc::new(RwLock::new(Snapshot::default()));
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let snap = Arc::clone(&snapshot);
        let thread = std::thread::Builder::new()
            .name("lexecon-engine".into())
            .spawn(move || {
                let (engine, durability, extra) = match open() {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                publish(&snap, engine.as_ref());
                let committer = match durability {
                    Durability::OnAppend => None,
                    Durability::Deferred(sync) => {
                        let (commit_tx, commit_rx) = std_mpsc::channel();
                        let commit_snap = Arc::clone(&snap);
                        let spawned = std::thread::Builder::new()
                            .name("lexecon-committer".into())
                            .spawn(move || commit(sync, commit_rx, &commit_snap));
                        match spawned {
                            Ok(handle) => Some((commit_tx, handle)),
                            Err(e) => {
                                let _ = ready_tx
                                    .send(Err(format!("cannot start the committer thread: {e}")));
                                return;
                            }
                        }
                    }
                };
                let (commit_tx, commit_handle) = committer.unzip();
                if ready_tx.send(Ok((extra, commit_handle))).is_err() {
                    return;
                }
                let delivery = Delivery {
                    snapshot: Arc::clone(&snap),
                    committer: commit_tx,
                    on_decided,
                };
                run(engine, rx, &delivery);
            })
            .map_err(|e| format!("cannot start the engine thread: {e}"))?;
        let (extra, committer) = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
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
                committer,
            },
            extra,
        ))
    }

    /// A handle for sending work.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Lets the thread finish the jobs queued so far, then stops it and
    /// waits for it (dropping the engine closes the ledger), and for the
    /// committer to sync and answer what it holds.
    pub async fn shutdown(mut self) {
        let _ = self.handle.tx.send(Job::Stop).await;
        let threads = [self.thread.take(), self.committer.take()];
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads.into_iter().flatten() {
                let _ = t.join();
            }
        })
        .await;
    }
}

fn publish(snap: &RwLock<Snapshot>, engine: &dyn DecisionEngine) {
    if let Ok(mut s) = snap.write() {
        *s = state(engine, true);
    }
}

/// The engine's state now; the policy only when `with_policy` (asking the
/// component for it is not free).
fn state(engine: &dyn DecisionEngine, with_policy: bool) -> Snapshot {
    Snapshot {
        policy: if with_policy { engine.policy() } else { None },
        ledger_len: engine.ledger_len(),
        head_hash: engine.head_hash(),
    }
}

/// Whether any of `decisions` was made under another policy than the one
/// published: the cue to ask the engine for its policy again.
fn policy_moved(snapshot: &RwLock<Snapshot>, decisions: &[Result<Decision, RequestError>]) -> bool {
    let Ok(snap) = snapshot.read() else {
        return true;
    };
    let published = snap
        .policy
        .as_ref()
        .map_or(lexecon_core::engine::NO_POLICY, |p| p.policy_hash.as_str());
    decisions
        .iter()
        .flatten()
        .any(|d| d.policy_version_hash != published)
}

fn run(mut engine: Box<dyn DecisionEngine>, mut rx: mpsc::Receiver<Job>, delivery: &Delivery) {
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
            // With deferred syncs (the file ledger, one writer) there is no
            // one to catch up with, and the engine's state may hold entries
            // not yet durable, which must not be published early.
            Job::Refresh { reply } if delivery.committer.is_some() => {
                let _ = reply.send(());
            }
            Job::Refresh { reply } => {
                match engine.catch_up() {
                    // What it caught up with is durable already (read back
                    // from storage): published at once.
                    Ok(()) => publish(&delivery.snapshot, engine.as_ref()),
                    Err(e) => {
                        tracing::warn!(error = %e, "catching up with the ledger for a status read failed");
                    }
                }
                let _ = reply.send(());
            }
            Job::LoadPolicy { text, reply } => match engine.load_policy(&text) {
                Ok(loaded) => delivery.send(Answers {
                    state: state(engine.as_ref(), true),
                    with_policy: true,
                    reply: Box::new(move |durable| {
                        let _ = reply.send(durable.map(|()| loaded).map_err(WorkerError::Engine));
                    }),
                }),
                Err(e) => {
                    let _ = reply.send(Err(WorkerError::Engine(e)));
                }
            },
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
                match engine.decide_batch(&all) {
                    Ok(decisions) => {
                        // Another replica on the same ledger (PostgreSQL) may
                        // have loaded a policy, which the engine applied while
                        // catching up: then publish the policy again, so
                        // `/status` and `GET /policies` show what decides.
                        let policy_moved = policy_moved(&delivery.snapshot, &decisions);
                        let on_decided = Arc::clone(&delivery.on_decided);
                        delivery.send(Answers {
                            state: state(engine.as_ref(), policy_moved),
                            with_policy: policy_moved,
                            reply: Box::new(move |durable| {
                                answer_group(callers, decisions, durable, on_decided.as_ref());
                            }),
                        });
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

/// Hands each caller of a group its part of the group's decisions, or the
/// error that kept them from being durable. Durable decisions go to
/// `on_decided` first, whether or not their caller is still waiting.
fn answer_group(
    callers: Vec<(usize, oneshot::Sender<DecideResult>)>,
    decisions: Vec<Result<Decision, RequestError>>,
    durable: Result<(), EngineError>,
    on_decided: &(dyn Fn(&Decision) + Send + Sync),
) {
    if let Err(e) = durable {
        for (_, reply) in callers {
            let _ = reply.send(Err(WorkerError::Engine(e.clone())));
        }
        return;
    }
    for d in decisions.iter().flatten() {
        on_decided(d);
    }
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

    use crate::storage::file::FileStorage;
    use lexecon_core::StorageError;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn engine_over(storage: LedgerStorage) -> Box<dyn DecisionEngine> {
        let engine = core_engine(NodeConfig::default(), Ed25519Signer::from_seed(&[3; 32]));
        Box::new(NativeEngine::open(engine, storage).unwrap())
    }

    fn open() -> Result<(Box<dyn DecisionEngine>, Durability, ()), String> {
        let storage = LedgerStorage::Memory(MemoryStorage::new());
        Ok((engine_over(storage), Durability::OnAppend, ()))
    }

    fn ignore() -> OnDecided {
        Arc::new(|_| {})
    }

    async fn decide_one(h: &EngineHandle, i: u32) -> Result<Decision, WorkerError> {
        let mut r = DecisionRequest::new("model", "p", "read", "i", 1);
        r.request_id = Some(format!("r{i}"));
        let mut d = h.decide(vec![r]).await?;
        assert_eq!(d.len(), 1);
        Ok(d.pop().unwrap().unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_are_grouped_and_answered_in_order() {
        let (worker, ()) = EngineWorker::spawn(open, ignore()).unwrap();
        let h = worker.handle();
        h.load_policy(include_str!("../../../examples/policies/read_only.json").into())
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                let d = decide_one(&h, i).await.unwrap();
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deferred_durability_answers_only_what_the_committer_synced() {
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = FileStorage::open(dir.path().join("ledger.db")).unwrap();
        let reader = file.clone();
        let syncs = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&syncs);
        let (worker, ()) = EngineWorker::spawn(
            move || {
                file.defer_sync();
                let sync_file = file.clone();
                let sync = Box::new(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    sync_file.sync().map(drop).map_err(EngineError::Storage)
                });
                let engine = engine_over(LedgerStorage::File(file));
                Ok((engine, Durability::Deferred(sync), ()))
            },
            ignore(),
        )
        .unwrap();
        let h = worker.handle();
        h.load_policy(include_str!("../../../examples/policies/read_only.json").into())
            .await
            .unwrap();
        assert_eq!(reader.len(), Ok(1), "a policy load is answered once synced");
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let (h, reader) = (h.clone(), reader.clone());
            tasks.push(tokio::spawn(async move {
                let d = decide_one(&h, i).await.unwrap();
                // Answered, so durable, so visible to readers.
                assert!(reader.len().unwrap() > d.ledger_index);
                d.ledger_index
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(reader.len(), Ok(201));
        assert_eq!(h.snapshot().ledger_len, 201);
        assert!(syncs.load(Ordering::SeqCst) <= 201);
        worker.shutdown().await;
    }

    #[tokio::test]
    async fn a_failed_sync_fails_its_callers_closed() {
        let (worker, ()) = EngineWorker::spawn(
            || {
                let sync = Box::new(|| {
                    Err(EngineError::Storage(StorageError::Unavailable(
                        "disk gone".into(),
                    )))
                });
                let storage = LedgerStorage::Memory(MemoryStorage::new());
                Ok((engine_over(storage), Durability::Deferred(sync), ()))
            },
            ignore(),
        )
        .unwrap();
        let h = worker.handle();
        let loaded = h
            .load_policy(include_str!("../../../examples/policies/read_only.json").into())
            .await;
        assert!(matches!(
            loaded,
            Err(WorkerError::Engine(EngineError::Storage(_)))
        ));
        let decided = decide_one(&h, 1).await;
        assert!(
            matches!(&decided, Err(WorkerError::Engine(EngineError::Storage(e))) if e.to_string().contains("disk gone")),
            "{decided:?}"
        );
        assert_eq!(h.snapshot().ledger_len, 0, "nothing unsynced is published");
        worker.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn decisions_are_observed_once_durable_even_if_their_caller_left() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let on_decided: OnDecided = Arc::new(move |d: &Decision| {
            record.lock().unwrap().push(d.request_id.clone());
        });
        // Each sync says it started, then waits until the test releases it,
        // so a caller can leave while its decision is being made durable.
        let (entered_tx, mut entered) = mpsc::unbounded_channel::<()>();
        let (release, gate) = std_mpsc::channel::<()>();
        let (worker, ()) = EngineWorker::spawn(
            move || {
                let sync = Box::new(move || {
                    let _ = entered_tx.send(());
                    let _ = gate.recv();
                    Ok(())
                });
                let storage = LedgerStorage::Memory(MemoryStorage::new());
                Ok((engine_over(storage), Durability::Deferred(sync), ()))
            },
            on_decided,
        )
        .unwrap();
        let h = worker.handle();
        let sync_next = async |entered: &mut mpsc::UnboundedReceiver<()>| {
            entered.recv().await.unwrap();
            release.send(()).unwrap();
        };

        let policy = include_str!("../../../examples/policies/read_only.json");
        let loading = tokio::spawn({
            let h = h.clone();
            async move { h.load_policy(policy.into()).await }
        });
        sync_next(&mut entered).await;
        loading.await.unwrap().unwrap();
        assert!(
            seen.lock().unwrap().is_empty(),
            "a policy load is not a decision"
        );

        // r1's caller gives up while its decision is being synced.
        let leaving = tokio::spawn({
            let h = h.clone();
            async move { decide_one(&h, 1).await }
        });
        entered.recv().await.unwrap();
        leaving.abort();
        assert!(leaving.await.unwrap_err().is_cancelled());
        release.send(()).unwrap();

        // r2 is answered as usual; the committer handles groups in order,
        // so r1 has been observed by the time r2 is answered.
        let staying = tokio::spawn({
            let h = h.clone();
            async move { decide_one(&h, 2).await }
        });
        sync_next(&mut entered).await;
        assert_eq!(staying.await.unwrap().unwrap().request_id, "r2");
        assert_eq!(*seen.lock().unwrap(), ["r1", "r2"]);
        assert_eq!(h.snapshot().ledger_len, 3);
        drop(release);
        worker.shutdown().await;
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
