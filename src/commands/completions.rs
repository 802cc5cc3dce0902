//! `hostwatch completions SHELL`: prints the completion script `manual` renders for bash, zsh
//! or fish (with the `completions` feature). Not for writing it anywhere (packages and
//! `scripts/install.sh` do).

use crate::cli::CompletionsArgs;
use std::process::ExitCode;

/// Prints the script, or a usage error for a shell it has none for.
#[cfg(feature = "completions")]
pub fn run(args: &CompletionsArgs) -> ExitCode {
    match crate::manual::completions(&args.shell) {
        Ok(script) => {
            crate::outln!("{}", script.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => super::usage_error(&e),
    }
}

/// A build without the `completions` feature (the static build, for its size) has no command
/// table to render: the scripts it would print are in `packaging/completions`.
#[cfg(not(feature = "completions"))]
pub fn run(_args: &CompletionsArgs) -> ExitCode {
    super::usage_error(
        "this build has no completions (cargo feature `completions`, left out of the static \
         build for its size); the scripts are in packaging/completions, and scripts/install.sh \
         installs them",
    )
}
