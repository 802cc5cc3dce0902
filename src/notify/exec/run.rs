//! Running one hook: spawn it as the leader of a new process group, feed its stdin, collect
//! (bounded) stdout and stderr, and enforce the time limit by killing the whole group.
//!
//! Synchronous, with helper threads for the pipes and the wait, so that a hook that never
//! reads its stdin, floods its output, or leaves a grandchild holding the pipes cannot block
//! delivery past the deadline. Knows nothing of alerts: the caller builds the `Command`.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How much of stdout and of stderr is kept (the rest is read and dropped).
const OUTPUT_CAP: usize = 64 * 1024;
/// How long to wait for the leader to be reaped and the pipes to close after the group was
/// killed (SIGKILL cannot be ignored, so this only bounds pathological cases).
const AFTER_KILL: Duration = Duration::from_secs(5);

/// What a run came to.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The hook's exit status; `None` when it had to be killed at the deadline (or could not
    /// be waited for).
    pub status: Option<ExitStatus>,
    /// The hook was still running at the deadline and its process group was killed.
    pub timed_out: bool,
    /// The hook exited, but processes it left behind still held its stdout or stderr at the
    /// deadline and were killed with its process group.
    pub killed_leftovers: bool,
    /// The first bytes of stdout.
    pub stdout: Vec<u8>,
    /// The first bytes of stderr.
    pub stderr: Vec<u8>,
}

enum Event {
    Exited(io::Result<ExitStatus>),
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

#[derive(Default)]
struct Collected {
    exited: Option<io::Result<ExitStatus>>,
    stdout: Option<Vec<u8>>,
    stderr: Option<Vec<u8>>,
}

impl Collected {
    fn take(&mut self, event: Event) {
        match event {
            Event::Exited(s) => self.exited = Some(s),
            Event::Stdout(b) => self.stdout = Some(b),
            Event::Stderr(b) => self.stderr = Some(b),
        }
    }

    fn done(&self) -> bool {
        self.exited.is_some() && self.stdout.is_some() && self.stderr.is_some()
    }

    /// Receives until everything arrived or `deadline`; false on timeout.
    fn until(&mut self, rx: &Receiver<Event>, deadline: Instant) -> bool {
        while !self.done() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(event) => self.take(event),
                Err(RecvTimeoutError::Timeout) => return false,
                // Every sender is gone without sending: nothing more will come.
                Err(RecvTimeoutError::Disconnected) => return true,
            }
        }
        true
    }
}

/// Spawns `cmd` (its stdio and process group are set here), writes `stdin` to it and waits
/// at most `timeout` for it to exit and close its output. An error means it did not start.
pub fn run(mut cmd: Command, stdin: Vec<u8>, timeout: Duration) -> io::Result<Outcome> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn()?;
    let start = Instant::now();
    // The child is the leader of a new group whose id is its pid.
    let pgid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    if let Err(e) = start_helpers(&mut child, stdin, &tx) {
        kill_group(pgid);
        let _ = child.wait();
        return Err(e);
    }
    let waiter = tx.clone();
    let spawned = std::thread::Builder::new().name("hook-wait".into()).spawn(move || {
        let _ = waiter.send(Event::Exited(child.wait()));
    });
    if let Err(e) = spawned {
        // The closure (and the child in it) is gone; the group still has to go.
        kill_group(pgid);
        return Err(e);
    }
    drop(tx);
    let mut got = Collected::default();
    let mut outcome = Outcome::default();
    if !got.until(&rx, start + timeout) {
        outcome.timed_out = got.exited.is_none();
        outcome.killed_leftovers = got.exited.is_some();
        kill_group(pgid);
        got.until(&rx, Instant::now() + AFTER_KILL);
    }
    outcome.status = match got.exited {
        Some(Ok(status)) if !outcome.timed_out => Some(status),
        _ => None,
    };
    outcome.stdout = got.stdout.unwrap_or_default();
    outcome.stderr = got.stderr.unwrap_or_default();
    Ok(outcome)
}

/// Starts the stdin writer and the two output readers.
fn start_helpers(child: &mut Child, stdin: Vec<u8>, tx: &mpsc::Sender<Event>) -> io::Result<()> {
    if let Some(mut pipe) = child.stdin.take() {
        std::thread::Builder::new().name("hook-stdin".into()).spawn(move || {
            // A hook that does not read its stdin (EPIPE once it exits) is fine.
            let _ = pipe.write_all(&stdin);
        })?;
    }
    let out: Option<ChildStdout> = child.stdout.take();
    let tx_out = tx.clone();
    std::thread::Builder::new().name("hook-stdout".into()).spawn(move || {
        let _ = tx_out.send(Event::Stdout(out.map(read_capped).unwrap_or_default()));
    })?;
    let err: Option<ChildStderr> = child.stderr.take();
    let tx_err = tx.clone();
    std::thread::Builder::new().name("hook-stderr".into()).spawn(move || {
        let _ = tx_err.send(Event::Stderr(err.map(read_capped).unwrap_or_default()));
    })?;
    Ok(())
}

/// Reads to end of file, keeping the first [`OUTPUT_CAP`] bytes.
fn read_capped(mut r: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    kept
}

/// SIGKILLs every process of the group `pgid`.
fn kill_group(pgid: libc::pid_t) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid addresses the process
    // group the hook leads (created by `process_group(0)` at spawn), never hostwatch's own.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn stdin_reaches_the_hook_and_output_comes_back() {
        let out = run(sh("cat; echo err >&2"), b"hello".to_vec(), Duration::from_secs(30)).unwrap();
        assert_eq!(out.status.and_then(|s| s.code()), Some(0));
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr, b"err\n");
        assert!(!out.timed_out && !out.killed_leftovers);
    }

    #[test]
    fn output_is_capped() {
        let script = "head -c 200000 /dev/zero";
        let out = run(sh(script), Vec::new(), Duration::from_secs(30)).unwrap();
        assert_eq!(out.stdout.len(), OUTPUT_CAP);
    }

    #[test]
    fn a_hook_past_its_deadline_is_killed() {
        let out = run(sh("sleep 30"), Vec::new(), Duration::from_millis(200)).unwrap();
        assert!(out.timed_out);
        assert!(out.status.is_none());
    }

    #[test]
    fn a_hook_that_does_not_read_stdin_is_fine() {
        let big = vec![b'x'; 1 << 20];
        let out = run(sh("exit 3"), big, Duration::from_secs(30)).unwrap();
        assert_eq!(out.status.and_then(|s| s.code()), Some(3));
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let e = run(Command::new("/nonexistent/hook"), Vec::new(), Duration::from_secs(1));
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
