//! Per-request overhead of `IsolationLayer`, fork cost vs scope size, and `add_breadcrumb`.
//!
//! ```sh
//! cargo bench --bench overhead
//! ```
//!
//! Compare medians within one run (the machines are shared and noisy): `request/bare` is the
//! baseline for `request/layer_*`, and `fork/10` for `fork/1000`.

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

criterion_group!(benches, request, fork, breadcrumbs);
criterion_main!(benches);
