//! The `lexecon` command line: argument definitions ([`Cli`]) and dispatch
//! ([`run`]). Each command's work is in [`commands`].
//!
//! Every command takes `--node-id` (default: the only node under
//! `$LEXECON_HOME/nodes`; env `LEXECON_NODE_ID`) and `--config FILE` (default:
//! the node's `config.yaml`; env `LEXECON_CONFIG`). Failures print one line,
//! `error: …`, on stderr and exit with status 1 (2 for usage errors).

pub mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// Lexecon: governance for AI agents' tool calls.
#[derive(Debug, Parser)]
#[command(
    name = "lexecon",
    version,
    about = "Lexecon: governance for AI agents' tool calls (policies, decisions, capability tokens, audit ledger)",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments as [`Parser::parse`] does (printing
    /// the error and exiting 2 on a usage error), except that a bad value
    /// taken from an environment variable (`LEXECON_PORT=abc`) is reported
    /// as that variable's, not only as the flag it stands for.
    pub fn parse_args() -> Self {
        use clap::error::ErrorKind;
        Self::try_parse().unwrap_or_else(|e| {
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit()
            }
            let mut text = e.render().to_string();
            if let Some((flag, var)) = env_source(&e) {
                text = text.replacen(
                    &format!("'{flag}'"),
                    &format!("'{flag}' (from the environment variable {var})"),
                    1,
                );
            }
            eprintln!("{}", one_line(&text));
            std::process::exit(e.exit_code());
        })
    }
}

/// clap's error text as the one line every failure prints: the reason and
/// its tips, then the usage in parentheses; without the `--help` hint.
fn one_line(rendered: &str) -> String {
    let mut reason = String::new();
    let mut usage = None;
    let mut listing = false;
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage:") {
            usage = Some(u.trim());
        } else if !line.starts_with("For more information") && usage.is_none() {
            // A list (`not provided:` then one argument a line) reads
            // `a, b, c`; a tip after the reason is `; tip: …`.
            let sep = if reason.ends_with(':') {
                " "
            } else if listing && !line.starts_with("tip:") {
                ", "
            } else {
                listing = false;
                "; "
            };
            if !reason.is_empty() {
                listing |= reason.ends_with(':');
                reason.push_str(sep);
            }
            reason.push_str(line);
        }
    }
    match usage {
        Some(u) => format!("{reason} (usage: {u})"),
        None => reason,
    }
}

/// The refused flag (as the error names it, `--port <PORT>`) and the
/// environment variable its value came from: the flag has one, it is set,
/// and the flag is not on the command line.
fn env_source(e: &clap::Error) -> Option<(String, String)> {
    use clap::CommandFactory as _;
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    // `--port <PORT>` → `port`.
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let cmd = Cli::command();
    let var = std::iter::once(&cmd)
        .chain(cmd.get_subcommands())
        .flat_map(clap::Command::get_arguments)
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_str()?
        .to_string();
    let flag = format!("--{long}");
    let on_command_line = std::env::args_os()
        .filter_map(|a| a.into_string().ok())
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    (!on_command_line && std::env::var_os(&var).is_some()).then(|| (arg.clone(), var))
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The node to use [default: the only node under $LEXECON_HOME/nodes]
    #[arg(long, global = true, env = "LEXECON_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
    /// Configuration file to use instead of the node's config.yaml
    #[arg(long, global = true, env = "LEXECON_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node: $LEXECON_HOME/nodes/ID with config.yaml, Ed25519 keys and an empty ledger
    Init {
        /// Replace an existing node (its keys and ledger are deleted)
        #[arg(long)]
        force: bool,
    },
    /// Validate, load, list and show policies
    Policy {
        /// What to do.
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Run the governance HTTP server
    Server {
        /// Address to listen on [default: server.host, 127.0.0.1]
        #[arg(long, env = "LEXECON_HOST")]
        host: Option<String>,
        /// Port to listen on; 0 picks a free one [default: server.port, 8000]
        #[arg(long, env = "LEXECON_PORT")]
        port: Option<u16>,
    },
    /// Make one decision and print it as JSON (records it in the ledger)
    Decide(DecideArgs),
    /// Show, verify and check the audit ledger
    Ledger {
        /// What to do.
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Capability tokens
    Token {
        /// What to do.
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// `lexecon policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file; prints the first error with its JSON path, line and column
    Validate {
        /// The policy (JSON); `-` reads standard input
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Load a policy and record its hash in the ledger (stop the server first, or use POST /policies)
    Load {
        /// The policy (JSON)
        #[arg(long, short)]
        file: PathBuf,
    },
    /// List the policies loaded on this node (from the ledger); `*` marks the active one
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a loaded policy
    Show {
        /// The policy's name, the file name it was loaded from (without `.json`), or a hash prefix of at least 6 hex digits
        #[arg(long, short)]
        name: String,
    },
}

/// `lexecon decide`: flags or a JSON file.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["actor", "json_file"])))]
pub struct DecideArgs {
    /// Who wants to act (e.g. `model`)
    #[arg(long, requires_all = ["tool", "action", "intent", "risk"])]
    pub actor: Option<String>,
    /// The tool to call (e.g. `web_search`)
    #[arg(long)]
    pub tool: Option<String>,
    /// What the agent proposes to do (the request's `proposed_action`)
    #[arg(long)]
    pub action: Option<String>,
    /// Why the user wants it (the request's `user_intent`)
    #[arg(long)]
    pub intent: Option<String>,
    /// Risk level, 1 (harmless) to 5 (critical)
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub risk: Option<u8>,
    /// Your id for the request
    #[arg(long)]
    pub request_id: Option<String>,
    /// A data class the call touches (repeatable)
    #[arg(long = "data-class", value_name = "CLASS")]
    pub data_classes: Vec<String>,
    /// Context facts as a JSON object (e.g. '{"user_approved": true}')
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
    /// Requested token lifetime, seconds
    #[arg(long, value_name = "SECONDS")]
    pub token_ttl: Option<u64>,
    /// The whole request as a JSON file (the guide's /decide body); `-` reads standard input
    #[arg(long, value_name = "FILE", conflicts_with_all = ["actor", "tool", "action", "intent", "risk", "request_id", "data_classes", "context", "token_ttl"])]
    pub json_file: Option<PathBuf>,
}

/// `lexecon ledger …`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Print entries, one line each (or JSON Lines with --json)
    Show {
        /// Only the last N entries
        #[arg(long, value_name = "N")]
        last: Option<u64>,
        /// Print each entry as JSON, one per line
        #[arg(long)]
        json: bool,
    },
    /// Verify the hash chain; exits 1 naming the first bad entry
    Verify {
        /// Print details (storage, recovery, the failure)
        #[arg(long, short)]
        verbose: bool,
        /// An entry hash recorded earlier (a past verify's head, a
        /// decision's ledger_entry_hash): also fail unless the ledger still
        /// holds it. Entries cut from the end leave a valid chain; only an
        /// anchor kept elsewhere shows them missing
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
        /// Also check that every decision was signed by this node's key
        /// (its decision hash and signature, with the node's public key)
        /// and names the policy the latest policy load before it loaded.
        /// The chain's hashes can be recomputed by whoever rewrites the
        /// ledger; the signatures cannot. About 40 µs an entry per core
        #[arg(long)]
        signatures: bool,
    },
    /// Check the ledger's storage: torn records and checksums
    CheckIntegrity,
    /// Create an empty file ledger for a node whose ledger is missing (a
    /// server, `decide` and `policy load` refuse to start one silently)
    Create,
}

/// `lexecon token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Verify a capability token offline with the node's public key
    Verify {
        /// The token (`lxc2.…`, or the capability_token JSON object); `-` reads standard input
        token: String,
        /// Also require the token to be for this tool
        #[arg(long)]
        tool: Option<String>,
        /// Also require the token to be for this actor
        #[arg(long)]
        actor: Option<String>,
    },
}

/// A command's failure: one line for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

/// Runs a parsed command line; prints `error: …` on failure.
pub fn run(cli: Cli) -> ExitCode {
    let g = &cli.global;
    let result = match cli.command {
        Command::Init { force } => commands::init(g, force),
        Command::Policy { command } => match command {
            PolicyCommand::Validate { file } => commands::policy_validate(g, &file),
            PolicyCommand::Load { file } => commands::policy_load(g, &file),
            PolicyCommand::List { json } => commands::policy_list(g, json),
            PolicyCommand::Show { name } => commands::policy_show(g, &name),
        },
        Command::Server { host, port } => commands::server(g, host, port),
        Command::Decide(args) => commands::decide(g, &args),
        Command::Ledger { command } => match command {
            LedgerCommand::Show { last, json } => commands::ledger_show(g, last, json),
            LedgerCommand::Verify {
                verbose,
                expect_head,
                signatures,
            } => commands::ledger_verify(g, verbose, expect_head.as_deref(), signatures),
            LedgerCommand::CheckIntegrity => commands::ledger_check_integrity(g),
            LedgerCommand::Create => commands::ledger_create(g),
        },
        Command::Token { command } => match command {
            TokenCommand::Verify { token, tool, actor } => {
                commands::token_verify(g, &token, tool.as_deref(), actor.as_deref())
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = e.0.replace('\n', " ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}
