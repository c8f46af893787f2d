//! Two services on loopback, each behind `IsolationLayer`: `checkout` calls `inventory` with
//! `send_traced` (trace headers, an `http.client` span, an `http` breadcrumb). Prints the
//! events of both, linked by one trace id, and the trace's transaction tree (inventory's request
//! under checkout's `http.client` span), then checks the links.
//!
//! ```sh
//! cargo run --example tracing_across_services
//! ```

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use isoscope::integrations::reqwest::TraceRequest;
use isoscope::{IsolationLayer, Level, MemoryTransport, Options, Transaction};

async fn checkout(State(inventory): State<SocketAddr>, Path(order): Path<u32>) -> String {
    isoscope::set_tag("service", "checkout");
    // `send_traced`: the trace headers, an `http.client` span (inventory's parent) and an
    // `http` breadcrumb.
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let res = client.get(format!("http://{inventory}/stock/{order}")).send_traced().await;
    let stock = res.map(|r| r.status().as_u16()).unwrap_or(0);
    if stock != 200 {
        isoscope::capture_message(format!("order {order}: inventory answered {stock}"), Level::Error);
    }
    format!("order {order}: stock {stock}")
}

async fn stock(Path(order): Path<u32>) -> (http::StatusCode, &'static str) {
    isoscope::set_tag("service", "inventory");
    {
        let _span = isoscope::start_span("db.query", "SELECT qty FROM stock WHERE item = ?");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    isoscope::capture_message(format!("item for order {order} is out of stock"), Level::Warning);
    (http::StatusCode::CONFLICT, "out of stock")
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

/// One transaction and its spans, indented under its parent.
fn print_tree(all: &[Transaction], t: &Transaction, depth: usize) {
    let ms = |a: f64, b: f64| (b - a) * 1000.0;
    let pad = "   ".repeat(depth);
    println!(
        "{pad}└─ {} {} [{}] {:.1} ms  span {}",
        t.op,
        t.name,
        t.status,
        ms(t.start_timestamp, t.timestamp),
        t.span_id
    );
    for span in &t.spans {
        println!(
            "{pad}   ├─ {} {} {:.1} ms  span {}",
            span.op,
            span.description.as_deref().unwrap_or(""),
            ms(span.start_timestamp, span.timestamp),
            span.span_id
        );
        for child in all.iter().filter(|c| c.parent_span_id == Some(span.span_id)) {
            print_tree(all, child, depth + 2);
        }
    }
    for child in all.iter().filter(|c| c.parent_span_id == Some(t.span_id)) {
        print_tree(all, child, depth + 1);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let transport = MemoryTransport::new();
    let guard =
        isoscope::init(Options::new().release("shop@1.0.0").traces_sample_rate(1.0).transport(transport.clone()))?;
    let inventory = serve(Router::new().route("/stock/{order}", get(stock)).layer(IsolationLayer::new())).await;
    let checkout_app =
        Router::new().route("/checkout/{order}", get(checkout)).layer(IsolationLayer::new()).with_state(inventory);
    let checkout_addr = serve(checkout_app).await;

    let client = reqwest::Client::builder().no_proxy().build()?;
    let body = client.get(format!("http://{checkout_addr}/checkout/7")).send().await?.text().await?;
    println!("GET /checkout/7 -> {body}\n");
    drop(guard); // flushes

    let events = transport.events();
    let transactions = transport.transactions();
    println!("events:");
    for e in &events {
        let trace = &e.contexts["trace"];
        println!(
            "  [{}] {:<44} trace {} span {} parent {}",
            e.tags.get("service").map_or("?", String::as_str),
            e.message.as_deref().unwrap_or(""),
            trace["trace_id"].as_str().unwrap_or(""),
            trace["span_id"].as_str().unwrap_or(""),
            trace["parent_span_id"].as_str().unwrap_or("-"),
        );
    }
    let root = transactions.iter().find(|t| t.parent_span_id.is_none()).ok_or("no root transaction")?;
    println!("\ntrace {}:", root.trace_id);
    print_tree(&transactions, root, 0);

    // The checks: one trace across both services, inventory's request a child of checkout's.
    let of = |service: &str| events.iter().find(|e| e.tags.get("service").map(String::as_str) == Some(service));
    let (checkout_event, inventory_event) =
        (of("checkout").ok_or("no checkout event")?, of("inventory").ok_or("no inventory event")?);
    let inventory_tx = transactions.iter().find(|t| t.name == "/stock/{order}").ok_or("no inventory transaction")?;
    let checkout_tx = transactions.iter().find(|t| t.name == "/checkout/{order}").ok_or("no checkout transaction")?;
    let same_trace = events.iter().all(|e| e.contexts["trace"]["trace_id"] == root.trace_id.to_string())
        && transactions.iter().all(|t| t.trace_id == root.trace_id);
    let call = checkout_tx.spans.iter().find(|s| s.op == "http.client").ok_or("no http.client span")?;
    if !same_trace
        || inventory_tx.parent_span_id != Some(call.span_id)
        || call.parent_span_id != checkout_tx.span_id
        || inventory_event.contexts["trace"]["parent_span_id"] != call.span_id.to_string()
        || checkout_event.contexts["trace"]["span_id"] != checkout_tx.span_id.to_string()
        || inventory_tx.status != "already_exists"
        || call.status != Some(isoscope::SpanStatus::AlreadyExists)
        || !inventory_tx.spans.iter().any(|s| s.op == "db.query")
    {
        return Err("the two services' events and transactions are not linked as expected".into());
    }
    eprintln!(
        "tracing_across_services: 2 services, 1 trace, {} events, {} transactions, linked",
        events.len(),
        transactions.len()
    );
    Ok(())
}
