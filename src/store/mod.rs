//! The Redis store (`state.store`): alert states and the outbox mirrored from the local
//! state file, and the silences every agent sharing the store reads.
//!
//! Keys: `{prefix}:{host}:state` holds the same JSON the local `state.json` holds (its
//! `saved_at` tells which copy is newer); `{prefix}:silences` is a hash of silence id →
//! silence JSON, shared by every host (a silence's `host` glob says which agents it
//! applies to). The local state file stays the write-ahead safeguard: every save goes to
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

/// The state Redis holds for `host` (the bytes of a state file), `None` when it holds none.
/// Blocking, within the client's timeouts: for start-up only.
pub(crate) fn fetch_state(store: &StoreConfig, host: &str) -> Result<Option<Vec<u8>>, String> {
    Conn::open(&store.url)?.get(&state_key(store, host))
}

/// At start-up: replaces `local` (what the local state file held; the default state when
/// there was none) with the Redis copy when that is newer (`state::is_newer`: by
/// generation, else by `saved_at`), and says so. Redis unreachable, or a
/// copy that cannot be read, is logged and the local state kept.
pub(crate) fn recover(
    store: &StoreConfig,
    host: &str,
    state_dir: &std::path::Path,
    local: &mut crate::state::State,
) {
    let key = state_key(store, host);
    match fetch_state(store, host) {
        Ok(None) => {}
        Ok(Some(bytes)) => match crate::state::decode(&bytes) {
            Ok(remote) if crate::state::is_newer(&remote, local) => {
                log::info!(key = key.as_str(), alerts = remote.alerts.len(),
                    outbox = remote.delivery.outbox.len();
                    "state restored from Redis: its copy is newer than {} in {}",
                    if local.saved_at > 0.0 { "the state file" } else { "the (missing) state file" },
                    state_dir.display());
                *local = remote;
            }
            Ok(_) => {}
            Err(e) => {
                log::warn!(key = key.as_str(); "the state in Redis {e}; using the local state file")
            }
        },
        Err(e) => log::warn!("{e}; starting from the local state file"),
    }
}

/// The shared silences as stored (id → JSON).
pub(crate) fn read_raw_silences(conn: &mut Conn, store: &StoreConfig) -> Result<Raw, String> {
    conn.hgetall(&silences_key(store))
}

/// Silences as Redis holds them: id → JSON.
pub(crate) type Raw = BTreeMap<String, Vec<u8>>;

/// Parses stored silences, oldest first (ids grow with time); one that cannot be read is
/// left out with a warning when `warn`.
pub(crate) fn parse_silences(raw: &Raw, warn: bool) -> Vec<Silence> {
    let mut out = Vec::with_capacity(raw.len());
    for (id, bytes) in raw {
        let parsed =
            serde_json::from_slice::<Silence>(bytes).map_err(|e| e.to_string()).and_then(|s| {
                if s.schedule.is_none() && !s.until.is_finite() {
                    Err("it has neither \"until\" nor \"schedule\"".to_owned())
                } else {
                    Ok(s)
                }
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
    Ok(parse_silences(&read_raw_silences(&mut conn, store)?, true))
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
    let stored = parse_silences(&read_raw_silences(&mut conn, store)?, false);
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
