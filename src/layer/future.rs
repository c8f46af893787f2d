//! The response future of [`Isolation`](super::Isolation).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::{guarded, ResponseBody};
use crate::bind::{with_bound, Outcome, ScopeHandle};

pin_project! {
    /// Response future of [`Isolation`](super::Isolation): polls (and drops) the inner future
    /// with the request's scope bound, captures a panic raised while polling it, and wraps the
    /// response body in [`ResponseBody`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        // `None` while bound, and once handed to the response body.
        handle: Option<ScopeHandle>,
        capture_server_errors: bool,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.inner.is_some() {
                // Dropped before it produced a response: the request was cancelled. The inner
                // future is dropped with the scope bound, and a guard leaked by its `Drop`
                // impls is purged.
                let mut inner = this.inner;
                with_bound(this.handle, || inner.set(None));
                if let Some(handle) = this.handle {
                    handle.end(Outcome::Cancelled);
                }
            }
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").field("scope", &self.handle).finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    /// `inner` is `None` only if the inner service's `call` panicked, and then this future
    /// is never returned (the panic goes on).
    pub(crate) fn new(inner: Option<F>, handle: Option<ScopeHandle>, capture_server_errors: bool) -> Self {
        Self { inner, handle, capture_server_errors }
    }
}

/// Not reached: a stand-in handle, out of line.
#[cold]
#[inline(never)]
fn unbound() -> ScopeHandle {
    ScopeHandle::new(crate::Scope::default())
}

/// Out of line: most responses are not 5xx, and this code would take instruction cache
/// space on every request.
#[cold]
#[inline(never)]
fn capture_server_error(handle: &ScopeHandle, status: http::StatusCode) {
    let message = format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let mut event = crate::Event::message(message.trim_end(), crate::Level::Error);
    event.tags.insert("http.status_code".into(), status.as_u16().to_string());
    crate::client::capture(handle.clone(), None, event);
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut inner = this.inner;
        assert!(inner.is_some(), "`isoscope::layer::ResponseFuture` polled after completion");
        // One binding covers the poll and, once it is ready, the drop of the inner future.
        let mut ready = None;
        guarded(this.handle, || {
            if let Some(Poll::Ready(result)) = inner.as_mut().as_pin_mut().map(|f| f.poll(cx)) {
                inner.set(None);
                ready = Some(result);
            }
        });
        let Some(result) = ready else { return Poll::Pending };
        // The future is done: the response body takes the handle over.
        // (Always back in its slot once the binding has ended; never the default's.)
        let handle = this.handle.take().unwrap_or_else(unbound);
        Poll::Ready(match result {
            Ok(response) => {
                if *this.capture_server_errors && response.status().is_server_error() {
                    capture_server_error(&handle, response.status());
                }
                Ok(response.map(|body| ResponseBody::new(body, handle)))
            }
            Err(err) => {
                handle.end(Outcome::Completed);
                Err(err)
            }
        })
    }
}
