//! The tracing integration with a real `tracing_subscriber::registry()` and concurrent
//! requests: every log line lands in its own request's scope, nowhere else.
#![cfg(feature = "tracing")]

mod support;

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, StreamExt};
use http::Request;
use isoscope::integrations::tracing::BreadcrumbLayer;
use isoscope::IsolationLayer;
use support::{crumbs, transport};
use tower::ServiceExt;
use tracing::Instrument;
use tracing_subscriber::prelude::*;

fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        transport();
        tracing_subscriber::registry().with(BreadcrumbLayer::new()).init();
    });
}

async fn handler(Path(i): Path<u32>) -> &'static str {
    let span = tracing::info_span!("handle", req = i);
    async {
        tracing::info!(step = 1, "req{i}-start");
        tokio::task::yield_now().await;
        isoscope::spawn(async move { tracing::info!("req{i}-child") }).await.unwrap();
        isoscope::spawn_blocking(move || tracing::warn!("req{i}-blocking")).await.unwrap();
        tracing::debug!("req{i}-too-verbose");
        tokio::task::yield_now().await;
        tracing::error!(code = 42, "req{i}-failed");
    }
    .instrument(span)
    .await;
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_become_breadcrumbs_of_their_own_request_and_errors_become_events() {
    install();
    let app = Router::new().route("/log/{i}", get(handler)).layer(IsolationLayer::new());
    const N: u32 = 300;
    stream::iter(0..N)
        .map(|i| {
            let app = app.clone();
            async move { app.oneshot(Request::get(format!("/log/{i}")).body(Body::empty()).unwrap()).await.unwrap() }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;

    let events: Vec<_> = support::schema::valid(
        transport()
            .events()
            .into_iter()
            .filter(|e| e.message.as_deref().is_some_and(|m| m.ends_with("-failed")))
            .collect(),
    );
    assert_eq!(events.len(), N as usize);
    for event in &events {
        let i = event.message.as_deref().unwrap().trim_start_matches("req").trim_end_matches("-failed").to_owned();
        // Fork is the default: the child's and the blocking job's lines stay in their forks.
        assert_eq!(crumbs(event), [format!("req{i}-start")], "request {i}");
        assert_eq!(event.level, Some(isoscope::Level::Error));
        assert_eq!(event.logger.as_deref(), Some("tracing"));
        assert_eq!(event.extra["code"], 42);
        assert_eq!(event.extra["handle.req"], i.parse::<u32>().unwrap());
        let crumb = &event.breadcrumbs[0];
        assert_eq!(crumb.category.as_deref(), Some("tracing"));
        assert_eq!(crumb.data["step"], 1);
        assert_eq!(crumb.data["spans"], serde_json::json!(["handle"]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_log_lines_stay_in_the_childs_fork() {
    install();
    let request = isoscope::isolation_scope().fork();
    request.configure(|s| s.set_tag("tracing_share", "1"));
    let child_scope =
        request.bind(async { isoscope::spawn(async { isoscope::isolation_scope() }).await.unwrap() }).await;
    // Logging inside a child goes to the child's (forked) scope.
    child_scope.run(|| tracing::info!("in child scope"));
    assert!(child_scope.snapshot().breadcrumbs().any(|b| b.message.as_deref() == Some("in child scope")));
    assert!(request.snapshot().breadcrumbs().all(|b| b.message.as_deref() != Some("in child scope")));
}
