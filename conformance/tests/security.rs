//! What leaves the process is trusted: the transport talks to the DSN's host only (no redirect
//! is followed, nothing it did not accept counts as sent), no output shows the DSN's key or
//! secret, and secrets are scrubbed wherever real apps put them. Tests take turns (`TURN`) so
//! the process-wide `stats()` deltas each asserts are its own.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{Breadcrumb, Client, HttpTransport, IsolationLayer, Level, Options, User};
use proptest::prelude::*;
use support::ingest::{Answer, Ingest};
use tower::ServiceExt;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_never_followed_and_never_count_as_sent() {
    let _turn = TURN.lock().await;
    // Another host: it must never see a request (neither the key nor the envelope).
    let other = Ingest::start(Answer::Accept).await;
    let server = Ingest::start(Answer::Accept).await;
    let codes = [301, 302, 303, 307, 308];
    server.script(codes.map(|code| Answer::Redirect(code, format!("http://{}/api/42/envelope/", other.addr))));
    let transport = HttpTransport::builder(&server.dsn()).unwrap().max_retries(2).build().unwrap();
    let before = isoscope::stats();
    let guard = isoscope::init(Options::new().transport(transport)).unwrap();
    for code in codes {
        isoscope::capture_message(format!("answered {code}"), Level::Error);
    }
    guard.flush(Duration::from_secs(10));
    drop(guard);
    let d = isoscope::stats().since(&before);
    assert_eq!(other.requests(), 0, "a redirect was followed to another host");
    assert_eq!(server.requests(), 5, "a 3xx is an answer, not retried");
    assert_eq!((d.events_sent, d.events_dropped_rejected, d.events_retried), (0, 5, 0), "{d:?}");
}

#[test]
fn no_public_type_holding_a_dsn_shows_its_key_or_secret() {
    const KEY: &str = "feedfacefeedface1111";
    const SECRET: &str = "c0ffeec0ffee2222";
    let dsn = format!("http://{KEY}:{SECRET}@127.0.0.1:9/42");
    let parsed: isoscope::Dsn = dsn.parse().unwrap();
    let builder = HttpTransport::builder(&dsn).unwrap();
    let transport = builder.clone().build().unwrap();
    let options = Options::new().dsn(dsn).release("r@1");
    let client = Client::new(options.clone()).unwrap();
    let mut shown = vec![
        format!("{parsed:?}"),
        format!("{parsed:#?}"),
        parsed.to_string(),
        format!("{builder:?}"),
        format!("{transport:?}"),
        format!("{options:?}"),
        format!("{client:?}"),
    ];
    // Every way a DSN holding them can fail, from every place a DSN comes from.
    for bad in [
        format!("http://{KEY}:{SECRET}@bad host/42"),
        format!("http://{KEY}:{SECRET}@host@x/42"),
        format!("http://{KEY}:{SECRET}x y@host/42"),
        format!("http://{KEY}:{SECRET}@[::1]evil/42"),
        format!("http://{KEY}:{SECRET}@host:99999/42"),
        format!("http://{KEY}:{SECRET}@host/4 2"),
        format!("http://{KEY}:{SECRET}@host"),
        format!("http://{KEY}:{SECRET}\r\n@host/42"),
        format!("ftp://{KEY}:{SECRET}@host/42"),
        format!("http//{KEY}:{SECRET}@host/42"),
    ] {
        let from_parse = bad.parse::<isoscope::Dsn>().unwrap_err();
        let from_builder = HttpTransport::builder(&bad).unwrap_err();
        let from_init = isoscope::init(Options::new().dsn(bad.clone())).unwrap_err();
        for e in [&from_builder, &from_init] {
            shown.push(e.to_string());
            shown.push(format!("{e:?}"));
            shown.push(std::error::Error::source(e).map(ToString::to_string).unwrap_or_default());
        }
        shown.push(from_parse.to_string());
        shown.push(format!("{from_parse:?}"));
    }
    for text in &shown {
        assert!(!text.contains(KEY) && !text.contains(SECRET), "{text}");
    }
    // What only the DSN's server may see is there, on purpose.
    assert!(parsed.auth_header().contains(KEY) && parsed.public_dsn().contains(KEY));
    assert!(!parsed.public_dsn().contains(SECRET));
}

#[test]
fn a_bad_dsn_says_where_it_came_from() {
    let err = isoscope::init(Options::new().dsn("http://key@host")).unwrap_err();
    let isoscope::Error::InvalidDsn(dsn_err) = &err else { panic!("{err}") };
    assert_eq!(dsn_err.origin(), Some(isoscope::DsnOrigin::Options));
    assert!(err.to_string().contains("missing project id") && err.to_string().contains("came from Options::dsn"));
    let err = HttpTransport::builder("http://k\r\n@host/1").unwrap_err();
    assert!(
        err.to_string().contains("control character") && err.to_string().contains("HttpTransport::builder"),
        "{err}"
    );
}

/// The marker every generated secret carries: it must never appear in a serialized event.
const MARKER: &str = "MARKERSECRET";

/// A key that looks like a secret the way real apps name them: a Relay substring, in any case,
/// `-` or `_`, with text around it.
fn secret_key() -> impl Strategy<Value = String> {
    let core = prop::sample::select(vec![
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "api-key",
        "apikey",
        "auth",
        "credentials",
        "mysql_pwd",
        "privatekey",
        "private_key",
        "private-key",
        "session",
        "cookie",
    ]);
    ("[a-z]{0,4}", core, "[a-z0-9]{0,4}", prop::bool::ANY, prop::sample::select(vec!["", "-", "_"])).prop_map(
        |(pre, core, post, upper, sep)| {
            let core = if upper { core.to_uppercase() } else { core.to_owned() };
            let pre = if pre.is_empty() { pre } else { format!("{pre}{sep}") };
            let post = if post.is_empty() { post } else { format!("{sep}{post}") };
            format!("{pre}{core}{post}")
        },
    )
}

/// `key` with some of its letters percent-encoded (as a browser or a client may send them).
fn percent_encoded(key: &str, every: usize) -> String {
    key.chars()
        .enumerate()
        .map(|(i, c)| if every > 0 && i % every == 0 { format!("%{:02X}", c as u32) } else { c.to_string() })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A marker secret under generated secret-looking keys, in every place real apps put one:
    /// extra (nested), contexts, breadcrumb data, user attributes, tags, header names, URLs in
    /// header values, query pairs (`&` and `;`, percent-encoded keys), path parameters and URL
    /// userinfo. Served through the layer and finished as the transport finishes it.
    #[test]
    fn a_secret_under_a_secret_looking_key_never_reaches_the_event(
        key in secret_key(),
        encode_every in 0usize..4,
        sep in prop::sample::select(vec!["&", ";"]),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let json = runtime.block_on(async {
            let k = key.clone();
            let app = Router::new()
                .route("/{*rest}", get(move || {
                    let k = k.clone();
                    async move {
                        isoscope::set_extra("payload", serde_json::json!({ "nested": [{ k.clone(): MARKER }] }));
                        isoscope::set_context("login", serde_json::json!({ k.clone(): MARKER }));
                        isoscope::add_breadcrumb(Breadcrumb::new("call").data(k.clone(), MARKER)
                            .data("url", format!("https://api.example/x?{k}={MARKER}")));
                        isoscope::set_tag(k.clone(), MARKER);
                        let mut other = BTreeMap::new();
                        other.insert(k.clone(), serde_json::Value::from(MARKER));
                        isoscope::set_user(Some({ let mut u = User::with_id("u1"); u.other = other; u }));
                        isoscope::capture_message("with secrets", Level::Error);
                    }
                }))
                .layer(IsolationLayer::new());
            let header_key = key.to_ascii_lowercase();
            let query_key = percent_encoded(&key, encode_every);
            let uri = format!("/a;{key}={MARKER}/b?page=1{sep}{query_key}={MARKER}{sep}z=2");
            let request = Request::get(uri)
                .header("host", "shop.example")
                .header(header_key.as_str(), MARKER)
                .header("referer", format!("https://shop.example/login?{key}={MARKER}"))
                .header("x-forwarded-uri", format!("/reset?{query_key}={MARKER}"))
                .header("x-upstream", format!("https://user:{MARKER}@db.example/"))
                .body(Body::empty())
                .unwrap();
            let events = isoscope::test::with_captured_events(async { app.oneshot(request).await.unwrap(); }).await;
            assert_eq!(events.len(), 1);
            serde_json::to_string(&events[0]).unwrap()
        });
        prop_assert!(!json.contains(MARKER), "key {key}: {json}");
        prop_assert!(json.contains("[Filtered]"));
    }
}

#[test]
fn options_extend_and_narrow_what_is_scrubbed() {
    let transport = isoscope::MemoryTransport::new();
    let client =
        Client::new(Options::new().transport(transport.clone()).scrub_keys(["ssn"]).keep_keys(["author"])).unwrap();
    client.new_scope().run(|| {
        isoscope::set_extra("customer_ssn", "078-05-1120");
        isoscope::set_extra("author", "ada");
        isoscope::set_extra("auth_token", "t");
        isoscope::capture_message("m", Level::Info);
    });
    let event = &transport.events()[0];
    assert_eq!(event.extra["customer_ssn"], "[Filtered]");
    assert_eq!(event.extra["author"], "ada");
    assert_eq!(event.extra["auth_token"], "[Filtered]");
}
