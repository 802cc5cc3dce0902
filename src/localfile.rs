//! Reading the agent's own local files (state, silences, config) safely: only regular files
//! (a symlink to one is fine), opened non-blocking so a FIFO cannot hang the caller, and never
//! more than a size cap, so a link to `/dev/zero` cannot take the memory. Errors name the path
//! and the cause. Not for `/proc` reads (see `collect::linux::procfile`) or for writing.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Size cap of the config file.
pub const CONFIG_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Size cap of `state_dir/silences.json`.
pub const SILENCES_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Size cap of `state_dir/state.json`.
pub const STATE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// `16 MiB`, `4 MiB`, or bytes when not a whole MiB.
fn size_text(bytes: u64) -> String {
    if bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

/// What a non-regular file is, for messages.
fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// An error of the same kind as `e` whose message names `path`.
pub fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Reads a whole regular file of at most `max_bytes` bytes. A missing file keeps the kind
/// `NotFound` (callers treat it as empty); every error message names the path.
pub fn read_regular(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| with_path(path, e))?;
    let meta = file.metadata().map_err(|e| with_path(path, e))?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is {}, not a regular file", path.display(), kind_of(meta.file_type())),
        ));
    }
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {}", path.display(), size_text(max_bytes)),
        )
    };
    if meta.len() > max_bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between fstat and read: never read more than the cap plus one.
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(|e| with_path(path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_string(path: &Path, max_bytes: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, max_bytes)?).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{} is not UTF-8 text", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tempdir(name: &str) -> std::path::PathBuf {
        crate::testutil::tempdir("lf", name)
    }

    #[test]
    fn regular_files_and_links_to_them_are_read() {
        let d = tempdir("ok");
        fs::write(d.join("a"), b"hello").unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("link")).unwrap();
        assert_eq!(read_regular(&d.join("a"), 5).unwrap(), b"hello");
        assert_eq!(read_regular_string(&d.join("link"), 100).unwrap(), "hello");
        let e = read_regular(&d.join("missing"), 5).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("missing"), "{e}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn fifos_devices_directories_and_large_files_are_refused_by_name() {
        let d = tempdir("bad");
        let fifo = d.join("state.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_regular(&fifo, 10).unwrap_err().to_string();
        assert_eq!(e, format!("{} is a FIFO, not a regular file", fifo.display()));
        let e = read_regular(Path::new("/dev/zero"), 10).unwrap_err().to_string();
        assert_eq!(e, "/dev/zero is a character device, not a regular file");
        let e = read_regular(&d, 10).unwrap_err().to_string();
        assert!(e.ends_with("is a directory, not a regular file"), "{e}");
        fs::write(d.join("big"), vec![b'x'; 11]).unwrap();
        let e = read_regular(&d.join("big"), 10).unwrap_err().to_string();
        assert!(e.ends_with("big is larger than 10 bytes"), "{e}");
        assert_eq!(read_regular(&d.join("big"), 11).unwrap().len(), 11);
        assert!(size_text(STATE_MAX_BYTES) == "16 MiB");
        let _ = fs::remove_dir_all(&d);
    }
}
