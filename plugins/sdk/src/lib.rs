//! Write hostwatch notifier plugins in safe Rust.
//!
//! Implement [`Notifier`] for a type holding your channel's state and export it with
//! [`export_notifier!`]; build the crate as a `cdylib` and point a `"type": "plugin"` channel
//! at the `.so`. The macro writes the C glue of ABI v1 (`plugins/include/hostwatch_plugin.h`,
//! the source of truth): the `hostwatch_plugin_v1` entry symbol, the table with the ABI
//! version and your [`Notifier::NAME`], and `init`/`notify`/`shutdown` functions that catch
//! panics at the boundary, so a panic is reported to hostwatch as a permanent failure with a
//! "plugin panicked" message and never unwinds into it.
//!
//! ```
//! use hostwatch_plugin_sdk::{Error, Event, Notifier, export_notifier};
//!
//! struct Stdout;
//!
//! impl Notifier for Stdout {
//!     const NAME: &'static str = "stdout";
//!
//!     fn init(_config_json: &str) -> Result<Self, Error> {
//!         Ok(Stdout)
//!     }
//!
//!     fn notify(&mut self, event: &Event<'_>) -> Result<String, Error> {
//!         println!("{}", event.summary);
//!         Ok(String::new())
//!     }
//! }
//!
//! export_notifier!(Stdout);
//! ```
//!
//! Threading: hostwatch makes one call at a time on a notifier, possibly from different
//! threads over its life (hence `Send`); two channels using the same library get two
//! notifiers that may run concurrently, so shared `static` state needs a lock.
//!
//! Build plugins with `panic = "unwind"` (the default): with `panic = "abort"` a panic aborts
//! hostwatch before the SDK can catch it.

pub mod ffi;
#[doc(hidden)]
pub mod glue;

pub use ffi::ABI_VERSION;

/// Why `init` or `notify` failed; the message is shown to operators and logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Failed for now (receiver down, timeout): hostwatch keeps the event and retries later.
    Retry(String),
    /// Retrying the same event cannot help (bad config, rejected by the receiver).
    Permanent(String),
}

impl Error {
    /// A failure worth retrying.
    pub fn retry(message: impl Into<String>) -> Error {
        Error::Retry(message.into())
    }

    /// A failure retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Error {
        Error::Permanent(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Error::Retry(m) | Error::Permanent(m) => m,
        }
    }

    /// The ABI status code.
    pub fn status(&self) -> i32 {
        match self {
            Error::Retry(_) => ffi::STATUS_RETRY,
            Error::Permanent(_) => ffi::STATUS_PERMANENT,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

/// One notification, borrowed for the duration of [`Notifier::notify`]: copy what you keep.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// The whole event as JSON: the object documented for the webhook channel and exec hooks
    /// (`host`, `rule`, `series`, `metric`, `labels`, `severity`, `event`, `value`,
    /// `value_text`, `threshold`, `since`, `seq`, `key`, `episode_key`, `description`, `test`).
    pub json: &'a str,
    /// `CRITICAL firing disk_root on web-01: disk.used_percent{mount=/} = 96.1% (> 95)`.
    pub summary: &'a str,
    /// The host.
    pub host: &'a str,
    /// The rule's name.
    pub rule: &'a str,
    /// The series key (`disk.used_percent{mount=/}`).
    pub series: &'a str,
    /// `warning` or `critical`.
    pub severity: &'a str,
    /// `firing`, `reminder`, `escalated`, `resolved`, `nodata`, `flapping`, `flap_end` (the
    /// JSON's `state` says `ok` or `firing`), or `report` (a periodic report: `json` holds it
    /// under `report`; treat unknown values like `report`).
    pub event: &'a str,
    /// Stable per notification: the same event retried has the same key (de-duplicate on it).
    pub key: &'a str,
}

/// A notifier: one per configured channel, created at hostwatch's start-up and dropped (the
/// ABI's `shutdown`) when it stops.
pub trait Notifier: Send + Sized + 'static {
    /// The plugin's name in hostwatch's logs and messages.
    const NAME: &'static str;

    /// Reads the channel's `config` object (as JSON text; `{}` when absent). An error refuses
    /// the channel at start-up with its message.
    fn init(config_json: &str) -> Result<Self, Error>;

    /// Delivers one event, blocking (enforce your own timeouts: hostwatch cannot interrupt
    /// the call). `Ok` carries a short answer for `hostwatch test-notify` (may be empty).
    fn notify(&mut self, event: &Event<'_>) -> Result<String, Error>;
}

/// Exports a [`Notifier`] as a hostwatch plugin: defines the `hostwatch_plugin_v1` entry
/// symbol returning the ABI table for the type. Use once per `cdylib`.
#[macro_export]
macro_rules! export_notifier {
    ($notifier:ty) => {
        // The SDK turns panics into a PERMANENT status; with `panic = "abort"` a panic would
        // take the whole hostwatch process down instead.
        #[cfg(panic = "abort")]
        compile_error!(
            "hostwatch plugins must be built with panic = \"unwind\" (the default): with \
             panic = \"abort\" a panic in the plugin would abort hostwatch"
        );

        /// The hostwatch plugin ABI v1 entry symbol (see `hostwatch_plugin.h`).
        #[unsafe(no_mangle)]
        pub extern "C" fn hostwatch_plugin_v1() -> *const $crate::ffi::PluginTable {
            static TABLE: $crate::glue::Table = $crate::glue::Table::new::<$notifier>();
            TABLE.as_ptr()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::{HwError, HwEvent, HwStr, STATUS_OK, STATUS_PERMANENT, STATUS_RETRY};
    use std::ffi::c_void;

    /// Config `"ok"`, `"retry"`, `"panic"`; notify panics when the rule is `boom`.
    struct Probe {
        seen: Vec<String>,
    }

    impl Notifier for Probe {
        const NAME: &'static str = "probe";

        fn init(config: &str) -> Result<Self, Error> {
            match config {
                "\"retry\"" => Err(Error::retry("not yet")),
                "\"panic\"" => panic!("bad config"),
                _ => Ok(Probe { seen: Vec::new() }),
            }
        }

        fn notify(&mut self, event: &Event<'_>) -> Result<String, Error> {
            if event.rule == "boom" {
                panic!("rule {} exploded", event.rule);
            }
            self.seen.push(event.key.to_string());
            Ok(format!("seen {}", self.seen.len()))
        }
    }

    export_notifier!(Probe);

    fn s(text: &str) -> HwStr {
        HwStr { ptr: text.as_ptr(), len: text.len() }
    }

    struct Buf(Vec<u8>, HwError);

    impl Buf {
        fn new(cap: usize) -> Buf {
            let mut v = vec![0u8; cap];
            let e = HwError { buf: v.as_mut_ptr(), cap, len: 0 };
            Buf(v, e)
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0[..self.1.len]).into_owned()
        }
    }

    fn table() -> &'static ffi::PluginTable {
        // SAFETY: the entry returns a pointer to a static table.
        unsafe { &*hostwatch_plugin_v1() }
    }

    fn init(config: &str) -> (i32, *mut c_void, String) {
        let mut ctx = std::ptr::null_mut();
        let mut err = Buf::new(64);
        // SAFETY: valid config string, context slot and error buffer for the call.
        let status = unsafe { table().init.unwrap()(s(config), &mut ctx, &mut err.1) };
        (status, ctx, err.text())
    }

    fn notify(ctx: *mut c_void, rule: &str) -> (i32, String) {
        let e = HwEvent {
            json: s("{}"),
            summary: s("summary"),
            host: s("h"),
            rule: s(rule),
            series: s("cpu.usage"),
            severity: s("warning"),
            event: s("firing"),
            key: s("k1"),
        };
        let mut err = Buf::new(64);
        // SAFETY: `ctx` came from a successful init; event and buffer are valid for the call.
        let status = unsafe { table().notify.unwrap()(ctx, &e, &mut err.1) };
        (status, err.text())
    }

    #[test]
    fn the_table_carries_the_version_and_name() {
        let t = table();
        assert_eq!(t.abi_version, 1);
        // SAFETY: the name points to a static str.
        let name = unsafe { std::slice::from_raw_parts(t.name.ptr, t.name.len) };
        assert_eq!(name, b"probe");
    }

    #[test]
    fn init_notify_and_shutdown_round_trip() {
        let (status, ctx, _) = init("{}");
        assert_eq!(status, STATUS_OK);
        assert_eq!(notify(ctx, "cpu"), (STATUS_OK, "seen 1".to_string()));
        assert_eq!(notify(ctx, "cpu"), (STATUS_OK, "seen 2".to_string()));
        // SAFETY: shutting down the context init made, once.
        unsafe { table().shutdown.unwrap()(ctx) };
    }

    #[test]
    fn errors_and_panics_become_statuses_with_messages() {
        assert_eq!(init("\"retry\"").0, STATUS_RETRY);
        assert_eq!(init("\"retry\"").2, "not yet");
        let (status, ctx, message) = init("\"panic\"");
        assert_eq!((status, ctx.is_null()), (STATUS_PERMANENT, true));
        assert_eq!(message, "plugin panicked in init: bad config");
        let (_, ctx, _) = init("{}");
        let (status, message) = notify(ctx, "boom");
        assert_eq!(status, STATUS_PERMANENT);
        assert_eq!(message, "plugin panicked in notify: rule boom exploded");
        // The notifier survives a caught panic.
        assert_eq!(notify(ctx, "cpu").0, STATUS_OK);
        // SAFETY: shutting down the context init made, once.
        unsafe { table().shutdown.unwrap()(ctx) };
    }

    #[test]
    fn messages_are_cut_to_the_buffer_at_a_character_boundary() {
        let mut err = Buf::new(4);
        // SAFETY: the buffer has 4 writable bytes.
        unsafe { glue::write_error(&mut err.1, "aéé") };
        assert_eq!(err.text(), "aé");
    }
}
