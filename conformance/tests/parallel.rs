//! Eight tests in one binary, on parallel threads, each capturing with
//! `isoscope::test::with_captured_events`: each sees exactly its own events, 20 rounds each. A
//! process-wide client is installed too (as an app's `main` would), and gets none of them.

mod support;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{IsolationLayer, Level};
use tower::ServiceExt;

const ROUNDS: usize = 20;
const REQUESTS: usize = 5;

async fn run(test: &'static str) {
    support::transport(); // the process-wide client of this binary
    let app = Router::new()
        .route(
            "/",
            get(move || async move {
                isoscope::set_tag("test", test);
                isoscope::add_breadcrumb(isoscope::Breadcrumb::new(test));
                tokio::task::yield_now().await;
                isoscope::capture_message(format!("request of {test}"), Level::Info);
                // A child spawned with the helper reports to the same test.
                isoscope::spawn(async move { isoscope::capture_message(format!("child of {test}"), Level::Info) })
                    .await
                    .unwrap();
            }),
        )
        .layer(IsolationLayer::new());
    for round in 0..ROUNDS {
        let events = support::schema::valid(
            isoscope::test::with_captured_events(async {
                let requests =
                    (0..REQUESTS).map(|_| app.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()));
                for response in futures_util::future::join_all(requests).await {
                    assert_eq!(response.unwrap().status(), 200);
                }
            })
            .await,
        );
        assert_eq!(events.len(), 2 * REQUESTS, "{test} round {round}: {events:?}");
        for event in &events {
            assert_eq!(event.tags.get("test").map(String::as_str), Some(test), "{test} round {round}: {event:?}");
            assert_eq!(support::crumbs(event), [test], "{test} round {round}");
        }
    }
    assert!(support::events_tagged("test", test).is_empty(), "the process-wide client got {test}'s events");
}

macro_rules! parallel_tests {
    ($($name:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run(stringify!($name)).await;
        }
    )*};
}

parallel_tests!(t1, t2, t3, t4, t5, t6, t7, t8);
