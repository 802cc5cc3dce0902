//! Silences kept in `state_dir/silences.json`, managed by `hostwatch silence` and watched by
//! the running daemon (re-read when the file changes), merged with the config's silences.
//!
//! The file is read only when it is a regular file of at most 4 MiB, and never written
//! larger (a file the daemon could not read would lift every silence in it). `hostwatch
//! silence` and the API's `POST`/`DELETE /silences` hold [`lock`] (`state_dir/silences.lock`,
//! flocked, never deleted) around their read-modify-write so concurrent changes never lose
//! each other; the API waits for it a bounded time ([`add_within`], [`remove_within`]: its
//! one server thread must not hang on whoever holds the lock). The loop only reads and does
//! not take it.
//!
//! The lock file is opened read-only (`flock` needs no write access), and a lock file that
//! cannot be opened is reported as the permission problem it is, naming the path and the
//! user, never as held. `silences.json` is written mode 0640 whatever the umask; when root
//! writes in a state directory that belongs to another user (`hostwatch silence` run as root
//! on a daemon running as `hostwatch`), the lock file, the temp file and so `silences.json`
//! are given to that directory's owner and group, so the daemon can still lock, read and
//! replace them.

use crate::config::Config;
use crate::silence::Silence;
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The file's layout.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SilenceFile {
    /// The silences, oldest first.
    #[serde(default)]
    pub silences: Vec<Silence>,
}

/// `state_dir/silences.json`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("silences.json")
}

/// Reads the silences file; a missing file is empty, a broken one is an error.
pub fn read(state_dir: &Path) -> Result<SilenceFile, String> {
    let p = path(state_dir);
    match crate::localfile::read_regular(&p, crate::localfile::SILENCES_MAX_BYTES) {
        Ok(bytes) => parse(&bytes).map_err(|e| format!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SilenceFile::default()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses the silences file's bytes. A file that is not JSON of the right shape is an error;
/// one silence that cannot be read (a broken schedule, neither `until` nor `schedule`) is
/// left out with a warning that quotes it, so the others stay in force.
pub fn parse(bytes: &[u8]) -> Result<SilenceFile, String> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        silences: Vec<serde_json::Value>,
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut silences = Vec::with_capacity(raw.silences.len());
    for (i, item) in raw.silences.into_iter().enumerate() {
        let read = serde_json::from_value::<Silence>(item.clone())
            .map_err(|e| e.to_string())
            .and_then(|s| {
                if s.schedule.is_none() && !s.until.is_finite() {
                    Err("it has neither \"until\" nor \"schedule\"".to_string())
                } else {
                    Ok(s)
                }
            });
        match read {
            Ok(s) => silences.push(s),
            Err(e) => {
                let text: String = item.to_string().chars().take(300).collect();
                log::warn!(index = i; "silences.json: silence {} cannot be read and is left out ({e}): {text}", i + 1);
            }
        }
    }
    Ok(SilenceFile { silences })
}

/// `state_dir/silences.lock`.
fn lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join("silences.lock")
}

/// The silences lock, held until dropped.
#[derive(Debug)]
pub struct SilencesLock {
    _file: fs::File,
}

/// The mode `silences.json` is written with, whatever the writer's umask: the daemon's user
/// and group read it.
const FILE_MODE: u32 = 0o640;

/// The user and group the files `hostwatch silence` writes in `state_dir` must belong to: when
/// this process is root and the directory belongs to another user (the daemon's, `hostwatch`
/// under the systemd unit), that user and the directory's group; otherwise none is set.
fn hand_over_to(state_dir: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let m = fs::metadata(state_dir).ok()?;
    (m.uid() != 0).then_some((m.uid(), m.gid()))
}

/// Gives `file` to `owner` (when set and not already its owner).
fn chown_to(file: &fs::File, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some((uid, gid)) = owner else { return Ok(()) };
    let m = file.metadata()?;
    if (m.uid(), m.gid()) == (uid, gid) {
        return Ok(());
    }
    // SAFETY: fchown on a file descriptor we own.
    if unsafe { libc::fchown(file.as_raw_fd(), uid, gid) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Opens (creating) the lock file read-only: `flock` needs no write access, so a lock file
/// another user created stays usable by whoever may read it.
fn open_lock(state_dir: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::create_dir_all(state_dir)?;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CREAT)
        .mode(FILE_MODE)
        .open(lock_path(state_dir))?;
    chown_to(&file, hand_over_to(state_dir))?;
    Ok(file)
}

/// `uid 998 (hostwatch)`, or `uid 998` when the name cannot be found.
fn user_name(uid: u32) -> String {
    let mut pw = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut buf = [0 as libc::c_char; 4096];
    let mut found = std::ptr::null_mut();
    // SAFETY: getpwuid_r fills `pw` and `buf` (its length given), and sets `found` to `pw`
    // when it found the user.
    let rc =
        unsafe { libc::getpwuid_r(uid, pw.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() {
        return format!("uid {uid}");
    }
    // SAFETY: getpwuid_r succeeded, so `pw_name` points at a NUL-terminated string in `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr((*found).pw_name) };
    format!("uid {uid} ({})", name.to_string_lossy())
}

/// The message for a lock file that cannot be opened: a permission problem says whose file
/// it is and who we are, never "held by another process".
fn open_error(state_dir: &Path, e: &std::io::Error) -> String {
    use std::os::unix::fs::MetadataExt;
    let p = lock_path(state_dir);
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return format!("{}: {e}", p.display());
    }
    // SAFETY: geteuid has no preconditions.
    let me = user_name(unsafe { libc::geteuid() });
    let whose = match fs::metadata(&p) {
        Ok(m) => format!("it belongs to {}, mode {:04o}", user_name(m.uid()), m.mode() & 0o7777),
        Err(_) => format!("{} cannot be created in", state_dir.display()),
    };
    let owner = fs::metadata(state_dir).map(|m| user_name(m.uid())).unwrap_or_default();
    format!(
        "{}: permission denied for {me} ({whose}): the silences lock and silences.json must be \
         readable by the user hostwatch runs as; give them to the state directory's owner{} \
         (as root, `hostwatch silence` does that itself)",
        p.display(),
        if owner.is_empty() { String::new() } else { format!(", {owner}") }
    )
}

/// True when the open lock file is still the file at `silences.lock` (not deleted or
/// replaced since it was opened).
fn still_at_path(file: &fs::File, state_dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(a), Ok(b)) = (file.metadata(), fs::metadata(lock_path(state_dir))) else {
        return false;
    };
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

/// How many times a lock file that was deleted or replaced under us is reopened.
const LOCK_ATTEMPTS: usize = 16;

/// Takes the silences lock, waiting for another `hostwatch silence` to finish. A lock file
/// deleted or replaced while we waited (so the flock is on a file nobody else opens) is
/// opened and locked again, a bounded number of times.
pub fn lock(state_dir: &Path) -> Result<SilencesLock, String> {
    let name = || lock_path(state_dir).display().to_string();
    for _ in 0..LOCK_ATTEMPTS {
        let file = open_lock(state_dir).map_err(|e| open_error(state_dir, &e))?;
        loop {
            // SAFETY: flock on a file descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("{}: {e}", name()));
            }
        }
        if still_at_path(&file, state_dir) {
            return Ok(SilencesLock { _file: file });
        }
    }
    Err(format!("{}: keeps being deleted or replaced; cannot lock it", name()))
}

/// Takes the silences lock if nobody holds it: `Ok(None)` while somebody does, an error when
/// the lock file cannot be opened or locked (a permission problem, named as one).
pub(crate) fn try_lock(state_dir: &Path) -> Result<Option<SilencesLock>, String> {
    for _ in 0..LOCK_ATTEMPTS {
        let file = open_lock(state_dir).map_err(|e| open_error(state_dir, &e))?;
        // SAFETY: flock on a file descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(format!("{}: {e}", lock_path(state_dir).display()));
        }
        if still_at_path(&file, state_dir) {
            return Ok(Some(SilencesLock { _file: file }));
        }
    }
    Ok(None)
}

/// Takes the silences lock, waiting at most `wait` for whoever holds it.
#[cfg_attr(not(feature = "api"), allow(dead_code))]
pub(crate) fn lock_within(state_dir: &Path, wait: Duration) -> Result<SilencesLock, String> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(l) = try_lock(state_dir)? {
            return Ok(l);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{}: held by another process for more than {} s; try again",
                lock_path(state_dir).display(),
                wait.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes the silences file atomically, mode 0640 and (as root, in a directory of another
/// user) owned by the directory's owner and group; refused when it would be larger than the
/// daemon reads.
pub fn write(state_dir: &Path, file: &SilenceFile) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| e.to_string())?;
    let max = crate::localfile::SILENCES_MAX_BYTES;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{}: would grow past {} MiB, more than hostwatch reads; remove some silences",
            path(state_dir).display(),
            max / (1024 * 1024)
        ));
    }
    let owner = hand_over_to(state_dir);
    crate::state::write_atomic_prepared(&path(state_dir), &bytes, |f| {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        chown_to(f, owner)
    })
    .map_err(|e| e.to_string())
}

/// Adds `silence` (its `id` is ignored) under the silences lock, dropping expired ones, and
/// returns the id it got: unique among the kept silences even when several are added in one
/// millisecond. `hostwatch silence add` comes here.
pub fn add(state_dir: &Path, silence: Silence, now: f64) -> Result<String, String> {
    add_locked(&lock(state_dir)?, state_dir, silence, now)
}

/// [`add`], waiting at most `wait` for the lock (`POST /silences`).
#[cfg_attr(not(feature = "api"), allow(dead_code))]
pub(crate) fn add_within(
    state_dir: &Path,
    silence: Silence,
    now: f64,
    wait: Duration,
) -> Result<String, String> {
    add_locked(&lock_within(state_dir, wait)?, state_dir, silence, now)
}

fn add_locked(
    _lock: &SilencesLock,
    state_dir: &Path,
    mut silence: Silence,
    now: f64,
) -> Result<String, String> {
    let mut file = read(state_dir)?;
    file.silences.retain(|s| s.until > now);
    let mut n = (now * 1000.0) as u64;
    while file.silences.iter().any(|s| s.id == format!("s{n:x}")) {
        n += 1;
    }
    silence.id = format!("s{n:x}");
    let id = silence.id.clone();
    file.silences.push(silence);
    write(state_dir, &file)?;
    Ok(id)
}

/// Removes the silence `id` under the silences lock; false when there is none.
pub fn remove(state_dir: &Path, id: &str) -> Result<bool, String> {
    remove_locked(&lock(state_dir)?, state_dir, id)
}

/// [`remove`], waiting at most `wait` for the lock (`DELETE /silences/{id}`).
#[cfg_attr(not(feature = "api"), allow(dead_code))]
pub(crate) fn remove_within(state_dir: &Path, id: &str, wait: Duration) -> Result<bool, String> {
    remove_locked(&lock_within(state_dir, wait)?, state_dir, id)
}

fn remove_locked(_lock: &SilencesLock, state_dir: &Path, id: &str) -> Result<bool, String> {
    let mut file = read(state_dir)?;
    let before = file.silences.len();
    file.silences.retain(|s| s.id != id);
    if file.silences.len() == before {
        return Ok(false);
    }
    write(state_dir, &file)?;
    Ok(true)
}

/// What the watcher compares: mtime, length, device and inode (an atomic rewrite of the same
/// length within one timestamp tick still has a new inode).
type Stamp = (SystemTime, u64, u64, u64);

/// Watches the silences file for changes (one `stat` per tick), and the shared silences
/// the Redis thread read (a generation compared under a mutex held for that only).
pub struct Watcher {
    state_dir: PathBuf,
    seen: Option<Stamp>,
    shared: Option<crate::store::mirror::SharedSilences>,
    seen_shared: u64,
}

impl Watcher {
    /// Watches `state_dir/silences.json`.
    pub fn new(state_dir: &Path) -> Watcher {
        Watcher { state_dir: state_dir.to_path_buf(), seen: None, shared: None, seen_shared: 0 }
    }

    /// Also merges the shared silences (`state.store`) the Redis thread hands over.
    pub(crate) fn with_shared(mut self, shared: crate::store::mirror::SharedSilences) -> Watcher {
        self.shared = Some(shared);
        self
    }

    fn stamp(&self) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(path(&self.state_dir)).ok()?;
        Some((m.modified().ok()?, m.len(), m.dev(), m.ino()))
    }

    /// True when the file or the shared set changed since the last [`Watcher::merged`].
    pub fn changed(&self) -> bool {
        self.stamp() != self.seen
            || self.shared.as_ref().is_some_and(|s| s.latest().0 != self.seen_shared)
    }

    /// The config's silences, the file's (a broken file is logged and ignored) and the
    /// shared ones, those whose `host` glob does not match this agent's `host` left out.
    pub fn merged(&mut self, config: &Config, log_errors: bool) -> Vec<Silence> {
        self.seen = self.stamp();
        let mut all = config.silences.clone();
        match read(&self.state_dir) {
            Ok(f) => all.extend(f.silences),
            Err(e) if log_errors => log::warn!("silences file ignored: {e}"),
            Err(_) => {}
        }
        if let Some(shared) = &self.shared {
            let (generation, silences) = shared.latest();
            self.seen_shared = generation;
            all.extend(silences.iter().cloned());
        }
        all.retain(|s| s.applies_to_host(&config.host));
        for s in all.iter().filter(|_| log_errors) {
            if let Some(e) = s.schedule.as_ref().and_then(|s| s.zone_error()) {
                log::warn!(id = s.id.as_str(); "scheduled silence never active: {e}");
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(comment: &str) -> Silence {
        Silence {
            host: None,
            id: String::new(),
            rule: Some("disk_*".into()),
            matchers: Default::default(),
            until: 2e9,
            schedule: None,
            comment: comment.into(),
        }
    }

    #[test]
    fn an_add_that_would_make_the_file_unreadable_is_refused_and_the_file_kept() {
        let dir = crate::testutil::tempdir("silences", "cap");
        let big = "x".repeat(1000);
        let file = |n: usize| SilenceFile {
            silences: (0..n).map(|i| Silence { id: format!("s{i:07}"), ..silence(&big) }).collect(),
        };
        let size = |n: usize| serde_json::to_vec_pretty(&file(n)).unwrap().len() as u64;
        // As many as fit under the cap: one more does not.
        let n = ((crate::localfile::SILENCES_MAX_BYTES - size(0)) / (size(2) - size(1))) as usize;
        write(&dir, &file(n)).unwrap();
        let e = add(&dir, silence(&big), 1e9).unwrap_err();
        assert!(e.contains("remove some silences"), "{e}");
        assert_eq!(read(&dir).unwrap().silences.len(), n, "the file must stay readable");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_silence_needs_an_end_or_a_schedule_and_a_lost_zone_spoils_only_its_own() {
        // One silence that cannot be read is left out; the others stay in force.
        let f = parse(
            br#"{"silences": [{"id": "s1", "rule": "x"},
            {"id": "s0", "rule": "y", "until": 2e9}]}"#,
        )
        .unwrap();
        assert_eq!(f.silences.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["s0"]);
        assert!(parse(br#"{"silences": 3}"#).is_err(), "a file of the wrong shape is an error");
        let f = parse(
            br#"{"silences": [
              {"id": "s1", "schedule": {"days": ["sun"], "from": "02:00", "to": "04:00", "tz": "Gone/Zone"}},
              {"id": "s2", "schedule": {"from": "02:00", "to": "04:00", "tz": "Europe/Lisbon"}, "until": 2e9}
            ]}"#,
        )
        .unwrap();
        let zone_error = f.silences[0].schedule.as_ref().and_then(|s| s.zone_error());
        assert!(zone_error.unwrap().contains("unknown time zone \"Gone/Zone\""), "{zone_error:?}");
        assert!(f.silences[0].until.is_infinite());
        assert_eq!(f.silences[1].until, 2e9);
        assert!(f.silences[1].schedule.as_ref().unwrap().zone_error().is_none());
        let bad = br#"{"silences": [{"schedule": {"from": "02:00", "to": "02:00"}}]}"#;
        assert!(parse(bad).unwrap().silences.is_empty(), "a broken schedule is left out");
    }

    #[test]
    fn the_api_waits_for_a_held_lock_a_bounded_time() {
        let dir = crate::testutil::tempdir("silences", "held");
        let held = lock(&dir).unwrap();
        let started = Instant::now();
        let e = add_within(&dir, silence(""), 1e9, Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("held by another process"), "{e}");
        assert!(remove_within(&dir, "s1", Duration::from_millis(100)).is_err());
        assert!(started.elapsed() < Duration::from_secs(30));
        drop(held);
        let id = add_within(&dir, silence(""), 1e9, Duration::from_millis(100)).unwrap();
        assert_eq!(remove_within(&dir, &id, Duration::from_millis(100)), Ok(true));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_lock_file_that_cannot_be_opened_is_a_permission_problem_not_a_held_lock() {
        let dir = crate::testutil::tempdir("silences", "eacces");
        fs::write(lock_path(&dir), b"").unwrap();
        let e = open_error(&dir, &std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        let start = format!("{}: permission denied for uid ", lock_path(&dir).display());
        assert!(e.starts_with(&start), "{e}");
        assert!(e.contains("it belongs to uid ") && !e.contains("held by"), "{e}");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            // Not root: a lock file that is not ours to read cannot be opened, and says so.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(lock_path(&dir), fs::Permissions::from_mode(0o200)).unwrap();
            let e = add_within(&dir, silence(""), 1e9, Duration::from_millis(50)).unwrap_err();
            assert!(e.contains("permission denied for uid"), "{e}");
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_lock_file_deleted_while_waiting_is_locked_again() {
        let dir = crate::testutil::tempdir("silences", "relock");
        let first = lock(&dir).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let d = dir.clone();
        let waiter = std::thread::spawn(move || {
            let l = lock(&d).unwrap();
            tx.send(()).unwrap();
            drop(l);
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Deleting the file lets a third one in on a new file; the waiter must not join it.
        fs::remove_file(lock_path(&dir)).unwrap();
        let third = lock(&dir).unwrap();
        drop(first);
        let waited = rx.recv_timeout(std::time::Duration::from_millis(300));
        assert!(waited.is_err(), "the waiter took a lock on the deleted file");
        drop(third);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_watcher_keeps_only_silences_whose_host_glob_matches_and_sees_shared_changes() {
        let dir = crate::testutil::tempdir("silences", "host");
        let file = SilenceFile {
            silences: vec![
                Silence { id: "s1".into(), host: Some("web-*".into()), ..silence("web") },
                Silence { id: "s2".into(), host: Some("db-*".into()), ..silence("db") },
                Silence { id: "s3".into(), ..silence("every host") },
            ],
        };
        write(&dir, &file).unwrap();
        let text = format!(r#"{{"host": "web-1", "state_dir": {:?}}}"#, dir.display().to_string());
        let config = crate::config::load_str(&text, "c.json", &|_| None).unwrap();
        let shared = crate::store::mirror::SharedSilences::default();
        let mut w = Watcher::new(&dir).with_shared(shared.clone());
        let ids = |v: Vec<Silence>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(w.merged(&config, false)), ["s1", "s3"]);
        assert!(!w.changed());
        shared.publish_for_tests(vec![
            Silence { id: "r1".into(), host: Some("web-?".into()), ..silence("shared") },
            Silence { id: "r2".into(), host: Some("db-1".into()), ..silence("shared") },
        ]);
        assert!(w.changed(), "a new shared set is a change");
        assert_eq!(ids(w.merged(&config, false)), ["s1", "s3", "r1"]);
        assert!(!w.changed());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_watcher_sees_a_same_length_rewrite_in_the_same_tick() {
        let dir = crate::testutil::tempdir("silences", "inode");
        fs::write(path(&dir), br#"{"silences": []}"#).unwrap();
        let mtime = fs::metadata(path(&dir)).unwrap().modified().unwrap();
        let mut w = Watcher::new(&dir);
        w.seen = w.stamp();
        assert!(!w.changed());
        let tmp = dir.join("silences.new");
        fs::write(&tmp, br#"{ "silences":[]}"#).unwrap();
        fs::File::options().write(true).open(&tmp).unwrap().set_modified(mtime).unwrap();
        fs::rename(&tmp, path(&dir)).unwrap();
        let m = fs::metadata(path(&dir)).unwrap();
        assert_eq!((m.modified().unwrap(), m.len()), (mtime, 16));
        assert!(w.changed());
        let _ = fs::remove_dir_all(&dir);
    }
}
