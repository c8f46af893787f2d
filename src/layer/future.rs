//! The response future of [`Isolation`](super::Isolation).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::body::dropped_early;
use super::{guarded, guarded_inline, ResponseBody};
use crate::bind::{bind_sync, Enter, Outcome, ScopeHandle};
use crate::event::SpanStatus;

pin_project! {
    /// Response future of [`Isolation`](super::Isolation): the inner future, polled and
    /// dropped with the request's scope bound (tokio's `LocalKey::sync_scope`, inside a mark of
    /// the thread's binding context); captures a panic raised while polling it, and wraps the
    /// response body in [`ResponseBody`]. The inner future is held inline and written in place
    /// by the inner service's `call` (a future is hundreds of bytes: every move is a copy).
    pub struct ResponseFuture<F> {
        // `None` once it produced the response (dropped then, bound), or if `call` panicked.
        #[pin]
        inner: Option<F>,
        // `None` once handed to the response body.
        handle: Option<ScopeHandle>,
        capture_server_errors: bool,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut inner = this.inner;
            let (true, Some(handle)) = (inner.is_some(), this.handle.as_ref()) else { return };
            // Dropped before it produced a response: the request was cancelled (or panicked).
            // The inner future is dropped with the scope bound, and the binding's mark purges a
            // guard leaked by its `Drop` impls.
            dropped_early(handle, || inner.set(None));
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").field("scope", &self.handle).finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    /// The future of the request `handle` serves: `call` (the inner service's) runs with the
    /// scope bound and a panic guard, and its future is written straight into the result.
    #[inline(always)]
    pub(crate) fn called(handle: ScopeHandle, capture_server_errors: bool, call: impl FnOnce() -> F) -> Self {
        let mut this = Self { inner: None, handle: None, capture_server_errors };
        let inner = &mut this.inner;
        guarded(&handle, || bind_sync(&handle, Enter::Nested, || *inner = Some(call())));
        this.handle = Some(handle);
        this
    }
}

/// Out of line: most responses are not 5xx, and this code would take instruction cache
/// space on every request.
#[cold]
#[inline(never)]
fn capture_server_error(handle: &ScopeHandle, status: http::StatusCode) {
    // `GET /orders/{id} → 500`: the route template, so that one failing route is one issue.
    let message = match handle.snapshot().request() {
        Some(request) => format!("{} {} → {}", request.method(), request.transaction(), status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    };
    let mut event = crate::Event::message(message, crate::Level::Error);
    event.tags.insert("http.status_code".into(), status.as_u16().to_string());
    crate::client::capture(handle.clone(), None, event);
}

/// With `send_default_pii`: the response's headers (sensitive ones left out: cookies set,
/// tokens) join its status in the scope's `response` context, unless the handler set one.
/// Bounded as the request's headers are.
#[cold]
#[inline(never)]
fn record_response_headers(handle: &ScopeHandle, status: u16, headers: &http::HeaderMap) {
    let mut map = serde_json::Map::new();
    for (name, value) in headers {
        if map.len() >= crate::scope::MAX_HEADERS || crate::event::scrub::is_sensitive_header(name) {
            continue;
        }
        let mut value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        crate::util::truncate_chars(&mut value, crate::scope::MAX_HEADER_VALUE);
        map.entry(name.as_str()).or_insert(serde_json::Value::String(value));
    }
    let context = serde_json::json!({"type": "response", "status_code": status, "headers": map});
    handle.write(move |s| {
        if !s.contexts().contains_key("response") {
            s.set_context("response", context);
        }
    });
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
        let (true, Some(handle)) = (inner.is_some(), this.handle.as_ref()) else {
            panic!("`isoscope::layer::ResponseFuture` polled after completion");
        };
        let mut ready = None;
        // One binding covers the poll and, once it is ready, the drop of the inner future.
        guarded_inline(handle, || {
            bind_sync(handle, Enter::Nested, || {
                let Some(future) = inner.as_mut().as_pin_mut() else { return };
                if let Poll::Ready(result) = future.poll(cx) {
                    ready = Some(result);
                    inner.set(None);
                }
            });
        });
        let Some(result) = ready else { return Poll::Pending };
        // The future is done: the response body takes the handle over.
        let Some(handle) = this.handle.take() else { unreachable!("checked above") };
        Poll::Ready(match result {
            Ok(response) => {
                let status = response.status().as_u16();
                handle.set_response_status(status);
                if crate::client::send_default_pii() {
                    record_response_headers(&handle, status, response.headers());
                }
                // A request that captured an event already (its error, its panic) is not
                // reported a second time for the 5xx it answers with.
                if *this.capture_server_errors
                    && crate::client::is_failed_status(status)
                    && handle.last_event_id().is_none()
                {
                    capture_server_error(&handle, response.status());
                }
                // The transaction ends with the body (a stream's time is the request's).
                Ok(response.map(|body| ResponseBody::new(body, handle)))
            }
            Err(err) => {
                crate::client::finish_transaction(&handle, SpanStatus::InternalError);
                handle.end(Outcome::Completed);
                Err(err)
            }
        })
    }
}
