//! Start-up checks of what can never work: run by `check`, `run` and `once` before anything
//! else, and by `run` on SIGHUP before a new config replaces the running one.
//!
//! For each plugin channel the library is checked as loading would check it (trust, the
//! `hostwatch_plugin_v1` entry symbol, the ABI version in its table, the table's functions)
//! without calling `init`; for each exec channel the program is resolved as the hook will
//! be started (an absolute path must be an executable regular file; a bare name is looked up
//! in the `PATH` the hook gets) and its `cwd` must be a directory.
//!
//! Not for what may heal by itself: a plugin `init` that asks to retry, a receiver that is
//! down or a DNS name that does not resolve yet are left to the workers and their backoff.
//! Nothing here sends, connects or calls into a plugin beyond its entry symbol.

use crate::config::{ChannelKind, Config};
use std::fmt;

/// One channel that can never work, for operators: the channel, the file and the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PreflightError {
    /// The channel's name.
    pub(crate) channel: String,
    /// The file or directory concerned (as resolved where it was found, else as written).
    pub(crate) path: String,
    /// Why it can never work.
    pub(crate) cause: String,
}

impl fmt::Display for PreflightError {
    /// `channel pager: /usr/local/bin/page: no such file`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel {}: {}: {}", self.channel, self.path, self.cause)
    }
}

/// Checks every plugin and exec channel of `config`; all failures, in channel-name order.
pub(crate) fn check(config: &Config) -> Result<(), Vec<PreflightError>> {
    let errors: Vec<PreflightError> =
        config.channels.iter().filter_map(|(name, ch)| check_channel(name, &ch.kind)).collect();
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn check_channel(name: &str, kind: &ChannelKind) -> Option<PreflightError> {
    let error =
        |path: String, cause: String| PreflightError { channel: name.to_owned(), path, cause };
    match kind {
        ChannelKind::Exec(x) => {
            crate::notify::exec::locate(x).err().map(|e| error(e.path, e.cause))
        }
        #[cfg(feature = "plugins")]
        ChannelKind::Plugin(p) => crate::notify::plugin::probe(&p.path)
            .err()
            .map(|e| error(p.path.display().to_string(), e.cause)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(channels: &str) -> Config {
        let text = format!("{{\"channels\": {channels}}}");
        crate::config::load_str(&text, "test.json", &|_| None).expect("valid config")
    }

    #[test]
    fn a_missing_exec_program_names_the_channel_path_and_cause() {
        let c = config(r#"{"pager": {"type": "exec", "command": ["/nonexistent/page"]}}"#);
        let errors = check(&c).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].to_string(), "channel pager: /nonexistent/page: no such file");
    }

    #[test]
    fn a_bare_name_is_looked_up_in_the_hooks_path() {
        let ok = config(r#"{"h": {"type": "exec", "command": ["sh"], "env": {"PATH": "/bin"}}}"#);
        assert_eq!(check(&ok), Ok(()));
        let bad = config(
            r#"{"h": {"type": "exec", "command": ["sh"], "env": {"PATH": "/nonexistent"}}}"#,
        );
        let e = &check(&bad).unwrap_err()[0];
        assert_eq!(e.to_string(), "channel h: sh: not found in the hook's PATH");
    }

    #[cfg(feature = "plugins")]
    #[test]
    fn a_missing_plugin_file_is_refused() {
        let c = config(r#"{"jsonl": {"type": "plugin", "path": "/nonexistent/libx.so"}}"#);
        let e = &check(&c).unwrap_err()[0];
        assert_eq!(e.to_string(), "channel jsonl: /nonexistent/libx.so: no such file");
    }
}
