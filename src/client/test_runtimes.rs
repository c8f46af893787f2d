//! The runtimes of running `test::with_captured_events` calls: an event captured where no
//! scope is bound (a plain `tokio::spawn` task) on a test's own tokio runtime goes to that
//! test's client, never to the process's client another test installed with `init`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::Core;

/// Registered captures: the runtime they run on, and their client.
static RUNTIMES: Mutex<Vec<(tokio::runtime::Id, Weak<Core>)>> = Mutex::new(Vec::new());
/// How many are registered: captures elsewhere read only this (one relaxed load).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Unregisters its capture when dropped.
pub(crate) struct TestRuntime {
    id: Option<tokio::runtime::Id>,
    core: Weak<Core>,
}

/// Registers the client `core` for the tokio runtime this runs on (none outside one).
pub(crate) fn register(core: &Arc<Core>) -> TestRuntime {
    let core = Arc::downgrade(core);
    let id = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
    if let Some(id) = id {
        RUNTIMES.lock().unwrap_or_else(PoisonError::into_inner).push((id, core.clone()));
        ACTIVE.fetch_add(1, Ordering::Relaxed);
    }
    TestRuntime { id, core }
}

impl Drop for TestRuntime {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut runtimes = RUNTIMES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = runtimes.iter().position(|(r, c)| *r == id && c.ptr_eq(&self.core)) {
            runtimes.remove(i);
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The client of the capture running on the current tokio runtime, if any (the latest, when
/// captures nest).
pub(crate) fn client_of_this_runtime() -> Option<Arc<Core>> {
    if ACTIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let id = tokio::runtime::Handle::try_current().ok()?.id();
    let runtimes = RUNTIMES.lock().unwrap_or_else(PoisonError::into_inner);
    runtimes.iter().rev().find(|(r, _)| *r == id).and_then(|(_, c)| c.upgrade())
}
