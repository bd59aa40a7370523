//! What each `lexecon` command does.
//!
//! Commands that only read the ledger (`ledger show|verify|check-integrity`,
//! `policy list|show`) open it read-only, so they work while a server runs.
//! Commands that record something (`policy load`, `decide`) need the
//! ledger's write lock; while a server holds it they fail and say to use
//! the server's HTTP API instead.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use lexecon_core::DecisionRequest;
use lexecon_core::capability::{Expect, verify_token};
use lexecon_core::engine::{PolicyFact, PolicyTrail, verify_storage_parallel};
use lexecon_core::ledger::Entry;
use lexecon_core::policy::{Mode, Policy, PolicyError};
use lexecon_core::storage::{Storage as _, StorageError};
use serde_json::{Value, json};

use super::{CliError, DecideArgs, GlobalArgs};
use crate::config::{LoggingConfig, StorageKind};
use crate::ledger_view::{PolicyLoad, SCAN_CHUNK, entry_json, entry_line, scan_policy_loads};
use crate::node::{self, Access, Node, NodeError};
use crate::server::{self, ServerOptions};
use crate::storage::file::{FileStorage, FileStorageError};

type Result<T = ()> = std::result::Result<T, CliError>;

fn fail(msg: impl Into<String>) -> CliError {
    CliError(msg.into())
}

/// Logs of commands other than `server`: warnings and errors on stderr.
fn quiet_logging() {
    let _ = crate::logging::init(&LoggingConfig {
        level: "warn".into(),
        ..LoggingConfig::default()
    });
}

fn open(g: &GlobalArgs) -> Result<Node> {
    quiet_logging();
    let home = node::lexecon_home()?;
    Ok(node::open_node(
        &home,
        g.node_id.as_deref(),
        g.config.as_deref(),
    )?)
}

fn read_input(path: &Path) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| fail(format!("cannot read standard input: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| fail(format!("cannot read `{}`: {e}", path.display())))
}

/// Standard output that stops quietly when the reader goes away (`| head`).
struct Out(std::io::BufWriter<std::io::StdoutLock<'static>>);

impl Out {
    fn new() -> Self {
        Self(std::io::BufWriter::new(std::io::stdout().lock()))
    }
    /// Writes a line; `false` when stdout is closed.
    fn line(&mut self, s: &str) -> bool {
        writeln!(self.0, "{s}").is_ok()
    }
    fn finish(mut self) -> Result {
        match self.0.flush() {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(fail(format!("cannot write output: {e}")))
            }
            _ => Ok(()),
        }
    }
}

fn print(s: &str) -> Result {
    let mut out = Out::new();
    out.line(s);
    out.finish()
}

fn pretty(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| fail(format!("cannot encode output: {e}")))
}

fn policy_error(file: &Path, e: &PolicyError) -> CliError {
    match (e.line, e.column) {
        (Some(l), Some(c)) => fail(format!(
            "{}:{l}:{c}: {}: {}",
            file.display(),
            e.path,
            e.message
        )),
        _ => fail(format!("{}: {}: {}", file.display(), e.path, e.message)),
    }
}

/// Explains a locked ledger in terms of the running server.
fn locked_hint(e: NodeError, node: &Node, endpoint: &str, what: &str) -> CliError {
    match e {
        NodeError::File(FileStorageError::Locked { holder_pid, .. }) => {
            // The address it bound, as it recorded it; else the configured one.
            let server = holder_pid
                .and_then(|pid| node.server_url_of(pid))
                .unwrap_or_else(|| {
                    format!(
                        "http://{}:{}",
                        node.config.server.host, node.config.server.port
                    )
                });
            let pid = holder_pid.map_or_else(String::new, |p| format!(" (pid {p})"));
            fail(format!(
                "a server is running for node `{}`{pid} and holds its ledger; {what} through it instead: \
                 `curl -X POST {server}{endpoint} -H 'Content-Type: application/json' --data @FILE` \
                 (add `-H \"Authorization: Bearer $LEXECON_API_KEY\"` if it has an API key)",
                node.id
            ))
        }
        other => CliError(other.to_string()),
    }
}

/// `lexecon init`.
pub fn init(g: &GlobalArgs, force: bool) -> Result {
    quiet_logging();
    let id = g
        .node_id
        .as_deref()
        .ok_or_else(|| fail("`lexecon init` needs --node-id ID (the new node's name)"))?;
    let home = node::lexecon_home()?;
    let config = match &g.config {
        Some(p) => Some((read_input(p)?, p.display().to_string())),
        None => None,
    };
    let made = node::init_node(
        &home,
        id,
        force,
        config
            .as_ref()
            .map(|(text, source)| (text.as_str(), source.as_str())),
    )?;
    let mut out = Out::new();
    out.line(&format!(
        "initialized node `{id}` in {}",
        made.paths.dir.display()
    ));
    out.line(&format!("  config:      {}", made.paths.config.display()));
    out.line(&format!(
        "  private key: {} (mode 0600)",
        made.paths.private_key.display()
    ));
    out.line(&format!(
        "  public key:  {} ({})",
        made.paths.public_key.display(),
        made.key_id
    ));
    out.line(&format!("  ledger:      {}", made.ledger.display()));
    out.line(&format!("next: lexecon policy load --node-id {id} --file POLICY.json && lexecon server --node-id {id}"));
    out.finish()
}

/// The node for `policy validate`, when one is named or obvious (for `policy.default_mode`).
fn validation_mode(g: &GlobalArgs) -> Result<Mode> {
    quiet_logging();
    let explicit = g.node_id.is_some() || g.config.is_some();
    let home = node::lexecon_home();
    match home.and_then(|h| node::open_node(&h, g.node_id.as_deref(), g.config.as_deref())) {
        Ok(n) => Ok(n.config.policy.default_mode),
        Err(e) if explicit => Err(e.into()),
        Err(_) => Ok(Mode::default()),
    }
}

/// `lexecon policy validate`.
pub fn policy_validate(g: &GlobalArgs, file: &Path) -> Result {
    let mode = validation_mode(g)?;
    let text = read_input(file)?;
    let (_, p) = node::prepare_policy(&text, mode).map_err(|e| policy_error(file, &e))?;
    let c = p.counts();
    print(&format!(
        "{}: valid: policy `{}` version `{}` ({} mode): {} terms, {} relations, {} constraints; hash {}",
        file.display(),
        p.name,
        p.version,
        p.mode.as_str(),
        c.terms,
        c.relations,
        c.constraints,
        p.hash
    ))
}

/// `lexecon policy load`.
pub fn policy_load(g: &GlobalArgs, file: &Path) -> Result {
    let node = open(g)?;
    let original = read_input(file)?;
    let (text, _) = node
        .prepare_policy(&original)
        .map_err(|e| policy_error(file, &e))?;
    let mut engine = node
        .open_engine()
        .map_err(|e| locked_hint(e, &node, "/policies", "load the policy"))?;
    let loaded = engine
        .load_policy(&text)
        .map_err(|e| fail(format!("cannot load `{}`: {e}", file.display())))?;
    drop(engine);
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| *s != "-")
        .map_or_else(|| loaded.policy.name.clone(), str::to_string);
    let copy = node::save_policy_copy(&node.paths, &stem, &text)?;
    let mut out = Out::new();
    if loaded.recorded {
        out.line(&format!(
            "loaded policy `{}` version `{}` ({} mode): {} terms, {} relations, {} constraints",
            loaded.policy.name,
            loaded.policy.version,
            loaded.policy.mode.as_str(),
            loaded.policy.terms,
            loaded.policy.relations,
            loaded.policy.constraints
        ));
    } else {
        out.line(&format!(
            "policy `{}` is already the active policy; nothing recorded",
            loaded.policy.name
        ));
    }
    out.line(&format!("  policy hash:  {}", loaded.policy.policy_hash));
    out.line(&format!(
        "  ledger entry: #{} {}",
        loaded.ledger_index, loaded.ledger_entry_hash
    ));
    out.line(&format!("  copy:         {}", copy.display()));
    out.finish()
}

fn all_policy_loads(node: &Node) -> Result<Vec<PolicyLoad>> {
    let (mut storage, _) = node.open_storage(Access::ReadOnly)?;
    let len = storage.len()?;
    let mut loads = Vec::new();
    scan_policy_loads(&mut storage, 0, len, &mut loads)?;
    Ok(loads)
}

/// Policy hash → file stems of the copies under the node's `policies/`.
fn policy_copies(node: &Node) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    let Ok(dir) = std::fs::read_dir(&node.paths.policies_dir) else {
        return map;
    };
    for e in dir.filter_map(std::result::Result::ok) {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let (Some(stem), Ok(text)) = (
            path.file_stem().and_then(|s| s.to_str()),
            std::fs::read_to_string(&path),
        ) else {
            continue;
        };
        if let Ok(p) = Policy::parse(&text) {
            map.entry(p.hash).or_default().push(stem.to_string());
        }
    }
    map
}

/// `lexecon policy list`.
pub fn policy_list(g: &GlobalArgs, json: bool) -> Result {
    let node = open(g)?;
    let loads = all_policy_loads(&node)?;
    let copies = policy_copies(&node);
    let mut out = Out::new();
    if json {
        let items: Vec<Value> = loads
            .iter()
            .map(|l| {
                let mut v = serde_json::to_value(l).unwrap_or(Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "files".into(),
                        json!(copies.get(&l.policy_hash).cloned().unwrap_or_default()),
                    );
                }
                v
            })
            .collect();
        out.line(&pretty(&items)?);
        return out.finish();
    }
    if loads.is_empty() {
        out.line(&format!("no policy is loaded on node `{}`; load one with `lexecon policy load --file POLICY.json`", node.id));
        return out.finish();
    }
    for l in &loads {
        let files = copies
            .get(&l.policy_hash)
            .map_or_else(String::new, |f| format!(" file: {}", f.join(", ")));
        let line = format!(
            "{} #{} {} `{}` version `{}` {} {}{files}",
            if l.active { "*" } else { " " },
            l.ledger_index,
            l.loaded_at,
            l.name,
            l.version,
            l.mode,
            l.policy_hash,
        );
        if !out.line(&line) {
            break;
        }
    }
    out.finish()
}

/// `lexecon policy show`.
pub fn policy_show(g: &GlobalArgs, name: &str) -> Result {
    let node = open(g)?;
    let loads = all_policy_loads(&node)?;
    let copies = policy_copies(&node);
    let want = name.trim();
    let slug = node::policy_slug(want);
    let hex_prefix = want.len() >= 6 && want.bytes().all(|b| b.is_ascii_hexdigit());
    let found = loads.iter().rev().find(|l| {
        l.name.eq_ignore_ascii_case(want)
            || node::policy_slug(&l.name) == slug
            || copies
                .get(&l.policy_hash)
                .is_some_and(|f| f.iter().any(|s| node::policy_slug(s) == slug))
            || (hex_prefix && l.policy_hash.starts_with(&want.to_ascii_lowercase()))
    });
    let Some(l) = found else {
        let names: Vec<String> = loads.iter().map(|l| format!("`{}`", l.name)).collect();
        return Err(fail(if names.is_empty() {
            format!("no policy is loaded on node `{}`", node.id)
        } else {
            let short =
                if !hex_prefix && !want.is_empty() && want.bytes().all(|b| b.is_ascii_hexdigit()) {
                    " (a hash prefix needs at least 6 hex digits)"
                } else {
                    ""
                };
            format!(
                "no loaded policy matches `{want}`{short}; loaded: {}",
                names.join(", ")
            )
        }));
    };
    let v = json!({
        "name": l.name,
        "version": l.version,
        "mode": l.mode,
        "policy_hash": l.policy_hash,
        "active": l.active,
        "ledger_index": l.ledger_index,
        "ledger_entry_hash": l.ledger_entry_hash,
        "loaded_at": l.loaded_at,
        "files": copies.get(&l.policy_hash).cloned().unwrap_or_default(),
        "policy": l.policy,
    });
    print(&pretty(&v)?)
}

/// `lexecon server`.
pub fn server(g: &GlobalArgs, host: Option<String>, port: Option<u16>) -> Result {
    let home = node::lexecon_home()?;
    let node = node::open_node(&home, g.node_id.as_deref(), g.config.as_deref())?;
    let mut opts = ServerOptions::from_env().map_err(fail)?;
    opts.host = host;
    opts.port = port;
    server::run(&node, &opts).map_err(|e| fail(e.0))
}

fn decide_request(args: &DecideArgs) -> Result<DecisionRequest> {
    if let Some(file) = &args.json_file {
        let text = read_input(file)?;
        return DecisionRequest::from_json(&text)
            .map_err(|e| fail(format!("{}: {e}", file.display())));
    }
    let need = |v: &Option<String>, flag: &str| {
        v.clone()
            .ok_or_else(|| fail(format!("--{flag} is required")))
    };
    let mut r = DecisionRequest::new(
        &need(&args.actor, "actor")?,
        &need(&args.action, "action")?,
        &need(&args.tool, "tool")?,
        &need(&args.intent, "intent")?,
        args.risk.ok_or_else(|| fail("--risk is required"))?,
    );
    r.request_id.clone_from(&args.request_id);
    r.data_classes.clone_from(&args.data_classes);
    r.token_ttl = args.token_ttl;
    if let Some(c) = &args.context {
        // As the server reads a request's context: an object whose keys are
        // unique at every depth.
        r.context = lexecon_core::request::context_from_json(c)
            .map_err(|e| fail(format!("--context: {}", e.message)))?;
    }
    r.validate()
        .map_err(|e| fail(format!("invalid request: {e}")))?;
    Ok(r)
}

/// `lexecon decide`.
pub fn decide(g: &GlobalArgs, args: &DecideArgs) -> Result {
    let request = decide_request(args)?;
    let node = open(g)?;
    let mut engine = node
        .open_engine()
        .map_err(|e| locked_hint(e, &node, "/decide", "ask for the decision"))?;
    let mut out = engine
        .decide_batch(std::slice::from_ref(&request))
        .map_err(|e| fail(format!("no decision (fail closed): {e}")))?;
    drop(engine);
    match out.pop() {
        Some(Ok(d)) => print(&pretty(&d)?),
        Some(Err(e)) => Err(fail(format!("invalid request: {e}"))),
        None => Err(fail("the engine returned no decision")),
    }
}

/// `lexecon ledger show`.
pub fn ledger_show(g: &GlobalArgs, last: Option<u64>, json: bool) -> Result {
    let node = open(g)?;
    let (mut storage, _) = node.open_storage(Access::ReadOnly)?;
    let len = storage.len()?;
    let start = last.map_or(0, |n| len.saturating_sub(n));
    let mut out = Out::new();
    let mut damaged: Vec<u64> = Vec::new();
    // Entries that read but do not verify (content, index or link), as
    // `ledger verify` would find them: shown, marked, and the exit is 1.
    let mut altered: Vec<u64> = Vec::new();
    let mut prev_hash: Option<String> = None;
    let mut at = start;
    while at < len {
        let end = len.min(at + SCAN_CHUNK);
        let chunk: Vec<std::result::Result<Vec<u8>, StorageError>> =
            match storage.get_range(at, end) {
                Ok(c) if c.is_empty() => break,
                Ok(c) => c.into_iter().map(Ok).collect(),
                // Damage in the range: read entry by entry to show the rest.
                Err(_) => (at..end)
                    .map(|i| {
                        storage
                            .get(i)
                            .and_then(|b| b.ok_or(StorageError::Unavailable("missing".into())))
                    })
                    .collect(),
            };
        for item in chunk {
            let index = at;
            at += 1;
            let item = item.map_err(|e| e.to_string()).and_then(|b| {
                let entry = Entry::parse(&b).map_err(|e| e.to_string())?;
                let why = match lexecon_core::ledger::check_entry(&b, index) {
                    Err(f) => Some(f.message),
                    Ok(_) if prev_hash.as_ref().is_some_and(|p| *p != entry.prev_hash) => {
                        Some(format!(
                            "its prev_hash is not entry {}'s hash: entries were removed, reordered or rewritten",
                            index - 1
                        ))
                    }
                    Ok(_) => None,
                };
                Ok((entry, why))
            });
            prev_hash = item.as_ref().ok().map(|(e, _)| e.entry_hash.clone());
            let line = match item {
                Ok((entry, why)) => {
                    if why.is_some() {
                        altered.push(index);
                    }
                    match (json, why) {
                        (true, why) => {
                            let mut v = entry_json(&entry);
                            if let (Some(why), Some(map)) = (why, v.as_object_mut()) {
                                map.insert("does_not_verify".into(), why.into());
                            }
                            serde_json::to_string(&v).unwrap_or_default()
                        }
                        (false, None) => entry_line(&entry),
                        (false, Some(why)) => {
                            format!("{}\n#{index} does not verify: {why}", entry_line(&entry))
                        }
                    }
                }
                Err(e) => {
                    damaged.push(index);
                    if json {
                        json!({"index": index, "damaged": e}).to_string()
                    } else {
                        format!("#{index} damaged: {e}")
                    }
                }
            };
            if !out.line(&line) {
                return Ok(());
            }
        }
    }
    out.finish()?;
    if let Some(first) = altered.first() {
        return Err(fail(format!(
            "{} shown entr{} not verify, the first #{first} (marked above): the ledger was altered; run `lexecon ledger verify --verbose`",
            altered.len(),
            if altered.len() == 1 {
                "y does"
            } else {
                "ies do"
            }
        )));
    }
    match damaged.as_slice() {
        [] => Ok(()),
        [one] => Err(fail(format!(
            "entry #{one} is damaged (shown above); run `lexecon ledger check-integrity`"
        ))),
        [first, ..] => Err(fail(format!(
            "{} entries are damaged, the first #{first} (shown above); run `lexecon ledger check-integrity`",
            damaged.len()
        ))),
    }
}

/// `lexecon ledger create`.
pub fn ledger_create(g: &GlobalArgs) -> Result {
    let node = open(g)?;
    let path = node.create_ledger()?;
    let mut out = Out::new();
    out.line(&format!(
        "created an empty ledger for node `{}`: {}",
        node.id,
        path.display()
    ));
    out.finish()
}

/// `lexecon ledger verify`.
pub fn ledger_verify(
    g: &GlobalArgs,
    verbose: bool,
    expect_head: Option<&str>,
    signatures: bool,
) -> Result {
    if let Some(h) = expect_head
        && !lexecon_core::hash::is_hash_hex(h.as_bytes())
    {
        return Err(fail(format!(
            "--expect-head `{h}` is not an entry hash (64 lowercase hex digits)"
        )));
    }
    let node = open(g)?;
    let (mut storage, recovery) = node.open_storage(Access::ReadOnly)?;
    let len = storage.len()?;
    let mut out = Out::new();
    if verbose {
        out.line(&format!("node:    {}", node.id));
        out.line(&format!(
            "ledger:  {} ({len} entries)",
            node.ledger_location()
        ));
        if let Some(r) = &recovery {
            if r.ignored_tail_bytes > 0 {
                out.line(&format!(
                    "storage: torn tail of {} bytes (an interrupted append, never acknowledged; the next writer cuts it)",
                    r.ignored_tail_bytes
                ));
            }
            for p in &r.problems {
                let at = p
                    .index
                    .map_or_else(|| "bytes".to_string(), |i| format!("entry {i}"));
                out.line(&format!(
                    "storage: damaged {at} at byte offset {}: {}",
                    p.offset, p.detail
                ));
            }
        }
    }
    let bar = (std::io::stderr().is_terminal() && len >= 10_000).then(|| {
        let pb = indicatif::ProgressBar::new(len);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "verifying {bar:40} {pos}/{len} entries ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let report = verify_storage_parallel(&mut storage, verify_threads(), |n| {
        if let Some(pb) = &bar {
            pb.set_position(n);
        }
    })
    .map_err(|e| fail(format!("cannot read the ledger: {e}")))?;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    match &report.failure {
        None => {
            // Every chain starts from the genesis hash: the head of an empty
            // ledger, as `ledger verify` prints it.
            if let Some(anchor) = expect_head.filter(|a| *a != lexecon_core::ledger::GENESIS_HASH) {
                let held = storage
                    .find(anchor)
                    .map_err(|e| fail(format!("ledger verification failed: {e}")))?;
                let Some(index) = held else {
                    out.finish()?;
                    return Err(fail(format!(
                        "ledger verification failed: entry {anchor} (--expect-head) is not in the ledger: entries were removed from its end ({} entries left, head {})",
                        report.entries, report.head_hash
                    )));
                };
                if verbose {
                    out.line(&format!("anchor:  entry {index} is {anchor}"));
                }
            }
            if signatures {
                let public_key = node.public_key()?;
                let checked = check_signatures(&mut storage, report.entries, &public_key)
                    .map_err(|e| fail(format!("cannot read the ledger: {e}")))?;
                if let Some((index, why)) = checked {
                    out.finish()?;
                    return Err(fail(format!(
                        "ledger verification failed at entry {index}: {why} (its chain hashes check out: only the signatures show it)"
                    )));
                }
                if verbose {
                    out.line(&format!(
                        "signatures: every decision signed by this node's key ({})",
                        lexecon_core::signer::key_id(&public_key)
                    ));
                }
            }
            out.line(&format!(
                "ledger valid: {} entries, head {}{}",
                report.entries,
                report.head_hash,
                if signatures {
                    ", signatures checked"
                } else {
                    ""
                }
            ));
            out.finish()
        }
        Some(f) => {
            if verbose {
                out.line(&format!(
                    "verified: {} entries before the first bad one",
                    report.entries
                ));
                out.line(&format!("last good head: {}", report.head_hash));
                out.line(&format!("first bad entry: {} ({:?})", f.index, f.kind));
                out.line(&format!("why: {}", f.message));
                if let Ok(Some(bytes)) = storage.get(f.index) {
                    match Entry::parse(&bytes) {
                        Ok(e) => out.line(&format!(
                            "stored entry: index {} {} {} entry_hash {}",
                            e.index,
                            e.timestamp,
                            e.kind.as_str(),
                            e.entry_hash
                        )),
                        Err(e) => out.line(&format!("stored entry: does not parse: {e}")),
                    };
                }
            }
            out.finish()?;
            Err(fail(format!(
                "ledger verification failed at entry {}: {} ({} entries verified before it)",
                f.index, f.message, report.entries
            )))
        }
    }
}

/// `lexecon ledger check-integrity`.
pub fn ledger_check_integrity(g: &GlobalArgs) -> Result {
    let node = open(g)?;
    let mut out = Out::new();
    match node.config.ledger.storage {
        StorageKind::File => {
            let path = node.ledger_path();
            let report = FileStorage::check_integrity(&path)?;
            out.line(&format!("ledger file: {}", path.display()));
            out.line(&format!("records: {}", report.records));
            if report.torn_tail_bytes > 0 {
                out.line(&format!(
                    "torn tail: {} bytes (an append interrupted by a crash, never acknowledged; the next `lexecon server` start cuts it off)",
                    report.torn_tail_bytes
                ));
            }
            for p in &report.problems {
                let at = p
                    .index
                    .map_or_else(|| "bytes".to_string(), |i| format!("entry {i}"));
                out.line(&format!(
                    "damaged {at} at byte offset {}: {}",
                    p.offset, p.detail
                ));
            }
            if report.problems.is_empty() {
                out.line("checksums: all records intact");
                out.finish()
            } else {
                out.finish()?;
                let first = report.problems.first().map(|p| {
                    p.index.map_or_else(
                        || format!("bytes at offset {}", p.offset),
                        |i| format!("entry {i}"),
                    )
                });
                Err(fail(format!(
                    "ledger storage is damaged: {} problem(s), first at {}",
                    report.problems.len(),
                    first.unwrap_or_default()
                )))
            }
        }
        StorageKind::Postgresql => {
            let (mut storage, _) = node.open_storage(Access::ReadOnly)?;
            let report = verify_storage_parallel(&mut storage, verify_threads(), |_| {})
                .map_err(|e| fail(format!("cannot read the ledger: {e}")))?;
            out.line(&format!(
                "postgresql ledger: {} rows read back and linked",
                report.entries
            ));
            // The `entry_hash` column is outside the chain's hashes, and
            // lookups by hash go through it.
            let altered = match &mut storage {
                node::LedgerStorage::Postgres(pg) => pg
                    .altered_index()
                    .map_err(|e| fail(format!("cannot read the ledger: {e}")))?,
                _ => Vec::new(),
            };
            for a in &altered {
                out.line(&format!(
                    "damaged entry {}: the entry_hash column gives {}, but the entry's own is {}: the table's hash index was altered",
                    a.index, a.column, a.own
                ));
            }
            if altered.is_empty() {
                out.line("entry_hash column: matches every entry");
            }
            out.finish()?;
            match (report.failure, altered.first()) {
                (None, None) => Ok(()),
                (Some(f), _) => Err(fail(format!(
                    "ledger storage is damaged at entry {}: {}",
                    f.index, f.message
                ))),
                (None, Some(a)) => Err(fail(format!(
                    "ledger storage is damaged: {} row(s) with an altered entry_hash column, first at entry {}",
                    altered.len(),
                    a.index
                ))),
            }
        }
    }
}

/// `lexecon token verify`.
pub fn token_verify(
    g: &GlobalArgs,
    token: &str,
    tool: Option<&str>,
    actor: Option<&str>,
) -> Result {
    let node = open(g)?;
    let public_key = node.public_key()?;
    let raw = if token == "-" {
        read_input(Path::new("-"))?
    } else {
        token.to_string()
    };
    let raw = raw.trim();
    let compact = if raw.starts_with('{') {
        let v: Value = serde_json::from_str(raw)
            .map_err(|e| fail(format!("the token looks like JSON but does not parse: {e}")))?;
        v.get("token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| fail("the JSON has no `token` string"))?
    } else {
        raw.to_string()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match verify_token(&compact, &public_key, now, Expect { tool, actor }) {
        Ok(claims) => print(&pretty(&json!({"valid": true, "claims": claims}))?),
        Err(e) => {
            print(&pretty(
                &json!({"valid": false, "error": e.code(), "detail": e.to_string()}),
            )?)?;
            Err(fail(format!("token is not valid: {e}")))
        }
    }
}

/// Threads `ledger verify` checks entries on: one per core (the server
/// verifies on one reader thread instead, leaving the cores to deciding).
/// The first of the first `len` entries whose decision is not signed by
/// `public_key` ([`verify_entry_signature`]) or names another policy than
/// the one in force ([`PolicyTrail`]), with why. The entries of each chunk
/// are parsed and their signatures checked on one thread per core; the
/// policy trail is then followed in order.
fn check_signatures(
    storage: &mut node::LedgerStorage,
    len: u64,
    public_key: &[u8; 32],
) -> std::result::Result<Option<(u64, String)>, StorageError> {
    /// One entry's outcome: its policy fact, or why it fails.
    type Checked = std::result::Result<PolicyFact, String>;
    let threads = verify_threads();
    let check = |part: &[Vec<u8>]| -> Vec<Checked> {
        part.iter()
            .map(|bytes| {
                let e = Entry::parse(bytes).map_err(|e| format!("not an entry: {e}"))?;
                lexecon_core::engine::verify_entry_signature(&e, public_key)?;
                PolicyFact::of(&e)
            })
            .collect()
    };
    let mut trail = PolicyTrail::new();
    let mut at = 0;
    while at < len {
        let chunk = storage.get_range(at, len.min(at + SCAN_CHUNK * threads as u64))?;
        if chunk.is_empty() {
            return Ok(Some((at, "the entry is missing from storage".into())));
        }
        let per = chunk.len().div_ceil(threads);
        let checked: Vec<Checked> = std::thread::scope(|scope| {
            let parts: Vec<_> = chunk
                .chunks(per)
                .map(|part| (part.len(), scope.spawn(move || check(part))))
                .collect();
            parts
                .into_iter()
                .flat_map(|(n, h)| {
                    h.join()
                        .unwrap_or_else(|_| vec![Err("the check panicked".into()); n])
                })
                .collect()
        });
        for (i, outcome) in (at..).zip(checked) {
            if let Err(why) = outcome.and_then(|fact| trail.push(i, fact)) {
                return Ok(Some((i, why)));
            }
        }
        at += chunk.len() as u64;
    }
    Ok(None)
}

fn verify_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
