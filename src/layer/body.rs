//! The response body of [`Isolation`](super::Isolation).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::guarded_inline;
use crate::bind::{bind_sync, Enter, Outcome, ScopeHandle};
use crate::event::SpanStatus;

/// The request completed: its body streamed to the end. Its transaction ends here, so a
/// streamed response's duration covers the stream.
fn completed(handle: &ScopeHandle) {
    if handle.end(Outcome::Completed) {
        crate::client::finish_transaction(handle, SpanStatus::Ok);
    }
}

/// A request's response future or body dropped before the request was seen to its end:
/// `drop_inner` (dropping what it still held) runs with the scope bound, the request ends
/// cancelled unless it ended already, and its transaction ends with the status of how it ended.
pub(super) fn dropped_early(handle: &ScopeHandle, drop_inner: impl FnOnce()) {
    bind_sync(handle, Enter::Nested, drop_inner);
    // A no-op if the request ended already (its end of stream was seen, or it panicked).
    handle.end(Outcome::Cancelled);
    let status = match handle.outcome() {
        Some(Outcome::Completed) => SpanStatus::Ok,
        Some(Outcome::Panicked) => SpanStatus::InternalError,
        _ => SpanStatus::Cancelled,
    };
    crate::client::finish_transaction(handle, status);
}

pin_project! {
    /// Response body of [`Isolation`](super::Isolation). hyper polls the body after the
    /// response future has completed, so the request's scope is bound again for every
    /// `poll_frame` and while the body is dropped. The request ends (completed) at end of
    /// stream, or (cancelled) when the body is dropped before it; so does a sampled request's
    /// transaction (`cancelled` then), so a streamed response's duration covers the stream.
    ///
    /// The inner body is dropped (with the scope bound) as soon as it reports its end, so a
    /// body streamed to the end costs no binding when the wrapper is dropped later.
    pub struct ResponseBody<B> {
        #[pin]
        inner: Option<B>,
        handle: Option<ScopeHandle>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let Some(handle) = this.handle.take() else { return };
            if this.inner.is_none() {
                handle.recycle();
                return; // streamed to the end: dropped already
            }
            let mut inner = this.inner;
            dropped_early(&handle, || inner.set(None));
            handle.recycle();
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").field("scope", &self.handle).finish_non_exhaustive()
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn new(inner: B, handle: ScopeHandle) -> Self {
        if inner.is_end_stream() {
            // An empty body may never be polled: the request is complete already.
            completed(&handle);
        }
        Self { inner: Some(inner), handle: Some(handle) }
    }
}

impl<B> ResponseBody<B> {
    /// The request's scope.
    pub fn scope(&self) -> &ScopeHandle {
        self.handle.as_ref().expect("held until dropped")
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let mut inner = this.inner;
        if inner.is_none() {
            return Poll::Ready(None);
        }
        // One binding per poll covers the poll and, once the inner body is done, its drop.
        let (mut polled, mut ended) = (Poll::Ready(None), true);
        let Some(handle) = this.handle.as_ref() else { return Poll::Ready(None) };
        guarded_inline(handle, || {
            bind_sync(handle, Enter::Nested, || {
                let Some(mut body) = inner.as_mut().as_pin_mut() else { return };
                polled = body.as_mut().poll_frame(cx);
                ended = match &polled {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    Poll::Ready(Some(Err(_))) | Poll::Pending => false,
                };
                if ended {
                    inner.set(None);
                }
            });
        });
        if ended {
            completed(handle);
        } else if let Poll::Ready(Some(Err(_))) = &polled {
            // The body failed: the request ends with its drop, the transaction here.
            crate::client::finish_transaction(handle, SpanStatus::InternalError);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        // No inner body: `poll_frame` saw its end and completed the request (hyper asks again
        // after every frame; ending it again would be one more atomic operation).
        let Some(inner) = &self.inner else { return true };
        let at_end = inner.is_end_stream();
        if let (true, Some(handle)) = (at_end, &self.handle) {
            completed(handle);
        }
        at_end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
