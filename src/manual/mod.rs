//! The command table every document about the command line is rendered from: argh's
//! `ArgsInfo` of [`crate::cli::Cli`] (the same doc comments `--help` prints) walked into
//! commands, flags, positionals and exit codes, plus the fixed set of values a flag's text
//! names ("output format: text, json or nagios"). `roff` renders the man page; `bash`, `zsh`
//! and `fish` the completion scripts. Not for parsing the command line (argh does, in `cli`),
//! and no text of its own about a command: what a command says lives in `cli`.

pub(crate) mod bash;
pub(crate) mod fish;
pub mod roff;
pub(crate) mod zsh;

use argh::{ArgsInfo, CommandInfoWithArgs, FlagInfoKind, Optionality};

/// One command of the table: the top level (`path` empty) or a subcommand.
#[derive(Debug)]
pub struct Command {
    /// The words after `hostwatch` that name it: `[]`, `["sample"]`, `["silence", "add"]`.
    pub path: Vec<&'static str>,
    /// Its description, as `--help` prints it.
    pub description: &'static str,
    /// Its flags and options, `--help` first.
    pub flags: Vec<Flag>,
    /// Its positional arguments.
    pub positionals: Vec<Positional>,
    /// Its subcommands.
    pub commands: Vec<Command>,
    /// Its documented exit codes.
    pub exit_codes: Vec<(i32, &'static str)>,
}

/// A flag (switch) or an option (takes a value).
#[derive(Debug)]
pub struct Flag {
    /// `--format`.
    pub long: &'static str,
    /// `-c`.
    pub short: Option<char>,
    /// The value's name for an option (`format`); `None` for a switch.
    pub value: Option<&'static str>,
    /// The option may be given more than once.
    pub repeating: bool,
    /// The option must be given.
    pub required: bool,
    /// Its help text.
    pub description: &'static str,
    /// The fixed set of values its text names, if it names one.
    pub choices: Vec<&'static str>,
}

/// A positional argument.
#[derive(Debug)]
pub struct Positional {
    /// Its name in the usage line (`file`).
    pub name: &'static str,
    /// Its help text.
    pub description: &'static str,
    /// Must be given.
    pub required: bool,
    /// Takes every remaining argument.
    pub repeating: bool,
    /// The fixed set of values its text names, if it names one.
    pub choices: Vec<&'static str>,
}

impl Command {
    /// `hostwatch silence add`.
    pub fn full_name(&self) -> String {
        std::iter::once("hostwatch").chain(self.path.iter().copied()).collect::<Vec<_>>().join(" ")
    }

    /// This command and every command below it, depth first.
    pub fn walk(&self) -> Vec<&Command> {
        let mut out = vec![self];
        for c in &self.commands {
            out.extend(c.walk());
        }
        out
    }

    /// The flags that take a value (their next word is not a command or a flag).
    pub(crate) fn options(&self) -> impl Iterator<Item = &Flag> {
        self.flags.iter().filter(|f| f.value.is_some())
    }

    /// The usage line's arguments, as argh writes them: `[--format <format>] <file>`.
    pub fn usage(&self) -> String {
        let mut parts = Vec::new();
        for f in self.flags.iter().filter(|f| f.long != "--help") {
            let mut text = f.short.map(|s| format!("-{s}")).unwrap_or_else(|| f.long.to_owned());
            if let Some(v) = f.value {
                text.push_str(&format!(" <{v}>"));
            }
            parts.push(match (f.required, f.repeating) {
                (true, _) => text,
                (false, true) => format!("[{text}...]"),
                (false, false) => format!("[{text}]"),
            });
        }
        for p in &self.positionals {
            parts.push(match (p.required, p.repeating) {
                (true, _) => format!("<{}>", p.name),
                (false, true) => format!("[{}...]", p.name),
                (false, false) => format!("[{}]", p.name),
            });
        }
        if !self.commands.is_empty() {
            parts.push("<command>".to_owned());
        }
        parts.join(" ")
    }
}

/// The whole command line of hostwatch, from the same text `--help` prints.
pub fn table() -> Command {
    command(Vec::new(), crate::cli::Cli::get_args_info())
}

fn command(path: Vec<&'static str>, info: CommandInfoWithArgs) -> Command {
    let flags = info
        .flags
        .iter()
        .filter(|f| !f.hidden)
        .map(|f| Flag {
            long: f.long,
            short: f.short,
            value: match f.kind {
                FlagInfoKind::Option { arg_name } => Some(arg_name),
                FlagInfoKind::Switch => None,
            },
            repeating: f.optionality == Optionality::Repeating,
            required: f.optionality == Optionality::Required,
            description: f.description,
            choices: choices(f.description),
        })
        .collect();
    let positionals = info
        .positionals
        .iter()
        .filter(|p| !p.hidden)
        .map(|p| Positional {
            name: p.name,
            description: p.description,
            required: p.optionality == Optionality::Required,
            repeating: matches!(p.optionality, Optionality::Repeating | Optionality::Greedy),
            choices: choices(p.description),
        })
        .collect();
    let commands = info
        .commands
        .into_iter()
        .map(|sub| {
            let mut p = path.clone();
            p.push(sub.name);
            command(p, sub.command)
        })
        .collect();
    Command {
        path,
        description: info.description,
        flags,
        positionals,
        commands,
        exit_codes: info.error_codes.iter().map(|e| (e.code, e.description)).collect(),
    }
}

/// The values a help text names as a closed set: `"output format: text, json or nagios
/// (default: text)"` gives `text`, `json`, `nagios`. The list follows the first `": "`, runs
/// to the end or to `" ("`, and is two or more lower-case words joined by `", "` and a last
/// `" or "`; any other text names no set.
pub fn choices(description: &'static str) -> Vec<&'static str> {
    let Some((_, rest)) = description.split_once(": ") else { return Vec::new() };
    let list = rest.split_once(" (").map_or(rest, |(list, _)| list);
    let Some((head, last)) = list.rsplit_once(" or ") else { return Vec::new() };
    let words: Vec<&str> = head.split(", ").chain(std::iter::once(last)).collect();
    let is_word = |w: &str| {
        !w.is_empty()
            && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if words.iter().all(|w| is_word(w)) { words } else { Vec::new() }
}

/// The completion script for `shell` (`bash`, `zsh` or `fish`).
pub fn completions(shell: &str) -> Result<String, String> {
    let table = table();
    match shell {
        "bash" => Ok(bash::script(&table)),
        "zsh" => Ok(zsh::script(&table)),
        "fish" => Ok(fish::script(&table)),
        other => {
            Err(format!("completions: unknown shell \"{other}\" (expected bash, zsh or fish)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_list_of_words_is_a_set_of_choices() {
        assert_eq!(
            choices("output format: text, json or nagios (default: text)"),
            ["text", "json", "nagios"]
        );
        assert_eq!(choices("the shell: bash, zsh or fish"), ["bash", "zsh", "fish"]);
        assert_eq!(choices("log format: text or json (default: text)"), ["text", "json"]);
    }

    #[test]
    fn other_text_names_no_choices() {
        for text in [
            "config file (default: /etc/hostwatch/config.json if present, else the embedded default)",
            "the daemon's API, such as http://127.0.0.1:9184 (default: from api.listen)",
            "a recurring window: [DAYS ]HH:MM-HH:MM, e.g. \"sun 02:00-04:00\"",
            "how long, e.g. 2h (with --every: how long it recurs; default: no end)",
            "print JSON instead of a table",
        ] {
            assert_eq!(choices(text), Vec::<&str>::new(), "{text}");
        }
    }

    /// Every option whose value is one of a fixed set says so in words `choices` reads, so
    /// the completions offer the values: a reworded help text that hides them fails here.
    #[test]
    fn every_fixed_value_option_names_its_choices() {
        let fixed = ["--format", "--log-level", "--log-format", "--backend", "--severity"];
        let table = table();
        let mut seen = 0;
        for c in table.walk() {
            for f in c.flags.iter().filter(|f| fixed.contains(&f.long)) {
                assert!(
                    f.choices.len() >= 2,
                    "{} {}: no choices in {:?}",
                    c.full_name(),
                    f.long,
                    f.description
                );
                seen += 1;
            }
        }
        assert!(seen >= 9, "only {seen} fixed-value options found");
        let shell =
            &table.commands.iter().find(|c| c.path == ["completions"]).unwrap().positionals[0];
        assert_eq!(shell.choices, ["bash", "zsh", "fish"]);
    }

    /// The values offered for the global flags are the values the parsers accept.
    #[test]
    fn global_choices_are_accepted_by_their_parsers() {
        let table = table();
        let flag = |long| table.flags.iter().find(|f| f.long == long).unwrap();
        for level in &flag("--log-level").choices {
            assert!(crate::logging::parse_level(level).is_ok(), "{level}");
        }
        for format in &flag("--log-format").choices {
            assert!(format.parse::<crate::logging::LogFormat>().is_ok(), "{format}");
        }
    }

    #[test]
    fn the_table_has_every_subcommand_and_the_nested_ones() {
        let names: Vec<String> = table().walk().iter().map(|c| c.path.join(" ")).collect();
        for n in ["", "sample", "once", "silence", "silence add", "silence remove", "completions"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
    }
}
