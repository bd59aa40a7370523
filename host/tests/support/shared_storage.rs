//! A memory ledger that the test and the engine under test share: the
//! engine gets a clone, the test reads back exactly what was appended.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use lexecon_core::{EntryRecord, MemoryStorage, Storage, StorageError};

/// Clones share one [`MemoryStorage`].
#[derive(Clone, Default)]
pub struct SharedStorage(pub Arc<Mutex<MemoryStorage>>);

impl SharedStorage {
    /// Every stored entry's bytes, in order.
    pub fn entries(&self) -> Vec<Vec<u8>> {
        let mut s = self.0.lock().unwrap();
        let len = s.len().unwrap();
        s.get_range(0, len).unwrap()
    }
}

impl Storage for SharedStorage {
    fn len(&mut self) -> Result<u64, StorageError> {
        self.0.lock().unwrap().len()
    }
    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.0.lock().unwrap().get(index)
    }
    fn get_range(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        self.0.lock().unwrap().get_range(start, end)
    }
    fn find(&mut self, entry_hash: &str) -> Result<Option<u64>, StorageError> {
        self.0.lock().unwrap().find(entry_hash)
    }
    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        self.0.lock().unwrap().append(entries)
    }
}
