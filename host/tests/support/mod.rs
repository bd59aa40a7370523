//! Helpers shared by the host's integration tests (`mod support;`).

pub mod pg;
pub mod server;
