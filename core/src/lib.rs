//! Lexecon's engine (work in progress).
pub mod storage;
