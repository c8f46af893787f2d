//! Binding: which isolation scope is active where, and carrying it into spawned work.
//!
//! A [`ScopeHandle`] is a shared, lockable [`Scope`](crate::Scope) with an id. Entry points
//! bind one for the duration of a poll, a closure or a drop (the layer's service, future and
//! body; [`ScopeHandle::run`] / [`ScopeHandle::bind`]; the spawn helpers); code that cannot
//! pass a closure pushes an [`EnterGuard`] on the thread's guard stack. Every binding restores
//! what was bound before it and purges what user code left behind, also on unwind, so nothing
//! reaches the next request on a reused thread.
//!
//! ```text
//!  lookup of the active isolation scope (context.rs)
//!    1. newest live EnterGuard entry of the running task  ─ guard.rs (tombstones, stale ids)
//!    2. the tokio task-local ISOLATION (scope / sync_scope) ─ context.rs (+ Marks: depth, purge)
//!    3. an unbound task's or non-start-up thread's own scope ─ unbound.rs (bounded)
//!    4. the process default isolation scope
//!
//!  spawn / spawn_blocking / thread::spawn / bind_scope   ─ propagate.rs (Fork | Share | None)
//!  set_tag, add_breadcrumb, with_scope, ...              ─ write.rs → context::edit_active
//!  configure() re-entrancy (queued work)                 ─ reentrant.rs
//! ```

mod context;
mod guard;
mod handle;
mod propagate;
pub(crate) mod reentrant;
mod unbound;
mod write;

pub(crate) use context::{
    active, active_for_write, active_own, current, global, marked, request_base, request_starts_empty, scoped,
    stack_depth, task_bound, with_bound,
};
pub use guard::EnterGuard;
pub use handle::{Outcome, ScopeHandle};
pub(crate) use propagate::set_policy;
pub use propagate::{spawn, spawn_blocking, thread, Bound, Propagation, ScopeFutureExt};
pub(crate) use unbound::called_init;
pub(crate) use write::{record_breadcrumb, set_context, set_extra, set_tag, set_user, with_scope, with_scope_async};
