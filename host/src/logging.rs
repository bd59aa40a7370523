//! Logs through `tracing`, as `logging:` in the configuration says: level
//! (or per-target directives), text or JSON, to stderr, stdout or a file.
//!
//! Nothing Lexecon logs contains a private key, an API key or a capability
//! token: decisions are logged by id, tokens by `token_id` at most.

use std::fs::OpenOptions;
use std::sync::Arc;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, LogOutput, LoggingConfig};

/// Parses `logging.level`: a level (`info`) or directives
/// (`warn,lexecon::server=debug`).
///
/// # Errors
/// A message naming what does not parse.
pub fn parse_level(level: &str) -> Result<Targets, String> {
    let level = level.trim();
    if level.is_empty() {
        return Err("must not be empty".into());
    }
    if let Ok(l) = level.parse::<LevelFilter>() {
        return Ok(Targets::new().with_default(l));
    }
    let bad = || {
        format!(
            "`{level}` is not a level (`trace`, `debug`, `info`, `warn`, `error`, `off`) or a list of directives such as `warn,lexecon::server=debug`"
        )
    };
    for directive in level.split(',') {
        let lvl = directive
            .split_once('=')
            .map_or(
                directive,
                |(target, lvl)| if target.trim().is_empty() { "" } else { lvl },
            );
        lvl.trim().parse::<LevelFilter>().map_err(|_| bad())?;
    }
    level.parse::<Targets>().map_err(|_| bad())
}

/// Installs the global subscriber. Call once, before anything logs.
///
/// # Errors
/// When the level does not parse or the log file cannot be opened.
pub fn init(config: &LoggingConfig) -> Result<(), String> {
    let filter = parse_level(&config.level)?;
    let registry = tracing_subscriber::registry().with(filter);
    let ansi = matches!(config.output, LogOutput::Stderr)
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    macro_rules! install {
        ($writer:expr) => {
            match config.format {
                LogFormat::Json => registry
                    .with(
                        tracing_subscriber::fmt::layer()
                            .json()
                            .flatten_event(true)
                            .with_current_span(false)
                            .with_writer($writer),
                    )
                    .try_init(),
                LogFormat::Text => registry
                    .with(
                        tracing_subscriber::fmt::layer()
                            .with_ansi(ansi)
                            .with_writer($writer),
                    )
                    .try_init(),
            }
        };
    }
    let result = match config.output {
        LogOutput::Stderr => install!(std::io::stderr),
        LogOutput::Stdout => install!(std::io::stdout),
        LogOutput::File => {
            let path = config
                .file_path
                .as_ref()
                .ok_or("`logging.file_path` is required with `logging.output: file`")?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create log directory `{}`: {e}", dir.display()))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file `{}`: {e}", path.display()))?;
            install!(Arc::new(file))
        }
    };
    // A subscriber already installed (tests) is fine.
    let _ = result;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn levels_and_directives() {
        assert!(parse_level("info").is_ok());
        assert!(parse_level("warn,lexecon::server=debug").is_ok());
        assert!(parse_level("loud").is_err());
        assert!(parse_level("").is_err());
    }
}
