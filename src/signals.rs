//! Signal handling for the poll loop: SIGTERM/SIGINT ask it to stop, SIGHUP to reload.
//!
//! The handlers only set flags and write a byte to a self-pipe; the loop waits on that pipe
//! with a timeout, so a signal wakes it at once instead of at the next tick.

use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// What the loop was woken for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The timeout passed.
    Timeout,
    /// SIGTERM or SIGINT.
    Stop,
    /// SIGHUP.
    Reload,
}

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        RELOAD.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, a full pipe is fine.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// The installed handlers and the read end of the self-pipe.
#[derive(Debug)]
pub struct Signals {
    read_fd: RawFd,
}

impl Signals {
    /// Installs the handlers for SIGTERM, SIGINT and SIGHUP.
    pub fn install() -> std::io::Result<Signals> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills the two descriptors we pass; flags make them close-on-exec and
        // non-blocking.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        PIPE_WRITE.store(fds[1], Ordering::SeqCst);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with our extern "C" handler is a valid argument; the
            // handler only touches atomics and write(2).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        Ok(Signals { read_fd: fds[0] })
    }

    /// Waits up to `timeout` for a signal.
    pub fn wait(&self, timeout: Duration) -> Wake {
        if let Some(w) = self.pending() {
            return w;
        }
        let mut pfd = libc::pollfd { fd: self.read_fd, events: libc::POLLIN, revents: 0 };
        sleep_on(&mut pfd, timeout);
        let mut buf = [0u8; 64];
        // SAFETY: draining our own non-blocking pipe into a stack buffer.
        while unsafe { libc::read(self.read_fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        self.pending().unwrap_or(Wake::Timeout)
    }

    /// A signal that arrived and was not handled yet (stop wins over reload).
    fn pending(&self) -> Option<Wake> {
        if STOP.load(Ordering::SeqCst) {
            Some(Wake::Stop)
        } else if RELOAD.swap(false, Ordering::SeqCst) {
            Some(Wake::Reload)
        } else {
            None
        }
    }
}

/// Waits on `pfd` for at most `timeout`: `ppoll(2)` to the nanosecond on Linux, so the loop
/// wakes on its deadline; elsewhere `poll(2)` rounded up to the millisecond. (A timeout cut
/// down to whole milliseconds returns at once under 1 ms, and the loop waiting for its
/// deadline spun through its last millisecond.) EINTR simply returns early.
#[cfg(target_os = "linux")]
fn sleep_on(pfd: &mut libc::pollfd, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: one valid pollfd and a valid timespec; no signal mask change.
    unsafe { libc::ppoll(pfd, 1, &ts, std::ptr::null()) };
}

#[cfg(not(target_os = "linux"))]
fn sleep_on(pfd: &mut libc::pollfd, timeout: Duration) {
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(pfd, 1, poll_timeout_ms(timeout)) };
}

/// `poll(2)`'s timeout for `timeout`: milliseconds rounded up.
#[cfg_attr(target_os = "linux", allow(dead_code))]
fn poll_timeout_ms(timeout: Duration) -> i32 {
    timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
}

#[cfg(test)]
mod poll_timeout_tests {
    use super::*;

    #[test]
    fn a_wait_shorter_than_a_millisecond_still_sleeps() {
        assert_eq!(poll_timeout_ms(Duration::ZERO), 0);
        assert_eq!(poll_timeout_ms(Duration::from_nanos(1)), 1);
        assert_eq!(poll_timeout_ms(Duration::from_micros(300)), 1);
        assert_eq!(poll_timeout_ms(Duration::from_millis(1)), 1);
        assert_eq!(poll_timeout_ms(Duration::from_micros(1200)), 2);
        assert_eq!(poll_timeout_ms(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
