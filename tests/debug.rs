//! `ISOSCOPE_DEBUG=1` / `Options::debug(true)`: a line at `init` (transport, host and project,
//! never the key), one per kind of problem, rate-limited. The scenario runs in a child process
//! (this test binary run again) so that its real stderr can be read.

mod support;

use std::process::Command;
use std::time::Duration;

use isoscope::{HttpTransport, Level, Options};
use support::ingest::{refused_dsn, KEY};

const CHILD: &str = "ISOSCOPE_DEBUG_TEST_CHILD";

/// The scenario, in the child: a refused server, a guard dropped at once, unbound writes.
fn scenario() {
    let dsn = refused_dsn();
    let _ = isoscope::init(Options::new().dsn(dsn.clone())); // dropped at once: reported
    let transport = HttpTransport::builder(&dsn)
        .unwrap()
        .max_retries(0)
        .connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let guard = isoscope::init(Options::new().dsn(dsn).transport(transport)).unwrap();
    isoscope::capture_message("to a server that is not there", Level::Error);
    guard.flush(Duration::from_secs(5));
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        for i in 0..1000 {
            tokio::spawn(async move { isoscope::set_tag("n", i.to_string()) }).await.unwrap();
        }
    });
}

#[test]
fn debug_output_says_what_is_wrong_once_per_kind_and_never_the_key() {
    if std::env::var_os(CHILD).is_some() {
        return scenario();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "debug_output_says_what_is_wrong_once_per_kind_and_never_the_key", "--nocapture"])
        .env(CHILD, "1")
        .env("ISOSCOPE_DEBUG", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("[isoscope]")).collect();
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert!(count("init: events go to http://127.0.0.1:") >= 1 && count("project 42") >= 1, "{lines:#?}");
    assert!(count("(DSN from Options::dsn)") >= 1, "{lines:#?}");
    assert_eq!(count("dropped right after init"), 1, "{lines:#?}");
    assert_eq!(count("sending to http://127.0.0.1:"), 1, "{lines:#?}");
    // 1,000 unbound writes: one line (rate-limited), not a thousand.
    assert_eq!(count("bound to no scope"), 1, "{lines:#?}");
    assert!(!stderr.contains(KEY), "the DSN's key never appears: {stderr}");
}

#[test]
fn without_debug_nothing_is_printed() {
    if std::env::var_os(CHILD).is_some() {
        return scenario();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "without_debug_nothing_is_printed", "--nocapture"])
        .env(CHILD, "1")
        .env_remove("ISOSCOPE_DEBUG")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("[isoscope]"));
}
