//! [`IsolationLayer`]: the zero-sized Tower layer; its settings live in its type.

use tower_layer::Layer;

use super::Isolation;

/// A Tower [`Layer`] that gives every request its own isolation scope.
///
/// See the [module docs](crate::layer) for what it records and how.
///
/// The layer is zero-sized, its settings are part of its type: axum clones a route's layer for
/// every request to a handler route, and a zero-sized layer costs no allocation there.
///
/// ```
/// let plain = isoscope::IsolationLayer::new();
/// let with_5xx: isoscope::IsolationLayer<true> = plain.capture_server_errors();
/// assert_eq!(std::mem::size_of_val(&with_5xx), 0);
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct IsolationLayer<const CAPTURE_SERVER_ERRORS: bool = false>;

impl IsolationLayer {
    /// The layer with default settings (5xx responses are not captured).
    pub const fn new() -> Self {
        Self
    }
}

impl<const CAPTURE_SERVER_ERRORS: bool> IsolationLayer<CAPTURE_SERVER_ERRORS> {
    /// Also capture an event (level error) for every response with a 5xx status (the codes
    /// [`Options::failed_request_status_codes`](crate::Options::failed_request_status_codes)
    /// names: 500–599 by default), with the
    /// method and route template as its message (`GET /orders/{id} → 500`, so that one failing
    /// route is one issue) and the status in tag `http.status_code`. A request that already
    /// captured an event (an error the handler reported, a panic) is not captured again for
    /// its 5xx response: one failure, one issue.
    pub const fn capture_server_errors(self) -> IsolationLayer<true> {
        IsolationLayer
    }
}

impl<S, const CAPTURE_SERVER_ERRORS: bool> Layer<S> for IsolationLayer<CAPTURE_SERVER_ERRORS> {
    type Service = Isolation<S, CAPTURE_SERVER_ERRORS>;

    fn layer(&self, inner: S) -> Self::Service {
        crate::sdk::note(crate::sdk::Integration::Tower);
        Isolation { inner }
    }
}
