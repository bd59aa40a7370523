//! Helpers shared by the host's integration tests (`mod support;`).

pub mod ledger;
pub mod pg;
pub mod server;
