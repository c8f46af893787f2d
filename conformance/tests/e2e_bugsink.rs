//! End to end against a real Sentry-compatible server: Bugsink on 127.0.0.1 in strict
//! validation (events that do not match Sentry's schema are dropped, so every event must be
//! stored), either the one named by `ISOSCOPE_BUGSINK_DSN` or one this test starts with
//! `scripts/bugsink.sh` (installed from PyPI on first use) on an ephemeral port and stops when
//! it ends. An axum app with the layer serves concurrent requests; each captures an error; we
//! read back what Bugsink stored and check every event belongs to its request.
//!
//! On a machine with only Rust (no Python 3.11) and no `ISOSCOPE_BUGSINK_DSN`, the test says
//! that it is skipped and why; under `CI=true` that is a failure instead.

use std::process::Command;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use futures_util::future::join_all;
use isoscope::{Breadcrumb, IsolationLayer, Options};
use serde_json::Value;

fn script() -> String {
    format!("{}/../scripts/bugsink.sh", env!("CARGO_MANIFEST_DIR"))
}

/// Where a Bugsink this test starts keeps its virtualenv and data (not the default home, which
/// a developer's own `scripts/bugsink.sh start` may be using on another port).
fn test_home() -> String {
    std::env::temp_dir().join("isoscope-bugsink-test").display().to_string()
}

/// A Bugsink to test against: the one named by `ISOSCOPE_BUGSINK_DSN`, or one started here
/// (stopped on drop, also when the test fails).
struct Bugsink {
    dsn: String,
    /// `BUGSINK_HOME` of the server this test started.
    started: Option<String>,
}

impl Bugsink {
    /// `Err(reason)` when there is no Bugsink and none can be started.
    fn get() -> Result<Self, String> {
        if let Ok(dsn) = std::env::var("ISOSCOPE_BUGSINK_DSN") {
            return Ok(Self { dsn, started: None });
        }
        let python = std::env::var("BUGSINK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let has_python = Command::new(&python)
            .args(["-c", "import sys, venv; sys.exit(0 if sys.version_info >= (3, 11) else 1)"])
            .status()
            .is_ok_and(|s| s.success());
        if !has_python {
            return Err(format!(
                "no ISOSCOPE_BUGSINK_DSN, and no Python >= 3.11 with venv ('{python}') to start Bugsink with \
                 scripts/bugsink.sh"
            ));
        }
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let home = test_home();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .env("BUGSINK_HOME", &home)
            .env("BUGSINK_PORT", port.to_string())
            .env("BUGSINK_VALIDATE", "strict")
            .env("BUGSINK_FRESH", "1")
            .output()
            .map_err(|e| format!("bash scripts/bugsink.sh: {e}"))?;
        let bugsink = Self { dsn: String::from_utf8_lossy(&out.stdout).trim().to_owned(), started: Some(home) };
        assert!(out.status.success(), "scripts/bugsink.sh start failed:\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(bugsink.dsn.contains("@127.0.0.1:"), "loopback only: {}", bugsink.dsn);
        Ok(bugsink)
    }

    fn script(&self, verb: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg(verb);
        if let Some(home) = &self.started {
            cmd.env("BUGSINK_HOME", home);
        }
        cmd
    }
}

impl Drop for Bugsink {
    fn drop(&mut self) {
        if self.started.is_some() {
            let _ = self.script("stop").output();
        }
    }
}

/// What Bugsink stored for these event ids (waits until all exist).
fn stored(bugsink: &Bugsink, ids: &[String]) -> Vec<Value> {
    let mut cmd = bugsink.script("events");
    cmd.arg("--timeout").arg("30");
    for id in ids {
        cmd.arg("--event-id").arg(id);
    }
    let out = cmd.output().expect("run scripts/bugsink.sh events");
    assert!(out.status.success(), "events failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| ids.iter().any(|id| e["event_id"] == id.as_str()))
        .collect()
}

/// GET, or POST with a JSON body (read here, so events carry it as `request.data`).
async fn order(Path(id): Path<u32>, body: axum::body::Bytes) -> String {
    assert!(body.is_empty() || serde_json::from_slice::<Value>(&body).is_ok());
    isoscope::set_tag("order", id.to_string());
    isoscope::set_user(Some(isoscope::User::with_id(format!("user-{id}"))));
    for step in ["load", "price"] {
        isoscope::add_breadcrumb(Breadcrumb::new(format!("order {id}: {step}")).category("order"));
        tokio::task::yield_now().await;
    }
    let err = format!("{id}x").parse::<u32>().unwrap_err();
    isoscope::capture_error(&err).map(|id| id.to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_bugsink_with_their_own_request_context() {
    let bugsink = match Bugsink::get() {
        Ok(bugsink) => bugsink,
        Err(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true needs Bugsink, and: {reason}")
        }
        Err(reason) => {
            // Straight to stderr, past the test harness's capture, so that it shows.
            use std::io::Write;
            let _ =
                writeln!(std::io::stderr(), "\nSKIPPED events_reach_bugsink_with_their_own_request_context: {reason}");
            return;
        }
    };
    let dsn = bugsink.dsn.clone();
    let guard =
        isoscope::init(Options::new().dsn(dsn).release("e2e@1.0").environment("ci").attach_stacktrace(true)).unwrap();
    let app = Router::new().route("/orders/{id}", get(order).post(order)).layer(IsolationLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let run = std::process::id() % 100_000 * 100;
    let ids: Vec<(u32, String)> = join_all((run..run + 12).map(|n| {
        let client = client.clone();
        async move {
            let url = format!("http://{addr}/orders/{n}?page=1&password=hunter2");
            let req = match n % 2 {
                0 => client.get(url),
                _ => {
                    let body = serde_json::json!({"qty": n, "card_token": "tok_visa"}).to_string();
                    client.post(url).header("content-type", "application/json").body(body)
                }
            };
            let res = req.send().await.unwrap();
            (n, res.text().await.unwrap())
        }
    }))
    .await;
    assert!(ids.iter().all(|(_, id)| id.len() == 32), "every request captured an event: {ids:?}");
    assert!(guard.flush(Duration::from_secs(30)), "Bugsink accepted everything");
    let sent_before_drop = isoscope::stats().events_sent;
    drop(guard);

    let event_ids: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    let events = stored(&bugsink, &event_ids);
    assert_eq!(events.len(), ids.len(), "Bugsink stored every event");
    for (n, id) in &ids {
        let e = events.iter().find(|e| e["event_id"] == id.as_str()).unwrap();
        let data = &e["data"];
        assert_eq!(data["tags"]["order"], n.to_string());
        assert_eq!(data["user"]["id"], format!("user-{n}"));
        let crumbs: Vec<&str> =
            data["breadcrumbs"]["values"].as_array().unwrap().iter().map(|b| b["message"].as_str().unwrap()).collect();
        assert_eq!(crumbs, [format!("order {n}: load"), format!("order {n}: price")], "only its own breadcrumbs");
        if n % 2 == 0 {
            assert_eq!(data["request"]["method"], "GET");
            assert!(data["request"].get("data").is_none_or(Value::is_null), "no body");
        } else {
            assert_eq!(data["request"]["method"], "POST");
            assert_eq!(data["request"]["data"], serde_json::json!({"qty": n, "card_token": "[Filtered]"}));
        }
        assert_eq!(data["request"]["url"], format!("http://{addr}/orders/{n}"));
        assert_eq!(data["request"]["query_string"], "page=1&password=[Filtered]");
        assert_eq!(data["exception"]["values"][0]["type"], "ParseIntError");
        let frames = data["exception"]["values"][0]["stacktrace"]["frames"].as_array().expect("frames stored");
        let site = frames.iter().rev().find(|f| f["in_app"] == true).expect("an in-app frame");
        assert!(site["function"].as_str().is_some_and(|f| f.starts_with("e2e_bugsink::order")), "{site}");
        assert_eq!(data["transaction"], "/orders/{id}");
        assert_eq!(data["release"], "e2e@1.0");
        assert_eq!(e["title"]["type"], "ParseIntError");
    }
    assert!(sent_before_drop >= ids.len() as u64);
}
