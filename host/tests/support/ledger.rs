//! Reading a whole ledger back in the form an `append` takes.

#![allow(dead_code, clippy::unwrap_used)]

use lexecon_core::{Entry, EntryRecord, Storage};

/// Every entry of `storage`, as the records an `append` takes.
pub fn export(storage: &mut impl Storage) -> Vec<EntryRecord> {
    let len = storage.len().unwrap();
    storage
        .get_range(0, len)
        .unwrap()
        .into_iter()
        .map(|bytes| {
            let e = Entry::parse(&bytes).unwrap();
            EntryRecord {
                index: e.index,
                entry_hash: e.entry_hash,
                prev_hash: e.prev_hash,
                bytes,
            }
        })
        .collect()
}
