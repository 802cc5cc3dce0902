//! The Redis thread (`hostwatch-redis`): writes the newest saved state to
//! `{prefix}:{host}:state` and polls the shared silences, so the poll loop never waits on
//! the network.
//!
//! The loop hands over the bytes of each state it saved ([`StateSink::offer`]: a
//! latest-value slot under a mutex held for a pointer swap, never while Redis is talked
//! to) and reads the newest shared silences ([`SharedSilences::latest`], the same kind of
//! slot). While Redis is unreachable only the newest pending state is kept, retried with
//! backoff ([`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`]); the outage is logged once when it
//! starts and once when Redis took the newest state again ("brought up to date"). The
//! silences last read stay in force while Redis is away.
//!
//! Every write is conditional (one Lua `EVAL`, atomic): the state is set when the key is
//! missing, or holds a copy of our lineage (or an unknown one; before the first write only
//! one with a generation) whose generation is not above ours. Anything else is never overwritten blindly: before this thread's first
//! successful write, the copy found is renamed `{key}:conflict:{unix}` (kept, with an error
//! naming both lineages) and ours written; after it, a foreign copy means another agent
//! writes the key: an error is logged once ("two agents share host …?"), the key is left
//! to it and this agent's state stays in its local file only (until restart). Shared
//! silences a hash refuses (too many) or that cannot be read one by one are content
//! errors: warned about, never an outage.
//!
//! Not for: deciding what the state is (`crate::notify::delivery::outbox` commits it to the
//! local file first) or the keys and calls (`super`, `super::client`).

use super::client::Conn;
use crate::config::StoreConfig;
use crate::silence::Silence;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The first retry after a failed write.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(500);

/// The longest wait between retries while Redis is unreachable.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The newest state waiting for the thread, and whether it should stop.
#[derive(Default)]
struct Slot {
    pending: Option<Vec<u8>>,
    stop: bool,
}

/// What the loop and the thread share.
#[derive(Default)]
struct Shared {
    slot: Mutex<Slot>,
    wake: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where the outbox's commit hands each saved state (cheap to clone).
#[derive(Clone)]
pub(crate) struct StateSink(Arc<Shared>);

impl StateSink {
    /// Replaces whatever state was waiting with `bytes`; never waits on the thread's I/O.
    pub(crate) fn offer(&self, bytes: Vec<u8>) {
        lock(&self.0.slot).pending = Some(bytes);
        self.0.wake.notify_one();
    }
}

/// The newest shared silences the thread read, with a generation that grows at each change.
#[derive(Clone, Default)]
pub(crate) struct SharedSilences(Arc<Mutex<(u64, Arc<Vec<Silence>>)>>);

impl SharedSilences {
    /// The generation and the silences (an `Arc` copy: the lock is held for that only).
    pub(crate) fn latest(&self) -> (u64, Arc<Vec<Silence>>) {
        let g = lock(&self.0);
        (g.0, g.1.clone())
    }

    /// Hands a set over as the thread does (tests).
    #[cfg(test)]
    pub(crate) fn publish_for_tests(&self, silences: Vec<Silence>) {
        self.publish(silences);
    }

    fn publish(&self, silences: Vec<Silence>) {
        let mut g = lock(&self.0);
        g.0 += 1;
        g.1 = Arc::new(silences);
    }
}

/// The running thread.
pub(crate) struct Mirror {
    shared: Arc<Shared>,
    silences: SharedSilences,
    done: mpsc::Receiver<()>,
}

impl Mirror {
    /// Starts the thread; shared silences are polled every `poll_every` (the tick interval,
    /// at least 1 s).
    pub(crate) fn start(store: &StoreConfig, host: &str, poll_every: Duration) -> Mirror {
        let shared = Arc::new(Shared::default());
        let silences = SharedSilences::default();
        let (done_tx, done) = mpsc::channel();
        let mut worker = Worker {
            store: store.clone(),
            key: super::state_key(store, host),
            host: host.to_owned(),
            owned: false,
            foreign: false,
            refused: None,
            shared: shared.clone(),
            silences: silences.clone(),
            poll_every: poll_every.max(Duration::from_secs(1)),
            conn: None,
            down: false,
            backoff: BACKOFF_MIN,
            retry_at: None,
            seen: None,
            last: None,
        };
        let spawned = std::thread::Builder::new().name("hostwatch-redis".into()).spawn(move || {
            worker.run();
            let _ = done_tx.send(());
        });
        if let Err(e) = spawned {
            log::error!("cannot start the Redis thread: {e}; state stays in the local file only");
        }
        Mirror { shared, silences, done }
    }

    /// Where saved states go.
    pub(crate) fn sink(&self) -> StateSink {
        StateSink(self.shared.clone())
    }

    /// The shared silences, as the thread last read them.
    pub(crate) fn silences(&self) -> SharedSilences {
        self.silences.clone()
    }

    /// Asks the thread to write the state still waiting (one try) and stop; waits until
    /// `deadline` at most (the local file holds the state whatever happens).
    pub(crate) fn stop(self, deadline: Instant) {
        lock(&self.shared.slot).stop = true;
        self.shared.wake.notify_one();
        let left = deadline.saturating_duration_since(Instant::now());
        if self.done.recv_timeout(left).is_err() {
            log::warn!(
                "Redis did not take the last state before the stop; the local state file holds it"
            );
        }
    }
}

/// The conditional write (see the module doc). KEYS: the state key, the conflict key;
/// ARGV: the state, our lineage, our generation, "1" when a foreign copy may be renamed.
/// Answers `{outcome, their lineage, their generation}`: `set`, `renamed` or `kept`.
const WRITE_SCRIPT: &str = r#"
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1])
  return {'set', '', ''}
end
local ok, doc = pcall(cjson.decode, cur)
local lin, gen = '?', -1
if ok and type(doc) == 'table' then
  lin = doc['lineage']
  if type(lin) ~= 'string' then lin = '' end
  gen = tonumber(doc['generation']) or 0
end
local same = lin == ARGV[2] and lin ~= ''
-- Before our first write, a copy of unknown lineage is ours only when it has a generation.
local unknown = (lin == '' or ARGV[2] == '') and (ARGV[4] ~= '1' or gen > 0)
if gen >= 0 and (same or unknown) and gen <= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return {'set', lin, tostring(gen)}
end
if ARGV[4] ~= '1' then return {'kept', lin, tostring(gen)} end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('SET', KEYS[1], ARGV[1])
return {'renamed', lin, tostring(gen)}
"#;

/// The lineage and generation of a state's bytes (empty and 0 when they cannot be read).
fn lineage_of(bytes: &[u8]) -> (String, u64) {
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(default)]
        lineage: String,
        #[serde(default)]
        generation: u64,
    }
    serde_json::from_slice::<Meta>(bytes).map_or((String::new(), 0), |m| (m.lineage, m.generation))
}

/// The thread's side.
struct Worker {
    store: StoreConfig,
    key: String,
    host: String,
    /// This thread wrote the key at least once: a foreign copy found later is another agent.
    owned: bool,
    /// Another agent writes the key: this one no longer does.
    foreign: bool,
    /// The last refusal of the silences hash, warned once.
    refused: Option<String>,
    shared: Arc<Shared>,
    silences: SharedSilences,
    poll_every: Duration,
    conn: Option<Conn>,
    /// The outage was logged (and its end not yet).
    down: bool,
    backoff: Duration,
    /// When a failed write is tried again.
    retry_at: Option<Instant>,
    /// The silences as last read (raw), to publish changes only.
    seen: Option<super::Raw>,
    /// The state last written: written again when Redis comes back (it may have come back
    /// empty) and no newer one waits.
    last: Option<Vec<u8>>,
}

impl Worker {
    fn run(&mut self) {
        let mut next_poll = Instant::now();
        loop {
            let (bytes, stop) = self.wait(next_poll);
            if let Some(bytes) = bytes {
                self.write(bytes, stop);
            }
            if stop {
                return;
            }
            if Instant::now() >= next_poll {
                self.poll_silences();
                next_poll = Instant::now() + self.poll_every;
            }
        }
    }

    /// Waits for a state to write (once a retry is due), the next poll, or a stop.
    fn wait(&self, next_poll: Instant) -> (Option<Vec<u8>>, bool) {
        let mut slot = lock(&self.shared.slot);
        loop {
            let now = Instant::now();
            let write_due =
                slot.pending.is_some() && self.retry_at.is_none_or(|t| now >= t) || slot.stop;
            if write_due || now >= next_poll {
                let bytes = if write_due { slot.pending.take() } else { None };
                return (bytes, slot.stop);
            }
            let until = match (slot.pending.is_some(), self.retry_at) {
                (true, Some(t)) => t.min(next_poll),
                _ => next_poll,
            };
            slot = match self.shared.wake.wait_timeout(slot, until - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// The connection, opened when there is none.
    fn conn(&mut self) -> Result<&mut Conn, String> {
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.store.url)?);
        }
        Ok(self.conn.as_mut().expect("just opened"))
    }

    fn write(&mut self, bytes: Vec<u8>, stopping: bool) {
        if self.foreign {
            return;
        }
        let key = self.key.clone();
        let (lineage, generation) = lineage_of(&bytes);
        let conflict = format!("{key}:conflict:{}", crate::timefmt::now_unix() as u64);
        let rename: &[u8] = if self.owned { b"0" } else { b"1" };
        let generation_text = generation.to_string();
        let args: [&[u8]; 4] = [&bytes, lineage.as_bytes(), generation_text.as_bytes(), rename];
        match self.conn().and_then(|c| c.eval(WRITE_SCRIPT, &[&key, &conflict], &args)) {
            Ok(answer) => {
                let theirs = answer.get(1).map_or("?", String::as_str);
                let their_gen = answer.get(2).map_or("?", String::as_str);
                match answer.first().map(String::as_str) {
                    Some("kept") => {
                        log::error!(key = key.as_str(), ours = lineage.as_str(), theirs;
                            "another agent writes {key}: two agents share host {}? (its state has lineage {theirs}, generation {their_gen}; ours {lineage}, {generation}); this agent's state stays in its local state file only",
                            self.host);
                        self.foreign = true;
                        lock(&self.shared.slot).pending = None;
                    }
                    Some("renamed") => {
                        log::error!(key = key.as_str(), conflict = conflict.as_str();
                            "the state in Redis was of another history (lineage {theirs}, generation {their_gen}; ours {lineage}, {generation}): kept as {conflict}, not overwritten");
                    }
                    _ => {}
                }
                if !self.foreign {
                    self.owned = true;
                }
                if self.down {
                    log::info!(key = key.as_str(); "Redis is reachable again: brought up to date with the newest state");
                    self.down = false;
                }
                self.retry_at = None;
                self.backoff = BACKOFF_MIN;
                self.last = Some(bytes);
            }
            Err(e) => {
                self.fail(&e);
                if !stopping {
                    let mut slot = lock(&self.shared.slot);
                    // A newer state that arrived meanwhile wins.
                    if slot.pending.is_none() {
                        slot.pending = Some(bytes);
                    }
                }
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    fn fail(&mut self, e: &str) {
        self.conn = None;
        if !self.down {
            log::warn!(
                "{e}; Redis is unreachable: the local state file keeps the state, the newest state is written when Redis is back"
            );
            self.down = true;
        }
    }

    fn poll_silences(&mut self) {
        let store = self.store.clone();
        let read = self.conn().and_then(|c| super::read_raw_silences(c, &store));
        match read {
            Ok(Err(refused)) => {
                if self.refused.as_ref() != Some(&refused) {
                    log::warn!("{refused}; the shared silences last read stay in force");
                    self.refused = Some(refused);
                }
            }
            Ok(Ok(raw)) => {
                self.refused = None;
                if self.down {
                    // Back, perhaps empty: the newest state is written at once (the one
                    // waiting, else the last one written).
                    self.retry_at = None;
                    let mut slot = lock(&self.shared.slot);
                    if slot.pending.is_none() {
                        slot.pending = self.last.take();
                    }
                    if slot.pending.is_none() {
                        log::info!("Redis is reachable again");
                        self.down = false;
                    }
                }
                if self.seen.as_ref() != Some(&raw) {
                    self.silences.publish(super::parse_silences(&raw, true));
                    self.seen = Some(raw);
                }
            }
            Err(e) => self.fail(&e),
        }
    }
}
