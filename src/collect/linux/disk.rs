//! `/proc/diskstats`: per block device, operations completed and sectors (always 512 bytes in
//! this file, whatever the hardware sector size) read and written.
//!
//! Loop and RAM disks and partitions (names without a `/sys/block/<name>` directory, checked
//! once when the device is discovered) are left out by default, so a disk's traffic is not
//! counted twice. Not the place for filesystem space (`mounts`).

use super::parse::{fields, lines, parse_u64};
use crate::collect::filter::is_virtual_block_device;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The counters kept per device, in this order: reads completed, sectors read, writes
/// completed, sectors written.
pub(super) type DiskCounters = [u64; 4];

/// Bytes per `/proc/diskstats` sector.
pub(super) const SECTOR_BYTES: f64 = 512.0;

/// Calls `f(name, counters)` for every device of `/proc/diskstats`.
pub(super) fn parse_diskstats(text: &[u8], mut f: impl FnMut(&[u8], DiskCounters)) {
    for line in lines(text) {
        // major minor name reads merged sectors ms writes merged sectors ...
        let mut it = fields(line);
        let (Some(_major), Some(_minor), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let mut v = [0u64; 7];
        let mut ok = true;
        for slot in v.iter_mut() {
            match it.next().and_then(parse_u64) {
                Some(x) => *slot = x,
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            f(name, [v[0], v[2], v[4], v[6]]);
        }
    }
}

/// True for devices left out unless the config includes them: loop and RAM disks, and
/// partitions (a name without a `/sys/block` directory). Touches sysfs: call once per device.
pub(super) fn excluded_by_default(name: &[u8]) -> bool {
    is_virtual_block_device(name) || !is_whole_disk(name)
}

fn is_whole_disk(name: &[u8]) -> bool {
    // sysfs spells the '/' of names like "cciss/c0d0" as '!'.
    let sysfs_name: Vec<u8> = name.iter().map(|&b| if b == b'/' { b'!' } else { b }).collect();
    let mut path = PathBuf::from("/sys/block");
    path.push(OsStr::from_bytes(&sysfs_name));
    path.is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diskstats_fields() {
        let text = b"   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 28543 6363 2449162 14514 1693 6721 439144 1150 0 7000 15904 3206 49 124776 233 179 7
 254       1 vda1 10 0 80 1 2 0 16 0 0 1 1
   8       0 old 1 2 3 4
";
        let mut got: Vec<(Vec<u8>, DiskCounters)> = Vec::new();
        parse_diskstats(text, |n, c| got.push((n.to_vec(), c)));
        assert_eq!(got.len(), 3, "a line with too few fields is skipped");
        assert_eq!(got[1], (b"vda".to_vec(), [28543, 2449162, 1693, 439144]));
        assert_eq!(got[2], (b"vda1".to_vec(), [10, 80, 2, 16]));
    }

    #[test]
    fn default_exclusions() {
        assert!(excluded_by_default(b"loop0"));
        assert!(excluded_by_default(b"ram1"));
        assert!(excluded_by_default(b"no-such-device-here"), "no /sys/block entry: a partition");
    }
}
