//! Writes from tokio tasks bound to no scope (a plain `tokio::spawn`) stay in that task's own
//! scope: they never reach the process default, so never a later request.

mod support;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{Breadcrumb, IsolationLayer, Level, User};
use tower::ServiceExt;

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_spawn_in_one_request_never_reaches_the_requests_after_it() {
    support::transport(); // this binary's client
    let before = isoscope::stats();
    let app = Router::new()
        .route(
            "/a",
            get(|| async {
                let (done, wait) = tokio::sync::oneshot::channel();
                // A plain `tokio::spawn`: the request's scope is not carried into it.
                tokio::spawn(async move {
                    // Through a handle too: `isolation_scope()` here is the task's own scope.
                    isoscope::isolation_scope().configure(|s| s.set_tag("through_handle", "alice"));
                    isoscope::set_user(Some(User { id: Some("alice".into()), ..User::default() }));
                    isoscope::set_tag("customer", "alice");
                    isoscope::add_breadcrumb(Breadcrumb::new("alice's background work"));
                    isoscope::set_tag("test", "unbound-task");
                    isoscope::capture_message("from the plain task", Level::Info);
                    done.send(()).unwrap();
                });
                wait.await.unwrap();
                "a"
            }),
        )
        .route(
            "/b",
            get(|| async {
                isoscope::set_tag("test", "unbound-b");
                isoscope::capture_message("b", Level::Info);
                "b"
            }),
        )
        .layer(IsolationLayer::new());
    app.clone().oneshot(get_req("/a")).await.unwrap();
    let requests: Vec<_> = (0..200).map(|_| tokio::spawn(app.clone().oneshot(get_req("/b")))).collect();
    for r in requests {
        assert_eq!(r.await.unwrap().unwrap().status(), 200);
    }

    let b = support::events_tagged("test", "unbound-b");
    assert_eq!(b.len(), 200);
    for event in &b {
        assert!(event.user.is_none(), "a later request carries the plain task's user: {:?}", event.user);
        assert!(!event.tags.contains_key("customer"), "{:?}", event.tags);
        assert!(!event.tags.contains_key("through_handle"), "{:?}", event.tags);
        assert!(support::crumbs(event).is_empty(), "{:?}", support::crumbs(event));
    }
    // The plain task's own event carries what that task wrote (its own scope).
    let task = support::events_tagged("test", "unbound-task");
    assert_eq!(task.len(), 1);
    assert_eq!(task[0].tags["customer"], "alice");
    assert_eq!(task[0].user.as_ref().and_then(|u| u.id.as_deref()), Some("alice"));
    assert_eq!(support::crumbs(&task[0]), ["alice's background work"]);
    assert!(isoscope::stats().since(&before).writes_unbound >= 4);
}

#[tokio::test(flavor = "current_thread")]
async fn a_million_plain_tasks_that_each_write_once_keep_memory_bounded() {
    const TASKS: u64 = 1_000_000;
    let before = isoscope::stats();
    for _ in 0..(TASKS / 10_000) {
        let batch: Vec<_> =
            (0..10_000u32).map(|i| tokio::spawn(async move { isoscope::set_tag("n", i.to_string()) })).collect();
        for t in batch {
            t.await.unwrap();
        }
    }
    let d = isoscope::stats().since(&before);
    assert!(d.writes_unbound >= TASKS, "{d:?}");
    // At most 1,024 tasks' scopes are kept: the rest were dropped as newer tasks wrote.
    assert!(d.unbound_scopes_evicted >= TASKS - 1024, "{d:?}");
    // And none of it reached the process default that requests fork.
    assert!(isoscope::isolation_scope().snapshot().tag("n").is_none());
}
