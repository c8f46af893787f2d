//! The response body of [`Isolation`](super::Isolation).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::guard_panic;
use crate::binding::{Boundary, ACTIVE};
use crate::handle::{Outcome, ScopeHandle};

pin_project! {
    /// Response body of [`Isolation`](super::Isolation). hyper polls the body after the
    /// response future has completed, so the request's scope is bound again for every
    /// `poll_frame` and while the body is dropped. The request ends (completed) at end of
    /// stream, or (cancelled) when the body is dropped before it.
    pub struct ResponseBody<B> {
        #[pin]
        inner: Option<B>,
        handle: ScopeHandle,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.inner.is_none() {
                return;
            }
            let _boundary = Boundary::enter();
            let mut inner = this.inner;
            ACTIVE.sync_scope(this.handle.clone(), || inner.set(None));
            // A no-op if end of stream was already seen (then the request completed).
            this.handle.end(Outcome::Cancelled);
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
            handle.end(Outcome::Completed);
        }
        Self { inner: Some(inner), handle }
    }
}

impl<B> ResponseBody<B> {
    /// The request's scope.
    pub fn scope(&self) -> &ScopeHandle {
        &self.handle
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else { return Poll::Ready(None) };
        let _boundary = Boundary::enter();
        let handle = &*this.handle;
        let polled = guard_panic(handle, || ACTIVE.sync_scope(handle.clone(), || inner.poll_frame(cx)));
        if let Poll::Ready(None) = polled {
            handle.end(Outcome::Completed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let at_end = self.inner.as_ref().is_none_or(Body::is_end_stream);
        if at_end {
            self.handle.end(Outcome::Completed);
        }
        at_end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
