//! Shared helpers for the behaviour tests: one client per test binary, event filters, and a
//! loopback server.
#![allow(dead_code, unreachable_pub, clippy::mem_forget)]

use std::net::SocketAddr;
use std::sync::OnceLock;

use isoscope::{Event, MemoryTransport, Options};

/// The test binary's client: installed once, never dropped, shared by every test in the binary.
/// Tests tell their events apart by a tag unique to the test.
pub fn transport() -> &'static MemoryTransport {
    static T: OnceLock<MemoryTransport> = OnceLock::new();
    T.get_or_init(|| {
        let transport = MemoryTransport::new();
        let guard = isoscope::init(Options::new().transport(transport.clone())).expect("init");
        std::mem::forget(guard); // the client lives for the whole test binary
        transport
    })
}

/// Events carrying tag `key` = `value` (each checked against Sentry's schema).
pub fn events_tagged(key: &str, value: &str) -> Vec<Event> {
    schema::valid(
        transport().events().into_iter().filter(|e| e.tags.get(key).map(String::as_str) == Some(value)).collect(),
    )
}

/// Breadcrumb messages of an event, oldest first.
pub fn crumbs(event: &Event) -> Vec<String> {
    event.breadcrumbs.iter().filter_map(|b| b.message.as_deref().map(str::to_owned)).collect()
}

/// Serves `app` on an ephemeral 127.0.0.1 port; returns the address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A reqwest client that never uses a proxy (tests only talk to 127.0.0.1).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().pool_max_idle_per_host(4).build().unwrap()
}
pub mod ingest;
pub mod schema;
