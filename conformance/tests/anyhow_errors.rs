//! `capture_anyhow`: an anyhow error's chain as exceptions, and the backtrace it captured where
//! it was created as the stack (not the place that reported it).

mod support;

use isoscope::{MemoryTransport, Options};

#[inline(never)]
fn load_order(id: &str) -> anyhow::Result<u64> {
    let n: u64 = id.parse()?;
    Ok(n)
}

#[inline(never)]
fn report(err: &anyhow::Error) {
    isoscope::capture_anyhow(err);
}

#[test]
fn an_anyhow_error_brings_its_own_backtrace() {
    // anyhow reads this once, when it first captures: this is the only test in the binary.
    // SAFETY-free: edition 2021, and no other thread of this binary reads the environment yet.
    std::env::set_var("RUST_LIB_BACKTRACE", "1");
    let transport = MemoryTransport::new();
    let client = isoscope::Client::new(Options::new().transport(transport.clone())).unwrap();
    let err = load_order("seven").map_err(|e| e.context("loading order seven")).unwrap_err();
    client.new_scope().run(|| report(&err));
    let events = support::schema::valid(transport.take_events());
    let exception = &events[0].exception;
    assert_eq!(exception.len(), 2, "{exception:#?}");
    assert_eq!(exception[0].ty, "ParseIntError");
    assert_eq!(exception[1].value.as_deref(), Some("loading order seven"));
    let frames = &exception[1].stacktrace.as_ref().expect("the error's own backtrace").frames;
    let names: Vec<_> = frames.iter().map(|f| f.function.as_deref().unwrap_or("?")).collect();
    let site = frames.iter().rev().find(|f| f.in_app == Some(true)).expect("an in-app frame");
    // Where the error was created (the `?` in load_order), not where it was reported.
    assert_eq!(site.function.as_deref(), Some("anyhow_errors::load_order"), "{names:#?}");
    assert_eq!(site.filename.as_deref(), Some("anyhow_errors.rs"));
    assert!(!names.iter().any(|n| n.starts_with("anyhow_errors::report")), "{names:#?}");
}
