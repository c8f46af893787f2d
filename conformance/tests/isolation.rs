//! Requests never see each other's scope: under load, across thread migration, on one thread,
//! through nested layers, and with spawned children.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, StreamExt};
use http::Request;
use isoscope::{Breadcrumb, IsolationLayer, Level};
use support::{crumbs, events_tagged, transport};
use tower::{Service, ServiceExt};

/// Handler for the load test: unique breadcrumbs with yields between them (so the task hops
/// threads), a forked child task and a blocking job that add their own, then a capture.
async fn load_handler(Path(i): Path<u32>) -> &'static str {
    isoscope::set_tag("load_req", i.to_string());
    for step in 0..3 {
        isoscope::add_breadcrumb(Breadcrumb::new(format!("req{i}-step{step}")));
        tokio::task::yield_now().await;
    }
    let child = isoscope::spawn(async move {
        tokio::task::yield_now().await;
        isoscope::add_breadcrumb(Breadcrumb::new(format!("req{i}-child")));
        isoscope::set_tag("part", "child");
        isoscope::capture_message("child", Level::Info);
    });
    let job = isoscope::spawn_blocking(move || {
        isoscope::add_breadcrumb(Breadcrumb::new(format!("req{i}-blocking")));
        isoscope::set_tag("part", "blocking");
        isoscope::capture_message("blocking", Level::Info);
    });
    child.await.unwrap();
    job.await.unwrap();
    isoscope::add_breadcrumb(Breadcrumb::new(format!("req{i}-end")));
    isoscope::set_tag("part", "handler");
    isoscope::capture_message("handler", Level::Info);
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_under_load_every_event_holds_exactly_its_own_breadcrumbs() {
    transport();
    const REQUESTS: u32 = 5_000;
    const CONCURRENCY: usize = 256;
    let app = Router::new().route("/load/{i}", get(load_handler)).layer(IsolationLayer::new());
    let statuses: Vec<_> = stream::iter(0..REQUESTS)
        .map(|i| {
            let app = app.clone();
            async move {
                let req = Request::get(format!("/load/{i}")).body(Body::empty()).unwrap();
                app.oneshot(req).await.unwrap().status()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| s.is_success()));

    let events: Vec<_> =
        support::schema::valid(transport().events().into_iter().filter(|e| e.tags.contains_key("load_req")).collect());
    assert_eq!(events.len(), REQUESTS as usize * 3, "one event per handler, child and blocking job");
    for event in &events {
        let i = &event.tags["load_req"];
        let prefix = format!("req{i}-");
        let got = crumbs(event);
        let foreign: Vec<_> = got.iter().filter(|c| !c.starts_with(&prefix)).collect();
        assert!(foreign.is_empty(), "request {i} saw foreign breadcrumbs {foreign:?}");
        let steps: Vec<String> = (0..3).map(|s| format!("req{i}-step{s}")).collect();
        let expected: Vec<String> = match event.tags["part"].as_str() {
            // Fork is the default: a child's breadcrumbs never flow back to the request.
            "handler" => steps.iter().cloned().chain([format!("req{i}-end")]).collect(),
            "child" => steps.iter().cloned().chain([format!("req{i}-child")]).collect(),
            "blocking" => steps.iter().cloned().chain([format!("req{i}-blocking")]).collect(),
            other => panic!("unexpected part {other}"),
        };
        assert_eq!(got, expected, "request {i} ({}) breadcrumbs", event.tags["part"]);
        assert_eq!(event.transaction.as_deref(), Some("/load/{i}"));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn one_thread_interleaving_sees_only_its_own_scope_on_every_poll() {
    transport();
    let app = Router::new()
        .route(
            "/interleave/{name}",
            get(|Path(name): Path<String>| async move {
                isoscope::set_tag("interleave", name.clone());
                for i in 0..50 {
                    isoscope::add_breadcrumb(Breadcrumb::new(format!("{name}{i}")));
                    tokio::task::yield_now().await;
                    // On every poll the active scope is this request's.
                    assert_eq!(isoscope::isolation_scope().snapshot().tag("interleave"), Some(name.as_str()));
                }
                isoscope::capture_message("done", Level::Info);
            }),
        )
        .layer(IsolationLayer::new());
    let a = app.clone().oneshot(Request::get("/interleave/a").body(Body::empty()).unwrap());
    let b = app.oneshot(Request::get("/interleave/b").body(Body::empty()).unwrap());
    let (ra, rb) = tokio::join!(a, b);
    assert!(ra.unwrap().status().is_success() && rb.unwrap().status().is_success());
    for name in ["a", "b"] {
        let events = events_tagged("interleave", name);
        assert_eq!(events.len(), 1);
        let got = crumbs(&events[0]);
        assert_eq!(got.len(), 50);
        assert!(got.iter().all(|c| c.starts_with(name)), "{name} saw {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_on_one_service_start_clean() {
    transport();
    let mut svc = Router::new()
        .route(
            "/seq/{n}",
            get(|Path(n): Path<u32>| async move {
                let before = isoscope::isolation_scope().snapshot();
                assert_eq!(before.tag("seq_leak"), None, "request {n} saw an earlier request's tag");
                assert_eq!(before.breadcrumbs().len(), 0);
                isoscope::set_tag("seq_leak", n.to_string());
                isoscope::add_breadcrumb(Breadcrumb::new("mine"));
            }),
        )
        .layer(IsolationLayer::new());
    for n in 0..20 {
        let req = Request::get(format!("/seq/{n}")).body(Body::empty()).unwrap();
        let res = ServiceExt::<Request<Body>>::ready(&mut svc).await.unwrap().call(req).await.unwrap();
        assert!(res.status().is_success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_layers_fork_and_never_leak_back() {
    transport();
    let app = Router::new()
        .route(
            "/nested",
            get(|| async {
                isoscope::set_tag("nested_inner", "yes");
                isoscope::capture_message("inner", Level::Info);
            })
            .layer(IsolationLayer::new()),
        )
        .layer(axum::middleware::from_fn(|req: axum::extract::Request, next: axum::middleware::Next| async move {
            isoscope::set_tag("nested_outer", "yes");
            let outer = isoscope::isolation_scope();
            let res = next.run(req).await;
            // The inner layer's scope was a fork: its tag never flows back.
            assert_eq!(outer.snapshot().tag("nested_inner"), None);
            isoscope::capture_message("outer", Level::Info);
            res
        }))
        .layer(IsolationLayer::new());
    let res = app.oneshot(Request::get("/nested").body(Body::empty()).unwrap()).await.unwrap();
    assert!(res.status().is_success());
    let events = events_tagged("nested_outer", "yes");
    assert_eq!(events.len(), 2);
    let inner = events.iter().find(|e| e.message.as_deref() == Some("inner")).unwrap();
    let outer = events.iter().find(|e| e.message.as_deref() == Some("outer")).unwrap();
    assert_eq!(inner.tags["nested_inner"], "yes");
    assert_eq!(outer.tags.get("nested_inner"), None);
    assert_eq!(inner.tags["request_id"], outer.tags["request_id"], "the inner scope is a fork of the outer");
}

fn sync_helper() -> Option<String> {
    isoscope::isolation_scope().snapshot().tag("bip").map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_in_place_and_sync_fns_see_the_request_scope() {
    transport();
    let app = Router::new()
        .route(
            "/bip",
            get(|| async {
                isoscope::set_tag("bip", "1");
                let direct = sync_helper();
                let in_place = tokio::task::block_in_place(sync_helper);
                format!("{direct:?} {in_place:?}")
            }),
        )
        .layer(IsolationLayer::new());
    let res = app.oneshot(Request::get("/bip").body(Body::empty()).unwrap()).await.unwrap();
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"Some(\"1\") Some(\"1\")");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_to_a_shared_scope_lose_nothing() {
    transport();
    const WRITERS: usize = 8;
    const EACH: usize = 10; // 80 in all: under the 100 breadcrumb cap
    let shared = isoscope::isolation_scope().fork();
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let barrier = barrier.clone();
            tokio::spawn(shared.bind(async move {
                barrier.wait().await;
                for k in 0..EACH {
                    isoscope::add_breadcrumb(Breadcrumb::new(format!("w{w}-{k}")));
                    isoscope::set_tag(format!("w{w}-{k}"), "x");
                    tokio::task::yield_now().await;
                }
            }))
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let snap = shared.snapshot();
    assert_eq!(snap.breadcrumbs().len(), WRITERS * EACH);
    assert_eq!(snap.tags().len(), WRITERS * EACH);
}

#[test]
fn layer_service_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    type Svc = tower::util::BoxCloneSyncService<Request<Body>, http::Response<Body>, std::convert::Infallible>;
    send_sync::<IsolationLayer>();
    send_sync::<isoscope::Isolation<Svc>>();
    send_sync::<isoscope::layer::future::ResponseFuture<std::future::Ready<Result<http::Response<String>, ()>>>>();
    send::<isoscope::ResponseBody<Body>>();
    send_sync::<isoscope::ScopeHandle>();
    send_sync::<isoscope::Scope>();
    // `EnterGuard` is !Send: proven by the compile_fail doctest on `EnterGuard`.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precedence_and_current_scope_inside_a_request() {
    transport();
    isoscope::global_scope().configure(|s| s.set_tag("prec_global", "global"));
    let app = Router::new()
        .route(
            "/prec",
            get(|| async {
                isoscope::set_tag("prec", "iso");
                isoscope::set_tag("prec_case", "1");
                isoscope::with_scope_async(|s| s.set_tag("prec", "current"), async {
                    tokio::task::yield_now().await;
                    isoscope::capture_message("in current", Level::Info);
                    let mut event = isoscope::Event::message("event wins", Level::Info);
                    event.tags.insert("prec".into(), "event".into());
                    isoscope::capture_event(event);
                })
                .await;
                isoscope::capture_message("iso only", Level::Info);
            }),
        )
        .layer(IsolationLayer::new());
    app.oneshot(Request::get("/prec").body(Body::empty()).unwrap()).await.unwrap();
    let events = events_tagged("prec_case", "1");
    let by_msg = |m: &str| events.iter().find(|e| e.message.as_deref() == Some(m)).unwrap().clone();
    assert_eq!(by_msg("in current").tags["prec"], "current");
    assert_eq!(by_msg("event wins").tags["prec"], "event");
    assert_eq!(by_msg("iso only").tags["prec"], "iso");
    assert!(events.iter().all(|e| e.tags["prec_global"] == "global"));
}

static FILL_SCOPE_IDS: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());
/// What each request of that test found in its new scope (checked by the test itself: a
/// failed assertion in the handler would only be one more 500).
static FILL_LEAKS: std::sync::Mutex<Vec<(u32, [bool; 11])>> = std::sync::Mutex::new(Vec::new());

/// The handler of `a_finished_requests_scope_leaves_nothing_to_the_next_on_its_thread`: checks
/// that its scope holds nothing but its own request, then sets every field and captures.
async fn fills_everything(Path(n): Path<u32>) -> http::StatusCode {
    let scope = isoscope::isolation_scope();
    let seen = scope.snapshot();
    let leaked = [
        seen.level().is_some(),
        seen.transaction() != Some("/fill/{n}"), // the route's name, not an earlier one set
        seen.user().is_some(),
        !seen.tags().is_empty(),
        !seen.extra().is_empty(),
        !seen.contexts().is_empty(),
        seen.fingerprint().is_some(),
        seen.breadcrumbs().len() > 0,
        !seen.attachments().is_empty(),
        scope.last_event_id().is_some(),
        scope.outcome().is_some(),
    ];
    FILL_LEAKS.lock().unwrap().push((n, leaked));
    assert_eq!(seen.request().map(|r| r.path().to_owned()), Some(format!("/fill/{n}")));
    FILL_SCOPE_IDS.lock().unwrap().push(scope.id());
    scope.configure(|s| {
        s.set_level(Some(Level::Warning));
        s.set_transaction(Some(&format!("fill-{n}")));
        s.set_user(Some(isoscope::User::with_id(n.to_string())));
        s.set_tag("fill", n.to_string());
        s.set_extra("n", serde_json::Value::from(n));
        s.set_context("fill", serde_json::json!({ "n": n }));
        s.set_fingerprint(Some(&[&format!("fill-{n}")]));
        s.add_attachment(isoscope::Attachment::new("fill.txt", n.to_string().into_bytes()));
    });
    isoscope::add_breadcrumb(Breadcrumb::new(format!("fill-{n}")));
    isoscope::capture_message("filled", Level::Info);
    // Written after the capture's snapshot: the scope owns its tags again when it is recycled.
    isoscope::set_tag("after", n.to_string());
    if n % 2 == 0 {
        panic!("request {n} panics");
    }
    http::StatusCode::INTERNAL_SERVER_ERROR
}

/// On one thread, each request's scope is made right after the previous request's ended (and
/// its memory reused, see `ScopeHandle::recycle`): nothing of the previous request — a field, a
/// breadcrumb, an attachment, an event id, an outcome — reaches the next.
#[tokio::test(flavor = "current_thread")]
async fn a_finished_requests_scope_leaves_nothing_to_the_next_on_its_thread() {
    transport();
    let app = Router::new()
        .route("/fill/{n}", get(fills_everything))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(IsolationLayer::new());
    for n in 0..12u32 {
        let req = Request::get(format!("/fill/{n}")).body(Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        if n % 3 == 0 {
            drop(res); // body never read: the request ends cancelled
        } else {
            axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        }
    }
    let leaks = FILL_LEAKS.lock().unwrap().clone();
    assert_eq!(leaks.len(), 12);
    for (n, leaked) in leaks {
        assert_eq!(leaked, [false; 11], "request {n} started with an earlier request's data");
    }
    let ids = FILL_SCOPE_IDS.lock().unwrap().clone();
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 12, "scope ids are never reused: {ids:?}");
    for n in 0..12u32 {
        let events = events_tagged("fill", &n.to_string());
        assert!(!events.is_empty(), "request {n}'s events");
        for event in events {
            assert_eq!(event.breadcrumbs.iter().filter(|b| b.message.is_some()).count(), 1, "{:?}", crumbs(&event));
            assert_eq!(crumbs(&event), [format!("fill-{n}")]);
            assert_eq!(event.user.as_ref().and_then(|u| u.id.clone()), Some(n.to_string()));
        }
    }
}
