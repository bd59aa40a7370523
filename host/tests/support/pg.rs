//! A throwaway PostgreSQL database per test.
//!
//! [`TestDb::create`] makes a database with a unique name on the server
//! named by `LEXECON_TEST_PG_URL` (default [`DEFAULT_ADMIN_URL`]) and drops
//! it again when the guard goes out of scope (terminating its connections
//! first). When no server answers, it panics with a message saying so: the
//! PostgreSQL tests never skip silently.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The admin connection used when `LEXECON_TEST_PG_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgresql://postgres@127.0.0.1:5432/test";

/// The admin connection string: `LEXECON_TEST_PG_URL` or
/// [`DEFAULT_ADMIN_URL`]. Its user must be allowed to create databases.
pub fn admin_url() -> String {
    std::env::var("LEXECON_TEST_PG_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned())
}

/// Connects to `url` without TLS, panicking loudly when no server answers.
pub fn connect_admin(url: &str) -> postgres::Client {
    let mut config = postgres::Config::from_str(url)
        .unwrap_or_else(|err| panic!("LEXECON_TEST_PG_URL does not parse: {err}"));
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.connect(postgres::NoTls).unwrap_or_else(|err| {
        let err = match std::error::Error::source(&err) {
            Some(cause) => format!("{err}: {cause}"),
            None => err.to_string(),
        };
        panic!(
            "\n\nPostgreSQL test server NOT REACHABLE at {target}: {err}\n\
             These tests need a running server: start it (e.g. `pg_ctlcluster \
             --skip-systemctl-redirect 15 main start`) or point LEXECON_TEST_PG_URL at one \
             (a postgresql:// url whose user may create databases).\n\n",
            target = redacted(&config),
        )
    })
}

/// `user@host:port/dbname` of `config`, without the password.
fn redacted(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

/// `url` with its database replaced by `dbname` (URL or key=value form).
pub fn with_dbname(url: &str, dbname: &str) -> String {
    let Some(rest) = url
        .strip_prefix("postgresql://")
        .map(|rest| ("postgresql://", rest))
        .or_else(|| {
            url.strip_prefix("postgres://")
                .map(|rest| ("postgres://", rest))
        })
    else {
        // key=value: the last occurrence of a key wins.
        return format!("{url} dbname={dbname}");
    };
    let (prefix, rest) = rest;
    let after_credentials = rest.find('@').map_or(0, |at| at + 1);
    let query_at = rest[after_credentials..]
        .find('?')
        .map_or(rest.len(), |q| after_credentials + q);
    let (authority_and_path, query) = rest.split_at(query_at);
    let authority = match authority_and_path[after_credentials..].find('/') {
        Some(slash) => &authority_and_path[..after_credentials + slash],
        None => authority_and_path,
    };
    format!("{prefix}{authority}/{dbname}{query}")
}

/// Appends `key=value` options to a connection string of either form.
pub fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    if url.starts_with("postgresql://") || url.starts_with("postgres://") {
        for (key, value) in params {
            let sep = if out.contains('?') { '&' } else { '?' };
            out.push_str(&format!("{sep}{key}={value}"));
        }
    } else {
        for (key, value) in params {
            out.push_str(&format!(" {key}='{value}'"));
        }
    }
    out
}

/// A database that lives as long as this guard.
pub struct TestDb {
    /// The database's name (`lexecon_test_<pid>_<nanos>_<n>`).
    pub name: String,
    /// A connection string for it (the admin string with the database
    /// replaced).
    pub url: String,
    admin_url: String,
    /// Roles made by [`TestDb::create_role`], dropped with the database.
    roles: Mutex<Vec<String>>,
}

impl TestDb {
    /// Creates a fresh, empty database. Panics loudly when the server
    /// cannot be reached.
    pub fn create() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "lexecon_test_{}_{nanos}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin_url = admin_url();
        let mut admin = connect_admin(&admin_url);
        admin
            .batch_execute(&format!("create database \"{name}\""))
            .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
        let url = with_dbname(&admin_url, &name);
        Self {
            name,
            url,
            admin_url,
            roles: Mutex::new(Vec::new()),
        }
    }

    /// The connection string for this database with extra options.
    pub fn url_with(&self, params: &[(&str, &str)]) -> String {
        with_params(&self.url, params)
    }

    /// A plain connection to this database, for inspecting and tampering.
    pub fn client(&self) -> postgres::Client {
        connect_admin(&self.url)
    }

    /// Creates a login role named `<database>_<suffix>` with no privileges
    /// (roles are cluster-wide: it is dropped together with the database)
    /// and returns its name.
    pub fn create_role(&self, suffix: &str) -> String {
        let role = format!("{}_{suffix}", self.name);
        connect_admin(&self.admin_url)
            .batch_execute(&format!("create role \"{role}\" login"))
            .unwrap_or_else(|err| panic!("cannot create role {role}: {err}"));
        self.roles.lock().unwrap().push(role.clone());
        role
    }

    /// This database's connection string, logging in as `user`.
    pub fn url_as(&self, user: &str) -> String {
        with_params(&self.url, &[("user", user)])
    }

    /// Terminates every session on this database whose `application_name`
    /// is `application_name`; returns how many were terminated.
    pub fn terminate(&self, application_name: &str) -> u64 {
        let mut admin = connect_admin(&self.admin_url);
        let rows = admin
            .query(
                "select pg_terminate_backend(pid) from pg_stat_activity \
                 where datname = $1 and application_name = $2 and pid <> pg_backend_pid()",
                &[&self.name, &application_name],
            )
            .unwrap_or_else(|err| panic!("cannot terminate sessions: {err}"));
        rows.iter().filter(|row| row.get::<_, bool>(0)).count() as u64
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Ok(config) = postgres::Config::from_str(&self.admin_url) else {
            return;
        };
        let mut config = config;
        config.connect_timeout(Duration::from_secs(5));
        let Ok(mut admin) = config.connect(postgres::NoTls) else {
            eprintln!(
                "warning: could not drop test database {}: server gone",
                self.name
            );
            return;
        };
        for _ in 0..5 {
            let _ = admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity \
                 where datname = $1 and pid <> pg_backend_pid()",
                &[&self.name],
            );
            match admin.batch_execute(&format!("drop database if exists \"{}\"", self.name)) {
                Ok(()) => {
                    let roles = self.roles.lock().map(|r| r.clone()).unwrap_or_default();
                    for role in roles {
                        if let Err(err) =
                            admin.batch_execute(&format!("drop role if exists \"{role}\""))
                        {
                            eprintln!("warning: could not drop test role {role}: {err}");
                        }
                    }
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        eprintln!("warning: could not drop test database {}", self.name);
    }
}
