//! The file ledger backend: [`FileStorage`], an fsynced append-only log file
//! that implements [`Storage`].
//!
//! This module owns the ledger file's on-disk format, crash recovery when the
//! file is opened, the single-writer lock, and the read-only integrity check
//! behind `lexecon ledger verify`.
//!
//! # On-disk format
//!
//! A ledger file is the 8-byte magic `LXLEDG01` ([`FILE_MAGIC`]) followed by
//! zero or more records, back to back, with no padding and no trailer. Each
//! record is a 48-byte header ([`RECORD_HEADER_LEN`]) and a payload:
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! |      0 |    4 | payload length `n`, u32 little-endian                        |
//! |      4 |    4 | CRC-32 (IEEE, as computed by `crc32fast`) over bytes `8..48+n` of the record, i.e. index ‖ entry hash ‖ payload; u32 little-endian |
//! |      8 |    8 | entry index, u64 little-endian                               |
//! |     16 |   32 | entry hash: the 32 raw bytes of `EntryRecord::entry_hash`    |
//! |     48 |  `n` | payload: `EntryRecord::bytes`, verbatim                      |
//!
//! The k-th record in file order (from 0) is ledger entry k, and its index
//! field must say k. `EntryRecord::prev_hash` is not stored: the storage
//! contract only hands back the payload bytes, and the chain link is part of
//! the entry the engine hashes. The length field is not covered by the CRC;
//! a damaged length is caught because the CRC is then taken over the wrong
//! bytes.
//!
//! # Durability
//!
//! [`FileStorage::append`] encodes all its entries into one buffer, writes it
//! at the end of the file with one positioned write, and calls `fdatasync`
//! once (group commit) before returning `Ok`. If the write or the sync fails,
//! the file is cut back to its previous length and synced, so the file and the
//! in-memory index agree; if even that fails the handle is poisoned and every
//! later call fails until the file is reopened (reopening rescans it).
//!
//! **Deferred sync** ([`FileStorage::defer_sync`], used by the server) splits
//! the two: `append` writes and returns, and [`FileStorage::sync`] — called
//! by another thread, covering every append before it — makes them durable.
//! The writer may then prepare its next group while the disk syncs the last
//! one. Entries written but not yet synced are invisible to reads (`len`,
//! `get`, `find` see only synced entries), so nothing not yet durable is ever
//! shown. If the sync fails the handle is poisoned: the page cache can no
//! longer be trusted to say what reached the disk, so every later call fails
//! and the file must be reopened (which rescans it).
//!
//! # Crash recovery on open
//!
//! The file is scanned from the start and every record's CRC is checked:
//!
//! - **Torn tail.** If the file ends inside a record header, or inside the
//!   payload a header declares, and no intact record follows, the tail is an
//!   append interrupted by a crash: [`FileStorage::open`] truncates it (and
//!   syncs), logs a warning and reports it in [`Recovery::truncated_bytes`].
//!   An append is acknowledged only after its sync, so no acknowledged entry
//!   is in a torn tail. So is a tail of zero bytes where a record should
//!   start: the file grew but the append's data never reached the disk
//!   (some file systems read zeros there after a crash), and no record is
//!   all zeros. Zeros that start inside a record are damage (below).
//! - **Created whole.** A new file is written (magic, sync) under a
//!   temporary name and linked into place, so a crash leaves no file or a
//!   complete one. A file shorter than the magic, even an empty one, was
//!   therefore cut or emptied: it is refused ([`FileStorageError::NotALedger`]),
//!   never taken for a new, empty ledger.
//! - **Damage is never truncated.** A complete record is never dropped. A
//!   record whose CRC fails, or whose index field is not its position, keeps
//!   its place: the log's length counts it, reads of it return
//!   [`StorageError::Corrupt`], and it is listed in [`Recovery::problems`] and
//!   by [`FileStorage::check_integrity`].
//! - **Finding the next record after damage.** After a record that fails its
//!   CRC the scanner looks, byte by byte, for the next offset where an intact
//!   record starts whose index is plausible (at least the damaged position,
//!   and at most one more per 48 damaged bytes). The damaged bytes before it
//!   stand for the entries between (none if that record's index is the
//!   damaged position: the bytes are then reported by offset only). So a
//!   damaged length field costs one entry, not the rest of the log.
//! - **Damage at the end.** If no intact record follows a record that fails
//!   its CRC, everything from it to the end of the file is kept as that one
//!   damaged entry (nothing after damage is ever cut). A record whose
//!   declared payload runs past the end of the file is a torn tail, unless
//!   its CRC matches the bytes that are there: then it is a complete last
//!   record whose length field was hit, and is kept as a damaged entry.
//!
//! [`FileStorage::open_read_only`] and [`FileStorage::check_integrity`] do
//! the same scan but never change the file: a torn tail is reported and left.
//!
//! # Locking
//!
//! A writable [`FileStorage`] holds an exclusive lock (`File::try_lock`) on
//! the sibling file `<path>.lock` for its whole lifetime and writes its pid
//! there, so a second writer, in another process or in this one, is refused
//! with [`FileStorageError::Locked`]. The lock file is left behind on close;
//! only the lock matters. Read-only handles and integrity checks take no lock.
//! A handle is `Clone + Send + Sync`: clones share one file, appends are
//! serialised, and reads run in parallel with appends (they never wait for an
//! append's sync).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use lexecon_core::hash::parse_hash_hex;
use lexecon_core::storage::{EntryRecord, Storage, StorageError};

/// The 8 bytes every ledger file starts with.
pub const FILE_MAGIC: [u8; 8] = *b"LXLEDG01";

/// Length in bytes of a record's fixed header (length, CRC, index, hash).
pub const RECORD_HEADER_LEN: u64 = 48;

const MAGIC_LEN: u64 = FILE_MAGIC.len() as u64;
const HEADER_LEN: usize = 48;
const HASH_LEN: usize = 32;
/// Read-ahead used while the file is scanned.
const SCAN_WINDOW: u64 = 1 << 20;
/// Largest byte span one positioned read covers in `get_range`.
const MAX_READ_SPAN: u64 = 1 << 20;

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// A ledger stored in one append-only file; see the [module docs](self) for
/// the format and the recovery rules.
///
/// Cloning is cheap and every clone shares the same file, index and lock.
#[derive(Debug, Clone)]
pub struct FileStorage {
    shared: Arc<Shared>,
}

/// What [`FileStorage::open`] or [`FileStorage::open_read_only`] found in
/// the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Entries in the log, damaged ones included.
    pub records: u64,
    /// Bytes of a torn tail (an interrupted append) cut off the end of the
    /// file by [`FileStorage::open`]. Always 0 for a read-only open.
    pub truncated_bytes: u64,
    /// Bytes of a torn tail that a read-only open left in place.
    pub ignored_tail_bytes: u64,
    /// Damaged records and bytes. They stay in the file; reads of a damaged
    /// entry return [`StorageError::Corrupt`].
    pub problems: Vec<Problem>,
}

/// One damaged spot in a ledger file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The damaged entry, or `None` for damaged bytes that hold no entry.
    pub index: Option<u64>,
    /// Byte offset in the file where the damage starts.
    pub offset: u64,
    /// What is wrong, in words.
    pub detail: String,
}

/// The result of [`FileStorage::check_integrity`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Entries in the log, damaged ones included.
    pub records: u64,
    /// Bytes of a torn tail: an interrupted append that the next writable
    /// open will cut off.
    pub torn_tail_bytes: u64,
    /// Damaged records and bytes, in file order.
    pub problems: Vec<Problem>,
}

impl IntegrityReport {
    /// True when the file has neither damage nor a torn tail.
    pub fn is_clean(&self) -> bool {
        self.torn_tail_bytes == 0 && self.problems.is_empty()
    }
}

/// Why a ledger file could not be opened or checked.
#[derive(Debug)]
pub enum FileStorageError {
    /// Another writable handle, in another process or in this one, has the
    /// ledger open.
    Locked {
        /// The ledger file.
        path: PathBuf,
        /// The lock file that is held.
        lock_path: PathBuf,
        /// The pid the holder wrote into the lock file, when readable.
        holder_pid: Option<u32>,
    },
    /// The directory that should hold the ledger file does not exist.
    MissingDirectory {
        /// The ledger file.
        path: PathBuf,
        /// Its missing directory.
        directory: PathBuf,
    },
    /// The ledger file does not exist (read-only opens never create it).
    NotFound {
        /// The ledger file.
        path: PathBuf,
    },
    /// The file does not start with [`FILE_MAGIC`].
    NotALedger {
        /// The file.
        path: PathBuf,
        /// Its first bytes (at most 8).
        found: Vec<u8>,
    },
    /// An I/O operation failed.
    Io {
        /// The file the operation was on.
        path: PathBuf,
        /// What was being done, as a verb phrase (`"read ledger file"`).
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
}

impl fmt::Display for FileStorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Locked {
                path,
                lock_path,
                holder_pid: Some(pid),
            } if *pid == std::process::id() => write!(
                f,
                "ledger file `{}` is locked by this process (pid {pid}, per `{}`): it is already \
                 open here; share that `FileStorage` handle (it is `Clone`) instead of opening \
                 the file twice",
                path.display(),
                lock_path.display()
            ),
            Self::Locked {
                path,
                lock_path,
                holder_pid,
            } => {
                let holder = match holder_pid {
                    Some(pid) => format!("pid {pid}, per `{}`", lock_path.display()),
                    None => format!("its pid is not in `{}` yet", lock_path.display()),
                };
                write!(
                    f,
                    "ledger file `{}` is locked by another process ({holder}); stop that \
                     `lexecon server` or use its HTTP API, or open the file read-only",
                    path.display()
                )
            }
            Self::MissingDirectory { path, directory } => write!(
                f,
                "cannot create ledger file `{}`: directory `{}` does not exist; create it or \
                 choose another path",
                path.display(),
                directory.display()
            ),
            Self::NotFound { path } => write!(
                f,
                "ledger file `{}` does not exist; check the path (`lexecon init` or \
                 `lexecon ledger create` creates one)",
                path.display()
            ),
            Self::NotALedger { path, found } if FILE_MAGIC.starts_with(found) => write!(
                f,
                "ledger file `{}` holds {} bytes, less than its {}-byte header: it was cut or \
                 emptied (a ledger file is created whole), so its entries are gone; restore it \
                 from a backup, or move it away and run `lexecon ledger create` to start a new \
                 chain",
                path.display(),
                found.len(),
                FILE_MAGIC.len()
            ),
            Self::NotALedger { path, found } => write!(
                f,
                "`{}` is not a lexecon ledger file: it starts with `{}` instead of `{}`; check \
                 the path",
                path.display(),
                found.escape_ascii(),
                FILE_MAGIC.escape_ascii()
            ),
            Self::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} `{}`: {source}", path.display()),
        }
    }
}

impl std::error::Error for FileStorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------

impl FileStorage {
    /// Opens the ledger at `path` for reading and appending, creating the
    /// file (not its directory) if it is missing.
    ///
    /// Takes the lock on `<path>.lock` for the lifetime of the handle and
    /// its clones, scans the file and cuts off a torn tail (see the
    /// [module docs](self)).
    ///
    /// # Errors
    /// [`FileStorageError::Locked`] when another handle has the ledger open,
    /// [`FileStorageError::MissingDirectory`],
    /// [`FileStorageError::NotALedger`] for a foreign file, and
    /// [`FileStorageError::Io`].
    pub fn open(path: impl AsRef<Path>) -> Result<(Self, Recovery), FileStorageError> {
        let path = path.as_ref().to_path_buf();
        let lock = acquire_lock(&path)?;
        let open = || OpenOptions::new().read(true).write(true).open(&path);
        let file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_file(&path)?;
                open()
            }
            opened => opened,
        }
        .map_err(|e| open_error(&path, &path, e, "open ledger file"))?;
        let file = LedgerFile::new(file);
        read_magic(&file, &path)?;
        let scan = scan_file(&file, &path)?;
        let truncated_bytes = cut_torn_tail(&file, &path, &scan)?;
        warn_about_damage(&path, &scan.problems);
        let recovery = Recovery {
            records: scan.index.len(),
            truncated_bytes,
            ignored_tail_bytes: 0,
            problems: scan.problems,
        };
        Ok((
            Self::from_parts(path, file, Some(lock), scan.index),
            recovery,
        ))
    }

    /// Opens the ledger at `path` for reading only: no lock, no changes to
    /// the file, so it works while a server has the ledger open. The handle
    /// sees the entries present when it was opened; a torn tail is reported
    /// in [`Recovery::ignored_tail_bytes`] and left in place.
    ///
    /// # Errors
    /// [`FileStorageError::NotFound`], [`FileStorageError::NotALedger`] and
    /// [`FileStorageError::Io`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<(Self, Recovery), FileStorageError> {
        let path = path.as_ref().to_path_buf();
        let (file, scan) = scan_read_only(&path)?;
        warn_about_damage(&path, &scan.problems);
        let recovery = Recovery {
            records: scan.index.len(),
            truncated_bytes: 0,
            ignored_tail_bytes: scan.tail_bytes,
            problems: scan.problems,
        };
        Ok((Self::from_parts(path, file, None, scan.index), recovery))
    }

    /// Reads the whole ledger at `path` and checks every record, without
    /// taking the lock or changing the file (it can run while a server has
    /// the ledger open).
    ///
    /// # Errors
    /// [`FileStorageError::NotFound`], [`FileStorageError::NotALedger`] and
    /// [`FileStorageError::Io`]. Damage is not an error: it is in the report.
    pub fn check_integrity(path: impl AsRef<Path>) -> Result<IntegrityReport, FileStorageError> {
        let path = path.as_ref();
        let (file, scan) = scan_read_only(path)?;
        let mut problems = scan.problems;
        problems.extend(altered_index(&file, &scan.index, path)?);
        problems.sort_by_key(|p| p.offset);
        Ok(IntegrityReport {
            records: scan.index.len(),
            torn_tail_bytes: scan.tail_bytes,
            problems,
        })
    }

    /// The lock file that guards the ledger at `path`: `<path>.lock`.
    pub fn lock_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// The ledger file this handle reads and writes.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// True for a handle from [`FileStorage::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.shared.lock.is_none()
    }

    fn from_parts(path: PathBuf, file: LedgerFile, lock: Option<File>, index: LedgerIndex) -> Self {
        Self {
            shared: Arc::new(Shared {
                path,
                file,
                lock,
                append_turn: Mutex::new(()),
                deferred_sync: AtomicBool::new(false),
                index: RwLock::new(index),
            }),
        }
    }
}

/// Intact records whose header names another entry hash than the entry's
/// own `entry_hash` (the first field of its canonical JSON), for the records
/// that hold an entry. The CRC covers
/// the header, but whoever rewrote it can rewrite the CRC too; the chain's
/// hashes do not cover it, and lookups by hash go through it.
fn altered_index(
    file: &LedgerFile,
    index: &LedgerIndex,
    path: &Path,
) -> Result<Vec<Problem>, FileStorageError> {
    const PREFIX: &[u8] = b"{\"entry_hash\":\"";
    let mut found = Vec::new();
    let mut head = [0u8; PREFIX.len() + 64];
    for (header_hash, &i) in &index.by_hash {
        let Some(loc) = usize::try_from(i).ok().and_then(|i| index.locs.get(i)) else {
            continue;
        };
        let own = if (loc.payload_len as usize) < head.len() {
            None
        } else {
            file.read_exact_at(&mut head, loc.offset + RECORD_HEADER_LEN)
                .map_err(|source| FileStorageError::Io {
                    path: path.to_path_buf(),
                    action: "read ledger file",
                    source,
                })?;
            head.strip_prefix(PREFIX)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(parse_hash_hex)
        };
        // A payload that is not an entry is for `ledger verify` to report.
        if let Some(own) = own.filter(|own| own != header_hash) {
            found.push(Problem {
                index: Some(i),
                offset: loc.offset,
                detail: format!(
                    "the record header gives entry hash {}, but the entry's own is {}: the file's hash index was altered",
                    lexecon_core::hash::hex(header_hash),
                    lexecon_core::hash::hex(&own)
                ),
            });
        }
    }
    Ok(found)
}

/// Takes the exclusive lock on `<path>.lock` and writes our pid into it.
fn acquire_lock(path: &Path) -> Result<File, FileStorageError> {
    let lock_path = FileStorage::lock_path(path);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| open_error(path, &lock_path, e, "create lock file"))?;
    match try_lock_briefly(&lock) {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(FileStorageError::Locked {
                path: path.to_path_buf(),
                holder_pid: read_holder_pid(&lock_path),
                lock_path,
            });
        }
        Err(TryLockError::Error(source)) => {
            return Err(FileStorageError::Io {
                path: lock_path,
                action: "lock",
                source,
            });
        }
    }
    write_pid(&lock).map_err(|source| FileStorageError::Io {
        path: lock_path,
        action: "write our pid into lock file",
        source,
    })?;
    Ok(lock)
}

/// Takes the lock, retrying for up to [`LOCK_RETRY`]: a lock just released
/// can still be held for a moment by a child process that another thread is
/// spawning (it shares the open file until its `exec`), and a process that
/// is exiting releases its lock a moment after it stops writing.
fn try_lock_briefly(lock: &File) -> Result<(), TryLockError> {
    let deadline = std::time::Instant::now() + LOCK_RETRY;
    loop {
        match lock.try_lock() {
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// How long [`try_lock_briefly`] keeps trying.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

fn write_pid(lock: &File) -> io::Result<()> {
    lock.set_len(0)?;
    let mut writer = lock;
    writer.write_all(format!("{}\n", std::process::id()).as_bytes())
}

fn read_holder_pid(lock_path: &Path) -> Option<u32> {
    std::fs::read_to_string(lock_path).ok()?.trim().parse().ok()
}

/// Maps an error from creating `failed`, the ledger at `path` or its lock
/// file: a missing directory gets its own error.
fn open_error(
    path: &Path,
    failed: &Path,
    source: io::Error,
    action: &'static str,
) -> FileStorageError {
    let directory = parent_directory(path);
    if source.kind() == io::ErrorKind::NotFound && !directory.is_dir() {
        return FileStorageError::MissingDirectory {
            path: path.to_path_buf(),
            directory: directory.to_path_buf(),
        };
    }
    FileStorageError::Io {
        path: failed.to_path_buf(),
        action,
        source,
    }
}

fn parent_directory(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Opens an existing ledger without locking it and scans it.
fn scan_read_only(path: &Path) -> Result<(LedgerFile, Scan), FileStorageError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => FileStorageError::NotFound {
            path: path.to_path_buf(),
        },
        _ => FileStorageError::Io {
            path: path.to_path_buf(),
            action: "open ledger file",
            source,
        },
    })?;
    let file = LedgerFile::new(file);
    read_magic(&file, path)?;
    let scan = scan_file(&file, path)?;
    Ok((file, scan))
}

/// Checks that the file starts with [`FILE_MAGIC`]. A file is created
/// whole, magic included ([`create_file`]), so one that is shorter, even
/// empty, was cut or overwritten, not left half-made by a crash: it is not
/// taken for a new, empty ledger.
fn read_magic(file: &LedgerFile, path: &Path) -> Result<(), FileStorageError> {
    let read_error = |source| FileStorageError::Io {
        path: path.to_path_buf(),
        action: "read ledger file",
        source,
    };
    let file_len = file.len().map_err(read_error)?;
    let mut found = vec![
        0;
        FILE_MAGIC
            .len()
            .min(to_usize(file_len).map_err(read_error)?)
    ];
    file.read_exact_at(&mut found, 0).map_err(read_error)?;
    if found == FILE_MAGIC {
        Ok(())
    } else {
        Err(FileStorageError::NotALedger {
            path: path.to_path_buf(),
            found,
        })
    }
}

/// Creates the ledger file at `path` whole: the magic is written and synced
/// in a temporary file beside it, which is then linked (or, where hard
/// links are not supported, renamed) into place and the directory synced.
/// A crash leaves no file or a complete one, never a part of the magic.
/// Called with the lock held; a file that appeared meanwhile is kept.
fn create_file(path: &Path) -> Result<(), FileStorageError> {
    let directory = parent_directory(path);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".new-{}", std::process::id()));
    let temporary = directory.join(name);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)?;
        f.write_all(&FILE_MAGIC)?;
        f.sync_all()
    })()
    .map_err(|e| open_error(path, &temporary, e, "create ledger file"));
    let placed = written.and_then(|()| match std::fs::hard_link(&temporary, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => std::fs::rename(&temporary, path)
            .map_err(|e| open_error(path, path, e, "create ledger file")),
    });
    let _ = std::fs::remove_file(&temporary);
    placed?;
    sync_directory(directory).map_err(|source| FileStorageError::Io {
        path: directory.to_path_buf(),
        action: "sync the directory of the new ledger file",
        source,
    })
}

#[cfg(unix)]
fn sync_directory(directory: &Path) -> io::Result<()> {
    File::open(directory)?.sync_all()
}

#[cfg(not(unix))]
fn sync_directory(_directory: &Path) -> io::Result<()> {
    Ok(())
}

fn scan_file(file: &LedgerFile, path: &Path) -> Result<Scan, FileStorageError> {
    let read_error = |source| FileStorageError::Io {
        path: path.to_path_buf(),
        action: "read ledger file",
        source,
    };
    let file_len = file.len().map_err(read_error)?;
    Scanner::new(file, file_len).run().map_err(read_error)
}

/// Cuts off the torn tail the scan found; returns how many bytes went.
fn cut_torn_tail(file: &LedgerFile, path: &Path, scan: &Scan) -> Result<u64, FileStorageError> {
    if scan.tail_bytes == 0 {
        return Ok(0);
    }
    file.truncate_durably(scan.index.end)
        .map_err(|source| FileStorageError::Io {
            path: path.to_path_buf(),
            action: "truncate the torn tail of ledger file",
            source,
        })?;
    tracing::warn!(
        path = %path.display(),
        truncated_bytes = scan.tail_bytes,
        records = scan.index.len(),
        "ledger file ended in a torn record (an append interrupted by a crash); truncated it"
    );
    Ok(scan.tail_bytes)
}

fn warn_about_damage(path: &Path, problems: &[Problem]) {
    if let Some(first) = problems.first() {
        tracing::warn!(
            path = %path.display(),
            problems = problems.len(),
            first = %first.detail,
            "ledger file has damaged records; they are kept and reading them fails; \
             run `lexecon ledger verify` for the full list"
        );
    }
}

// ---------------------------------------------------------------------------
// Reading and appending
// ---------------------------------------------------------------------------

impl FileStorage {
    /// Number of entries in the log, damaged ones included.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the handle is poisoned.
    pub fn len(&self) -> Result<u64, StorageError> {
        let index = self.read_index()?;
        index.check_usable(&self.shared.path)?;
        Ok(index.synced_len())
    }

    /// True when the log holds no entry.
    ///
    /// # Errors
    /// As [`FileStorage::len`].
    pub fn is_empty(&self) -> Result<bool, StorageError> {
        Ok(self.len()? == 0)
    }

    /// The payload of entry `index`, or `None` past the end. The record's
    /// CRC is checked on every read.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] for a damaged record,
    /// [`StorageError::Unavailable`] when the read fails.
    pub fn get(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let payloads = self.get_range(index, index.saturating_add(1))?;
        Ok(payloads.into_iter().next())
    }

    /// The payloads of entries `start..end` (clamped to the log's length),
    /// read with few positioned reads; every record's CRC is checked.
    ///
    /// # Errors
    /// As [`FileStorage::get`], for the first damaged entry in the range.
    pub fn get_range(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        let (locs, first_damaged) = {
            let index = self.read_index()?;
            index.check_usable(&self.shared.path)?;
            let end = end.min(index.synced_len());
            if start >= end {
                return Ok(Vec::new());
            }
            let first_damaged = index.first_damaged(start, end);
            let intact_end = first_damaged.as_ref().map_or(end, |(at, _)| *at);
            (index.locs_between(start, intact_end)?, first_damaged)
        };
        let payloads = self.read_records(start, &locs)?;
        match first_damaged {
            Some((index, detail)) => Err(StorageError::Corrupt { index, detail }),
            None => Ok(payloads),
        }
    }

    /// The index of the intact entry whose hash is `entry_hash` (lowercase
    /// hex), or `None`.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the handle is poisoned.
    pub fn find(&self, entry_hash: &str) -> Result<Option<u64>, StorageError> {
        let index = self.read_index()?;
        index.check_usable(&self.shared.path)?;
        Ok(parse_hash_hex(entry_hash)
            .and_then(|hash| index.by_hash.get(&hash).copied())
            .filter(|&at| at < index.synced_len()))
    }

    /// Durably appends `entries`, which must be consecutive and start at the
    /// log's length: one write and one `fdatasync` for all of them, before
    /// `Ok` is returned (after [`FileStorage::defer_sync`]: the write only;
    /// [`FileStorage::sync`] makes them durable). Calls from many threads are
    /// serialised.
    ///
    /// # Errors
    /// [`StorageError::Conflict`] (nothing written) when the indexes do not
    /// continue the log. [`StorageError::Unavailable`] (nothing written) for
    /// a read-only handle, an `entry_hash` that is not 64 lowercase hex
    /// digits or a payload over 4 GiB; also when the write or the sync
    /// failed, after the file was cut back to its previous length (if that
    /// fails too, the handle is poisoned until reopened).
    pub fn append(&self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        if self.is_read_only() {
            return Err(StorageError::Unavailable(format!(
                "ledger `{}` was opened read-only; append through the process that has it open \
                 for writing",
                self.shared.path.display()
            )));
        }
        let _turn = self
            .shared
            .append_turn
            .lock()
            .map_err(|_| state_poisoned(&self.shared.path))?;
        let (len, end) = {
            let index = self.read_index()?;
            index.check_usable(&self.shared.path)?;
            (index.len(), index.end)
        };
        check_sequence(entries, len)?;
        if entries.is_empty() {
            return Ok(());
        }
        let batch = encode_batch(entries, end)?;
        let deferred = self.shared.deferred_sync.load(Ordering::Acquire);
        let written = if deferred {
            self.shared.file.write_all_at(&batch.bytes, end)
        } else {
            self.shared.file.write_durably(&batch.bytes, end)
        };
        if let Err(failure) = written {
            return Err(self.roll_back(end, entries, &failure));
        }
        self.shared
            .index
            .write()
            .map_err(|_| state_poisoned(&self.shared.path))?
            .publish(batch, !deferred);
        Ok(())
    }

    /// Switches this handle and its clones to deferred sync (see the
    /// [module docs](self)): from now on `append` only writes, and entries
    /// are durable — and visible to reads — after the next
    /// [`FileStorage::sync`].
    pub fn defer_sync(&self) {
        self.shared.deferred_sync.store(true, Ordering::Release);
    }

    /// Why this handle (and every clone of it) is unusable until the file
    /// is reopened, when it is: a sync or the undo of a failed append
    /// failed (see the [module docs](self)). `None` while it works.
    pub fn unusable(&self) -> Option<String> {
        match self.read_index() {
            Ok(index) => index.check_usable(&self.shared.path).err(),
            Err(e) => Some(e),
        }
        .map(|e| e.to_string())
    }

    /// Makes every entry appended so far durable with one `fdatasync`, and
    /// visible to reads. Returns the number of durable entries.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the handle is poisoned or the sync
    /// fails; a failed sync poisons the handle, because what reached the
    /// disk is then unknown (reopen the file to rescan it).
    pub fn sync(&self) -> Result<u64, StorageError> {
        let written = {
            let index = self.read_index()?;
            index.check_usable(&self.shared.path)?;
            if index.unsynced == 0 {
                return Ok(index.len());
            }
            index.len()
        };
        // Every entry counted in `written` was written before it was indexed,
        // so this one sync covers them all.
        if let Err(failure) = self.shared.file.sync() {
            let reason = format!("syncing the ledger file failed: {failure}");
            tracing::error!(path = %self.shared.path.display(), %reason, "ledger file poisoned");
            if let Ok(mut index) = self.shared.index.write() {
                index.poisoned = Some(reason.clone());
            }
            return Err(StorageError::Unavailable(format!(
                "ledger `{}` is unusable until reopened: {reason}",
                self.shared.path.display()
            )));
        }
        let mut index = self
            .shared
            .index
            .write()
            .map_err(|_| state_poisoned(&self.shared.path))?;
        index.mark_synced(written);
        Ok(index.synced_len())
    }

    /// Undoes a failed append by cutting the file back to `end`; poisons
    /// the handle when that fails too. Returns the error for the caller.
    fn roll_back(&self, end: u64, entries: &[EntryRecord], failure: &io::Error) -> StorageError {
        let path = self.shared.path.display();
        let what = describe_entries(entries);
        let undo = self.shared.file.truncate_durably(end);
        let Err(undo_failure) = undo else {
            return StorageError::Unavailable(format!(
                "appending {what} to `{path}` failed: {failure}; nothing was appended (the file \
                 was rolled back)"
            ));
        };
        let reason = format!(
            "appending {what} failed: {failure}, and cutting the file back to {end} bytes also \
             failed: {undo_failure}"
        );
        tracing::error!(path = %path, %reason, "ledger file poisoned");
        if let Ok(mut index) = self.shared.index.write() {
            index.poisoned = Some(reason.clone());
        }
        StorageError::Unavailable(format!(
            "ledger `{path}` is unusable until reopened: {reason}"
        ))
    }

    fn read_index(&self) -> Result<RwLockReadGuard<'_, LedgerIndex>, StorageError> {
        self.shared
            .index
            .read()
            .map_err(|_| state_poisoned(&self.shared.path))
    }

    /// Reads and checks the records at `locs`, which are entries
    /// `first_index..`, in spans of at most [`MAX_READ_SPAN`] bytes.
    fn read_records(
        &self,
        first_index: u64,
        locs: &[RecordLoc],
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut payloads = Vec::with_capacity(locs.len());
        let mut rest = locs;
        let mut index = first_index;
        while let Some((batch, tail)) = rest.split_at_checked(span_batch_len(rest)) {
            if batch.is_empty() {
                break;
            }
            self.read_span(index, batch, &mut payloads)?;
            index += batch.len() as u64;
            rest = tail;
        }
        Ok(payloads)
    }

    /// Reads the records at `locs` (entries `first_index..`) with one
    /// positioned read and pushes their payloads.
    fn read_span(
        &self,
        first_index: u64,
        locs: &[RecordLoc],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), StorageError> {
        let (Some(first), Some(last)) = (locs.first(), locs.last()) else {
            return Ok(());
        };
        let unavailable = |e: io::Error| self.read_failure(first_index, e);
        let mut buf = vec![0; to_usize(last.end() - first.offset).map_err(unavailable)?];
        match self.shared.file.read_exact_at(&mut buf, first.offset) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && locs.len() > 1 => {
                // Find the first record the shortened file lost.
                for (k, loc) in locs.iter().enumerate() {
                    self.read_span(first_index + k as u64, std::slice::from_ref(loc), out)?;
                }
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(StorageError::Corrupt {
                    index: first_index,
                    detail: format!(
                        "the file ends before the record at byte {}; was it truncated by another \
                         program?",
                        first.offset
                    ),
                });
            }
            Err(e) => return Err(unavailable(e)),
        }
        for (k, loc) in locs.iter().enumerate() {
            let index = first_index + k as u64;
            let from = to_usize(loc.offset - first.offset).map_err(unavailable)?;
            let to = from + to_usize(loc.frame_len()).map_err(unavailable)?;
            let frame = buf.get(from..to).unwrap_or_default();
            let payload = verify_frame(index, *loc, frame)
                .map_err(|detail| StorageError::Corrupt { index, detail })?;
            out.push(payload.to_vec());
        }
        Ok(())
    }

    fn read_failure(&self, index: u64, e: io::Error) -> StorageError {
        StorageError::Unavailable(format!(
            "reading entry {index} from `{}` failed: {e}",
            self.shared.path.display()
        ))
    }
}

impl Storage for FileStorage {
    fn len(&mut self) -> Result<u64, StorageError> {
        FileStorage::len(self)
    }

    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        FileStorage::get(self, index)
    }

    fn get_range(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        FileStorage::get_range(self, start, end)
    }

    fn find(&mut self, entry_hash: &str) -> Result<Option<u64>, StorageError> {
        FileStorage::find(self, entry_hash)
    }

    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        FileStorage::append(self, entries)
    }
}

fn state_poisoned(path: &Path) -> StorageError {
    StorageError::Unavailable(format!(
        "ledger `{}` is unusable until reopened: a thread panicked while using it",
        path.display()
    ))
}

/// Refuses entries that do not continue a log of `len` entries.
fn check_sequence(entries: &[EntryRecord], len: u64) -> Result<(), StorageError> {
    for (offset, entry) in entries.iter().enumerate() {
        if len.checked_add(offset as u64) != Some(entry.index) {
            return Err(StorageError::Conflict { len });
        }
    }
    Ok(())
}

fn describe_entries(entries: &[EntryRecord]) -> String {
    match (entries.first(), entries.last()) {
        (Some(first), Some(last)) if first.index != last.index => {
            format!("entries {}..={}", first.index, last.index)
        }
        (Some(first), _) => format!("entry {}", first.index),
        _ => "no entries".to_owned(),
    }
}

/// One append, encoded: the bytes to write and what to index once they are
/// durable.
struct EncodedBatch {
    bytes: Vec<u8>,
    records: Vec<(RecordLoc, [u8; HASH_LEN])>,
}

/// Encodes `entries` as records that will start at file offset `end`.
fn encode_batch(entries: &[EntryRecord], end: u64) -> Result<EncodedBatch, StorageError> {
    let size = entries.iter().map(|e| HEADER_LEN + e.bytes.len()).sum();
    let mut batch = EncodedBatch {
        bytes: Vec::with_capacity(size),
        records: Vec::with_capacity(entries.len()),
    };
    for entry in entries {
        let hash = parse_hash_hex(&entry.entry_hash).ok_or_else(|| {
            StorageError::Unavailable(format!(
                "entry {}: entry_hash is not 64 lowercase hex digits (it has {} characters); \
                 nothing was written",
                entry.index,
                entry.entry_hash.len()
            ))
        })?;
        let offset = end + batch.bytes.len() as u64;
        let payload_len = encode_record(&mut batch.bytes, entry.index, &hash, &entry.bytes)
            .ok_or_else(|| {
                StorageError::Unavailable(format!(
                    "entry {}: its {} bytes exceed the 4 GiB record limit; nothing was written",
                    entry.index,
                    entry.bytes.len()
                ))
            })?;
        batch.records.push((
            RecordLoc {
                offset,
                payload_len,
            },
            hash,
        ));
    }
    Ok(batch)
}

// ---------------------------------------------------------------------------
// The in-memory index
// ---------------------------------------------------------------------------

/// The state every clone of a handle shares.
#[derive(Debug)]
struct Shared {
    path: PathBuf,
    file: LedgerFile,
    /// The held lock file; `None` for a read-only handle.
    lock: Option<File>,
    /// Serialises appends.
    append_turn: Mutex<()>,
    /// `append` writes without syncing; [`FileStorage::sync`] syncs.
    deferred_sync: AtomicBool,
    index: RwLock<LedgerIndex>,
}

/// Where one entry's record lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecordLoc {
    offset: u64,
    payload_len: u32,
}

impl RecordLoc {
    fn frame_len(self) -> u64 {
        RECORD_HEADER_LEN + u64::from(self.payload_len)
    }

    fn end(self) -> u64 {
        self.offset + self.frame_len()
    }
}

/// What is known about the file's records.
#[derive(Debug, Default)]
struct LedgerIndex {
    /// One per entry, in index order. A damaged entry's loc points at the
    /// start of the damage.
    locs: Vec<RecordLoc>,
    /// Damaged entries, with what is wrong.
    damaged: BTreeMap<u64, String>,
    /// Entry hash of every intact entry.
    by_hash: HashMap<[u8; HASH_LEN], u64>,
    /// Offset one past the last record kept: where the next append goes.
    end: u64,
    /// How many of the last entries are written but not yet synced (deferred
    /// sync only); reads do not see them.
    unsynced: u64,
    /// Why the handle refuses all calls, after a failed rollback or sync.
    poisoned: Option<String>,
}

impl LedgerIndex {
    fn len(&self) -> u64 {
        self.locs.len() as u64
    }

    /// Entries that are durable: what reads may see.
    fn synced_len(&self) -> u64 {
        self.len() - self.unsynced
    }

    /// The first `written` entries are durable.
    fn mark_synced(&mut self, written: u64) {
        self.unsynced = self.len().saturating_sub(written).min(self.unsynced);
    }

    fn check_usable(&self, path: &Path) -> Result<(), StorageError> {
        match &self.poisoned {
            Some(reason) => Err(StorageError::Unavailable(format!(
                "ledger `{}` is unusable until reopened: {reason}",
                path.display()
            ))),
            None => Ok(()),
        }
    }

    fn first_damaged(&self, start: u64, end: u64) -> Option<(u64, String)> {
        self.damaged
            .range(start..end)
            .next()
            .map(|(index, detail)| (*index, detail.clone()))
    }

    fn locs_between(&self, start: u64, end: u64) -> Result<Vec<RecordLoc>, StorageError> {
        let range = to_usize(start).ok().zip(to_usize(end).ok());
        range
            .and_then(|(start, end)| self.locs.get(start..end))
            .map(<[RecordLoc]>::to_vec)
            .ok_or_else(|| {
                StorageError::Unavailable(format!("entries {start}..{end} are out of range"))
            })
    }

    /// Records a durable append.
    /// Indexes an appended batch; `synced` says whether it is already durable.
    fn publish(&mut self, batch: EncodedBatch, synced: bool) {
        let added = batch.records.len() as u64;
        for (loc, hash) in batch.records {
            self.by_hash.insert(hash, self.len());
            self.locs.push(loc);
        }
        self.end += batch.bytes.len() as u64;
        self.unsynced = if synced { 0 } else { self.unsynced + added };
    }
}

/// How many of the leading `locs` one positioned read should cover: as many
/// as fit in [`MAX_READ_SPAN`] bytes, and at least one.
fn span_batch_len(locs: &[RecordLoc]) -> usize {
    let Some(first) = locs.first() else {
        return 0;
    };
    let fitting = locs
        .iter()
        .skip(1)
        .take_while(|loc| loc.end() - first.offset <= MAX_READ_SPAN)
        .count();
    1 + fitting
}

/// Checks a record read back for entry `index` at `loc`; returns its payload
/// or what is wrong.
fn verify_frame(index: u64, loc: RecordLoc, frame: &[u8]) -> Result<&[u8], String> {
    let changed = "the file was changed after the ledger was opened";
    let offset = loc.offset;
    let header = RecordHeader::parse(frame)
        .ok_or_else(|| format!("the record at byte {offset} is cut short; {changed}"))?;
    let payload = frame.get(HEADER_LEN..).unwrap_or_default();
    if header.payload_len != loc.payload_len || payload.len() as u64 != u64::from(loc.payload_len) {
        return Err(format!(
            "the record at byte {offset} now declares a {}-byte payload instead of {}; {changed}",
            header.payload_len, loc.payload_len
        ));
    }
    if header.index != index {
        return Err(format!(
            "the record at byte {offset} now says it is entry {}; {changed}",
            header.index
        ));
    }
    let computed = record_crc(header.index, &header.hash, payload);
    if computed != header.crc {
        return Err(format!(
            "the record at byte {offset} fails its checksum (stored {:08x}, computed {computed:08x}); \
             {changed}",
            header.crc
        ));
    }
    Ok(payload)
}

// ---------------------------------------------------------------------------
// Scanning a file on open
// ---------------------------------------------------------------------------

/// The outcome of a scan.
struct Scan {
    index: LedgerIndex,
    problems: Vec<Problem>,
    /// Bytes of a torn tail after `index.end`.
    tail_bytes: u64,
}

/// What is wrong with the record at one offset.
enum Damage {
    /// A complete record whose checksum does not match.
    BadChecksum { header: RecordHeader, computed: u32 },
    /// The file ends inside this record: in its header (`None`) or in the
    /// payload the header declares.
    Incomplete(Option<RecordHeader>),
}

impl Damage {
    fn describe(&self, offset: u64, file_len: u64) -> String {
        let available = file_len - offset;
        match self {
            Self::BadChecksum { header, computed } => format!(
                "the record at byte {offset} fails its checksum (stored {:08x}, computed \
                 {computed:08x})",
                header.crc
            ),
            Self::Incomplete(Some(header)) => format!(
                "the record at byte {offset} declares a {}-byte payload but the file ends {} \
                 bytes after its header",
                header.payload_len,
                available.saturating_sub(RECORD_HEADER_LEN)
            ),
            Self::Incomplete(None) => {
                format!("the file ends {available} bytes into the record header at byte {offset}")
            }
        }
    }
}

/// What to do after one scan step.
enum Step {
    /// Continue at this offset.
    Next(u64),
    /// The rest of the file is a torn tail.
    TornTail,
}

/// Reads a ledger file record by record and builds its index.
struct Scanner<'a> {
    window: ReadWindow<'a>,
    index: LedgerIndex,
    problems: Vec<Problem>,
}

impl<'a> Scanner<'a> {
    fn new(file: &'a LedgerFile, file_len: u64) -> Self {
        Self {
            window: ReadWindow::new(file, file_len),
            index: LedgerIndex::default(),
            problems: Vec::new(),
        }
    }

    fn file_len(&self) -> u64 {
        self.window.file_len
    }

    fn run(mut self) -> io::Result<Scan> {
        let mut offset = MAGIC_LEN;
        while offset < self.file_len() {
            match self.step(offset)? {
                Step::Next(next) => offset = next,
                Step::TornTail => break,
            }
        }
        self.index.end = offset;
        Ok(Scan {
            tail_bytes: self.file_len() - offset,
            index: self.index,
            problems: self.problems,
        })
    }

    /// Reads the record at `offset` and indexes it.
    fn step(&mut self, offset: u64) -> io::Result<Step> {
        match read_frame(&mut self.window, offset)? {
            Ok(header) => Ok(Step::Next(self.push_record(offset, header))),
            Err(damage) => self.step_past_damage(offset, damage),
        }
    }

    /// Decides what the damaged bytes at `offset` are: entries up to the
    /// next intact record, a damaged last record, or a torn tail.
    fn step_past_damage(&mut self, offset: u64, damage: Damage) -> io::Result<Step> {
        let reason = damage.describe(offset, self.file_len());
        if let Some((next, next_index)) = self.find_next_record(offset)? {
            self.push_damaged_span(offset, next, next_index, &reason);
            return Ok(Step::Next(next));
        }
        if self.zeros_to_end(offset)? {
            return Ok(Step::TornTail);
        }
        match damage {
            Damage::BadChecksum { .. } => {
                let end = self.file_len();
                self.push_damaged(
                    offset,
                    format!(
                        "{reason}; no intact record follows, so bytes {offset}..{end} are kept \
                         as this one damaged entry"
                    ),
                );
                Ok(Step::Next(end))
            }
            Damage::Incomplete(Some(header)) if self.checksum_matches_to_end(offset, header)? => {
                self.push_damaged(
                    offset,
                    format!(
                        "{reason}; its checksum matches those bytes, so its length field is damaged"
                    ),
                );
                Ok(Step::Next(self.file_len()))
            }
            Damage::Incomplete(_) => Ok(Step::TornTail),
        }
    }

    /// Indexes an intact record at `offset`; returns where the next starts.
    fn push_record(&mut self, offset: u64, header: RecordHeader) -> u64 {
        let position = self.index.len();
        if header.index == position {
            self.index.by_hash.insert(header.hash, position);
            self.index.locs.push(RecordLoc {
                offset,
                payload_len: header.payload_len,
            });
        } else {
            self.push_damaged(
                offset,
                format!(
                    "the record at byte {offset} says it is entry {}, but it is entry {position} \
                     in file order",
                    header.index
                ),
            );
        }
        offset + header.frame_len()
    }

    /// Adds a damaged entry whose damage starts at `offset`.
    fn push_damaged(&mut self, offset: u64, detail: String) {
        let position = self.index.len();
        self.index.locs.push(RecordLoc {
            offset,
            payload_len: 0,
        });
        self.index.damaged.insert(position, detail.clone());
        self.problems.push(Problem {
            index: Some(position),
            offset,
            detail,
        });
    }

    /// Accounts for damaged bytes `start..next` that stand for the entries
    /// before `next_index`, the intact record at `next`.
    fn push_damaged_span(&mut self, start: u64, next: u64, next_index: u64, reason: &str) {
        let position = self.index.len();
        if next_index == position {
            self.problems.push(Problem {
                index: None,
                offset: start,
                detail: format!(
                    "{reason}; bytes {start}..{next} hold no entry (the next intact record, \
                     entry {next_index}, starts after them)"
                ),
            });
        }
        let span = if next_index - position == 1 {
            format!("the next intact record starts at byte {next}")
        } else {
            format!("entries {position}..{next_index} all lie in the damaged bytes {start}..{next}")
        };
        for _ in position..next_index {
            self.push_damaged(start, format!("{reason}; {span}"));
        }
    }

    /// The next offset after `damage_start` where an intact record starts
    /// whose index is plausible, with that index. (Each search starts past
    /// the previous one's find, or ends the scan, so scanning stays linear.)
    fn find_next_record(&mut self, damage_start: u64) -> io::Result<Option<(u64, u64)>> {
        let position = self.index.len();
        let mut candidate = damage_start + 1;
        while candidate + RECORD_HEADER_LEN <= self.file_len() {
            let most = position + (candidate - damage_start) / RECORD_HEADER_LEN;
            if let Some(index) = self.intact_record_at(candidate, position..=most)? {
                return Ok(Some((candidate, index)));
            }
            candidate += 1;
        }
        Ok(None)
    }

    /// The index of the intact record at `offset`, if there is one with an
    /// index in `plausible`.
    fn intact_record_at(
        &mut self,
        offset: u64,
        plausible: std::ops::RangeInclusive<u64>,
    ) -> io::Result<Option<u64>> {
        let header = header_at(&mut self.window, offset)?;
        let fits = offset + header.frame_len() <= self.file_len();
        if !fits || !plausible.contains(&header.index) {
            return Ok(None);
        }
        let payload = self
            .window
            .bytes(offset + RECORD_HEADER_LEN, u64::from(header.payload_len))?;
        Ok(header.checksum_matches(payload).then_some(header.index))
    }

    /// True when every byte from `offset` to the end of the file is zero:
    /// an append whose data never reached the disk although the file grew
    /// (a crash before its sync; some file systems then read zeros there).
    /// No record is all zeros (its length is not 0 and its JSON payload ends
    /// in `}`), so this holds no entry and is a torn tail.
    fn zeros_to_end(&mut self, offset: u64) -> io::Result<bool> {
        let mut at = offset;
        while at < self.file_len() {
            let n = (self.file_len() - at).min(SCAN_WINDOW);
            if self.window.bytes(at, n)?.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            at += n;
        }
        Ok(true)
    }

    /// True when `header`'s checksum matches the bytes from its payload to
    /// the end of the file: a last record whose length field is damaged.
    fn checksum_matches_to_end(&mut self, offset: u64, header: RecordHeader) -> io::Result<bool> {
        let available = self.file_len() - offset - RECORD_HEADER_LEN;
        let payload = self.window.bytes(offset + RECORD_HEADER_LEN, available)?;
        Ok(header.checksum_matches(payload))
    }
}

/// Reads the record at `offset`: its header when it is intact, else what
/// is wrong with it.
fn read_frame(
    window: &mut ReadWindow<'_>,
    offset: u64,
) -> io::Result<Result<RecordHeader, Damage>> {
    let available = window.file_len - offset;
    if available < RECORD_HEADER_LEN {
        return Ok(Err(Damage::Incomplete(None)));
    }
    let header = header_at(window, offset)?;
    if header.frame_len() > available {
        return Ok(Err(Damage::Incomplete(Some(header))));
    }
    let payload = window.bytes(offset + RECORD_HEADER_LEN, u64::from(header.payload_len))?;
    let computed = record_crc(header.index, &header.hash, payload);
    if computed == header.crc {
        Ok(Ok(header))
    } else {
        Ok(Err(Damage::BadChecksum { header, computed }))
    }
}

fn header_at(window: &mut ReadWindow<'_>, offset: u64) -> io::Result<RecordHeader> {
    RecordHeader::parse(window.bytes(offset, RECORD_HEADER_LEN)?)
        .ok_or_else(|| io::Error::other("short record header read"))
}

/// Buffered positioned reads over the file while it is scanned.
struct ReadWindow<'a> {
    file: &'a LedgerFile,
    /// The file's length when the scan started; nothing past it is read.
    file_len: u64,
    /// File offset of `buf[0]`.
    start: u64,
    buf: Vec<u8>,
}

impl<'a> ReadWindow<'a> {
    fn new(file: &'a LedgerFile, file_len: u64) -> Self {
        Self {
            file,
            file_len,
            start: 0,
            buf: Vec::new(),
        }
    }

    /// The `len` bytes at `offset`, which must end within `file_len`.
    fn bytes(&mut self, offset: u64, len: u64) -> io::Result<&[u8]> {
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= self.file_len)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "read past the scanned end")
            })?;
        let buffered_end = self.start + self.buf.len() as u64;
        if offset < self.start || end > buffered_end {
            let refill = len.max(SCAN_WINDOW).min(self.file_len - offset);
            self.buf.resize(to_usize(refill)?, 0);
            self.file.read_exact_at(&mut self.buf, offset)?;
            self.start = offset;
        }
        let from = to_usize(offset - self.start)?;
        let to = from + to_usize(len)?;
        self.buf
            .get(from..to)
            .ok_or_else(|| io::Error::other("scan window out of range"))
    }
}

// ---------------------------------------------------------------------------
// Record encoding
// ---------------------------------------------------------------------------

/// The fixed header in front of every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecordHeader {
    payload_len: u32,
    crc: u32,
    index: u64,
    hash: [u8; HASH_LEN],
}

impl RecordHeader {
    /// Parses the first [`HEADER_LEN`] bytes of `bytes`.
    fn parse(bytes: &[u8]) -> Option<Self> {
        let (payload_len, rest) = bytes.split_first_chunk::<4>()?;
        let (crc, rest) = rest.split_first_chunk::<4>()?;
        let (index, rest) = rest.split_first_chunk::<8>()?;
        let (hash, _) = rest.split_first_chunk::<HASH_LEN>()?;
        Some(Self {
            payload_len: u32::from_le_bytes(*payload_len),
            crc: u32::from_le_bytes(*crc),
            index: u64::from_le_bytes(*index),
            hash: *hash,
        })
    }

    fn frame_len(&self) -> u64 {
        RECORD_HEADER_LEN + u64::from(self.payload_len)
    }

    fn checksum_matches(&self, payload: &[u8]) -> bool {
        record_crc(self.index, &self.hash, payload) == self.crc
    }
}

/// The CRC-32 stored in a record: over index ‖ hash ‖ payload.
fn record_crc(index: u64, hash: &[u8; HASH_LEN], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_le_bytes());
    hasher.update(hash);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one record to `out` and returns its payload length, or `None`
/// (nothing appended) when the payload does not fit the u32 length field.
fn encode_record(
    out: &mut Vec<u8>,
    index: u64,
    hash: &[u8; HASH_LEN],
    payload: &[u8],
) -> Option<u32> {
    let payload_len = u32::try_from(payload.len()).ok()?;
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(&record_crc(index, hash, payload).to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(payload);
    Some(payload_len)
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::other(format!("{n} bytes do not fit in memory")))
}

// ---------------------------------------------------------------------------
// Positioned file I/O
// ---------------------------------------------------------------------------

/// The ledger file, with positioned reads and writes that never share a
/// cursor between threads.
#[derive(Debug)]
struct LedgerFile {
    file: File,
    /// Guards the shared cursor where positioned I/O is emulated by seeking.
    #[cfg(not(unix))]
    cursor: Mutex<()>,
}

impl LedgerFile {
    fn new(file: File) -> Self {
        Self {
            file,
            #[cfg(not(unix))]
            cursor: Mutex::new(()),
        }
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }

    #[cfg(not(unix))]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        seek_io::read_exact_at(&self.file, &self.cursor, buf, offset)
    }

    #[cfg(unix)]
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, buf, offset)
    }

    #[cfg(not(unix))]
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        seek_io::write_all_at(&self.file, &self.cursor, buf, offset)
    }

    /// Writes `bytes` at `offset` and syncs them (one `fdatasync`).
    fn write_durably(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.write_all_at(bytes, offset)?;
        self.file.sync_data()
    }

    /// Syncs everything written so far (one `fdatasync`).
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Cuts the file to `len` bytes and syncs the new length.
    fn truncate_durably(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_data()
    }
}

/// Positioned I/O by seek + read/write under a lock, for platforms without
/// `pread`/`pwrite` (compiled in tests everywhere).
#[cfg(any(not(unix), test))]
mod seek_io {
    use std::fs::File;
    use std::io::{self, Read, Seek, SeekFrom, Write};
    use std::sync::Mutex;

    pub(super) fn read_exact_at(
        file: &File,
        cursor: &Mutex<()>,
        buf: &mut [u8],
        offset: u64,
    ) -> io::Result<()> {
        let _cursor = cursor
            .lock()
            .map_err(|_| io::Error::other("ledger file cursor lock poisoned"))?;
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }

    pub(super) fn write_all_at(
        file: &File,
        cursor: &Mutex<()>,
        buf: &[u8],
        offset: u64,
    ) -> io::Result<()> {
        let _cursor = cursor
            .lock()
            .map_err(|_| io::Error::other("ledger file cursor lock poisoned"))?;
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: [u8; HASH_LEN] = [0xab; HASH_LEN];

    fn encoded(index: u64, hash: &[u8; HASH_LEN], payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(
            encode_record(&mut out, index, hash, payload),
            Some(payload.len() as u32)
        );
        out
    }

    #[test]
    fn record_layout_is_length_crc_index_hash_payload() {
        let bytes = encoded(0x0102_0304_0506_0708, &HASH, b"hi");
        assert_eq!(bytes.len(), HEADER_LEN + 2);
        assert_eq!(&bytes[0..4], &[2, 0, 0, 0]);
        let crc = record_crc(0x0102_0304_0506_0708, &HASH, b"hi");
        assert_eq!(&bytes[4..8], &crc.to_le_bytes());
        assert_eq!(&bytes[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&bytes[16..48], &HASH);
        assert_eq!(&bytes[48..], b"hi");
    }

    #[test]
    fn crc_is_crc32_over_index_hash_and_payload() {
        let mut covered = Vec::new();
        covered.extend_from_slice(&7u64.to_le_bytes());
        covered.extend_from_slice(&HASH);
        covered.extend_from_slice(b"payload");
        assert_eq!(record_crc(7, &HASH, b"payload"), crc32fast::hash(&covered));
        assert_ne!(
            record_crc(8, &HASH, b"payload"),
            record_crc(7, &HASH, b"payload")
        );
        assert_ne!(
            record_crc(7, &[0; HASH_LEN], b"payload"),
            record_crc(7, &HASH, b"payload")
        );
        assert_ne!(
            record_crc(7, &HASH, b"payloae"),
            record_crc(7, &HASH, b"payload")
        );
    }

    #[test]
    fn header_round_trips() {
        let bytes = encoded(42, &HASH, b"{\"a\":1}");
        let header = RecordHeader::parse(&bytes).unwrap();
        assert_eq!(header.payload_len, 7);
        assert_eq!(header.index, 42);
        assert_eq!(header.hash, HASH);
        assert_eq!(header.frame_len(), bytes.len() as u64);
        assert!(header.checksum_matches(b"{\"a\":1}"));
        assert!(!header.checksum_matches(b"{\"a\":2}"));
        assert_eq!(RecordHeader::parse(&bytes[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn empty_payload_is_a_bare_header() {
        let bytes = encoded(0, &HASH, b"");
        assert_eq!(bytes.len(), HEADER_LEN);
        assert_eq!(RecordHeader::parse(&bytes).unwrap().payload_len, 0);
    }

    #[test]
    fn verify_frame_accepts_the_record_and_names_each_kind_of_change() {
        let bytes = encoded(3, &HASH, b"abc");
        let loc = RecordLoc {
            offset: 100,
            payload_len: 3,
        };
        assert_eq!(verify_frame(3, loc, &bytes), Ok(&b"abc"[..]));
        assert!(
            verify_frame(4, loc, &bytes)
                .unwrap_err()
                .contains("says it is entry 3")
        );
        let mut flipped = bytes.clone();
        flipped[HEADER_LEN] ^= 1;
        assert!(
            verify_frame(3, loc, &flipped)
                .unwrap_err()
                .contains("checksum")
        );
        let short = RecordLoc {
            offset: 100,
            payload_len: 2,
        };
        assert!(
            verify_frame(3, short, &bytes)
                .unwrap_err()
                .contains("3-byte payload instead of 2")
        );
        assert!(
            verify_frame(3, loc, &bytes[..10])
                .unwrap_err()
                .contains("cut short")
        );
    }

    #[test]
    fn hash_hex_must_be_64_lowercase_digits() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_hash_hex(&hex), Some(HASH));
        let mut counting = String::new();
        for byte in 0u8..32 {
            counting.push_str(&format!("{byte:02x}"));
        }
        let parsed = parse_hash_hex(&counting).unwrap();
        assert_eq!(parsed.to_vec(), (0u8..32).collect::<Vec<_>>());
        assert_eq!(parse_hash_hex(&"AB".repeat(32)), None);
        assert_eq!(parse_hash_hex(&"ab".repeat(31)), None);
        assert_eq!(parse_hash_hex(&"zz".repeat(32)), None);
        assert_eq!(parse_hash_hex(&"é".repeat(32)), None);
        assert_eq!(parse_hash_hex(""), None);
    }

    #[test]
    fn span_batches_stay_under_the_read_span() {
        let locs: Vec<RecordLoc> = (0..10u64)
            .map(|i| RecordLoc {
                offset: 8 + i * (MAX_READ_SPAN / 4),
                payload_len: 16,
            })
            .collect();
        assert_eq!(span_batch_len(&locs), 4);
        assert_eq!(span_batch_len(&locs[..1]), 1);
        assert_eq!(span_batch_len(&[]), 0);
        let huge = [RecordLoc {
            offset: 8,
            payload_len: u32::MAX,
        }];
        assert_eq!(span_batch_len(&huge), 1);
    }

    #[test]
    fn seek_fallback_reads_and_writes_at_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        let cursor = Mutex::new(());
        seek_io::write_all_at(&file, &cursor, b"world", 6).unwrap();
        seek_io::write_all_at(&file, &cursor, b"hello ", 0).unwrap();
        let mut buf = [0; 5];
        seek_io::read_exact_at(&file, &cursor, &mut buf, 6).unwrap();
        assert_eq!(&buf, b"world");
        let err = seek_io::read_exact_at(&file, &cursor, &mut buf, 9).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn read_window_serves_ranges_and_refuses_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, (0..=255u8).collect::<Vec<_>>()).unwrap();
        let file = LedgerFile::new(File::open(&path).unwrap());
        let mut window = ReadWindow::new(&file, 256);
        assert_eq!(window.bytes(10, 3).unwrap(), &[10, 11, 12]);
        assert_eq!(window.bytes(2, 2).unwrap(), &[2, 3]);
        assert_eq!(
            window.bytes(250, 6).unwrap(),
            &[250, 251, 252, 253, 254, 255]
        );
        assert!(window.bytes(250, 7).is_err());
        assert!(window.bytes(u64::MAX, 2).is_err());
    }
}
