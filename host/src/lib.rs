//! Lexecon's native host: the `lexecon` library behind the CLI and server.
//!
//! - [`storage`]: ledger persistence backends (memory, file, PostgreSQL).

pub mod storage;
