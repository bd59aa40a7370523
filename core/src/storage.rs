//! The ledger's persistence, as the engine sees it.
//!
//! The engine never touches files or sockets: every host supplies a
//! [`Storage`] (a file log, PostgreSQL, an async JavaScript adapter behind the
//! two-phase API, the WIT `storage` import). [`MemoryStorage`] is the
//! reference implementation used by tests and benches.

use std::fmt;

use std::collections::hash_map::Entry;
use std::hash::Hasher as _;

use rustc_hash::{FxHashMap, FxHasher};

use crate::ledger::stored_entry_hash;

/// One ledger entry as handed to storage: its position, its links and the
/// canonical bytes that are stored verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    /// Position in the chain, starting at 0.
    pub index: u64,
    /// Lowercase hex SHA-256 of the entry (see `DESIGN.md`).
    pub entry_hash: String,
    /// `entry_hash` of the previous entry (the genesis hash for index 0).
    pub prev_hash: String,
    /// The entry's RFC 8785 canonical JSON, stored and returned byte for byte.
    pub bytes: Vec<u8>,
}

/// Why a storage call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// Another writer appended first: the log now holds `len` entries and
    /// nothing of this append was written. The engine re-reads and retries.
    Conflict {
        /// The log's length when the append was refused.
        len: u64,
    },
    /// The backend could not be reached or failed (I/O error, database
    /// down). Nothing is acknowledged; the call may be retried.
    Unavailable(String),
    /// The stored data is damaged at `index`.
    Corrupt {
        /// The first damaged index.
        index: u64,
        /// What is wrong, in words.
        detail: String,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conflict { len } => {
                write!(
                    f,
                    "ledger append conflict: another writer advanced the log to {len} entries"
                )
            }
            Self::Unavailable(why) => write!(f, "ledger storage unavailable: {why}"),
            Self::Corrupt { index, detail } => {
                write!(f, "ledger storage corrupt at entry {index}: {detail}")
            }
        }
    }
}

impl std::error::Error for StorageError {}

/// Append-only persistence for ledger entries.
///
/// Implementations store [`EntryRecord::bytes`] verbatim and never reorder.
/// `append` is **durable** when it returns `Ok` (fsync, committed
/// transaction): the engine acknowledges a decision only after that.
pub trait Storage {
    /// Number of entries stored.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the backend cannot answer.
    fn len(&mut self) -> Result<u64, StorageError>;

    /// Whether the log is empty.
    ///
    /// # Errors
    /// As [`Storage::len`].
    fn is_empty(&mut self) -> Result<bool, StorageError> {
        Ok(self.len()? == 0)
    }

    /// The stored bytes of entry `index`, or `None` past the end.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] or [`StorageError::Corrupt`].
    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError>;

    /// Entries `start..end` (clamped to the log's length), in order.
    ///
    /// # Errors
    /// As [`Storage::get`].
    fn get_range(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut out = Vec::new();
        for index in start..end {
            match self.get(index)? {
                Some(bytes) => out.push(bytes),
                None => break,
            }
        }
        Ok(out)
    }

    /// The index of the entry whose `entry_hash` is `entry_hash`.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the backend cannot answer.
    fn find(&mut self, entry_hash: &str) -> Result<Option<u64>, StorageError>;

    /// Durably appends `entries`, which are consecutive and start at the
    /// log's current length. All of them are written, or none is.
    ///
    /// # Errors
    /// [`StorageError::Conflict`] (nothing written) when the log's length is
    /// not `entries[0].index`; [`StorageError::Unavailable`] when the write
    /// or its flush failed.
    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError>;

    /// [`Storage::append`] for entries the caller is done with, so a backend
    /// that keeps them (like [`MemoryStorage`]) can take them instead of
    /// copying. The default appends through [`Storage::append`].
    ///
    /// # Errors
    /// As [`Storage::append`].
    fn append_owned(&mut self, entries: Vec<EntryRecord>) -> Result<(), StorageError> {
        self.append(&entries)
    }
}

/// An in-memory [`Storage`]: the reference implementation, for tests,
/// benches and embedders that persist elsewhere.
///
/// Lookup by hash uses an index that [`Storage::find`] builds when it needs
/// it, so appending never touches a hash table (keeping one current cost a
/// decision ~0.3 µs of random memory access on a large ledger).
#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    entries: Vec<Vec<u8>>,
    /// The hashes of entries whose bytes do not begin with their own hash
    /// (hand-made records; every entry the engine builds does), by index.
    stray_hashes: Vec<(u64, String)>,
    /// A 64-bit digest of an entry's hash → its index, for entries
    /// `..indexed`; a hit is confirmed against the entry's hash. The hashes
    /// are SHA-256 digests nobody can steer into collisions, so the fast
    /// unkeyed Fx hash serves.
    by_digest: FxHashMap<u64, u64>,
    /// Entries whose digest another entry had taken first, by full hash.
    collided: FxHashMap<String, u64>,
    indexed: usize,
}

/// The 64-bit digest [`MemoryStorage`] indexes an entry hash by.
fn digest(entry_hash: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(entry_hash);
    h.finish()
}

impl MemoryStorage {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mutable access to a stored entry's bytes, for tamper tests.
    pub fn bytes_mut(&mut self, index: u64) -> Option<&mut Vec<u8>> {
        self.forget_index();
        usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
    }

    /// Removes entry `index` (tamper tests: a deleted entry).
    pub fn remove(&mut self, index: u64) -> Option<Vec<u8>> {
        let i = usize::try_from(index).ok()?;
        if i >= self.entries.len() {
            return None;
        }
        self.forget_index();
        self.stray_hashes.retain(|(at, _)| *at != index);
        for (at, _) in &mut self.stray_hashes {
            if *at > index {
                *at -= 1;
            }
        }
        Some(self.entries.remove(i))
    }

    /// Swaps two entries (tamper tests: reordering).
    pub fn swap(&mut self, a: u64, b: u64) {
        if let (Ok(i), Ok(j)) = (usize::try_from(a), usize::try_from(b))
            && i < self.entries.len()
            && j < self.entries.len()
        {
            self.forget_index();
            self.entries.swap(i, j);
            for (at, _) in &mut self.stray_hashes {
                if *at == a {
                    *at = b;
                } else if *at == b {
                    *at = a;
                }
            }
            self.stray_hashes.sort_by_key(|(at, _)| *at);
        }
    }

    /// The hash entry `index` was appended with.
    fn hash_of(&self, index: u64) -> Option<&[u8]> {
        let bytes = usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))?;
        stored_entry_hash(bytes).or_else(|| {
            let at = self
                .stray_hashes
                .binary_search_by_key(&index, |(at, _)| *at)
                .ok()?;
            self.stray_hashes.get(at).map(|(_, h)| h.as_bytes())
        })
    }

    /// Brings the hash index up to the log's length.
    fn catch_up_index(&mut self) {
        while self.indexed < self.entries.len() {
            let index = self.indexed as u64;
            if let Some(d) = self.hash_of(index).map(digest) {
                let clash = match self.by_digest.entry(d) {
                    Entry::Vacant(slot) => {
                        slot.insert(index);
                        false
                    }
                    Entry::Occupied(_) => true,
                };
                if clash {
                    let hash = self.hash_of(index).unwrap_or_default();
                    let hash = String::from_utf8_lossy(hash).into_owned();
                    self.collided.insert(hash, index);
                }
            }
            self.indexed += 1;
        }
    }

    /// Drops the hash index (entries moved): the next `find` rebuilds it.
    fn forget_index(&mut self) {
        self.by_digest.clear();
        self.collided.clear();
        self.indexed = 0;
    }

    /// `entries` start at the log's length (else nothing may be written).
    fn check_next(&self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        let len = self.entries.len() as u64;
        let consecutive = entries
            .iter()
            .enumerate()
            .all(|(offset, entry)| entry.index == len + offset as u64);
        if consecutive {
            Ok(())
        } else {
            Err(StorageError::Conflict { len })
        }
    }

    fn push(&mut self, index: u64, entry_hash: impl AsRef<str> + Into<String>, bytes: Vec<u8>) {
        if stored_entry_hash(&bytes) != Some(entry_hash.as_ref().as_bytes()) {
            self.stray_hashes.push((index, entry_hash.into()));
        }
        self.entries.push(bytes);
    }
}

impl Storage for MemoryStorage {
    fn len(&mut self) -> Result<u64, StorageError> {
        Ok(self.entries.len() as u64)
    }

    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))
            .cloned())
    }

    fn find(&mut self, entry_hash: &str) -> Result<Option<u64>, StorageError> {
        self.catch_up_index();
        let hash = entry_hash.as_bytes();
        if let Some(&i) = self.by_digest.get(&digest(hash))
            && self.hash_of(i) == Some(hash)
        {
            return Ok(Some(i));
        }
        Ok(self.collided.get(entry_hash).copied())
    }

    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        self.check_next(entries)?;
        for entry in entries {
            self.push(entry.index, entry.entry_hash.as_str(), entry.bytes.clone());
        }
        Ok(())
    }

    fn append_owned(&mut self, entries: Vec<EntryRecord>) -> Result<(), StorageError> {
        self.check_next(&entries)?;
        for entry in entries {
            self.push(entry.index, entry.entry_hash, entry.bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(index: u64) -> EntryRecord {
        EntryRecord {
            index,
            entry_hash: format!("h{index}"),
            prev_hash: format!("h{}", index.wrapping_sub(1)),
            bytes: vec![index as u8],
        }
    }

    #[test]
    fn find_builds_its_index_when_asked_and_follows_moved_entries() {
        use crate::ledger::{EntryKind, build_entry};
        let entry = |i: u64| {
            build_entry(
                i,
                "prev",
                "2026-12-03T00:00:00.000Z",
                EntryKind::Decision,
                b"{}",
            )
        };
        let (e0, e1, e2) = (entry(0), entry(1), entry(2));
        let mut s = MemoryStorage::new();
        s.append_owned(vec![e0.clone()]).unwrap();
        assert_eq!(s.find(&e0.entry_hash).unwrap(), Some(0));
        // Entries appended after a lookup are indexed by the next one.
        s.append(&[e1.clone(), e2.clone()]).unwrap();
        assert_eq!(s.find(&e2.entry_hash).unwrap(), Some(2));
        assert_eq!(s.find(&e1.entry_hash).unwrap(), Some(1));
        assert_eq!(s.find(&"0".repeat(64)).unwrap(), None);
        // Tampering moves entries; lookups see where they are now.
        s.swap(0, 2);
        assert_eq!(s.find(&e0.entry_hash).unwrap(), Some(2));
        assert_eq!(s.find(&e2.entry_hash).unwrap(), Some(0));
        s.remove(1);
        assert_eq!(s.find(&e1.entry_hash).unwrap(), None);
        assert_eq!(s.find(&e0.entry_hash).unwrap(), Some(1));
    }

    #[test]
    fn append_checks_the_expected_index() {
        let mut s = MemoryStorage::new();
        s.append(&[rec(0), rec(1)]).unwrap();
        assert_eq!(s.append(&[rec(1)]), Err(StorageError::Conflict { len: 2 }));
        assert_eq!(
            s.append_owned(vec![rec(3)]),
            Err(StorageError::Conflict { len: 2 })
        );
        assert_eq!(s.len().unwrap(), 2);
        assert_eq!(s.find("h1").unwrap(), Some(1));
        assert_eq!(s.get(1).unwrap(), Some(vec![1]));
        assert_eq!(s.get(2).unwrap(), None);
        assert_eq!(s.get_range(0, 10).unwrap().len(), 2);
        s.append_owned(vec![rec(2), rec(3)]).unwrap();
        assert_eq!(s.find("h3").unwrap(), Some(3));
        assert_eq!(s.get(3).unwrap(), Some(vec![3]));
        // Records whose bytes do not carry their hash are found all the same,
        // also after tampering moved them.
        s.swap(1, 3);
        assert_eq!(s.find("h3").unwrap(), Some(1));
        assert_eq!(s.find("h1").unwrap(), Some(3));
        s.remove(0);
        assert_eq!(s.find("h3").unwrap(), Some(0));
        assert_eq!(s.find("h1").unwrap(), Some(2));
        assert_eq!(s.find("h0").unwrap(), None);
    }
}
