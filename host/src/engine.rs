//! The seam between the CLI/server and the engine, whichever way it runs.
//!
//! [`DecisionEngine`] is what the `lexecon` CLI and HTTP server call.
//! Production runs the engine as the WASI component inside wasmtime
//! (`crate::component`); [`NativeEngine`] runs `lexecon-core` in-process
//! and is the reference the conformance tests compare the component with.
//! Both answer with `lexecon-core`'s own types, so there is one definition of
//! a decision.

use lexecon_core::engine::{Engine, EngineError, Governor, NodeConfig, PolicyLoaded};
pub use lexecon_core::policy::PolicyInfo;
use lexecon_core::{Decision, DecisionRequest, RequestError, Storage};

/// The engine operations the CLI and server use.
pub trait DecisionEngine: Send {
    /// Loads a policy from JSON text and records it in the ledger.
    ///
    /// # Errors
    /// `EngineError::Policy` with path/line/column; storage errors.
    fn load_policy(&mut self, policy_json: &str) -> Result<PolicyLoaded, EngineError>;

    /// Decides requests in order; returns after all their entries are durable.
    ///
    /// # Errors
    /// Batch-level failures (storage, signer, a trapped component): the
    /// caller answers each request with a denial / 503, never an allow.
    fn decide_batch(
        &mut self,
        requests: &[DecisionRequest],
    ) -> Result<Vec<Result<Decision, RequestError>>, EngineError>;

    /// The active policy, if any.
    fn policy(&self) -> Option<PolicyInfo>;

    /// Number of ledger entries this engine knows of.
    fn ledger_len(&self) -> u64;

    /// Hash of the last ledger entry.
    fn head_hash(&self) -> String;

    /// The node's Ed25519 public key.
    fn public_key(&self) -> [u8; 32];

    /// Reads and applies entries other writers appended (replicas on one
    /// PostgreSQL ledger), so the policy and head this engine reports are
    /// the ledger's.
    ///
    /// # Errors
    /// Storage errors, entries that do not link.
    fn catch_up(&mut self) -> Result<(), EngineError>;
}

/// `lexecon-core` running natively over any [`Storage`].
pub struct NativeEngine<S> {
    governor: Governor<S>,
}

impl<S: Storage> NativeEngine<S> {
    /// Opens the ledger in `storage` (restoring head, policy, rate windows).
    ///
    /// # Errors
    /// Storage errors; a stored policy that no longer loads.
    pub fn open(engine: Engine, storage: S) -> Result<Self, EngineError> {
        Ok(Self {
            governor: Governor::open(engine, storage)?,
        })
    }

    /// The driver, for tests.
    pub fn governor(&mut self) -> &mut Governor<S> {
        &mut self.governor
    }
}

impl<S: Storage + Send> DecisionEngine for NativeEngine<S> {
    fn load_policy(&mut self, policy_json: &str) -> Result<PolicyLoaded, EngineError> {
        self.governor.load_policy(policy_json)
    }

    fn decide_batch(
        &mut self,
        requests: &[DecisionRequest],
    ) -> Result<Vec<Result<Decision, RequestError>>, EngineError> {
        self.governor.decide_batch(requests)
    }

    fn policy(&self) -> Option<PolicyInfo> {
        self.governor.engine().policy().map(|p| p.info())
    }

    fn ledger_len(&self) -> u64 {
        self.governor.engine().len()
    }

    fn head_hash(&self) -> String {
        self.governor.engine().head_hash().to_string()
    }

    fn public_key(&self) -> [u8; 32] {
        self.governor.engine().public_key()
    }

    fn catch_up(&mut self) -> Result<(), EngineError> {
        self.governor.catch_up()
    }
}

/// Builds the core engine for a node.
pub fn core_engine(config: NodeConfig, signer: lexecon_core::Ed25519Signer) -> Engine {
    Engine::new(
        config,
        Box::new(signer),
        Box::new(SystemClock),
        Box::new(lexecon_core::BufferedRandom::<_>::new(
            lexecon_core::OsRandom,
        )),
    )
}

/// The host's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl lexecon_core::Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}
