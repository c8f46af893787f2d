//! The capture pipeline through the public API: options, hooks, sampling, limits, transports.
//! Each test installs its own client, so they take turns (`CLIENT_LOCK`).

mod support;

use std::sync::Mutex;
use std::time::Duration;

use isoscope::{Breadcrumb, Error, Level, LocalTransport, MemoryTransport, Options};

static CLIENT_LOCK: Mutex<()> = Mutex::new(());

fn with_client<R>(options: Options, f: impl FnOnce(&MemoryTransport) -> R) -> R {
    let _turn = CLIENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let transport = MemoryTransport::new();
    let _guard = isoscope::init(options.transport(transport.clone())).unwrap();
    isoscope::isolation_scope().fork().run(|| f(&transport))
}

#[test]
fn before_send_and_before_breadcrumb_edit_or_drop_and_may_call_back() {
    let options = Options::new()
        .before_breadcrumb(|crumb| {
            // Callbacks run outside our locks: calling back into the API is fine.
            let _ = isoscope::isolation_scope().snapshot();
            (crumb.message.as_deref() != Some("drop me")).then_some(crumb.category("edited"))
        })
        .before_send(|mut event| {
            isoscope::set_tag("set_from_before_send", "1");
            if event.message.as_deref() == Some("drop me") {
                return None;
            }
            event.tags.insert("seen_by_before_send".into(), "yes".into());
            Some(event)
        });
    with_client(options, |transport| {
        let dropped_before = isoscope::stats().events_dropped_before_send;
        isoscope::add_breadcrumb(Breadcrumb::new("keep me"));
        isoscope::add_breadcrumb(Breadcrumb::new("drop me"));
        assert!(isoscope::capture_message("drop me", Level::Info).is_none());
        let id = isoscope::capture_message("keep me", Level::Info).unwrap();
        let events = support::schema::valid(transport.events());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_id, id);
        assert_eq!(events[0].tags["seen_by_before_send"], "yes");
        assert_eq!(events[0].breadcrumbs.len(), 1);
        assert_eq!(events[0].breadcrumbs[0].category.as_deref(), Some("edited"));
        assert_eq!(isoscope::last_event_id(), Some(id));
        assert!(isoscope::stats().events_dropped_before_send > dropped_before);
    });
}

#[test]
fn breadcrumbs_of_all_scopes_merge_in_recording_order_across_threads() {
    with_client(Options::new(), |transport| {
        isoscope::add_breadcrumb(Breadcrumb::new("isolation 1"));
        // Recorded on another thread, after "isolation 1" and before "isolation 2".
        std::thread::spawn(|| isoscope::global_scope().configure(|s| s.add_breadcrumb(Breadcrumb::new("global"))))
            .join()
            .unwrap();
        isoscope::add_breadcrumb(Breadcrumb::new("isolation 2"));
        isoscope::add_breadcrumb(Breadcrumb::new("isolation 3"));
        isoscope::with_scope(
            |s| s.add_breadcrumb(Breadcrumb::new("current")),
            || {
                isoscope::add_breadcrumb(Breadcrumb::new("isolation 4"));
                isoscope::capture_message("ordered", Level::Info);
            },
        );
        isoscope::global_scope().configure(|s| s.clear_breadcrumbs());
        let events = support::schema::valid(transport.events());
        let order: Vec<_> = events[0].breadcrumbs.iter().filter_map(|c| c.message.as_deref()).collect();
        assert_eq!(order, ["isolation 1", "global", "isolation 2", "isolation 3", "current", "isolation 4"]);
    });
}

#[test]
fn sample_rate_zero_drops_everything_and_counts_it() {
    with_client(Options::new().sample_rate(0.0), |transport| {
        let before = isoscope::stats().events_dropped_sampled;
        for _ in 0..10 {
            assert!(isoscope::capture_message("sampled out", Level::Info).is_none());
        }
        assert!(support::schema::valid(transport.events()).is_empty());
        assert!(isoscope::stats().events_dropped_sampled >= before + 10);
    });
}

#[test]
fn max_breadcrumbs_bounds_scopes_and_events() {
    with_client(Options::new().max_breadcrumbs(5), |transport| {
        for i in 0..20 {
            isoscope::add_breadcrumb(Breadcrumb::new(i.to_string()));
        }
        isoscope::with_scope(
            |s| s.add_breadcrumb(Breadcrumb::new("current")),
            || {
                isoscope::capture_message("bounded", Level::Info);
            },
        );
        let event = &support::schema::valid(transport.events())[0];
        let msgs: Vec<_> = event.breadcrumbs.iter().map(|b| b.message.clone().unwrap()).collect();
        assert_eq!(msgs, ["16", "17", "18", "19", "current"]);
    });
}

#[derive(Debug)]
struct Wrapped(std::io::Error);
impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not load config")
    }
}
impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn capture_error_walks_the_source_chain_and_options_fill_the_event() {
    let options = Options::new().release("app@1.0.0").environment("test").server_name("host-1");
    with_client(options, |transport| {
        let err = Wrapped(std::io::Error::new(std::io::ErrorKind::NotFound, "config.toml missing"));
        isoscope::set_user(Some(isoscope::User::with_id("7")));
        isoscope::set_context("job", serde_json::json!({"name": "import"}));
        isoscope::set_extra("attempt", 3);
        isoscope::capture_error(&err).unwrap();
        let event = &support::schema::valid(transport.events())[0];
        let values: Vec<_> = event.exception.iter().map(|e| e.value.clone().unwrap()).collect();
        assert_eq!(values, ["config.toml missing", "could not load config"]);
        assert_eq!(event.exception[1].ty, "Wrapped");
        assert_eq!(event.release.as_deref(), Some("app@1.0.0"));
        assert_eq!(event.environment.as_deref(), Some("test"));
        assert_eq!(event.server_name.as_deref(), Some("host-1"));
        assert_eq!(event.user.as_ref().unwrap().id.as_deref(), Some("7"));
        assert_eq!(event.contexts["job"]["name"], "import");
        assert_eq!(event.extra["attempt"], 3);
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(json["exception"]["values"][1]["value"], "could not load config");
    });
}

#[test]
fn without_a_client_nothing_is_captured_and_it_is_counted() {
    let _turn = CLIENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let before = isoscope::stats().events_dropped_no_client;
    assert!(isoscope::capture_message("nobody listens", Level::Info).is_none());
    assert!(isoscope::stats().events_dropped_no_client > before);
    assert!(isoscope::flush(Duration::from_millis(10)));
}

#[test]
fn invalid_options_are_errors_not_panics() {
    let _turn = CLIENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for rate in [-0.1, 1.5, f64::NAN] {
        let err = isoscope::init(Options::new().sample_rate(rate)).unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{err}");
        assert!(err.to_string().contains("sample_rate"));
    }
}

#[test]
fn the_local_transport_writes_json_lines_to_a_file_and_flushes() {
    let path = std::env::temp_dir().join(format!("isoscope-capture-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    {
        let _turn = CLIENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let _guard = isoscope::init(Options::new().transport(LocalTransport::to_file(&path).unwrap())).unwrap();
        isoscope::isolation_scope().fork().run(|| {
            isoscope::add_breadcrumb(Breadcrumb::new("to disk"));
            for i in 0..50 {
                isoscope::capture_message(format!("line {i}"), Level::Info);
            }
        });
        assert!(isoscope::flush(Duration::from_secs(5)));
    } // the guard's drop flushes too
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 50);
    assert_eq!(lines[49]["logentry"]["formatted"], "line 49");
    assert_eq!(lines[0]["breadcrumbs"]["values"][0]["message"], "to disk");
    let _ = std::fs::remove_file(&path);
}

/// Hands envelopes to another thread, which reads them there (as `HttpTransport` does).
struct ReadElsewhere(Mutex<std::sync::mpsc::Sender<isoscope::Envelope>>);

impl isoscope::Transport for ReadElsewhere {
    fn send(&self, envelope: isoscope::Envelope) {
        self.0.lock().unwrap().send(envelope).unwrap();
    }
}

#[test]
fn an_event_read_on_another_thread_holds_the_scopes_as_they_were_at_capture() {
    let _turn = CLIENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = std::sync::mpsc::channel::<isoscope::Envelope>();
    let _guard = isoscope::init(Options::new().transport(ReadElsewhere(Mutex::new(tx)))).unwrap();
    let reader = std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            let envelope = rx.recv().unwrap().finish();
            let event = envelope.event().unwrap().clone();
            (event, envelope.trace_header().cloned())
        })
        .unwrap();
    let id = isoscope::isolation_scope().fork().run(|| {
        isoscope::set_tag("tenant", "acme");
        isoscope::set_extra("api_token", "s3cret");
        isoscope::add_breadcrumb(Breadcrumb::new("before").data("password", "hunter2"));
        let id = isoscope::capture_message("failed", Level::Error).unwrap();
        // Written after the capture: not part of the event, wherever it is finished.
        isoscope::set_tag("tenant", "later");
        isoscope::set_tag("late", "1");
        isoscope::add_breadcrumb(Breadcrumb::new("after"));
        id
    });
    let (event, dsc) = reader.join().unwrap();
    support::schema::assert_valid("read elsewhere", &event);
    assert_eq!(event.event_id, id);
    assert_eq!(event.tags["tenant"], "acme");
    assert!(!event.tags.contains_key("late"));
    assert_eq!(support::crumbs(&event), ["before"]);
    // Scrubbed, and limits applied, by the reader.
    assert_eq!(event.extra["api_token"], "[Filtered]");
    assert_eq!(event.breadcrumbs[0].data["password"], "[Filtered]");
    assert!(event.contexts.contains_key("os") && event.contexts.contains_key("trace"));
    // The error envelope carries the sampling context of the event's trace.
    let dsc = dsc.expect("a trace header");
    assert_eq!(dsc["trace_id"], event.contexts["trace"]["trace_id"]);
}

/// A transport whose queue is always full.
struct Full(std::sync::atomic::AtomicUsize);

impl isoscope::Transport for Full {
    fn send(&self, _envelope: isoscope::Envelope) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn has_room(&self) -> bool {
        false
    }
}

#[test]
fn with_no_room_in_the_transport_an_event_is_counted_not_built_unless_a_hook_must_see_it() {
    let _turn = CLIENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let full = std::sync::Arc::new(Full(Default::default()));
    let guard = isoscope::init(Options::new().transport(full.clone())).unwrap();
    let before = isoscope::stats();
    let id = isoscope::isolation_scope().fork().run(|| {
        let id = isoscope::capture_error(&std::io::Error::other("db down")).unwrap();
        assert_eq!(isoscope::last_event_id(), Some(id));
        id
    });
    let d = isoscope::stats().since(&before);
    assert_eq!((d.events_captured, d.events_dropped_queue_full), (1, 1), "{d:?}");
    assert_eq!(full.0.load(std::sync::atomic::Ordering::Relaxed), 0, "nothing was sent");
    drop((guard, id));
    // A before_send hook still sees every event (and the transport gets it, to drop or not).
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s = seen.clone();
    let options = Options::new().transport(full.clone()).before_send(move |e| {
        s.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(e)
    });
    let _guard = isoscope::init(options).unwrap();
    isoscope::capture_message("seen", Level::Error);
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(full.0.load(std::sync::atomic::Ordering::Relaxed), 1);
}

/// A scope's level overrides the event's, as in sentry-rust and sentry-python
/// (`with_scope(|s| s.set_level(..), || capture_message(.., Info))` sends the scope's level).
#[test]
fn a_scopes_level_overrides_the_events() {
    let events = isoscope::test::with_captured_events_sync(|| {
        isoscope::with_scope(
            |s| s.set_level(Some(Level::Warning)),
            || isoscope::capture_message("from the block", Level::Info),
        );
        isoscope::capture_message("outside the block", Level::Info);
    });
    let levels: Vec<_> = events.iter().map(|e| e.level).collect();
    assert_eq!(levels, [Some(Level::Warning), Some(Level::Info)]);
}
