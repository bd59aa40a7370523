//! The engine as a WASI component, run inside wasmtime.
//!
//! Production runs `lexecon-core` compiled to one `.wasm` component
//! (`lexecon:governance@0.1.0`, see `wit/lexecon.wit`) so that the policy
//! engine is sandboxed: it reaches the world only through two imports the
//! host supplies, `storage` (the ledger) and `signer` (the node's key, which
//! never enters the sandbox), plus a WASI wall clock and random generator.
//! It gets no filesystem, sockets, environment or arguments.
//!
//! - [`ComponentHost`] compiles the component once, links it once
//!   (`instantiate_pre`) and hands out engines.
//! - [`ComponentEngine`] is one node's engine over any
//!   [`Storage`](lexecon_core::Storage) and [`Signer`](lexecon_core::Signer):
//!   it implements [`DecisionEngine`](crate::engine::DecisionEngine) like
//!   [`NativeEngine`](crate::engine::NativeEngine) and answers with the same
//!   `lexecon-core` types.
//! - Every call runs in a bounded [`Store`](wasmtime::Store) (a wall-clock
//!   deadline, optionally fuel, and a memory limit, see [`Limits`]). A trap
//!   or a limit hit is an error for that call only: the instance is
//!   discarded, a fresh one is made from the pre-linked component and
//!   re-opens the ledger from storage, which stays the truth. A decision
//!   that could not be made is an error, never an allow: callers answer it
//!   with a denial.
//!
//! # Where the component comes from
//!
//! `scripts/build-component.sh` builds it
//! (`cargo build -p lexecon-component --target wasm32-wasip2 --profile
//! wasm-release`) and copies it to `target/lexecon.wasm` at the workspace
//! root ([`DEFAULT_COMPONENT_PATH`]); `scripts/quickstart.sh` and
//! `scripts/test.sh` run it first. It is loaded at run time, not embedded,
//! so the host builds without a wasm toolchain. [`component_path`] says where
//! it is looked for (`LEXECON_COMPONENT` first).
//!
//! # Example
//!
//! ```no_run
//! use lexecon::component::{ComponentHost, GuestEnv, Limits};
//! use lexecon::engine::DecisionEngine;
//! use lexecon_core::{DecisionRequest, Ed25519Signer, MemoryStorage, NodeConfig};
//!
//! let host = ComponentHost::load(Limits::default())?;
//! let mut engine = host.open(
//!     NodeConfig::default(),
//!     Box::new(MemoryStorage::new()),
//!     Box::new(Ed25519Signer::from_seed(&[7; 32])),
//!     GuestEnv::system(),
//! )?;
//! engine.load_policy(r#"{"name": "open", "mode": "permissive"}"#)?;
//! let d = engine.decide(&DecisionRequest::new("model", "Search", "web_search", "Research", 1))?;
//! assert!(d.allowed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bindings;
mod convert;
mod host;
mod wasi;

pub use self::convert::StoredEntry;
pub use self::host::{
    ComponentEngine, ComponentError, ComponentHost, DEFAULT_FUEL_PER_CALL, EPOCH_TICK, Limits,
};
pub use self::wasi::GuestEnv;

use std::path::PathBuf;

/// Where `scripts/build-component.sh` puts the component, relative to the
/// workspace root.
pub const DEFAULT_COMPONENT_PATH: &str = "target/lexecon.wasm";

/// The environment variable that sets the compilation cache's directory;
/// `off` turns the cache off.
pub const COMPILE_CACHE_ENV: &str = "LEXECON_COMPILE_CACHE";

/// Where compiled engine code is cached between processes: the directory in
/// `$LEXECON_COMPILE_CACHE` (`off` for none), else
/// `$XDG_CACHE_HOME/lexecon/wasmtime`, else `~/.cache/lexecon/wasmtime`.
///
/// The cache is wasmtime's own: entries are keyed by a hash of the component
/// and of the compiler settings, so a rebuilt component or a new wasmtime
/// never reuses stale code. It holds native code that this process will run,
/// so it must be writable only by the user who runs Lexecon (the same trust
/// as the binary itself).
pub fn compile_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    match var(COMPILE_CACHE_ENV) {
        Some(v) if v == "off" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("lexecon").join("wasmtime")),
    }
}

/// The component's file name.
pub const COMPONENT_FILE_NAME: &str = "lexecon.wasm";

/// The environment variable that overrides [`DEFAULT_COMPONENT_PATH`].
pub const COMPONENT_PATH_ENV: &str = "LEXECON_COMPONENT";

/// The component's path, the first of:
///
/// 1. `$LEXECON_COMPONENT`, when set (used as given, even if missing);
/// 2. `lexecon.wasm` beside the running executable, or one directory up
///    (`target/release/lexecon` finds `target/lexecon.wasm`, wherever the
///    target directory is; an installed `bin/lexecon` finds `lexecon.wasm`
///    next to it), or in `../lib/lexecon/` (an installed
///    `/usr/local/bin/lexecon` finds `/usr/local/lib/lexecon/lexecon.wasm`);
/// 3. `target/lexecon.wasm` in the source tree this crate was built from.
///
/// When none exists, the last is returned so the error names the path that
/// `scripts/build-component.sh` writes.
pub fn component_path() -> PathBuf {
    if let Some(path) = std::env::var_os(COMPONENT_PATH_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let beside_exe = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?.to_path_buf();
        let up = dir.parent().map(|d| d.join(COMPONENT_FILE_NAME));
        let lib = dir
            .parent()
            .map(|d| d.join("lib").join("lexecon").join(COMPONENT_FILE_NAME));
        [Some(dir.join(COMPONENT_FILE_NAME)), up, lib]
            .into_iter()
            .flatten()
            .find(|p| p.is_file())
    });
    beside_exe.unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(DEFAULT_COMPONENT_PATH)
    })
}
