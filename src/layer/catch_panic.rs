//! Panics in the layer's polls: captured once with the request's scope, then re-raised so
//! `CatchPanicLayer` or hyper still see them.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::bind::{Outcome, ScopeHandle};

thread_local! {
    /// Address of the panic payload this thread's innermost `guarded` call captured, so nested
    /// layers (each of which catches and re-raises) capture a panic once. Cleared whenever a
    /// `guarded` call starts: a new panic can only be raised after that, so an allocator reusing
    /// the address of an earlier payload can never make a new panic look already captured.
    static LAST_CAPTURED: Cell<usize> = const { Cell::new(0) };
}

fn payload_addr(payload: &(dyn Any + Send)) -> usize {
    payload as *const (dyn Any + Send) as *const () as usize
}

/// Runs `f` (which binds `handle` itself); if it panics, captures the panic with that scope
/// (once), marks the request as panicked, and re-raises the panic.
///
/// `f` returns nothing: callers write its result into a local of theirs, because futures and
/// responses are large and a value returned through `catch_unwind` is copied in and out of its
/// unwinding slot.
pub(crate) fn guarded(handle: &ScopeHandle, f: impl FnOnce()) {
    guarded_inline(handle, f);
}

/// [`guarded`], always inlined: for the polls of the response future and body. Where the
/// compiler kept an out-of-line copy for the future's poll, the response travelled through one
/// more stack slot (callgrind over HTTP: +130 instructions a request, and whether it did
/// changed with unrelated code in the binary). `call` keeps [`guarded`]: inlined there, the
/// request is copied once more instead.
#[inline(always)]
pub(crate) fn guarded_inline(handle: &ScopeHandle, f: impl FnOnce()) {
    let _ = LAST_CAPTURED.try_with(|c| c.set(0));
    crate::client::forget_hook_capture();
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        panicked(handle, payload);
    }
}

/// Out of line (and out of the instruction cache of every request that does not panic).
#[cold]
#[inline(never)]
fn panicked(handle: &ScopeHandle, payload: Box<dyn Any + Send>) -> ! {
    let addr = payload_addr(&*payload);
    let seen = LAST_CAPTURED.try_with(|c| c.replace(addr) == addr).unwrap_or(false);
    // The panic hook captured it already (at the panic site), unless it is off or was replaced.
    if !crate::client::hook_captured() && !seen {
        // Only enqueues: never flushes on a tokio worker thread.
        crate::client::capture(handle.clone(), None, crate::Event::from_panic(&*payload));
    }
    handle.end(Outcome::Panicked);
    resume_unwind(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captures() -> u64 {
        let s = crate::stats();
        s.events_captured + s.events_dropped_no_client
    }

    #[test]
    fn each_panic_is_captured_once_even_when_its_payload_address_repeats() {
        let handle = ScopeHandle::request_from(crate::Scope::default());
        let before = captures();
        let mut payload: Box<dyn Any + Send> = Box::new(String::from("boom"));
        // The same allocation raised twice: exactly what an allocator reusing an address does.
        for _ in 0..2 {
            payload = catch_unwind(AssertUnwindSafe(|| guarded(&handle, || resume_unwind(payload)))).unwrap_err();
        }
        assert_eq!(captures() - before, 2);

        // Nested guards (nested layers) capture one panic once.
        let before = captures();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            guarded(&handle, || guarded(&handle, || std::panic::panic_any(String::from("inner"))))
        }));
        assert!(caught.is_err());
        assert_eq!(captures() - before, 1);
        assert_eq!(handle.outcome(), Some(Outcome::Panicked));
    }
}
