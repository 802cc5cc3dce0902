//! The Redis store (`state.store`): alert states and the outbox mirrored from the local
//! state file, and the silences every agent sharing the store reads.
//!
//! Keys: `{prefix}:{host}:state` holds the same JSON the local `state.json` holds (its
//! `saved_at` tells which copy is newer); `{prefix}:silences` is a hash of silence id →
//! silence JSON, shared by every host (a silence's `host` glob says which agents it
//! applies to); `{prefix}:{host}:state:conflict:{unix}` holds a copy of another lineage the
//! mirror found in the state key and did not overwrite (see [`mirror`]). Reads are bounded:
//! a state over the local file's cap, more than [`MAX_SILENCES`] silences, a silence over
//! [`MAX_SILENCE_BYTES`] are refused (content errors, warned about, not outages). The local state file stays the write-ahead safeguard: every save goes to
//! it first; Redis gets the newest state from the [`mirror`] thread, so the poll loop never
//! waits on the network. The blocking calls here ([`fetch_state`] at start-up, the silence
//! commands) run with the timeouts of [`client`].
//!
//! Not for: the state file's format (`crate::state`) or what a silence covers
//! (`crate::silence`).

pub(crate) mod client;
pub(crate) mod mirror;

use crate::config::StoreConfig;
use crate::silence::Silence;
use client::Conn;
use std::collections::BTreeMap;

pub(crate) use mirror::Mirror;

/// `{prefix}:{host}:state`.
pub(crate) fn state_key(store: &StoreConfig, host: &str) -> String {
    format!("{}:{host}:state", store.key_prefix)
}

/// `{prefix}:silences`.
pub(crate) fn silences_key(store: &StoreConfig) -> String {
    format!("{}:silences", store.key_prefix)
}

/// The most shared silences read; a hash holding more is not read at all (the silences
/// last read stay in force) and said so.
pub(crate) const MAX_SILENCES: u64 = 1000;

/// The largest silence value read; a larger one is left out with a warning.
pub(crate) const MAX_SILENCE_BYTES: u64 = 64 * 1024;

/// How long start-up keeps trying to read the Redis copy when there is no local state file
/// (Redis still loading its data, not answering, the network not up yet).
pub(crate) const STARTUP_READ_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// The state Redis holds for `host` (the bytes of a state file), `None` when it holds none.
/// A copy larger than the local file's cap ([`crate::localfile::STATE_MAX_BYTES`]) is
/// refused (`STRLEN` first). Blocking, within the client's timeouts: for start-up only.
pub(crate) fn fetch_state(store: &StoreConfig, host: &str) -> Result<Option<Vec<u8>>, Fetch> {
    let key = state_key(store, host);
    let mut conn = Conn::open(&store.url).map_err(Fetch::Outage)?;
    let len = conn.strlen(&key).map_err(Fetch::Outage)?;
    if len > crate::localfile::STATE_MAX_BYTES {
        return Err(Fetch::Content(format!(
            "holds {len} bytes, more than the {} a state may have",
            crate::localfile::STATE_MAX_BYTES
        )));
    }
    conn.get(&key).map_err(Fetch::Outage)
}

/// Why a read from Redis found nothing usable.
#[derive(Debug)]
pub(crate) enum Fetch {
    /// Redis did not answer, or refused the command (loading, timeout, network): retryable.
    Outage(String),
    /// Redis answered with something that cannot be used: not an outage.
    Content(String),
}

/// At start-up: decides between `local` (what the local state file held; the default state
/// when there was none) and the Redis copy, and says so:
/// - no local file: the Redis copy is adopted; a read that fails is retried within
///   [`STARTUP_READ_BUDGET`] (each retry logged) when `patient`; still nothing: a fresh start
///   (the mirror's conditional write then keeps the Redis copy, see `mirror`);
/// - a local file and a Redis copy of the same lineage (or an unknown one): the newer
///   (`state::is_newer`: by generation, else by `saved_at`) wins;
/// - a different lineage: the local file is kept, with a warning naming both.
///
/// When the Redis copy is adopted and `patient` (not a dry run), the local
/// `outbox.journal` is set aside (renamed `outbox.journal.other-<unix>`): its marks belong
/// to another history. A copy that cannot be read is logged and the local state kept.
pub(crate) fn recover(
    store: &StoreConfig,
    host: &str,
    state_dir: &std::path::Path,
    local: &mut crate::state::State,
    patient: bool,
) {
    let key = state_key(store, host);
    let missing = local.saved_at <= 0.0 && local.generation == 0;
    let started = std::time::Instant::now();
    let mut wait = std::time::Duration::from_millis(500);
    let fetched = loop {
        match fetch_state(store, host) {
            Err(Fetch::Outage(e)) if missing && patient => {
                let left = STARTUP_READ_BUDGET.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break Err(Fetch::Outage(format!(
                        "{e} (gave up after {} s)",
                        STARTUP_READ_BUDGET.as_secs()
                    )));
                }
                log::warn!(key = key.as_str();
                    "{e}; no local state file: reading the state from Redis again in {} ms ({} s left)",
                    wait.as_millis(), left.as_secs());
                std::thread::sleep(wait.min(left));
                wait = (wait * 2).min(std::time::Duration::from_secs(4));
            }
            other => break other,
        }
    };
    match fetched {
        Ok(None) => {}
        Ok(Some(bytes)) => match crate::state::decode(&bytes) {
            Ok(remote) if !missing && !crate::state::same_lineage(&remote, local) => {
                log::warn!(key = key.as_str(), local = local.lineage.as_str(), redis = remote.lineage.as_str();
                    "the state in Redis is of another history (lineage {}) than the state file in {} (lineage {}): keeping the state file; the Redis copy is not overwritten but kept aside",
                    remote.lineage, state_dir.display(), local.lineage);
            }
            Ok(remote) if missing || crate::state::is_newer(&remote, local) => {
                log::info!(key = key.as_str(), alerts = remote.alerts.len(),
                    outbox = remote.delivery.outbox.len();
                    "state restored from Redis: its copy is newer than {} in {}",
                    if missing { "the (missing) state file" } else { "the state file" },
                    state_dir.display());
                *local = remote;
                if patient {
                    set_journal_aside(state_dir);
                }
            }
            Ok(_) => {}
            Err(e) => {
                log::warn!(key = key.as_str(); "the state in Redis {e}; using the local state file")
            }
        },
        Err(Fetch::Content(e)) => {
            log::warn!(key = key.as_str(); "the state in Redis {e}; starting from the local state file")
        }
        Err(Fetch::Outage(e)) => log::warn!("{e}; starting from the local state file"),
    }
}

/// Renames `outbox.journal` (when there is one with content) out of the way of an adopted
/// Redis copy.
fn set_journal_aside(state_dir: &std::path::Path) {
    let path = crate::notify::delivery::journal::journal_path(state_dir);
    match std::fs::metadata(&path) {
        Ok(m) if m.len() > 0 => {}
        _ => return,
    }
    let aside = path.with_extension(format!("journal.other-{}", crate::timefmt::now_unix() as u64));
    match std::fs::rename(&path, &aside) {
        Ok(()) => log::warn!(
            "the outbox journal belongs to the history the Redis copy replaced: set aside as {}",
            aside.display()
        ),
        Err(e) => log::error!("cannot set the outbox journal {} aside: {e}", path.display()),
    }
}

/// The shared silences as stored: outer error an outage, inner a hash that is refused
/// (more than [`MAX_SILENCES`] fields). Values over [`MAX_SILENCE_BYTES`], field names that
/// are not UTF-8, are entries holding why they are left out.
pub(crate) fn read_raw_silences(
    conn: &mut Conn,
    store: &StoreConfig,
) -> Result<Result<Raw, String>, String> {
    const SCRIPT: &str = r#"
local n = redis.call('HLEN', KEYS[1])
if n > tonumber(ARGV[1]) then return {'toomany', tostring(n)} end
local out = {'ok'}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  out[#out + 1] = all[i]
  if #all[i + 1] > tonumber(ARGV[2]) then
    out[#out + 1] = 'big'
    out[#out + 1] = tostring(#all[i + 1])
  else
    out[#out + 1] = 'v'
    out[#out + 1] = all[i + 1]
  end
end
return out
"#;
    let key = silences_key(store);
    let reply = conn.eval_bytes(
        SCRIPT,
        &[&key],
        &[MAX_SILENCES.to_string().as_bytes(), MAX_SILENCE_BYTES.to_string().as_bytes()],
    )?;
    let mut it = reply.into_iter();
    match it.next().as_deref() {
        Some(b"ok") => {}
        Some(b"toomany") => {
            let n = it.next().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            return Ok(Err(format!(
                "{key} holds {n} silences, more than the {MAX_SILENCES} read: none read"
            )));
        }
        _ => return Err(format!("unexpected answer from Redis reading {key}")),
    }
    let mut raw = Raw::new();
    while let (Some(field), Some(kind), Some(value)) = (it.next(), it.next(), it.next()) {
        let (id, entry) = match String::from_utf8(field) {
            Ok(id) if kind == b"big" => (
                id,
                Err(format!(
                    "it holds {} bytes, more than {MAX_SILENCE_BYTES}",
                    String::from_utf8_lossy(&value)
                )),
            ),
            Ok(id) => (id, Ok(value)),
            Err(e) => (
                String::from_utf8_lossy(e.as_bytes()).into_owned(),
                Err("its id is not UTF-8".to_owned()),
            ),
        };
        raw.insert(id, entry);
    }
    Ok(Ok(raw))
}

/// Silences as Redis holds them: id → JSON, or why the entry is left out.
pub(crate) type Raw = BTreeMap<String, Result<Vec<u8>, String>>;

/// Parses stored silences, oldest first (ids grow with time); one that cannot be read, or
/// fails `Silence::shared_error` (no `host` glob, a bad glob, longer than 366 days), is left
/// out with a warning when `warn`.
pub(crate) fn parse_silences(raw: &Raw, warn: bool) -> Vec<Silence> {
    let now = crate::timefmt::now_unix();
    let mut out = Vec::with_capacity(raw.len());
    for (id, bytes) in raw {
        let parsed = bytes
            .clone()
            .and_then(|bytes| serde_json::from_slice::<Silence>(&bytes).map_err(|e| e.to_string()));
        let parsed = parsed.and_then(|s| match s.shared_error(now) {
            Some(e) => Err(e),
            None => Ok(s),
        });
        match parsed {
            Ok(mut s) => {
                s.id = id.clone();
                out.push(s);
            }
            Err(e) if warn => {
                log::warn!(id = id.as_str(); "shared silence {id} in Redis cannot be read and is left out ({e})")
            }
            Err(_) => {}
        }
    }
    out.sort_by(|a, b| (a.id.len(), &a.id).cmp(&(b.id.len(), &b.id)));
    out
}

/// Reads the shared silences (for `hostwatch silence list`).
pub(crate) fn read_silences(store: &StoreConfig) -> Result<Vec<Silence>, String> {
    let mut conn = Conn::open(&store.url)?;
    Ok(parse_silences(&read_raw_silences(&mut conn, store)??, true))
}

/// Adds a shared silence (its `id` is ignored) and returns the id it got (`r` and the
/// milliseconds in hex, unique in the hash: `HSETNX`); expired silences are removed first.
pub(crate) fn add_silence(
    store: &StoreConfig,
    mut silence: Silence,
    now: f64,
) -> Result<String, String> {
    let mut conn = Conn::open(&store.url)?;
    let key = silences_key(store);
    let stored = parse_silences(&read_raw_silences(&mut conn, store)??, false);
    let expired: Vec<&str> =
        stored.iter().filter(|s| s.until <= now).map(|s| s.id.as_str()).collect();
    conn.hdel(&key, &expired)?;
    let mut n = (now * 1000.0) as u64;
    loop {
        silence.id = format!("r{n:x}");
        let bytes = serde_json::to_vec(&silence).map_err(|e| e.to_string())?;
        if conn.hsetnx(&key, &silence.id, &bytes)? {
            return Ok(silence.id);
        }
        n += 1;
    }
}

/// Removes the shared silence `id`; false when there is none.
pub(crate) fn remove_silence(store: &StoreConfig, id: &str) -> Result<bool, String> {
    let mut conn = Conn::open(&store.url)?;
    Ok(conn.hdel(&silences_key(store), &[id])? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adopted_copy_sets_the_journal_aside_and_lineages_round_trip() {
        let dir = crate::testutil::tempdir("store", "journal-aside");
        let journal = crate::notify::delivery::journal::journal_path(&dir);
        std::fs::write(&journal, b"marks of another history\n").unwrap();
        set_journal_aside(&dir);
        assert!(!journal.exists());
        let aside: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("outbox.journal.other-"))
            .collect();
        assert_eq!(aside.len(), 1);
        let state = crate::state::State {
            version: crate::state::STATE_VERSION,
            lineage: crate::state::new_lineage(),
            generation: 3,
            ..Default::default()
        };
        let back = crate::state::decode(&crate::state::encode(&state).unwrap()).unwrap();
        assert_eq!(back.lineage, state.lineage);
        assert_eq!(back.lineage.len(), 16);
        let other =
            crate::state::State { lineage: crate::state::new_lineage(), ..Default::default() };
        assert!(!crate::state::same_lineage(&back, &other));
        assert!(crate::state::same_lineage(&back, &crate::state::State::default()));
    }

    #[test]
    fn shared_silences_must_name_their_hosts_and_pass_the_api_checks() {
        let now = crate::timefmt::now_unix();
        let until = now + 3600.0;
        let mut raw = Raw::new();
        let ok = format!(r#"{{"host": "WEB-*", "rule": "disk_*", "until": {until}}}"#);
        raw.insert("r1".into(), Ok(ok.into_bytes()));
        let no_host = format!(r#"{{"rule": "disk_*", "until": {until}}}"#);
        raw.insert("r2".into(), Ok(no_host.into_bytes()));
        let too_long = format!(r#"{{"host": "*", "until": {}}}"#, now + 400.0 * 86_400.0);
        raw.insert("r3".into(), Ok(too_long.into_bytes()));
        let bad_label = format!(r#"{{"host": "*", "match": {{"nope": "x"}}, "until": {until}}}"#);
        raw.insert("r4".into(), Ok(bad_label.into_bytes()));
        raw.insert("r5".into(), Err("its id is not UTF-8".into()));
        raw.insert("r6".into(), Ok(b"{not json".to_vec()));
        let got = parse_silences(&raw, true);
        assert_eq!(got.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["r1"]);
        assert!(got[0].applies_to_host("web-1") && got[0].applies_to_host("Web-2"));
        assert!(!got[0].applies_to_host("db-1"));
    }
}
