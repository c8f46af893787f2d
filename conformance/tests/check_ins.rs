//! Cron check-ins on a loopback ingest server: a monitored job reports `in_progress`, then
//! `ok` or `error` (an `Err`, a panic, a dropped future) with one id and its duration, the
//! configuration on the first; every check-in has the shape of Relay's `relay-monitors`
//! `CheckIn`; bad slugs and configurations are errors before anything is sent; a `monitor`
//! rate limit is honoured and counted.

mod support;

use std::time::Duration;

use isoscope::protocol::{CheckIn, CheckInStatus, DiscardReason, IntervalUnit, MonitorConfig, MonitorSchedule};
use isoscope::{Client, DataCategory, Monitor, Options};
use serde_json::Value;
use support::ingest::{Answer, Ingest};

/// Stats deltas are process-wide: the tests take turns (each sends check-ins).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What Relay's `CheckIn` admits (relay-monitors): `check_in_id` (32 hex digits),
/// `monitor_slug` (1–50 characters), `status` of the ingestible ones, optional `environment`,
/// `duration`, `monitor_config` (schedule crontab/interval, margins, timezone), `contexts.trace`;
/// `release` is Sentry's documented extra. Returns what is wrong.
fn check_in_errors(c: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let known =
        ["check_in_id", "monitor_slug", "status", "environment", "release", "duration", "monitor_config", "contexts"];
    for key in c.as_object().map(|o| o.keys().collect::<Vec<_>>()).unwrap_or_default() {
        if !known.contains(&key.as_str()) {
            errors.push(format!("unknown field {key}"));
        }
    }
    if !c["check_in_id"].as_str().is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())) {
        errors.push("check_in_id".into());
    }
    if !c["monitor_slug"].as_str().is_some_and(|s| (1..=50).contains(&s.chars().count())) {
        errors.push("monitor_slug".into());
    }
    if !["in_progress", "ok", "error"].contains(&c["status"].as_str().unwrap_or("")) {
        errors.push("status".into());
    }
    if c.get("duration").is_some_and(|d| !d.is_f64() || d.as_f64() < Some(0.0)) {
        errors.push("duration".into());
    }
    if let Some(config) = c.get("monitor_config") {
        let schedule = &config["schedule"];
        let ok = match schedule["type"].as_str() {
            Some("crontab") => schedule["value"].is_string(),
            Some("interval") => schedule["value"].is_u64() && schedule["unit"].is_string(),
            _ => false,
        };
        if !ok {
            errors.push(format!("schedule {schedule}"));
        }
    }
    if let Some(contexts) = c.get("contexts") {
        if contexts["trace"]["trace_id"].as_str().is_none_or(|s| s.len() != 32) {
            errors.push("contexts.trace.trace_id".into());
        }
    }
    errors
}

/// The check-ins the server received, each checked, with their item headers.
fn received(server: &Ingest) -> Vec<Value> {
    let mut out = Vec::new();
    for envelope in server.received() {
        for (header, payload) in envelope.items {
            if header["type"] == "check_in" {
                let errors = check_in_errors(&payload);
                assert!(errors.is_empty(), "{errors:?} in {payload}");
                out.push(payload);
            }
        }
    }
    out
}

#[test]
fn the_check_in_check_can_fail() {
    let good =
        serde_json::json!({"check_in_id": "a460c25ff2554577b920fcfacae4e5eb", "monitor_slug": "m", "status": "ok"});
    assert!(check_in_errors(&good).is_empty());
    for (key, bad) in
        [("status", "missed"), ("check_in_id", "a460c25f-f255-4577-b920-fcfacae4e5eb"), ("monitor_slug", "")]
    {
        let mut json = good.clone();
        json[key] = bad.into();
        assert!(!check_in_errors(&json).is_empty(), "{key}");
    }
    let mut json = good.clone();
    json["slug"] = "m".into();
    assert!(!check_in_errors(&json).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reports_in_progress_then_ok_or_error_with_one_id_and_its_duration() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn()).release("jobs@1.0").environment("prod")).unwrap();
    let config = MonitorConfig::new(MonitorSchedule::interval(1, IntervalUnit::Hour)).checkin_margin(5).timezone("UTC");
    let scope = client.new_scope();
    scope
        .bind(async {
            let ok = Monitor::new("hourly-import").unwrap().with_config(config).unwrap();
            let rows: Result<u32, String> = ok
                .run(async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(12)
                })
                .await;
            assert_eq!(rows, Ok(12));
            let failed: Result<(), String> =
                isoscope::monitor("broken-export", async { Err("disk full".to_owned()) }).await;
            assert!(failed.is_err());
        })
        .await;
    assert!(client.flush(Duration::from_secs(10)));
    let check_ins = received(&server);
    let of = |slug: &str| check_ins.iter().filter(|c| c["monitor_slug"] == slug).cloned().collect::<Vec<_>>();
    // Both envelopes may be in flight at once: order them by status, as the server does by id.
    let by_status = |mut v: Vec<Value>| {
        v.sort_by_key(|c| c["status"] != "in_progress");
        v
    };
    let import = by_status(of("hourly-import"));
    assert_eq!(import.len(), 2);
    assert_eq!((import[0]["status"].as_str(), import[1]["status"].as_str()), (Some("in_progress"), Some("ok")));
    assert_eq!(import[0]["check_in_id"], import[1]["check_in_id"], "one id per run");
    assert!(import[1]["duration"].as_f64().unwrap() >= 0.05);
    assert_eq!(
        import[0]["monitor_config"]["schedule"],
        serde_json::json!({"type": "interval", "value": 1, "unit": "hour"})
    );
    assert_eq!(import[0]["monitor_config"]["checkin_margin"], 5);
    assert!(import[1].get("monitor_config").is_none(), "the configuration goes with the first only");
    assert_eq!((import[1]["environment"].as_str(), import[1]["release"].as_str()), (Some("prod"), Some("jobs@1.0")));
    assert_eq!(import[0]["contexts"]["trace"]["trace_id"], import[1]["contexts"]["trace"]["trace_id"]);
    let export = by_status(of("broken-export"));
    assert_eq!(export.iter().map(|c| c["status"].as_str().unwrap()).collect::<Vec<_>>(), ["in_progress", "error"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_or_a_dropped_future_reports_error() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn()).capture_panics(false)).unwrap();
    let scope = client.new_scope();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scope.run(|| isoscope::monitor_sync("panicky", || -> Result<(), String> { panic!("boom") }))
    }));
    assert!(panicked.is_err());
    scope
        .bind(async {
            let slow = isoscope::monitor("never-finishes", async {
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
            // Cancelled after 20 ms: the future is dropped mid-run.
            assert!(tokio::time::timeout(Duration::from_millis(20), slow).await.is_err());
        })
        .await;
    assert!(client.flush(Duration::from_secs(10)));
    let statuses = |slug: &str| -> Vec<String> {
        let mut s: Vec<String> = received(&server)
            .iter()
            .filter(|c| c["monitor_slug"] == slug)
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .collect();
        s.sort_by_key(|s| s != "in_progress"); // in flight together: any arrival order
        s
    };
    assert_eq!(statuses("panicky"), ["in_progress", "error"]);
    assert_eq!(statuses("never-finishes"), ["in_progress", "error"]);
}

#[tokio::test]
async fn bad_slugs_and_configurations_are_errors_before_anything_is_sent() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn())).unwrap();
    assert!(Monitor::new("").unwrap_err().to_string().contains("empty"));
    assert!(Monitor::new("x".repeat(51)).unwrap_err().to_string().contains("longer than 50"));
    let bad = MonitorConfig::new(MonitorSchedule::crontab("* * *"));
    assert!(Monitor::new("ok").unwrap().with_config(bad.clone()).unwrap_err().to_string().contains("3 fields"));
    let mut check_in = CheckIn::new("manual", CheckInStatus::InProgress);
    check_in.monitor_config = Some(bad);
    client.new_scope().run(|| assert!(isoscope::capture_check_in(check_in).is_err()));
    assert!(client.flush(Duration::from_secs(5)));
    assert!(received(&server).is_empty(), "nothing sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_rate_limit_is_honoured_and_counted() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    server.script([Answer::AcceptWithRateLimits("60:monitor:organization")]);
    let client = Client::new(Options::new().dsn(server.dsn())).unwrap();
    let before = isoscope::stats();
    let scope = client.new_scope();
    scope.run(|| isoscope::capture_check_in(CheckIn::new("limited", CheckInStatus::Ok)).unwrap());
    assert!(client.flush(Duration::from_secs(10)));
    scope.run(|| isoscope::capture_check_in(CheckIn::new("limited", CheckInStatus::Ok)).unwrap());
    assert!(!client.flush(Duration::from_secs(10)), "the second check-in was dropped for the limit");
    assert_eq!(received(&server).len(), 1);
    let monitor = isoscope::stats().since(&before).items(DataCategory::Monitor);
    assert_eq!((monitor.captured(), monitor.sent(), monitor.discarded(DiscardReason::RatelimitBackoff)), (2, 1, 1));
}
