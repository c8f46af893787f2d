use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::{future::ResponseFuture, guard_panic, IsolationLayer, RequestInfo, ResponseBody};
use crate::binding::{self, Boundary, ACTIVE};
use crate::handle::ScopeHandle;

/// The service made by [`IsolationLayer`]: forks a scope per request and binds it while the
/// inner service runs and its response body streams.
#[derive(Debug, Clone)]
pub struct Isolation<S> {
    pub(crate) inner: S,
    pub(crate) capture_server_errors: bool,
}

impl<S> Isolation<S> {
    /// Wraps `inner`.
    pub const fn new(inner: S) -> Self {
        Self { inner, capture_server_errors: false }
    }

    /// The layer, for `ServiceBuilder` and `Router::layer`.
    pub const fn layer() -> IsolationLayer {
        IsolationLayer::new()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The id a request is known by: its `x-request-id` if it has a usable one, else a new one.
fn request_id<B>(req: &Request<B>) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map_or_else(|| crate::util::random_hex(1), str::to_owned)
}

fn transaction<B>(req: &Request<B>) -> String {
    #[cfg(feature = "axum")]
    if let Some(path) = req.extensions().get::<axum::extract::MatchedPath>() {
        return path.as_str().to_owned();
    }
    req.uri().path().to_owned()
}

/// The scope for a new request: a fork of the enclosing layer's scope (nested layers), else
/// of the process default with no breadcrumbs; never of whatever this thread last ran.
fn request_scope<B>(req: &Request<B>) -> ScopeHandle {
    let parent = binding::task_bound();
    let mut scope = match &parent {
        Some(parent) => parent.snapshot(),
        None => {
            let mut s = binding::default_isolation().snapshot();
            s.clear_breadcrumbs();
            s
        }
    };
    if parent.is_none() || scope.tag("request_id").is_none() {
        // Nested layers serve the same request: keep the outer layer's id.
        scope.set_tag("request_id", request_id(req));
    }
    scope.set_transaction(Some(&transaction(req)));
    scope.set_request(Some(RequestInfo::new(
        req.method().clone(),
        req.uri().clone(),
        req.headers().clone(),
        crate::client::send_default_pii(),
    )));
    ScopeHandle::forked_from(scope)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Isolation<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let handle = request_scope(&req);
        let _boundary = Boundary::enter();
        let inner = &mut self.inner;
        let future = guard_panic(&handle, || ACTIVE.sync_scope(handle.clone(), || inner.call(req)));
        ResponseFuture::new(ACTIVE.scope(handle.clone(), future), handle, self.capture_server_errors)
    }
}
