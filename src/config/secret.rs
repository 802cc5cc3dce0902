//! A secret setting (a password, a token, a webhook URL that is its own credential, a header
//! value): kept as written, shown as `<redacted>`.
//!
//! `Debug` and `Display` never print the value, so a channel config can derive `Debug` and
//! end up in a log line, a panic message or an error without leaking anything. The value is
//! reached only through [`Secret::expose`], at the one place a request is built. There is
//! deliberately no `Serialize`: `hostwatch check` renders secrets itself (`effective`), and
//! anything else has no business writing them out.

use super::REDACTED;
use std::fmt;

/// A secret string; see the module documentation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for building a request; never for a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact_and_expose_returns_the_value() {
        let s = Secret::from("hunter2");
        assert_eq!(format!("{s:?} {s} {s:#?}"), "<redacted> <redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }
}
