//! Compiling, linking and running the component: [`ComponentHost`] and
//! [`ComponentEngine`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lexecon_core::capability::{Expect, TokenClaims, TokenError};
use lexecon_core::engine::{EngineError, NodeConfig, PolicyLoaded};
use lexecon_core::ledger::VerifyReport;
use lexecon_core::policy::MAX_POLICY_BYTES;
use lexecon_core::request::MAX_BATCH;
use lexecon_core::{Decision, DecisionRequest, RequestError, Signer, Storage};
use wasmtime::component::{Component, HasSelf, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::exports::lexecon::governance::engine as wit;
use super::bindings::lexecon::governance::{signer as wit_signer, storage as wit_storage};
use super::bindings::{Governance, GovernancePre};
use super::convert::{self, StoredEntry};
use super::wasi::{self, GuestEnv};
use crate::engine::{DecisionEngine, PolicyInfo};

// ----- limits -----

/// Bounds on every call into the component.
///
/// Every call has a wall-clock deadline (wasmtime's epoch interruption: a
/// thread advances the engine's epoch every [`EPOCH_TICK`], and compiled
/// code checks it at function entries and loop heads, which costs little).
/// Fuel, counted in wasm instructions (roughly), is the deterministic
/// alternative: the same budget on every machine, at about a sixth of a
/// decision's time in the component, so it is off unless asked for
/// ([`Limits::with_fuel`]). Both budgets grow with the work asked for:
///
/// - every call: `time_per_call` / `fuel_per_call`;
/// - deciding: plus `time_per_request` / `fuel_per_request` per request;
/// - loading a policy: plus `time_per_policy_byte` / `fuel_per_policy_byte`
///   per byte of its text;
/// - opening the ledger, verifying it and catching up: plus
///   `time_per_entry` / `fuel_per_entry` per stored entry, plus what loading
///   a policy of the largest size takes (they re-read the active policy
///   from the ledger).
///
/// A call that runs out traps and the engine restarts. One case is
/// deliberately not covered: a decide that meets an append conflict catches
/// up inside its own budget; if another writer has just recorded a huge
/// policy, that decide fails, and the restarted engine (opened with the
/// larger budget) carries on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for any one call; `None` turns deadlines off
    /// entirely (wasmtime then compiles the component without epoch checks).
    pub time_per_call: Option<Duration>,
    /// Extra time per request in a batch.
    pub time_per_request: Duration,
    /// Extra time per byte of policy text loaded.
    pub time_per_policy_byte: Duration,
    /// Extra time per ledger entry stored, when opening, verifying or
    /// catching up with the ledger.
    pub time_per_entry: Duration,
    /// Fuel for any one call; `None` (the default) turns fuel metering off
    /// entirely.
    pub fuel_per_call: Option<u64>,
    /// Extra fuel per request in a batch.
    pub fuel_per_request: u64,
    /// Extra fuel per byte of policy text loaded.
    pub fuel_per_policy_byte: u64,
    /// Extra fuel per ledger entry stored, when opening, verifying or
    /// catching up with the ledger.
    pub fuel_per_entry: u64,
    /// Largest linear memory the component may grow to, in bytes.
    pub memory_bytes: usize,
}

/// How often the epoch advances: the granularity of every deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The fuel per call [`Limits::with_fuel`] sets.
pub const DEFAULT_FUEL_PER_CALL: u64 = 200_000_000;

impl Default for Limits {
    /// Deadlines far beyond what legitimate calls take (a decide takes tens
    /// of microseconds and a batch of the largest requests a few
    /// milliseconds per request; loading a policy near the 16 MiB limit
    /// about 0.1 µs per byte; opening a ledger a few microseconds per
    /// entry), so only a runaway call meets one. The fuel figures, used when
    /// fuel is on, are at least four times what the heaviest legitimate
    /// calls measured need, and the memory twice (the test
    /// `default_limits_cover_the_largest_legitimate_calls` checks both): a
    /// typical decide uses about 0.3 M fuel and a request of the largest
    /// size about 22 M; a policy about 700 fuel per byte of text; a policy
    /// near the 16 MiB limit about 330 MiB of memory.
    fn default() -> Self {
        Self {
            time_per_call: Some(Duration::from_secs(1)),
            time_per_request: Duration::from_millis(100),
            time_per_policy_byte: Duration::from_micros(2),
            time_per_entry: Duration::from_millis(1),
            fuel_per_call: None,
            fuel_per_request: 100_000_000,
            fuel_per_policy_byte: 5_000,
            fuel_per_entry: 20_000_000,
            memory_bytes: 1 << 30,
        }
    }
}

/// What one call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Budget {
    /// Fuel, when metered.
    fuel: Option<u64>,
    /// Wall-clock time, when there is a deadline.
    time: Option<Duration>,
}

impl Limits {
    /// These limits with fuel metering on, at [`DEFAULT_FUEL_PER_CALL`] per
    /// call (and the per-unit fuel already set).
    #[must_use]
    pub fn with_fuel(self) -> Self {
        Self {
            fuel_per_call: Some(DEFAULT_FUEL_PER_CALL),
            ..self
        }
    }

    /// The base budget plus, for each `(units, fuel per unit, time per
    /// unit)`, that much more.
    fn budget(&self, work: &[(u64, u64, Duration)]) -> Budget {
        Budget {
            fuel: self.fuel_per_call.map(|base| {
                work.iter().fold(base, |sum, &(units, per_unit, _)| {
                    sum.saturating_add(units.saturating_mul(per_unit))
                })
            }),
            time: self.time_per_call.map(|base| {
                work.iter().fold(base, |sum, &(units, _, per_unit)| {
                    let units = u32::try_from(units).unwrap_or(u32::MAX);
                    sum.saturating_add(per_unit.saturating_mul(units))
                })
            }),
        }
    }

    fn for_call(&self) -> Budget {
        self.budget(&[])
    }

    fn for_requests(&self, requests: u64) -> Budget {
        self.budget(&[(requests, self.fuel_per_request, self.time_per_request)])
    }

    fn for_policy(&self, bytes: u64) -> Budget {
        self.budget(&[(bytes, self.fuel_per_policy_byte, self.time_per_policy_byte)])
    }

    /// For calls that read `entries` ledger entries, the active policy among
    /// them.
    fn for_reading(&self, entries: u64) -> Budget {
        self.budget(&[
            (entries, self.fuel_per_entry, self.time_per_entry),
            (
                MAX_POLICY_BYTES as u64,
                self.fuel_per_policy_byte,
                self.time_per_policy_byte,
            ),
        ])
    }
}

/// Epoch ticks for a deadline `time` from now (rounded up), or, without a
/// deadline, so many that it never comes.
fn deadline_ticks(time: Option<Duration>) -> u64 {
    // wasmtime adds this to the current epoch: leave room for that.
    const NEVER: u64 = u64::MAX / 4;
    time.map_or(NEVER, |t| {
        let ticks = t.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
        u64::try_from(ticks).unwrap_or(NEVER).min(NEVER)
    })
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] until the engine is gone.
fn start_epoch_ticker(engine: &wasmtime::Engine) -> std::io::Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("lexecon-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map(|_| ())
}

// ----- errors -----

/// The component could not be loaded, compiled or linked.
#[derive(Debug)]
pub enum ComponentError {
    /// No file at the component's path.
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file could not be read.
    Io {
        /// The component's path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Not a valid component, or it imports something this host does not
    /// offer (such as `wasi:filesystem`).
    Invalid(String),
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { path } => write!(
                f,
                "the engine component is missing at `{}`: set {} to the path of \
                 lexecon.wasm, or install it beside the lexecon binary or in \
                 ../lib/lexecon/ from it (in a source tree, `scripts/build-component.sh` \
                 builds it)",
                path.display(),
                super::COMPONENT_PATH_ENV
            ),
            Self::Io { path, source } => write!(
                f,
                "cannot read the engine component `{}`: {source}",
                path.display()
            ),
            Self::Invalid(why) => write!(f, "the engine component cannot be used: {why}"),
        }
    }
}

impl std::error::Error for ComponentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn invalid(e: &wasmtime::Error) -> ComponentError {
    ComponentError::Invalid(format!("{e:#}"))
}

/// The cause of a trap, in words (without the wasm backtrace).
fn trap_cause(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => "it ran out of fuel".to_string(),
        Some(Trap::Interrupt) => "it ran past its time limit".to_string(),
        Some(trap) => trap.to_string(),
        None => e.root_cause().to_string(),
    }
}

/// A call the component could not complete (trap, time, fuel or memory limit):
/// nothing is decided, the caller may retry, and its answer is a denial.
fn trap_error(e: &wasmtime::Error) -> EngineError {
    EngineError::Unavailable(format!(
        "the engine component failed and was restarted ({}); the call was not completed",
        trap_cause(e)
    ))
}

// ----- the store's data: imports implemented over host objects -----

/// What a component instance borrows from its host, and gives back when it
/// is discarded.
struct Backend {
    storage: Box<dyn Storage + Send>,
    signer: Box<dyn Signer + Send>,
}

/// Caps the component's linear memory and remembers its peak.
struct MemoryLimiter {
    max: usize,
    peak: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            wasmtime::bail!("it needed more than its memory limit of {} bytes", self.max);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!("it needed more than {MAX_TABLE_ELEMENTS} table elements");
        }
        Ok(true)
    }
}

/// Far more function-table slots than the engine uses.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The data of each instance's [`Store`].
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    backend: Backend,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit_storage::Host for HostState {
    fn len(&mut self) -> Result<u64, wit_storage::StorageError> {
        self.backend
            .storage
            .len()
            .map_err(convert::storage_error_to_wit)
    }

    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, wit_storage::StorageError> {
        self.backend
            .storage
            .get(index)
            .map_err(convert::storage_error_to_wit)
    }

    fn get_range(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Vec<u8>>, wit_storage::StorageError> {
        self.backend
            .storage
            .get_range(start, end)
            .map_err(convert::storage_error_to_wit)
    }

    fn find(&mut self, entry_hash: String) -> Result<Option<u64>, wit_storage::StorageError> {
        self.backend
            .storage
            .find(&entry_hash)
            .map_err(convert::storage_error_to_wit)
    }

    fn append(
        &mut self,
        entries: Vec<wit_storage::EntryRecord>,
    ) -> Result<(), wit_storage::StorageError> {
        let records: Vec<_> = entries
            .into_iter()
            .map(convert::entry_record_from_wit)
            .collect();
        self.backend
            .storage
            .append(&records)
            .map_err(convert::storage_error_to_wit)
    }
}

impl wit_signer::Host for HostState {
    fn sign(&mut self, message: Vec<u8>) -> Result<Vec<u8>, wit_signer::SignerError> {
        match self.backend.signer.sign(&message) {
            Ok(signature) => Ok(signature.to_vec()),
            Err(e) => Err(wit_signer::SignerError::Unavailable(e.0)),
        }
    }

    fn public_key(&mut self) -> Vec<u8> {
        self.backend.signer.public_key().to_vec()
    }

    fn key_id(&mut self) -> String {
        self.backend.signer.key_id()
    }
}

// ----- the host: compiled and linked once -----

struct Shared {
    engine: wasmtime::Engine,
    component: Component,
    pre: GovernancePre<HostState>,
    /// Whether the engine meters fuel.
    fuel: bool,
    /// Whether the compiled code checks epoch deadlines.
    epochs: bool,
}

/// The component, compiled and linked once; engines are cheap after that.
///
/// Cloning is cheap (the compiled code is shared).
#[derive(Clone)]
pub struct ComponentHost {
    shared: Arc<Shared>,
    limits: Limits,
}

impl fmt::Debug for ComponentHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentHost")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ComponentHost {
    /// Compiles and links the component in `wasm` (the bytes of
    /// `lexecon.wasm`).
    ///
    /// # Errors
    /// [`ComponentError::Invalid`] when the bytes are not a component, or it
    /// imports more than storage, signer and the small WASI set this host
    /// offers.
    pub fn new(wasm: &[u8], limits: Limits) -> Result<Self, ComponentError> {
        Self::compile(wasm, limits, None)
    }

    /// [`ComponentHost::new`], keeping the compiled code in wasmtime's
    /// compilation cache under `cache_dir` so that the next process starts
    /// in milliseconds instead of recompiling. A cache that cannot be set up
    /// is skipped with a warning, never an error.
    ///
    /// # Errors
    /// As [`ComponentHost::new`].
    pub fn new_cached(
        wasm: &[u8],
        limits: Limits,
        cache_dir: &Path,
    ) -> Result<Self, ComponentError> {
        Self::compile(wasm, limits, Some(cache_dir))
    }

    fn compile(
        wasm: &[u8],
        limits: Limits,
        cache_dir: Option<&Path>,
    ) -> Result<Self, ComponentError> {
        let mut config = Config::new();
        let fuel = limits.fuel_per_call.is_some();
        let epochs = limits.time_per_call.is_some();
        config.consume_fuel(fuel);
        config.epoch_interruption(epochs);
        if let Some(dir) = cache_dir {
            let mut cache_config = wasmtime::CacheConfig::new();
            cache_config.with_directory(dir);
            match wasmtime::Cache::new(cache_config) {
                Ok(cache) => {
                    config.cache(Some(cache));
                }
                Err(e) => tracing::warn!(
                    cache_dir = %dir.display(),
                    "compiling the engine component without a cache: {e:#}"
                ),
            }
        }
        let engine = wasmtime::Engine::new(&config).map_err(|e| invalid(&e))?;
        let component = Component::new(&engine, wasm).map_err(|e| invalid(&e))?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(|e| invalid(&e))?;
        wit_storage::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| invalid(&e))?;
        wit_signer::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| invalid(&e))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| invalid(&e))?;
        let pre = GovernancePre::new(pre).map_err(|e| invalid(&e))?;
        if epochs {
            start_epoch_ticker(&engine).map_err(|e| {
                ComponentError::Invalid(format!("cannot start the epoch thread: {e}"))
            })?;
        }
        Ok(Self {
            shared: Arc::new(Shared {
                engine,
                component,
                pre,
                fuel,
                epochs,
            }),
            limits,
        })
    }

    /// The names of the interfaces the component imports
    /// (`lexecon:governance/storage@0.1.0`, `wasi:clocks/wall-clock@0.2.12`, …).
    pub fn imports(&self) -> Vec<String> {
        let ty = self.shared.component.component_type();
        ty.imports(&self.shared.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// The names of the interfaces the component exports.
    pub fn exports(&self) -> Vec<String> {
        let ty = self.shared.component.component_type();
        ty.exports(&self.shared.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// The same compiled component with other limits for the engines opened
    /// from the result.
    ///
    /// # Errors
    /// [`ComponentError::Invalid`] when `limits` set fuel or a deadline but
    /// this host was created without fuel metering or without deadlines
    /// (they are compile-time settings).
    pub fn with_limits(&self, limits: Limits) -> Result<Self, ComponentError> {
        if limits.fuel_per_call.is_some() && !self.shared.fuel {
            return Err(ComponentError::Invalid(
                "fuel limits need a host created with fuel metering on (`Limits::fuel_per_call`)"
                    .into(),
            ));
        }
        if limits.time_per_call.is_some() && !self.shared.epochs {
            return Err(ComponentError::Invalid(
                "time limits need a host created with deadlines on (`Limits::time_per_call`)"
                    .into(),
            ));
        }
        Ok(Self {
            shared: Arc::clone(&self.shared),
            limits,
        })
    }

    /// Reads, compiles and links the component at `path`.
    ///
    /// # Errors
    /// [`ComponentError::NotFound`] (with the command that builds it),
    /// [`ComponentError::Io`], or as [`ComponentHost::new`].
    pub fn from_file(path: &Path, limits: Limits) -> Result<Self, ComponentError> {
        Self::new(&read_component(path)?, limits).map_err(|e| from_path(e, path))
    }

    /// Loads the component from [`component_path`](super::component_path)
    /// (`$LEXECON_COMPONENT`, or `target/lexecon.wasm`).
    ///
    /// # Errors
    /// As [`ComponentHost::from_file`].
    pub fn load(limits: Limits) -> Result<Self, ComponentError> {
        Self::from_file(&super::component_path(), limits)
    }

    /// [`ComponentHost::load`] with the compilation cache of
    /// [`compile_cache_dir`](super::compile_cache_dir), when there is one.
    ///
    /// # Errors
    /// As [`ComponentHost::from_file`].
    pub fn load_cached(limits: Limits) -> Result<Self, ComponentError> {
        let path = super::component_path();
        let wasm = read_component(&path)?;
        match super::compile_cache_dir() {
            Some(dir) => Self::new_cached(&wasm, limits, &dir),
            None => Self::new(&wasm, limits),
        }
        .map_err(|e| from_path(e, &path))
    }

    /// The process-wide host for [`component_path`](super::component_path)
    /// with [`Limits::default`], compiled on first use (or taken from the
    /// compilation cache, see [`compile_cache_dir`](super::compile_cache_dir))
    /// and shared after; instances then cost microseconds. A failure is not
    /// cached: the next call tries again.
    ///
    /// # Errors
    /// As [`ComponentHost::load`].
    pub fn shared_default() -> Result<Self, ComponentError> {
        static HOST: OnceLock<ComponentHost> = OnceLock::new();
        if let Some(host) = HOST.get() {
            return Ok(host.clone());
        }
        let host = Self::load_cached(Limits::default())?;
        Ok(HOST.get_or_init(|| host).clone())
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Opens one node's engine over `storage`, signing with `signer`, with
    /// the wall clock and random source of `env`.
    ///
    /// # Errors
    /// What opening the ledger returns (storage errors, a stored policy that
    /// no longer loads), or a trap while opening.
    pub fn open(
        &self,
        config: NodeConfig,
        storage: Box<dyn Storage + Send>,
        signer: Box<dyn Signer + Send>,
        env: GuestEnv,
    ) -> Result<ComponentEngine, EngineError> {
        let public_key = signer.public_key();
        let ctx = Ctx {
            host: self.clone(),
            config: convert::node_config_to_wit(&config),
            env,
            last_fuel: Cell::new(None),
        };
        let live = ctx
            .instantiate(Backend { storage, signer })
            .map_err(|(_, e)| e)?;
        let engine = ComponentEngine {
            ctx,
            config,
            public_key,
            slot: RefCell::new(Slot::Live(live)),
            known: RefCell::new(Known::default()),
            restarts: 0,
        };
        // Fill in what the getters answer should the component go down.
        engine.head();
        engine.policy();
        Ok(engine)
    }

    /// A fresh instance from the pre-linked component, with nothing opened:
    /// the cost every restart pays before reading the ledger (for benches).
    ///
    /// # Errors
    /// When instantiation traps.
    pub fn instantiate_empty(&self) -> Result<(), ComponentError> {
        let backend = Backend {
            storage: Box::new(lexecon_core::MemoryStorage::new()),
            signer: Box::new(NoSigner),
        };
        let ctx = Ctx {
            host: self.clone(),
            config: convert::node_config_to_wit(&NodeConfig::default()),
            env: GuestEnv::system(),
            last_fuel: Cell::new(None),
        };
        let mut store = ctx.store(backend);
        ctx.set_budget(&mut store, self.limits.for_call());
        self.shared
            .pre
            .instantiate(&mut store)
            .map(|_| ())
            .map_err(|e| invalid(&e))
    }
}

/// `e`, naming the file the component was read from when it did not compile.
fn from_path(e: ComponentError, path: &Path) -> ComponentError {
    match e {
        ComponentError::Invalid(why) => {
            ComponentError::Invalid(format!("`{}`: {why}", path.display()))
        }
        other => other,
    }
}

/// The bytes of the component file at `path`.
fn read_component(path: &Path) -> Result<Vec<u8>, ComponentError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ComponentError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            ComponentError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// A signer for instances that never sign.
struct NoSigner;

impl Signer for NoSigner {
    fn sign(&self, _message: &[u8]) -> Result<[u8; 64], lexecon_core::signer::SignerError> {
        Err(lexecon_core::signer::SignerError("no key".into()))
    }

    fn public_key(&self) -> [u8; 32] {
        [0; 32]
    }
}

// ----- one node's engine -----

/// What a [`ComponentEngine`] needs to (re)create its instance.
struct Ctx {
    host: ComponentHost,
    config: wit::NodeConfig,
    env: GuestEnv,
    /// Fuel the last completed call used.
    last_fuel: Cell<Option<u64>>,
}

struct Live {
    store: Store<HostState>,
    api: Governance,
    governor: ResourceAny,
}

enum Slot {
    /// A working instance.
    Live(Box<Live>),
    /// No instance (the last one failed, and so did restarting it): the
    /// next call tries again.
    Down(Backend, EngineError),
    /// Only while switching between the two.
    Switching,
}

/// The last head and policy the component reported, for the getters of
/// [`DecisionEngine`] when the component cannot be asked.
#[derive(Default)]
struct Known {
    len: u64,
    head_hash: String,
    policy: Option<PolicyInfo>,
}

impl Ctx {
    fn store(&self, backend: Backend) -> Store<HostState> {
        let limiter = MemoryLimiter {
            max: self.host.limits.memory_bytes,
            peak: 0,
        };
        let state = HostState {
            wasi: self.env.wasi_ctx(),
            table: ResourceTable::new(),
            limiter,
            backend,
        };
        let mut store = Store::new(&self.host.shared.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
    }

    fn set_budget(&self, store: &mut Store<HostState>, budget: Budget) {
        if self.host.shared.fuel {
            // Cannot fail: the engine meters fuel.
            let _ = store.set_fuel(budget.fuel.unwrap_or(u64::MAX));
        }
        if self.host.shared.epochs {
            store.set_epoch_deadline(deadline_ticks(budget.time));
        }
    }

    fn record_fuel(&self, store: &Store<HostState>, budget: Budget) {
        if let (Some(given), Ok(left)) = (budget.fuel, store.get_fuel()) {
            self.last_fuel.set(Some(given.saturating_sub(left)));
        }
    }

    /// A fresh instance that has opened the ledger.
    fn instantiate(&self, mut backend: Backend) -> Result<Box<Live>, (Backend, EngineError)> {
        let entries = match backend.storage.len() {
            Ok(n) => n,
            Err(e) => return Err((backend, EngineError::Storage(e))),
        };
        let limits = self.host.limits;
        let mut store = self.store(backend);
        let budget = limits.for_reading(entries);
        self.set_budget(&mut store, budget);
        let api = match self.host.shared.pre.instantiate(&mut store) {
            Ok(api) => api,
            Err(e) => return Err((store.into_data().backend, trap_error(&e))),
        };
        let opened = api
            .lexecon_governance_engine()
            .governor()
            .call_open(&mut store, &self.config);
        self.record_fuel(&store, budget);
        match opened {
            Ok(Ok(governor)) => Ok(Box::new(Live {
                store,
                api,
                governor,
            })),
            Ok(Err(e)) => Err((store.into_data().backend, convert::engine_error_from_wit(e))),
            Err(e) => Err((store.into_data().backend, trap_error(&e))),
        }
    }

    /// Runs `f` against a live instance within `budget`; on a trap,
    /// discards the instance and starts a new one. Returns whether it
    /// restarted.
    fn call<R>(
        &self,
        slot: &mut Slot,
        budget: Budget,
        f: impl FnOnce(
            &mut Store<HostState>,
            &wit::GuestGovernor<'_>,
            ResourceAny,
        ) -> wasmtime::Result<R>,
    ) -> (Result<R, EngineError>, bool) {
        let mut restarted = self.revive(slot);
        let Slot::Live(live) = slot else {
            let err = match slot {
                Slot::Down(_, e) => e.clone(),
                _ => EngineError::Unavailable("the engine component is not running".into()),
            };
            return (Err(err), restarted);
        };
        self.set_budget(&mut live.store, budget);
        let api = live.api.lexecon_governance_engine().governor();
        let result = f(&mut live.store, &api, live.governor);
        self.record_fuel(&live.store, budget);
        match result {
            Ok(r) => (Ok(r), restarted),
            Err(trap) => {
                let err = trap_error(&trap);
                if let Slot::Live(dead) = std::mem::replace(slot, Slot::Switching) {
                    *slot = Slot::Down(dead.store.into_data().backend, err.clone());
                }
                // Restart now so that the next call finds a working engine;
                // if that fails too, the next call tries again.
                restarted |= self.revive(slot);
                (Err(err), restarted)
            }
        }
    }

    /// Starts an instance if there is none. Returns whether it did.
    fn revive(&self, slot: &mut Slot) -> bool {
        if !matches!(slot, Slot::Down(..)) {
            return false;
        }
        if let Slot::Down(backend, _) = std::mem::replace(slot, Slot::Switching) {
            *slot = match self.instantiate(backend) {
                Ok(live) => Slot::Live(live),
                Err((backend, e)) => Slot::Down(backend, e),
            };
        }
        matches!(slot, Slot::Live(_))
    }
}

/// One node's engine: the component in wasmtime over the host's storage and
/// signer. Implements [`DecisionEngine`], answering with `lexecon-core`'s
/// types exactly as [`NativeEngine`](crate::engine::NativeEngine) does.
pub struct ComponentEngine {
    ctx: Ctx,
    config: NodeConfig,
    public_key: [u8; 32],
    slot: RefCell<Slot>,
    known: RefCell<Known>,
    restarts: u64,
}

impl fmt::Debug for ComponentEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentEngine")
            .field("node_id", &self.config.node_id)
            .field("restarts", &self.restarts)
            .finish_non_exhaustive()
    }
}

fn flatten<T, E>(
    r: Result<Result<T, E>, EngineError>,
    map: impl FnOnce(E) -> EngineError,
) -> Result<T, EngineError> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map(e)),
        Err(e) => Err(e),
    }
}

impl ComponentEngine {
    fn call_mut<R>(
        &mut self,
        budget: Budget,
        f: impl FnOnce(
            &mut Store<HostState>,
            &wit::GuestGovernor<'_>,
            ResourceAny,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, EngineError> {
        let (r, restarted) = self.ctx.call(self.slot.get_mut(), budget, f);
        self.restarts += u64::from(restarted);
        r
    }

    /// For the `&self` getters: no restart counting, cached answer when the
    /// component cannot be asked.
    fn call_ref<R>(
        &self,
        f: impl FnOnce(
            &mut Store<HostState>,
            &wit::GuestGovernor<'_>,
            ResourceAny,
        ) -> wasmtime::Result<R>,
    ) -> Option<R> {
        let mut slot = self.slot.try_borrow_mut().ok()?;
        // Getters do not count as "the last call" for `last_call_fuel`.
        let last_fuel = self.ctx.last_fuel.get();
        let answer = self
            .ctx
            .call(&mut slot, self.ctx.host.limits.for_call(), f)
            .0
            .ok();
        self.ctx.last_fuel.set(last_fuel);
        answer
    }

    fn limits(&self) -> Limits {
        self.ctx.host.limits
    }

    /// The node's settings.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The fuel the last call into the component used (`None` when fuel is
    /// off). For sizing [`Limits`].
    pub fn last_call_fuel(&self) -> Option<u64> {
        self.ctx.last_fuel.get()
    }

    /// The most linear memory the current instance has used, in bytes.
    pub fn memory_peak(&self) -> usize {
        match self.slot.try_borrow() {
            Ok(slot) => match &*slot {
                Slot::Live(live) => live.store.data().limiter.peak,
                _ => 0,
            },
            Err(_) => 0,
        }
    }

    /// How many times the component was discarded and started again after
    /// a trap or a limit hit.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Decides one request; returns once its ledger entry is durable.
    ///
    /// # Errors
    /// `EngineError::Request` for an invalid request; storage and signer
    /// failures and component traps (answer those with a denial).
    pub fn decide(&mut self, request: &DecisionRequest) -> Result<Decision, EngineError> {
        let req = convert::request_to_wit(request);
        let budget = self.limits().for_requests(1);
        let r = self.call_mut(budget, |store, gov, this| {
            gov.call_decide(store, this, &req)
        });
        let decision =
            flatten(r, convert::engine_error_from_wit).map(convert::decision_from_wit)?;
        self.saw_decision(&decision);
        Ok(decision)
    }

    /// Verifies a capability token with this node's key at the component's
    /// current time.
    ///
    /// # Errors
    /// The [`TokenError`]; a component failure is reported as a malformed
    /// token (fail closed).
    pub fn verify_token(
        &mut self,
        token: &str,
        expect: Expect<'_>,
    ) -> Result<TokenClaims, TokenError> {
        let (tool, actor) = (expect.tool, expect.actor);
        let budget = self.limits().for_call();
        match self.call_mut(budget, |store, gov, this| {
            gov.call_verify_token(store, this, token, tool, actor)
        }) {
            Ok(r) => r
                .map(convert::claims_from_wit)
                .map_err(convert::token_error_from_wit),
            Err(e) => Err(TokenError::Malformed(format!("could not be checked: {e}"))),
        }
    }

    /// Verifies the whole stored ledger and reports the first bad entry.
    ///
    /// # Errors
    /// Storage errors; component traps.
    pub fn verify_ledger(&mut self) -> Result<VerifyReport, EngineError> {
        let entries = self.stored_len();
        let budget = self.limits().for_reading(entries);
        let r = self.call_mut(budget, |store, gov, this| {
            gov.call_verify_ledger(store, this)
        });
        flatten(r, convert::engine_error_from_wit).map(convert::report_from_wit)
    }

    /// The ledger entry at `index`, with its stored bytes.
    ///
    /// # Errors
    /// Storage errors; an entry that does not parse; component traps.
    pub fn entry(&mut self, index: u64) -> Result<Option<StoredEntry>, EngineError> {
        let budget = self.limits().for_call();
        let r = self.call_mut(budget, |store, gov, this| {
            gov.call_entry(store, this, index)
        });
        flatten(r, convert::engine_error_from_wit)?
            .map(convert::entry_from_wit)
            .transpose()
    }

    /// The ledger entry whose hash is `entry_hash`, with its stored bytes.
    ///
    /// # Errors
    /// As [`ComponentEngine::entry`].
    pub fn entry_by_hash(&mut self, entry_hash: &str) -> Result<Option<StoredEntry>, EngineError> {
        let budget = self.limits().for_call();
        let r = self.call_mut(budget, |store, gov, this| {
            gov.call_entry_by_hash(store, this, entry_hash)
        });
        flatten(r, convert::engine_error_from_wit)?
            .map(convert::entry_from_wit)
            .transpose()
    }

    /// Reads and applies entries that other writers appended.
    ///
    /// # Errors
    /// Storage errors, entries that do not link, component traps.
    pub fn catch_up(&mut self) -> Result<(), EngineError> {
        let known = self.known.borrow().len;
        let new = self.stored_len().saturating_sub(known);
        let budget = self.limits().for_reading(new);
        let r = self.call_mut(budget, |store, gov, this| gov.call_catch_up(store, this));
        flatten(r, convert::engine_error_from_wit)
    }

    /// The node's key id (`ed25519:…`).
    pub fn key_id(&self) -> String {
        lexecon_core::signer::key_id(&self.public_key)
    }

    fn head(&self) -> (u64, String) {
        match self.call_ref(|store, gov, this| gov.call_head(store, this)) {
            Some(head) => {
                let mut known = self.known.borrow_mut();
                known.len = head.len;
                known.head_hash.clone_from(&head.head_hash);
                (head.len, head.head_hash)
            }
            None => {
                let known = self.known.borrow();
                (known.len, known.head_hash.clone())
            }
        }
    }

    /// The number of entries in storage, asked of storage directly (for
    /// budgets; 0 when storage cannot say).
    fn stored_len(&mut self) -> u64 {
        let storage = match self.slot.get_mut() {
            Slot::Live(live) => &mut live.store.data_mut().backend.storage,
            Slot::Down(backend, _) => &mut backend.storage,
            Slot::Switching => return 0,
        };
        storage.len().unwrap_or(0)
    }

    /// Remembers the head after decisions were recorded.
    fn saw_decision(&self, d: &Decision) {
        let mut known = self.known.borrow_mut();
        if d.ledger_index >= known.len {
            known.len = d.ledger_index + 1;
            known.head_hash.clone_from(&d.ledger_entry_hash);
        }
    }
}

impl DecisionEngine for ComponentEngine {
    fn load_policy(&mut self, policy_json: &str) -> Result<PolicyLoaded, EngineError> {
        let budget = self.limits().for_policy(policy_json.len() as u64);
        let r = self.call_mut(budget, |store, gov, this| {
            gov.call_load_policy(store, this, policy_json)
        });
        let loaded = flatten(r, convert::engine_error_from_wit)?;
        {
            let mut known = self.known.borrow_mut();
            if loaded.recorded && loaded.ledger_index >= known.len {
                known.len = loaded.ledger_index + 1;
                known.head_hash.clone_from(&loaded.ledger_entry_hash);
            }
            known.policy = Some(convert::policy_info_from_wit(loaded.policy.clone()));
        }
        Ok(convert::policy_loaded_from_wit(loaded))
    }

    fn decide_batch(
        &mut self,
        requests: &[DecisionRequest],
    ) -> Result<Vec<Result<Decision, RequestError>>, EngineError> {
        // The core refuses these too; refusing here keeps a huge batch from
        // being copied into the sandbox first.
        if requests.len() > MAX_BATCH {
            return Err(EngineError::BatchTooLarge(requests.len()));
        }
        let reqs: Vec<wit::DecisionRequest> =
            requests.iter().map(convert::request_to_wit).collect();
        let budget = self.limits().for_requests(requests.len() as u64);
        let r = self.call_mut(budget, |store, gov, this| {
            gov.call_decide_batch(store, this, &reqs)
        });
        let results: Vec<_> = flatten(r, convert::engine_error_from_wit)?
            .into_iter()
            .map(|r| {
                r.map(convert::decision_from_wit)
                    .map_err(convert::request_error_from_wit)
            })
            .collect();
        if let Some(last) = results.iter().rev().find_map(|r| r.as_ref().ok()) {
            self.saw_decision(last);
        }
        Ok(results)
    }

    fn policy(&self) -> Option<PolicyInfo> {
        match self.call_ref(|store, gov, this| gov.call_policy(store, this)) {
            Some(policy) => {
                let policy = policy.map(convert::policy_info_from_wit);
                self.known.borrow_mut().policy.clone_from(&policy);
                policy
            }
            None => self.known.borrow().policy.clone(),
        }
    }

    fn ledger_len(&self) -> u64 {
        self.head().0
    }

    fn head_hash(&self) -> String {
        self.head().1
    }

    fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    fn catch_up(&mut self) -> Result<(), EngineError> {
        ComponentEngine::catch_up(self)
    }
}
