//! Scopes of code bound to no scope — a tokio task started with a plain `tokio::spawn`, or a
//! plain thread that is not start-up code: their writes stay in a scope of their own, so they
//! never reach the process default that every request forks.
//!
//! The rule: *start-up code* configures the process default, the base of every request. Start-up
//! code is code outside any tokio task and bound to nothing, running on a thread that called
//! `init`, or on any thread before start-up ends — when the first unit of work forks the base (a
//! request, a test client's scope, an unbound task's scope). Everything else bound to nothing
//! writes to a scope of its own, forked from the request base on its first write and counted in
//! `stats().writes_unbound`:
//!
//! - a tokio task: keyed by its `tokio::task::Id` (ids are never reused). tokio says nothing
//!   when a task ends, so the table is bounded: at most [`MAX_TASKS`] tasks' scopes are kept,
//!   and when it is full the least recently used half is dropped (counted in
//!   `unbound_scopes_evicted`); a million short tasks that each write once hold at most
//!   [`MAX_TASKS`] scopes.
//! - a plain thread (a worker pool's, a sync library's): in a thread-local, dropped with the
//!   thread, so bounded by the live threads. A handler that hands work to a pool thread which
//!   sets the user therefore changes that thread's scope, never the next request's. (A pooled
//!   thread keeps its scope from job to job: bind the request's scope to the job with
//!   `ScopeHandle::run` or `isoscope::thread::spawn` to report with it.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::base::{self, is_start_up, request_base};
use super::handle::ScopeHandle;
use crate::stats::{incr, COUNTERS};

/// Most unbound tasks whose scopes are kept at once.
pub(crate) const MAX_TASKS: usize = 1024;

struct Table {
    /// Each task's scope, and when it was last used.
    scopes: HashMap<tokio::task::Id, (ScopeHandle, u64)>,
    clock: u64,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

thread_local! {
    /// This plain thread's own scope, once it wrote after start-up.
    static THREAD_SCOPE: RefCell<Option<ScopeHandle>> = const { RefCell::new(None) };
}

/// This thread called `init`: its code outside tasks configures the base. (A scope of its own
/// it had made is dropped: it reads the base from now on.)
pub(crate) fn called_init() {
    base::mark_init_thread();
    let own = THREAD_SCOPE.try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.take())).ok().flatten();
    drop(own); // outside the borrow
}

/// Runs `f` on the table, under its lock. `f` must not drop a handle (a scope's event processor
/// may call back into isoscope when dropped): it returns what to drop, dropped after the lock.
fn with_table<R>(f: impl FnOnce(&mut Table) -> (R, Vec<ScopeHandle>)) -> R {
    let (result, dropped) = {
        let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
        let table = table.get_or_insert_with(|| Table { scopes: HashMap::new(), clock: 0 });
        f(table)
    };
    drop(dropped);
    result
}

/// The running task's or plain thread's own scope, if it has one.
pub(crate) fn existing() -> Option<ScopeHandle> {
    let Some(id) = tokio::task::try_id() else {
        return THREAD_SCOPE.try_with(|s| s.try_borrow().ok()?.clone()).ok().flatten();
    };
    with_table(|t| {
        t.clock += 1;
        let clock = t.clock;
        let found = t.scopes.get_mut(&id).map(|(handle, used)| {
            *used = clock;
            handle.clone()
        });
        (found, Vec::new())
    })
}

/// The running task's or plain thread's own scope for a write, made on first use; `None` for
/// start-up code (it writes to the base). Every other call is an unbound write and counted.
pub(crate) fn for_write() -> Option<ScopeHandle> {
    if tokio::task::try_id().is_none() && is_start_up() {
        return None;
    }
    incr(&COUNTERS.writes_unbound);
    crate::debug::once(crate::debug::Problem::UnboundWrite);
    own()
}

/// The running task's or plain thread's own scope, made on first use; `None` for start-up code.
/// (What `isolation_scope()` hands out there: whatever is written through that handle stays
/// there.)
pub(crate) fn own() -> Option<ScopeHandle> {
    let Some(id) = tokio::task::try_id() else {
        return if is_start_up() { None } else { own_thread() };
    };
    if let Some(handle) = existing() {
        return Some(handle);
    }
    // Made outside the table's lock: it reads the default scope (another lock).
    let made = ScopeHandle::forked_from(request_base());
    Some(with_table(|t| {
        t.clock += 1;
        let clock = t.clock;
        let dropped = if t.scopes.len() >= MAX_TASKS { evict_older_half(t) } else { Vec::new() };
        let handle = t.scopes.entry(id).or_insert((made, clock)).0.clone();
        (handle, dropped)
    }))
}

/// This plain thread's own scope, made on first use; `None` during thread-local destruction.
fn own_thread() -> Option<ScopeHandle> {
    if let Some(handle) = existing() {
        return Some(handle);
    }
    // Made outside the borrow: it reads the default scope.
    let made = ScopeHandle::forked_from(request_base());
    THREAD_SCOPE.try_with(|s| s.try_borrow_mut().ok().map(|mut s| s.get_or_insert(made).clone())).ok().flatten()
}

/// Drops the least recently used half of the table (O(n) per n/2 insertions).
#[cold]
fn evict_older_half(t: &mut Table) -> Vec<ScopeHandle> {
    let mut uses: Vec<u64> = t.scopes.values().map(|(_, used)| *used).collect();
    let middle = uses.len() / 2;
    let (_, cut, _) = uses.select_nth_unstable(middle);
    let cut = *cut;
    let old: Vec<tokio::task::Id> = t.scopes.iter().filter(|(_, (_, used))| *used <= cut).map(|(id, _)| *id).collect();
    // Moved out, not dropped here: the caller drops them after the lock.
    let dropped: Vec<ScopeHandle> = old.iter().filter_map(|id| t.scopes.remove(id)).map(|(h, _)| h).collect();
    for _ in &dropped {
        incr(&COUNTERS.unbound_scopes_evicted);
    }
    dropped
}

/// How many unbound tasks' scopes are kept now (for tests).
#[cfg(test)]
pub(crate) fn len() -> usize {
    with_table(|t| (t.scopes.len(), Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_thread_after_start_up_writes_to_its_own_scope_unless_it_called_init() {
        drop(request_base()); // a unit of work forks the base: start-up ends
        std::thread::spawn(|| {
            let mine = for_write().expect("not start-up code");
            assert_eq!(existing(), Some(mine.clone()), "reads see it too");
            assert_eq!(own(), Some(mine));
            called_init();
            assert!(for_write().is_none() && own().is_none() && existing().is_none(), "init's thread writes the base");
        })
        .join()
        .unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_plain_task_writes_to_its_own_scope_and_the_table_stays_bounded() {
        let seen = tokio::spawn(async {
            let mine = for_write().unwrap();
            mine.configure(|s| s.set_tag("task", "a"));
            (existing().unwrap() == mine, mine.snapshot().tag("task").map(str::to_owned))
        })
        .await
        .unwrap();
        assert_eq!(seen, (true, Some("a".to_owned())));
        assert!(existing().is_none(), "the block_on future is no task");
        for _ in 0..(3 * MAX_TASKS) {
            tokio::spawn(async {
                for_write();
            })
            .await
            .unwrap();
        }
        assert!(len() <= MAX_TASKS, "{}", len());
    }
}
