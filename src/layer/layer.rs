use tower_layer::Layer;

use super::Isolation;

/// A Tower [`Layer`] that gives every request its own isolation scope.
///
/// See the [module docs](crate::layer) for what it records and how.
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct IsolationLayer {
    pub(crate) capture_server_errors: bool,
}

impl IsolationLayer {
    /// The layer with default settings (5xx responses are not captured).
    pub const fn new() -> Self {
        Self { capture_server_errors: false }
    }

    /// Also capture an event (level error) for every response with a 5xx status.
    pub const fn capture_server_errors(mut self, yes: bool) -> Self {
        self.capture_server_errors = yes;
        self
    }
}

impl<S> Layer<S> for IsolationLayer {
    type Service = Isolation<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Isolation { inner, capture_server_errors: self.capture_server_errors }
    }
}
