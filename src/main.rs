//! hostwatch: parses the command line and dispatches to a command; nothing else.

use hostwatch::{cli, commands, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if cli.version {
        hostwatch::outln!("{}", commands::version_text());
        return ExitCode::SUCCESS;
    }
    let format = match cli.log_format.parse::<logging::LogFormat>() {
        Ok(f) => f,
        Err(e) => return commands::usage_error(&e),
    };
    let level = match logging::parse_level(&cli.log_level) {
        Ok(l) => l,
        Err(e) => return commands::usage_error(&e),
    };
    logging::init(level, format);
    let global_config = cli.config.as_deref();
    match cli.command {
        Some(cli::Command::Sample(args)) => commands::sample::run(&args, global_config),
        Some(cli::Command::Check(args)) => commands::check::run(&args, global_config),
        Some(cli::Command::Run(args)) => commands::run::run(&args, global_config),
        Some(cli::Command::Once(args)) => commands::once::run(&args, global_config),
        Some(cli::Command::Replay(args)) => commands::replay::run(&args, global_config),
        Some(cli::Command::Silence(args)) => commands::silence::run(&args, global_config),
        Some(cli::Command::TestNotify(args)) => commands::test_notify::run(&args, global_config),
        Some(cli::Command::TestRules(args)) => commands::test_rules::run(&args, global_config),
        Some(cli::Command::Status(args)) => commands::status::run(&args, global_config),
        Some(cli::Command::History(args)) => commands::history::run(&args, global_config),
        Some(cli::Command::Report(args)) => commands::report::run(&args, global_config),
        Some(cli::Command::Completions(args)) => commands::completions::run(&args),
        None => commands::usage_error("no command given; try `hostwatch --help`"),
    }
}

/// `argh::from_env`, with help and errors written by `outln!`/`errln!` so `--help | head -1`
/// ends quietly instead of panicking on the closed pipe.
fn parse_args() -> Result<cli::Cli, ExitCode> {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let name = args.first().map(|a| a.rsplit('/').next().unwrap_or(a)).unwrap_or("hostwatch");
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    <cli::Cli as argh::FromArgs>::from_args(&[name], &rest).map_err(|exit| match exit.status {
        Ok(()) => {
            hostwatch::outln!("{}", exit.output);
            ExitCode::SUCCESS
        }
        Err(()) => {
            hostwatch::errln!("{}\nRun {name} --help for more information.", exit.output);
            // A monitoring plugin's caller reads exit 1 as WARNING: for the commands with
            // Nagios codes a command line that cannot be parsed is UNKNOWN.
            // For `test-rules`, 1 means a test failed: a command line it cannot parse is
            // invalid input (2), like a test file it cannot read.
            match subcommand(&rest) {
                Some("once" | "status") => ExitCode::from(3),
                Some("test-rules") => ExitCode::from(commands::EXIT_INVALID),
                _ => ExitCode::FAILURE,
            }
        }
    })
}

/// The subcommand named on a command line: the first argument that is neither a flag nor
/// the value of a global option that takes one.
fn subcommand<'a>(args: &[&'a str]) -> Option<&'a str> {
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match *a {
            "-c" | "--config" | "--log-level" | "--log-format" => {
                rest.next();
            }
            a if a.starts_with('-') => {}
            a => return Some(a),
        }
    }
    None
}
