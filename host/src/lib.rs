//! Lexecon's native host: the `lexecon` library behind the CLI and server.
//!
//! - [`component`]: the engine as a WASI component inside wasmtime (the
//!   production engine), with host-side storage and signer.
//! - [`engine`]: the `DecisionEngine` seam the CLI and server call.
//! - [`storage`]: ledger persistence backends (memory, file, PostgreSQL).
//! - [`cli`], [`server`], [`client`]: the `lexecon` command, the HTTP server
//!   and the Rust client; [`config`], [`node`], [`keys`], [`logging`] and
//!   [`ledger_view`] support them.

pub mod cli;
pub mod client;
pub mod component;
pub mod config;
pub mod engine;
pub mod keys;
pub mod ledger_view;
pub mod logging;
pub mod node;
pub mod server;
pub mod storage;
