//! [`Client`]: a client that is not installed process-wide, bound to scopes instead, so that
//! tests running in parallel (or parts of one program) each report to their own transport.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Core, Error, Options};
use crate::bind::{self, ScopeHandle};

/// A client bound to scopes rather than installed for the whole process (sentry-rust's
/// `Hub::new(client, scope)`).
///
/// Events captured with a scope this client is bound to — that scope, its forks, the children
/// spawned from it with the isoscope helpers, and the requests an [`IsolationLayer`] serves
/// while it is bound (their scopes are forked from it) — go to this client's transport, with
/// its `sample_rate`, `before_send`, `release`, `environment`, `server_name`,
/// `attach_stacktrace`, `in_app_include`/`_exclude` and `capture_panics` (making a client that
/// captures panics installs the panic hook, so a panic in its scopes is captured with its stack
/// even with no [`init`](crate::init)). The settings that are process-wide by nature
/// (`max_breadcrumbs`, `propagation`, `before_breadcrumb`, `send_default_pii` for recording
/// requests, `debug`) stay those of the client `init` started.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), isoscope::Error> {
/// let transport = isoscope::MemoryTransport::new();
/// let client = isoscope::Client::new(isoscope::Options::new().transport(transport.clone()))?;
/// let scope = client.new_scope();
/// scope.bind(async { isoscope::capture_message("mine", isoscope::Level::Info) }).await;
/// assert_eq!(transport.events().len(), 1);
/// # Ok(()) }
/// ```
///
/// [`IsolationLayer`]: crate::IsolationLayer
#[derive(Clone)]
pub struct Client(Arc<Core>);

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("options", &self.0.options).finish()
    }
}

impl Client {
    /// Makes a client from `options` (the same rules as [`init`](crate::init): the DSN from the
    /// options or the environment, else the local sink; `Options::transport` wins), without
    /// installing it anywhere.
    pub fn new(options: Options) -> Result<Self, Error> {
        let core = Core::new(options)?;
        if core.options.capture_panics {
            super::panic_hook::bound_client_captures();
        }
        Ok(Self(Arc::new(core)))
    }

    /// A new isolation scope with this client bound: a fork of the process base (the default
    /// isolation scope without its breadcrumbs), like a new request's.
    pub fn new_scope(&self) -> ScopeHandle {
        let scope = ScopeHandle::new(bind::request_base());
        self.bind_to(&scope);
        scope
    }

    /// Binds this client to `scope`: events captured with it (and with its later forks) go
    /// to this client.
    pub fn bind_to(&self, scope: &ScopeHandle) {
        let client: crate::scope::ScopeClient = self.0.clone();
        scope.configure(move |s| s.set_client(Some(client)));
    }

    /// The client's core (settings, transport, recorder).
    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.0
    }

    /// Waits up to `timeout` for this client's queued events to be delivered: `true` only if
    /// every event captured since the last flush was accepted (see
    /// [`ClientGuard::flush`](crate::ClientGuard::flush)).
    pub fn flush(&self, timeout: Duration) -> bool {
        self.0.flush(timeout)
    }

    /// Flushes for up to `timeout`, then stops this client's transport.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        self.0.logs.drain(&self.0);
        self.0.transport.shutdown(timeout)
    }
}
