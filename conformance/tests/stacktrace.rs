//! Stack traces: a panic event carries the panic site's stack (the panicking function as the
//! last in-app frame, with its file and line), `attach_stacktrace` gives captured errors and
//! messages the capture site's, `in_app_include`/`in_app_exclude` steer `in_app`, and anyhow
//! errors bring their own backtrace.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{Frame, IsolationLayer, Level, MemoryTransport, Options};
use support::schema::assert_valid;
use tower::ServiceExt;

static PANIC_LINE: AtomicU32 = AtomicU32::new(0);

#[inline(never)]
fn parse_order_id(raw: &str) -> u64 {
    PANIC_LINE.store(line!() + 1, Ordering::Relaxed);
    raw.parse().expect("order id is a number")
}

/// The last frame marked in-app: where Sentry points first.
fn last_in_app(frames: &[Frame]) -> &Frame {
    frames.iter().rev().find(|f| f.in_app == Some(true)).expect("an in-app frame")
}

fn names(frames: &[Frame]) -> Vec<&str> {
    frames.iter().map(|f| f.function.as_deref().unwrap_or("?")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_panic_carries_the_panic_site_as_the_last_in_app_frame() {
    support::transport();
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                isoscope::set_tag("test", "handler-panic");
                parse_order_id("seven");
                "unreachable"
            }),
        )
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(IsolationLayer::new());
    let res = app.oneshot(Request::get("/orders/seven").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), 500);
    let events = support::events_tagged("test", "handler-panic");
    assert_eq!(events.len(), 1, "one event per panic");
    let exception = events[0].exception.last().unwrap();
    let frames = &exception.stacktrace.as_ref().expect("a panic event has a stack").frames;
    let site = last_in_app(frames);
    assert_eq!(site.function.as_deref(), Some("stacktrace::parse_order_id"), "{:#?}", names(frames));
    assert_eq!(site.module.as_deref(), Some("stacktrace"));
    assert_eq!(site.filename.as_deref(), Some("stacktrace.rs"));
    assert!(site.abs_path.as_deref().is_some_and(|p| p.ends_with("tests/stacktrace.rs")), "{:?}", site.abs_path);
    assert_eq!(site.lineno, Some(PANIC_LINE.load(Ordering::Relaxed)));
    assert!(site.colno.is_some());
    // The panic machinery and isoscope's hook are trimmed: nothing after the site but
    // the std/core frames of `expect` (no std::panicking, no isoscope, no backtrace).
    let after: Vec<_> = frames.iter().skip_while(|f| !std::ptr::eq(*f, site)).skip(1).collect();
    for frame in &after {
        let f = frame.function.as_deref().unwrap_or("?");
        assert!(frame.in_app == Some(false), "{f} after the site is not in-app");
        for machinery in ["std::panicking", "core::panicking", "isoscope::", "backtrace::"] {
            assert!(!f.starts_with(machinery), "{f} should be trimmed: {:#?}", names(frames));
        }
    }
    // The async stack around it is there and not in-app: tokio, tower, isoscope's layer.
    let not_app = |prefix: &str| {
        frames.iter().any(|f| f.function.as_deref().is_some_and(|n| n.contains(prefix)) && f.in_app == Some(false))
    };
    assert!(not_app("tokio::"), "{:#?}", names(frames));
    assert!(not_app("isoscope::layer"), "{:#?}", names(frames));
    assert!(frames.iter().all(|f| f.instruction_addr.as_deref().is_some_and(|a| a.starts_with("0x"))));
}

#[test]
fn a_thread_panic_has_its_stack_oldest_frame_first() {
    support::transport();
    let joined = std::thread::spawn(|| {
        isoscope::set_tag("test", "thread-panic");
        parse_order_id("x");
    })
    .join();
    assert!(joined.is_err());
    let events = support::events_tagged("test", "thread-panic");
    let frames = &events[0].exception[0].stacktrace.as_ref().unwrap().frames;
    let names = names(frames);
    let site = names.iter().position(|n| *n == "stacktrace::parse_order_id").expect("the site");
    let closure = names.iter().position(|n| n.starts_with("stacktrace::a_thread_panic")).expect("its caller");
    assert!(closure < site, "oldest first: {names:#?}");
}

#[inline(never)]
fn report_slow_path(transport: &MemoryTransport) -> isoscope::Event {
    isoscope::capture_message("slow path", Level::Info);
    support::schema::valid(transport.take_events()).pop().unwrap()
}

#[inline(never)]
fn report_error(transport: &MemoryTransport) -> isoscope::Event {
    let err = "x".parse::<u8>().unwrap_err();
    isoscope::capture_error(&err);
    support::schema::valid(transport.take_events()).pop().unwrap()
}

#[test]
fn attach_stacktrace_gives_messages_and_errors_the_capture_site() {
    let transport = MemoryTransport::new();
    let client = isoscope::Client::new(Options::new().attach_stacktrace(true).transport(transport.clone())).unwrap();
    client.new_scope().run(|| {
        let message = report_slow_path(&transport);
        assert_valid("message with a stack", &message);
        let thread = message.threads.iter().find(|t| t.current).expect("a current thread");
        let frames = &thread.stacktrace.as_ref().unwrap().frames;
        assert_eq!(
            last_in_app(frames).function.as_deref(),
            Some("stacktrace::report_slow_path"),
            "{:#?}",
            names(frames)
        );
        assert!(message.exception.is_empty());

        let error = report_error(&transport);
        assert_valid("error with a stack", &error);
        let frames = &error.exception.last().unwrap().stacktrace.as_ref().unwrap().frames;
        assert_eq!(last_in_app(frames).function.as_deref(), Some("stacktrace::report_error"));
    });
}

#[test]
fn without_attach_stacktrace_captures_carry_no_stack() {
    let transport = MemoryTransport::new();
    let client = isoscope::Client::new(Options::new().transport(transport.clone())).unwrap();
    client.new_scope().run(|| {
        let message = report_slow_path(&transport);
        assert!(message.threads.is_empty());
        let error = report_error(&transport);
        assert!(error.exception.iter().all(|e| e.stacktrace.is_none()));
    });
}

#[test]
fn in_app_include_and_exclude_steer_in_app() {
    let transport = MemoryTransport::new();
    let options = Options::new()
        .attach_stacktrace(true)
        .in_app_exclude("stacktrace::report")
        .in_app_include("std::thread")
        .transport(transport.clone());
    let client = isoscope::Client::new(options).unwrap();
    client.new_scope().run(|| {
        let message = report_slow_path(&transport);
        let frames = &message.threads[0].stacktrace.as_ref().unwrap().frames;
        let of = |name: &str| frames.iter().find(|f| f.function.as_deref().is_some_and(|n| n.starts_with(name)));
        assert_eq!(of("stacktrace::report_slow_path").unwrap().in_app, Some(false));
        assert_eq!(of("stacktrace::in_app_include").unwrap().in_app, Some(true));
    });
}

#[test]
fn stacks_are_resolved_lazily_and_serialize_resolved() {
    // A transport that keeps the envelope as given: the stack is still addresses until
    // something needs the frames.
    #[derive(Default, Clone)]
    struct Raw(std::sync::Arc<std::sync::Mutex<Vec<isoscope::Envelope>>>);
    impl isoscope::Transport for Raw {
        fn send(&self, envelope: isoscope::Envelope) {
            self.0.lock().unwrap().push(envelope);
        }
    }
    let raw = Raw::default();
    let client = isoscope::Client::new(Options::new().attach_stacktrace(true).transport(raw.clone())).unwrap();
    client.new_scope().run(|| isoscope::capture_message("lazy", Level::Info));
    let envelope = raw.0.lock().unwrap().pop().unwrap().finish();
    let trace = envelope.event().unwrap().threads[0].stacktrace.clone().unwrap();
    assert!(!trace.is_resolved(), "resolved on the capturing thread");
    assert!(trace.frames.is_empty());
    let json = serde_json::to_value(envelope.event().unwrap()).unwrap();
    let frames = json["threads"]["values"][0]["stacktrace"]["frames"].as_array().unwrap();
    assert!(frames.iter().any(|f| f["function"] == "stacktrace::stacks_are_resolved_lazily_and_serialize_resolved"));
    let mut trace = trace;
    trace.resolve();
    assert!(trace.is_resolved() && !trace.frames.is_empty());
}
