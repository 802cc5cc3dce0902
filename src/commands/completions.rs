//! `hostwatch completions SHELL`: prints the completion script `manual` renders for bash, zsh
//! or fish. Not for writing it anywhere (packages and `scripts/install.sh` do).

use crate::cli::CompletionsArgs;
use std::process::ExitCode;

/// Prints the script, or a usage error for a shell it has none for.
pub fn run(args: &CompletionsArgs) -> ExitCode {
    match crate::manual::completions(&args.shell) {
        Ok(script) => {
            crate::outln!("{}", script.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => super::usage_error(&e),
    }
}
