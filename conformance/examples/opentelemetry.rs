//! OpenTelemetry and Sentry in one trace: an axum app traced with `tracing` +
//! `tracing-opentelemetry` (spans go to an OpenTelemetry exporter — here one that keeps them in
//! memory), whose errors go to Sentry (or Bugsink, GlitchTip) through isoscope with the
//! `opentelemetry` feature: each error carries the trace id of the OpenTelemetry span it
//! happened in, so the error is found from the trace and the trace from the error.
//!
//! ```sh
//! cargo run -p isoscope-conformance --example opentelemetry
//! ```
//!
//! (In the `conformance` package: the OpenTelemetry SDK is its dependency, not the library's.)
//! With `ISOSCOPE_DSN` set, events go to that server; without, they are JSON lines on stdout.
//! Either way the example checks that every error's trace id is its OpenTelemetry span's, and
//! exits 0.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use isoscope::{IsolationLayer, Options};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::prelude::*;

/// The trace ids the handlers saw on their OpenTelemetry spans.
type Seen = Arc<Mutex<Vec<String>>>;

async fn order(Path(id): Path<u32>, seen: Seen) -> String {
    let span = tracing::info_span!("load_order", order_id = id);
    let _entered = span.enter(); // no `.await` while entered
    let trace = span.context().span().span_context().trace_id().to_string();
    seen.lock().expect("lock").push(trace);
    let err = format!("{id}x").parse::<u32>().unwrap_err();
    isoscope::capture_error(&err);
    format!("order {id}: error reported")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("shop"));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(otel))?;
    // Every event passes here: its trace id, to check against the spans'.
    let traced: Seen = Arc::default();
    let sent = traced.clone();
    let options = Options::new().before_send(move |event| {
        let trace = event.contexts.get("trace").and_then(|t| t["trace_id"].as_str()).unwrap_or_default();
        sent.lock().expect("lock").push(trace.to_owned());
        Some(event)
    });
    let guard = isoscope::init(options)?; // a DSN from the environment, else stdout

    let seen: Seen = Arc::default();
    let handler_seen = seen.clone();
    let app = Router::new()
        .route("/orders/{id}", get(move |id| order(id, handler_seen.clone())))
        .layer(IsolationLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });
    let client = reqwest::Client::builder().no_proxy().build()?;
    for id in 1..=3 {
        client.get(format!("http://{addr}/orders/{id}")).send().await?.text().await?;
    }
    if !guard.flush(Duration::from_secs(10)) {
        return Err("some events were not delivered (ISOSCOPE_DEBUG=1 says why)".into());
    }
    let (mut seen, mut traced) = (seen.lock().expect("lock").clone(), traced.lock().expect("lock").clone());
    seen.sort();
    traced.sort();
    if seen.len() != 3 || seen != traced {
        return Err(format!("the events' traces {traced:?} are not the OpenTelemetry spans' {seen:?}").into());
    }
    eprintln!("opentelemetry: 3 errors, each in its OpenTelemetry span's trace");
    Ok(())
}
