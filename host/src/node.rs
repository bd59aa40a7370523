//! A node on disk and how to open its engine.
//!
//! A node lives in `$LEXECON_HOME/nodes/<node-id>/` (default
//! `LEXECON_HOME=~/.lexecon`):
//!
//! ```text
//! config.yaml           the node's configuration (see `crate::config`)
//! keys/private_key.pem  Ed25519, PKCS#8 PEM, mode 0600
//! keys/public_key.pem   Ed25519, SPKI PEM
//! ledger.db             the audit ledger (file storage)
//! policies/             copies of policy files loaded with `lexecon policy load`
//! ```
//!
//! The ledger is the authority on policies: every load is a `policy_load`
//! entry holding the whole policy, and the engine restores the latest one
//! when it opens. The copies under `policies/` only remember which file a
//! policy came from, so `lexecon policy show --name <file stem>` works.
//!
//! [`open_engine`] is the one place that decides how the engine runs: as the
//! WASI component, inside wasmtime.

use std::fmt;
use std::path::{Path, PathBuf};

use lexecon_core::Ed25519Signer;
use lexecon_core::engine::{EngineError, NodeConfig};
use lexecon_core::ledger::Entry;
use lexecon_core::policy::{Mode, Policy, PolicyError};
use lexecon_core::storage::{EntryRecord, MemoryStorage, Storage, StorageError};

use crate::component::{ComponentHost, GuestEnv};
use crate::config::{Config, ConfigError, StorageKind};
use crate::engine::DecisionEngine;
use crate::keys::{self, KeyError};
use crate::storage::file::{FileStorage, FileStorageError, Recovery};
use crate::storage::postgres::PostgresStorage;

/// The environment variable naming Lexecon's home directory.
pub const HOME_ENV: &str = "LEXECON_HOME";

/// Why a node could not be found, created or opened.
#[derive(Debug)]
pub enum NodeError {
    /// `LEXECON_HOME` and `HOME` are both unset.
    NoHome,
    /// The node id is not acceptable.
    BadNodeId(String),
    /// No node was named and the choice is not obvious.
    Ambiguous(String),
    /// The node does not exist.
    NotFound {
        /// The node id.
        node_id: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// `lexecon init` would overwrite a node.
    Exists {
        /// The node's directory.
        dir: PathBuf,
    },
    /// The configuration is not usable.
    Config(ConfigError),
    /// The configuration belongs to another node.
    Mismatch(String),
    /// A key file.
    Key(KeyError),
    /// The ledger file.
    File(FileStorageError),
    /// The PostgreSQL ledger.
    Postgres(String),
    /// The engine refused to open.
    Engine(EngineError),
    /// The engine's runtime could not start (the WASI component, wasmtime).
    EngineRuntime(String),
    /// The node's file ledger is not there (deleted, an unmounted volume, a
    /// mistyped `ledger.path`): starting an empty one would lose its history.
    LedgerMissing {
        /// The node id.
        node_id: String,
        /// Where the ledger should be.
        path: PathBuf,
    },
    /// Any other file-system failure.
    Io(String),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHome => write!(
                f,
                "neither {HOME_ENV} nor HOME is set; set {HOME_ENV} to the directory that holds `nodes/`"
            ),
            Self::BadNodeId(m)
            | Self::Ambiguous(m)
            | Self::Mismatch(m)
            | Self::Postgres(m)
            | Self::Io(m) => f.write_str(m),
            Self::NotFound { node_id, dir } => write!(
                f,
                "node `{node_id}` does not exist (no `{}`); create it with `lexecon init --node-id {node_id}` or check {HOME_ENV}",
                dir.display()
            ),
            Self::Exists { dir } => write!(
                f,
                "node directory `{}` already exists; pass --force to replace it (its keys and ledger are deleted)",
                dir.display()
            ),
            Self::Config(e) => write!(f, "{e}"),
            Self::Key(e) => write!(f, "{e}"),
            Self::File(e) => write!(f, "{e}"),
            Self::LedgerMissing { node_id, path } => write!(
                f,
                "ledger file `{}` does not exist: `lexecon init` created it, so this node's history is missing (a deleted file, an unmounted volume, a mistyped `ledger.path`?). Restore it; to start node `{node_id}` over with an empty ledger there on purpose, run `lexecon ledger create --node-id {node_id}`",
                path.display()
            ),
            Self::Engine(e) => write!(f, "cannot open the ledger: {e}"),
            Self::EngineRuntime(e) => write!(f, "cannot start the engine: {e}"),
        }
    }
}

impl std::error::Error for NodeError {}

impl From<ConfigError> for NodeError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}
impl From<KeyError> for NodeError {
    fn from(e: KeyError) -> Self {
        Self::Key(e)
    }
}
impl From<FileStorageError> for NodeError {
    fn from(e: FileStorageError) -> Self {
        Self::File(e)
    }
}
impl From<EngineError> for NodeError {
    fn from(e: EngineError) -> Self {
        Self::Engine(e)
    }
}

/// `$LEXECON_HOME`, or `~/.lexecon`.
///
/// # Errors
/// [`NodeError::NoHome`] when neither variable is set.
pub fn lexecon_home() -> Result<PathBuf, NodeError> {
    if let Some(h) = std::env::var_os(HOME_ENV).filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".lexecon"))
        .ok_or(NodeError::NoHome)
}

/// Checks a node id: the core's rule, which the npm package applies too.
pub use lexecon_core::engine::check_node_id;

/// The files of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    /// `$LEXECON_HOME/nodes/<id>`.
    pub dir: PathBuf,
    /// `config.yaml`.
    pub config: PathBuf,
    /// `keys/`.
    pub keys_dir: PathBuf,
    /// `keys/private_key.pem`.
    pub private_key: PathBuf,
    /// `keys/public_key.pem`.
    pub public_key: PathBuf,
    /// `policies/`.
    pub policies_dir: PathBuf,
    /// `server.url`: `<pid> <url>` of the `lexecon server` serving the node,
    /// while it runs: the address it bound, which `--host`, `--port` or
    /// port 0 make differ from the configuration.
    pub server_url: PathBuf,
}

impl NodePaths {
    /// The paths of node `id` under `home`.
    pub fn new(home: &Path, id: &str) -> Self {
        let dir = home.join("nodes").join(id);
        let keys_dir = dir.join("keys");
        Self {
            config: dir.join("config.yaml"),
            private_key: keys_dir.join("private_key.pem"),
            public_key: keys_dir.join("public_key.pem"),
            policies_dir: dir.join("policies"),
            server_url: dir.join("server.url"),
            keys_dir,
            dir,
        }
    }
}

/// The nodes under `home`, sorted.
pub fn list_nodes(home: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(home.join("nodes"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| {
                    e.path().join("config.yaml").is_file() || e.path().join("keys").is_dir()
                })
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The node to use: `requested`, or the only node under `home`.
///
/// # Errors
/// [`NodeError::Ambiguous`] when none or several exist.
pub fn resolve_node_id(home: &Path, requested: Option<&str>) -> Result<String, NodeError> {
    if let Some(id) = requested {
        check_node_id(id).map_err(NodeError::BadNodeId)?;
        return Ok(id.to_string());
    }
    let nodes = list_nodes(home);
    match nodes.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(NodeError::Ambiguous(format!(
            "no node exists under `{}`; create one with `lexecon init --node-id NAME` (or set {HOME_ENV})",
            home.join("nodes").display()
        ))),
        many => Err(NodeError::Ambiguous(format!(
            "several nodes exist under `{}` ({}); choose one with --node-id",
            home.join("nodes").display(),
            many.join(", ")
        ))),
    }
}

/// What `lexecon init` made.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The node's files.
    pub paths: NodePaths,
    /// The ledger file.
    pub ledger: PathBuf,
    /// The new key's id (`ed25519:…`).
    pub key_id: String,
}

/// Creates node `id` under `home`: directory, `config.yaml`, keys, empty
/// ledger. An existing node is replaced only with `force`, and never while
/// a server holds its ledger. `config` is the configuration's text and
/// where it came from (named in its errors); the default when absent.
///
/// # Errors
/// [`NodeError::Exists`] without `force`; file-system and key errors.
pub fn init_node(
    home: &Path,
    id: &str,
    force: bool,
    config: Option<(&str, &str)>,
) -> Result<Initialized, NodeError> {
    check_node_id(id).map_err(NodeError::BadNodeId)?;
    let paths = NodePaths::new(home, id);
    let io = |what: &str, p: &Path, e: std::io::Error| {
        NodeError::Io(format!("cannot {what} `{}`: {e}", p.display()))
    };
    let (config_text, source) = config.map_or_else(
        || (crate::config::default_config_yaml(id), "config.yaml"),
        |(text, source)| (text.to_string(), source),
    );
    let config = Config::parse(&config_text, source)?;
    if let Some(cid) = config.node_id.as_deref().filter(|c| *c != id) {
        return Err(NodeError::Mismatch(format!(
            "the configuration is for node `{cid}`, not `{id}`"
        )));
    }
    if paths.dir.exists() {
        if !force {
            return Err(NodeError::Exists { dir: paths.dir });
        }
        let ledger = existing_ledger_path(&paths);
        if ledger.exists() {
            // Refuse while a server holds the ledger; the handle is dropped at once.
            drop(FileStorage::open(&ledger)?);
        }
        std::fs::remove_dir_all(&paths.dir).map_err(|e| io("remove", &paths.dir, e))?;
    }
    let ledger = config.ledger_path(&paths.dir);
    if config.ledger.storage == StorageKind::File && ledger.exists() {
        return Err(NodeError::Io(format!(
            "ledger file `{}` already exists outside the node directory; a new node starts a new ledger: remove it or change `ledger.path`",
            ledger.display()
        )));
    }
    std::fs::create_dir_all(&paths.keys_dir).map_err(|e| io("create", &paths.keys_dir, e))?;
    std::fs::create_dir_all(&paths.policies_dir)
        .map_err(|e| io("create", &paths.policies_dir, e))?;
    let signer = keys::generate(&paths.private_key, &paths.public_key)?;
    std::fs::write(&paths.config, &config_text).map_err(|e| io("write", &paths.config, e))?;
    if config.ledger.storage == StorageKind::File {
        if let Some(dir) = ledger.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        }
        drop(FileStorage::open(&ledger)?);
    }
    use lexecon_core::Signer as _;
    Ok(Initialized {
        key_id: signer.key_id(),
        paths,
        ledger,
    })
}

fn existing_ledger_path(paths: &NodePaths) -> PathBuf {
    Config::load(&paths.config).map_or_else(
        |_| paths.dir.join("ledger.db"),
        |c| c.ledger_path(&paths.dir),
    )
}

/// An opened node: its id, files and configuration (environment overrides applied).
#[derive(Debug, Clone)]
pub struct Node {
    /// The node id.
    pub id: String,
    /// Its files.
    pub paths: NodePaths,
    /// The configuration file that was read.
    pub config_file: PathBuf,
    /// The configuration.
    pub config: Config,
}

/// Finds and reads a node: `node_id` (or the config file's `node_id`, or the
/// only node), with `config_file` instead of the node's `config.yaml` when given.
///
/// # Errors
/// See [`NodeError`].
pub fn open_node(
    home: &Path,
    node_id: Option<&str>,
    config_file: Option<&Path>,
) -> Result<Node, NodeError> {
    let explicit = match config_file {
        Some(path) => Some(Config::load(path)?),
        None => None,
    };
    let requested = node_id.or_else(|| explicit.as_ref().and_then(|c| c.node_id.as_deref()));
    let id = resolve_node_id(home, requested)?;
    let paths = NodePaths::new(home, &id);
    if !paths.dir.is_dir() {
        return Err(NodeError::NotFound {
            node_id: id,
            dir: paths.dir,
        });
    }
    let (mut config, config_file) = match explicit {
        Some(c) => (c, config_file.map(Path::to_path_buf).unwrap_or_default()),
        None => (Config::load(&paths.config)?, paths.config.clone()),
    };
    config.apply_env(|k| std::env::var(k).ok())?;
    config.resolve_paths(&paths.dir);
    if let Some(cid) = &config.node_id
        && *cid != id
    {
        return Err(NodeError::Mismatch(format!(
            "config `{}` is for node `{cid}`, not `{id}`; pass the matching --node-id or --config",
            config_file.display()
        )));
    }
    Ok(Node {
        id,
        paths,
        config_file,
        config,
    })
}

/// Whether a ledger is opened for writing (taking the file lock) or reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads and appends; a file ledger is locked against other writers.
    ReadWrite,
    /// Reads only; works while a server holds the ledger.
    ReadOnly,
}

/// The ledger backends behind one type.
#[derive(Debug)]
pub enum LedgerStorage {
    /// The embedded file ledger.
    File(FileStorage),
    /// PostgreSQL.
    Postgres(Box<PostgresStorage>),
    /// In memory (tests, `--ephemeral` experiments).
    Memory(MemoryStorage),
}

impl LedgerStorage {
    /// `file`, `postgresql` or `memory`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::File(_) => "file",
            Self::Postgres(_) => "postgresql",
            Self::Memory(_) => "memory",
        }
    }
}

impl Storage for LedgerStorage {
    fn len(&mut self) -> Result<u64, StorageError> {
        match self {
            Self::File(s) => Storage::len(s),
            Self::Postgres(s) => s.len(),
            Self::Memory(s) => s.len(),
        }
    }
    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        match self {
            Self::File(s) => Storage::get(s, index),
            Self::Postgres(s) => s.get(index),
            Self::Memory(s) => s.get(index),
        }
    }
    fn get_range(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        match self {
            Self::File(s) => Storage::get_range(s, start, end),
            Self::Postgres(s) => s.get_range(start, end),
            Self::Memory(s) => s.get_range(start, end),
        }
    }
    /// The backend's answer, checked against the entry it names: a hash
    /// index (a file record's header, a database column) is not covered by
    /// the chain's hashes, so an altered index must not vouch for an entry
    /// (`ledger verify --expect-head`, `GET /ledger/entries/{hash}`).
    fn find(&mut self, entry_hash: &str) -> Result<Option<u64>, StorageError> {
        let found = match self {
            Self::File(s) => Storage::find(s, entry_hash),
            Self::Postgres(s) => s.find(entry_hash),
            Self::Memory(s) => s.find(entry_hash),
        }?;
        let Some(index) = found else {
            return Ok(None);
        };
        let corrupt = |detail: String| StorageError::Corrupt { index, detail };
        let bytes = self.get(index)?.ok_or_else(|| {
            corrupt(format!(
                "the ledger's hash index gives entry {index} for hash {entry_hash}, but there is no entry {index}"
            ))
        })?;
        let entry = Entry::parse(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if entry.entry_hash != entry_hash || entry.index != index {
            return Err(corrupt(format!(
                "the ledger's hash index gives entry {index} for hash {entry_hash}, but that entry is #{} with hash {}: the index was altered",
                entry.index, entry.entry_hash
            )));
        }
        Ok(Some(index))
    }
    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        match self {
            Self::File(s) => Storage::append(s, entries),
            Self::Postgres(s) => s.append(entries),
            Self::Memory(s) => s.append(entries),
        }
    }
}

impl Node {
    /// Records that this process serves the node at `url`, for the CLI's
    /// hints while the server holds the ledger.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn record_server_url(&self, url: &str) -> std::io::Result<()> {
        let tmp = self.paths.server_url.with_extension("url.tmp");
        std::fs::write(&tmp, format!("{} {url}\n", std::process::id()))?;
        std::fs::rename(&tmp, &self.paths.server_url)
    }

    /// Removes the record [`Node::record_server_url`] made, if it is this
    /// process's.
    pub fn forget_server_url(&self) {
        if self.server_url_of(std::process::id()).is_some() {
            let _ = std::fs::remove_file(&self.paths.server_url);
        }
    }

    /// The URL that the server running as process `pid` recorded; `None`
    /// when it recorded none (a record left by another process is stale).
    pub fn server_url_of(&self, pid: u32) -> Option<String> {
        let text = std::fs::read_to_string(&self.paths.server_url).ok()?;
        let (recorded, url) = text.trim_end().split_once(' ')?;
        (recorded.parse::<u32>().ok()? == pid).then(|| url.to_string())
    }

    /// The ledger file (file storage).
    pub fn ledger_path(&self) -> PathBuf {
        self.config.ledger_path(&self.paths.dir)
    }

    /// A short description of where the ledger is, without secrets.
    pub fn ledger_location(&self) -> String {
        match self.config.ledger.storage {
            StorageKind::File => format!("file `{}`", self.ledger_path().display()),
            StorageKind::Postgresql => "postgresql".to_string(),
        }
    }

    /// Opens the ledger. A writable file ledger reports what crash recovery
    /// did; a read-only one never changes the file.
    ///
    /// # Errors
    /// [`NodeError::File`] (for instance `Locked` while a server runs) or
    /// [`NodeError::Postgres`].
    pub fn open_storage(
        &self,
        access: Access,
    ) -> Result<(LedgerStorage, Option<Recovery>), NodeError> {
        match self.config.ledger.storage {
            StorageKind::File => {
                let path = self.ledger_path();
                if access == Access::ReadWrite && !path.exists() {
                    return Err(NodeError::LedgerMissing {
                        node_id: self.id.clone(),
                        path,
                    });
                }
                let (s, r) = match access {
                    Access::ReadWrite => FileStorage::open(&path)?,
                    Access::ReadOnly => FileStorage::open_read_only(&path)?,
                };
                Ok((LedgerStorage::File(s), Some(r)))
            }
            StorageKind::Postgresql => {
                let conn = self
                    .config
                    .ledger
                    .connection_string
                    .as_deref()
                    .unwrap_or_default();
                let s = PostgresStorage::connect(conn).map_err(|e| {
                    NodeError::Postgres(format!("cannot open the PostgreSQL ledger: {e}"))
                })?;
                Ok((LedgerStorage::Postgres(Box::new(s)), None))
            }
        }
    }

    /// Creates the node's empty file ledger where its configuration puts
    /// it (`lexecon ledger create`), for a node whose ledger is missing on
    /// purpose. Refuses when one is there.
    ///
    /// # Errors
    /// [`NodeError::Io`] when the ledger exists or is not a file ledger;
    /// file-system errors.
    pub fn create_ledger(&self) -> Result<PathBuf, NodeError> {
        if self.config.ledger.storage != StorageKind::File {
            return Err(NodeError::Io(format!(
                "node `{}` keeps its ledger in PostgreSQL, which creates its table when a server first connects; there is no file to create",
                self.id
            )));
        }
        let path = self.ledger_path();
        if path.exists() {
            return Err(NodeError::Io(format!(
                "ledger file `{}` already exists; nothing was changed",
                path.display()
            )));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| NodeError::Io(format!("cannot create `{}`: {e}", dir.display())))?;
        }
        drop(FileStorage::open(&path)?);
        Ok(path)
    }

    /// The node's signing key.
    ///
    /// # Errors
    /// [`NodeError::Key`].
    pub fn signer(&self) -> Result<Ed25519Signer, NodeError> {
        Ok(keys::load_signer(
            &self.paths.private_key,
            &self.paths.public_key,
        )?)
    }

    /// The node's public key.
    ///
    /// # Errors
    /// [`NodeError::Key`].
    pub fn public_key(&self) -> Result<[u8; 32], NodeError> {
        Ok(keys::load_public_key(&self.paths.public_key)?)
    }

    /// The engine's settings from the configuration.
    pub fn engine_config(&self) -> NodeConfig {
        NodeConfig {
            node_id: self.id.clone(),
            default_token_ttl: self.config.capability.default_ttl,
            max_token_ttl: self.config.capability.max_ttl,
        }
    }

    /// Opens the ledger for writing and the engine over it (CLI commands
    /// that record something).
    ///
    /// # Errors
    /// See [`NodeError`]; a running server makes a file ledger `Locked`.
    pub fn open_engine(&self) -> Result<Box<dyn DecisionEngine>, NodeError> {
        let signer = self.signer()?;
        let (storage, _) = self.open_storage(Access::ReadWrite)?;
        open_engine(self.engine_config(), signer, storage)
    }

    /// Checks a policy and applies `policy.default_mode` (see [`prepare_policy`]).
    ///
    /// # Errors
    /// The policy's [`PolicyError`].
    pub fn prepare_policy(&self, text: &str) -> Result<(String, Policy), PolicyError> {
        prepare_policy(text, self.config.policy.default_mode)
    }
}

/// Opens the engine that decides for this node over `storage`: **the one
/// place that chooses how the engine runs**. It runs as the WASI component
/// inside wasmtime ([`ComponentHost::shared_default`]: compiled once per
/// process, a fresh sandboxed instance per engine); the node's key stays
/// here, in the host, behind the component's `signer` import.
///
/// # Errors
/// [`NodeError::EngineRuntime`] when the component cannot be found or
/// compiled (the message says how to build it); [`NodeError::Engine`] for
/// storage errors or a stored policy that no longer loads.
pub fn open_engine(
    config: NodeConfig,
    signer: Ed25519Signer,
    storage: LedgerStorage,
) -> Result<Box<dyn DecisionEngine>, NodeError> {
    let host =
        ComponentHost::shared_default().map_err(|e| NodeError::EngineRuntime(e.to_string()))?;
    let engine = host.open(
        config,
        Box::new(storage),
        Box::new(signer),
        GuestEnv::system(),
    )?;
    Ok(Box::new(engine))
}

/// Parses and checks a policy; when the document sets no `mode` and
/// `default_mode` is not the core's default (strict), writes the mode into
/// the document so the ledger records the mode the policy runs in.
///
/// Returns the text to load and the parsed policy.
///
/// # Errors
/// The policy's [`PolicyError`] (path, line, column).
pub fn prepare_policy(text: &str, default_mode: Mode) -> Result<(String, Policy), PolicyError> {
    let policy = Policy::parse(text)?;
    if default_mode == Mode::default() {
        return Ok((text.to_string(), policy));
    }
    let mut doc: serde_json::Value = serde_json::from_str(text).map_err(|e| PolicyError {
        path: "policy".into(),
        message: e.to_string(),
        line: Some(e.line()),
        column: Some(e.column()),
    })?;
    match doc.as_object_mut() {
        Some(obj) if !obj.contains_key("mode") => {
            obj.insert(
                "mode".into(),
                serde_json::Value::from(default_mode.as_str()),
            );
            let text = serde_json::to_string_pretty(&doc).map_err(|e| PolicyError {
                path: "policy".into(),
                message: e.to_string(),
                line: None,
                column: None,
            })?;
            let policy = Policy::parse(&text)?;
            Ok((text, policy))
        }
        _ => Ok((text.to_string(), policy)),
    }
}

/// A file name for a policy copy: the file's stem, else the policy's name,
/// lowercased with everything but letters, digits, `-` and `_` as `_`.
pub fn policy_slug(name: &str) -> String {
    let s: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "policy".into() } else { s }
}

/// Keeps a copy of a loaded policy under the node's `policies/` as `<slug>.json`.
///
/// # Errors
/// File-system errors.
pub fn save_policy_copy(paths: &NodePaths, slug: &str, text: &str) -> Result<PathBuf, NodeError> {
    std::fs::create_dir_all(&paths.policies_dir).map_err(|e| {
        NodeError::Io(format!(
            "cannot create `{}`: {e}",
            paths.policies_dir.display()
        ))
    })?;
    let path = paths
        .policies_dir
        .join(format!("{}.json", policy_slug(slug)));
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .map_err(|e| NodeError::Io(format!("cannot write `{}`: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| NodeError::Io(format!("cannot write `{}`: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn node_ids() {
        assert!(check_node_id("production-node").is_ok());
        assert!(check_node_id("n.1_x").is_ok());
        for bad in ["", ".", "..", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_node_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn init_resolve_and_refuse_overwrite() {
        let home = tempfile::tempdir().unwrap();
        let e = resolve_node_id(home.path(), None).unwrap_err();
        assert!(e.to_string().contains("lexecon init"), "{e}");
        let made = init_node(home.path(), "n1", false, None).unwrap();
        assert!(made.ledger.exists());
        assert_eq!(resolve_node_id(home.path(), None).unwrap(), "n1");
        assert!(matches!(
            init_node(home.path(), "n1", false, None),
            Err(NodeError::Exists { .. })
        ));
        init_node(home.path(), "n2", false, None).unwrap();
        let e = resolve_node_id(home.path(), None).unwrap_err();
        assert!(e.to_string().contains("n1, n2"), "{e}");
        let node = open_node(home.path(), Some("n1"), None).unwrap();
        let mut engine = node.open_engine().unwrap();
        assert_eq!(engine.ledger_len(), 0);
        // A held ledger refuses a second writer and `init --force`.
        assert!(matches!(
            node.open_storage(Access::ReadWrite),
            Err(NodeError::File(FileStorageError::Locked { .. }))
        ));
        assert!(init_node(home.path(), "n1", true, None).is_err());
        assert!(node.open_storage(Access::ReadOnly).is_ok());
        let loaded = engine
            .load_policy(include_str!("../../examples/policies/ai_assistant.json"))
            .unwrap();
        assert!(loaded.recorded);
        drop(engine);
        let made = init_node(home.path(), "n1", true, None).unwrap();
        assert!(made.ledger.exists());
        let node = open_node(home.path(), Some("n1"), None).unwrap();
        assert_eq!(
            node.open_engine().unwrap().ledger_len(),
            0,
            "force made a fresh ledger"
        );
    }

    #[test]
    fn default_mode_is_written_into_the_policy() {
        let text = r#"{"name": "p", "relations": []}"#;
        let (same, p) = prepare_policy(text, Mode::Strict).unwrap();
        assert_eq!(same, text);
        assert_eq!(p.mode, Mode::Strict);
        let (changed, p) = prepare_policy(text, Mode::Permissive).unwrap();
        assert!(changed.contains("\"mode\": \"permissive\""));
        assert_eq!(p.mode, Mode::Permissive);
        let explicit = r#"{"name": "p", "mode": "strict"}"#;
        assert_eq!(
            prepare_policy(explicit, Mode::Permissive).unwrap().1.mode,
            Mode::Strict
        );
        assert_eq!(policy_slug("AI Assistant Policy"), "ai_assistant_policy");
    }
}
