//! Route templates (axum's `MatchedPath`) as per-thread copies, so that no reference count is
//! shared by every worker thread.

thread_local! {
    /// This thread's route copies, and the next one to replace when full.
    static ROUTES: std::cell::RefCell<(Vec<std::sync::Arc<str>>, usize)> =
        const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// This thread's copy of a route template.
///
/// axum hands every request of a route the same `Arc<str>`: cloning it per request would make
/// all worker threads bump (and drop) one reference count, a cache line bouncing between cores
/// on every request. Each thread keeps its own copies instead (a handful of routes, compared by
/// content, so a reused address can never return the wrong one).
pub(super) fn interned_route(route: &str) -> std::sync::Arc<str> {
    let hit = ROUTES.try_with(|routes| {
        let routes = routes.try_borrow().ok()?;
        routes.0.iter().find(|r| ***r == *route).cloned()
    });
    match hit {
        Ok(Some(hit)) => hit,
        _ => intern_route(route),
    }
}

/// Adds a route to this thread's copies. Out of line: once per route and thread.
#[cold]
#[inline(never)]
fn intern_route(route: &str) -> std::sync::Arc<str> {
    /// Routes kept per thread; past this, the oldest is replaced.
    const KEPT: usize = 64;
    let new: std::sync::Arc<str> = std::sync::Arc::from(route);
    let _ = ROUTES.try_with(|routes| {
        let Ok(mut routes) = routes.try_borrow_mut() else { return };
        let (kept, next) = &mut *routes;
        if kept.len() < KEPT {
            kept.push(new.clone());
        } else {
            // The replaced copy is only a string: dropping it under the borrow runs no code of ours.
            kept[*next] = new.clone();
            *next = (*next + 1) % KEPT;
        }
    });
    new
}
