//! Integration tests for the file ledger backend
//! (`lexecon::storage::file::FileStorage`), on real files in temporary
//! directories: round trips, group commit, crash recovery (torn tails at
//! every byte), damage that must be reported and never dropped, locking
//! (in this process and from a child process), rollback of a failed write,
//! and concurrent appends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use lexecon::storage::file::{
    FILE_MAGIC, FileStorage, FileStorageError, RECORD_HEADER_LEN, Recovery,
};
use lexecon::storage::{EntryRecord, Storage, StorageError};
use proptest::prelude::*;
use proptest::sample::Index;
use tempfile::TempDir;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A distinct 64-hex-digit entry hash per index.
fn hash_hex(index: u64) -> String {
    format!(
        "{index:016x}{:016x}{:016x}{:016x}",
        index.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        !index,
        index ^ 0x5555_aaaa_5555_aaaa
    )
}

/// A JSON-looking payload whose length varies with the index.
fn payload(index: u64) -> Vec<u8> {
    let pad = "x".repeat(usize::try_from(index % 23).unwrap());
    format!("{{\"index\":{index},\"pad\":\"{pad}\"}}").into_bytes()
}

fn entry(index: u64) -> EntryRecord {
    EntryRecord {
        index,
        entry_hash: hash_hex(index),
        prev_hash: index
            .checked_sub(1)
            .map_or_else(|| "0".repeat(64), hash_hex),
        bytes: payload(index),
    }
}

fn entries(range: Range<u64>) -> Vec<EntryRecord> {
    range.map(entry).collect()
}

fn ledger_in(dir: &TempDir) -> PathBuf {
    dir.path().join("ledger.lxl")
}

fn open(path: &Path) -> FileStorage {
    FileStorage::open(path).unwrap().0
}

/// Where each record starts, for records with these payload lengths, then
/// where the last one ends: `bounds[k]` is the start of record `k`.
fn record_bounds(payload_lens: impl IntoIterator<Item = usize>) -> Vec<u64> {
    let mut bounds = vec![FILE_MAGIC.len() as u64];
    for len in payload_lens {
        let last = *bounds.last().unwrap();
        bounds.push(last + RECORD_HEADER_LEN + len as u64);
    }
    bounds
}

/// Writes entries `0..n` in one append; returns their record bounds.
fn write_log(path: &Path, n: u64) -> Vec<u64> {
    let storage = open(path);
    storage.append(&entries(0..n)).unwrap();
    record_bounds((0..n).map(|i| payload(i).len()))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn flip_byte(path: &Path, offset: u64, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[usize::try_from(offset).unwrap()] ^= mask;
    fs::write(path, bytes).unwrap();
}

fn truncate_file(path: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn assert_intact(storage: &FileStorage, indexes: impl IntoIterator<Item = u64>) {
    for i in indexes {
        assert_eq!(storage.get(i).unwrap(), Some(payload(i)), "entry {i}");
        assert_eq!(
            storage.find(&hash_hex(i)).unwrap(),
            Some(i),
            "find entry {i}"
        );
    }
}

fn assert_corrupt_at(result: Result<impl std::fmt::Debug, StorageError>, expected: u64) {
    match result {
        Err(StorageError::Corrupt { index, detail }) => {
            assert_eq!(index, expected, "{detail}");
            assert!(!detail.is_empty());
        }
        other => panic!("expected Corrupt at {expected}, got {other:?}"),
    }
}

/// Uses a storage only through the engine's trait.
fn append_through_trait(
    storage: &mut impl Storage,
    batch: &[EntryRecord],
) -> Result<u64, StorageError> {
    storage.append(batch)?;
    storage.len()
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

#[test]
fn append_then_reopen_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery, Recovery::default());
    assert_eq!(fs::read(&path).unwrap(), FILE_MAGIC);
    assert!(FileStorage::lock_path(&path).exists());
    assert!(storage.is_empty().unwrap());

    let mut through_trait = storage.clone();
    assert_eq!(
        append_through_trait(&mut through_trait, &entries(0..1)),
        Ok(1)
    );
    assert_eq!(
        append_through_trait(&mut through_trait, &entries(1..3)),
        Ok(3)
    );
    assert_eq!(storage.len(), Ok(3));
    assert_intact(&storage, 0..3);
    assert_eq!(storage.get(3), Ok(None));
    assert_eq!(storage.get(u64::MAX), Ok(None));
    assert_eq!(storage.get_range(1, 2), Ok(vec![payload(1)]));
    assert_eq!(storage.get_range(0, 100).unwrap().len(), 3);
    assert_eq!(storage.get_range(2, 1), Ok(vec![]));
    assert_eq!(storage.find(&hash_hex(99)), Ok(None));
    assert_eq!(storage.find(&hash_hex(1).to_uppercase()), Ok(None));
    assert_eq!(storage.find("not hex"), Ok(None));
    assert_eq!(
        Storage::get_range(&mut through_trait, 0, 3).unwrap().len(),
        3
    );
    assert_eq!(Storage::find(&mut through_trait, &hash_hex(2)), Ok(Some(2)));
    drop((storage, through_trait));

    let bounds = record_bounds((0..3).map(|i| payload(i).len()));
    assert_eq!(file_len(&path), bounds[3]);
    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(
        recovery,
        Recovery {
            records: 3,
            ..Recovery::default()
        }
    );
    assert_intact(&storage, 0..3);
    storage.append(&entries(3..4)).unwrap();
    assert_intact(&storage, 0..4);
}

#[test]
fn group_append_of_1000_entries_in_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let storage = open(&path);
    storage.append(&entries(0..1000)).unwrap();
    assert_eq!(storage.len(), Ok(1000));
    let bounds = record_bounds((0..1000).map(|i| payload(i).len()));
    assert_eq!(file_len(&path), bounds[1000]);
    assert_eq!(
        storage.get_range(0, 1000).unwrap(),
        (0..1000).map(payload).collect::<Vec<_>>()
    );
    drop(storage);

    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.records, 1000);
    assert!(recovery.problems.is_empty());
    assert_eq!(
        storage.get_range(0, 1000).unwrap(),
        (0..1000).map(payload).collect::<Vec<_>>()
    );
    assert_intact(&storage, [0, 1, 499, 998, 999]);
    assert!(FileStorage::check_integrity(&path).unwrap().is_clean());
}

#[test]
fn large_payloads_round_trip_across_read_spans() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let storage = open(&path);
    let big: Vec<EntryRecord> = (0..5u64)
        .map(|i| EntryRecord {
            bytes: vec![u8::try_from(i).unwrap(); 700 * 1024],
            ..entry(i)
        })
        .collect();
    storage.append(&big).unwrap();
    let expected: Vec<Vec<u8>> = big.iter().map(|e| e.bytes.clone()).collect();
    assert_eq!(storage.get_range(0, 5).unwrap(), expected);
    drop(storage);
    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.records, 5);
    assert_eq!(storage.get_range(0, 5).unwrap(), expected);
}

#[test]
fn handles_are_send_sync_and_clones_share_one_log() {
    fn assert_shareable<T: Send + Sync + Clone + 'static>() {}
    assert_shareable::<FileStorage>();

    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let a = open(&path);
    let b = a.clone();
    a.append(&entries(0..2)).unwrap();
    assert_eq!(b.len(), Ok(2));
    b.append(&entries(2..3)).unwrap();
    assert_intact(&a, 0..3);
    assert_eq!(a.path(), path.as_path());
    assert!(!a.is_read_only());
}

#[test]
fn deferred_sync_hides_entries_until_synced_and_keeps_appending() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let writer = open(&path);
    writer.append(&entries(0..2)).unwrap();
    let reader = writer.clone();
    writer.defer_sync();

    // Written, not yet synced: the writer continues the log, reads do not
    // see the new entries (by length, index or hash).
    writer.append(&entries(2..4)).unwrap();
    writer.append(&entries(4..5)).unwrap();
    assert!(matches!(
        writer.append(&entries(2..3)),
        Err(StorageError::Conflict { len: 5 })
    ));
    assert_eq!(reader.len(), Ok(2));
    assert_eq!(reader.get(2), Ok(None));
    assert_eq!(reader.get_range(0, 5).unwrap().len(), 2);
    assert_eq!(reader.find(&hash_hex(3)), Ok(None));
    assert_eq!(reader.find(&hash_hex(1)), Ok(Some(1)));

    // One sync makes everything written so far durable and visible.
    assert_eq!(writer.sync(), Ok(5));
    assert_eq!(reader.len(), Ok(5));
    assert_eq!(reader.find(&hash_hex(3)), Ok(Some(3)));
    assert_intact(&reader, 0..5);
    assert_eq!(writer.sync(), Ok(5));

    // What was synced is what a reopen finds.
    drop((writer, reader));
    let reopened = open(&path);
    assert_intact(&reopened, 0..5);
    assert_eq!(reopened.len(), Ok(5));
}

// ---------------------------------------------------------------------------
// Conflicts and refused input
// ---------------------------------------------------------------------------

#[test]
fn conflicting_or_invalid_appends_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    write_log(&path, 3);
    let storage = open(&path);
    let size = file_len(&path);

    assert_eq!(
        storage.append(&entries(2..3)),
        Err(StorageError::Conflict { len: 3 })
    );
    assert_eq!(
        storage.append(&entries(4..5)),
        Err(StorageError::Conflict { len: 3 })
    );
    assert_eq!(
        storage.append(&[entry(3), entry(5)]),
        Err(StorageError::Conflict { len: 3 })
    );
    let bad_hash = EntryRecord {
        entry_hash: hash_hex(3).to_uppercase(),
        ..entry(3)
    };
    match storage.append(&[bad_hash]) {
        Err(StorageError::Unavailable(why)) => assert!(why.contains("64 lowercase hex"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // A bad hash late in a batch refuses the whole batch.
    let short_hash = EntryRecord {
        entry_hash: "abc".to_owned(),
        ..entry(4)
    };
    assert!(matches!(
        storage.append(&[entry(3), short_hash]),
        Err(StorageError::Unavailable(_))
    ));
    assert_eq!(storage.append(&[]), Ok(()));
    assert_eq!(file_len(&path), size);
    assert_eq!(storage.len(), Ok(3));

    storage.append(&entries(3..5)).unwrap();
    drop(storage);
    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.records, 5);
    assert_intact(&storage, 0..5);
}

// ---------------------------------------------------------------------------
// Crash recovery: torn tails
// ---------------------------------------------------------------------------

#[test]
fn torn_tail_at_every_byte_of_the_last_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let bounds = write_log(&path, 5);
    let full = fs::read(&path).unwrap();
    let (last_start, last_end) = (bounds[4], bounds[5]);

    for cut in last_start..last_end {
        fs::write(&path, &full[..usize::try_from(cut).unwrap()]).unwrap();
        let (storage, recovery) = FileStorage::open(&path).unwrap();
        assert_eq!(
            recovery,
            Recovery {
                records: 4,
                truncated_bytes: cut - last_start,
                ..Recovery::default()
            },
            "cut at {cut}"
        );
        assert_eq!(file_len(&path), last_start, "cut at {cut}");
        assert_intact(&storage, 0..4);
        assert_eq!(storage.get(4), Ok(None));

        storage.append(&entries(4..5)).unwrap();
        drop(storage);
        let (storage, recovery) = FileStorage::open(&path).unwrap();
        assert_eq!(recovery.records, 5, "cut at {cut}");
        assert_eq!(recovery.truncated_bytes, 0);
        assert_intact(&storage, 0..5);
        assert_eq!(
            fs::read(&path).unwrap(),
            full,
            "the re-append restores the same bytes"
        );
    }
}

#[test]
fn torn_tail_inside_a_group_keeps_the_groups_complete_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let storage = open(&path);
    storage.append(&entries(0..2)).unwrap();
    storage.append(&entries(2..10)).unwrap();
    drop(storage);
    let bounds = record_bounds((0..10).map(|i| payload(i).len()));
    truncate_file(&path, bounds[7] + 30);

    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.records, 7);
    assert_eq!(recovery.truncated_bytes, 30);
    assert_intact(&storage, 0..7);
}

/// A crash after the file grew but before the append's data reached the
/// disk leaves zeros where its records should be (XFS reads unwritten
/// extents as zeros): of any length, a torn tail, not a run of damaged
/// entries that keeps the ledger from opening.
#[test]
fn zeros_where_the_next_record_should_start_are_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let bounds = write_log(&path, 4);
    let full = fs::read(&path).unwrap();
    for zeros in [1_usize, 47, 48, 49, 1300, 3 << 20] {
        let mut bytes = full.clone();
        bytes.resize(full.len() + zeros, 0);
        fs::write(&path, &bytes).unwrap();

        let report = FileStorage::check_integrity(&path).unwrap();
        assert_eq!(report.records, 4, "{zeros} zeros");
        assert!(
            report.problems.is_empty(),
            "{zeros} zeros: {:?}",
            report.problems
        );
        assert_eq!(report.torn_tail_bytes, u64::try_from(zeros).unwrap());
        let (storage, recovery) = FileStorage::open(&path).unwrap();
        assert_eq!(
            recovery,
            Recovery {
                records: 4,
                truncated_bytes: u64::try_from(zeros).unwrap(),
                ..Recovery::default()
            },
            "{zeros} zeros"
        );
        assert_eq!(file_len(&path), bounds[4]);
        assert_intact(&storage, 0..4);
        storage.append(&entries(4..5)).unwrap();
        drop(storage);
        assert_eq!(FileStorage::open(&path).unwrap().1.records, 5);
        fs::write(&path, &full).unwrap();
    }
}

#[test]
fn read_only_open_reports_a_torn_tail_and_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let bounds = write_log(&path, 4);
    truncate_file(&path, bounds[4] - 5);
    let torn_len = bounds[4] - 5 - bounds[3];

    let (reader, recovery) = FileStorage::open_read_only(&path).unwrap();
    assert_eq!(
        recovery,
        Recovery {
            records: 3,
            ignored_tail_bytes: torn_len,
            ..Recovery::default()
        }
    );
    assert!(reader.is_read_only());
    assert_intact(&reader, 0..3);
    match reader.append(&entries(3..4)) {
        Err(StorageError::Unavailable(why)) => assert!(why.contains("read-only"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let report = FileStorage::check_integrity(&path).unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(report.torn_tail_bytes, torn_len);
    assert!(report.problems.is_empty());
    assert!(!report.is_clean());
    assert_eq!(
        file_len(&path),
        bounds[4] - 5,
        "read-only opens never change the file"
    );

    let (_, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.truncated_bytes, torn_len);
    assert_eq!(file_len(&path), bounds[3]);
}

/// A ledger file is created whole (written under a temporary name, then
/// linked into place), so a file shorter than its header, even an empty
/// one, was cut or emptied: refused by every open, never started over as a
/// new, empty chain.
#[test]
fn a_file_shorter_than_its_header_is_refused_not_started_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    write_log(&path, 3);
    for len in [0, 3, 7] {
        fs::write(&path, &FILE_MAGIC[..len]).unwrap();
        for e in [
            FileStorage::open(&path).map(|_| ()).unwrap_err(),
            FileStorage::open_read_only(&path).map(|_| ()).unwrap_err(),
            FileStorage::check_integrity(&path).map(|_| ()).unwrap_err(),
        ] {
            assert!(matches!(e, FileStorageError::NotALedger { .. }), "{e}");
            let text = e.to_string();
            assert!(
                text.contains(&format!("holds {len} bytes, less than its 8-byte header"))
                    && text.contains("lexecon ledger create"),
                "{text}"
            );
        }
        assert_eq!(
            fs::read(&path).unwrap(),
            &FILE_MAGIC[..len],
            "left as it was"
        );
    }
}

/// Creating leaves the header alone in the file and no temporary file
/// beside it.
#[test]
fn a_new_file_is_created_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery, Recovery::default());
    assert_eq!(fs::read(&path).unwrap(), FILE_MAGIC);
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(names, [file.clone(), format!("{file}.lock")]);
    storage.append(&entries(0..1)).unwrap();
    assert_intact(&storage, 0..1);
}

// ---------------------------------------------------------------------------
// Damage: reported, never dropped
// ---------------------------------------------------------------------------

/// Flips every byte of record `target` of a 5-record log, one at a time,
/// with each mask, and checks the damage is reported and nothing is lost.
fn check_every_flip_in_record(target: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let bounds = write_log(&path, 5);
    let full = fs::read(&path).unwrap();
    let t = usize::try_from(target).unwrap();

    for offset in bounds[t]..bounds[t + 1] {
        for mask in [0x01, 0x80] {
            let context = format!("record {target}, byte {offset}, mask {mask:#04x}");
            fs::write(&path, &full).unwrap();
            flip_byte(&path, offset, mask);

            let report = FileStorage::check_integrity(&path).unwrap();
            assert_eq!(report.records, 5, "{context}");
            assert_eq!(report.torn_tail_bytes, 0, "{context}");
            assert_eq!(report.problems.len(), 1, "{context}: {report:?}");
            assert_eq!(report.problems[0].index, Some(target), "{context}");
            assert_eq!(report.problems[0].offset, bounds[t], "{context}");

            let (storage, recovery) = FileStorage::open(&path).unwrap();
            assert_eq!(recovery.records, 5, "{context}");
            assert_eq!(recovery.truncated_bytes, 0, "{context}");
            assert_eq!(recovery.problems, report.problems, "{context}");
            assert_eq!(
                file_len(&path),
                *bounds.last().unwrap(),
                "{context}: nothing cut"
            );
            assert_corrupt_at(storage.get(target), target);
            assert_corrupt_at(storage.get_range(0, 5), target);
            assert_intact(&storage, (0..5).filter(|i| *i != target));

            // The log goes on after the damaged record, and survives a reopen.
            storage.append(&entries(5..6)).unwrap();
            drop(storage);
            let (storage, recovery) = FileStorage::open(&path).unwrap();
            assert_eq!(recovery.records, 6, "{context}");
            assert_eq!(recovery.truncated_bytes, 0, "{context}");
            assert_eq!(
                recovery.problems.len(),
                1,
                "{context}: {:?}",
                recovery.problems
            );
            assert_eq!(recovery.problems[0].index, Some(target), "{context}");
            assert_corrupt_at(storage.get(target), target);
            assert_intact(&storage, (0..6).filter(|i| *i != target));
        }
    }
}

#[test]
fn flipped_byte_anywhere_in_a_middle_record_is_reported_and_kept() {
    check_every_flip_in_record(2);
}

#[test]
fn flipped_byte_anywhere_in_the_last_record_is_reported_and_kept() {
    check_every_flip_in_record(4);
}

#[test]
fn flipped_byte_in_the_first_record_is_reported_and_kept() {
    check_every_flip_in_record(0);
}

#[test]
fn damaged_region_spanning_records_costs_only_those_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let bounds = write_log(&path, 8);
    let mut bytes = fs::read(&path).unwrap();
    let from = usize::try_from(bounds[2] + 10).unwrap();
    let to = usize::try_from(bounds[5] + 20).unwrap();
    bytes[from..to].fill(0);
    fs::write(&path, bytes).unwrap();

    let report = FileStorage::check_integrity(&path).unwrap();
    assert_eq!(report.records, 8);
    let damaged: Vec<Option<u64>> = report.problems.iter().map(|p| p.index).collect();
    assert_eq!(damaged, vec![Some(2), Some(3), Some(4), Some(5)]);

    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.records, 8);
    for i in 2..6 {
        assert_corrupt_at(storage.get(i), i);
    }
    assert_intact(&storage, [0, 1, 6, 7]);
}

#[test]
fn damaged_tail_is_one_damaged_entry_and_is_never_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let bounds = write_log(&path, 6);
    let mut bytes = fs::read(&path).unwrap();
    let from = usize::try_from(bounds[3] + 20).unwrap();
    bytes[from..].fill(0);
    fs::write(&path, &bytes).unwrap();

    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.records, 4);
    assert_eq!(recovery.truncated_bytes, 0);
    assert_eq!(recovery.problems.len(), 1);
    assert_eq!(recovery.problems[0].index, Some(3));
    assert_eq!(file_len(&path), bounds[6], "damaged bytes are kept");
    assert_corrupt_at(storage.get(3), 3);
    assert_intact(&storage, 0..3);

    // Appending goes on after the damaged bytes, and a reopen agrees.
    storage.append(&entries(4..5)).unwrap();
    drop(storage);
    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.records, 5);
    assert_eq!(recovery.problems.len(), 1);
    assert_corrupt_at(storage.get(3), 3);
    assert_intact(&storage, [0, 1, 2, 4]);
}

#[test]
fn inserted_garbage_is_reported_by_offset_and_entries_keep_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let bounds = write_log(&path, 4);
    let mut bytes = fs::read(&path).unwrap();
    let at = usize::try_from(bounds[2]).unwrap();
    bytes.splice(at..at, [0xee; 100]);
    fs::write(&path, bytes).unwrap();

    let report = FileStorage::check_integrity(&path).unwrap();
    assert_eq!(report.records, 4);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].index, None);
    assert_eq!(report.problems[0].offset, bounds[2]);

    let (storage, _) = FileStorage::open(&path).unwrap();
    assert_intact(&storage, 0..4);
}

#[test]
fn record_with_a_wrong_index_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let bounds = write_log(&path, 3);
    // Replace record 1 by a well-formed record that claims index 7.
    let mut bytes = fs::read(&path).unwrap();
    let (start, end) = (
        usize::try_from(bounds[1]).unwrap(),
        usize::try_from(bounds[2]).unwrap(),
    );
    let other_dir = tempfile::tempdir().unwrap();
    let other = ledger_in(&other_dir);
    let other_storage = open(&other);
    other_storage.append(&entries(0..7)).unwrap();
    let impostor = EntryRecord {
        bytes: payload(1),
        ..entry(7)
    };
    other_storage.append(&[impostor]).unwrap();
    drop(other_storage);
    let other_bytes = fs::read(&other).unwrap();
    let impostor_bytes = &other_bytes[other_bytes.len() - (end - start)..];
    bytes.splice(start..end, impostor_bytes.iter().copied());
    fs::write(&path, bytes).unwrap();

    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.records, 3);
    assert_eq!(recovery.problems.len(), 1);
    assert!(
        recovery.problems[0].detail.contains("says it is entry 7"),
        "{:?}",
        recovery.problems
    );
    assert_corrupt_at(storage.get(1), 1);
    assert_eq!(storage.find(&hash_hex(7)), Ok(None));
    assert_intact(&storage, [0, 2]);
}

#[test]
fn damage_after_open_is_caught_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let bounds = write_log(&path, 3);
    let storage = open(&path);
    flip_byte(&path, bounds[1] + RECORD_HEADER_LEN + 2, 0x20);
    assert_corrupt_at(storage.get(1), 1);
    assert_corrupt_at(storage.get_range(0, 3), 1);
    assert_intact(&storage, [0, 2]);
}

// ---------------------------------------------------------------------------
// Opening errors
// ---------------------------------------------------------------------------

#[test]
fn open_creates_the_file_but_not_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("ledger.lxl");
    let err = FileStorage::open(&path).unwrap_err();
    assert!(
        matches!(err, FileStorageError::MissingDirectory { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("does not exist"), "{message}");
    assert!(
        message.contains(&dir.path().join("missing").display().to_string()),
        "{message}"
    );
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn a_file_that_is_not_a_ledger_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    fs::write(&path, b"hello, world").unwrap();

    let err = FileStorage::open(&path).unwrap_err();
    assert!(
        matches!(err, FileStorageError::NotALedger { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a lexecon ledger file"), "{message}");
    assert!(matches!(
        FileStorage::open_read_only(&path),
        Err(FileStorageError::NotALedger { .. })
    ));
    assert!(matches!(
        FileStorage::check_integrity(&path),
        Err(FileStorageError::NotALedger { .. })
    ));
    // Shorter than the magic and not a prefix of it: refused too (a prefix
    // would be a half-written header, see `half_written_file_header_is_completed`).
    fs::write(&path, b"LXX").unwrap();
    let err = FileStorage::open(&path).unwrap_err();
    assert!(
        matches!(err, FileStorageError::NotALedger { .. }),
        "{err:?}"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        b"LXX",
        "a refused file is left alone"
    );
}

#[test]
fn read_only_open_and_check_of_a_missing_file_fail_without_creating_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let err = FileStorage::open_read_only(&path).unwrap_err();
    assert!(matches!(err, FileStorageError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"));
    assert!(matches!(
        FileStorage::check_integrity(&path),
        Err(FileStorageError::NotFound { .. })
    ));
    assert!(!path.exists());
}

// ---------------------------------------------------------------------------
// Locking
// ---------------------------------------------------------------------------

#[test]
fn second_open_in_the_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let first = open(&path);
    first.append(&entries(0..2)).unwrap();

    let err = FileStorage::open(&path).unwrap_err();
    match &err {
        FileStorageError::Locked {
            holder_pid,
            lock_path,
            ..
        } => {
            assert_eq!(*holder_pid, Some(std::process::id()));
            assert_eq!(*lock_path, FileStorage::lock_path(&path));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("is locked"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains(".lock"), "{message}");

    // Read-only handles and integrity checks take no lock.
    let (reader, recovery) = FileStorage::open_read_only(&path).unwrap();
    assert_eq!(recovery.records, 2);
    assert_intact(&reader, 0..2);
    assert!(FileStorage::check_integrity(&path).unwrap().is_clean());

    // The lock lives as long as any clone.
    let clone = first.clone();
    drop(first);
    assert!(matches!(
        FileStorage::open(&path),
        Err(FileStorageError::Locked { .. })
    ));
    drop(clone);
    let (reopened, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.records, 2);
    assert_intact(&reopened, 0..2);
}

const CHILD_ENV: &str = "LEXECON_FILE_STORAGE_TEST_CHILD";
const CHILD_HOLDS_LOCK: &str = "CHILD-HOLDS-LOCK";
const CHILD_ROLLBACK_OK: &str = "CHILD-ROLLBACK-OK";

/// Not a test on its own: the child-process half of the tests below, run
/// by re-executing this test binary with [`CHILD_ENV`] set.
#[test]
fn child_process_helper() {
    let Ok(task) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, path) = task.split_once(':').unwrap();
    match mode {
        "hold-lock" => child_hold_lock(Path::new(path)),
        "rollback" => child_rollback(Path::new(path)),
        other => panic!("unknown child mode {other}"),
    }
}

fn child_command(mode: &str, path: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_process_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", path.display()));
    command
}

/// Child: opens the ledger, appends one entry, says so, and holds the lock
/// until its stdin is closed.
fn child_hold_lock(path: &Path) {
    let storage = open(path);
    storage.append(&entries(0..1)).unwrap();
    println!("{CHILD_HOLDS_LOCK}");
    std::io::stdout().flush().unwrap();
    std::io::stdin().read_to_end(&mut Vec::new()).unwrap();
    drop(storage);
}

#[test]
fn another_process_is_refused_while_it_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let mut child = child_command("hold-lock", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "child exited before locking"
        );
        if line.contains(CHILD_HOLDS_LOCK) {
            break;
        }
    }

    let err = FileStorage::open(&path).unwrap_err();
    match &err {
        FileStorageError::Locked { holder_pid, .. } => assert_eq!(*holder_pid, Some(child.id())),
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("locked by another process"), "{message}");
    assert!(
        message.contains(&format!("pid {}", child.id())),
        "{message}"
    );
    assert!(message.contains("lexecon server"), "{message}");

    let (reader, _) = FileStorage::open_read_only(&path).unwrap();
    assert_intact(&reader, 0..1);

    drop(child.stdin.take());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "child failed: {rest}");
    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert_eq!(recovery.records, 1);
    assert_intact(&storage, 0..1);
}

// ---------------------------------------------------------------------------
// Failed writes
// ---------------------------------------------------------------------------

/// Child, run with a 32 KiB file size limit: an append that hits the limit
/// fails, is rolled back, and the storage goes on working.
fn child_rollback(path: &Path) {
    let storage = open(path);
    storage.append(&entries(0..1)).unwrap();
    let size = file_len(path);
    // A small record, then one that crosses the limit: both must go.
    let batch = [
        entry(1),
        EntryRecord {
            bytes: vec![b'x'; 64 * 1024],
            ..entry(2)
        },
    ];
    match storage.append(&batch) {
        Err(StorageError::Unavailable(why)) => assert!(why.contains("rolled back"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(file_len(path), size, "the file is cut back");
    assert_eq!(storage.len(), Ok(1));
    assert_eq!(storage.get(1), Ok(None));
    storage.append(&entries(1..2)).unwrap();
    assert_intact(&storage, 0..2);
    drop(storage);
    let (storage, recovery) = FileStorage::open(path).unwrap();
    assert_eq!(
        recovery,
        Recovery {
            records: 2,
            ..Recovery::default()
        }
    );
    assert_intact(&storage, 0..2);
    println!("{CHILD_ROLLBACK_OK}");
}

#[cfg(target_os = "linux")]
#[test]
fn failed_append_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let child = child_command("rollback", &path);
    // Ignore SIGXFSZ so that exceeding the limit is an EFBIG error, limit
    // file sizes to 64 blocks of 512 bytes, then run the child.
    let script = r#"trap '' XFSZ; ulimit -f 64; exec "$0" "$@""#;
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(child.get_program())
        .args(child.get_args())
        .envs(child.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(CHILD_ROLLBACK_OK),
        "child did not run:\n{stdout}\n{stderr}"
    );
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

fn tagged_payload(index: u64, thread: u64) -> Vec<u8> {
    format!("{{\"index\":{index},\"thread\":{thread}}}").into_bytes()
}

#[test]
fn concurrent_appends_from_8_threads_are_gap_free() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_in(&dir);
    let storage = open(&path);
    let done = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let storage = storage.clone();
            let done = Arc::clone(&done);
            thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let len = storage.len().unwrap();
                    let all = storage.get_range(0, len).unwrap();
                    assert_eq!(all.len() as u64, len);
                    for (i, bytes) in all.iter().enumerate() {
                        let prefix = format!("{{\"index\":{i},");
                        assert!(bytes.starts_with(prefix.as_bytes()));
                    }
                }
            })
        })
        .collect();

    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let storage = storage.clone();
            thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    loop {
                        let len = storage.len().unwrap();
                        let record = EntryRecord {
                            index: len,
                            entry_hash: hash_hex(len),
                            prev_hash: String::new(),
                            bytes: tagged_payload(len, t),
                        };
                        match storage.append(&[record]) {
                            Ok(()) => break,
                            Err(StorageError::Conflict { len: now }) => assert!(now > len),
                            Err(other) => panic!("append failed: {other}"),
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }

    let check = |storage: &FileStorage| {
        let total = THREADS * PER_THREAD;
        assert_eq!(storage.len(), Ok(total));
        let mut per_thread = vec![0; usize::try_from(THREADS).unwrap()];
        for (i, bytes) in storage.get_range(0, total).unwrap().iter().enumerate() {
            let i = i as u64;
            let thread = (0..THREADS)
                .find(|t| *bytes == tagged_payload(i, *t))
                .unwrap();
            per_thread[usize::try_from(thread).unwrap()] += 1;
            assert_eq!(storage.find(&hash_hex(i)), Ok(Some(i)));
        }
        assert!(
            per_thread.iter().all(|n| *n == PER_THREAD),
            "{per_thread:?}"
        );
    };
    check(&storage);
    drop(storage);
    let (storage, recovery) = FileStorage::open(&path).unwrap();
    assert!(recovery.problems.is_empty());
    check(&storage);
}

// ---------------------------------------------------------------------------
// Property: a crash at any byte loses no fully written record
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn truncation_never_loses_a_fully_written_record(
        groups in prop::collection::vec(
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 1..5),
            1..5,
        ),
        cut in any::<Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_in(&dir);
        let storage = open(&path);
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        for group in &groups {
            let batch: Vec<EntryRecord> = group
                .iter()
                .map(|bytes| {
                    let index = payloads.len() as u64;
                    payloads.push(bytes.clone());
                    EntryRecord { bytes: bytes.clone(), ..entry(index) }
                })
                .collect();
            storage.append(&batch).unwrap();
        }
        drop(storage);
        let bounds = record_bounds(payloads.iter().map(Vec::len));
        let full_len = *bounds.last().unwrap();
        prop_assert_eq!(file_len(&path), full_len);

        // Cuts inside the header are refused (a_file_shorter_than_its_header_…).
        let cut = bounds[0] + cut.index(usize::try_from(full_len - bounds[0]).unwrap() + 1) as u64;
        truncate_file(&path, cut);
        let survivors = bounds.iter().skip(1).filter(|end| **end <= cut).count();
        let kept_len = bounds[survivors];
        let torn = cut - bounds[survivors];

        let (storage, recovery) = FileStorage::open(&path).unwrap();
        prop_assert_eq!(recovery.records, survivors as u64);
        prop_assert_eq!(recovery.truncated_bytes, torn);
        prop_assert!(recovery.problems.is_empty(), "{:?}", recovery.problems);
        prop_assert_eq!(file_len(&path), kept_len);
        for (i, bytes) in payloads.iter().enumerate().take(survivors) {
            prop_assert_eq!(storage.get(i as u64).unwrap(), Some(bytes.clone()));
        }
        prop_assert_eq!(storage.get(survivors as u64).unwrap(), None);
    }
}
