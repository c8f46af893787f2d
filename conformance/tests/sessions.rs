//! Release health in request mode: every request the layer serves is a session — `exited`,
//! `errored` (an error event captured in it), `crashed` (a panic), `abnormal` (cancelled) —
//! sent aggregated per minute as a `sessions` item to a loopback ingest server.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{IsolationLayer, Level, Options};
use support::ingest::{Answer, Ingest};
use tower::ServiceExt;

fn app() -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/error",
            get(|| async {
                let err = "x".parse::<u8>().unwrap_err();
                isoscope::capture_error(&err);
                "handled"
            }),
        )
        .route(
            "/message",
            get(|| async {
                isoscope::capture_message("only a message, even at error level", Level::Error);
                "ok"
            }),
        )
        .route("/server-error", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/hook-dropped",
            get(|| async {
                isoscope::capture_error(&std::io::Error::other("dropped by before_send"));
                "ok"
            }),
        )
        .route(
            "/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("the handler crashed");
                }
                "unreachable"
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "too late"
            }),
        )
        .layer(IsolationLayer::new())
}

async fn call(path: &str) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    match path {
        // The client gives up before the response: the request is cancelled.
        "/slow" => assert!(tokio::time::timeout(Duration::from_millis(50), app().oneshot(request)).await.is_err()),
        "/panic" => {
            let served = tokio::spawn(app().oneshot(request)).await;
            assert!(served.is_err(), "the panic unwinds through the layer");
        }
        _ => {
            let res = app().oneshot(request).await.unwrap();
            let _ = axum::body::to_bytes(res.into_body(), usize::MAX).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_a_session_counted_by_how_it_ended() {
    let server = Ingest::start(Answer::Accept).await;
    let options = Options::new().dsn(server.dsn()).release("shop@1.4.2").environment("staging").before_send(|e| {
        let dropped = e.exception.iter().any(|x| x.value.as_deref() == Some("dropped by before_send"));
        (!dropped).then_some(e)
    });
    let guard = isoscope::init(options).unwrap();
    // An error `before_send` drops does not count (the sessions spec's rule).
    for path in ["/ok", "/ok", "/error", "/message", "/server-error", "/hook-dropped", "/panic", "/slow"] {
        call(path).await;
    }
    guard.flush(Duration::from_secs(10));
    let expected: BTreeMap<String, u64> =
        [("exited", 5), ("errored", 1), ("crashed", 1), ("abnormal", 1)].map(|(k, v)| (k.to_owned(), v)).into();
    assert_eq!(server.session_counts(), expected, "{:#?}", server.sessions());
    let first = &server.sessions()[0];
    assert_eq!(first["attrs"]["release"], "shop@1.4.2");
    assert_eq!(first["attrs"]["environment"], "staging");
    // Nothing more to send: a second flush sends no sessions.
    let sent = server.sessions().len();
    assert!(guard.flush(Duration::from_secs(10)));
    assert_eq!(server.sessions().len(), sent);
    drop(guard);

    // Without a release (or with auto_session_tracking off) nothing is counted or sent.
    std::env::remove_var("SENTRY_RELEASE");
    let quiet = Ingest::start(Answer::Accept).await;
    let guard = isoscope::init(Options::new().dsn(quiet.dsn())).unwrap();
    call("/ok").await;
    guard.flush(Duration::from_secs(10));
    drop(guard);
    let off = Ingest::start(Answer::Accept).await;
    let guard = isoscope::init(Options::new().dsn(off.dsn()).release("r@1").auto_session_tracking(false)).unwrap();
    call("/ok").await;
    guard.flush(Duration::from_secs(10));
    drop(guard);
    assert!(quiet.sessions().is_empty() && off.sessions().is_empty());
}
