//! Helpers the unit tests share (compiled for tests only): a fresh temporary directory per
//! test, the flap notifications channels render ([`flap_events`]), and [`allocations`], which counts the heap allocations of a closure on the calling
//! thread (the unit-test binary's global allocator counts, per thread, only inside it, so
//! tests running in parallel do not disturb each other). Not for integration tests, which
//! have `tests/common` (and `tests/alloc_free.rs` its own allocator).

use std::path::PathBuf;

/// A fresh, empty directory under the system temp dir, unique to `area`, `name` and this
/// process.
pub(crate) fn tempdir(area: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hostwatch-{area}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a temp dir");
    d
}

/// Forwards to the system allocator; counts allocations of threads inside [`allocations`].
struct Counting;

thread_local! {
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static COUNT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_one() {
    // `try_with`: the allocator may run while this thread's locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            COUNT.with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_one();
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        count_one();
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many heap allocations (and reallocations) `f` made on this thread.
#[cfg_attr(not(feature = "api"), allow(dead_code))]
pub(crate) fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(|n| n.get())
}

/// A `flapping`, and the `flap_end`s that say ok and firing, as the engine makes them.
#[cfg(any(feature = "slack", feature = "teams", feature = "email"))]
pub(crate) fn flap_events(base: crate::event::AlertEvent) -> [crate::event::AlertEvent; 3] {
    let mut flapping = base.clone();
    flapping.event = crate::alerts::EventKind::Flapping;
    flapping.context.flap_percent = Some(62.5);
    flapping.context.reason = Some("flapping: 62.5% of the last 21 evaluations changed state; no firing or resolved until it settles".into());
    let mut ok = base.clone();
    ok.event = crate::alerts::EventKind::FlapEnd;
    ok.context.flap_percent = Some(21.1);
    ok.context.state = Some(crate::event::CurrentState::Ok);
    ok.context.reason =
        Some("no longer flapping (21.1% of the last 21 evaluations changed state); ok".into());
    let mut firing = ok.clone();
    firing.context.state = Some(crate::event::CurrentState::Firing);
    firing.context.reason = Some(
        "no longer flapping (21.1% of the last 21 evaluations changed state); still firing".into(),
    );
    [flapping, ok, firing]
}
