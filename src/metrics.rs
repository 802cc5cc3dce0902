//! The metric catalogue: names, label keys and units that rules, output and docs share.
//!
//! Metric names are a public contract (rules, `/metrics`, history and the README use them);
//! this table is the single place they are spelled.

use std::fmt;

/// The label a labelled metric carries, one per metric at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LabelKey {
    /// A logical CPU number (`cpu.core.usage`).
    Core,
    /// A mount point (`disk.used_percent`, `disk.free`).
    Mount,
    /// A block device name (`disk.read_rate` and friends).
    Device,
    /// A network interface name (`net.*`).
    Iface,
    /// A process group's configured name (`proc.*`; never the process's own text).
    Name,
}

impl LabelKey {
    /// Every label key, in documentation order.
    pub const ALL: [LabelKey; 5] =
        [LabelKey::Core, LabelKey::Mount, LabelKey::Device, LabelKey::Iface, LabelKey::Name];

    /// The key as written in configs and series keys.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelKey::Core => "core",
            LabelKey::Mount => "mount",
            LabelKey::Device => "device",
            LabelKey::Iface => "iface",
            LabelKey::Name => "name",
        }
    }

    /// Parses a label key as written in configs.
    pub fn parse(name: &str) -> Option<LabelKey> {
        LabelKey::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for LabelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a metric's value measures; decides which threshold units a rule may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// 0..=100.
    Percent,
    /// Percent of one core: 0 to 100 × the number of cores (a process's CPU use).
    CorePercent,
    /// A byte count.
    Bytes,
    /// Bytes per second.
    BytesPerSec,
    /// Events (operations, packets, errors, pages) per second.
    PerSec,
    /// A load average.
    Load,
    /// A plain count (connections).
    Count,
}

impl Unit {
    /// The unit's short name, as shown in tables and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Percent => "percent",
            Unit::CorePercent => "percent of one core",
            Unit::Bytes => "bytes",
            Unit::BytesPerSec => "bytes/s",
            Unit::PerSec => "/s",
            Unit::Load => "load",
            Unit::Count => "count",
        }
    }
}

macro_rules! metrics {
    ($( $variant:ident => $name:literal, $label:expr, $unit:expr, $help:literal; )*) => {
        /// One metric of the catalogue.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric { $(
            #[doc = $help]
            $variant,
        )* }

        impl Metric {
            /// Every metric, in documentation order.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant),*];

            /// The public name (`cpu.usage`).
            pub fn name(self) -> &'static str {
                match self { $(Metric::$variant => $name,)* }
            }

            /// The label this metric's series carry, if any.
            pub fn label_key(self) -> Option<LabelKey> {
                match self { $(Metric::$variant => $label,)* }
            }

            /// The unit of the values.
            pub fn unit(self) -> Unit {
                match self { $(Metric::$variant => $unit,)* }
            }

            /// One line of help text.
            pub fn help(self) -> &'static str {
                match self { $(Metric::$variant => $help,)* }
            }
        }
    };
}

metrics! {
    CpuUsage => "cpu.usage", None, Unit::Percent, "CPU busy time, all cores, percent.";
    CpuIowait => "cpu.iowait", None, Unit::Percent, "CPU time idle while waiting for I/O, percent.";
    CpuCoreUsage => "cpu.core.usage", Some(LabelKey::Core), Unit::Percent, "CPU busy time of one core, percent.";
    Load1 => "load.1", None, Unit::Load, "Load average over 1 minute.";
    Load5 => "load.5", None, Unit::Load, "Load average over 5 minutes.";
    Load15 => "load.15", None, Unit::Load, "Load average over 15 minutes.";
    MemUsedPercent => "mem.used_percent", None, Unit::Percent, "Memory in use (total - available), percent of total.";
    MemUsed => "mem.used", None, Unit::Bytes, "Memory in use (total - available), bytes.";
    MemAvailable => "mem.available", None, Unit::Bytes, "Memory available for new work without swapping, bytes.";
    SwapUsedPercent => "swap.used_percent", None, Unit::Percent, "Swap in use, percent of total (0 without swap).";
    SwapInRate => "swap.in_rate", None, Unit::PerSec, "Pages swapped in per second.";
    SwapOutRate => "swap.out_rate", None, Unit::PerSec, "Pages swapped out per second.";
    DiskUsedPercent => "disk.used_percent", Some(LabelKey::Mount), Unit::Percent, "Space used on a mount, percent of what non-root users can reach (as df).";
    DiskFree => "disk.free", Some(LabelKey::Mount), Unit::Bytes, "Space available to non-root users on a mount, bytes.";
    DiskInodesUsedPercent => "disk.inodes_used_percent", Some(LabelKey::Mount), Unit::Percent, "Inodes used on a mount, percent of what non-root users can reach (as df -i); unsupported on file systems that report no inodes.";
    DiskInodesFree => "disk.inodes_free", Some(LabelKey::Mount), Unit::Count, "Inodes available to non-root users on a mount.";
    DiskReadRate => "disk.read_rate", Some(LabelKey::Device), Unit::BytesPerSec, "Bytes read from a block device per second.";
    DiskWriteRate => "disk.write_rate", Some(LabelKey::Device), Unit::BytesPerSec, "Bytes written to a block device per second.";
    DiskReadOps => "disk.read_ops", Some(LabelKey::Device), Unit::PerSec, "Read operations completed per second.";
    DiskWriteOps => "disk.write_ops", Some(LabelKey::Device), Unit::PerSec, "Write operations completed per second.";
    NetRxRate => "net.rx_rate", Some(LabelKey::Iface), Unit::BytesPerSec, "Bytes received per second.";
    NetTxRate => "net.tx_rate", Some(LabelKey::Iface), Unit::BytesPerSec, "Bytes sent per second.";
    NetRxPackets => "net.rx_packets", Some(LabelKey::Iface), Unit::PerSec, "Packets received per second.";
    NetTxPackets => "net.tx_packets", Some(LabelKey::Iface), Unit::PerSec, "Packets sent per second.";
    NetRxErrors => "net.rx_errors", Some(LabelKey::Iface), Unit::PerSec, "Receive errors per second.";
    NetTxErrors => "net.tx_errors", Some(LabelKey::Iface), Unit::PerSec, "Transmit errors per second.";
    TcpEstablished => "tcp.established", None, Unit::Count, "TCP connections established (IPv4 and IPv6; the kernel's CurrEstab, which includes CLOSE-WAIT).";
    ProcCount => "proc.count", Some(LabelKey::Name), Unit::Count, "Processes of a configured group (`collect.processes`) running now; 0 when none matches. Zombies and hostwatch itself are not counted.";
    ProcCpu => "proc.cpu", Some(LabelKey::Name), Unit::CorePercent, "CPU time of a process group's processes over the last tick, percent of one core (200 is two cores busy).";
    ProcRss => "proc.rss", Some(LabelKey::Name), Unit::Bytes, "Resident memory of a process group's processes, bytes (summed: shared pages count once per process).";
    ProcFds => "proc.fds", Some(LabelKey::Name), Unit::Count, "Open file descriptors of a process group's processes (before Linux 6.2, only of those hostwatch may list: another user's need root).";
}

impl Metric {
    /// Looks a metric up by its public name.
    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.iter().copied().find(|m| m.name() == name)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.name()), Some(*m));
        }
        let mut names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
    }
}
