//! A tmpfs mounted for one test (needs root), unmounted and removed when dropped, also when
//! the test fails. Tests that cannot mount (not root) are told so and decide what to skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A tmpfs at `path`, or a plain directory there when mounting failed.
pub struct Tmpfs {
    /// The mount point.
    pub path: PathBuf,
    /// False when `mount` failed (not root): `path` is a plain directory.
    pub mounted: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`1m`, `4m`) at `path`, created as needed; a mount left
    /// there by an earlier run of the test is taken off first.
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        Tmpfs::mount_with(path, &format!("size={size}"))
    }

    /// Mounts a tmpfs with mount `options` (`size=1m,nr_inodes=64`) at `path`, as
    /// [`Tmpfs::mount`] does.
    pub fn mount_with(path: &Path, options: &str) -> Tmpfs {
        let _ = Command::new("umount").arg(path).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(path);
        std::fs::create_dir_all(path).expect("create the mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Tmpfs { path: path.to_path_buf(), mounted }
    }

    /// A mount point under the system temp directory named after the test and the process.
    pub fn mount_temp(name: &str, size: &str) -> Tmpfs {
        let path =
            std::env::temp_dir().join(format!("hostwatch-tmpfs-{name}-{}", std::process::id()));
        Tmpfs::mount(&path, size)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let ok = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&self.path).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
