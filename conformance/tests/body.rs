//! Response bodies stream after the handler's future completed: the request scope is bound
//! while they are polled and dropped. Real HTTP over keep-alive connections on 127.0.0.1.

mod support;

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::Request;
use http_body_util::BodyExt;
use isoscope::{Breadcrumb, IsolationLayer, Level, Outcome};
use support::{crumbs, events_tagged, http_client, serve, transport};
use tower::ServiceExt;

/// A body whose chunks add breadcrumbs when polled, and which captures at its end.
fn streaming_body(i: u32) -> Body {
    let chunks = stream::unfold(0u32, move |n| async move {
        if n == 3 {
            isoscope::add_breadcrumb(Breadcrumb::new(format!("r{i}-eos")));
            isoscope::capture_message("streamed", Level::Info);
            return None;
        }
        tokio::task::yield_now().await;
        isoscope::add_breadcrumb(Breadcrumb::new(format!("r{i}-chunk{n}")));
        Some((Ok::<_, Infallible>(Bytes::from(format!("chunk{n};"))), n + 1))
    });
    Body::from_stream(chunks)
}

fn app() -> Router {
    Router::new()
        .route(
            "/stream/{i}",
            get(|Path(i): Path<u32>| async move {
                isoscope::set_tag("stream_req", i.to_string());
                isoscope::add_breadcrumb(Breadcrumb::new(format!("r{i}-handler")));
                streaming_body(i)
            }),
        )
        .route(
            "/plain/{i}",
            get(|Path(i): Path<u32>| async move {
                let leftover = isoscope::isolation_scope().snapshot();
                assert_eq!(leftover.tag("stream_req"), None, "a streaming request leaked into request {i}");
                isoscope::set_tag("plain_req", i.to_string());
                isoscope::add_breadcrumb(Breadcrumb::new(format!("p{i}")));
                isoscope::capture_message("plain", Level::Info);
                "plain"
            }),
        )
        .layer(IsolationLayer::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_bodies_over_keep_alive_connections_do_not_leak() {
    transport();
    let addr = serve(app()).await;
    let client = http_client();
    const N: u32 = 400;
    let results: Vec<String> = stream::iter(0..N)
        .map(|i| {
            let client = client.clone();
            async move {
                let path = if i % 2 == 0 { format!("stream/{i}") } else { format!("plain/{i}") };
                let res = client.get(format!("http://{addr}/{path}")).send().await.unwrap();
                assert!(res.status().is_success());
                res.text().await.unwrap()
            }
        })
        .buffer_unordered(4) // few connections, many requests each
        .collect()
        .await;
    assert_eq!(results.iter().filter(|b| *b == "chunk0;chunk1;chunk2;").count(), N as usize / 2);

    for i in (0..N).step_by(2) {
        let events = events_tagged("stream_req", &i.to_string());
        assert_eq!(events.len(), 1, "request {i}");
        let expected: Vec<String> =
            ["handler", "chunk0", "chunk1", "chunk2", "eos"].iter().map(|s| format!("r{i}-{s}")).collect();
        assert_eq!(crumbs(&events[0]), expected);
    }
    for i in (1..N).step_by(2) {
        let events = events_tagged("plain_req", &i.to_string());
        assert_eq!(events.len(), 1);
        assert_eq!(crumbs(&events[0]), [format!("p{i}")]);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_request_ends_at_end_of_stream_or_when_the_body_is_dropped_early() {
    transport();
    let res = app().oneshot(Request::get("/stream/100001").body(Body::empty()).unwrap()).await.unwrap();
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "chunk0;");
    drop(body); // client disconnects mid-stream
    assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
    assert!(events_tagged("stream_req", "100001").is_empty(), "no end of stream, no capture");

    let cancelled_before = isoscope::stats().requests_cancelled;
    let res = app().oneshot(Request::get("/stream/100002").body(Body::empty()).unwrap()).await.unwrap();
    let (_, body) = res.into_parts();
    drop(body);
    assert!(isoscope::stats().requests_cancelled > cancelled_before);

    let res = app().oneshot(Request::get("/stream/100003").body(Body::empty()).unwrap()).await.unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b"chunk0;chunk1;chunk2;");
    let events = events_tagged("stream_req", "100003");
    assert_eq!(events.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn outcome_is_recorded_on_the_request_scope() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let _ = tx.lock().unwrap().take().map(|tx| tx.send(isoscope::isolation_scope()));
                async { "done" }
            }),
        )
        .layer(IsolationLayer::new());
    let res = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    let scope = rx.await.unwrap();
    assert_eq!(scope.outcome(), None, "the body has not been read yet");
    let _ = res.into_body().collect().await.unwrap();
    assert_eq!(scope.outcome(), Some(Outcome::Completed));
}

/// The layer is generic over any `Service<http::Request<B>>`: plain hyper, no axum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_with_a_plain_hyper_server_and_tower_service() {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    transport();
    let service = tower::ServiceBuilder::new().layer(IsolationLayer::new()).service_fn(
        |req: Request<hyper::body::Incoming>| async move {
            isoscope::set_tag("hyper_case", req.uri().path().trim_start_matches('/').to_owned());
            isoscope::add_breadcrumb(Breadcrumb::new(req.uri().path().to_owned()));
            isoscope::capture_message("from hyper", Level::Info);
            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(Bytes::from("ok"))))
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = TowerToHyperService::new(service.clone());
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
        }
    });
    let client = http_client();
    for i in 0..20 {
        let text = client.get(format!("http://{addr}/h{i}")).send().await.unwrap().text().await.unwrap();
        assert_eq!(text, "ok");
    }
    for i in 0..20 {
        let events = events_tagged("hyper_case", &format!("h{i}"));
        assert_eq!(events.len(), 1);
        assert_eq!(crumbs(&events[0]), [format!("/h{i}")]);
        assert_eq!(events[0].request.as_ref().unwrap().url.as_deref(), Some(format!("http://{addr}/h{i}").as_str()));
    }
}
