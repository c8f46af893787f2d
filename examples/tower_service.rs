//! No axum: a plain hyper server and a tower `ServiceBuilder` with `IsolationLayer`.
//!
//! ```sh
//! cargo run --example tower_service
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use isoscope::{Breadcrumb, IsolationLayer, Level, MemoryTransport, Options};
use tower::ServiceBuilder;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    isoscope::add_breadcrumb(Breadcrumb::new(format!("handling {path}")));
    isoscope::set_tag("path", path.clone());
    if path.ends_with("/fail") {
        isoscope::capture_message(format!("{path} failed"), Level::Error);
        return Ok(Response::builder().status(500).body(Full::new(Bytes::from("failed"))).unwrap());
    }
    Ok(Response::new(Full::new(Bytes::from("ok"))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let transport = MemoryTransport::new();
    let _guard = isoscope::init(Options::new().transport(transport.clone()))?;

    let service = ServiceBuilder::new().layer(IsolationLayer::new().capture_server_errors()).service_fn(handle);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });

    let client = reqwest::Client::builder().no_proxy().build()?;
    for path in ["/a", "/b/fail", "/c", "/d/fail"] {
        let res = client.get(format!("http://{addr}{path}")).send().await?;
        eprintln!("GET {path} -> {}", res.status());
    }
    let events = transport.events();
    for event in &events {
        println!("{}", serde_json::to_string(event)?);
    }
    // Each failing request: one event, its own message (the layer does not report the 5xx of a
    // request that captured already), with its own path tag and breadcrumb only.
    let ok = events.len() == 2
        && events.iter().all(|e| e.message.as_deref().is_some_and(|m| m.ends_with(" failed")))
        && events.iter().all(|e| {
            let path = &e.tags["path"];
            e.breadcrumbs.len() == 1 && e.breadcrumbs[0].message.as_deref() == Some(&format!("handling {path}"))
        });
    if !ok {
        return Err("unexpected events".into());
    }
    eprintln!("tower_service: {} events, each with only its own request's breadcrumb", events.len());
    Ok(())
}
