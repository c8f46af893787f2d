//! What every event says about where it comes from: `contexts.os` (name, version, kernel),
//! `contexts.rust` (the compiler), `contexts.device.arch`, `server_name` = the host name,
//! `environment` from `SENTRY_ENVIRONMENT` else `production`, `release` from `SENTRY_RELEASE`,
//! and `sdk` with its packages and integrations. Options and scopes still win.

mod support;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use isoscope::{IsolationLayer, Level, MemoryTransport, Options};
use tower::ServiceExt;

fn capture_with(options: Options) -> isoscope::Event {
    let transport = MemoryTransport::new();
    let client = isoscope::Client::new(options.transport(transport.clone())).unwrap();
    client.new_scope().run(|| isoscope::capture_message("defaults", Level::Info));
    support::schema::valid(transport.take_events()).pop().unwrap()
}

// One test: it sets environment variables, which no other thread of this binary may read then.
#[tokio::test(flavor = "current_thread")]
async fn events_describe_their_process_unless_told_otherwise() {
    std::env::remove_var("SENTRY_ENVIRONMENT");
    std::env::remove_var("SENTRY_RELEASE");
    let event = capture_with(Options::new());
    // As sentry-rust: `development` in a debug build (these tests), `production` in a release one.
    let expected = if cfg!(debug_assertions) { "development" } else { "production" };
    assert_eq!(event.environment.as_deref(), Some(expected));
    assert_eq!(event.release, None);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned());
    if let Ok(host) = host {
        assert_eq!(event.server_name.as_deref(), Some(host.as_str()));
    } else {
        assert!(event.server_name.as_deref().is_some_and(|h| !h.is_empty()));
    }

    let os = &event.contexts["os"];
    assert_eq!(os["type"], "os");
    if cfg!(target_os = "linux") {
        assert_eq!(os["name"], "Linux");
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(os["version"], release.trim());
        assert!(os["kernel_version"].as_str().is_some_and(|k| k.contains(release.trim())), "{os}");
    }
    let rust = &event.contexts["rust"];
    assert_eq!((rust["type"].as_str(), rust["name"].as_str()), (Some("runtime"), Some("rustc")));
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().nth(1).unwrap_or("").to_owned());
    if let Ok(version) = rustc {
        assert_eq!(rust["version"], version.as_str(), "the compiler that built the crate");
    }
    assert_eq!(event.contexts["device"]["arch"], std::env::consts::ARCH);

    assert_eq!(event.sdk.name, "sentry.rust.isoscope");
    assert_eq!(event.sdk.packages[0].name, "cargo:isoscope");
    assert_eq!(event.sdk.packages[0].version, isoscope_version());
    assert!(event.sdk.integrations.contains(&"panic".to_owned()), "{:?}", event.sdk.integrations);

    // The environment variables, read when a client is made.
    std::env::set_var("SENTRY_ENVIRONMENT", "staging");
    std::env::set_var("SENTRY_RELEASE", "shop@2.0.1");
    let event = capture_with(Options::new());
    assert_eq!(event.environment.as_deref(), Some("staging"));
    assert_eq!(event.release.as_deref(), Some("shop@2.0.1"));
    // Options win over the environment, a scope's context over the default one.
    let event = capture_with(Options::new().environment("qa").release("shop@3").server_name("web-1"));
    assert_eq!(
        (event.environment.as_deref(), event.release.as_deref(), event.server_name.as_deref()),
        (Some("qa"), Some("shop@3"), Some("web-1"))
    );
    std::env::remove_var("SENTRY_ENVIRONMENT");
    std::env::remove_var("SENTRY_RELEASE");

    // A request through the layer and axum's router adds those integrations.
    let transport = MemoryTransport::new();
    let client = isoscope::Client::new(Options::new().transport(transport.clone())).unwrap();
    let app = Router::new()
        .route(
            "/r/{id}",
            get(|| async {
                isoscope::capture_message("in a request", Level::Info);
            }),
        )
        .layer(IsolationLayer::new());
    client
        .new_scope()
        .bind(async { app.oneshot(http::Request::get("/r/1").body(Body::empty()).unwrap()).await.unwrap() })
        .await;
    let event = support::schema::valid(transport.take_events()).pop().unwrap();
    for integration in ["tower", "axum", "panic"] {
        assert!(event.sdk.integrations.contains(&integration.to_owned()), "{:?}", event.sdk.integrations);
    }
    assert!(event.contexts.contains_key("os"), "the defaults are added to request events too");
}

/// isoscope's version, from its manifest (this crate is the workspace's test member).
fn isoscope_version() -> &'static str {
    let manifest = include_str!("../../Cargo.toml");
    let line = manifest.lines().find(|l| l.starts_with("version = ")).expect("a version line");
    line.trim_start_matches("version = ").trim_matches('"')
}
