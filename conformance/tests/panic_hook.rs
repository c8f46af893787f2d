//! The panic hook is chained to the one in place, which keeps running; it captures while its
//! client is in force and stops capturing when the guard drops; `capture_panics(false)` opts out.
//! (One test: the hook is process-wide.)

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use isoscope::{MemoryTransport, Options};

fn panic_on_a_thread(message: &'static str) {
    assert!(std::thread::spawn(move || std::panic::panic_any(message)).join().is_err());
}

#[test]
fn the_hook_chains_to_the_previous_one_and_follows_the_client() {
    let previous_calls = Arc::new(AtomicUsize::new(0));
    let calls = previous_calls.clone();
    std::panic::set_hook(Box::new(move |_| {
        calls.fetch_add(1, Ordering::SeqCst);
    }));

    let transport = MemoryTransport::new();
    let guard = isoscope::init(Options::new().transport(transport.clone())).unwrap();
    panic_on_a_thread("while the client is in force");
    assert_eq!(support::schema::valid(transport.take_events()).len(), 1);
    assert_eq!(previous_calls.load(Ordering::SeqCst), 1, "the previous hook still runs");

    drop(guard);
    panic_on_a_thread("after the guard dropped");
    assert_eq!(previous_calls.load(Ordering::SeqCst), 2);
    let _guard = isoscope::init(Options::new().transport(transport.clone()).capture_panics(false)).unwrap();
    panic_on_a_thread("with capture_panics(false)");
    assert_eq!(previous_calls.load(Ordering::SeqCst), 3);
    assert!(
        support::schema::valid(transport.take_events()).is_empty(),
        "no capture once the guard dropped, nor when opted out"
    );
    drop(_guard);

    // A hook set after `init` replaces ours: the layer still captures a handler's panic, once.
    let _guard = isoscope::init(Options::new().transport(transport.clone())).unwrap();
    std::panic::set_hook(Box::new(|_| {}));
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async {
                if isoscope::isolation_scope().id() > 0 {
                    panic!("with our hook replaced");
                }
            }),
        )
        .layer(isoscope::IsolationLayer::new())
        .layer(tower_http::catch_panic::CatchPanicLayer::new());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let status = runtime.block_on(async {
        use tower::ServiceExt;
        app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap().status()
    });
    assert_eq!(status, 500);
    let events = support::schema::valid(transport.take_events());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].exception[0].value.as_deref(), Some("with our hook replaced"));
}
