//! placeholder: filled in by the PostgreSQL work
