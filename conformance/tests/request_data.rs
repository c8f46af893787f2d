//! What events say of the request and its response, with `send_default_pii(true)` (this
//! binary's client): the client's IP address (proxy headers, else the connection's peer, and
//! not the headers when they are not trusted), and `contexts.response` (status and headers
//! minus sensitive ones) once the response is known. Without `send_default_pii`, see
//! `failed_requests.rs`.

mod support;

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use isoscope::{Event, IsolationLayer, Level, MemoryTransport, Options};
use tower::ServiceExt;

fn transport() -> &'static MemoryTransport {
    static T: OnceLock<MemoryTransport> = OnceLock::new();
    T.get_or_init(|| {
        let transport = MemoryTransport::new();
        static GUARD: OnceLock<isoscope::ClientGuard> = OnceLock::new();
        let _ = GUARD.set(isoscope::init(Options::new().send_default_pii(true).transport(transport.clone())).unwrap());
        transport
    })
}

fn app() -> Router {
    Router::new()
        .route(
            "/who",
            get(|| async {
                isoscope::set_user(Some(isoscope::User::with_id("42")));
                isoscope::capture_message("who", Level::Info);
                "ok"
            }),
        )
        .route(
            "/fail",
            get(|| async {
                let headers = [("set-cookie", "session=s3cret"), ("x-served-by", "node-7")];
                (StatusCode::SERVICE_UNAVAILABLE, headers, "down")
            }),
        )
        .layer(IsolationLayer::new().capture_server_errors())
}

fn event_of(transport: &MemoryTransport, id: &str) -> Event {
    let events = transport.events();
    let found = events.into_iter().find(|e| e.tags.get("request_id").map(String::as_str) == Some(id));
    let event = found.unwrap_or_else(|| panic!("no event for {id}"));
    support::schema::assert_valid(id, &event);
    event
}

async fn call(app: Router, id: &str, headers: &[(&str, &str)]) {
    let mut req = Request::get(if id.starts_with("fail") { "/fail" } else { "/who" }).header("x-request-id", id);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let _ = axum::body::to_bytes(res.into_body(), usize::MAX).await;
}

#[tokio::test]
async fn the_client_ip_comes_from_the_first_proxy_header_beside_the_users_own_fields() {
    let t = transport();
    call(app(), "ip-xff", &[("x-forwarded-for", "203.0.113.7, 10.0.0.1"), ("x-real-ip", "198.51.100.1")]).await;
    let user = event_of(t, "ip-xff").user.expect("a user");
    assert_eq!((user.id.as_deref(), user.ip_address.as_deref()), (Some("42"), Some("203.0.113.7")));
    call(app(), "ip-fwd", &[("forwarded", r#"for="[2001:db8::17]:4711";proto=https"#)]).await;
    assert_eq!(event_of(t, "ip-fwd").user.unwrap().ip_address.as_deref(), Some("2001:db8::17"));
    // Garbage in the header: passed over.
    call(app(), "ip-junk", &[("x-forwarded-for", "unknown"), ("x-real-ip", "198.51.100.1")]).await;
    assert_eq!(event_of(t, "ip-junk").user.unwrap().ip_address.as_deref(), Some("198.51.100.1"));
    // No header and no peer known (oneshot): no address.
    call(app(), "ip-none", &[]).await;
    assert_eq!(event_of(t, "ip-none").user.unwrap().ip_address, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_real_connection_the_peer_is_the_client_unless_a_trusted_header_says_otherwise() {
    let t = transport();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    let client = support::http_client();
    client.get(format!("http://{addr}/who")).header("x-request-id", "peer-1").send().await.unwrap();
    assert_eq!(event_of(t, "peer-1").user.unwrap().ip_address.as_deref(), Some("127.0.0.1"));
    let spoofed = "203.0.113.99";
    client
        .get(format!("http://{addr}/who"))
        .header("x-request-id", "peer-2")
        .header("x-forwarded-for", spoofed)
        .send()
        .await
        .unwrap();
    assert_eq!(event_of(t, "peer-2").user.unwrap().ip_address.as_deref(), Some(spoofed), "trusted by default");

    // A service clients reach directly: the headers are not trusted, the peer is the client.
    let direct = MemoryTransport::new();
    let client_of_scope = isoscope::Client::new(
        Options::new().send_default_pii(true).trust_proxy_headers(false).transport(direct.clone()),
    )
    .unwrap();
    let scope = client_of_scope.new_scope();
    let req = Request::get("/who")
        .header("x-request-id", "peer-3")
        .header("x-forwarded-for", spoofed)
        .extension(axum::extract::ConnectInfo(SocketAddr::from(([127, 0, 0, 2], 5555))));
    scope.bind(app().oneshot(req.body(Body::empty()).unwrap())).await.unwrap();
    assert_eq!(event_of(&direct, "peer-3").user.unwrap().ip_address.as_deref(), Some("127.0.0.2"));
}

#[tokio::test]
async fn events_captured_once_the_response_is_known_carry_its_status_and_safe_headers() {
    let t = transport();
    call(app(), "fail-1", &[]).await;
    let event = event_of(t, "fail-1");
    assert_eq!(event.message.as_deref(), Some("GET /fail → 503"));
    let response = &event.contexts["response"];
    assert_eq!(response["type"], "response");
    assert_eq!(response["status_code"], 503);
    assert_eq!(response["headers"]["x-served-by"], "node-7");
    assert!(response["headers"].get("set-cookie").is_none(), "a cookie being set is never sent: {response}");
    // Captured in the handler, before the response: no response context.
    call(app(), "before-response", &[]).await;
    assert!(!event_of(t, "before-response").contexts.contains_key("response"));
}
