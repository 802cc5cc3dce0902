//! The C side of a plugin, generic over its [`Notifier`]: what [`crate::export_notifier!`]
//! points the ABI table at. Every function catches panics, so a panic never unwinds into
//! hostwatch: it becomes `HOSTWATCH_STATUS_PERMANENT` with a "plugin panicked" message.
//!
//! Hidden from the docs: plugin authors use the macro, not these.

use crate::ffi::{HwError, HwEvent, HwStr, PluginTable, STATUS_OK, STATUS_PERMANENT};
use crate::{Event, Notifier};
use std::any::Any;
use std::borrow::Cow;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The ABI table in a `static`.
pub struct Table(PluginTable);

// SAFETY: the table is immutable after construction; its only pointer is the plugin's name,
// which points into a `&'static str`, and its functions are plain code pointers. Sharing it
// between threads is sharing read-only static data.
unsafe impl Sync for Table {}

impl Table {
    /// The table for `T`, with [`crate::ffi::ABI_VERSION`].
    pub const fn new<T: Notifier>() -> Table {
        Table(PluginTable {
            abi_version: crate::ffi::ABI_VERSION,
            name: HwStr { ptr: T::NAME.as_ptr(), len: T::NAME.len() },
            init: Some(init::<T>),
            notify: Some(notify::<T>),
            shutdown: Some(shutdown::<T>),
        })
    }

    /// What the entry symbol returns.
    pub const fn as_ptr(&'static self) -> *const PluginTable {
        &self.0
    }
}

/// Borrows a host string, replacing invalid UTF-8 (the host sends UTF-8) and treating NULL as
/// empty.
///
/// # Safety
/// `s.ptr` must be NULL or point to `s.len` bytes that stay valid for `'a`.
unsafe fn host_str<'a>(s: HwStr) -> Cow<'a, str> {
    if s.ptr.is_null() || s.len == 0 {
        return Cow::Borrowed("");
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes for `'a`.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    String::from_utf8_lossy(bytes)
}

/// Writes `message` into the host's buffer, cut to its capacity at a character boundary.
///
/// # Safety
/// `error` must be NULL or point to a valid `hostwatch_error` whose `buf` has `cap` writable
/// bytes.
pub(crate) unsafe fn write_error(error: *mut HwError, message: &str) {
    // SAFETY: the caller guarantees `error` is NULL or valid.
    let Some(error) = (unsafe { error.as_mut() }) else { return };
    if error.buf.is_null() {
        return;
    }
    let mut n = message.len().min(error.cap);
    while !message.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: `buf` has `cap` writable bytes and `n <= cap`; the source is a live &str that
    // cannot overlap a host-owned buffer.
    unsafe { std::ptr::copy_nonoverlapping(message.as_ptr(), error.buf, n) };
    error.len = n;
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".to_string()
    }
}

/// Reports a caught panic and disposes of its payload (whose own drop could panic too).
///
/// # Safety
/// As [`write_error`].
unsafe fn report_panic(error: *mut HwError, during: &str, payload: Box<dyn Any + Send>) -> i32 {
    let message = format!("plugin panicked in {during}: {}", panic_message(&*payload));
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    // SAFETY: forwarded from the caller.
    unsafe { write_error(error, &message) };
    STATUS_PERMANENT
}

/// `init` for `T`.
///
/// # Safety
/// Called by the host per the ABI: `config` valid for the call, `context` and `error` valid
/// or NULL.
pub unsafe extern "C" fn init<T: Notifier>(
    config: HwStr,
    context: *mut *mut c_void,
    error: *mut HwError,
) -> i32 {
    if context.is_null() {
        // SAFETY: `error` is valid or NULL per the ABI.
        unsafe { write_error(error, "the host passed no context pointer") };
        return STATUS_PERMANENT;
    }
    let result = catch_unwind(|| {
        // SAFETY: the host keeps the config string valid for this call.
        let config = unsafe { host_str(config) };
        T::init(&config)
    });
    match result {
        Ok(Ok(notifier)) => {
            // SAFETY: `context` is non-NULL and points to the host's `void *` slot.
            unsafe { *context = Box::into_raw(Box::new(notifier)).cast() };
            STATUS_OK
        }
        Ok(Err(e)) => {
            // SAFETY: `error` is valid or NULL per the ABI.
            unsafe { write_error(error, e.message()) };
            e.status()
        }
        // SAFETY: `error` is valid or NULL per the ABI.
        Err(payload) => unsafe { report_panic(error, "init", payload) },
    }
}

/// `notify` for `T`.
///
/// # Safety
/// Called by the host per the ABI: `context` from a successful [`init`] of the same `T` and
/// not shut down, no other call on it running, `event` and `error` valid for the call.
pub unsafe extern "C" fn notify<T: Notifier>(
    context: *mut c_void,
    event: *const HwEvent,
    error: *mut HwError,
) -> i32 {
    if context.is_null() || event.is_null() {
        // SAFETY: `error` is valid or NULL per the ABI.
        unsafe { write_error(error, "the host passed a NULL context or event") };
        return STATUS_PERMANENT;
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `context` is the `Box<T>` made by `init::<T>`, and the ABI's threading
        // contract guarantees no other call uses it meanwhile, so this is the only reference.
        let notifier = unsafe { &mut *context.cast::<T>() };
        // SAFETY: the host keeps the event and its strings valid for this call.
        let ev = unsafe { &*event };
        let fields =
            [ev.json, ev.summary, ev.host, ev.rule, ev.series, ev.severity, ev.event, ev.key].map(
                |s| {
                    // SAFETY: the host keeps every string of the event valid for this call.
                    unsafe { host_str(s) }
                },
            );
        let [json, summary, host, rule, series, severity, kind, key] = &fields;
        let event = Event { json, summary, host, rule, series, severity, event: kind, key };
        notifier.notify(&event)
    }));
    match result {
        Ok(Ok(answer)) => {
            if !answer.is_empty() {
                // SAFETY: `error` is valid or NULL per the ABI.
                unsafe { write_error(error, &answer) };
            }
            STATUS_OK
        }
        Ok(Err(e)) => {
            // SAFETY: `error` is valid or NULL per the ABI.
            unsafe { write_error(error, e.message()) };
            e.status()
        }
        // SAFETY: `error` is valid or NULL per the ABI.
        Err(payload) => unsafe { report_panic(error, "notify", payload) },
    }
}

/// `shutdown` for `T`: drops the notifier. A panic in its `Drop` is caught and printed to
/// stderr (there is no error buffer to report it in).
///
/// # Safety
/// Called by the host per the ABI: `context` from a successful [`init`] of the same `T`,
/// exactly once, with no other call on it running.
pub unsafe extern "C" fn shutdown<T: Notifier>(context: *mut c_void) {
    if context.is_null() {
        return;
    }
    let result = catch_unwind(|| {
        // SAFETY: `context` is the `Box<T>` made by `init::<T>`, handed back exactly once.
        drop(unsafe { Box::from_raw(context.cast::<T>()) });
    });
    if let Err(payload) = result {
        eprintln!("plugin {}: panicked in shutdown: {}", T::NAME, panic_message(&*payload));
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    }
}
