//! One `/proc` file read into a buffer kept across ticks.
//!
//! The file stays open and each read is a `pread` loop from offset 0 into the same buffer:
//! procfs regenerates the text on every read at offset 0, and keeping the descriptor saves the
//! path walk of `open` and the `statx` that `read_to_end` adds (measured: see the module
//! `linux`). A failed read drops the descriptor so the next tick reopens the path. Not the
//! place for parsing.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;

/// Initial buffer size; grows (doubling) the first time a file is larger.
const INITIAL_CAPACITY: usize = 4096;

/// A procfs file and the buffer it is read into.
#[derive(Debug)]
pub(super) struct ProcFile {
    path: &'static str,
    file: Option<File>,
    buf: Vec<u8>,
    /// True while the last failure has been logged and not yet recovered from.
    warned: bool,
}

impl ProcFile {
    /// A reader for `path`; nothing is opened before the first read.
    pub(super) fn new(path: &'static str) -> ProcFile {
        ProcFile { path, file: None, buf: Vec::new(), warned: false }
    }

    /// Reads the file, logging the first failure (at warn) and the recovery (at info).
    /// `None` means the metrics of this file are unsupported for this tick.
    pub(super) fn read_logged(&mut self) -> Option<&[u8]> {
        match self.fill() {
            Ok(len) => {
                if self.warned {
                    self.warned = false;
                    log::info!("{} is readable again", self.path);
                }
                Some(&self.buf[..len])
            }
            Err(e) => {
                if !self.warned {
                    self.warned = true;
                    log::warn!(
                        "cannot read {}: {e}; its metrics are reported unsupported",
                        self.path
                    );
                }
                None
            }
        }
    }

    /// The raw descriptor, once opened (for `poll`).
    pub(super) fn raw_fd(&self) -> Option<RawFd> {
        self.file.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Opens the file if it is not open yet.
    pub(super) fn open(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(File::open(self.path)?);
        }
        Ok(())
    }

    /// Reads from offset 0 to end of file into the buffer; returns the length read.
    fn fill(&mut self) -> io::Result<usize> {
        self.open()?;
        let Some(file) = self.file.as_ref() else {
            return Err(io::Error::other("not open"));
        };
        if self.buf.is_empty() {
            self.buf.resize(INITIAL_CAPACITY, 0);
        }
        let mut len = 0;
        loop {
            if len == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match file.read_at(&mut self.buf[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.file = None;
                    return Err(e);
                }
            }
        }
        Ok(len)
    }
}
