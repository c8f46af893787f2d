//! The axum extractor [`RequestScope`].

use std::ops::Deref;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::bind::{self, ScopeHandle};

/// Extracts the request's isolation scope handle, for handlers that want it explicitly (for
/// example to hand it to code that runs outside the request).
///
/// ```
/// use axum::{routing::get, Router};
/// use isoscope::RequestScope;
///
/// async fn handler(scope: RequestScope) -> String {
///     scope.configure(|s| s.set_tag("handler", "explicit"));
///     scope.snapshot().request().map(|r| r.request_id()).unwrap_or_default()
/// }
///
/// let app: Router = Router::new().route("/", get(handler)).layer(isoscope::IsolationLayer::new());
/// ```
///
/// Without an [`IsolationLayer`](crate::IsolationLayer) around the handler, extraction fails
/// with `500 Internal Server Error` and a message saying so.
#[derive(Debug, Clone)]
pub struct RequestScope(pub ScopeHandle);

impl Deref for RequestScope {
    type Target = ScopeHandle;
    fn deref(&self) -> &ScopeHandle {
        &self.0
    }
}

/// Rejection of [`RequestScope`]: no `IsolationLayer` wraps the handler.
#[derive(Debug, Clone, Copy)]
pub struct MissingIsolationLayer;

impl IntoResponse for MissingIsolationLayer {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, "isoscope::RequestScope needs isoscope::IsolationLayer around the handler")
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestScope {
    type Rejection = MissingIsolationLayer;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        crate::sdk::note(crate::sdk::Integration::Axum);
        bind::bound().map(RequestScope).ok_or(MissingIsolationLayer)
    }
}
