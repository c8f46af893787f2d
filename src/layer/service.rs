//! [`Isolation`]: the service, which makes the request's scope and binds it while the inner
//! service's `call` runs.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use std::sync::Arc;

#[cfg(feature = "axum")]
use super::RequestBody;
use super::{future::ResponseFuture, IsolationLayer, RequestInfo, ResponseBody};
use crate::bind::{self, ScopeHandle};
use crate::scope::BodySlot;

/// The service made by [`IsolationLayer`]: forks a scope per request and binds it while the
/// inner service runs and its response body streams.
#[derive(Debug, Clone)]
pub struct Isolation<S, const CAPTURE_SERVER_ERRORS: bool = false> {
    pub(crate) inner: S,
}

impl<S> Isolation<S> {
    /// Wraps `inner`.
    pub const fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The layer, for `ServiceBuilder` and `Router::layer`.
    pub const fn layer() -> IsolationLayer {
        IsolationLayer::new()
    }
}

impl<S, const CAPTURE_SERVER_ERRORS: bool> Isolation<S, CAPTURE_SERVER_ERRORS> {
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

/// The scope for a new request: a fork of the enclosing layer's scope (nested layers), else
/// of the process default with no breadcrumbs; never of whatever this thread last ran.
/// With `slot`, the body's tee fills it (`Options::max_request_body_size`).
fn request_scope<B>(req: &Request<B>, slot: Option<&Arc<BodySlot>>) -> ScopeHandle {
    // Kept raw: turned into the event's `request`, `request_id` tag and transaction only if an
    // event is captured.
    let mut info =
        RequestInfo::from_parts(req.method().clone(), req.uri(), req.headers(), crate::client::send_default_pii());
    #[cfg(feature = "axum")]
    if let Some(route) = req.extensions().get::<axum::extract::MatchedPath>() {
        crate::sdk::note(crate::sdk::Integration::Axum);
        info.set_route(super::route::interned_route(route.as_str()));
    }
    if crate::client::send_default_pii() {
        if let Some(peer) = peer_of(req) {
            info.set_peer(peer);
        }
    }
    #[cfg(feature = "opentelemetry")]
    if let Some(otel) = crate::trace::otel_span() {
        // An OpenTelemetry span around the request (an OTel layer outside this one): the
        // request joins its trace, so transaction, events and logs are one trace with it.
        info.join_trace(otel);
    }
    crate::client::sample_request(&mut info); // one relaxed load unless tracing is on
    if let Some(slot) = slot {
        info.set_body(slot.clone());
    }
    if bind::request_starts_empty() {
        // The usual case, built in place: no scope to copy.
        return ScopeHandle::for_request(info);
    }
    forked_request_scope(info)
}

/// The connection's peer: axum's `ConnectInfo<SocketAddr>` (`into_make_service_with_connect_info`),
/// or a `SocketAddr` a hyper server put in the request's extensions.
#[cold]
#[inline(never)]
fn peer_of<B>(req: &Request<B>) -> Option<std::net::IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(addr.ip());
    }
    req.extensions().get::<std::net::SocketAddr>().map(std::net::SocketAddr::ip)
}

/// A request scope forked from an enclosing layer's scope or from a process default that has
/// been configured: out of line, off the usual path.
#[cold]
#[inline(never)]
fn forked_request_scope(mut info: RequestInfo) -> ScopeHandle {
    let mut scope = match bind::bound() {
        Some(parent) => {
            let scope = parent.snapshot();
            if let Some(outer) = scope.request() {
                info.use_id_of(outer); // nested layers serve the same request
            }
            scope
        }
        None => bind::request_base(),
    };
    scope.set_request(Some(info));
    ScopeHandle::request_from(scope)
}

/// Puts a tee on the request's body, if it is axum's `Body` (what a layer added with
/// `Router::layer` gets) with something in it, and bodies are kept
/// (`Options::max_request_body_size`): the slot it fills. The body stays an axum `Body`, so
/// the inner service's request type does not change; other body types (hyper's `Incoming`,
/// the layer outside the router) are handed on untouched.
#[inline]
fn tee_body<B: 'static>(req: &mut Request<B>) -> Option<Arc<BodySlot>> {
    #[cfg(feature = "axum")]
    if (req.body() as &dyn std::any::Any)
        .downcast_ref::<axum::body::Body>()
        .is_some_and(|body| !http_body::Body::is_end_stream(body))
    {
        return tee_axum_body(req);
    }
    let _ = req;
    None
}

/// [`tee_body`] for an axum body that is there: out of line (most requests have none).
#[cfg(feature = "axum")]
#[cold]
#[inline(never)]
fn tee_axum_body<B: 'static>(req: &mut Request<B>) -> Option<Arc<BodySlot>> {
    let limit = crate::scope::request_body_limit();
    if limit == 0 {
        return None;
    }
    let declared = req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse().ok());
    let body = (req.body_mut() as &mut dyn std::any::Any).downcast_mut::<axum::body::Body>()?;
    let slot = Arc::new(BodySlot::new(limit, declared));
    let inner = std::mem::take(body);
    *body = axum::body::Body::new(RequestBody::new(inner, slot.clone()));
    Some(slot)
}

impl<S, ReqBody, ResBody, const CAPTURE_SERVER_ERRORS: bool> Service<Request<ReqBody>>
    for Isolation<S, CAPTURE_SERVER_ERRORS>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: 'static,
    ResBody: http_body::Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    // Out of line: inlined into the caller (axum's `MapIntoResponse`), the future it returns
    // is copied once more (callgrind: +64 instructions a request).
    #[inline(never)]
    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let slot = tee_body(&mut req);
        let handle = request_scope(&req, slot.as_ref());
        let (inner, mut req) = (&mut self.inner, Some(req));
        // The request by reference: moved into the closure, it would be copied in and out of
        // `catch_unwind`'s slot.
        ResponseFuture::called(handle, CAPTURE_SERVER_ERRORS, || match req.take() {
            Some(req) => inner.call(req),
            None => unreachable!("called once"),
        })
    }
}
