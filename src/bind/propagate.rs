//! Propagation: carrying the active scope into spawned tasks, blocking jobs and threads.
//!
//! tokio task-locals are not inherited: a plain `tokio::spawn`, `spawn_blocking` or
//! `std::thread::spawn` starts with no request scope, and its events would go to the process
//! default scope. The helpers here capture the active scope at spawn time and bind it in the
//! new work, according to [`Propagation`] (set with `Options::propagation`):
//!
//! | policy | the child gets | the child's writes |
//! | --- | --- | --- |
//! | [`Propagation::Fork`] (default) | a fork taken at spawn time | stay in the child |
//! | [`Propagation::Share`] | the same scope | are seen by the parent |
//! | [`Propagation::None`] | a fresh fork of the process default | stay in the child |
//!
//! Jobs run by [`spawn_blocking`] and [`thread::spawn`] also purge anything an earlier job left
//! bound on the reused thread before they start, and whatever they leak when they end.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tokio::task::JoinHandle;

use super::active::{self, bind_sync, find, with_current, Access, Binding, Enter};
use super::base::request_base;
use super::handle::ScopeHandle;
use crate::scope::Scope;

/// How spawned work inherits the active isolation scope.
///
/// tokio task-locals are not inherited: a plain `tokio::spawn`, `spawn_blocking` or
/// `std::thread::spawn` starts with no request scope. [`spawn`], [`spawn_blocking`],
/// [`thread::spawn`] and [`ScopeFutureExt::bind_scope`] capture the active scope at spawn time
/// and bind it in the child according to this policy (set with `Options::propagation`):
///
/// | policy | the child gets | the child's writes |
/// | --- | --- | --- |
/// | `Fork` (default) | a fork taken at spawn time | stay in the child |
/// | `Share` | the same scope | are seen by the parent |
/// | `None` | a fresh fork of the process default | stay in the child |
///
/// Blocking jobs and threads started by the helpers also purge anything an earlier job left
/// bound on a reused thread before they start, and whatever they leak when they end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)] // the policy in force is kept in an `AtomicU8`
pub enum Propagation {
    /// The child gets a fork made at spawn time: it sees the parent's data so far, and its own
    /// changes never flow back (sentry-python's `propagate_scope` since 2.26.1).
    #[default]
    Fork,
    /// The child shares the parent's scope: its breadcrumbs and tags land in the request.
    Share,
    /// The child starts from a fresh fork of the process default, as if it were a new request.
    None,
}

static POLICY: AtomicU8 = AtomicU8::new(0);

pub(crate) fn set_policy(p: Propagation) {
    POLICY.store(p as u8, Ordering::Relaxed);
}

pub(crate) fn policy() -> Propagation {
    let stored = POLICY.load(Ordering::Relaxed);
    [Propagation::Share, Propagation::None].into_iter().find(|p| *p as u8 == stored).unwrap_or_default()
}

/// The (isolation, current) scopes a child should run with, per the policy in force.
fn for_child() -> (ScopeHandle, Option<Arc<Scope>>) {
    match policy() {
        Propagation::Fork => (find(Access::Read).fork(), active::current()),
        Propagation::Share => (find(Access::Read), active::current()),
        Propagation::None => (fresh_request_scope(), None),
    }
}

/// A fork of the process default with no breadcrumbs: the start of a new unit of work.
pub(crate) fn fresh_request_scope() -> ScopeHandle {
    ScopeHandle::forked_from(request_base())
}

pin_project! {
    /// A future with an isolation scope (and current scope) bound whenever it is polled or
    /// dropped, through the future entry point (`bind::active::Binding`). Returned by
    /// [`ScopeHandle::bind`] and [`ScopeFutureExt::bind_scope`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Bound<F: Future> {
        #[pin]
        inner: Binding<TaskLocalFuture<Option<Arc<Scope>>, F>>,
    }
}

impl<F: Future> std::fmt::Debug for Bound<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound").field("done", &self.inner.is_done()).finish_non_exhaustive()
    }
}

impl<F: Future> Bound<F> {
    pub(crate) fn new(handle: ScopeHandle, current: Option<Arc<Scope>>, future: F) -> Self {
        Self { inner: Binding::new(handle, with_current(current, future)) }
    }
}

impl<F: Future> Future for Bound<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.poll_bound(cx) {
            Some(polled) => polled,
            None => panic!("`isoscope::Bound` polled after completion"),
        }
    }
}

impl ScopeHandle {
    /// Binds this scope to a future: it is the active isolation scope whenever the future is
    /// polled or dropped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let handle = isoscope::isolation_scope().fork();
    /// handle.bind(async { isoscope::set_tag("in", "future") }).await;
    /// assert_eq!(handle.snapshot().tag("in"), Some("future"));
    /// # }
    /// ```
    pub fn bind<F: Future>(&self, future: F) -> Bound<F> {
        Bound::new(self.clone(), None, future)
    }
}

/// Binds the active scope to a future, per [`Propagation`].
///
/// ```
/// use isoscope::ScopeFutureExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let request = isoscope::isolation_scope().fork();
/// let child = request.run(|| async { isoscope::isolation_scope() }.bind_scope());
/// let seen = child.await;
/// assert_ne!(seen, request); // the default policy forks
/// # }
/// ```
pub trait ScopeFutureExt: Future + Sized {
    /// Captures the active scope now (forked, shared or fresh per `Options::propagation`) and
    /// binds it whenever the returned future is polled or dropped.
    fn bind_scope(self) -> Bound<Self> {
        let (handle, current) = for_child();
        Bound::new(handle, current, self)
    }
}

impl<F: Future> ScopeFutureExt for F {}

/// `tokio::spawn` that carries the active scope into the task, per [`Propagation`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let request = isoscope::isolation_scope().fork();
/// request.bind(async {
///     isoscope::set_tag("request", "1");
///     let child_tag = isoscope::spawn(async {
///         isoscope::isolation_scope().snapshot().tag("request").map(str::to_owned)
///     })
///     .await
///     .unwrap();
///     assert_eq!(child_tag.as_deref(), Some("1"));
/// })
/// .await;
/// # }
/// ```
///
/// # Panics
/// Like `tokio::spawn`, when called outside a tokio runtime.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.bind_scope())
}

/// `tokio::task::spawn_blocking` that carries the active scope into the job, per
/// [`Propagation`], and leaves nothing bound on the pooled thread afterwards (even when the
/// job panics or leaks an [`EnterGuard`](crate::EnterGuard)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let request = isoscope::isolation_scope().fork();
/// let tag = request
///     .bind(async {
///         isoscope::set_tag("user", "42");
///         isoscope::spawn_blocking(|| isoscope::isolation_scope().snapshot().tag("user").map(str::to_owned))
///             .await
///             .unwrap()
///     })
///     .await;
/// assert_eq!(tag.as_deref(), Some("42"));
/// # }
/// ```
///
/// # Panics
/// Like `tokio::task::spawn_blocking`, when called outside a tokio runtime.
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (handle, current) = for_child();
    tokio::task::spawn_blocking(move || bind_sync(&handle, Enter::Job(current), f))
}

/// Threads that carry the active scope.
pub mod thread {
    use super::*;

    /// `std::thread::spawn` that carries the active scope into the thread, per
    /// [`Propagation`].
    ///
    /// ```
    /// let request = isoscope::isolation_scope().fork();
    /// request.configure(|s| s.set_tag("user", "42"));
    /// let tag = request
    ///     .run(|| isoscope::thread::spawn(|| isoscope::isolation_scope().snapshot().tag("user").map(str::to_owned)))
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(tag.as_deref(), Some("42"));
    /// ```
    pub fn spawn<F, R>(f: F) -> std::thread::JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (handle, current) = for_child();
        std::thread::spawn(move || bind_sync(&handle, Enter::Job(current), f))
    }
}
