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
                    isoscope::set_user(Some(User::with_id("alice")));
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

/// A handler that hands work to a plain thread (a worker pool, a sync library) which writes
/// the user: that thread is not start-up code, so the write stays in the thread's own scope and
/// never reaches the base every later request forks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_thread_started_by_a_handler_never_writes_into_later_requests() {
    support::transport();
    let before = isoscope::stats();
    let app = Router::new()
        .route(
            "/login/alice",
            get(|| async {
                std::thread::spawn(|| {
                    isoscope::set_user(Some(User::with_id("alice")));
                    isoscope::set_tag("thread_customer", "alice");
                    isoscope::isolation_scope().configure(|s| s.set_tag("thread_handle", "alice"));
                })
                .join()
                .unwrap();
                "in"
            }),
        )
        .route(
            "/other",
            get(|| async {
                isoscope::set_tag("test", "plain-thread-other");
                isoscope::capture_message("other", Level::Info);
                "other"
            }),
        )
        .layer(IsolationLayer::new());
    app.clone().oneshot(get_req("/login/alice")).await.unwrap();
    for _ in 0..20 {
        app.clone().oneshot(get_req("/other")).await.unwrap();
    }
    let other = support::events_tagged("test", "plain-thread-other");
    assert_eq!(other.len(), 20);
    for event in &other {
        assert!(event.user.is_none(), "a later request carries the plain thread's user: {:?}", event.user);
        assert!(
            !event.tags.contains_key("thread_customer") && !event.tags.contains_key("thread_handle"),
            "{:?}",
            event.tags
        );
    }
    assert!(isoscope::stats().since(&before).writes_unbound >= 2);
}

/// The same through a pool of reused threads (rayon-style): jobs of one request write the
/// user on pool threads; no later request sees it, and a pool thread's own event carries what
/// that thread wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_pool_thread_never_writes_into_requests() {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};

    support::transport();
    type Job = Box<dyn FnOnce() + Send>;
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for _ in 0..2 {
        let queue = queue.clone();
        std::thread::spawn(move || loop {
            let job = queue.lock().unwrap().recv();
            match job {
                Ok(job) => job(),
                Err(_) => break,
            }
        });
    }
    let pool = Arc::new(Mutex::new(jobs));
    let run_on_pool = move |job: Job| {
        let (done, wait) = tokio::sync::oneshot::channel();
        pool.lock()
            .unwrap()
            .send(Box::new(move || {
                job();
                let _ = done.send(());
            }))
            .unwrap();
        wait
    };
    let app = Router::new()
        .route(
            "/login/{name}",
            get({
                let run_on_pool = run_on_pool.clone();
                move |axum::extract::Path(name): axum::extract::Path<String>| async move {
                    for _ in 0..4 {
                        let name = name.clone();
                        run_on_pool(Box::new(move || {
                            isoscope::set_user(Some(User::with_id(name.clone())));
                            isoscope::add_breadcrumb(Breadcrumb::new(format!("pool work for {name}")));
                        }))
                        .await
                        .unwrap();
                    }
                    "in"
                }
            }),
        )
        .route(
            "/report",
            get(move || {
                let run_on_pool = run_on_pool.clone();
                async move {
                    isoscope::set_tag("test", "pool-request");
                    isoscope::capture_message("request", Level::Info);
                    run_on_pool(Box::new(|| {
                        isoscope::set_tag("test", "pool-thread");
                        isoscope::capture_message("from the pool", Level::Info);
                    }))
                    .await
                    .unwrap();
                    "ok"
                }
            }),
        )
        .layer(IsolationLayer::new());
    app.clone().oneshot(get_req("/login/alice")).await.unwrap();
    app.clone().oneshot(get_req("/login/bob")).await.unwrap();
    for _ in 0..20 {
        app.clone().oneshot(get_req("/report")).await.unwrap();
    }
    let requests = support::events_tagged("test", "pool-request");
    assert_eq!(requests.len(), 20);
    for event in &requests {
        assert!(event.user.is_none(), "{:?}", event.user);
        assert!(support::crumbs(event).is_empty(), "{:?}", support::crumbs(event));
    }
    // A pool thread keeps its own scope from job to job (what it wrote, not any request's).
    let pool_events = support::events_tagged("test", "pool-thread");
    assert_eq!(pool_events.len(), 20);
    for event in &pool_events {
        let user = event.user.as_ref().and_then(|u| u.id.as_deref());
        assert!(matches!(user, None | Some("alice" | "bob")), "{user:?}");
        assert!(event.request.is_none(), "a pool thread's event is no request's");
    }
}
