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
//!  the thread's binding state: guard stack, ids, floor, marks, cached base ─ stack.rs (one owner)
//!  lookup of the active isolation scope: active::find(Access::{Read, Own, Write})
//!    1. newest live EnterGuard entry of the running task   ─ guard.rs → stack.rs
//!    2. the tokio task-local ISOLATION                      ─ active.rs: bind_sync, Binding
//!    3. an unbound task's or non-start-up thread's own scope ─ unbound.rs (bounded)
//!    4. the process default isolation scope (the base)     ─ base.rs (start-up code)
//!
//!  spawn / spawn_blocking / thread::spawn / bind_scope   ─ propagate.rs (Fork | Share | None)
//!  set_tag, add_breadcrumb, with_scope, ...              ─ write.rs → active::edit_active
//!  configure() re-entrancy (queued work)                 ─ reentrant.rs
//! ```

mod active;
mod base;
mod guard;
mod handle;
mod propagate;
pub(crate) mod reentrant;
mod stack;
mod unbound;
mod write;

pub(crate) use active::{bind_sync, bound, current, find, request_starts_empty, Access, Enter};
pub(crate) use base::{global, request_base};
pub use guard::EnterGuard;
pub use handle::{Outcome, ScopeHandle};
pub(crate) use propagate::set_policy;
pub use propagate::{spawn, spawn_blocking, thread, Bound, Propagation, ScopeFutureExt};
pub(crate) use stack::depth as stack_depth;
pub(crate) use unbound::called_init;
pub(crate) use write::{
    add_attachment, record_breadcrumb, record_shared_breadcrumb, set_context, set_extra, set_tag, set_user,
    share_breadcrumb, with_scope, with_scope_async,
};
