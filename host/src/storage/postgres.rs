//! The PostgreSQL ledger backend: one hash-linked chain shared by many
//! `lexecon server` replicas.
//!
//! This module owns [`PostgresStorage`] (the [`Storage`] implementation), its
//! connection-string handling (TLS selection, password redaction), the
//! versioned schema migrations and the append protocol that keeps the chain
//! free of forks when several replicas write at once.
//!
//! # Schema
//!
//! Migrations run on every (re)connect, inside one `READ COMMITTED`
//! transaction that first takes a transaction-scoped advisory lock, so
//! replicas that start together apply them exactly once:
//!
//! ```sql
//! create table lexecon_schema_migrations (
//!     version    integer primary key,
//!     applied_at timestamptz not null default now()
//! );
//! -- migration 1
//! create table lexecon_ledger (
//!     idx        bigint primary key check (idx >= 0),
//!     entry_hash text not null unique,
//!     prev_hash  text not null unique,
//!     bytes      bytea not null,
//!     created_at timestamptz not null default now()
//! );
//! ```
//!
//! A database whose schema is newer than this build knows is refused
//! ([`PostgresStorageError::SchemaTooNew`]) rather than written to.
//!
//! # Append protocol
//!
//! [`Storage::append`] is one transaction of three round trips:
//!
//! 1. `BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(…)`;
//! 2. one statement that reads the stored tail (length and last
//!    `entry_hash`) and, only when the batch starts at that length and links
//!    to that hash, inserts it (`INSERT … SELECT FROM unnest(…)`, one row per
//!    entry); it returns the length it saw and the rows it inserted;
//! 3. `COMMIT`. `Ok` is returned only after `COMMIT` succeeded.
//!
//! The advisory lock serialises appenders, and because the statement runs
//! after the lock was granted its snapshot holds every committed append. The
//! `UNIQUE` constraints on `idx` and `prev_hash` are the last line of
//! defence against forks (a unique violation rolls back and is reported as a
//! conflict). Lock keys are per database: `0x6c65_7865_636f_6e01` (appends)
//! and `0x6c65_7865_636f_6e02` (migrations), that is `"lexecon"` followed by
//! `1` or `2`.
//!
//! **A stale replica keeps the lock.** When the batch does not start at the
//! stored tail (another replica appended since this one last looked), the
//! append returns [`StorageError::Conflict`] with nothing written **but
//! leaves its transaction open, holding the append lock**. The engine then
//! catches up (its [`Storage::len`] is answered from the conflict, its
//! [`Storage::get_range`] runs inside the same transaction and sees every
//! committed entry), re-decides and appends again; that second append
//! cannot be overtaken, so a busy replica is never starved by another one
//! and each batch conflicts at most once. The lock is kept only for a batch
//! of decisions (a policy load's retry may find that policy already active
//! and write nothing) and when the replica is at most [`MAX_HELD_CATCH_UP`]
//! entries behind (a replica far behind catches up without it, then
//! retries). It is given up at the next call that comes more than
//! [`MAX_HOLD`] later, or by the server after
//! `idle_in_transaction_session_timeout` when no call comes.
//!
//! # Failures
//!
//! Any database or connection error drops the connection and the call
//! returns [`StorageError::Unavailable`]; the next call reconnects (and
//! re-runs the idempotent migrations, which do no DDL once applied, so a
//! runtime role needs only `select, insert` on `lexecon_ledger` and `select`
//! on `lexecon_schema_migrations`). A `COMMIT` whose outcome is unknown is
//! reported as `Unavailable`, never guessed: the engine re-reads the log to
//! learn what was committed. Each session sets `lock_timeout` (10 s) and
//! `idle_in_transaction_session_timeout` (5 s), so a stuck replica cannot
//! hold the append lock for ever.
//!
//! The length is `max(idx) + 1`. A hole below it (a deleted row) makes
//! [`Storage::get`] and [`Storage::get_range`] return
//! [`StorageError::Corrupt`]; changed bytes are returned as stored, for the
//! engine's verification to catch.
//!
//! Sessions use named prepared statements and session settings: connect
//! directly or through a pooler in session mode, not transaction mode.
//!
//! # TLS
//!
//! See [`PostgresStorage::connect`]: `sslmode` absent or `disable` is plain
//! TCP; `prefer`, `require`, `verify-ca` and `verify-full` use rustls and
//! **always** verify the server's certificate chain and host name.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::percent_decode_str;
use postgres::config::{Host, SslMode};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{EntryRecord, Storage, StorageError};

/// The newest schema version this build creates and understands.
pub const SCHEMA_VERSION: i32 = 1;

/// Advisory lock key serialising appenders (`"lexecon"` then `0x01`).
const APPEND_LOCK_KEY: i64 = 0x6c65_7865_636f_6e01;
/// Advisory lock key serialising migrations (`"lexecon"` then `0x02`).
const MIGRATION_LOCK_KEY: i64 = 0x6c65_7865_636f_6e02;

/// Connect timeout used when the connection string sets none.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// TCP keepalive settings used when the connection string sets none: a
/// vanished server is noticed in about 30 s instead of hours.
const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(15);
const DEFAULT_KEEPALIVES_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_KEEPALIVES_RETRIES: u32 = 3;
/// How long unacknowledged data may stay in flight before TCP gives up.
const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// `application_name` used when the connection string sets none.
const DEFAULT_APPLICATION_NAME: &str = "lexecon";

/// Session settings applied on every connection: a replica waits at most
/// `lock_timeout` for the append lock, and the server ends a session that
/// sits idle inside a transaction (holding the lock) for too long.
const SESSION_SETUP: &str = "set lock_timeout = '10s'; \
     set idle_in_transaction_session_timeout = '5s'";

/// A replica at most this many entries behind keeps the append lock after a
/// conflict while it catches up (see the module docs); one further behind
/// releases it, so that reading a long backlog never blocks the others.
pub const MAX_HELD_CATCH_UP: u64 = 4096;
/// The append lock kept after a conflict is given up at the next call that
/// comes later than this (the caller did not retry).
pub const MAX_HOLD: Duration = Duration::from_secs(1);

/// The versioned migrations, applied in order. Never edit a shipped entry:
/// add a new version instead.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "create table lexecon_ledger (
        idx        bigint primary key check (idx >= 0),
        entry_hash text not null unique,
        prev_hash  text not null unique,
        bytes      bytea not null,
        created_at timestamptz not null default now()
    )",
)];

const CREATE_MIGRATIONS_TABLE: &str = "create table lexecon_schema_migrations (
        version    integer primary key,
        applied_at timestamptz not null default now()
    )";

const SQL_LEN: &str = "select coalesce(max(idx) + 1, 0)::bigint from lexecon_ledger";
/// The entry and the log's length, read in one statement (one snapshot), so
/// a missing entry below the length is told apart from a concurrent append.
const SQL_GET: &str = "select (select bytes from lexecon_ledger where idx = $1), \
     (select coalesce(max(idx) + 1, 0)::bigint from lexecon_ledger)";
/// The range, each row with the log's length, in one statement (one
/// snapshot): an ordered primary-key scan, streamed, no sort.
const SQL_RANGE: &str = "select idx, bytes, \
     (select coalesce(max(idx) + 1, 0)::bigint from lexecon_ledger) \
     from lexecon_ledger where idx >= $1 and idx < $2 order by idx";
/// The same for when [`SQL_RANGE`] found nothing: an empty range still
/// yields one row (with a null `idx`) carrying the length of that snapshot.
const SQL_RANGE_OR_LEN: &str = "select l.idx, l.bytes, t.len \
     from (select coalesce(max(idx) + 1, 0)::bigint as len from lexecon_ledger) t \
     left join lexecon_ledger l on l.idx >= $1 and l.idx < $2 \
     order by l.idx";
const SQL_FIND: &str = "select idx from lexecon_ledger where entry_hash = $1";
/// Rows whose `entry_hash` column is not the hash their bytes begin with
/// (`{"entry_hash":"` is 15 bytes, then the 64 hex digits).
const SQL_ALTERED_INDEX: &str = "select idx, entry_hash, encode(substring(bytes from 16 for 64), 'escape') \
     from lexecon_ledger \
     where length(bytes) >= 79 \
       and substring(bytes from 1 for 15) = '\\x7b22656e7472795f68617368223a22'::bytea \
       and substring(bytes from 16 for 64) <> convert_to(entry_hash, 'UTF8') \
     order by idx";
/// The append statement, run holding the append lock: reads the stored tail
/// and inserts the batch only when it starts at the tail's length (`$5`)
/// and links to its hash (`$6`, null for a batch starting at entry 0).
/// Returns that length and the number of rows inserted (0: conflict). All
/// parts of one statement share one snapshot, so the length is the one
/// before the insert.
const SQL_APPEND: &str = "with last as ( \
         select idx, entry_hash from lexecon_ledger order by idx desc limit 1), \
     tail as ( \
         select coalesce((select idx + 1 from last), 0)::bigint as len, \
                (select entry_hash from last) as head), \
     ins as ( \
         insert into lexecon_ledger (idx, entry_hash, prev_hash, bytes) \
         select u.idx, u.entry_hash, u.prev_hash, u.bytes \
         from unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[]) \
              as u(idx, entry_hash, prev_hash, bytes), tail \
         where tail.len = $5::bigint and tail.head is not distinct from $6::text \
         returning 1) \
     select tail.len, (select count(*) from ins) from tail";

/// Why [`PostgresStorage::connect`] failed. Messages never contain the
/// password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostgresStorageError {
    /// The connection string could not be understood.
    InvalidConfig(String),
    /// The TLS settings could not be turned into a TLS client (unreadable
    /// `sslrootcert`, no certificate in it).
    Tls(String),
    /// The server could not be reached or refused the session.
    Connect {
        /// The server, without the password (`user@host:port/dbname`).
        target: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// The session setup, the schema migrations or the statements prepared
    /// after them failed.
    Migration {
        /// The server, without the password.
        target: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// The database was migrated by a newer lexecon than this one.
    SchemaTooNew {
        /// The server, without the password.
        target: String,
        /// The newest schema version recorded in the database.
        found: i32,
        /// The newest schema version this build knows ([`SCHEMA_VERSION`]).
        known: i32,
    },
}

impl fmt::Display for PostgresStorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(why) => write!(
                f,
                "invalid postgres connection string: {why} (expected a postgresql:// url or \
                 key=value pairs, e.g. \"host=db.example user=lexecon dbname=lexecon \
                 sslmode=verify-full\")"
            ),
            Self::Tls(why) => write!(f, "cannot set up tls for postgres: {why}"),
            Self::Connect { target, reason } => {
                write!(f, "cannot connect to postgres at {target}: {reason}")
            }
            Self::Migration { target, reason } => write!(
                f,
                "cannot set up the lexecon ledger schema in postgres at {target}: {reason} \
                 (on first start the user needs create privileges in the schema; afterwards \
                 select and insert on lexecon_ledger and select on lexecon_schema_migrations)"
            ),
            Self::SchemaTooNew {
                target,
                found,
                known,
            } => write!(
                f,
                "the lexecon ledger schema in postgres at {target} is at version {found}, \
                 newer than this build understands ({known}): upgrade lexecon before \
                 connecting it to this database"
            ),
        }
    }
}

impl std::error::Error for PostgresStorageError {}

impl From<PostgresStorageError> for StorageError {
    /// Every connect failure is, for the engine, an unavailable backend.
    fn from(err: PostgresStorageError) -> Self {
        StorageError::Unavailable(err.to_string())
    }
}

/// How connections are secured.
#[derive(Clone)]
enum Tls {
    /// Plain TCP (`sslmode` absent or `disable`).
    Plain,
    /// rustls, with the server's chain and host name verified. `mode` is
    /// `Prefer` (plain TCP only when the server offers no TLS) or `Require`.
    Rustls {
        connector: MakeRustlsConnect,
        mode: SslMode,
    },
}

impl Tls {
    fn describe(&self) -> &'static str {
        match self {
            Self::Plain => "plain tcp",
            Self::Rustls {
                mode: SslMode::Require,
                ..
            } => "tls required, verified",
            Self::Rustls { .. } => "tls preferred, verified",
        }
    }
}

/// The prepared statements of one connection.
struct Statements {
    len: Statement,
    get: Statement,
    range: Statement,
    range_or_len: Statement,
    find: Statement,
    append: Statement,
}

/// One live session.
struct Conn {
    client: Client,
    stmts: Statements,
    /// Set while the session is inside an append transaction holding the
    /// append lock; kept between calls only after a conflict.
    held: Option<Held>,
}

/// The append lock kept after a conflict.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// When the conflict was answered.
    since: Instant,
    /// The log's length seen under the lock: it cannot change while the
    /// lock is held, so [`Storage::len`] answers from it.
    len: Option<u64>,
}

/// A failure inside one storage call.
enum Failure {
    /// The database or the connection failed: drop the connection.
    Db(postgres::Error),
    /// `COMMIT` failed: whether the batch was written is unknown. Drop the
    /// connection.
    Commit(postgres::Error),
    /// An answer for the engine (conflict, corruption, refused batch); the
    /// connection stays usable.
    Storage(StorageError),
}

impl From<postgres::Error> for Failure {
    fn from(err: postgres::Error) -> Self {
        Self::Db(err)
    }
}

/// The ledger in a PostgreSQL database, shared safely by many replicas.
///
/// Holds at most one connection, opened by [`PostgresStorage::connect`] and
/// re-opened lazily after a failure. Methods block; call them from a plain
/// thread, never from inside an async runtime.
pub struct PostgresStorage {
    config: postgres::Config,
    tls: Tls,
    target: String,
    conn: Option<Conn>,
    stats: AppendStats,
}

/// A row found by [`PostgresStorage::altered_index`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlteredIndex {
    /// The row's `idx`.
    pub index: u64,
    /// What its `entry_hash` column says.
    pub column: String,
    /// The entry hash its bytes give.
    pub own: String,
}

/// What this handle's appends did, for measurements (logged at `info` when
/// a handle that appended is dropped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Committed append transactions.
    pub commits: u64,
    /// Entries they wrote.
    pub entries: u64,
    /// Appends refused because another writer had moved the log on.
    pub conflicts: u64,
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        let AppendStats {
            commits,
            entries,
            conflicts,
        } = self.stats;
        if commits > 0 || conflicts > 0 {
            tracing::info!(
                server = %self.target,
                commits,
                entries,
                conflicts,
                "postgres ledger writer closed"
            );
        }
    }
}

impl fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("target", &self.target)
            .field("tls", &self.tls.describe())
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl PostgresStorage {
    /// Connects to PostgreSQL, applies the schema migrations and prepares the
    /// ledger statements.
    ///
    /// `connection_string` is a libpq-style URL
    /// (`postgresql://user:password@host:5432/dbname?sslmode=verify-full`) or
    /// `key=value` pairs (`host=… user=… dbname=… sslmode=…`). Defaults when
    /// unset: `connect_timeout` 2 s, TCP keepalives after 15 s idle (every
    /// 5 s, 3 probes), `tcp_user_timeout` 30 s, `application_name=lexecon`.
    ///
    /// TLS, by `sslmode`:
    /// - absent or `disable`: plain TCP (unlike libpq, whose default is
    ///   `prefer`);
    /// - `prefer`: TLS when the server offers it, plain TCP when it does not
    ///   (open to downgrade: use `verify-full` in production);
    /// - `require`, `verify-ca`, `verify-full`: TLS or no connection.
    ///
    /// Every TLS connection (rustls) verifies the certificate chain **and**
    /// the host name, stricter than libpq's `require` and `verify-ca`: a
    /// certificate that does not verify is never accepted. The trusted roots
    /// are the Mozilla roots (`webpki-roots`), or only the PEM certificates in
    /// the file named by `sslrootcert` (which, without `sslmode`, implies
    /// `verify-full`). `allow`, client certificates (`sslcert`, `sslkey`)
    /// and other libpq TLS options are refused with an error.
    ///
    /// # Errors
    /// [`PostgresStorageError`]: a string that does not parse, TLS files that
    /// cannot be read, a server that cannot be reached or refuses the login,
    /// a failed migration or a schema newer than [`SCHEMA_VERSION`]. The
    /// password never appears in the message.
    pub fn connect(connection_string: &str) -> Result<Self, PostgresStorageError> {
        let parsed = split_tls_options(connection_string)?;
        let mut config = postgres::Config::from_str(&parsed.rest)
            .map_err(|err| PostgresStorageError::InvalidConfig(error_chain(&err)))?;
        let tls = tls_from_options(&parsed, &mut config)?;
        apply_defaults(&mut config, &parsed.keys);
        let target = describe_target(&config);
        let mut storage = Self {
            config,
            tls,
            target,
            conn: None,
            stats: AppendStats::default(),
        };
        storage.conn = Some(storage.open()?);
        Ok(storage)
    }

    /// What this handle's appends did so far.
    pub fn stats(&self) -> AppendStats {
        self.stats
    }

    /// Opens a session: connect, session settings, migrations, statements.
    fn open(&self) -> Result<Conn, PostgresStorageError> {
        let connected = match &self.tls {
            Tls::Plain => self.config.connect(NoTls),
            Tls::Rustls { connector, .. } => self.config.connect(connector.clone()),
        };
        let mut client = connected.map_err(|err| PostgresStorageError::Connect {
            target: self.target.clone(),
            reason: connect_reason(&err, &self.tls),
        })?;
        let migration_error = |err: postgres::Error| PostgresStorageError::Migration {
            target: self.target.clone(),
            reason: describe(&err),
        };
        client
            .batch_execute(SESSION_SETUP)
            .map_err(migration_error)?;
        migrate(&mut client, &self.target)?;
        let stmts = Statements {
            len: client.prepare(SQL_LEN).map_err(migration_error)?,
            get: client.prepare(SQL_GET).map_err(migration_error)?,
            range: client.prepare(SQL_RANGE).map_err(migration_error)?,
            range_or_len: client.prepare(SQL_RANGE_OR_LEN).map_err(migration_error)?,
            find: client.prepare(SQL_FIND).map_err(migration_error)?,
            append: client.prepare(SQL_APPEND).map_err(migration_error)?,
        };
        Ok(Conn {
            client,
            stmts,
            held: None,
        })
    }

    /// Rows whose `entry_hash` column differs from the entry hash their own
    /// bytes give (the first field of an entry's canonical JSON), in index
    /// order. The chain's hashes do not cover that column, and lookups by
    /// hash go through it, so whoever rewrote it could make a lookup find
    /// another entry; `lexecon ledger check-integrity` reports such rows.
    /// Rows whose bytes are not an entry are for `ledger verify` to report.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database cannot be read.
    pub fn altered_index(&mut self) -> Result<Vec<AlteredIndex>, StorageError> {
        self.run("index check", |conn| {
            let rows = conn.client.query(SQL_ALTERED_INDEX, &[])?;
            rows.iter()
                .map(|row| {
                    Ok(AlteredIndex {
                        index: stored_index(row.try_get(0)?)?,
                        column: row.try_get(1)?,
                        own: row.try_get(2)?,
                    })
                })
                .collect()
        })
    }

    /// Runs `op` on the live connection, reconnecting first if there is
    /// none. A database failure drops the connection and becomes
    /// [`StorageError::Unavailable`].
    fn run<T>(
        &mut self,
        what: &str,
        op: impl FnOnce(&mut Conn) -> Result<T, Failure>,
    ) -> Result<T, StorageError> {
        if let Some(conn) = self.conn.as_mut()
            && conn
                .held
                .is_some_and(|held| held.since.elapsed() > MAX_HOLD)
        {
            // The caller did not come back to retry its append: let the
            // other replicas have the lock.
            conn.held = None;
            if conn.client.batch_execute("rollback").is_err() {
                self.conn = None;
            }
        }
        if self.conn.is_none() {
            match self.open() {
                Ok(conn) => {
                    tracing::info!(server = %self.target, "reconnected to the postgres ledger");
                    self.conn = Some(conn);
                }
                Err(err) => {
                    return Err(StorageError::Unavailable(format!(
                        "cannot reconnect: {err}"
                    )));
                }
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(StorageError::Unavailable(
                "no postgres connection".to_owned(),
            ));
        };
        match op(conn) {
            Ok(value) => Ok(value),
            Err(Failure::Storage(err)) => {
                if conn.held.is_some() && !matches!(err, StorageError::Conflict { .. }) {
                    // Catching up failed: the caller will not retry soon.
                    conn.held = None;
                    if conn.client.batch_execute("rollback").is_err() {
                        self.conn = None;
                    }
                }
                Err(err)
            }
            Err(Failure::Commit(err)) => {
                // Not even a server error proves a rollback (a session
                // terminated after its commit record was written reports a
                // fatal error too), so the outcome is never guessed.
                self.conn = None;
                let reason = describe(&err);
                tracing::warn!(
                    server = %self.target,
                    %reason,
                    "postgres ledger commit failed; dropped the connection"
                );
                Err(StorageError::Unavailable(format!(
                    "postgres ledger commit at {} failed, outcome unknown (re-read the log \
                     to learn what was committed): {reason}",
                    self.target
                )))
            }
            Err(Failure::Db(err)) => {
                self.conn = None;
                let reason = describe(&err);
                tracing::warn!(
                    server = %self.target,
                    %reason,
                    "postgres ledger {what} failed; dropped the connection"
                );
                Err(StorageError::Unavailable(format!(
                    "postgres ledger {what} at {} failed: {reason}",
                    self.target
                )))
            }
        }
    }
}

impl Storage for PostgresStorage {
    fn len(&mut self) -> Result<u64, StorageError> {
        self.run("length read", |conn| {
            if let Some(len) = conn.held.and_then(|held| held.len) {
                // Holding the append lock: nobody else can have appended.
                return Ok(len);
            }
            let row = conn.client.query_one(&conn.stmts.len, &[])?;
            stored_index(row.try_get(0)?)
        })
    }

    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let Ok(idx) = i64::try_from(index) else {
            return Ok(None);
        };
        self.run("read", |conn| {
            let row = conn.client.query_one(&conn.stmts.get, &[&idx])?;
            let bytes: Option<Vec<u8>> = row.try_get(0)?;
            let len = stored_index(row.try_get(1)?)?;
            match bytes {
                Some(bytes) => Ok(Some(bytes)),
                None if index < len => Err(missing(index, len)),
                None => Ok(None),
            }
        })
    }

    fn get_range(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        let (Ok(first), Ok(last)) = (
            i64::try_from(start),
            i64::try_from(end.min(i64::MAX as u64)),
        ) else {
            return Ok(Vec::new());
        };
        if first >= last {
            return Ok(Vec::new());
        }
        self.run("range read", |conn| {
            let Conn { client, stmts, .. } = conn;
            let mut out = Vec::new();
            let mut len = read_range(client, &stmts.range, (first, last), start, &mut out)?;
            if out.is_empty() {
                // Nothing found: learn the length from the same snapshot, so
                // a hole is told apart from an append that just landed.
                len = read_range(client, &stmts.range_or_len, (first, last), start, &mut out)?;
            }
            let next = start + out.len() as u64;
            if next < end && next < len {
                return Err(missing(next, len));
            }
            Ok(out)
        })
    }

    fn find(&mut self, entry_hash: &str) -> Result<Option<u64>, StorageError> {
        self.run("lookup", |conn| {
            match conn.client.query_opt(&conn.stmts.find, &[&entry_hash])? {
                Some(row) => Ok(Some(stored_index(row.try_get(0)?)?)),
                None => Ok(None),
            }
        })
    }

    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        check_links(entries)?;
        let result = self.run("append", |conn| append_on(conn, first, entries));
        match &result {
            Ok(()) => {
                self.stats.commits += 1;
                self.stats.entries += entries.len() as u64;
            }
            Err(StorageError::Conflict { .. }) => self.stats.conflicts += 1,
            Err(_) => {}
        }
        result
    }
}

/// The append transaction on one connection (see the module docs).
fn append_on(conn: &mut Conn, first: &EntryRecord, entries: &[EntryRecord]) -> Result<(), Failure> {
    // Everything that can fail without the database is done before BEGIN.
    let mut idx = Vec::with_capacity(entries.len());
    for entry in entries {
        idx.push(i64::try_from(entry.index).map_err(|_| {
            Failure::Storage(StorageError::Unavailable(format!(
                "entry index {} is beyond postgres bigint; nothing was written",
                entry.index
            )))
        })?);
    }
    let first_idx = idx.first().copied().unwrap_or_default();
    let link: Option<&str> = (first.index > 0).then_some(first.prev_hash.as_str());
    let entry_hashes: Vec<&str> = entries.iter().map(|e| e.entry_hash.as_str()).collect();
    let prev_hashes: Vec<&str> = entries.iter().map(|e| e.prev_hash.as_str()).collect();
    let bytes: Vec<&[u8]> = entries.iter().map(|e| e.bytes.as_slice()).collect();

    let since = match conn.held {
        // Kept from the conflict this append retries.
        Some(held) => held.since,
        None => {
            conn.client.batch_execute(&format!(
                "begin isolation level read committed; select pg_advisory_xact_lock({APPEND_LOCK_KEY})"
            ))?;
            Instant::now()
        }
    };
    conn.held = Some(Held { since, len: None });
    // From here on a database error drops the connection, which rolls the
    // transaction back and releases the lock.
    let row = match conn.client.query_one(
        &conn.stmts.append,
        &[&idx, &entry_hashes, &prev_hashes, &bytes, &first_idx, &link],
    ) {
        Ok(row) => row,
        Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            // A writer that bypassed the lock got there first: nothing of
            // this batch is kept once the transaction is rolled back.
            conn.held = None;
            rollback(conn)?;
            let row = conn.client.query_one(&conn.stmts.len, &[])?;
            let len = stored_index(row.try_get(0)?)?;
            return Err(Failure::Storage(StorageError::Conflict { len }));
        }
        Err(err) => return Err(err.into()),
    };
    let len = stored_index(row.try_get(0)?)?;
    let inserted: i64 = row.try_get(1)?;
    if inserted == 0 {
        // Stale: nothing written. Keep the lock for the catch-up and the
        // retry, unless the backlog is long, the batch is ahead of the log
        // (which no catch-up explains), or the retry may write nothing.
        if first.index <= len
            && len - first.index <= MAX_HELD_CATCH_UP
            && entries.iter().any(is_decision)
        {
            conn.held = Some(Held {
                since: Instant::now(),
                len: Some(len),
            });
        } else {
            conn.held = None;
            rollback(conn)?;
        }
        return Err(Failure::Storage(StorageError::Conflict { len }));
    }
    if u64::try_from(inserted).ok() != Some(entries.len() as u64) {
        conn.held = None;
        rollback(conn)?;
        return Err(Failure::Storage(StorageError::Unavailable(format!(
            "append inserted {inserted} rows for {} entries; rolled back, nothing was written",
            entries.len()
        ))));
    }
    // Whatever goes wrong here (even a dropped connection, whose outcome is
    // unknown) is reported as unavailable, never as success or conflict.
    conn.held = None;
    conn.client
        .batch_execute("commit")
        .map_err(Failure::Commit)?;
    Ok(())
}

/// Whether `entry` records a decision. A batch of decisions is re-decided
/// and written again after a conflict; a policy load may not be (after
/// catching up, the same policy may already be active), so a conflicting
/// policy load does not keep the append lock. The first `,"kind":"` of an
/// entry's canonical bytes is its own: only `entry_hash` and `index` come
/// before it (DESIGN.md §5.1).
fn is_decision(entry: &EntryRecord) -> bool {
    const KIND: &[u8] = b",\"kind\":\"";
    entry
        .bytes
        .windows(KIND.len())
        .position(|w| w == KIND)
        .and_then(|at| entry.bytes.get(at + KIND.len()..))
        .is_some_and(|rest| rest.starts_with(b"decision\""))
}

/// Streams the rows of a range statement into `out`, checking that they are
/// consecutive from `start`; returns the log length the rows carry (0 when
/// there are none).
fn read_range(
    client: &mut Client,
    stmt: &Statement,
    (first, last): (i64, i64),
    start: u64,
    out: &mut Vec<Vec<u8>>,
) -> Result<u64, Failure> {
    let params: [&(dyn ToSql + Sync); 2] = [&first, &last];
    let mut rows = client.query_raw(stmt, params)?;
    let mut len = 0;
    while let Some(row) = rows.next()? {
        len = stored_index(row.try_get(2)?)?;
        let Some(idx) = row.try_get::<_, Option<i64>>(0)? else {
            continue;
        };
        let expected = start + out.len() as u64;
        if stored_index(idx)? != expected {
            return Err(missing(expected, len));
        }
        out.push(row.try_get::<_, Vec<u8>>(1)?);
    }
    Ok(len)
}

/// Rolls the open transaction back; a failure drops the connection.
fn rollback(conn: &mut Conn) -> Result<(), Failure> {
    conn.client.batch_execute("rollback")?;
    Ok(())
}

/// Refuses a batch whose own entries are not consecutive and linked: it
/// could never be a valid continuation of any chain.
fn check_links(entries: &[EntryRecord]) -> Result<(), StorageError> {
    for pair in entries.windows(2) {
        let [before, after] = pair else { continue };
        if before.index.checked_add(1) != Some(after.index) || after.prev_hash != before.entry_hash
        {
            return Err(StorageError::Unavailable(format!(
                "append refused: entry {} does not follow entry {} (index or prev_hash); \
                 nothing was written",
                after.index, before.index
            )));
        }
    }
    Ok(())
}

/// Applies the migrations that are not yet recorded, under the migration
/// advisory lock, in one transaction.
fn migrate(client: &mut Client, target: &str) -> Result<(), PostgresStorageError> {
    let failed = |err: postgres::Error| PostgresStorageError::Migration {
        target: target.to_owned(),
        reason: describe(&err),
    };
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::ReadCommitted)
        .start()
        .map_err(failed)?;
    tx.batch_execute(&format!(
        "select pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    ))
    .map_err(failed)?;
    // Checked first, so a role without create privileges can start once an
    // administrator (or a first replica) has migrated the schema.
    let exists: bool = tx
        .query_one(
            "select to_regclass('lexecon_schema_migrations') is not null",
            &[],
        )
        .and_then(|row| row.try_get(0))
        .map_err(failed)?;
    if !exists {
        tx.batch_execute(CREATE_MIGRATIONS_TABLE).map_err(failed)?;
    }
    let applied: HashSet<i32> = tx
        .query("select version from lexecon_schema_migrations", &[])
        .map_err(failed)?
        .iter()
        .map(|row| row.try_get::<_, i32>(0))
        .collect::<Result<_, _>>()
        .map_err(failed)?;
    if let Some(&found) = applied.iter().max()
        && found > SCHEMA_VERSION
    {
        return Err(PostgresStorageError::SchemaTooNew {
            target: target.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).map_err(failed)?;
        tx.execute(
            "insert into lexecon_schema_migrations (version) values ($1)",
            &[version],
        )
        .map_err(failed)?;
        tracing::info!(server = %target, version, "applied lexecon ledger migration");
    }
    tx.commit().map_err(failed)
}

/// A stored `bigint` index as `u64` (the schema forbids negatives).
fn stored_index(idx: i64) -> Result<u64, Failure> {
    u64::try_from(idx).map_err(|_| {
        Failure::Storage(StorageError::Corrupt {
            index: 0,
            detail: format!("a stored index is negative ({idx})"),
        })
    })
}

/// The corruption of a hole in the chain.
fn missing(index: u64, len: u64) -> Failure {
    Failure::Storage(StorageError::Corrupt {
        index,
        detail: format!("entry {index} is missing although the log holds {len} entries"),
    })
}

/// A database error in words: SQLSTATE and message for server errors, the
/// error and its causes otherwise.
fn describe(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut out = format!(
                "{} {}: {}",
                db.severity().to_lowercase(),
                db.code().code(),
                db.message()
            );
            if let Some(detail) = db.detail() {
                out.push_str(" (");
                out.push_str(detail);
                out.push(')');
            }
            out
        }
        None => error_chain(err),
    }
}

/// `err` and its sources, joined by `: `.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// A connect failure in words, with a hint at what to check.
fn connect_reason(err: &postgres::Error, tls: &Tls) -> String {
    let mut reason = describe(err);
    let hint = if err.as_db_error().is_some() {
        // The server answered (unknown role or database, bad password):
        // its message says what is wrong.
        None
    } else if matches!(tls, Tls::Rustls { .. }) && reason.contains("certificate") {
        Some(
            "the server's certificate did not verify: name its ca in sslrootcert=<file.pem> \
             and connect by the host name the certificate is issued for",
        )
    } else if reason.contains("TLS") || reason.contains("tls") {
        Some("check sslmode against the server's ssl setting")
    } else {
        Some("check that the server is running and reachable at that host and port")
    };
    if let Some(hint) = hint {
        reason.push_str(" (");
        reason.push_str(hint);
        reason.push(')');
    }
    reason
}

/// `user@host:port/dbname` without the password.
fn describe_target(config: &postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            let port = config
                .get_ports()
                .get(i)
                .or_else(|| config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            format!("{name}:{port}")
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    };
    let user = config.get_user().unwrap_or("(default user)");
    let dbname = config.get_dbname().unwrap_or(user);
    format!("{user}@{hosts}/{dbname}")
}

/// Sets lexecon's defaults for the options the connection string left out.
fn apply_defaults(config: &mut postgres::Config, keys: &HashSet<String>) {
    let has = |key: &str| keys.contains(key);
    if !has("connect_timeout") {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if !has("keepalives_idle") {
        config.keepalives_idle(DEFAULT_KEEPALIVES_IDLE);
    }
    if !has("keepalives_interval") {
        config.keepalives_interval(DEFAULT_KEEPALIVES_INTERVAL);
    }
    if !has("keepalives_retries") {
        config.keepalives_retries(DEFAULT_KEEPALIVES_RETRIES);
    }
    if !has("tcp_user_timeout") {
        config.tcp_user_timeout(DEFAULT_TCP_USER_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name(DEFAULT_APPLICATION_NAME);
    }
    config.notice_callback(|notice| {
        tracing::debug!(message = notice.message(), "postgres notice");
    });
}

/// The TLS options lexecon handles itself (the driver knows only
/// `disable`/`prefer`/`require` and no root certificate file), and the
/// connection string without them.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsOptions {
    /// The connection string for the driver, without `sslmode` and
    /// `sslrootcert`.
    rest: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    /// Every option key present in the string.
    keys: HashSet<String>,
}

/// libpq's connection option names (PostgreSQL 17), which an error may show.
const LIBPQ_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "sslnegotiation",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

/// Options lexecon refuses with a clear message instead of the driver's
/// "unknown option".
const UNSUPPORTED_TLS_KEYS: &[&str] = &[
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requiressl",
];

fn split_tls_options(s: &str) -> Result<TlsOptions, PostgresStorageError> {
    let mut options = match ["postgresql://", "postgres://"]
        .iter()
        .find_map(|prefix| s.strip_prefix(prefix).map(|rest| (prefix, rest)))
    {
        Some((prefix, rest)) => split_url(prefix, rest)?,
        None => split_key_values(s)?,
    };
    if let Some(key) = UNSUPPORTED_TLS_KEYS
        .iter()
        .find(|key| options.keys.contains(**key))
    {
        return Err(PostgresStorageError::InvalidConfig(format!(
            "option `{key}` is not supported by lexecon's postgres backend (supported tls \
             options: sslmode, sslrootcert)"
        )));
    }
    options.keys.shrink_to_fit();
    Ok(options)
}

/// The URL form: drops `sslmode`/`sslrootcert` from the query, keeping the
/// rest byte for byte (the driver parses it).
fn split_url(prefix: &str, rest: &str) -> Result<TlsOptions, PostgresStorageError> {
    let mut out = TlsOptions::default();
    // Like the driver: credentials end at the first '@', the query starts at
    // the first '?' after them.
    let after_credentials = rest.find('@').map_or(0, |at| at + 1);
    let (head, query) = match rest
        .get(after_credentials..)
        .and_then(|tail| tail.find('?'))
    {
        Some(q) => rest.split_at(after_credentials + q),
        None => (rest, ""),
    };
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(raw_key, "option name")?;
        let value = || decode(raw_value, "option value");
        match key.as_str() {
            "sslmode" => out.sslmode = Some(value()?),
            "sslrootcert" => out.sslrootcert = Some(value()?),
            _ => kept.push(pair),
        }
        out.keys.insert(key);
    }
    out.rest = if kept.is_empty() {
        format!("{prefix}{head}")
    } else {
        format!("{prefix}{head}?{}", kept.join("&"))
    };
    Ok(out)
}

fn decode(raw: &str, what: &str) -> Result<String, PostgresStorageError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| {
            PostgresStorageError::InvalidConfig(format!(
                "an {what} is not valid percent-encoded utf-8"
            ))
        })
}

/// The `key=value` form, tokenised like the driver (and libpq): values may
/// be single-quoted; a backslash escapes the next character.
fn split_key_values(s: &str) -> Result<TlsOptions, PostgresStorageError> {
    let mut out = TlsOptions::default();
    let mut kept = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            if chars.peek().is_some() {
                return Err(PostgresStorageError::InvalidConfig(
                    "an option has no name before `=`".to_owned(),
                ));
            }
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // The word may be a password's tail (`password=my pass`) or a
            // mistyped URL with its credentials: named only when it is an
            // option name.
            return Err(PostgresStorageError::InvalidConfig(
                if LIBPQ_KEYWORDS.contains(&key.as_str()) {
                    format!("option `{key}` has no `=value`")
                } else {
                    "a word that is not a `key=value` option (not shown: it may hold a \
                     password; quote a value with spaces, password='…'; a URL starts with \
                     postgresql:// or postgres://)"
                        .to_owned()
                },
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(PostgresStorageError::InvalidConfig(format!(
                            "the quoted value of option `{key}` is not terminated"
                        )));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return Err(PostgresStorageError::InvalidConfig(format!(
                    "option `{key}` has an empty value"
                )));
            }
        }
        match key.as_str() {
            "sslmode" => out.sslmode = Some(value),
            "sslrootcert" => out.sslrootcert = Some(value),
            _ => {
                let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
                kept.push(format!("{key}='{escaped}'"));
            }
        }
        out.keys.insert(key);
    }
    out.rest = kept.join(" ");
    Ok(out)
}

/// Chooses the TLS client for `sslmode`/`sslrootcert` and sets the driver's
/// own ssl mode to match.
fn tls_from_options(
    options: &TlsOptions,
    config: &mut postgres::Config,
) -> Result<Tls, PostgresStorageError> {
    let mode = match (options.sslmode.as_deref(), &options.sslrootcert) {
        (None, None) | (Some("disable"), _) => {
            config.ssl_mode(SslMode::Disable);
            return Ok(Tls::Plain);
        }
        (Some("prefer"), _) => SslMode::Prefer,
        (Some("require" | "verify-ca" | "verify-full"), _) | (None, Some(_)) => SslMode::Require,
        (Some(other), _) => {
            return Err(PostgresStorageError::InvalidConfig(format!(
                "sslmode `{other}` is not supported (use disable, prefer, require, verify-ca or \
                 verify-full)"
            )));
        }
    };
    config.ssl_mode(mode);
    let connector = rustls_connector(options.sslrootcert.as_deref())?;
    Ok(Tls::Rustls { connector, mode })
}

/// A rustls client (ring provider, safe protocol versions) trusting the
/// Mozilla roots, or only the certificates in `rootcert`.
fn rustls_connector(rootcert: Option<&str>) -> Result<MakeRustlsConnect, PostgresStorageError> {
    let mut roots = rustls::RootCertStore::empty();
    match rootcert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path).map_err(|err| {
                PostgresStorageError::Tls(format!("cannot read sslrootcert file {path:?}: {err}"))
            })?;
            for cert in certs {
                let cert = cert.map_err(|err| {
                    PostgresStorageError::Tls(format!(
                        "sslrootcert file {path:?} is not valid pem: {err}"
                    ))
                })?;
                roots.add(cert).map_err(|err| {
                    PostgresStorageError::Tls(format!(
                        "sslrootcert file {path:?} holds a certificate rustls cannot use: {err}"
                    ))
                })?;
            }
            if roots.is_empty() {
                return Err(PostgresStorageError::Tls(format!(
                    "sslrootcert file {path:?} holds no certificate"
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| PostgresStorageError::Tls(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn keys(options: &TlsOptions) -> Vec<&str> {
        let mut keys: Vec<&str> = options.keys.iter().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn url_form_loses_only_the_tls_options() {
        let o = split_tls_options(
            "postgresql://u:p%40ss?@h:5433/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            o.rest,
            "postgresql://u:p%40ss?@h:5433/db?application_name=x"
        );
        assert_eq!(o.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(o.sslrootcert.as_deref(), Some("/ca.pem"));
        assert_eq!(keys(&o), ["application_name", "sslmode", "sslrootcert"]);
        let config = postgres::Config::from_str(&o.rest).unwrap();
        assert_eq!(config.get_password(), Some(&b"p@ss?"[..]));

        let o = split_tls_options("postgres://h/db?sslmode=require").unwrap();
        assert_eq!(o.rest, "postgres://h/db");
        let o = split_tls_options("postgres://h").unwrap();
        assert_eq!(o.rest, "postgres://h");
        assert_eq!(o.sslmode, None);
    }

    #[test]
    fn key_value_form_is_requoted() {
        let o = split_tls_options(
            " host = h password='it\\'s a secret' sslmode=verify-ca dbname=d\\ b sslrootcert='/a b.pem'",
        )
        .unwrap();
        assert_eq!(o.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(o.sslrootcert.as_deref(), Some("/a b.pem"));
        let config = postgres::Config::from_str(&o.rest).unwrap();
        assert_eq!(config.get_password(), Some(&b"it's a secret"[..]));
        assert_eq!(config.get_dbname(), Some("d b"));
        assert_eq!(
            keys(&o),
            ["dbname", "host", "password", "sslmode", "sslrootcert"]
        );

        assert!(split_tls_options("host='h").is_err());
        assert!(split_tls_options("host").is_err());
        assert!(split_tls_options("host=").is_err());
        assert!(split_tls_options("=h").is_err());
        assert_eq!(split_tls_options("").unwrap().rest, "");
    }

    #[test]
    fn tls_selection_follows_sslmode() {
        let pick = |s: &str| {
            let o = split_tls_options(s)?;
            let mut config = postgres::Config::from_str(&o.rest)
                .map_err(|e| PostgresStorageError::InvalidConfig(e.to_string()))?;
            let tls = tls_from_options(&o, &mut config)?;
            Ok::<_, PostgresStorageError>((tls.describe(), config.get_ssl_mode()))
        };
        assert_eq!(pick("host=h").unwrap(), ("plain tcp", SslMode::Disable));
        assert_eq!(
            pick("host=h sslmode=disable").unwrap(),
            ("plain tcp", SslMode::Disable)
        );
        assert_eq!(
            pick("host=h sslmode=prefer").unwrap(),
            ("tls preferred, verified", SslMode::Prefer)
        );
        for mode in ["require", "verify-ca", "verify-full"] {
            assert_eq!(
                pick(&format!("postgresql://h/d?sslmode={mode}")).unwrap(),
                ("tls required, verified", SslMode::Require)
            );
        }
        assert!(matches!(
            pick("host=h sslmode=allow"),
            Err(PostgresStorageError::InvalidConfig(_))
        ));
        assert!(matches!(
            pick("host=h sslrootcert=/nonexistent/ca.pem"),
            Err(PostgresStorageError::Tls(_))
        ));
        assert!(matches!(
            pick("host=h sslmode=require sslcert=/c.pem"),
            Err(PostgresStorageError::InvalidConfig(_))
        ));
    }

    #[test]
    fn a_malformed_connection_string_is_never_echoed() {
        for text in [
            "postgresq://postgres:S3cretPW@127.0.0.1/db",
            "postgresql:/postgres:S3cretPW@127.0.0.1/db",
            "mysql://a:S3cretPW@h/db",
            "host=h password=S3cret PW",
        ] {
            let Err(e) = split_tls_options(text) else {
                panic!("{text}: accepted")
            };
            let shown = e.to_string();
            assert!(
                !shown.contains("S3cret") && !shown.contains("PW"),
                "{shown}"
            );
            assert!(shown.contains("not a `key=value` option"), "{shown}");
        }
        let e = split_tls_options("host=h port").unwrap_err().to_string();
        assert!(e.contains("option `port` has no `=value`"), "{e}");
    }

    #[test]
    fn target_never_shows_the_password() {
        let config =
            postgres::Config::from_str("postgresql://alice:hunter2@db1:6543,db2/ledger").unwrap();
        let target = describe_target(&config);
        assert_eq!(target, "alice@db1:6543,db2:5432/ledger");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn decisions_are_told_from_policy_loads_by_their_own_kind() {
        let rec = |bytes: &str| EntryRecord {
            index: 1,
            entry_hash: String::new(),
            prev_hash: String::new(),
            bytes: bytes.as_bytes().to_vec(),
        };
        assert!(is_decision(&rec(
            r#"{"entry_hash":"ab","index":1,"kind":"decision","payload":{}}"#
        )));
        assert!(!is_decision(&rec(
            r#"{"entry_hash":"ab","index":1,"kind":"policy_load","payload":{"policy":{"a":1,"kind":"decision"}}}"#
        )));
        assert!(!is_decision(&rec("")));
    }

    #[test]
    fn batches_must_be_linked() {
        let rec = |index: u64, prev: &str, hash: &str| EntryRecord {
            index,
            entry_hash: hash.to_owned(),
            prev_hash: prev.to_owned(),
            bytes: vec![],
        };
        assert!(check_links(&[rec(0, "g", "a"), rec(1, "a", "b")]).is_ok());
        assert!(check_links(&[rec(0, "g", "a"), rec(1, "x", "b")]).is_err());
        assert!(check_links(&[rec(0, "g", "a"), rec(2, "a", "b")]).is_err());
    }
}
