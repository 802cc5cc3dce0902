//! The plugin ABI v1 as Rust types: a field-for-field mirror of
//! `plugins/include/hostwatch_plugin.h`, which is the source of truth.
//!
//! Plugin authors do not need these: [`crate::export_notifier!`] writes the glue. They are
//! public for the macro's expansion and for anyone who wants to write the glue by hand.

use std::ffi::c_void;

/// The ABI version this SDK implements (`HOSTWATCH_PLUGIN_ABI_VERSION`).
pub const ABI_VERSION: u32 = 1;

/// `HOSTWATCH_STATUS_OK`.
pub const STATUS_OK: i32 = 0;
/// `HOSTWATCH_STATUS_RETRY`.
pub const STATUS_RETRY: i32 = 1;
/// `HOSTWATCH_STATUS_PERMANENT`.
pub const STATUS_PERMANENT: i32 = 2;

/// `hostwatch_str`: a borrowed UTF-8 string, pointer and length.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HwStr {
    /// First byte.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// `hostwatch_error`: the host-owned message buffer.
#[repr(C)]
#[derive(Debug)]
pub struct HwError {
    /// First byte of the buffer.
    pub buf: *mut u8,
    /// Its capacity.
    pub cap: usize,
    /// Bytes written by the plugin.
    pub len: usize,
}

/// `hostwatch_event`: one notification, borrowed for the duration of `notify`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HwEvent {
    /// The whole event as JSON.
    pub json: HwStr,
    /// One line for people.
    pub summary: HwStr,
    /// The host.
    pub host: HwStr,
    /// The rule.
    pub rule: HwStr,
    /// The series key.
    pub series: HwStr,
    /// `warning` or `critical`.
    pub severity: HwStr,
    /// `firing`, `reminder`, `escalated`, `resolved`, `nodata`, `flapping`, `flap_end` or
    /// `report`.
    pub event: HwStr,
    /// The notification's stable key.
    pub key: HwStr,
}

/// `init`.
pub type InitFn = unsafe extern "C" fn(HwStr, *mut *mut c_void, *mut HwError) -> i32;
/// `notify`.
pub type NotifyFn = unsafe extern "C" fn(*mut c_void, *const HwEvent, *mut HwError) -> i32;
/// `shutdown`.
pub type ShutdownFn = unsafe extern "C" fn(*mut c_void);

/// `hostwatch_plugin`: the table the entry symbol returns.
#[repr(C)]
#[derive(Debug)]
pub struct PluginTable {
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// The plugin's name (static storage).
    pub name: HwStr,
    /// `init`.
    pub init: Option<InitFn>,
    /// `notify`.
    pub notify: Option<NotifyFn>,
    /// `shutdown`.
    pub shutdown: Option<ShutdownFn>,
}
