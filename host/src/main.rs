//! The `lexecon` binary: parses the command line and dispatches to
//! [`lexecon::cli`].

fn main() -> std::process::ExitCode {
    lexecon::cli::run(lexecon::cli::Cli::parse_args())
}
