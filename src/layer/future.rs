//! The response future of [`Isolation`](super::Isolation).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;

use super::{guard_panic, ResponseBody};
use crate::binding::Boundary;
use crate::handle::{Outcome, ScopeHandle};

pin_project! {
    /// Response future of [`Isolation`](super::Isolation): polls (and drops) the inner future
    /// with the request's scope bound, captures a panic raised while polling it, and wraps the
    /// response body in [`ResponseBody`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<TaskLocalFuture<ScopeHandle, F>>,
        handle: ScopeHandle,
        capture_server_errors: bool,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.inner.is_some() {
                // Dropped before it produced a response: the request was cancelled. The inner
                // future is dropped with the scope bound (TaskLocalFuture's own drop does
                // that), inside a boundary so a guard leaked by its `Drop` impls is purged.
                let _boundary = Boundary::enter();
                this.inner.set(None);
                this.handle.end(Outcome::Cancelled);
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
    pub(crate) fn new(
        inner: TaskLocalFuture<ScopeHandle, F>,
        handle: ScopeHandle,
        capture_server_errors: bool,
    ) -> Self {
        Self { inner: Some(inner), handle, capture_server_errors }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _boundary = Boundary::enter();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            panic!("`isoscope::layer::ResponseFuture` polled after completion");
        };
        let result = ready!(guard_panic(this.handle, || inner.poll(cx)));
        this.inner.set(None);
        Poll::Ready(match result {
            Ok(response) => {
                if *this.capture_server_errors && response.status().is_server_error() {
                    let status = response.status();
                    let message = format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
                    let mut event = crate::Event::message(message.trim_end(), crate::Level::Error);
                    event.tags.insert("http.status_code".into(), status.as_u16().to_string());
                    crate::client::capture(this.handle.clone(), None, event);
                }
                Ok(response.map(|body| ResponseBody::new(body, this.handle.clone())))
            }
            Err(err) => {
                this.handle.end(Outcome::Completed);
                Err(err)
            }
        })
    }
}
