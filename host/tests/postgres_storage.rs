//! The PostgreSQL ledger backend against a real server.
//!
//! Every test creates its own database (see `support::pg`) and drops it
//! afterwards. No server → the tests fail with a message saying so.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use lexecon::storage::postgres::{PostgresStorage, PostgresStorageError, SCHEMA_VERSION};
use lexecon::storage::{EntryRecord, Storage, StorageError};
use sha2::{Digest, Sha256};
use support::pg::TestDb;

/// `prev_hash` of entry 0.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A realistic entry: canonical-looking JSON that names its predecessor,
/// hashed with SHA-256.
fn entry(index: u64, prev_hash: &str, actor: &str) -> EntryRecord {
    let bytes = format!(
        r#"{{"action":"tool.call","actor":"{actor}","decision":"allow","index":{index},"prev":"{prev_hash}"}}"#
    )
    .into_bytes();
    EntryRecord {
        index,
        entry_hash: sha256_hex(&bytes),
        prev_hash: prev_hash.to_owned(),
        bytes,
    }
}

/// `n` linked entries starting at `index` after `prev_hash`.
fn chain(index: u64, prev_hash: &str, n: usize, actor: &str) -> Vec<EntryRecord> {
    let mut out: Vec<EntryRecord> = Vec::with_capacity(n);
    for i in 0..n {
        let prev = out.last().map_or(prev_hash, |e| e.entry_hash.as_str());
        out.push(entry(index + i as u64, prev, actor));
    }
    out
}

/// The `prev` an entry's bytes name.
fn prev_named_by(bytes: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    value["prev"].as_str().unwrap().to_owned()
}

/// Checks the whole stored chain: gap-free, each entry names the hash of the
/// previous one, no `prev_hash` twice. Returns the stored entries.
fn verify_chain(storage: &mut PostgresStorage, db: &TestDb) -> Vec<Vec<u8>> {
    let len = storage.len().unwrap();
    let all = storage.get_range(0, len).unwrap();
    assert_eq!(
        all.len() as u64,
        len,
        "get_range(0, len) returned a short log"
    );
    let mut prev = GENESIS.to_owned();
    for (i, bytes) in all.iter().enumerate() {
        assert_eq!(
            prev_named_by(bytes),
            prev,
            "entry {i} does not link to entry {}",
            i as i64 - 1
        );
        prev = sha256_hex(bytes);
        assert_eq!(storage.find(&prev).unwrap(), Some(i as u64));
    }
    let row = db
        .client()
        .query_one(
            "select count(*), count(distinct prev_hash), count(distinct entry_hash), \
             coalesce(min(idx), 0), coalesce(max(idx) + 1, 0) from lexecon_ledger",
            &[],
        )
        .unwrap();
    let (rows, prevs, hashes, min, end): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(rows as u64, len, "rows in the table");
    assert_eq!(prevs, rows, "a prev_hash appears twice: a fork");
    assert_eq!(hashes, rows, "an entry_hash appears twice");
    assert_eq!((min, end as u64), (0, len), "the log has a gap");
    all
}

fn connect(url: &str) -> PostgresStorage {
    PostgresStorage::connect(url).unwrap_or_else(|err| panic!("connect failed: {err}"))
}

fn row_count(db: &TestDb) -> i64 {
    db.client()
        .query_one("select count(*) from lexecon_ledger", &[])
        .unwrap()
        .get(0)
}

fn migration_versions(db: &TestDb) -> Vec<i32> {
    db.client()
        .query(
            "select version from lexecon_schema_migrations order by version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[test]
fn storage_is_send() {
    fn is_send<T: Send + 'static>() {}
    is_send::<PostgresStorage>();
    is_send::<PostgresStorageError>();
}

#[test]
fn migrations_are_idempotent_across_connects() {
    let db = TestDb::create();
    let mut first = connect(&db.url);
    first.append(&chain(0, GENESIS, 2, "a")).unwrap();
    let mut second = connect(&db.url);
    drop(first);
    let mut third = connect(&db.url);
    assert_eq!(
        migration_versions(&db),
        (1..=SCHEMA_VERSION).collect::<Vec<_>>()
    );
    assert_eq!(second.len().unwrap(), 2);
    assert_eq!(third.len().unwrap(), 2);
    let applied: i64 = db
        .client()
        .query_one(
            "select count(*) from lexecon_schema_migrations where applied_at is not null",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(applied, i64::from(SCHEMA_VERSION));
}

#[test]
fn migrations_race_safely_between_replicas_starting_together() {
    let db = TestDb::create();
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (db.url.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                PostgresStorage::connect(&url).map(|mut s| s.len())
            })
        })
        .collect();
    for handle in handles {
        let len = handle.join().unwrap().unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(len, Ok(0));
    }
    assert_eq!(
        migration_versions(&db),
        (1..=SCHEMA_VERSION).collect::<Vec<_>>()
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let db = TestDb::create();
    drop(connect(&db.url));
    db.client()
        .execute(
            "insert into lexecon_schema_migrations (version) values (999)",
            &[],
        )
        .unwrap();
    match PostgresStorage::connect(&db.url) {
        Err(err @ PostgresStorageError::SchemaTooNew { found: 999, .. }) => {
            assert!(err.to_string().contains("upgrade lexecon"), "{err}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn a_role_without_create_rights_runs_on_a_migrated_schema() {
    let db = TestDb::create();
    let app = db.create_role("app");
    // Nothing migrated yet, and the role may not create tables.
    match PostgresStorage::connect(&db.url_as(&app)) {
        Err(err @ PostgresStorageError::Migration { .. }) => {
            let text = err.to_string();
            assert!(
                text.contains("42501") && text.contains("create privileges"),
                "{text}"
            );
        }
        other => panic!("expected a migration failure, got {other:?}"),
    }
    // An administrator migrates and grants only what the backend uses.
    connect(&db.url)
        .append(&chain(0, GENESIS, 1, "admin"))
        .unwrap();
    db.client()
        .batch_execute(&format!(
            "grant select, insert on lexecon_ledger to \"{app}\"; \
             grant select on lexecon_schema_migrations to \"{app}\""
        ))
        .unwrap();
    let mut s = connect(&db.url_as(&app));
    let tail = sha256_hex(&s.get(0).unwrap().unwrap());
    s.append(&chain(1, &tail, 2, "app")).unwrap();
    assert_eq!(s.len().unwrap(), 3);
    verify_chain(&mut s, &db);
}

#[test]
fn append_get_find_and_range_round_trip() {
    let db = TestDb::create();
    let mut s = connect(&db.url);
    assert_eq!(s.len().unwrap(), 0);
    assert_eq!(s.get(0).unwrap(), None);
    assert_eq!(s.get_range(0, 10).unwrap(), Vec::<Vec<u8>>::new());
    s.append(&[]).unwrap();

    let batch = chain(0, GENESIS, 3, "alice");
    s.append(&batch).unwrap();
    let single = chain(3, &batch[2].entry_hash, 1, "bob");
    s.append(&single).unwrap();
    let all: Vec<EntryRecord> = batch.into_iter().chain(single).collect();

    assert_eq!(s.len().unwrap(), 4);
    for e in &all {
        assert_eq!(s.get(e.index).unwrap().as_deref(), Some(e.bytes.as_slice()));
        assert_eq!(s.find(&e.entry_hash).unwrap(), Some(e.index));
    }
    assert_eq!(s.get(4).unwrap(), None);
    assert_eq!(s.get(u64::MAX).unwrap(), None);
    assert_eq!(s.find(GENESIS).unwrap(), None);
    assert_eq!(s.find("not a hash").unwrap(), None);

    let bytes = |r: std::ops::Range<usize>| -> Vec<Vec<u8>> {
        all[r].iter().map(|e| e.bytes.clone()).collect()
    };
    assert_eq!(s.get_range(0, 4).unwrap(), bytes(0..4));
    assert_eq!(s.get_range(1, 3).unwrap(), bytes(1..3));
    assert_eq!(s.get_range(2, 100).unwrap(), bytes(2..4));
    assert_eq!(s.get_range(0, u64::MAX).unwrap(), bytes(0..4));
    assert!(s.get_range(3, 3).unwrap().is_empty());
    assert!(s.get_range(3, 1).unwrap().is_empty());
    assert!(s.get_range(4, 10).unwrap().is_empty());
    assert!(s.get_range(u64::MAX - 1, u64::MAX).unwrap().is_empty());

    // A second storage (another replica) sees the same chain.
    let mut other = connect(&db.url);
    assert_eq!(other.get_range(0, 4).unwrap(), bytes(0..4));
    verify_chain(&mut other, &db);
}

#[test]
fn a_stale_index_conflicts_and_writes_nothing() {
    let db = TestDb::create();
    let mut s = connect(&db.url);
    let log = chain(0, GENESIS, 3, "a");
    s.append(&log).unwrap();

    // Behind the log (another replica already wrote index 2).
    let stale = chain(2, &log[1].entry_hash, 2, "b");
    assert_eq!(s.append(&stale), Err(StorageError::Conflict { len: 3 }));
    // Past the end (a gap).
    let gap = chain(5, &log[2].entry_hash, 1, "c");
    assert_eq!(s.append(&gap), Err(StorageError::Conflict { len: 3 }));
    // From the start again.
    assert_eq!(
        s.append(&chain(0, GENESIS, 4, "d")),
        Err(StorageError::Conflict { len: 3 })
    );

    assert_eq!(row_count(&db), 3);
    assert_eq!(s.len().unwrap(), 3);
    assert_eq!(s.get(2).unwrap(), Some(log[2].bytes.clone()));
    assert_eq!(s.find(&stale[1].entry_hash).unwrap(), None);
    // The connection is still fine after the rollbacks.
    s.append(&chain(3, &log[2].entry_hash, 1, "e")).unwrap();
    verify_chain(&mut s, &db);
}

#[test]
fn a_stale_prev_hash_conflicts_and_writes_nothing() {
    let db = TestDb::create();
    let mut s = connect(&db.url);
    let log = chain(0, GENESIS, 2, "a");
    s.append(&log).unwrap();

    // Right index, but linked to an entry that is not the stored tail: a
    // stale replica must re-link, not fork.
    let forked = chain(2, &log[0].entry_hash, 1, "b");
    assert_eq!(s.append(&forked), Err(StorageError::Conflict { len: 2 }));
    let unknown = chain(2, &sha256_hex(b"elsewhere"), 3, "c");
    assert_eq!(s.append(&unknown), Err(StorageError::Conflict { len: 2 }));
    assert_eq!(row_count(&db), 2);

    s.append(&chain(2, &log[1].entry_hash, 1, "d")).unwrap();
    verify_chain(&mut s, &db);
}

#[test]
fn a_unique_violation_at_insert_is_a_conflict_and_writes_nothing() {
    let db = TestDb::create();
    let mut s = connect(&db.url);
    let log = chain(0, GENESIS, 2, "a");
    s.append(&log).unwrap();
    // Continues the tail correctly, but the second entry repeats entry 0's
    // hash: only the UNIQUE constraint can refuse it.
    let mut batch = chain(2, &log[1].entry_hash, 2, "b");
    batch[1].entry_hash = log[0].entry_hash.clone();
    assert_eq!(s.append(&batch), Err(StorageError::Conflict { len: 2 }));
    assert_eq!(row_count(&db), 2);
    assert_eq!(s.find(&batch[0].entry_hash).unwrap(), None);
    // Rolled back cleanly: the same connection appends again.
    s.append(&chain(2, &log[1].entry_hash, 1, "c")).unwrap();
    verify_chain(&mut s, &db);
}

#[test]
fn an_unlinked_batch_is_refused_before_it_reaches_the_database() {
    let db = TestDb::create();
    let mut s = connect(&db.url);
    let mut batch = chain(0, GENESIS, 3, "a");
    batch[2].prev_hash = batch[0].entry_hash.clone();
    match s.append(&batch) {
        Err(StorageError::Unavailable(why)) => assert!(why.contains("append refused"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(row_count(&db), 0);
    assert_eq!(s.len().unwrap(), 0);
}

#[test]
fn the_unique_constraints_stop_a_writer_that_bypasses_the_lock() {
    let db = TestDb::create();
    let mut s = connect(&db.url);
    let log = chain(0, GENESIS, 2, "a");
    s.append(&log).unwrap();
    let mut admin = db.client();
    // A fork written by hand: same prev_hash as entry 1.
    let err = admin
        .execute(
            "insert into lexecon_ledger (idx, entry_hash, prev_hash, bytes) values (2, $1, $2, $3)",
            &[&sha256_hex(b"x"), &log[1].prev_hash, &b"x".to_vec()],
        )
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    let err = admin
        .execute(
            "insert into lexecon_ledger (idx, entry_hash, prev_hash, bytes) values (-1, $1, $2, $3)",
            &[&sha256_hex(b"y"), &sha256_hex(b"z"), &b"y".to_vec()],
        )
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::CHECK_VIOLATION)
    );
    assert_eq!(row_count(&db), 2);
}

/// Appends through `storage` (shared by several threads, like one replica)
/// until `batches` appends were acknowledged, re-reading the tail after each
/// conflict. Returns the acknowledged entries and the number of conflicts.
fn append_with_retry(
    storage: &Mutex<PostgresStorage>,
    actor: &str,
    batches: usize,
) -> (Vec<EntryRecord>, u64) {
    let mut acked = Vec::new();
    let mut conflicts = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0..batches {
        loop {
            assert!(Instant::now() < deadline, "{actor}: no progress for 60 s");
            let (len, prev) = {
                let mut s = storage.lock().unwrap();
                let len = s.len().unwrap();
                let prev = match len {
                    0 => GENESIS.to_owned(),
                    _ => sha256_hex(&s.get(len - 1).unwrap().unwrap()),
                };
                (len, prev)
            };
            let batch = chain(len, &prev, 1 + n % 3, &format!("{actor}-{n}"));
            match storage.lock().unwrap().append(&batch) {
                Ok(()) => {
                    acked.extend(batch);
                    break;
                }
                Err(StorageError::Conflict { len: now }) => {
                    assert!(now > len, "a conflict must mean the log moved on");
                    conflicts += 1;
                }
                Err(err) => panic!("{actor}: unexpected {err}"),
            }
        }
    }
    (acked, conflicts)
}

#[test]
fn two_replicas_appending_concurrently_keep_one_gap_free_chain() {
    const THREADS_PER_REPLICA: usize = 4;
    const BATCHES_PER_THREAD: usize = 25;
    let db = TestDb::create();
    let replicas = [
        Arc::new(Mutex::new(connect(&db.url))),
        Arc::new(Mutex::new(connect(&db.url))),
    ];
    let barrier = Arc::new(Barrier::new(2 * THREADS_PER_REPLICA));
    let mut handles = Vec::new();
    for (r, replica) in replicas.iter().enumerate() {
        for t in 0..THREADS_PER_REPLICA {
            let (replica, barrier) = (Arc::clone(replica), Arc::clone(&barrier));
            handles.push(std::thread::spawn(move || {
                barrier.wait();
                append_with_retry(&replica, &format!("r{r}t{t}"), BATCHES_PER_THREAD)
            }));
        }
    }
    let mut acked = Vec::new();
    let mut conflicts = 0;
    for handle in handles {
        let (entries, c) = handle.join().unwrap();
        acked.extend(entries);
        conflicts += c;
    }
    eprintln!(
        "{} entries acknowledged, {conflicts} conflicts retried",
        acked.len()
    );

    let mut s = replicas[0].lock().unwrap();
    let stored = verify_chain(&mut s, &db);
    // Every acknowledged entry is stored exactly once, where it was written,
    // and nothing unacknowledged is.
    assert_eq!(stored.len(), acked.len());
    let mut seen = HashSet::new();
    for e in &acked {
        assert!(seen.insert(e.entry_hash.clone()), "acknowledged twice");
        assert_eq!(
            stored[e.index as usize], e.bytes,
            "entry {} differs",
            e.index
        );
    }
}

#[test]
fn a_terminated_connection_fails_closed_then_reconnects() {
    let db = TestDb::create();
    let app = "lexecon_terminate_idle";
    let mut s = connect(&db.url_with(&[("application_name", app)]));
    let log = chain(0, GENESIS, 3, "a");
    s.append(&log).unwrap();

    assert_eq!(db.terminate(app), 1);
    // The dead connection is noticed on the next call, which fails closed
    // (or, at worst, already answers from a fresh connection)...
    match s.len() {
        Ok(len) => assert_eq!(len, 3),
        Err(StorageError::Unavailable(why)) => {
            assert!(why.contains("postgres"), "{why}");
            assert!(!why.is_empty());
        }
        Err(other) => panic!("expected Unavailable, got {other}"),
    }
    // ...and the call after it reconnects.
    assert_eq!(s.len().unwrap(), 3);
    let more = chain(3, &log[2].entry_hash, 2, "b");
    s.append(&more).unwrap();

    // Killed while idle again, the next call is an append.
    assert_eq!(db.terminate(app), 1);
    let next = chain(5, &more[1].entry_hash, 1, "c");
    match s.append(&next) {
        Ok(()) | Err(StorageError::Unavailable(_)) => {}
        Err(other) => panic!("expected Ok or Unavailable, got {other}"),
    }
    let len = s.len().unwrap();
    if len == 5 {
        s.append(&next).unwrap();
    }
    assert_eq!(s.len().unwrap(), 6);
    verify_chain(&mut s, &db);
}

#[test]
fn connections_killed_mid_run_lose_nothing_acknowledged() {
    let db = TestDb::create();
    let app = "lexecon_terminate_busy";
    let url = db.url_with(&[("application_name", app)]);
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));

    let writer = {
        let (stop, progress) = (Arc::clone(&stop), Arc::clone(&progress));
        std::thread::spawn(move || {
            let mut s = connect(&url);
            let mut acked: Vec<EntryRecord> = Vec::new();
            let mut uncertain: Vec<EntryRecord> = Vec::new();
            let mut unavailable = 0u64;
            let mut consecutive = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let tail = s.len().and_then(|len| match len {
                    0 => Ok((0, GENESIS.to_owned())),
                    _ => s
                        .get(len - 1)
                        .map(|bytes| (len, sha256_hex(&bytes.unwrap_or_default()))),
                });
                let result = tail.and_then(|(len, prev)| {
                    let batch = chain(len, &prev, 1 + n % 4, &format!("w{n}"));
                    let result = s.append(&batch);
                    match &result {
                        Ok(()) => acked.extend(batch),
                        Err(StorageError::Unavailable(_)) => uncertain.extend(batch),
                        Err(_) => {}
                    }
                    result
                });
                n += 1;
                match result {
                    Ok(()) => {
                        consecutive = 0;
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(StorageError::Unavailable(_)) => {
                        unavailable += 1;
                        consecutive += 1;
                        assert!(consecutive < 50, "the storage never came back");
                    }
                    Err(err) => panic!("unexpected {err}"),
                }
            }
            (s, acked, uncertain, unavailable)
        })
    };

    let mut killed = 0;
    for _ in 0..5 {
        let before = progress.load(Ordering::Relaxed);
        let wait = Instant::now() + Duration::from_secs(20);
        while progress.load(Ordering::Relaxed) < before + 5 && Instant::now() < wait {
            std::thread::sleep(Duration::from_millis(2));
        }
        killed += db.terminate(app);
    }
    let before = progress.load(Ordering::Relaxed);
    let wait = Instant::now() + Duration::from_secs(20);
    while progress.load(Ordering::Relaxed) < before + 10 && Instant::now() < wait {
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let (mut s, acked, uncertain, unavailable) = writer.join().unwrap();
    eprintln!(
        "killed {killed} sessions; {} entries acknowledged, {unavailable} calls unavailable, \
         {} entries of unknown outcome",
        acked.len(),
        uncertain.len()
    );
    assert!(killed >= 1, "no session was terminated");
    assert!(
        unavailable >= 1,
        "a killed session must surface as Unavailable"
    );

    let stored = verify_chain(&mut s, &db);
    let by_hash: HashMap<String, usize> = stored
        .iter()
        .enumerate()
        .map(|(i, bytes)| (sha256_hex(bytes), i))
        .collect();
    for e in &acked {
        assert_eq!(
            by_hash.get(&e.entry_hash),
            Some(&(e.index as usize)),
            "acknowledged entry lost"
        );
    }
    // Everything stored was either acknowledged or of unknown outcome.
    let known: HashSet<&str> = acked
        .iter()
        .chain(&uncertain)
        .map(|e| e.entry_hash.as_str())
        .collect();
    for hash in by_hash.keys() {
        assert!(
            known.contains(hash.as_str()),
            "an entry nobody wrote is stored"
        );
    }
}

#[test]
fn tampered_bytes_are_returned_as_stored() {
    let db = TestDb::create();
    let mut s = connect(&db.url);
    let log = chain(0, GENESIS, 3, "a");
    s.append(&log).unwrap();
    let tampered = br#"{"action":"tool.call","actor":"mallory","decision":"allow"}"#.to_vec();
    let updated = db
        .client()
        .execute(
            "update lexecon_ledger set bytes = $1 where idx = 1",
            &[&tampered],
        )
        .unwrap();
    assert_eq!(updated, 1);
    assert_eq!(s.get(1).unwrap(), Some(tampered.clone()));
    assert_eq!(s.get_range(0, 3).unwrap()[1], tampered);
    assert_ne!(sha256_hex(&tampered), log[1].entry_hash);
}

#[test]
fn a_deleted_entry_is_reported_as_corruption() {
    let db = TestDb::create();
    let mut s = connect(&db.url);
    s.append(&chain(0, GENESIS, 4, "a")).unwrap();
    db.client()
        .execute("delete from lexecon_ledger where idx in (1, 2)", &[])
        .unwrap();
    assert_eq!(s.len().unwrap(), 4);
    for (result, index) in [
        (s.get(1).map(|_| ()), 1),
        (s.get(2).map(|_| ()), 2),
        (s.get_range(0, 4).map(|_| ()), 1),
        (s.get_range(2, 4).map(|_| ()), 2),
        (s.get_range(0, 2).map(|_| ()), 1),
    ] {
        match result {
            Err(StorageError::Corrupt { index: at, detail }) => {
                assert_eq!(at, index, "{detail}");
            }
            other => panic!("expected corruption at {index}, got {other:?}"),
        }
    }
    assert_eq!(s.get_range(3, 4).unwrap().len(), 1);
}

#[test]
fn connect_errors_are_actionable_and_never_show_the_password() {
    let secret = "s3cr3t-Pa55";
    for url in [
        format!("postgresql://lexecon:{secret}@127.0.0.1:1/ledger"),
        format!("host=127.0.0.1 port=1 user=lexecon password={secret} dbname=ledger"),
    ] {
        let err = PostgresStorage::connect(&url).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, PostgresStorageError::Connect { .. }),
            "{err:?}"
        );
        assert!(
            text.starts_with("cannot connect to postgres at lexecon@127.0.0.1:1/ledger"),
            "{text}"
        );
        assert!(!text.contains(secret), "{text}");
        assert!(!format!("{err:?}").contains(secret));
        assert!(!StorageError::from(err).to_string().contains(secret));
    }
    let db = TestDb::create();
    for bad in [
        "postgresql://h/d?sslmode=bogus",
        "host=h sslmode=allow",
        "host='h",
        "nonsense",
    ] {
        match PostgresStorage::connect(bad) {
            Err(err @ PostgresStorageError::InvalidConfig(_)) => {
                assert!(
                    err.to_string()
                        .starts_with("invalid postgres connection string"),
                    "{err}"
                )
            }
            other => panic!("{bad}: expected InvalidConfig, got {other:?}"),
        }
    }
    match PostgresStorage::connect("host=h sslmode=require sslrootcert=/nonexistent/ca.pem") {
        Err(err @ PostgresStorageError::Tls(_)) => assert!(err.to_string().contains("sslrootcert")),
        other => panic!("expected Tls, got {other:?}"),
    }
    let debug = format!("{:?}", connect(&db.url_with(&[("password", secret)])));
    assert!(!debug.contains(secret), "{debug}");
}

/// The server's TLS certificate file (Debian's `ssl-cert-snakeoil`, issued
/// for `localhost`); fails loudly when the server has TLS off.
fn server_tls_cert(db: &TestDb) -> (String, u16, String) {
    let mut admin = db.client();
    let ssl: String = admin.query_one("show ssl", &[]).unwrap().get(0);
    assert_eq!(
        ssl, "on",
        "the PostgreSQL test server has ssl=off: the TLS tests need ssl=on with a certificate \
         issued for `localhost` (Debian's default snakeoil certificate)"
    );
    let cert: String = admin.query_one("show ssl_cert_file", &[]).unwrap().get(0);
    assert!(
        std::path::Path::new(&cert).is_file(),
        "the server's ssl_cert_file {cert} is not readable here: the TLS tests need the server \
         on this machine"
    );
    let config = postgres::Config::from_str(&db.url).unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres").to_owned();
    (cert, port, user)
}

fn session_uses_tls(db: &TestDb, app: &str) -> bool {
    db.client()
        .query_one(
            "select bool_and(s.ssl) from pg_stat_ssl s join pg_stat_activity a using (pid) \
             where a.application_name = $1 and a.datname = $2",
            &[&app, &db.name],
        )
        .unwrap()
        .get::<_, Option<bool>>(0)
        .unwrap_or_else(|| panic!("no session named {app}"))
}

#[test]
fn tls_verify_full_with_the_server_ca_is_encrypted() {
    let db = TestDb::create();
    let (cert, port, user) = server_tls_cert(&db);
    for (mode, app) in [
        ("verify-full", "lexecon_tls_verify_full"),
        ("require", "lexecon_tls_require"),
        ("prefer", "lexecon_tls_prefer"),
    ] {
        let url = format!(
            "host=localhost port={port} user={user} dbname={} sslmode={mode} sslrootcert={cert} \
             application_name={app}",
            db.name
        );
        let mut s = PostgresStorage::connect(&url).unwrap_or_else(|err| {
            panic!("sslmode={mode} with the server's certificate as root failed: {err}")
        });
        assert_eq!(s.len().unwrap(), 0);
        assert!(
            session_uses_tls(&db, app),
            "sslmode={mode} connected without tls"
        );
    }
    // The URL form, with the root given percent-encoded.
    let url = format!(
        "postgresql://{user}@localhost:{port}/{}?sslmode=verify-full&sslrootcert={}&application_name=lexecon_tls_url",
        db.name,
        cert.replace('/', "%2F")
    );
    let mut s = connect(&url);
    s.append(&chain(0, GENESIS, 2, "tls")).unwrap();
    assert!(session_uses_tls(&db, "lexecon_tls_url"));

    for (mode, app) in [
        ("disable", "lexecon_plain_disable"),
        ("", "lexecon_plain_default"),
    ] {
        let mut url = format!(
            "host=localhost port={port} user={user} dbname={} application_name={app}",
            db.name
        );
        if !mode.is_empty() {
            url.push_str(&format!(" sslmode={mode}"));
        }
        let mut s = connect(&url);
        assert_eq!(s.len().unwrap(), 2);
        assert!(!session_uses_tls(&db, app), "sslmode={mode:?} used tls");
    }
}

#[test]
fn tls_refuses_a_certificate_that_does_not_verify() {
    let db = TestDb::create();
    let (cert, port, user) = server_tls_cert(&db);
    // Not in the Mozilla roots: refused even with `require` and `prefer`.
    for mode in ["require", "prefer", "verify-full"] {
        let url = format!(
            "host=localhost port={port} user={user} dbname={} sslmode={mode}",
            db.name
        );
        match PostgresStorage::connect(&url) {
            Err(err @ PostgresStorageError::Connect { .. }) => {
                let text = err.to_string();
                assert!(
                    text.contains("certificate") && text.contains("sslrootcert"),
                    "{text}"
                );
            }
            other => panic!("sslmode={mode}: expected a refused certificate, got {other:?}"),
        }
    }
    // Trusted root, wrong host name (the certificate is for `localhost`).
    let url = format!(
        "host=127.0.0.1 port={port} user={user} dbname={} sslmode=verify-full sslrootcert={cert}",
        db.name
    );
    match PostgresStorage::connect(&url) {
        Err(err @ PostgresStorageError::Connect { .. }) => {
            assert!(err.to_string().contains("certificate"), "{err}");
        }
        other => panic!("expected a host name mismatch, got {other:?}"),
    }
}

/// Rough append throughput (not a test: `cargo test -p lexecon --test
/// postgres_storage -- --ignored --nocapture append_throughput`).
#[test]
#[ignore = "measurement, run by hand"]
fn append_throughput() {
    let db = TestDb::create();
    let mut s = connect(&db.url);
    for (batch, batches) in [(1usize, 500usize), (8, 200), (64, 100), (256, 30)] {
        let mut len = s.len().unwrap();
        let mut prev = match len {
            0 => GENESIS.to_owned(),
            _ => sha256_hex(&s.get(len - 1).unwrap().unwrap()),
        };
        let prepared: Vec<Vec<EntryRecord>> = (0..batches)
            .map(|n| {
                let b = chain(len, &prev, batch, &format!("bench{n}"));
                len += batch as u64;
                prev = b[batch - 1].entry_hash.clone();
                b
            })
            .collect();
        let start = Instant::now();
        for b in &prepared {
            s.append(b).unwrap();
        }
        let elapsed = start.elapsed();
        let per_batch = elapsed / batches as u32;
        eprintln!(
            "batch {batch:>3}: {:>8.0} entries/s, {:>6.0} appends/s, {per_batch:?} per append",
            (batch * batches) as f64 / elapsed.as_secs_f64(),
            batches as f64 / elapsed.as_secs_f64(),
        );
    }
    let start = Instant::now();
    let len = s.len().unwrap();
    let all = s.get_range(0, len).unwrap();
    eprintln!("get_range of {} entries: {:?}", all.len(), start.elapsed());
}
