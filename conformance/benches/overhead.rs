//! Per-request overhead of `IsolationLayer` (also with a JSON body read), fork cost vs scope
//! size, and `add_breadcrumb`.
//!
//! ```sh
//! cargo bench --bench overhead
//! ```
//!
//! Compare medians within one run (the machines are shared and noisy): `request/bare` is the
//! baseline for `request/layer_*`, `post_json_*/bare` for `post_json_*/layer_*`, and `fork/10`
//! for `fork/1000`.

use std::hint::black_box;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::Request;
use isoscope::{Breadcrumb, IsolationLayer, MemoryTransport, Options, Scope, ScopeHandle};
use tower::ServiceExt;

fn setup() -> isoscope::ClientGuard {
    isoscope::init(Options::new().max_breadcrumbs(1000).transport(MemoryTransport::new())).unwrap()
}

async fn empty() -> &'static str {
    "ok"
}

async fn with_work() -> &'static str {
    isoscope::add_breadcrumb(Breadcrumb::new("handled"));
    isoscope::set_tag("handler", "with_work");
    "ok"
}

fn request(c: &mut Criterion) {
    let _guard = setup();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let bare = Router::new().route("/", get(empty));
    let layer_empty = Router::new().route("/", get(empty)).layer(IsolationLayer::new());
    let layer_work = Router::new().route("/", get(with_work)).layer(IsolationLayer::new());
    let mut group = c.benchmark_group("request");
    for (name, app) in [("bare", bare), ("layer_empty_handler", layer_empty), ("layer_breadcrumb_and_tag", layer_work)]
    {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let req = Request::get("/").header("user-agent", "bench").body(Body::empty()).unwrap();
                    let res = app.clone().oneshot(req).await.unwrap();
                    // Drop the body as hyper would after sending it (ends the request).
                    drop(black_box(res.into_body()));
                })
            })
        });
    }
    group.finish();
}

/// A JSON POST (~760 bytes) read by axum's `Json` extractor: without the layer, with it (the body's
/// tee keeping the bytes read, `RequestBodySize::Medium`), and with bodies off
/// (`RequestBodySize::None`): what the tee costs a request whose body is read.
fn request_body(c: &mut Criterion) {
    async fn order(axum::Json(order): axum::Json<serde_json::Value>) -> String {
        order["items"].as_array().map_or(0, Vec::len).to_string()
    }
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let items: Vec<serde_json::Value> = (0..40).map(|i| serde_json::json!({"sku": i, "qty": 2})).collect();
    let body = bytes::Bytes::from(serde_json::to_vec(&serde_json::json!({"items": items})).unwrap());
    let bare = Router::new().route("/", axum::routing::post(order));
    let layered = Router::new().route("/", axum::routing::post(order)).layer(IsolationLayer::new());
    let mut group = c.benchmark_group(format!("post_json_{}b", body.len()));
    for (name, app, size) in [
        ("bare", bare, isoscope::RequestBodySize::Medium),
        ("layer_body_kept", layered.clone(), isoscope::RequestBodySize::Medium),
        ("layer_body_off", layered, isoscope::RequestBodySize::None),
    ] {
        let _guard =
            isoscope::init(Options::new().max_request_body_size(size).transport(MemoryTransport::new())).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let req = Request::post("/").header("content-type", "application/json");
                    let res = app.clone().oneshot(req.body(Body::from(body.clone())).unwrap()).await.unwrap();
                    drop(black_box(axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap()));
                })
            })
        });
    }
    group.finish();
}

fn fork(c: &mut Criterion) {
    let _guard = setup();
    let mut group = c.benchmark_group("fork");
    for size in [10usize, 1000] {
        let mut scope = Scope::default();
        for i in 0..size {
            scope.set_tag(format!("tag{i}"), "value");
            scope.add_breadcrumb(Breadcrumb::new(format!("crumb {i}")));
        }
        let parent = ScopeHandle::new(scope);
        assert_eq!(parent.snapshot().breadcrumbs().len(), size);
        group.bench_with_input(BenchmarkId::from_parameter(size), &parent, |b, parent| {
            b.iter(|| black_box(parent.fork()))
        });
    }
    group.finish();
}

fn breadcrumbs(c: &mut Criterion) {
    let _guard = isoscope::init(Options::new().transport(MemoryTransport::new())).unwrap();
    let handle = isoscope::isolation_scope().fork();
    for _ in 0..100 {
        handle.run(|| isoscope::add_breadcrumb(Breadcrumb::new("warm-up"))); // full ring: steady state
    }
    // Bound the way a handler's scope is (task-local), as in a request.
    handle.run(|| {
        c.bench_function("breadcrumb_new_baseline", |b| b.iter(|| black_box(Breadcrumb::new("step"))));
        c.bench_function("add_breadcrumb", |b| {
            b.iter_batched(|| Breadcrumb::new("step"), isoscope::add_breadcrumb, criterion::BatchSize::SmallInput)
        });
        c.bench_function("breadcrumb_new_and_add", |b| {
            b.iter(|| isoscope::add_breadcrumb(black_box(Breadcrumb::new("step"))))
        });
        c.bench_function("set_tag", |b| b.iter(|| isoscope::set_tag(black_box("key"), black_box("value"))));
    });
    // Bound by a thread-local guard instead (the escape hatch for code that cannot take a closure).
    let _bound = handle.enter();
    c.bench_function("add_breadcrumb_under_guard", |b| {
        b.iter_batched(|| Breadcrumb::new("step"), isoscope::add_breadcrumb, criterion::BatchSize::SmallInput)
    });
}

criterion_group!(benches, request, request_body, fork, breadcrumbs);
criterion_main!(benches);
