//! The ledger's persistence, as the engine sees it.
//!
//! The engine never touches files or sockets: every host supplies a
//! [`Storage`] (a file log, PostgreSQL, an async JavaScript adapter behind the
//! two-phase API, the WIT `storage` import). [`MemoryStorage`] is the
//! reference implementation used by tests and benches.

use std::fmt;

use rustc_hash::FxHashMap;

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
#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    entries: Vec<Vec<u8>>,
    /// Entry hash → index. The keys are SHA-256 digests the engine computed,
    /// which nobody can steer into collisions, so the fast unkeyed Fx hash
    /// serves (SipHash of a 64-digit key cost more than the rest of `append`).
    by_hash: FxHashMap<String, u64>,
}

impl MemoryStorage {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mutable access to a stored entry's bytes, for tamper tests.
    pub fn bytes_mut(&mut self, index: u64) -> Option<&mut Vec<u8>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
    }

    /// Removes entry `index` (tamper tests: a deleted entry).
    pub fn remove(&mut self, index: u64) -> Option<Vec<u8>> {
        let i = usize::try_from(index).ok()?;
        (i < self.entries.len()).then(|| self.entries.remove(i))
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

    /// Swaps two entries (tamper tests: reordering).
    pub fn swap(&mut self, a: u64, b: u64) {
        if let (Ok(a), Ok(b)) = (usize::try_from(a), usize::try_from(b))
            && a < self.entries.len()
            && b < self.entries.len()
        {
            self.entries.swap(a, b);
        }
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
        Ok(self.by_hash.get(entry_hash).copied())
    }

    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        self.check_next(entries)?;
        for entry in entries {
            self.by_hash.insert(entry.entry_hash.clone(), entry.index);
            self.entries.push(entry.bytes.clone());
        }
        Ok(())
    }

    fn append_owned(&mut self, entries: Vec<EntryRecord>) -> Result<(), StorageError> {
        self.check_next(&entries)?;
        for entry in entries {
            self.by_hash.insert(entry.entry_hash, entry.index);
            self.entries.push(entry.bytes);
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
    }
}
