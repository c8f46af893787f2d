//! axum + `tracing-subscriber`'s fmt layer + isoscope's `BreadcrumbLayer`: log lines become
//! breadcrumbs of the request they belong to, and `error!` lines become events.
//!
//! ```sh
//! cargo run --example tracing --features tracing
//! ```

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use futures_util::future::join_all;
use isoscope::integrations::tracing::BreadcrumbLayer;
use isoscope::{IsolationLayer, MemoryTransport, Options};
use tracing_subscriber::prelude::*;

async fn user(Path(id): Path<u32>) -> String {
    let span = tracing::info_span!("load_user", user_id = id);
    let _entered = span.enter(); // sync section only: no `.await` while entered
    tracing::info!(cache = "miss", "looking up user {id}");
    if id % 3 == 0 {
        tracing::error!(user_id = id, "user {id} has a corrupt profile");
        return format!("user {id}: error");
    }
    tracing::info!("user {id} loaded");
    format!("user {id}: ok")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Events go to memory here so the example can check them; drop `.transport(..)` to get
    // JSON lines on stdout (or set ISOSCOPE_DSN).
    let transport = MemoryTransport::new();
    let _guard = isoscope::init(Options::new().transport(transport.clone()))?;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false))
        .with(BreadcrumbLayer::new())
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .init();

    let app = Router::new().route("/users/{id}", get(user)).layer(IsolationLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });

    let client = reqwest::Client::builder().no_proxy().build()?;
    let bodies = join_all((1..=9).map(|id| {
        let client = client.clone();
        async move { client.get(format!("http://{addr}/users/{id}")).send().await?.text().await }
    }))
    .await;
    for body in bodies {
        body?;
    }

    let events = transport.events();
    for event in &events {
        println!("{}", serde_json::to_string(event)?);
        let id = event.extra["user_id"].to_string();
        let own = event.breadcrumbs.iter().all(|b| b.message.as_deref().unwrap_or("").contains(&format!("user {id}")));
        if !own {
            return Err(format!("event for user {id} carries another request's log lines").into());
        }
    }
    eprintln!("tracing: {} error events (users 3, 6, 9), each with only its own request's log lines", events.len());
    if events.len() != 3 {
        return Err("expected 3 events".into());
    }
    Ok(())
}
