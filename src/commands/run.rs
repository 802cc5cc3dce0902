//! `hostwatch run`: loads the config (refusing one that can never work), builds a
//! [`Daemon`] and runs its poll loop until SIGTERM or SIGINT. Nothing else lives here.

use crate::cli::RunArgs;
use crate::daemon::Daemon;
use crate::signals::Signals;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(args: &RunArgs, global_config: Option<&Path>) -> ExitCode {
    let config_path: Option<PathBuf> =
        args.config.clone().or_else(|| global_config.map(Path::to_path_buf));
    let mut config = match super::load_runnable_config(config_path.as_deref(), None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // A dry run beside the real daemon must not fight it for the config's port: it serves
    // an API only when `--listen` asks for one.
    if args.dry_run && args.listen.is_none() && config.api.take().is_some() {
        log::info!("dry run: the config's api is not served (use --listen ADDR for one)");
    }
    if let Some(text) = &args.listen {
        match crate::config::parse_listen(text) {
            Ok(listen) => {
                let token = config.api.take().and_then(|a| a.token);
                config.api = Some(crate::config::ApiConfig { listen, token });
            }
            Err(e) => return super::usage_error(&format!("--listen: {e}")),
        }
    }
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => return super::runtime_error(&format!("cannot install signal handlers: {e}")),
    };
    match Daemon::start(config, config_path, args.dry_run) {
        Ok(daemon) => match daemon.run(&signals, crate::sdnotify::SdNotify::from_env()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => super::runtime_error(&e),
        },
        Err(e) => super::runtime_error(&e),
    }
}
