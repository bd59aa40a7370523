//! A node's `config.yaml`: the guide's keys, parsed strictly, plus the
//! environment variables that may override them.
//!
//! Every key the guide's "Configure" and "Production Configuration" sections
//! show is known here. A key that is not known, and a known key whose value
//! Lexecon does not support (`capability.kms_provider: aws`,
//! `policy.cache_evaluations: true`, `logging.rotate: true`), is an error
//! that names the key: nothing in a configuration file is silently ignored.
//!
//! Precedence, highest first: command-line flags (`--host`, `--port`), the
//! environment variables in [`ENV_OVERRIDES`], the file, the defaults.
//!
//! Beyond the guide, `server.rate_limit.{enabled,requests_per_second,burst}`
//! (per-client HTTP rate limiting) and `server.request_timeout` are known.

use std::fmt;
use std::path::{Path, PathBuf};

use lexecon_core::policy::Mode;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value as Yaml;

/// The environment variables that override configuration keys, with the
/// key each one sets.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("LEXECON_HOST", "server.host"),
    ("LEXECON_PORT", "server.port"),
    ("LEXECON_WORKERS", "server.workers"),
    ("LEXECON_LOG_LEVEL", "logging.level"),
    ("LEXECON_LOG_FORMAT", "logging.format"),
    ("LEXECON_LEDGER_STORAGE", "ledger.storage"),
    ("LEXECON_LEDGER_PATH", "ledger.path"),
    (
        "LEXECON_LEDGER_CONNECTION_STRING",
        "ledger.connection_string",
    ),
];

/// The environment variable holding the HTTP API key (never a file key).
pub const API_KEY_ENV: &str = "LEXECON_API_KEY";

/// The configuration version this build reads (`version:` in the file).
pub const CONFIG_VERSION: &str = "0.1.0";

/// A node's configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The node's id; must match the node directory it is used with.
    #[serde(default)]
    pub node_id: Option<String>,
    /// The configuration format version (`"0.1.0"`).
    #[serde(default)]
    pub version: Option<String>,
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Policies.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Capability tokens.
    #[serde(default)]
    pub capability: CapabilityConfig,
    /// The audit ledger.
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// Logs.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Prometheus metrics.
    #[serde(default)]
    pub monitoring: MonitoringConfig,
}

/// Most HTTP worker threads `server.workers` may ask for.
pub const MAX_WORKERS: usize = 1024;

/// `server:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1`).
    #[serde(default = "default_host")]
    pub host: String,
    /// Port (`8000`).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Threads serving HTTP (the engine has its own thread); default: one per core.
    #[serde(default)]
    pub workers: Option<usize>,
    /// TLS.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Per-client rate limiting (not in the guide).
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Seconds a client has to send a request's headers and body, and the
    /// longest wait for the engine (not in the guide; default 30).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            workers: None,
            tls: TlsConfig::default(),
            rate_limit: RateLimitConfig::default(),
            request_timeout: default_request_timeout(),
        }
    }
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    8000
}
/// The longest `server.request_timeout`, seconds: one hour. A request
/// that takes longer is a stuck client, and a timeout past the clock's
/// range would make every connection fail.
const MAX_REQUEST_TIMEOUT: u64 = 3600;

/// The longest `ledger.integrity_check_interval`, seconds: 30 days.
const MAX_INTEGRITY_CHECK_INTERVAL: u64 = 30 * 86_400;

fn default_request_timeout() -> u64 {
    30
}

/// `server.tls:`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Serve HTTPS (rustls) instead of HTTP.
    #[serde(default)]
    pub enabled: bool,
    /// PEM certificate chain.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// `server.rate_limit:` — a token bucket per client IP address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether requests are limited (default `true`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Sustained requests per second per client (default 1000).
    #[serde(default = "default_rps")]
    pub requests_per_second: f64,
    /// Requests a client may send at once above the sustained rate (default 2000).
    #[serde(default = "default_burst")]
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            requests_per_second: default_rps(),
            burst: default_burst(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_rps() -> f64 {
    1000.0
}
fn default_burst() -> u32 {
    2000
}

/// `policy:`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The mode given to a policy document that sets none (`strict`).
    #[serde(default)]
    pub default_mode: Mode,
    /// Policy files loaded, in order, when the server starts.
    #[serde(default)]
    pub auto_load: Vec<PathBuf>,
    /// Must be `false`: every decision is evaluated and recorded.
    #[serde(default)]
    pub cache_evaluations: bool,
    /// Not supported (there is no evaluation cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<Yaml>,
    /// Not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_size: Option<Yaml>,
}

/// `capability:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityConfig {
    /// Token lifetime when a request asks for none, seconds (300).
    #[serde(default = "default_ttl")]
    pub default_ttl: u64,
    /// Longest token lifetime, seconds (3600).
    #[serde(default = "default_max_ttl")]
    pub max_ttl: u64,
    /// Not supported: keys live in the node's `keys/` directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_provider: Option<Yaml>,
    /// Not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<Yaml>,
}

impl Default for CapabilityConfig {
    fn default() -> Self {
        Self {
            default_ttl: default_ttl(),
            max_ttl: default_max_ttl(),
            kms_provider: None,
            kms_key_id: None,
        }
    }
}

fn default_ttl() -> u64 {
    300
}
fn default_max_ttl() -> u64 {
    3600
}

/// Where the ledger lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// The embedded, fsynced append-only file (the default).
    #[default]
    File,
    /// A PostgreSQL database shared by replicas.
    #[serde(alias = "postgres")]
    Postgresql,
}

impl StorageKind {
    /// `file` or `postgresql`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Postgresql => "postgresql",
        }
    }
}

/// `ledger:`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// `file` or `postgresql`.
    #[serde(default)]
    pub storage: StorageKind,
    /// The ledger file (`file` storage); `~` is the home directory, a
    /// relative path is relative to the node directory. Default `ledger.db`.
    #[serde(default)]
    pub path: Option<String>,
    /// `postgresql://…` (`postgresql` storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    /// Verify the whole chain when the server starts; refuse to start if it is broken.
    #[serde(default)]
    pub auto_verify: bool,
    /// Seconds between background verifications of the chain (0 or absent: never).
    #[serde(default)]
    pub integrity_check_interval: Option<u64>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogOutput {
    /// Standard error (the default).
    #[default]
    Stderr,
    /// Standard output.
    Stdout,
    /// `logging.file_path`, appended to.
    File,
}

/// `logging:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `trace`, `debug`, `info`, `warn`, `error` or `off`, or per-target
    /// directives such as `info,lexecon::server=debug`.
    #[serde(default = "default_level")]
    pub level: String,
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// `stderr`, `stdout` or `file`.
    #[serde(default)]
    pub output: LogOutput,
    /// The log file when `output: file`.
    #[serde(default)]
    pub file_path: Option<PathBuf>,
    /// Not supported (use logrotate with `copytruncate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate: Option<Yaml>,
    /// Not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_mb: Option<Yaml>,
    /// Not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<Yaml>,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: default_level(),
            format: LogFormat::Text,
            output: LogOutput::Stderr,
            file_path: None,
            rotate: None,
            max_size_mb: None,
            max_files: None,
        }
    }
}

fn default_level() -> String {
    "info".into()
}

/// `monitoring:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Serve `GET /metrics` (default `true`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Also serve `GET /metrics` on this port (the guide's 9090).
    #[serde(default)]
    pub prometheus_port: Option<u16>,
    /// Not supported (alert in Prometheus: examples/deploy/prometheus-alerts.yaml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_on_denied_high_risk: Option<Yaml>,
    /// Not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_on_policy_changes: Option<Yaml>,
    /// Not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_on_ledger_failures: Option<Yaml>,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prometheus_port: None,
            alert_on_denied_high_risk: None,
            alert_on_policy_changes: None,
            alert_on_ledger_failures: None,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The YAML does not parse, a key is unknown or a value has the wrong type.
    Parse {
        /// Where (`config.yaml`).
        source: String,
        /// The dotted key (`server.port`), or empty for the document.
        key: String,
        /// Why, with the line and column when known.
        message: String,
    },
    /// A known key with a value Lexecon does not support.
    Unsupported {
        /// The dotted key.
        key: String,
        /// Why, and what to do instead.
        message: String,
    },
    /// An environment variable does not hold a valid value.
    Env {
        /// The variable.
        var: String,
        /// Why.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, reason } => {
                write!(f, "cannot read config file `{}`: {reason}", path.display())
            }
            Self::Parse {
                source,
                key,
                message,
            } if key.is_empty() => write!(f, "{source}: {message}"),
            Self::Parse {
                source,
                key,
                message,
            } => write!(f, "{source}: `{key}`: {message}"),
            Self::Unsupported { key, message } => write!(f, "config key `{key}`: {message}"),
            Self::Env { var, message } => write!(f, "environment variable `{var}`: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn unsupported(key: &str, message: &str) -> ConfigError {
    ConfigError::Unsupported {
        key: key.to_string(),
        message: message.to_string(),
    }
}

impl Config {
    /// Parses and checks a configuration from YAML text; `source` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for bad YAML, unknown keys and wrong types;
    /// [`ConfigError::Unsupported`] for values Lexecon does not support.
    pub fn parse(text: &str, source: &str) -> Result<Self, ConfigError> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            let de = serde_yaml_ng::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let mut key = e.path().to_string();
                let message = e.inner().to_string();
                if key == "." {
                    key.clear();
                }
                // serde names an unknown key in the message: put it in the path.
                if let Some(rest) = message
                    .find("unknown field `")
                    .and_then(|i| message.get(i + 15..))
                    && let Some((field, tail)) = rest.split_once('`')
                {
                    if !(key == field || key.ends_with(&format!(".{field}"))) {
                        key = if key.is_empty() {
                            field.to_string()
                        } else {
                            format!("{key}.{field}")
                        };
                    }
                    let tail = tail
                        .trim_start_matches(", ")
                        .replace("expected", "known keys here:");
                    return ConfigError::Parse {
                        source: source.into(),
                        key,
                        message: format!("unknown key ({tail})"),
                    };
                }
                ConfigError::Parse {
                    source: source.into(),
                    key,
                    message,
                }
            })?
        };
        config.check()?;
        Ok(config)
    }

    /// Reads and checks `path`.
    ///
    /// # Errors
    /// As [`Config::parse`], and [`ConfigError::Read`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Applies the environment overrides in [`ENV_OVERRIDES`] from `env`
    /// (a lookup such as `|k| std::env::var(k).ok()`), then re-checks.
    ///
    /// # Errors
    /// [`ConfigError::Env`] for a value that does not parse; as
    /// [`Config::parse`] for a combination that is not supported.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let bad = |var: &str, message: String| ConfigError::Env {
            var: var.into(),
            message,
        };
        if let Some(v) = env("LEXECON_HOST") {
            self.server.host = v;
        }
        if let Some(v) = env("LEXECON_PORT") {
            self.server.port = v.trim().parse().map_err(|_| {
                bad(
                    "LEXECON_PORT",
                    format!("`{v}` is not a port number (0-65535)"),
                )
            })?;
        }
        if let Some(v) = env("LEXECON_WORKERS") {
            let n: usize = v
                .trim()
                .parse()
                .map_err(|_| bad("LEXECON_WORKERS", format!("`{v}` is not a positive number")))?;
            self.server.workers = Some(n);
        }
        if let Some(v) = env("LEXECON_LOG_LEVEL") {
            self.logging.level = v;
        }
        if let Some(v) = env("LEXECON_LOG_FORMAT") {
            self.logging.format = match v.trim() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(bad(
                        "LEXECON_LOG_FORMAT",
                        format!("`{v}` is not `text` or `json`"),
                    ));
                }
            };
        }
        if let Some(v) = env("LEXECON_LEDGER_STORAGE") {
            let storage = match v.trim() {
                "file" => StorageKind::File,
                "postgresql" | "postgres" => StorageKind::Postgresql,
                _ => {
                    return Err(bad(
                        "LEXECON_LEDGER_STORAGE",
                        format!("`{v}` is not `file` or `postgresql`"),
                    ));
                }
            };
            // The file's setting for the storage it named does not apply to
            // the one the environment chose (`init` writes `path`).
            match storage {
                StorageKind::File => self.ledger.connection_string = None,
                StorageKind::Postgresql => self.ledger.path = None,
            }
            self.ledger.storage = storage;
        }
        if let Some(v) = env("LEXECON_LEDGER_PATH") {
            self.ledger.path = Some(v);
        }
        if let Some(v) = env("LEXECON_LEDGER_CONNECTION_STRING") {
            self.ledger.connection_string = Some(v);
        }
        // A value that came from the environment is blamed on its variable,
        // not on a config key the file may not even have.
        self.check().map_err(|e| match e {
            ConfigError::Unsupported { key, message } => match ENV_OVERRIDES
                .iter()
                .find(|(var, k)| *k == key && env(var).is_some())
            {
                Some((var, _)) => ConfigError::Env {
                    var: (*var).to_string(),
                    message: format!("{message} (it sets `{key}`)"),
                },
                None => ConfigError::Unsupported { key, message },
            },
            other => other,
        })
    }

    /// Checks the values that types alone do not.
    ///
    /// # Errors
    /// [`ConfigError::Unsupported`] naming the first offending key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(v) = &self.version
            && v != CONFIG_VERSION
        {
            return Err(unsupported(
                "version",
                &format!("`{v}` is not supported; this build reads version `{CONFIG_VERSION}`"),
            ));
        }
        if let Some(id) = &self.node_id {
            crate::node::check_node_id(id).map_err(|m| unsupported("node_id", &m))?;
        }
        let s = &self.server;
        if s.host.trim().is_empty() {
            return Err(unsupported("server.host", "must not be empty"));
        }
        if s.workers == Some(0) {
            return Err(unsupported("server.workers", "must be at least 1"));
        }
        if s.workers.is_some_and(|w| w > MAX_WORKERS) {
            return Err(unsupported(
                "server.workers",
                &format!(
                    "must be at most {MAX_WORKERS} (HTTP worker threads; the engine has its own)"
                ),
            ));
        }
        if s.request_timeout == 0 {
            return Err(unsupported(
                "server.request_timeout",
                "must be at least 1 second",
            ));
        }
        if s.request_timeout > MAX_REQUEST_TIMEOUT {
            return Err(unsupported(
                "server.request_timeout",
                &format!("must be at most {MAX_REQUEST_TIMEOUT} seconds (one hour)"),
            ));
        }
        if s.tls.enabled {
            if s.tls.cert_file.is_none() {
                return Err(unsupported(
                    "server.tls.cert_file",
                    "is required when `server.tls.enabled` is true",
                ));
            }
            if s.tls.key_file.is_none() {
                return Err(unsupported(
                    "server.tls.key_file",
                    "is required when `server.tls.enabled` is true",
                ));
            }
        }
        let rl = &s.rate_limit;
        if rl.enabled && !(rl.requests_per_second.is_finite() && rl.requests_per_second > 0.0) {
            return Err(unsupported(
                "server.rate_limit.requests_per_second",
                "must be a positive number",
            ));
        }
        if rl.enabled && rl.burst == 0 {
            return Err(unsupported("server.rate_limit.burst", "must be at least 1"));
        }
        let p = &self.policy;
        if p.cache_evaluations {
            return Err(unsupported(
                "policy.cache_evaluations",
                "`true` is not supported: every decision is evaluated against the active policy and recorded in the \
                 ledger (evaluation takes microseconds, and rate limits and the audit trail forbid reusing a decision); \
                 set it to `false` or remove it",
            ));
        }
        if p.cache_ttl.is_some() {
            return Err(unsupported(
                "policy.cache_ttl",
                "is not supported because there is no evaluation cache; remove it",
            ));
        }
        if p.cache_size.is_some() {
            return Err(unsupported(
                "policy.cache_size",
                "is not supported because there is no evaluation cache; remove it",
            ));
        }
        let c = &self.capability;
        if c.kms_provider.is_some() {
            return Err(unsupported(
                "capability.kms_provider",
                "KMS signing is not supported: the node signs with `keys/private_key.pem` in its directory (mode 0600); remove it",
            ));
        }
        if c.kms_key_id.is_some() {
            return Err(unsupported(
                "capability.kms_key_id",
                "KMS signing is not supported; remove it",
            ));
        }
        if c.default_ttl == 0 {
            return Err(unsupported(
                "capability.default_ttl",
                "must be at least 1 second",
            ));
        }
        if c.max_ttl < c.default_ttl {
            return Err(unsupported(
                "capability.max_ttl",
                &format!(
                    "({}) must not be smaller than `capability.default_ttl` ({})",
                    c.max_ttl, c.default_ttl
                ),
            ));
        }
        if c.max_ttl > lexecon_core::engine::MAX_TOKEN_TTL_LIMIT {
            return Err(unsupported(
                "capability.max_ttl",
                &format!(
                    "({}) must be at most {} seconds (one day): capability tokens are short-lived",
                    c.max_ttl,
                    lexecon_core::engine::MAX_TOKEN_TTL_LIMIT
                ),
            ));
        }
        let l = &self.ledger;
        if l.integrity_check_interval
            .is_some_and(|i| i > MAX_INTEGRITY_CHECK_INTERVAL)
        {
            return Err(unsupported(
                "ledger.integrity_check_interval",
                &format!(
                    "must be at most {MAX_INTEGRITY_CHECK_INTERVAL} seconds (30 days); 0 or absent turns the checks off"
                ),
            ));
        }
        match l.storage {
            StorageKind::File => {
                if l.connection_string.is_some() {
                    return Err(unsupported(
                        "ledger.connection_string",
                        "is only used with `ledger.storage: postgresql`; remove it or change the storage",
                    ));
                }
            }
            StorageKind::Postgresql => {
                // The string may come from the environment alone (kept out of
                // the file for its password): `apply_env` fills it in later.
                let from_env = std::env::var("LEXECON_LEDGER_CONNECTION_STRING")
                    .is_ok_and(|s| !s.trim().is_empty());
                if !from_env
                    && l.connection_string
                        .as_deref()
                        .is_none_or(|s| s.trim().is_empty())
                {
                    return Err(unsupported(
                        "ledger.connection_string",
                        "is required with `ledger.storage: postgresql` (or set LEXECON_LEDGER_CONNECTION_STRING)",
                    ));
                }
                if l.path.is_some() {
                    return Err(unsupported(
                        "ledger.path",
                        "is only used with `ledger.storage: file`; remove it",
                    ));
                }
            }
        }
        if l.path.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(unsupported(
                "ledger.path",
                "must not be empty (leave it out for the node's ledger.db)",
            ));
        }
        let g = &self.logging;
        crate::logging::parse_level(&g.level).map_err(|m| unsupported("logging.level", &m))?;
        if g.output == LogOutput::File && g.file_path.is_none() {
            return Err(unsupported(
                "logging.file_path",
                "is required when `logging.output` is `file`",
            ));
        }
        if g.output != LogOutput::File && g.file_path.is_some() {
            return Err(unsupported(
                "logging.file_path",
                "is only used with `logging.output: file`",
            ));
        }
        if g.rotate
            .as_ref()
            .is_some_and(|v| v.as_bool() != Some(false))
        {
            return Err(unsupported(
                "logging.rotate",
                "log rotation is not built in: rotate the file with logrotate (`copytruncate`) and remove this key",
            ));
        }
        if g.max_size_mb.is_some() {
            return Err(unsupported(
                "logging.max_size_mb",
                "log rotation is not built in; remove it",
            ));
        }
        if g.max_files.is_some() {
            return Err(unsupported(
                "logging.max_files",
                "log rotation is not built in; remove it",
            ));
        }
        let m = &self.monitoring;
        for (key, v) in [
            (
                "monitoring.alert_on_denied_high_risk",
                &m.alert_on_denied_high_risk,
            ),
            (
                "monitoring.alert_on_policy_changes",
                &m.alert_on_policy_changes,
            ),
            (
                "monitoring.alert_on_ledger_failures",
                &m.alert_on_ledger_failures,
            ),
        ] {
            if v.is_some() {
                return Err(unsupported(
                    key,
                    "alerting is done by Prometheus rules on the exported metrics (examples/deploy/prometheus-alerts.yaml has the guide's); remove it",
                ));
            }
        }
        if m.prometheus_port.is_some() && !m.enabled {
            return Err(unsupported(
                "monitoring.prometheus_port",
                "is set but `monitoring.enabled` is false",
            ));
        }
        if m.prometheus_port.is_some_and(|p| p != 0 && p == s.port) {
            return Err(unsupported(
                "monitoring.prometheus_port",
                "must differ from `server.port` (metrics are served there anyway)",
            ));
        }
        Ok(())
    }

    /// Makes the TLS certificate and key and the log file what `ledger.path`
    /// is: `~` expanded, a relative path relative to the node directory
    /// (not to wherever the process was started: `/` under systemd).
    pub fn resolve_paths(&mut self, node_dir: &Path) {
        let tls = &mut self.server.tls;
        for p in [
            &mut tls.cert_file,
            &mut tls.key_file,
            &mut self.logging.file_path,
        ]
        .into_iter()
        .flatten()
        {
            *p = match p.to_str() {
                Some(text) => resolve_path(text, node_dir),
                None if p.is_relative() => node_dir.join(&*p),
                None => continue,
            };
        }
    }

    /// The ledger file for a node directory: `ledger.path` (`~` expanded,
    /// relative to `node_dir`) or `node_dir/ledger.db`.
    pub fn ledger_path(&self, node_dir: &Path) -> PathBuf {
        match &self.ledger.path {
            Some(p) => resolve_path(p, node_dir),
            None => node_dir.join("ledger.db"),
        }
    }
}

/// Expands a leading `~` to `$HOME`, and makes a relative path relative to `base`.
pub fn resolve_path(path: &str, base: &Path) -> PathBuf {
    let expanded = match path.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from(path), |h| PathBuf::from(h).join(rest)),
        None if path == "~" => {
            std::env::var_os("HOME").map_or_else(|| PathBuf::from(path), PathBuf::from)
        }
        None => PathBuf::from(path),
    };
    if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    }
}

/// The `config.yaml` that `lexecon init` writes.
pub fn default_config_yaml(node_id: &str) -> String {
    format!(
        r#"# Lexecon node configuration (see README: "Configuration").
# Unknown keys and unsupported values are startup errors.
# Environment overrides: LEXECON_HOST, LEXECON_PORT, LEXECON_WORKERS,
# LEXECON_LOG_LEVEL, LEXECON_LOG_FORMAT, LEXECON_LEDGER_STORAGE,
# LEXECON_LEDGER_PATH, LEXECON_LEDGER_CONNECTION_STRING; the API key only
# from LEXECON_API_KEY.
node_id: {node_id}
version: "{CONFIG_VERSION}"

server:
  host: "127.0.0.1"
  port: 8000
  tls:
    enabled: false

policy:
  default_mode: "strict"
  auto_load: []

capability:
  default_ttl: 300  # 5 minutes
  max_ttl: 3600     # 1 hour

ledger:
  storage: "file"
  path: "ledger.db"  # relative to this node's directory
  auto_verify: true

logging:
  level: "info"
  format: "text"
  output: "stderr"

monitoring:
  enabled: true
"#
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn file_paths_are_relative_to_the_node_directory() {
        let mut c = Config::parse(
            "server:\n  tls:\n    enabled: true\n    cert_file: tls/cert.pem\n    key_file: /etc/k.pem\nlogging:\n  output: file\n  file_path: logs/lexecon.log\n",
            "test",
        )
        .unwrap();
        c.resolve_paths(Path::new("/srv/node"));
        assert_eq!(
            c.server.tls.cert_file.unwrap(),
            Path::new("/srv/node/tls/cert.pem")
        );
        assert_eq!(c.server.tls.key_file.unwrap(), Path::new("/etc/k.pem"));
        assert_eq!(
            c.logging.file_path.unwrap(),
            Path::new("/srv/node/logs/lexecon.log")
        );
    }

    const GUIDE_STEP3: &str = r#"
node_id: production-node
version: "0.1.0"

server:
  host: "0.0.0.0"
  port: 8000
  workers: 4

policy:
  default_mode: "strict"
  auto_load:
    - /etc/lexecon/policies/base_policy.json

capability:
  default_ttl: 300  # 5 minutes
  max_ttl: 3600    # 1 hour

ledger:
  storage: "file"
  path: "~/.lexecon/nodes/production-node/ledger.db"
  auto_verify: true

logging:
  level: "info"
  format: "json"
  output: "file"
  file_path: "/var/log/lexecon/lexecon.log"
"#;

    #[test]
    fn the_guides_step_3_config_loads() {
        let c = Config::parse(GUIDE_STEP3, "config.yaml").unwrap();
        assert_eq!(c.node_id.as_deref(), Some("production-node"));
        assert_eq!(c.server.workers, Some(4));
        assert_eq!(c.server.host, "0.0.0.0");
        assert_eq!(c.policy.auto_load.len(), 1);
        assert!(c.ledger.auto_verify);
        assert_eq!(c.logging.format, LogFormat::Json);
        assert_eq!(c.logging.output, LogOutput::File);
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            c.ledger_path(Path::new("/x")),
            PathBuf::from(home).join(".lexecon/nodes/production-node/ledger.db")
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse("server:\n  port: 8000\n  prot: 1\n", "c.yaml").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`server.prot`") && msg.contains("unknown key") && msg.contains("line 3"),
            "{msg}"
        );
        let e = Config::parse("nodeid: x\n", "c.yaml").unwrap_err();
        assert!(e.to_string().contains("`nodeid`"), "{e}");
    }

    #[test]
    fn unsupported_values_are_named() {
        let e = Config::parse("capability:\n  kms_provider: aws\n", "c").unwrap_err();
        assert!(e.to_string().contains("`capability.kms_provider`"), "{e}");
        let e = Config::parse("policy:\n  cache_evaluations: true\n  cache_ttl: 60\n", "c")
            .unwrap_err();
        assert!(e.to_string().contains("`policy.cache_evaluations`"), "{e}");
        let e = Config::parse("ledger:\n  storage: s3\n", "c").unwrap_err();
        assert!(e.to_string().contains("`ledger.storage`"), "{e}");
        let e = Config::parse("server:\n  workers: 100000\n", "c").unwrap_err();
        assert!(
            e.to_string().contains("`server.workers`") && e.to_string().contains("at most 1024"),
            "{e}"
        );
        assert!(Config::parse("server:\n  workers: 1024\n", "c").is_ok());
        let e = Config::parse("ledger:\n  storage: postgresql\n", "c").unwrap_err();
        assert!(e.to_string().contains("`ledger.connection_string`"), "{e}");
        let e = Config::parse("server:\n  port: eighty\n", "c").unwrap_err();
        assert!(e.to_string().contains("`server.port`"), "{e}");
        let e = Config::parse("logging:\n  rotate: true\n", "c").unwrap_err();
        assert!(e.to_string().contains("`logging.rotate`"), "{e}");
        let e = Config::parse("server:\n  tls:\n    enabled: true\n", "c").unwrap_err();
        assert!(e.to_string().contains("`server.tls.cert_file`"), "{e}");
        let e = Config::parse("version: \"2\"\n", "c").unwrap_err();
        assert!(e.to_string().contains("`version`"), "{e}");
    }

    #[test]
    fn the_production_config_is_refused_for_kms() {
        let text = r#"
node_id: production-1
capability:
  default_ttl: 300
  max_ttl: 3600
  kms_provider: "aws"
  kms_key_id: "arn:aws:kms:us-east-1:123456789:key/abc-def"
"#;
        let e = Config::parse(text, "production-config.yaml").unwrap_err();
        assert!(
            matches!(e, ConfigError::Unsupported { ref key, .. } if key == "capability.kms_provider"),
            "{e}"
        );
    }

    /// `text` is refused as an unsupported value of `key`, saying `says`.
    fn assert_refused(text: &str, key: &str, says: &str) {
        let e = Config::parse(text, "c").unwrap_err();
        assert!(
            matches!(e, ConfigError::Unsupported { key: ref k, .. } if k == key),
            "{e}"
        );
        assert!(e.to_string().contains(says), "{e}");
    }

    #[test]
    fn token_lifetimes_are_checked() {
        assert_refused(
            "capability:\n  default_ttl: 0\n",
            "capability.default_ttl",
            "at least 1 second",
        );
        assert_refused(
            "capability:\n  default_ttl: 600\n  max_ttl: 60\n",
            "capability.max_ttl",
            "must not be smaller than `capability.default_ttl` (600)",
        );
        assert_refused(
            "capability:\n  max_ttl: 86401\n",
            "capability.max_ttl",
            "(86401) must be at most 86400 seconds (one day)",
        );
        let c = Config::parse("capability:\n  max_ttl: 86400\n", "c").unwrap();
        assert_eq!(c.capability.max_ttl, 86_400);
    }

    /// A duration past the clock's range made every connection's task
    /// panic, leaving a server that answered nothing.
    #[test]
    fn durations_have_an_upper_bound() {
        assert_refused(
            "server:\n  request_timeout: 18446744073709551615\n",
            "server.request_timeout",
            "at most 3600 seconds",
        );
        assert_refused(
            "ledger:\n  integrity_check_interval: 18446744073709551615\n",
            "ledger.integrity_check_interval",
            "at most 2592000 seconds",
        );
        Config::parse("server:\n  request_timeout: 3600\n", "c").unwrap();
        Config::parse("ledger:\n  integrity_check_interval: 2592000\n", "c").unwrap();
    }

    #[test]
    fn env_overrides() {
        let mut c = Config::default();
        let env = |k: &str| match k {
            "LEXECON_PORT" => Some("9001".to_string()),
            "LEXECON_LOG_FORMAT" => Some("json".to_string()),
            _ => None,
        };
        c.apply_env(env).unwrap();
        assert_eq!(c.server.port, 9001);
        assert_eq!(c.logging.format, LogFormat::Json);
        let e = c
            .apply_env(|k| (k == "LEXECON_PORT").then(|| "x".to_string()))
            .unwrap_err();
        assert!(e.to_string().contains("LEXECON_PORT"));
        // A value the checks refuse is blamed on the variable that gave it.
        for (var, value, key) in [
            ("LEXECON_HOST", "", "server.host"),
            ("LEXECON_WORKERS", "0", "server.workers"),
            ("LEXECON_LOG_LEVEL", "loud", "logging.level"),
            ("LEXECON_LEDGER_PATH", " ", "ledger.path"),
        ] {
            let mut c = Config::parse(&default_config_yaml("n1"), "config.yaml").unwrap();
            let e = c
                .apply_env(|k| (k == var).then(|| value.to_string()))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("environment variable `{var}`:"))
                    && e.contains(&format!("(it sets `{key}`)")),
                "{e}"
            );
        }
    }

    #[test]
    fn env_storage_switch_drops_the_other_storages_setting() {
        // `init` writes `ledger.path`; the environment moves the node to PostgreSQL.
        let mut c = Config::parse(&default_config_yaml("n1"), "config.yaml").unwrap();
        assert!(c.ledger.path.is_some());
        c.apply_env(|k| match k {
            "LEXECON_LEDGER_STORAGE" => Some("postgresql".to_string()),
            "LEXECON_LEDGER_CONNECTION_STRING" => Some("host=127.0.0.1 user=postgres".to_string()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.ledger.storage, StorageKind::Postgresql);
        assert_eq!(c.ledger.path, None);
        // And back to a file: the connection string goes.
        c.apply_env(|k| (k == "LEXECON_LEDGER_STORAGE").then(|| "file".to_string()))
            .unwrap();
        assert_eq!(c.ledger.connection_string, None);
        // A path set in the environment with PostgreSQL is still refused.
        let e = c
            .apply_env(|k| match k {
                "LEXECON_LEDGER_STORAGE" => Some("postgresql".to_string()),
                "LEXECON_LEDGER_CONNECTION_STRING" => Some("host=x".to_string()),
                "LEXECON_LEDGER_PATH" => Some("l.db".to_string()),
                _ => None,
            })
            .unwrap_err();
        assert!(e.to_string().contains("ledger.path"), "{e}");
    }

    #[test]
    fn the_default_config_round_trips() {
        let c = Config::parse(&default_config_yaml("n1"), "c").unwrap();
        assert_eq!(c.node_id.as_deref(), Some("n1"));
        assert_eq!(
            c.ledger_path(Path::new("/h/n1")),
            PathBuf::from("/h/n1/ledger.db")
        );
    }
}
