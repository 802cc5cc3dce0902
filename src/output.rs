//! Writing the commands' output to standard output and error without panicking: `println!`
//! and `eprintln!` panic when the stream is a closed pipe (`hostwatch check | head -1`), and
//! a command must then end quietly with its normal exit code, as Unix tools do. Use
//! [`outln!`](crate::outln) and [`errln!`](crate::errln) instead. Not for log lines (see
//! `logging`, which never panics on a closed stderr either).

use std::fmt;
use std::io::{self, Write};

/// Writes one line to standard output; a closed pipe or any other write error is ignored
/// (returns false so a loop can stop).
pub fn out_line(args: fmt::Arguments<'_>) -> bool {
    let mut out = io::stdout().lock();
    writeln!(out, "{args}").and_then(|()| out.flush()).is_ok()
}

/// Writes one line to standard error; errors (a closed pipe) are ignored.
pub fn err_line(args: fmt::Arguments<'_>) -> bool {
    let mut err = io::stderr().lock();
    writeln!(err, "{args}").and_then(|()| err.flush()).is_ok()
}

/// `println!` that never panics: see [`out_line`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::out_line(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: see [`err_line`].
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::err_line(format_args!($($arg)*))
    };
}
