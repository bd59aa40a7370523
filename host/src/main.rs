//! The `lexecon` binary: parses the command line and dispatches to
//! [`lexecon::cli`].

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    lexecon::cli::run(lexecon::cli::Cli::parse())
}
