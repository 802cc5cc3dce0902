//! Which label values the collector keeps: the `collect.include` / `collect.exclude` globs of
//! the config on top of each backend's default exclusions (pseudo filesystems, loop devices,
//! partitions).
//!
//! A filter is consulted once, when a core, mount, device or interface is first seen, never on
//! every tick (glob matching allocates). Not the place for deciding what a backend reads.

use crate::config::CollectConfig;
use crate::glob::glob_match;
use crate::metrics::LabelKey;

/// The include/exclude globs of the config, per label key.
#[derive(Clone, Debug, Default)]
pub struct LabelFilter {
    /// Per label key (indexed by [`key_index`]): only values matching one of these are kept.
    include: [Vec<String>; 5],
    /// Per label key: values matching one of these are always dropped.
    exclude: [Vec<String>; 5],
}

fn key_index(key: LabelKey) -> usize {
    match key {
        LabelKey::Core => 0,
        LabelKey::Mount => 1,
        LabelKey::Device => 2,
        LabelKey::Iface => 3,
        LabelKey::Name => 4,
    }
}

impl LabelFilter {
    /// Builds the filter from the `collect` section of the config.
    pub fn new(config: &CollectConfig) -> LabelFilter {
        let mut filter = LabelFilter::default();
        for (key, globs) in &config.include {
            filter.include[key_index(*key)].extend(globs.iter().cloned());
        }
        for (key, globs) in &config.exclude {
            filter.exclude[key_index(*key)].extend(globs.iter().cloned());
        }
        filter
    }

    /// True when a series labelled `key=value` should be collected.
    ///
    /// With include globs for `key`, the value must match one of them (the backend's default
    /// exclusion, `excluded_by_default`, no longer applies to that key); without, it must not
    /// be excluded by default. A value matching an exclude glob is dropped in every case. An
    /// empty include list counts as no include list.
    pub fn allows(&self, key: LabelKey, value: &str, excluded_by_default: bool) -> bool {
        let i = key_index(key);
        let included = if self.include[i].is_empty() {
            !excluded_by_default
        } else {
            self.include[i].iter().any(|g| glob_match(g, value))
        };
        included && !self.exclude[i].iter().any(|g| glob_match(g, value))
    }
}

/// Filesystem types that hold no user data (kernel interfaces, memory-backed or read-only
/// images that are always full); their mounts are excluded by default.
pub(crate) const PSEUDO_FILESYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "cpuset",
    "debugfs",
    "devfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.gvfsd-fuse",
    "fuse.lxcfs",
    "fuse.portal",
    "fuse.snapfuse",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nfsd",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
    "xenfs",
];

/// Network and user-space filesystems: `statvfs` on one whose server stopped answering blocks
/// until it answers, which would stall the single-threaded loop, so they are excluded by
/// default (an operator who trusts a mount includes it with `collect.include`). `fuseblk`
/// (FUSE over a local block device, like ntfs-3g) stays in.
pub(crate) const REMOTE_FILESYSTEMS: &[&str] = &[
    "9p",
    "afs",
    "ceph",
    "cifs",
    "coda",
    "davfs",
    "fuse",
    "glusterfs",
    "gpfs",
    "lustre",
    "ncpfs",
    "nfs",
    "nfs4",
    "ocfs2",
    "smb3",
    "smbfs",
    "sshfs",
];

/// True for a filesystem type whose mounts are excluded by default: pseudo filesystems, and
/// network or user-space ones (`fuse.*`) that could hang the loop.
pub(crate) fn is_pseudo_fs(fstype: &[u8]) -> bool {
    PSEUDO_FILESYSTEMS.iter().chain(REMOTE_FILESYSTEMS).any(|p| p.as_bytes() == fstype)
        || (fstype.starts_with(b"fuse.") && fstype != b"fuseblk")
}

/// True for block devices excluded by default whatever the platform: loop and RAM disks.
pub(crate) fn is_virtual_block_device(name: &[u8]) -> bool {
    name.starts_with(b"loop") || name.starts_with(b"ram")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(include: &[(LabelKey, &str)], exclude: &[(LabelKey, &str)]) -> CollectConfig {
        let mut inc: BTreeMap<LabelKey, Vec<String>> = BTreeMap::new();
        for (k, g) in include {
            inc.entry(*k).or_default().push((*g).to_string());
        }
        let mut exc: BTreeMap<LabelKey, Vec<String>> = BTreeMap::new();
        for (k, g) in exclude {
            exc.entry(*k).or_default().push((*g).to_string());
        }
        CollectConfig { include: inc, exclude: exc, ..CollectConfig::default() }
    }

    #[test]
    fn without_globs_only_default_exclusions_apply() {
        let f = LabelFilter::new(&CollectConfig::default());
        assert!(f.allows(LabelKey::Mount, "/", false));
        assert!(!f.allows(LabelKey::Mount, "/dev/shm", true));
        assert!(f.allows(LabelKey::Iface, "lo", false));
    }

    #[test]
    fn include_replaces_default_exclusions_for_its_key_only() {
        let f = LabelFilter::new(&config(&[(LabelKey::Device, "loop*")], &[]));
        assert!(f.allows(LabelKey::Device, "loop0", true));
        assert!(!f.allows(LabelKey::Device, "sda", false), "not in the include list");
        // Other keys keep their defaults.
        assert!(!f.allows(LabelKey::Mount, "/proc", true));
        assert!(f.allows(LabelKey::Mount, "/", false));
    }

    #[test]
    fn exclude_always_wins() {
        let f = LabelFilter::new(&config(
            &[(LabelKey::Iface, "eth*")],
            &[(LabelKey::Iface, "eth1"), (LabelKey::Mount, "/mnt/*")],
        ));
        assert!(f.allows(LabelKey::Iface, "eth0", false));
        assert!(!f.allows(LabelKey::Iface, "eth1", false));
        assert!(!f.allows(LabelKey::Iface, "lo", false));
        assert!(!f.allows(LabelKey::Mount, "/mnt/a b", false));
        assert!(f.allows(LabelKey::Mount, "/mnt", false));
    }

    #[test]
    fn empty_include_list_is_no_include_list() {
        let mut c = CollectConfig::default();
        c.include.insert(LabelKey::Core, Vec::new());
        let f = LabelFilter::new(&c);
        assert!(f.allows(LabelKey::Core, "0", false));
    }

    #[test]
    fn default_exclusion_tables() {
        assert!(is_pseudo_fs(b"tmpfs"));
        assert!(is_pseudo_fs(b"fuse.lxcfs"));
        assert!(!is_pseudo_fs(b"ext4"));
        assert!(is_pseudo_fs(b"fuse"), "user-space filesystems can hang the loop");
        assert!(is_pseudo_fs(b"fuse.sshfs") && is_pseudo_fs(b"nfs4") && is_pseudo_fs(b"cifs"));
        assert!(!is_pseudo_fs(b"fuseblk"), "FUSE over a local disk stays");
        assert!(is_virtual_block_device(b"loop7"));
        assert!(is_virtual_block_device(b"ram0"));
        assert!(!is_virtual_block_device(b"vda"));
    }
}
