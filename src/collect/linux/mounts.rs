//! Mounted filesystems (`/proc/self/mountinfo`) and their space (`statvfs`): `disk.used_percent`
//! and `disk.free` per mount point, computed as df and psutil do.
//!
//! The mount table is re-read only when it changed: the file stays open and is polled with a
//! zero timeout each tick (the kernel flags POLLPRI|POLLERR after a mount or unmount). Each
//! tick then costs one `statvfs` per collected mount. Pseudo filesystems are left out by
//! default, and so are the bind mounts systemd's sandbox adds inside a service, which are the
//! same disk again (reporting them would alert several more times when `/` fills): a mount is
//! such a duplicate only when it is not the mount at `/`, its type is not btrfs or bcachefs
//! (whose subvolumes are subtrees too, and real), and its source directory, as reached
//! through a collected mount of the whole filesystem (same device, mountinfo root `/`), is
//! its own mount point (a directory bound onto itself: `StateDirectory=`, `ReadWritePaths=`,
//! `ProtectHome=read-only`) or lies under `/tmp/systemd-private-` or
//! `/var/tmp/systemd-private-` (`PrivateTmp=`). Whole mounts are decided first (filter and
//! pseudo types), then duplicates against the whole mounts that are collected, so a whole
//! mount left out (`collect.exclude`, pseudo, remote) hides nothing. Any other subtree
//! (a bind of another directory, a btrfs subvolume, OSTree's `/` and `/var` under
//! `/sysroot`) is reported. `include` brings either kind back. A mount point listed twice
//! keeps its last entry (the one on top).
//! Not the place for I/O rates (`disk`).
//!
//! Under a root (`collect.root`, the host's `/` mounted into a container at `/host`), only
//! the mounts at or below the root count, each labelled by its path below the root (the name
//! the host gives it) and measured at its path here; the container's own mounts are not the
//! host's and are left out. A duplicate's source is then reached through the whole mount's
//! name below the root as well.

use super::parse::{label_from_bytes, lines, unescape_octal};
use super::procfile::ProcFile;
use crate::collect::filter::is_pseudo_fs;
use crate::collect::{LabelFilter, Sample};
use crate::metrics::{LabelKey, Metric};
use crate::series::{Registry, SeriesId};
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One line of `/proc/self/mountinfo`, its fields still escaped (`\040` for a space).
#[derive(Debug, PartialEq)]
pub(super) struct MountLine<'a> {
    /// `major:minor` of the filesystem.
    pub dev: &'a [u8],
    /// The directory of the filesystem mounted here: `/` for a whole filesystem, a subtree for
    /// a bind mount (or a btrfs subvolume).
    pub root: &'a [u8],
    pub mount_point: &'a [u8],
    pub fstype: &'a [u8],
}

/// Calls `f` for every line of `/proc/self/mountinfo`.
pub(super) fn parse_mountinfo(text: &[u8], mut f: impl FnMut(MountLine<'_>)) {
    for line in lines(text) {
        // id parent major:minor root mount-point options [optional...] - fstype source super
        let mut it = line.split(|&b| b == b' ');
        let (Some(dev), Some(root), Some(mount_point)) = (it.nth(2), it.next(), it.next()) else {
            continue;
        };
        if !it.by_ref().any(|field| field == b"-") {
            continue;
        }
        if let Some(fstype) = it.next() {
            f(MountLine { dev, root, mount_point, fstype });
        }
    }
}

/// Space on one filesystem, from `statvfs`.
#[derive(Debug, PartialEq)]
pub(super) struct Space {
    /// Percent of the space non-root users can reach that is used (as df).
    pub used_percent: f64,
    /// Bytes available to non-root users.
    pub free: f64,
    /// Inodes: (percent used of what non-root users can reach, inodes available); `None` for
    /// a filesystem that reports no inodes (btrfs, some FUSE), which is unsupported, not 0.
    pub inodes: Option<(f64, f64)>,
}

/// Computes df's figures; `None` for a filesystem without blocks.
pub(super) fn space(blocks: u64, bfree: u64, bavail: u64, frsize: u64) -> Option<Space> {
    let used = blocks.saturating_sub(bfree).saturating_mul(frsize) as f64;
    let avail = bavail.saturating_mul(frsize) as f64;
    if blocks == 0 || used + avail <= 0.0 {
        return None;
    }
    Some(Space { used_percent: 100.0 * used / (used + avail), free: avail, inodes: None })
}

/// Inode figures as `df -i` computes them; `None` when the filesystem reports no inodes.
pub(super) fn inodes(files: u64, ffree: u64, favail: u64) -> Option<(f64, f64)> {
    let used = files.saturating_sub(ffree) as f64;
    let avail = favail as f64;
    if files == 0 || used + avail <= 0.0 {
        return None;
    }
    Some((100.0 * used / (used + avail), avail))
}

#[allow(clippy::unnecessary_cast)] // the field types are u32 or u64 depending on the target
fn statvfs(path: &CString) -> std::io::Result<Option<Space>> {
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `st` is a valid place for the kernel to fill.
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    let space =
        space(st.f_blocks as u64, st.f_bfree as u64, st.f_bavail as u64, st.f_frsize as u64);
    Ok(space.map(|s| Space {
        inodes: inodes(st.f_files as u64, st.f_ffree as u64, st.f_favail as u64),
        ..s
    }))
}

#[derive(Debug, PartialEq)]
enum Status {
    Pending,
    Excluded,
    /// Collected; series are interned at the first successful statvfs (the inode series at
    /// the first that reports inodes).
    Allowed(Option<[SeriesId; 2]>, Option<[SeriesId; 2]>),
}

#[derive(Debug)]
struct Mount {
    path: Vec<u8>,
    cpath: CString,
    fstype: Box<[u8]>,
    /// `major:minor` of the filesystem.
    dev: Box<[u8]>,
    /// The directory of the filesystem mounted here (mountinfo's root, unescaped): `/` for a
    /// whole filesystem.
    root: Box<[u8]>,
    /// A bind mount systemd's sandbox adds of a filesystem that is collected whole (see the
    /// module's contract): excluded by default.
    duplicate: bool,
    status: Status,
    seen: bool,
    /// A statvfs failure was logged (cleared when it works again).
    logged: bool,
}

impl Mount {
    /// Mountinfo's root is not `/`: a bind mount of a directory, a btrfs subvolume, an OSTree
    /// deployment.
    fn is_subtree(&self) -> bool {
        *self.root != *b"/"
    }

    /// Could be a bind mount systemd's sandbox added: a subtree, not the mount at `/`, and not
    /// of a filesystem whose subvolumes are subtrees (btrfs, bcachefs).
    fn sandbox_bind_candidate(&self) -> bool {
        self.is_subtree() && self.path != b"/" && !matches!(&*self.fstype, b"btrfs" | b"bcachefs")
    }

    fn retire(&mut self, registry: &mut Registry) {
        if let Status::Allowed(space, inodes) = self.status {
            space.iter().chain(inodes.iter()).flatten().for_each(|id| registry.retire(*id));
        }
    }
}

/// The mount table and the state of each mount.
#[derive(Debug)]
pub(super) struct Mounts {
    file: ProcFile,
    loaded: bool,
    entries: Vec<Mount>,
    /// `collect.root` as bytes, without trailing `/`; empty: this process's `/`.
    root: Vec<u8>,
}

impl Mounts {
    /// Mounts of this process's mount namespace.
    pub(super) fn new() -> Mounts {
        Mounts::with_path("/proc/self/mountinfo")
    }

    /// Mounts as listed by `path` (a mountinfo file).
    pub(super) fn with_path(path: &'static str) -> Mounts {
        Mounts { file: ProcFile::new(path), loaded: false, entries: Vec::new(), root: Vec::new() }
    }

    /// Mounts of this process's mount namespace at or below `root`, named as seen from it.
    pub(super) fn under(root: &Path) -> Mounts {
        let mut root = root.as_os_str().as_bytes();
        while let Some(shorter) = root.strip_suffix(b"/") {
            root = shorter;
        }
        Mounts { root: root.to_vec(), ..Mounts::new() }
    }

    /// True when the mount table must be (re-)read: never read, or the kernel flagged a change.
    fn changed(&self) -> bool {
        let Some(fd) = self.file.raw_fd() else { return true };
        if !self.loaded {
            return true;
        }
        let mut pfd = libc::pollfd { fd, events: libc::POLLPRI, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        rc != 0 && (rc < 0 || pfd.revents & (libc::POLLPRI | libc::POLLERR) != 0)
    }

    /// Re-reads the mount table if it changed, then pushes each mount's space into `out`.
    /// Returns false when the mount table cannot be read (the metrics are unsupported).
    pub(super) fn update(
        &mut self,
        registry: &mut Registry,
        filter: &LabelFilter,
        out: &mut Sample,
    ) -> bool {
        if self.changed() {
            match self.file.read_logged() {
                Some(text) => {
                    reload(&mut self.entries, text, &self.root, registry, filter);
                    self.loaded = true;
                }
                None => {
                    self.loaded = false;
                    return false;
                }
            }
        }
        for m in &mut self.entries {
            let Status::Allowed(ids, inode_ids) = &mut m.status else { continue };
            match statvfs(&m.cpath) {
                Ok(Some(s)) => {
                    m.logged = false;
                    let [used, free] = *ids.get_or_insert_with(|| {
                        let label = label_from_bytes(&m.path);
                        [
                            registry.intern(Metric::DiskUsedPercent, Some(&label)),
                            registry.intern(Metric::DiskFree, Some(&label)),
                        ]
                    });
                    out.points.push((used, s.used_percent));
                    out.points.push((free, s.free));
                    if let Some((percent, available)) = s.inodes {
                        let [iused, ifree] = *inode_ids.get_or_insert_with(|| {
                            let label = label_from_bytes(&m.path);
                            [
                                registry.intern(Metric::DiskInodesUsedPercent, Some(&label)),
                                registry.intern(Metric::DiskInodesFree, Some(&label)),
                            ]
                        });
                        out.points.push((iused, percent));
                        out.points.push((ifree, available));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    if !m.logged {
                        m.logged = true;
                        log::debug!(
                            "statvfs {}: {e}; mount skipped",
                            String::from_utf8_lossy(&m.path)
                        );
                    }
                }
            }
        }
        true
    }
}

/// The name a mount point `here` has below `root` (empty: no root), `None` when it is not at
/// or below it: `/host` is `/`, `/host/boot` is `/boot`, `/hostile` is not below `/host`.
fn below_root(here: &[u8], root: &[u8]) -> Option<Vec<u8>> {
    if root.is_empty() {
        return Some(here.to_vec());
    }
    match here.strip_prefix(root)? {
        b"" => Some(b"/".to_vec()),
        rest if rest.starts_with(b"/") => Some(rest.to_vec()),
        _ => None,
    }
}

fn reload(
    entries: &mut Vec<Mount>,
    text: &[u8],
    root: &[u8],
    registry: &mut Registry,
    filter: &LabelFilter,
) {
    for m in entries.iter_mut() {
        m.seen = false;
    }
    parse_mountinfo(text, |line| {
        let here = unescape_octal(line.mount_point);
        let Some(path) = below_root(&here, root) else { return };
        let source = unescape_octal(line.root);
        match entries.iter_mut().find(|m| m.path == path) {
            Some(m) => {
                if &*m.fstype != line.fstype || &*m.dev != line.dev || *m.root != *source {
                    // Mounted over with another filesystem: decide again.
                    m.retire(registry);
                    m.fstype = line.fstype.into();
                    m.dev = line.dev.into();
                    m.root = source.into();
                    m.status = Status::Pending;
                }
                m.seen = true;
            }
            None => {
                let Ok(cpath) = CString::new(here) else { return };
                entries.push(Mount {
                    path,
                    cpath,
                    fstype: line.fstype.into(),
                    dev: line.dev.into(),
                    root: source.into(),
                    duplicate: false,
                    status: Status::Pending,
                    seen: true,
                    logged: false,
                });
            }
        }
    });
    entries.retain_mut(|m| {
        if !m.seen {
            m.retire(registry);
        }
        m.seen
    });
    // Whole mounts first: their status depends on the filter and their type alone.
    for m in entries.iter_mut().filter(|m| m.status == Status::Pending && !m.is_subtree()) {
        decide(m, filter);
    }
    // Then duplicates, against the whole mounts that are collected. Only when the mount table
    // changed: a list per change is fine.
    let whole: Vec<(Box<[u8]>, Vec<u8>)> = entries
        .iter()
        .filter(|m| {
            !m.is_subtree() && !is_pseudo_fs(&m.fstype) && matches!(m.status, Status::Allowed(..))
        })
        .map(|m| (m.dev.clone(), m.path.clone()))
        .collect();
    for m in entries.iter_mut().filter(|m| m.is_subtree()) {
        let duplicate = m.sandbox_bind_candidate()
            && whole.iter().any(|(dev, at)| *dev == m.dev && is_sandbox_bind(at, &m.root, &m.path));
        if duplicate != m.duplicate {
            m.retire(registry);
            m.duplicate = duplicate;
            m.status = Status::Pending;
        }
    }
    for m in entries.iter_mut().filter(|m| m.status == Status::Pending) {
        decide(m, filter);
    }
}

/// True when the directory `source` of a filesystem mounted whole at `whole_at`, mounted at
/// `at`, is what systemd's sandbox binds: the directory onto itself (`StateDirectory=`,
/// `ReadWritePaths=`, `ProtectHome=read-only`), or a `PrivateTmp=` directory.
fn is_sandbox_bind(whole_at: &[u8], source: &[u8], at: &[u8]) -> bool {
    let mut seen_at = whole_at.strip_suffix(b"/").unwrap_or(whole_at).to_vec();
    seen_at.extend_from_slice(source);
    seen_at == at
        || seen_at.starts_with(b"/tmp/systemd-private-")
        || seen_at.starts_with(b"/var/tmp/systemd-private-")
}

/// Decides a mount by the filter, with pseudo types and duplicates excluded by default.
fn decide(m: &mut Mount, filter: &LabelFilter) {
    let label = label_from_bytes(&m.path);
    let by_default = is_pseudo_fs(&m.fstype) || m.duplicate;
    m.status = if filter.allows(LabelKey::Mount, &label, by_default) {
        Status::Allowed(None, None)
    } else {
        Status::Excluded
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CollectConfig;
    use std::collections::BTreeMap;

    const MOUNTINFO: &[u8] = br"22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
31 27 0:28 / /mnt/a\040b rw,relatime shared:5 master:2 - ext4 /dev/vdb1 rw
32 27 0:29 / /run/x\134y\011z rw - xfs /dev/vdc rw
33 27 0:30 / /mnt/a\040b rw - tmpfs tmpfs rw
broken line without separator
";

    #[test]
    fn mountinfo_fields_and_escapes() {
        let mut got: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        parse_mountinfo(MOUNTINFO, |l| {
            got.push((unescape_octal(l.mount_point), l.fstype.to_vec()))
        });
        assert_eq!(got.len(), 5);
        assert_eq!(got[0], (b"/proc".to_vec(), b"proc".to_vec()));
        assert_eq!(got[2], (b"/mnt/a b".to_vec(), b"ext4".to_vec()), "optional fields skipped");
        assert_eq!(got[3].0, b"/run/x\\y\tz".to_vec());
    }

    #[test]
    fn duplicate_mount_point_keeps_the_last_and_pseudo_are_excluded() {
        let (mut reg, filter) = (Registry::new(), LabelFilter::new(&CollectConfig::default()));
        let mut entries = Vec::new();
        reload(&mut entries, MOUNTINFO, b"", &mut reg, &filter);
        let status = |path: &[u8]| entries.iter().find(|m| m.path == path).map(|m| &m.status);
        assert_eq!(entries.len(), 4);
        assert_eq!(status(b"/"), Some(&Status::Allowed(None, None)));
        assert_eq!(status(b"/proc"), Some(&Status::Excluded));
        assert_eq!(status(b"/mnt/a b"), Some(&Status::Excluded), "the tmpfs on top wins");
    }

    /// What a service under systemd's sandbox sees: `/` whole, its `StateDirectory=`,
    /// `ReadWritePaths=` and `ProtectHome=read-only` directories bound onto themselves, its
    /// `PrivateTmp=` directories bound from `/`, a bind of another directory (no sandbox
    /// does that: reported), and a btrfs with two subvolumes (neither mounted whole).
    const SANDBOXED: &[u8] = br"27 1 254:0 / / ro,relatime - ext4 /dev/vda rw
40 27 254:0 /var/lib/hostwatch /var/lib/hostwatch rw,relatime - ext4 /dev/vda rw
41 27 254:0 /tmp/systemd-private-ab12-hostwatch.service-Xy/tmp /tmp rw - ext4 /dev/vda rw
45 27 254:0 /var/tmp/systemd-private-ab12-hostwatch.service-Zw/tmp /var/tmp rw - ext4 /dev/vda rw
46 27 254:0 /var/log/hooks\040x /var/log/hooks\040x rw - ext4 /dev/vda rw
47 27 254:0 /root /root ro - ext4 /dev/vda rw
48 27 254:0 /srv/site /var/www rw - ext4 /dev/vda rw
42 27 0:40 /@data /data rw - btrfs /dev/vdb rw
43 27 0:40 /@logs /srv/logs rw - btrfs /dev/vdb rw
44 27 254:16 / /home ro - ext4 /dev/vdc rw
";

    /// The labels of the mounts `text` gives that `config` collects.
    fn collected(text: &[u8], root: &[u8], config: &CollectConfig) -> Vec<String> {
        let (mut reg, filter) = (Registry::new(), LabelFilter::new(config));
        let mut entries = Vec::new();
        reload(&mut entries, text, root, &mut reg, &filter);
        entries
            .iter()
            .filter(|m| m.status != Status::Excluded)
            .map(|m| label_from_bytes(&m.path))
            .collect()
    }

    fn globs(key: LabelKey, globs: &[&str]) -> BTreeMap<LabelKey, Vec<String>> {
        [(key, globs.iter().map(|g| g.to_string()).collect())].into_iter().collect()
    }

    #[test]
    fn sandbox_binds_of_a_filesystem_collected_whole_are_excluded_unless_included() {
        let all = collected(SANDBOXED, b"", &CollectConfig::default());
        assert_eq!(all, ["/", "/var/www", "/data", "/srv/logs", "/home"]);

        let config = CollectConfig {
            include: globs(LabelKey::Mount, &["/var/lib/*", "/"]),
            ..CollectConfig::default()
        };
        assert_eq!(
            collected(SANDBOXED, b"", &config),
            ["/", "/var/lib/hostwatch"],
            "include brings it back"
        );
    }

    #[test]
    fn a_sandbox_bind_of_an_excluded_whole_mount_is_reported() {
        // `/` excluded: its binds are the only figures of that disk left.
        let config =
            CollectConfig { exclude: globs(LabelKey::Mount, &["/"]), ..CollectConfig::default() };
        let got = collected(SANDBOXED, b"", &config);
        assert_eq!(
            got,
            [
                "/var/lib/hostwatch",
                "/tmp",
                "/var/tmp",
                "/var/log/hooks x",
                "/root",
                "/var/www",
                "/data",
                "/srv/logs",
                "/home"
            ]
        );
        // A whole mount of a pseudo or remote type is not collected either: its binds stay.
        let text = br"27 1 254:0 / / rw - ext4 /dev/vda rw
30 27 0:50 / /mnt/nfs rw - nfs4 srv:/export rw
31 27 0:50 /mnt/nfs/a /mnt/nfs/a rw - nfs4 srv:/export rw
";
        let config = CollectConfig {
            include: globs(LabelKey::Mount, &["/", "/mnt/nfs/a"]),
            ..CollectConfig::default()
        };
        assert_eq!(collected(text, b"", &config), ["/", "/mnt/nfs/a"]);
    }

    #[test]
    fn subvolumes_and_ostree_deployments_are_reported() {
        // btrbk / Timeshift: the btrfs top level mounted whole next to its subvolumes; a
        // bcachefs subvolume mounted where it sits in the top level.
        let text = br"27 1 0:40 /@ / rw - btrfs /dev/vda2 rw,subvol=/@
28 27 0:40 /@home /home rw - btrfs /dev/vda2 rw,subvol=/@home
29 27 0:40 / /mnt/btr_pool rw - btrfs /dev/vda2 rw,subvolid=5
30 27 0:40 /@snapshots /mnt/btr_pool/@snapshots rw - btrfs /dev/vda2 rw
31 27 0:40 / /run/timeshift/backup rw - btrfs /dev/vda2 rw
32 27 0:41 / /data rw - bcachefs /dev/vdb rw
33 32 0:41 /vm /data/vm rw - bcachefs /dev/vdb rw
";
        assert_eq!(
            collected(text, b"", &CollectConfig::default()),
            [
                "/",
                "/home",
                "/mnt/btr_pool",
                "/mnt/btr_pool/@snapshots",
                "/run/timeshift/backup",
                "/data",
                "/data/vm"
            ]
        );
        // Fedora CoreOS: `/` and `/var` are directories of the filesystem at `/sysroot`.
        let text = br"27 1 252:4 /ostree/deploy/fedora-coreos/deploy/3c1f.0 / rw - xfs /dev/vda4 rw
28 27 252:4 / /sysroot ro - xfs /dev/vda4 rw
29 27 252:4 /ostree/deploy/fedora-coreos/deploy/3c1f.0/usr /usr ro - xfs /dev/vda4 rw
30 27 252:4 /ostree/deploy/fedora-coreos/var /var rw - xfs /dev/vda4 rw
31 27 252:3 / /boot ro - ext4 /dev/vda3 rw
";
        assert_eq!(
            collected(text, b"", &CollectConfig::default()),
            ["/", "/sysroot", "/usr", "/var", "/boot"]
        );
    }

    #[test]
    fn under_a_root_a_sandbox_bind_is_judged_by_the_host_names() {
        // A container with the host's `/` at /host: the host binds /srv/www onto itself
        // (left out), binds another directory (reported); the container's own volume is
        // no host mount.
        let text = br"27 1 0:50 / / rw - overlay overlay rw
28 27 254:0 /var/lib/docker/volumes/hw/_data /var/lib/hostwatch rw - ext4 /dev/vda rw
29 27 254:0 / /host ro - ext4 /dev/vda rw
30 29 254:0 /srv/www /host/srv/www ro - ext4 /dev/vda rw
31 29 254:0 /data/export /host/srv/export ro - ext4 /dev/vda rw
32 29 254:1 / /host/boot ro - ext4 /dev/vdb rw
";
        assert_eq!(
            collected(text, b"/host", &CollectConfig::default()),
            ["/", "/srv/export", "/boot"]
        );
        // Without the root, the container's volume is reported; /host/srv/www, reached through
        // /host, is still its own mount point.
        assert_eq!(
            collected(text, b"", &CollectConfig::default()),
            ["/var/lib/hostwatch", "/host", "/host/srv/export", "/host/boot"]
        );
    }

    #[test]
    fn a_subtree_is_decided_again_when_its_filesystem_is_unmounted_whole() {
        let (mut reg, filter) = (Registry::new(), LabelFilter::new(&CollectConfig::default()));
        let mut entries = Vec::new();
        reload(&mut entries, SANDBOXED, b"", &mut reg, &filter);
        let without_root: Vec<u8> =
            SANDBOXED.split_inclusive(|&b| b == b'\n').skip(1).flatten().copied().collect();
        reload(&mut entries, &without_root, b"", &mut reg, &filter);
        let state = entries.iter().find(|m| m.path == b"/var/lib/hostwatch").unwrap();
        assert_eq!(state.status, Status::Allowed(None, None), "no longer a duplicate");
    }

    #[test]
    fn under_a_root_mounts_are_named_as_the_host_names_them() {
        assert_eq!(below_root(b"/host", b"/host").as_deref(), Some(&b"/"[..]));
        assert_eq!(below_root(b"/host/boot", b"/host").as_deref(), Some(&b"/boot"[..]));
        assert_eq!(below_root(b"/hostile", b"/host"), None, "a sibling, not below");
        assert_eq!(below_root(b"/", b"/host"), None, "the container's own /");
        assert_eq!(below_root(b"/boot", b"").as_deref(), Some(&b"/boot"[..]));
        let (mut reg, filter) = (Registry::new(), LabelFilter::new(&CollectConfig::default()));
        let text = br"27 1 254:0 / / rw - overlay overlay rw
40 27 254:1 / /host ro,relatime - ext4 /dev/vda rw
41 40 254:2 / /host/srv/data\040x ro - xfs /dev/vdb rw
42 40 0:21 / /host/proc rw - proc proc rw
43 27 254:3 / /var/lib/hostwatch rw - ext4 /dev/vdc rw
44 27 254:4 / /hostile rw - ext4 /dev/vdd rw
";
        let mut entries = Vec::new();
        reload(&mut entries, text, b"/host", &mut reg, &filter);
        let seen: Vec<_> = entries
            .iter()
            .map(|m| (m.path.as_slice(), m.cpath.to_bytes(), m.status == Status::Excluded))
            .collect();
        assert_eq!(
            seen,
            [
                (&b"/"[..], &b"/host"[..], false),
                (b"/srv/data x", b"/host/srv/data x", false),
                (b"/proc", b"/host/proc", true),
            ]
        );
    }

    #[test]
    fn a_root_of_slash_is_this_process_own_mount_table() {
        // "/" (however many slashes) is no root: every mount keeps its own name.
        let (mut reg, filter) = (Registry::new(), LabelFilter::new(&CollectConfig::default()));
        let mut mounts = Mounts::under(Path::new("//"));
        assert!(mounts.root.is_empty());
        let mut out = Sample::default();
        assert!(mounts.update(&mut reg, &filter, &mut out));
        assert!(reg.find(Metric::DiskUsedPercent, Some("/")).is_some());
    }

    #[test]
    fn df_formula() {
        // 100 blocks, 30 free of which 20 available to non-root users, 4 KiB each.
        let s = space(100, 30, 20, 4096).expect("has blocks");
        assert!((s.used_percent - 100.0 * 70.0 / 90.0).abs() < 1e-9);
        assert_eq!(s.free, 20.0 * 4096.0);
        assert!(space(0, 0, 0, 4096).is_none());
        // Inodes as df -i: 100 inodes, 10 free of which 5 for non-root users.
        let (percent, avail) = inodes(100, 10, 5).expect("has inodes");
        assert_eq!(avail, 5.0);
        assert!((percent - 100.0 * 90.0 / 95.0).abs() < 1e-9, "{percent}");
        assert!(inodes(0, 0, 0).is_none(), "no inodes reported: unsupported, not 0");
    }

    #[test]
    fn live_mounts_report_space_and_change_is_polled() {
        let (mut reg, filter) = (Registry::new(), LabelFilter::new(&CollectConfig::default()));
        let mut mounts = Mounts::new();
        let mut out = Sample::default();
        assert!(mounts.update(&mut reg, &filter, &mut out));
        let root = reg.find(Metric::DiskUsedPercent, Some("/")).expect("/ is collected");
        assert!(out.points.iter().any(|(id, v)| *id == root && (0.0..=100.0).contains(v)));
        assert!(!mounts.changed(), "no mount happened since the read");
    }
}
