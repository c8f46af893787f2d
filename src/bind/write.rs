//! The free functions' way into the active scopes: our own edits of the active isolation scope
//! (tags, extra, contexts, user, breadcrumbs) and the current scope of `with_scope` blocks.
//!
//! Only the thin wrappers here are generic; the lookup-and-lock code runs through one copy
//! ([`active::edit_active`]), not one per argument type in every caller's crate.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use super::active::{self, sync_with_current, with_current};
use super::base::global;
use crate::event::{observe_order, Breadcrumb, User};
use crate::scope::Scope;

/// Records a breadcrumb (after `before_breadcrumb`, which the caller ran) in the active
/// isolation scope.
#[inline(always)]
pub(crate) fn record_breadcrumb(mut breadcrumb: Breadcrumb) {
    breadcrumb.seq = observe_order();
    // Taken from its slot where it is pushed: a breadcrumb moved through closures is copied
    // (over 100 bytes) at every step.
    edit_active_with(breadcrumb, Scope::push_isolation_breadcrumb_from);
}

/// A breadcrumb about to be recorded, numbered in recording order and shared from here on:
/// the pointer, not the breadcrumb, travels to the scope (and to a log made of the same
/// record). Moved straight into the `Arc`: every move of a breadcrumb copies 136 bytes.
#[inline(always)]
pub(crate) fn share_breadcrumb(mut breadcrumb: Breadcrumb) -> Arc<Breadcrumb> {
    breadcrumb.seq = observe_order();
    Arc::new(breadcrumb)
}

/// Records a breadcrumb made by [`share_breadcrumb`] in the active isolation scope.
#[inline(always)]
pub(crate) fn record_shared_breadcrumb(breadcrumb: Arc<Breadcrumb>) {
    edit_active(move |s, global| s.push_shared_isolation_breadcrumb(breadcrumb, global));
}

/// Applies one of our own edits (no user code) to the active isolation scope; the `bool` says
/// whether that is the global scope.
fn edit_active(edit: impl FnOnce(&mut Scope, bool) + 'static) {
    edit_active_with(edit, |s, edit, global| {
        if let Some(edit) = edit.take() {
            edit(s, global);
        }
    });
}

/// [`edit_active`] for an edit that takes `value` out of its slot itself, where it stores it
/// (nothing moved before it is needed); `edit` leaves the slot full if it did not run.
/// Inlined: an out-of-line copy for breadcrumbs cost 50 instructions a request more.
#[inline(always)]
fn edit_active_with<T: 'static>(value: T, edit: impl Fn(&mut Scope, &mut Option<T>, bool) + Copy + 'static) {
    let mut slot = Some(value);
    let pending = active::edit_active(&mut |s, global| edit(s, &mut slot, global));
    if let (Some(scope), Some(value)) = (pending, slot) {
        // Inside a `configure` closure: queued until it returns.
        let global = scope == *global();
        scope.write_later(move |s| edit(s, &mut Some(value), global));
    }
}

/// [`edit_active`] for edits that do not care which scope they write.
fn write_active(edit: impl FnOnce(&mut Scope) + 'static) {
    edit_active(move |s, _| edit(s));
}

/// Sets a tag on the active isolation scope.
#[inline(never)]
pub(crate) fn set_tag(key: Cow<'static, str>, value: Cow<'static, str>) {
    write_active(move |s| s.set_tag(key, value));
}

/// Sets an extra value on the active isolation scope.
#[inline(never)]
pub(crate) fn set_extra(key: String, value: serde_json::Value) {
    write_active(move |s| s.set_extra(key, value));
}

/// Adds an attachment to the active isolation scope.
pub(crate) fn add_attachment(attachment: crate::event::Attachment) {
    write_active(move |s| s.add_attachment(attachment));
}

/// Sets or clears the user on the active isolation scope.
pub(crate) fn set_user(user: Option<User>) {
    write_active(move |s| s.set_user(user));
}

/// Sets a context on the active isolation scope.
#[inline(never)]
pub(crate) fn set_context(key: String, value: serde_json::Value) {
    write_active(move |s| s.set_context(key, value));
}

/// Runs `f` with a current scope made by `configure` (see `isoscope::with_scope`).
pub(crate) fn with_scope<R>(configure: impl FnOnce(&mut Scope), f: impl FnOnce() -> R) -> R {
    sync_with_current(Some(new_current(configure)), f)
}

/// Binds a current scope made by `configure` to `future` (see `isoscope::with_scope_async`).
pub(crate) fn with_scope_async<F: Future>(
    configure: impl FnOnce(&mut Scope),
    future: F,
) -> impl Future<Output = F::Output> {
    with_current(Some(new_current(configure)), future)
}

/// A fork of the enclosing current scope (if any) edited by `configure`, for `with_scope`.
fn new_current(configure: impl FnOnce(&mut Scope)) -> Arc<Scope> {
    let mut scope = active::current().map(|s| Scope::clone(&s)).unwrap_or_default();
    configure(&mut scope);
    // Its fields shared from here on, so that copying it for a nested `with_scope` is O(1).
    Arc::new(scope.fork())
}
