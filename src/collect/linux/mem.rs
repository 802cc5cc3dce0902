//! `/proc/meminfo`, `/proc/vmstat` and `/proc/loadavg`: memory and swap use, swap paging
//! rates and load averages.
//!
//! Memory in use is MemTotal − MemAvailable (as psutil and `free` count it); on kernels older
//! than 3.14, without MemAvailable, the kernel's own estimate is approximated from MemFree,
//! Buffers, Cached, SReclaimable and Shmem. Not the place for per-process memory.

use super::parse::{fields, lines, parse_f64, parse_u64};

/// What one read of `/proc/meminfo` gives, in bytes.
#[derive(Debug, Default, PartialEq)]
pub(super) struct MemInfo {
    /// MemTotal.
    pub total: u64,
    /// MemAvailable (or its estimate).
    pub available: u64,
    /// SwapTotal.
    pub swap_total: u64,
    /// SwapFree.
    pub swap_free: u64,
}

impl MemInfo {
    /// Memory in use, bytes.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }

    /// Memory in use, percent of total.
    pub fn used_percent(&self) -> f64 {
        100.0 * self.used() as f64 / self.total as f64
    }

    /// Swap in use, percent of swap (0 without swap).
    pub fn swap_used_percent(&self) -> f64 {
        if self.swap_total == 0 {
            0.0
        } else {
            100.0 * self.swap_total.saturating_sub(self.swap_free) as f64 / self.swap_total as f64
        }
    }
}

/// Parses `/proc/meminfo`; `None` if MemTotal is missing or zero.
pub(super) fn parse_meminfo(text: &[u8]) -> Option<MemInfo> {
    let (mut total, mut available, mut swap_total, mut swap_free) = (None, None, None, None);
    let (mut free, mut buffers, mut cached, mut reclaimable, mut shmem) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for line in lines(text) {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (key, rest) = (&line[..colon], &line[colon + 1..]);
        let Some(kib) = fields(rest).next().and_then(parse_u64) else { continue };
        let bytes = kib.saturating_mul(1024);
        match key {
            b"MemTotal" => total = Some(bytes),
            b"MemFree" => free = bytes,
            b"MemAvailable" => available = Some(bytes),
            b"Buffers" => buffers = bytes,
            b"Cached" => cached = bytes,
            b"SReclaimable" => reclaimable = bytes,
            b"Shmem" => shmem = bytes,
            b"SwapTotal" => swap_total = Some(bytes),
            b"SwapFree" => swap_free = Some(bytes),
            _ => {}
        }
    }
    let total = total.filter(|&t| t > 0)?;
    let available = available.unwrap_or_else(|| {
        free.saturating_add(buffers)
            .saturating_add(cached)
            .saturating_add(reclaimable)
            .saturating_sub(shmem)
    });
    Some(MemInfo {
        total,
        available: available.min(total),
        swap_total: swap_total.unwrap_or(0),
        swap_free: swap_free.unwrap_or(0),
    })
}

/// Parses `pswpin` and `pswpout` (pages swapped in and out since boot) from `/proc/vmstat`.
pub(super) fn parse_vmstat(text: &[u8]) -> Option<[u64; 2]> {
    let (mut pswpin, mut pswpout) = (None, None);
    for line in lines(text) {
        let mut it = fields(line);
        match it.next() {
            Some(b"pswpin") => pswpin = it.next().and_then(parse_u64),
            Some(b"pswpout") => pswpout = it.next().and_then(parse_u64),
            _ => continue,
        }
        if pswpin.is_some() && pswpout.is_some() {
            break;
        }
    }
    Some([pswpin?, pswpout?])
}

/// Parses the 1, 5 and 15 minute load averages from `/proc/loadavg`.
pub(super) fn parse_loadavg(text: &[u8]) -> Option<[f64; 3]> {
    let mut it = fields(text);
    Some([
        it.next().and_then(parse_f64)?,
        it.next().and_then(parse_f64)?,
        it.next().and_then(parse_f64)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &[u8] = b"MemTotal:       16309716 kB
MemFree:          512000 kB
MemAvailable:    8154858 kB
Buffers:          100000 kB
Cached:          4000000 kB
SwapCached:            0 kB
Shmem:             12000 kB
SReclaimable:     300000 kB
SwapTotal:       2097148 kB
SwapFree:        1572861 kB
HugePages_Total:       0
";

    #[test]
    fn meminfo() {
        let m = parse_meminfo(MEMINFO).expect("parses");
        assert_eq!(m.total, 16309716 * 1024);
        assert_eq!(m.available, 8154858 * 1024);
        assert_eq!(m.used(), (16309716 - 8154858) * 1024);
        assert!((m.used_percent() - 50.0).abs() < 0.01);
        assert!((m.swap_used_percent() - 25.0).abs() < 0.01);
    }

    #[test]
    fn meminfo_without_swap_or_memavailable() {
        let m = parse_meminfo(b"MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 300 kB\nShmem: 50 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")
            .expect("parses");
        assert_eq!(m.available, 400 * 1024);
        assert_eq!(m.swap_used_percent(), 0.0);
        assert!(parse_meminfo(b"MemFree: 1 kB\n").is_none());
    }

    #[test]
    fn vmstat_and_loadavg() {
        let vm = b"nr_free_pages 123\npgpgin 5\npswpin 17\npswpout 42\npgfault 9\n";
        assert_eq!(parse_vmstat(vm), Some([17, 42]));
        assert_eq!(parse_vmstat(b"pgpgin 5\n"), None);
        assert_eq!(parse_loadavg(b"0.52 1.58 12.59 1/389 12345\n"), Some([0.52, 1.58, 12.59]));
        assert_eq!(parse_loadavg(b"0.52\n"), None);
    }
}
