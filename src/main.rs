//! The `laddkoll` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    laddkoll::cli::run(laddkoll::cli::Cli::parse())
}
