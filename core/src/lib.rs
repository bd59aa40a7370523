#![doc = include_str!("../README.md")]

pub mod canonical;
pub mod capability;
pub mod condition;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod decision;
pub mod engine;
pub mod hash;
mod json_extent;
pub mod ledger;
mod object_only;
pub mod policy;
pub mod random;
pub mod request;
pub mod signer;
pub mod storage;
pub mod time;
mod unique_keys;

pub use capability::{CapabilityToken, Expect, TokenClaims, TokenError, verify_token};
pub use decision::{Decision, Verdict};
pub use engine::{
    Engine, EngineError, Governor, NodeConfig, Pending, PolicyLoaded, TailRestorer,
    verify_decision_signature,
};
pub use ledger::{Entry, EntryKind, VerifyReport};
pub use policy::{Mode, Policy, PolicyError};
pub use random::{BufferedRandom, OsRandom, Random, SeededRandom};
pub use request::{DecisionRequest, RequestError};
pub use signer::{Ed25519Signer, Signer};
pub use storage::{EntryRecord, MemoryStorage, Storage, StorageError};
pub use time::{Clock, FixedClock};
