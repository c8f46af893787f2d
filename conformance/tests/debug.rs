//! `ISOSCOPE_DEBUG=1` / `Options::debug(true)`: a line at `init` (transport, host and project,
//! never the key), one per kind of problem, rate-limited. The scenario runs in a child process
//! (this test binary run again) so that its real stderr can be read.

mod support;

use std::process::Command;
use std::time::Duration;

use isoscope::{HttpTransport, Level, Options};
use support::ingest::{refused_dsn, Answer, Ingest, KEY};

const CHILD: &str = "ISOSCOPE_DEBUG_TEST_CHILD";

/// The scenario, in the child: a refused server, a guard dropped at once, unbound writes, a
/// server that redirects, and one whose rejection tries to forge a line and drive the terminal.
fn scenario() {
    let servers = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let hostile = servers.block_on(Ingest::start(Answer::Accept));
    hostile.script([
        Answer::Redirect(302, "http://elsewhere.example:8080/collect?token=abc".to_owned()),
        Answer::StatusWithBody(400, "bad\n[isoscope] FORGED LINE: all good\u{1b}[2J"),
    ]);
    let guard = isoscope::init(Options::new().dsn(hostile.dsn())).unwrap();
    isoscope::capture_message("redirected", Level::Error);
    guard.flush(Duration::from_secs(5));
    isoscope::capture_message("rejected", Level::Error);
    guard.flush(Duration::from_secs(5));
    drop(guard);

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

/// Runs `test` of this binary again, as the child, with `ISOSCOPE_DEBUG` set to `debug` (or
/// unset); returns its stderr. `None` when this process is the child (it ran the scenario).
fn in_child(test: &str, debug: Option<&str>) -> Option<String> {
    if std::env::var_os(CHILD).is_some() {
        scenario();
        return None;
    }
    let mut child = Command::new(std::env::current_exe().unwrap());
    child.args(["--exact", test, "--nocapture"]).env(CHILD, "1").env_remove("ISOSCOPE_DEBUG");
    if let Some(value) = debug {
        child.env("ISOSCOPE_DEBUG", value);
    }
    let out = child.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed: {stderr}");
    Some(stderr)
}

#[test]
fn debug_output_says_what_is_wrong_once_per_kind_and_never_the_key() {
    let Some(stderr) = in_child("debug_output_says_what_is_wrong_once_per_kind_and_never_the_key", Some("1")) else {
        return;
    };
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("[isoscope]")).collect();
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert!(count("init: events go to http://127.0.0.1:") >= 1 && count("project 42") >= 1, "{lines:#?}");
    assert!(count("(DSN from Options::dsn)") >= 1, "{lines:#?}");
    assert_eq!(count("dropped right after init"), 1, "{lines:#?}");
    // The first flush names what it lost (the redirect: a send error); once per 10 s.
    assert_eq!(count("flush: lost since the last flush: 1 send_error"), 1, "{lines:#?}");
    assert_eq!(count("sending to http://127.0.0.1:"), 1, "{lines:#?}");
    // 1,000 unbound writes: one line (rate-limited), not a thousand.
    assert_eq!(count("bound to no scope"), 1, "{lines:#?}");
    assert!(!stderr.contains(KEY), "the DSN's key never appears: {stderr}");
    // A redirect is named (its host and port only), and never followed.
    assert_eq!(
        count("the server redirected to elsewhere.example:8080; isoscope does not follow redirects"),
        1,
        "{lines:#?}"
    );
    assert!(!stderr.contains("token=abc"), "{stderr}");
    // What the server said is shown escaped: no forged line, no escape sequence.
    assert_eq!(count("rejected an event with 400: bad\\n[isoscope] FORGED LINE: all good\\u{1b}[2J"), 1, "{lines:#?}");
    assert!(!stderr.lines().any(|l| l.starts_with("[isoscope] FORGED")), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

#[test]
fn without_debug_nothing_is_printed() {
    let Some(stderr) = in_child("without_debug_nothing_is_printed", None) else { return };
    assert!(!stderr.contains("[isoscope]"), "{stderr}");
}
