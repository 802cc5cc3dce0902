//! The SQLite history database's schema and how it is opened: WAL mode (a `sqlite3` reader
//! never blocks the writer), `synchronous=NORMAL`, a busy timeout, a quick integrity check,
//! and a file that is not a usable database set aside under a new name.
//!
//! Not for: writing slots or events (`write`), buffering or retrying (`super`).

use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The version this build writes, kept in `meta` under `schema_version`. A database with a
/// newer version is left alone (written by a newer hostwatch).
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The schema (README "SQLite history" documents it). Times are Unix seconds: `samples.ts`
/// is a slot's start (a multiple of `resolution`), `events.ts` the sample that caused it.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    key TEXT NOT NULL,
    metric TEXT NOT NULL,
    labels_json TEXT NOT NULL,
    UNIQUE (host, key)
);
CREATE TABLE IF NOT EXISTS samples (
    series_id INTEGER NOT NULL REFERENCES series(id),
    ts INTEGER NOT NULL,
    resolution INTEGER NOT NULL,
    min REAL,
    avg REAL,
    max REAL,
    last REAL,
    count INTEGER NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_ts ON samples(ts);
CREATE TABLE IF NOT EXISTS events (
    ts REAL NOT NULL,
    host TEXT NOT NULL,
    rule TEXT NOT NULL,
    series TEXT NOT NULL,
    metric TEXT NOT NULL,
    labels_json TEXT NOT NULL,
    event TEXT NOT NULL,
    severity TEXT NOT NULL,
    value REAL,
    value_text TEXT NOT NULL,
    threshold TEXT NOT NULL,
    since REAL NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL UNIQUE,
    episode_key TEXT NOT NULL,
    description TEXT
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_episode ON events(episode_key);
CREATE VIEW IF NOT EXISTS points AS
    SELECT series.host, series.key, series.metric, series.labels_json,
           samples.ts, samples.resolution, samples.min, samples.avg, samples.max,
           samples.last, samples.count
    FROM samples JOIN series ON series.id = samples.series_id;
";

/// Why a database could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The file is not a SQLite database, or is damaged: set it aside and start anew.
    Unusable(String),
    /// Anything that may heal (a missing directory, a full disk, a lock held too long).
    Failed(String),
}

/// A database up to this size gets `PRAGMA quick_check` at every open (tens of milliseconds);
/// a larger one only after a write said it is damaged, so a `once` every minute does not
/// read a month of history each time. A file that is not a database at all is noticed at
/// open whatever its size (its header).
pub(crate) const CHECK_UP_TO: u64 = 64 << 20;

/// Opens (creating if needed) the database at `path` and makes sure the schema is there;
/// runs the integrity check when the file is at most `check_up_to` bytes.
pub(crate) fn open(path: &Path, busy: Duration, check_up_to: u64) -> Result<Connection, OpenError> {
    let failed = |what: &str, e: rusqlite::Error| classify(path, what, e);
    let size = match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err(OpenError::Failed(format!("{} is not a regular file", path.display())));
        }
        Ok(meta) => meta.len(),
        Err(_) => 0,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| failed("open", e))?;
    conn.busy_timeout(busy).map_err(|e| failed("set a busy timeout", e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| failed("switch to WAL mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!(
            "history sqlite: {} stays in journal mode {mode} (WAL not possible here); readers may delay writes",
            path.display()
        );
    }
    conn.execute_batch("PRAGMA synchronous=NORMAL").map_err(|e| failed("configure", e))?;
    if size <= check_up_to {
        let said = quick_check(&conn).map_err(|e| failed("check its integrity", e))?;
        if said != "ok" {
            return Err(OpenError::Unusable(format!(
                "{} failed its integrity check: {said}",
                path.display()
            )));
        }
    }
    create(&conn).map_err(|e| failed("create the tables", e))?;
    let version: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .map_err(|e| failed("read the schema version", e))?;
    match version.as_deref().map(str::parse::<u32>) {
        Some(Ok(v)) if v == SCHEMA_VERSION => Ok(conn),
        Some(Ok(v)) if v > SCHEMA_VERSION => Err(OpenError::Failed(format!(
            "{} has schema version {v}, written by a newer hostwatch (this one writes {SCHEMA_VERSION}); \
             not touching it",
            path.display()
        ))),
        other => Err(OpenError::Failed(format!(
            "{} has an unknown schema version {other:?} in its meta table; not touching it",
            path.display()
        ))),
    }
}

/// `ok`, or the first problems `PRAGMA quick_check` found, on one line.
fn quick_check(conn: &Connection) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare("PRAGMA quick_check(3)")?;
    let rows: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(rows.join("; ").replace('\n', " "))
}

/// Creates what is missing, in one transaction.
fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {SCHEMA}
         INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
         INSERT OR REPLACE INTO meta(key, value) VALUES ('writer', 'hostwatch {}');
         COMMIT;",
        env!("CARGO_PKG_VERSION")
    ))
    .inspect_err(|_| {
        let _ = conn.execute_batch("ROLLBACK");
    })
}

/// Sorts an error: "not a database" and "corrupt" mean the file is unusable; the rest may heal.
fn classify(path: &Path, what: &str, e: rusqlite::Error) -> OpenError {
    let mut message = format!("{}: cannot {what}: {}", path.display(), describe(&e));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
        message.push_str(&format!("; the directory {} does not exist", dir.display()));
    }
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => OpenError::Unusable(message),
        _ => OpenError::Failed(message),
    }
}

/// True when an error during a write says the file is damaged.
pub(crate) fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt))
}

/// An error for operators: SQLite's message and what its code means.
pub(crate) fn describe(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(m)) => format!("{m} ({})", code_text(f.code)),
        rusqlite::Error::SqliteFailure(f, None) => code_text(f.code).to_string(),
        other => other.to_string(),
    }
}

fn code_text(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "locked by another process beyond the busy timeout"
        }
        ErrorCode::ReadOnly => "read-only",
        ErrorCode::DiskFull => "disk full",
        ErrorCode::CannotOpen => "cannot open the file",
        ErrorCode::SystemIoFailure => "I/O error",
        ErrorCode::PermissionDenied => "permission denied",
        ErrorCode::NotADatabase => "not a SQLite database",
        ErrorCode::DatabaseCorrupt => "database corrupt",
        _ => "SQLite error",
    }
}

/// Moves an unusable database (and its WAL) to `<path>.corrupt-<unix ts>` and removes its
/// shared-memory file, so a fresh database can be created at `path`. Returns the new name.
pub(crate) fn set_aside(path: &Path, now: f64) -> Result<PathBuf, String> {
    let base = format!("{}.corrupt-{}", path.display(), now.max(0.0) as u64);
    let mut aside = PathBuf::from(&base);
    let mut n = 1;
    while aside.exists() {
        aside = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &aside).map_err(|e| {
        format!("cannot move the unusable {} to {}: {e}", path.display(), aside.display())
    })?;
    let side = |p: &Path, suffix: &str| PathBuf::from(format!("{}{suffix}", p.display()));
    let wal = side(path, "-wal");
    if wal.exists() {
        let _ = std::fs::rename(&wal, side(&aside, "-wal"));
    }
    let _ = std::fs::remove_file(side(path, "-shm"));
    Ok(aside)
}
