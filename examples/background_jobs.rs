//! A request hands work to `isoscope::spawn` and `isoscope::spawn_blocking`: what each
//! propagation policy (`Fork`, `Share`, `None`) means for the request's scope and the child's.
//!
//! ```sh
//! cargo run --example background_jobs
//! ```

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{Breadcrumb, IsolationLayer, Level, MemoryTransport, Options, Propagation};
use tower::ServiceExt;

async fn checkout() -> &'static str {
    isoscope::set_tag("order", "1042");
    isoscope::add_breadcrumb(Breadcrumb::new("cart validated"));
    // Async work: a task that sends the confirmation mail.
    isoscope::spawn(async {
        isoscope::add_breadcrumb(Breadcrumb::new("mail queued (async child)"));
        isoscope::capture_message("child: mail queued", Level::Info);
    })
    .await
    .unwrap();
    // Blocking work: rendering the invoice PDF on the blocking pool.
    isoscope::spawn_blocking(|| {
        isoscope::add_breadcrumb(Breadcrumb::new("invoice rendered (blocking job)"));
        isoscope::capture_message("job: invoice rendered", Level::Info);
    })
    .await
    .unwrap();
    isoscope::capture_message("request: checkout done", Level::Info);
    "ok"
}

fn describe(event: &isoscope::Event) -> String {
    let crumbs: Vec<_> = event.breadcrumbs.iter().filter_map(|b| b.message.as_deref()).collect();
    format!(
        "{:<28} order tag: {:<6} breadcrumbs: {:?}",
        event.message.as_deref().unwrap_or(""),
        event.tags.get("order").map_or("-", String::as_str),
        crumbs
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = Router::new().route("/checkout", get(checkout)).layer(IsolationLayer::new());
    for policy in [Propagation::Fork, Propagation::Share, Propagation::None] {
        let transport = MemoryTransport::new();
        let guard = isoscope::init(Options::new().transport(transport.clone()).propagation(policy))?;
        app.clone().oneshot(Request::get("/checkout").body(Body::empty())?).await?;
        drop(guard);

        // Human-readable on stderr, the events as JSON lines on stdout (as the other examples).
        eprintln!("Propagation::{policy:?}");
        let events = transport.events();
        for event in &events {
            eprintln!("  {}", describe(event));
            println!("{}", serde_json::to_string(event)?);
        }
        let request =
            events.iter().find(|e| e.message.as_deref() == Some("request: checkout done")).ok_or("no event")?;
        let child = events.iter().find(|e| e.message.as_deref() == Some("child: mail queued")).ok_or("no event")?;
        let child_sees_parent = child.tags.contains_key("order");
        let parent_sees_child =
            request.breadcrumbs.iter().any(|b| b.message.as_deref() == Some("mail queued (async child)"));
        let expected = match policy {
            Propagation::Fork => (true, false),
            Propagation::Share => (true, true),
            Propagation::None => (false, false),
        };
        if (child_sees_parent, parent_sees_child) != expected {
            return Err(format!("{policy:?}: unexpected propagation").into());
        }
    }
    Ok(())
}
