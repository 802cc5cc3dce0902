//! Whether a plugin file may be loaded: loading a shared library runs its code inside
//! hostwatch, so only a file that nobody but root or hostwatch's own user can change is
//! accepted.
//!
//! The rules, checked on the file and on every directory above it (both along the path as
//! written and along the path with symlinks resolved, since a symlink can be swapped by
//! whoever can write the directory holding it):
//! - the file is a regular file;
//! - the file and every directory are owned by root or by the user hostwatch runs as;
//! - the file is not writable by group or others;
//! - a directory is not writable by group or others, unless it has the sticky bit (like
//!   `/tmp`, mode 1777): there nobody but an entry's owner or root can rename or delete the
//!   entry, and the entry itself is checked by these same rules;
//! - a symlink along the path as written is owned by root or by hostwatch's user.
//!
//! This module only decides; it does not load anything.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Write permission for group and others.
const GROUP_OTHER_WRITE: u32 = 0o022;
/// The sticky bit (`S_ISVTX`).
const STICKY: u32 = 0o1000;

/// Checks `path` and returns the resolved path to load (symlinks resolved, so what is loaded
/// is exactly what was checked).
pub fn check(path: &Path) -> Result<PathBuf, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    check_as(path, euid)
}

/// [`check`] for a given effective user id.
fn check_as(path: &Path, euid: u32) -> Result<PathBuf, String> {
    let written = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot resolve the relative path: current directory: {e}"))?;
        cwd.join(path)
    };
    // A symlink along the path as written decides what gets loaded: whoever owns it could
    // point it elsewhere, so it must belong to root or hostwatch's user like everything else.
    for component in written.ancestors() {
        if component.as_os_str().is_empty() {
            continue;
        }
        if let Ok(meta) = std::fs::symlink_metadata(component)
            && meta.file_type().is_symlink()
        {
            check_owner(component, "symlink", meta.uid(), euid)?;
        }
    }
    let real = std::fs::canonicalize(&written).map_err(|e| format!("cannot open: {e}"))?;
    let meta =
        std::fs::metadata(&real).map_err(|e| format!("cannot read {}: {e}", real.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", real.display()));
    }
    check_owner(&real, "plugin file", meta.uid(), euid)?;
    if meta.mode() & GROUP_OTHER_WRITE != 0 {
        return Err(format!(
            "refusing to load: plugin file {} is writable by group or others (mode {:04o}); \
             a plugin must be writable by its owner only (chmod go-w)",
            real.display(),
            meta.mode() & 0o7777
        ));
    }
    let mut seen: Vec<&Path> = Vec::new();
    for dir in real.ancestors().skip(1).chain(written.ancestors().skip(1)) {
        if dir.as_os_str().is_empty() || seen.contains(&dir) {
            continue;
        }
        seen.push(dir);
        let meta =
            std::fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        check_owner(dir, "directory", meta.uid(), euid)?;
        let mode = meta.mode();
        if mode & GROUP_OTHER_WRITE != 0 && mode & STICKY == 0 {
            return Err(format!(
                "refusing to load: directory {} is writable by group or others (mode {:04o}) \
                 without the sticky bit, so someone else could replace the plugin; keep plugins \
                 in directories only root or hostwatch's user can write",
                dir.display(),
                mode & 0o7777
            ));
        }
    }
    Ok(real)
}

fn check_owner(path: &Path, what: &str, uid: u32, euid: u32) -> Result<(), String> {
    if uid == 0 || uid == euid {
        return Ok(());
    }
    let who = if euid == 0 { "root".to_string() } else { format!("root or uid {euid}") };
    Err(format!(
        "refusing to load: {what} {} is owned by uid {uid}; it must be owned by {who} \
         (the user hostwatch runs as)",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hostwatch-trust-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    fn file(d: &Path, mode: u32) -> PathBuf {
        let f = d.join("libx.so");
        std::fs::write(&f, b"not really a library").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    fn me() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    #[test]
    fn a_private_file_under_a_sticky_temp_dir_is_accepted() {
        let d = dir("ok");
        let f = file(&d, 0o644);
        assert_eq!(check_as(&f, me()).unwrap(), std::fs::canonicalize(&f).unwrap());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn group_or_world_writable_files_and_dirs_are_refused() {
        let d = dir("writable");
        let f = file(&d, 0o664);
        let e = check_as(&f, me()).unwrap_err();
        assert!(e.contains("plugin file") && e.contains("writable by group or others"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_as(&f, me()).unwrap_err();
        assert!(e.contains("directory") && e.contains("without the sticky bit"), "{e}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(check_as(&f, me()).is_ok());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn files_owned_by_someone_else_are_refused() {
        let d = dir("owner");
        let f = file(&d, 0o644);
        if me() == 0 {
            // As root, hand the file to another user.
            std::os::unix::fs::chown(&f, Some(4242), None).unwrap();
            let e = check_as(&f, 0).unwrap_err();
            assert!(e.contains("plugin file") && e.contains("is owned by uid 4242"), "{e}");
        } else {
            // As a user, our own files are someone else's to a different euid.
            let e = check_as(&f, me() + 1).unwrap_err();
            assert!(e.contains("is owned by uid"), "{e}");
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn missing_files_and_directories_are_named() {
        let e = check_as(Path::new("/nonexistent/libx.so"), me()).unwrap_err();
        assert!(e.contains("cannot open"), "{e}");
        let d = dir("isdir");
        let e = check_as(&d, me()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_symlink_owned_by_someone_else_is_refused() {
        let d = dir("symlink");
        let target = file(&d, 0o644);
        let link = d.join("libalias.so");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(check_as(&link, 0).is_ok(), "a root-owned link is fine");
        let c = std::ffi::CString::new(link.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: lchown on a path we created; no memory is shared.
        if unsafe { libc::lchown(c.as_ptr(), 4242, 4242) } != 0 {
            return; // not root: ownership of the link cannot be changed here
        }
        let err = check_as(&link, 0).unwrap_err();
        assert!(err.contains("symlink") && err.contains("owned by uid 4242"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
