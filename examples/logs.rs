//! Structured logs: an axum app whose handlers log with `tracing`, with the `log` crate and
//! with `isoscope::logs::info!`; every record becomes a Sentry log in its request's trace.
//!
//! ```sh
//! cargo run --example logs --features tracing,log
//! ```
//!
//! With `ISOSCOPE_DSN` (or `SENTRY_DSN`) set, the logs go to that server; without, they are
//! printed as JSON lines on stdout (`"type": "log"`). Either way the example checks that each
//! request's three records share one trace, and exits 0.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use futures_util::future::join_all;
use isoscope::integrations::tracing::BreadcrumbLayer;
use isoscope::logs::LogAttribute;
use isoscope::{IsolationLayer, Options};
use tracing_subscriber::prelude::*;

async fn order(Path(id): Path<u32>) -> String {
    tracing::info!(order_id = id, "order received");
    log::info!(target: "payments", amount_cents = 1299; "charging order {id}");
    isoscope::logs::info!(order_id = id; "order {} shipped", id);
    format!("order {id}: shipped")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Every record that is sent, as `before_send_log` sees it: (its order, its trace).
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = seen.clone();
    let options = Options::new().enable_logs(true).release("logs-example@0.1.0").before_send_log(move |log| {
        let order = match log.attributes.get("order_id") {
            Some(LogAttribute::Integer(id)) => id.to_string(),
            _ => log.body.rsplit(' ').next().unwrap_or_default().to_owned(), // "charging order 3"
        };
        record.lock().expect("lock").push((order, log.trace_id.to_string()));
        Some(log)
    });
    let guard = isoscope::init(options)?; // a DSN from the environment, else stdout
                                          // `set_global_default`, not `.init()`: `init` would also route `log` records into
                                          // tracing, where isoscope's `log::Logger` is what takes them here.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(BreadcrumbLayer::new()))?;
    isoscope::integrations::log::Logger::new().install()?;

    let app = Router::new().route("/orders/{id}", get(order)).layer(IsolationLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });

    let client = reqwest::Client::builder().no_proxy().build()?;
    let answers = join_all((1..=5).map(|id| {
        let client = client.clone();
        async move { client.get(format!("http://{addr}/orders/{id}")).send().await?.text().await }
    }))
    .await;
    for answer in answers {
        answer?;
    }
    if !guard.flush(Duration::from_secs(10)) {
        return Err("some logs were not delivered (ISOSCOPE_DEBUG=1 says why)".into());
    }

    let seen = seen.lock().expect("lock").clone();
    let mut traces: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (order, trace) in seen {
        traces.entry(order).or_default().push(trace);
    }
    let one_trace_each = traces.values().all(|t| t.len() == 3 && t.iter().all(|x| *x == t[0]));
    let distinct: std::collections::BTreeSet<&String> = traces.values().map(|t| &t[0]).collect();
    if traces.len() != 5 || !one_trace_each || distinct.len() != 5 {
        return Err(format!("expected 3 logs in one trace per order, 5 traces: {traces:?}").into());
    }
    eprintln!("logs: 5 requests, 15 logs, each request's 3 logs in its own trace");
    Ok(())
}
