//! The isoscope quickstart: an axum app with `IsolationLayer` on 127.0.0.1, driven by
//! concurrent reqwest requests. Every captured event is printed as one JSON line (to stdout,
//! or to the file named by `ISOSCOPE_OUTPUT`), and the example checks that each event carries
//! only its own request's breadcrumbs.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use futures_util::future::join_all;
use isoscope::{Breadcrumb, Event, IsolationLayer, Level, Options};
use tower_http::catch_panic::CatchPanicLayer;

/// Adds breadcrumbs (yielding between them, so requests interleave on the worker threads),
/// tags the request, hands work to a child task, and captures a message.
async fn order(Path(id): Path<u32>) -> String {
    isoscope::set_tag("order_id", id.to_string());
    for step in ["load", "price", "reserve"] {
        isoscope::add_breadcrumb(Breadcrumb::new(format!("order {id}: {step}")).category("order"));
        tokio::task::yield_now().await;
    }
    isoscope::spawn(async move {
        isoscope::add_breadcrumb(Breadcrumb::new(format!("order {id}: notify (child task)")));
    })
    .await
    .expect("child task");
    isoscope::capture_message(format!("order {id} processed"), Level::Info);
    format!("order {id} ok")
}

/// Returns an error, captured with the request's scope.
async fn pay(Path(id): Path<u32>) -> StatusCode {
    isoscope::set_tag("order_id", id.to_string());
    isoscope::add_breadcrumb(Breadcrumb::new(format!("order {id}: charge card")).category("payment"));
    tokio::task::yield_now().await;
    if let Err(err) = format!("{id}€").parse::<u64>() {
        isoscope::capture_error(&err);
    }
    StatusCode::BAD_GATEWAY
}

/// Panics: init's panic hook captures the panic with the request's scope, and
/// `CatchPanicLayer` answers 500.
async fn crash(Path(id): Path<u32>) -> &'static str {
    isoscope::add_breadcrumb(Breadcrumb::new(format!("order {id}: about to crash")));
    tokio::task::yield_now().await;
    panic!("order {id}: inventory is corrupt");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Panics are captured as events; keep the default hook's stderr output to one line. (Set
    // before `init`: init's panic hook chains to the hook in place, which still runs.)
    std::panic::set_hook(Box::new(|info| eprintln!("(handler panicked: {info})")));
    // Keep a copy of every event as sent, to check isolation at the end.
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let record = seen.clone();
    let _guard = isoscope::init(
        Options::new().release(concat!("quickstart@", env!("CARGO_PKG_VERSION"))).before_send(move |event| {
            record.lock().unwrap().push(event.clone());
            Some(event)
        }),
    )?;

    let app = Router::new()
        .route("/orders/{id}", get(order))
        .route("/pay/{id}", get(pay))
        .route("/crash/{id}", get(crash))
        .layer(IsolationLayer::new())
        .layer(CatchPanicLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });

    let client = reqwest::Client::builder().no_proxy().build()?;
    let requests = (0..30u32).map(|i| {
        let path = match i % 10 {
            7 => format!("pay/{i}"),
            9 => format!("crash/{i}"),
            _ => format!("orders/{i}"),
        };
        let client = client.clone();
        async move { client.get(format!("http://{addr}/{path}")).send().await.map(|r| r.status()) }
    });
    let statuses = join_all(requests).await;
    for status in &statuses {
        status.as_ref().map_err(|e| format!("request failed: {e}"))?;
    }
    isoscope::flush(Duration::from_secs(5));

    // Every event must carry only breadcrumbs of its own request ("order {id}: ...").
    let events = seen.lock().unwrap().clone();
    let mut foreign = 0;
    for event in &events {
        let id = event.tags.get("order_id").cloned().or_else(|| {
            event
                .exception
                .first()
                .and_then(|e| e.value.as_deref())
                .and_then(|v| v.split([' ', ':']).nth(1))
                .map(str::to_owned)
        });
        let prefix = format!("order {}:", id.unwrap_or_default());
        foreign +=
            event.breadcrumbs.iter().filter(|b| !b.message.as_deref().unwrap_or("").starts_with(&prefix)).count();
    }
    let panics = events.iter().filter(|e| e.exception.iter().any(|x| x.ty == "panic")).count();
    let errors = events.iter().filter(|e| e.exception.iter().any(|x| x.ty == "ParseIntError")).count();
    eprintln!(
        "quickstart: {} requests, {} events ({} messages, {} errors, {} panics), {} foreign breadcrumbs",
        statuses.len(),
        events.len(),
        events.len() - panics - errors,
        errors,
        panics,
        foreign
    );
    if foreign > 0 || events.len() != statuses.len() {
        return Err("isolation check failed".into());
    }
    eprintln!("quickstart: every event carries only its own request's breadcrumbs");
    Ok(())
}
