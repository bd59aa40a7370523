//! Ledger persistence backends that implement [`lexecon_core::storage::Storage`].
//!
//! - [`file`](mod@file): the embedded default, an fsynced append-only log.
//! - [`postgres`]: one chain shared by many replicas.

pub mod file;
pub mod postgres;

pub use lexecon_core::storage::{EntryRecord, MemoryStorage, Storage, StorageError};
