//! The plugin ABI v1 on the host side: the layouts come from the SDK's mirror of
//! `plugins/include/hostwatch_plugin.h` (the source of truth), so host and plugins share one
//! Rust copy; host-only constants and the buffers the host lends live here. Loading and
//! calling are in the parent module.

pub use hostwatch_plugin_sdk::ffi::{
    ABI_VERSION, HwError, HwEvent, HwStr, InitFn, NotifyFn, PluginTable, STATUS_OK,
    STATUS_PERMANENT, STATUS_RETRY, ShutdownFn,
};

/// The entry symbol (`HOSTWATCH_PLUGIN_ENTRY_NAME`), NUL-terminated for `dlsym`.
pub const ENTRY_SYMBOL: &[u8] = b"hostwatch_plugin_v1\0";

/// The capacity of the error buffer the host passes (at least `HOSTWATCH_ERROR_MIN_CAP`).
pub const ERROR_CAP: usize = 1024;

/// The entry symbol's type.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginTable;

/// Bytes the host owns and lends to one call, NUL-terminated as the header promises.
#[derive(Debug)]
pub struct OwnedStr(Vec<u8>);

impl OwnedStr {
    /// Copies `s` and appends the courtesy NUL.
    pub fn new(s: &str) -> OwnedStr {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        OwnedStr(v)
    }

    /// The borrowed view; valid while `self` lives and is not moved out of.
    pub fn as_hw(&self) -> HwStr {
        HwStr { ptr: self.0.as_ptr(), len: self.0.len() - 1 }
    }
}

/// A host-owned error buffer for one call.
#[derive(Debug)]
pub struct ErrorBuf {
    buf: Vec<u8>,
    raw: HwError,
}

impl Default for ErrorBuf {
    fn default() -> ErrorBuf {
        ErrorBuf::new()
    }
}

impl ErrorBuf {
    /// A zeroed buffer of [`ERROR_CAP`] bytes.
    pub fn new() -> ErrorBuf {
        let mut buf = vec![0; ERROR_CAP];
        // The Vec's heap block does not move when the ErrorBuf does, so `raw.buf` stays valid.
        let raw = HwError { buf: buf.as_mut_ptr(), cap: ERROR_CAP, len: 0 };
        ErrorBuf { buf, raw }
    }

    /// The pointer to pass to the plugin.
    pub fn as_mut_ptr(&mut self) -> *mut HwError {
        &mut self.raw
    }

    /// What the plugin wrote (lossy UTF-8, trimmed), bounded by the capacity whatever `len`
    /// claims, and cut at a NUL (a C plugin that set `len` to the capacity after `snprintf`).
    pub fn message(&self) -> String {
        let n = self.raw.len.min(self.buf.len());
        let bytes = self.buf[..n].split(|&b| b == 0).next().unwrap_or_default();
        String::from_utf8_lossy(bytes).trim().to_string()
    }
}

/// Reads a plugin-provided string (the table's name) defensively: NULL or absurd lengths give
/// a placeholder.
///
/// # Safety
/// `s.ptr` must be NULL or point to `s.len` readable bytes.
pub unsafe fn read_str(s: HwStr) -> String {
    if s.ptr.is_null() || s.len == 0 || s.len > 256 {
        return "(unnamed)".to_string();
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_strings_carry_a_nul_not_counted_in_len() {
        let s = OwnedStr::new("abc");
        let h = s.as_hw();
        assert_eq!(h.len, 3);
        // SAFETY: `s` owns 4 bytes at `h.ptr`.
        let bytes = unsafe { std::slice::from_raw_parts(h.ptr, 4) };
        assert_eq!(bytes, b"abc\0");
    }

    #[test]
    fn error_messages_are_bounded_by_the_buffer() {
        let mut e = ErrorBuf::new();
        e.buf[..5].copy_from_slice(b"oops ");
        e.raw.len = usize::MAX;
        assert_eq!(e.message().len(), 4);
        e.raw.len = 0;
        assert_eq!(e.message(), "");
    }
}
