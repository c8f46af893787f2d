//! End to end against a real Sentry-compatible server: Bugsink on 127.0.0.1, started by
//! `scripts/bugsink.sh` (installed from PyPI on first use), or the one named by
//! `ISOSCOPE_BUGSINK_DSN`. An axum app with the layer serves concurrent requests; each captures
//! an error; we read back what Bugsink stored and check every event belongs to its request.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use futures_util::future::join_all;
use isoscope::{Breadcrumb, IsolationLayer, Options};
use serde_json::Value;

fn script() -> String {
    format!("{}/scripts/bugsink.sh", env!("CARGO_MANIFEST_DIR"))
}

/// The DSN of a running Bugsink: from the environment, else started here (once).
fn dsn() -> &'static str {
    static DSN: OnceLock<String> = OnceLock::new();
    DSN.get_or_init(|| {
        if let Ok(dsn) = std::env::var("ISOSCOPE_BUGSINK_DSN") {
            return dsn;
        }
        let out = Command::new("bash").arg(script()).arg("start").output().expect("run scripts/bugsink.sh");
        assert!(out.status.success(), "scripts/bugsink.sh start failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let dsn = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(dsn.contains("@127.0.0.1:"), "loopback only: {dsn}");
        dsn
    })
}

/// What Bugsink stored for these event ids (waits until all exist).
fn stored(ids: &[String]) -> Vec<Value> {
    let mut cmd = Command::new("bash");
    cmd.arg(script()).arg("events").arg("--timeout").arg("30");
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

async fn order(Path(id): Path<u32>) -> String {
    isoscope::set_tag("order", id.to_string());
    isoscope::set_user(Some(isoscope::User { id: Some(format!("user-{id}")), ..Default::default() }));
    for step in ["load", "price"] {
        isoscope::add_breadcrumb(Breadcrumb::new(format!("order {id}: {step}")).category("order"));
        tokio::task::yield_now().await;
    }
    let err = format!("{id}x").parse::<u32>().unwrap_err();
    isoscope::capture_error(&err).map(|id| id.to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_bugsink_with_their_own_request_context() {
    let dsn = dsn().to_owned();
    let guard = isoscope::init(Options::new().dsn(dsn).release("e2e@1.0").environment("ci")).unwrap();
    let app = Router::new().route("/orders/{id}", get(order)).layer(IsolationLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let run = std::process::id() % 100_000 * 100;
    let ids: Vec<(u32, String)> = join_all((run..run + 12).map(|n| {
        let client = client.clone();
        async move {
            let res = client.get(format!("http://{addr}/orders/{n}?page=1&password=hunter2")).send().await.unwrap();
            (n, res.text().await.unwrap())
        }
    }))
    .await;
    assert!(ids.iter().all(|(_, id)| id.len() == 32), "every request captured an event: {ids:?}");
    assert!(guard.flush(Duration::from_secs(30)), "Bugsink accepted everything");
    let sent_before_drop = isoscope::stats().events_sent;
    drop(guard);

    let event_ids: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    let events = stored(&event_ids);
    assert_eq!(events.len(), ids.len(), "Bugsink stored every event");
    for (n, id) in &ids {
        let e = events.iter().find(|e| e["event_id"] == id.as_str()).unwrap();
        let data = &e["data"];
        assert_eq!(data["tags"]["order"], n.to_string());
        assert_eq!(data["user"]["id"], format!("user-{n}"));
        let crumbs: Vec<&str> =
            data["breadcrumbs"]["values"].as_array().unwrap().iter().map(|b| b["message"].as_str().unwrap()).collect();
        assert_eq!(crumbs, [format!("order {n}: load"), format!("order {n}: price")], "only its own breadcrumbs");
        assert_eq!(data["request"]["method"], "GET");
        assert_eq!(data["request"]["url"], format!("http://{addr}/orders/{n}"));
        assert_eq!(data["request"]["query_string"], "page=1&password=[Filtered]");
        assert_eq!(data["exception"]["values"][0]["type"], "ParseIntError");
        assert_eq!(data["transaction"], "/orders/{id}");
        assert_eq!(data["release"], "e2e@1.0");
        assert_eq!(e["title"]["type"], "ParseIntError");
    }
    assert!(sent_before_drop >= ids.len() as u64);
}
