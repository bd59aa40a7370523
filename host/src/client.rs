//! The Rust client for a Lexecon server: the guide's "Client-Server Mode".
//!
//! [`LexeconClient`] is blocking (no async runtime needed), keeps
//! connections alive and reuses them (a pool per client; clone the client to
//! share it between threads), and bounds every call with timeouts.
//!
//! ```no_run
//! use lexecon::client::LexeconClient;
//! use lexecon_core::DecisionRequest;
//!
//! let client = LexeconClient::new("http://127.0.0.1:8000", std::env::var("LEXECON_API_KEY").ok().as_deref())?;
//! let decision = client.decide(&DecisionRequest::new("model", "Execute web_search", "web_search", "Research", 1))?;
//! if !decision.allowed {
//!     eprintln!("denied: {}", decision.reason);
//! }
//! # Ok::<(), lexecon::client::ClientError>(())
//! ```

use std::fmt;
use std::time::Duration;

use lexecon_core::engine::PolicyLoaded;
use lexecon_core::{Decision, DecisionRequest, TokenClaims, VerifyReport};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Largest response body read, bytes.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// What went wrong with a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The base URL or an argument is not usable.
    InvalidInput(String),
    /// The server could not be reached, or the call timed out.
    Transport(String),
    /// The server answered with an error.
    Api {
        /// HTTP status.
        status: u16,
        /// The API's error code (`invalid_request`, `rate_limited`, `storage`, …).
        code: String,
        /// In words.
        detail: String,
        /// `Retry-After` seconds, when given.
        retry_after: Option<u64>,
    },
    /// The answer is not what the API documents.
    Decode(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Self::Transport(m) => write!(f, "cannot reach the lexecon server: {m}"),
            Self::Api {
                status,
                code,
                detail,
                ..
            } => write!(f, "lexecon server answered {status} `{code}`: {detail}"),
            Self::Decode(m) => write!(f, "unexpected answer from the lexecon server: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// The answer of `POST /tokens/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenVerification {
    /// Whether the token is valid now (and for the tool/actor asked about).
    pub valid: bool,
    /// Its claims, when valid.
    #[serde(default)]
    pub claims: Option<TokenClaims>,
    /// Why not (`expired`, `bad_signature`, `wrong_tool`, …).
    #[serde(default)]
    pub error: Option<String>,
    /// In words.
    #[serde(default)]
    pub detail: Option<String>,
}

/// A ledger entry as `GET /ledger/entries/{hash}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Position in the chain.
    pub index: u64,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// When it was written.
    pub timestamp: String,
    /// `decision` or `policy_load`.
    pub kind: String,
    /// Its hash.
    pub entry_hash: String,
    /// For decisions: the decision's hash (compare with `Decision::decision_hash`).
    #[serde(default)]
    pub decision_hash: Option<String>,
    /// For policy loads: the policy's hash.
    #[serde(default)]
    pub policy_hash: Option<String>,
    /// The recorded payload.
    pub payload: Value,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest time for a whole call (connect, send, receive). Default 10 s.
    pub timeout: Duration,
    /// Longest time to connect. Default 3 s.
    pub connect_timeout: Duration,
    /// Idle connections kept for reuse. Default 32.
    pub max_idle_connections: usize,
    /// Extra trusted root certificate(s), PEM (a private CA or a self-signed server).
    pub root_certificates_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_idle_connections: 32,
            root_certificates_pem: None,
        }
    }
}

/// A client for one Lexecon server. Cloning shares the connection pool.
#[derive(Clone)]
pub struct LexeconClient {
    base: String,
    agent: ureq::Agent,
    authorization: Option<String>,
}

impl fmt::Debug for LexeconClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LexeconClient")
            .field("base", &self.base)
            .field("api_key", &self.authorization.as_ref().map(|_| ".."))
            .finish()
    }
}

impl LexeconClient {
    /// A client for `base_url` (`http://host:port` or `https://…`), sending
    /// `api_key` as `Authorization: Bearer` when given.
    ///
    /// # Errors
    /// [`ClientError::InvalidInput`] for a URL that is not http(s).
    pub fn new(base_url: &str, api_key: Option<&str>) -> Result<Self, ClientError> {
        Self::with_options(base_url, api_key, ClientOptions::default())
    }

    /// As [`LexeconClient::new`], with [`ClientOptions`].
    ///
    /// # Errors
    /// [`ClientError::InvalidInput`] for a bad URL or certificate.
    pub fn with_options(
        base_url: &str,
        api_key: Option<&str>,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let base = base_url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            return Err(ClientError::InvalidInput(format!(
                "base URL `{base_url}` must start with http:// or https://"
            )));
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(pem) = &options.root_certificates_pem {
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(pem) {
                if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                    certs.push(c);
                }
            }
            if certs.is_empty() {
                return Err(ClientError::InvalidInput(
                    "root_certificates_pem holds no certificate".into(),
                ));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(options.connect_timeout))
            .max_idle_connections(options.max_idle_connections)
            .max_idle_connections_per_host(options.max_idle_connections)
            .tls_config(tls.build())
            .user_agent(concat!("lexecon-rust-client/", env!("CARGO_PKG_VERSION")))
            .build();
        let authorization = match api_key.map(str::trim).filter(|k| !k.is_empty()) {
            Some(k) if k.chars().any(|c| c.is_control()) => {
                return Err(ClientError::InvalidInput(
                    "the API key contains control characters".into(),
                ));
            }
            Some(k) => Some(format!("Bearer {k}")),
            None => None,
        };
        Ok(Self {
            base,
            agent: ureq::Agent::new_with_config(config),
            authorization,
        })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let transport = |e: ureq::Error| ClientError::Transport(e.to_string());
        let mut resp = match (method, body) {
            ("POST", Some(b)) => {
                let mut req = self
                    .agent
                    .post(&url)
                    .header("content-type", "application/json");
                if let Some(a) = &self.authorization {
                    req = req.header("authorization", a);
                }
                let bytes =
                    serde_json::to_vec(b).map_err(|e| ClientError::InvalidInput(e.to_string()))?;
                req.send(&bytes[..]).map_err(transport)?
            }
            _ => {
                let mut req = self.agent.get(&url);
                if let Some(a) = &self.authorization {
                    req = req.header("authorization", a);
                }
                req.call().map_err(transport)?
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(transport)?;
        if !(200..300).contains(&status) {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let code = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("http_error")
                .to_string();
            let detail = match v.get("detail") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            };
            return Err(ClientError::Api {
                status,
                code,
                detail,
                retry_after,
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Decode(format!("{method} {path}: {e}")))
    }

    /// `POST /decide`: one decision, answered after its ledger entry is durable.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `invalid_request` (422) for a bad request,
    /// `rate_limited` (429), or a 503 when the server could not decide:
    /// treat every error as a denial.
    pub fn decide(&self, request: &DecisionRequest) -> Result<Decision, ClientError> {
        let body =
            serde_json::to_value(request).map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        self.call("POST", "/decide", Some(&body))
    }

    /// `POST /decide/batch`: decisions in request order, recorded with one durable write.
    ///
    /// # Errors
    /// As [`LexeconClient::decide`]; one invalid request rejects the batch.
    pub fn decide_batch(&self, requests: &[DecisionRequest]) -> Result<Vec<Decision>, ClientError> {
        #[derive(Deserialize)]
        struct Batch {
            decisions: Vec<Decision>,
        }
        let body = json!({ "requests": requests });
        let batch: Batch = self.call("POST", "/decide/batch", Some(&body))?;
        Ok(batch.decisions)
    }

    /// `POST /tokens/verify`: whether a capability token (the compact
    /// `lxc2.…` string) is valid now.
    ///
    /// # Errors
    /// Transport and API errors (an invalid token is `Ok` with `valid: false`).
    pub fn verify_token(&self, token: &str) -> Result<TokenVerification, ClientError> {
        self.verify_token_for(token, None, None)
    }

    /// As [`LexeconClient::verify_token`], also requiring the token to be for
    /// `tool` and `actor` when given.
    ///
    /// # Errors
    /// As [`LexeconClient::verify_token`].
    pub fn verify_token_for(
        &self,
        token: &str,
        tool: Option<&str>,
        actor: Option<&str>,
    ) -> Result<TokenVerification, ClientError> {
        let body = json!({ "token": token, "tool": tool, "actor": actor });
        self.call("POST", "/tokens/verify", Some(&body))
    }

    /// `GET /ledger/entries/{hash}`.
    ///
    /// # Errors
    /// [`ClientError::Api`] `not_found` (404) when no entry has that hash.
    pub fn get_ledger_entry(&self, entry_hash: &str) -> Result<LedgerEntry, ClientError> {
        if entry_hash.len() != 64 || !entry_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ClientError::InvalidInput(format!(
                "`{entry_hash}` is not a ledger entry hash (64 hex digits)"
            )));
        }
        self.call("GET", &format!("/ledger/entries/{entry_hash}"), None)
    }

    /// `GET /ledger/entries?offset&limit`.
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn ledger_entries(&self, offset: u64, limit: u64) -> Result<Vec<LedgerEntry>, ClientError> {
        #[derive(Deserialize)]
        struct Page {
            entries: Vec<LedgerEntry>,
        }
        let page: Page = self.call(
            "GET",
            &format!("/ledger/entries?offset={offset}&limit={limit}"),
            None,
        )?;
        Ok(page.entries)
    }

    /// `GET /ledger/verify`.
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn verify_ledger(&self) -> Result<VerifyReport, ClientError> {
        self.call("GET", "/ledger/verify", None)
    }

    /// `POST /policies`: loads a policy (JSON text) and records it.
    ///
    /// # Errors
    /// [`ClientError::Api`] `invalid_policy` (422) naming the path, line and column.
    pub fn load_policy(&self, policy_json: &str) -> Result<PolicyLoaded, ClientError> {
        let doc: Value = serde_json::from_str(policy_json)
            .map_err(|e| ClientError::InvalidInput(format!("policy is not JSON: {e}")))?;
        self.call("POST", "/policies", Some(&json!({ "policy": doc })))
    }

    /// `GET /status`.
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn status(&self) -> Result<Value, ClientError> {
        self.call("GET", "/status", None)
    }

    /// `GET /health`.
    ///
    /// # Errors
    /// Transport errors, or a server that is not healthy.
    pub fn health(&self) -> Result<(), ClientError> {
        self.call::<Value>("GET", "/health", None).map(|_| ())
    }
}
