//! The thread's binding state, in one owner ([`ThreadBindings`]): the guard stack with its ids,
//! the floor that marks open, and the cached request base. Everything else in `bind/` reaches
//! this state through the few functions here — push, remove, find, mark, purge — never
//! through the thread-local itself.
//!
//! # Why the reset path cannot panic or leak
//!
//! - **Cannot panic.** Every access goes through `LocalKey::try_with` and `RefCell::try_borrow*`:
//!   during thread-local destruction, or if a `Drop` impl re-enters while a borrow is held,
//!   the access does nothing instead of panicking (the LookupError Python's SDK raised). No
//!   function here indexes out of range (`get`, `split_off` at a checked depth) or unwraps.
//! - **Cannot re-enter while borrowed.** What leaves the stack (a removed entry, a purged
//!   run, a replaced base) is moved out under the borrow and dropped after it ends: a handle's
//!   `Drop` may run an event processor's `Drop`, which may call back into isoscope.
//! - **Cannot leak.** Every entry point opens a [`Mark`] (the stack's depth) and its `Drop` —
//!   which also runs on unwind — cuts the stack back to that depth, so whatever user code
//!   pushed inside and never removed (a `mem::forget`-ed guard, a panic mid-way) is purged
//!   before the thread runs anything else. An entry owned by another task (leaked by code
//!   that ran outside our entry points, then left this thread) is purged by the next lookup.
//! - **Cannot mistake a guard.** Each entry has an id, unique per thread and never reused; a
//!   guard removes its entry only if the id at its position still matches (a guard whose
//!   entry was purged does nothing), and an entry removed out of order leaves a tombstone.
//!
//! The guard stack follows opentelemetry-rust's `ContextStack` redesign (PR #2378).

use std::cell::RefCell;
use std::sync::Arc;

use super::handle::ScopeHandle;
use crate::scope::Scope;
use crate::stats::{incr, COUNTERS};

/// More nested guards than this on one thread are refused (the guard is a no-op).
const MAX_GUARDS: usize = 1024;

thread_local! {
    /// This thread's binding state: entering and leaving a binding is one borrow each way.
    static STATE: RefCell<ThreadBindings> = const {
        RefCell::new(ThreadBindings { slots: Vec::new(), next_id: 1, floor: 0, base: None })
    };
}

/// One guard's binding.
struct Entry {
    id: u64,
    /// The task that made it (`None`: plain-thread code).
    owner: Option<tokio::task::Id>,
    handle: ScopeHandle,
}

/// Everything this thread knows about bindings.
struct ThreadBindings {
    /// The guard stack. `None` is a tombstone left by a guard dropped out of order.
    slots: Vec<Option<Entry>>,
    /// Per-thread, never reused: a stale guard can never match a newer entry.
    next_id: u64,
    /// Depth at the innermost open mark. Entries below the floor were made outside it and are
    /// not seen inside it: the innermost binding wins, whether it is a guard or a bind.
    floor: usize,
    /// This thread's copy of the request base: `(version of the default scope, its copy)`; a
    /// `None` copy stands for the empty scope (the usual case).
    base: Option<(u64, Option<Arc<Scope>>)>,
}

impl ThreadBindings {
    fn pop_tombstones(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        // Entries below the floor can be dropped from inside a binding (a guard moved into a
        // future): a floor above the stack would hide the next guard.
        self.floor = self.floor.min(self.slots.len());
    }
}

/// Runs `f` on this thread's state; `None` when it cannot be reached (thread-local
/// destruction, or a borrow already held). Whatever `f` returns is dropped by the caller,
/// after the borrow.
#[inline]
fn with<R>(f: impl FnOnce(&mut ThreadBindings) -> R) -> Option<R> {
    STATE.try_with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s))).ok().flatten()
}

fn count_purged(removed: &[Option<Entry>]) {
    for _ in removed.iter().flatten() {
        incr(&COUNTERS.leaked_bindings_purged);
    }
}

/// Pushes a guard's entry for `handle`; its `(position, id)`, or `None` when refused (stack
/// full or state unreachable: the handle is dropped after the borrow).
pub(super) fn push(handle: ScopeHandle) -> Option<(usize, u64)> {
    let owner = tokio::task::try_id();
    let mut handle = Some(handle);
    let pushed = with(|s| {
        if s.slots.len() >= MAX_GUARDS {
            return None;
        }
        let id = s.next_id;
        s.next_id += 1;
        s.slots.push(Some(Entry { id, owner, handle: handle.take()? }));
        Some((s.slots.len() - 1, id))
    })
    .flatten();
    if pushed.is_none() {
        incr(&COUNTERS.bindings_refused);
    }
    drop(handle); // outside the borrow
    pushed
}

/// What removing a guard's entry did.
pub(super) enum Removal {
    /// Removed; `false`: it was not on top (a tombstone was left).
    Removed { on_top: bool },
    /// Its entry was gone already (purged by a mark or a lookup).
    Stale,
    /// The state could not be reached (thread teardown): nothing to do.
    Unreachable,
}

/// Removes the entry at `pos` if it still has `id`.
pub(super) fn remove(pos: usize, id: u64) -> Removal {
    let removed = with(|s| {
        if !matches!(s.slots.get(pos), Some(Some(e)) if e.id == id) {
            return None;
        }
        let entry = s.slots.get_mut(pos).and_then(Option::take);
        let on_top = pos + 1 == s.slots.len();
        s.pop_tombstones();
        Some((entry, on_top))
    });
    match removed {
        Some(Some((entry, on_top))) => {
            drop(entry); // outside the borrow
            Removal::Removed { on_top }
        }
        Some(None) => Removal::Stale,
        None => Removal::Unreachable,
    }
}

/// The newest live entry made by the running task (or, on a plain thread, by no task) above
/// the innermost mark. Entries left by *other* tasks are stale (their task leaked them on this
/// reused thread) and are purged on the way.
pub(super) fn find() -> Option<ScopeHandle> {
    let (found, purged) = with(|s| {
        if s.slots.is_empty() {
            return (None, Vec::new());
        }
        let me = tokio::task::try_id();
        let floor = s.floor;
        let mut purged = Vec::new();
        let mut found = None;
        for (i, slot) in s.slots.iter_mut().enumerate().rev() {
            match slot {
                Some(entry) if entry.owner == me && i >= floor => {
                    found = Some(entry.handle.clone());
                    break;
                }
                // Made by another task that is not running here now: it leaked it.
                Some(entry) if entry.owner.is_some() => purged.push(slot.take()),
                // Ours but outside the innermost binding, or made by plain-thread code around
                // a `block_on`: not what this code should see, but still live.
                _ => {}
            }
        }
        s.pop_tombstones();
        (found, purged)
    })
    .unwrap_or_default();
    count_purged(&purged);
    drop(purged); // outside the borrow
    found
}

/// Whether the guard stack is empty (or unreachable): the fast path of a lookup.
#[inline]
pub(super) fn is_empty() -> bool {
    STATE.try_with(|s| s.try_borrow().map_or(true, |s| s.slots.is_empty())).unwrap_or(true)
}

/// Entries (live or tombstoned) on the guard stack.
pub(crate) fn depth() -> usize {
    STATE.try_with(|s| s.try_borrow().map(|s| s.slots.len()).unwrap_or(0)).unwrap_or(0)
}

/// Removes every entry at `depth` and above and restores the floor to `floor`. Out of line:
/// bindings almost never leak.
#[cold]
#[inline(never)]
pub(super) fn purge_above(depth: usize, floor: usize) {
    let removed = with(|s| {
        let removed = (s.slots.len() > depth).then(|| s.slots.split_off(depth));
        s.floor = floor.min(s.slots.len());
        removed
    })
    .flatten();
    if let Some(removed) = removed {
        count_purged(&removed);
        drop(removed); // outside the borrow
    }
}

/// A mark on this thread's binding state, open until dropped: every entry point opens one
/// around the code it runs.
///
/// Opening it records the stack's depth and makes entries below it invisible (the new binding
/// wins). Dropping it (also on unwind) restores the floor and purges what was pushed inside
/// and never removed.
pub(super) struct Mark {
    /// `(depth, previous floor)`; `None` when the state is unreachable (thread teardown: then
    /// nothing may be bound either).
    saved: Option<(usize, usize)>,
}

impl Mark {
    /// Opens a mark.
    #[inline]
    pub(super) fn open() -> Self {
        let saved = with(|s| {
            let depth = s.slots.len();
            (depth, std::mem::replace(&mut s.floor, depth))
        });
        Self { saved }
    }

    /// Whether the thread's state is alive, so a tokio task-local may be bound (tokio panics on
    /// binding one during thread-local destruction).
    #[inline]
    pub(super) fn can_bind(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for Mark {
    #[inline]
    fn drop(&mut self) {
        let Some((depth, floor)) = self.saved else { return };
        // Restore the floor in one borrow; what was pushed inside and left behind (rare) is cut
        // in a second one.
        let leaked = with(|s| {
            let leaked = s.slots.len() > depth;
            if !leaked {
                s.floor = floor.min(s.slots.len());
            }
            leaked
        });
        if leaked == Some(true) {
            purge_above(depth, floor);
        }
    }
}

/// This thread's copy of the request base if it was taken at `version` of the default scope
/// (`Some(None)`: the empty scope).
#[inline]
pub(super) fn cached_base(version: u64) -> Option<Option<Arc<Scope>>> {
    STATE
        .try_with(|s| match &s.try_borrow().ok()?.base {
            Some((v, base)) if *v == version => Some(base.clone()),
            _ => None,
        })
        .ok()
        .flatten()
}

/// Whether this thread's copy of the request base is fresh for `version` and empty.
#[inline]
pub(super) fn base_is_empty(version: u64) -> Option<bool> {
    STATE
        .try_with(|s| {
            let s = s.try_borrow().ok()?;
            Some(matches!(&s.base, Some((v, None)) if *v == version))
        })
        .ok()
        .flatten()
}

/// Keeps `base` as this thread's copy of the request base at `version`.
pub(super) fn store_base(version: u64, base: Option<Arc<Scope>>) {
    let replaced = with(|s| s.base.replace((version, base))).flatten();
    drop(replaced); // outside the borrow: a processor's Drop may call back into isoscope
}
