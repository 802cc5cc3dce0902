//! `/proc/net/dev` (per-interface byte, packet and error counters) and `/proc/net/snmp`
//! (`Tcp: CurrEstab`, the ESTABLISHED + CLOSE-WAIT count over IPv4 and IPv6).
//!
//! `/proc/net/tcp` is never read: it costs ~2 ms of CPU per read against ~20 µs for snmp.
//! Interface names may hold any byte but `:`, `/` and whitespace; the name is what precedes
//! the last `:` of the line, trimmed. Not the place for per-connection data.

use super::parse::{fields, lines, parse_i64, parse_u64};

/// The counters kept per interface, in this order: rx bytes, tx bytes, rx packets,
/// tx packets, rx errors, tx errors.
pub(super) type NetCounters = [u64; 6];

/// Calls `f(name, counters)` for every interface of `/proc/net/dev`.
pub(super) fn parse_net_dev(text: &[u8], mut f: impl FnMut(&[u8], NetCounters)) {
    for line in lines(text) {
        // Header lines hold '|' and no ':'; the counters after the name hold no ':'.
        let Some(colon) = line.iter().rposition(|&b| b == b':') else { continue };
        let name = line[..colon].trim_ascii();
        if name.is_empty() {
            continue;
        }
        // rx: bytes packets errs drop fifo frame compressed multicast;
        // tx: bytes packets errs drop fifo colls carrier compressed.
        let mut v = [0u64; 16];
        let mut n = 0;
        for (slot, field) in v.iter_mut().zip(fields(&line[colon + 1..])) {
            match parse_u64(field) {
                Some(x) => *slot = x,
                None => break,
            }
            n += 1;
        }
        if n < 11 {
            continue;
        }
        f(name, [v[0], v[8], v[1], v[9], v[2], v[10]]);
    }
}

/// Reads `CurrEstab` from the `Tcp:` header/value line pair of `/proc/net/snmp`.
pub(super) fn parse_snmp_curr_estab(text: &[u8]) -> Option<i64> {
    let mut header: Option<&[u8]> = None;
    for line in lines(text) {
        let Some(rest) = line.strip_prefix(b"Tcp:") else { continue };
        match header {
            None => header = Some(rest),
            Some(h) => {
                let column = fields(h).position(|name| name == b"CurrEstab")?;
                return fields(rest).nth(column).and_then(parse_i64);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &[u8] = b"Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0:27698383    1185    3    0    0     0          0         0   127162     962    4    0    0     0       0          0
we{ir}d=\xff\x01\"x:  10 1 0 0 0 0 0 0  20 2 0 0 0 0 0 0
 short: 1 2 3
";

    #[test]
    fn net_dev_with_glued_and_hostile_names() {
        let mut got: Vec<(Vec<u8>, NetCounters)> = Vec::new();
        parse_net_dev(NET_DEV, |name, c| got.push((name.to_vec(), c)));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (b"lo".to_vec(), [3193, 3193, 29, 29, 0, 0]));
        assert_eq!(got[1], (b"eth0".to_vec(), [27698383, 127162, 1185, 962, 3, 4]));
        assert_eq!(got[2], (b"we{ir}d=\xff\x01\"x".to_vec(), [10, 20, 1, 2, 0, 0]));
    }

    #[test]
    fn snmp_curr_estab() {
        let snmp = b"Ip: Forwarding DefaultTTL\nIp: 1 64\n\
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs\n\
Tcp: 1 200 120000 -1 40 2 0 26 57 1131\n\
Udp: InDatagrams\nUdp: 5\n";
        assert_eq!(parse_snmp_curr_estab(snmp), Some(57));
        assert_eq!(parse_snmp_curr_estab(b"Tcp: RtoAlgorithm\nTcp: 1\n"), None);
        assert_eq!(parse_snmp_curr_estab(b"Ip: 1\n"), None);
    }
}
