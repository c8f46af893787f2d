//! Scopes of tokio tasks bound to no scope (a plain `tokio::spawn`): their writes stay in a
//! scope of that task, so they never reach the process default that every request forks.
//!
//! The rule: code outside any tokio task (`main`, start-up, plain threads) configures the
//! process default, the base of every request. A write from inside a tokio task that nothing
//! bound goes to a scope of that task only, keyed by its `tokio::task::Id` (ids are never
//! reused), forked from the request base on the task's first write and counted in
//! `stats().writes_unbound`. tokio says nothing when a task ends, so the table is bounded: at
//! most [`MAX_TASKS`] tasks' scopes are kept, and when it is full the least recently used half
//! is dropped (counted in `unbound_scopes_evicted`); a million short tasks that each write once
//! hold at most [`MAX_TASKS`] scopes.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::context::request_base;
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

/// The running task's scope, if it is a tokio task that has one.
pub(crate) fn existing() -> Option<ScopeHandle> {
    let id = tokio::task::try_id()?;
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

/// The running task's scope for a write, made on first use; `None` outside a tokio task. Every
/// call is an unbound write and counted.
pub(crate) fn for_write() -> Option<ScopeHandle> {
    tokio::task::try_id()?;
    incr(&COUNTERS.writes_unbound);
    crate::debug::once(crate::debug::Problem::UnboundWrite);
    own()
}

/// The running task's scope, made on first use; `None` outside a tokio task. (What
/// `isolation_scope()` hands out there: whatever is written through that handle stays in the
/// task.)
pub(crate) fn own() -> Option<ScopeHandle> {
    let id = tokio::task::try_id()?;
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
