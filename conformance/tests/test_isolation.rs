//! `test::with_captured_events` to the end: a plain `tokio::spawn` inside reports to the test
//! that spawned it, never to a client another test installed with `init`.

use isoscope::{Level, MemoryTransport, Options};

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn plain_task_captures(message: &'static str) {
    tokio::spawn(async move {
        isoscope::set_tag("task", "plain");
        isoscope::capture_message(message, Level::Info);
    })
    .await
    .unwrap();
}

/// Another test's `init` (the process's client) and this test's capture, at once.
async fn check_on_this_runtime() {
    let process = MemoryTransport::new();
    let guard = isoscope::init(Options::new().transport(process.clone())).unwrap();
    let events = isoscope::test::with_captured_events(plain_task_captures("inside the capture")).await;
    assert_eq!(events.len(), 1, "the plain task's event reached the test");
    assert_eq!(events[0].message.as_deref(), Some("inside the capture"));
    assert_eq!(events[0].tags["task"], "plain", "with the task's own scope");
    assert!(process.events().is_empty(), "and never the process's client: {:?}", process.events());
    // Once the capture is over, the same code reports to the process's client again.
    plain_task_captures("after the capture").await;
    assert_eq!(process.events().len(), 1);
    drop(guard);
}

#[test]
fn a_plain_spawn_inside_a_capture_reaches_the_test_on_a_current_thread_runtime() {
    let _turn = turn();
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(check_on_this_runtime());
}

#[test]
fn a_plain_spawn_inside_a_capture_reaches_the_test_on_a_multi_thread_runtime() {
    let _turn = turn();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(check_on_this_runtime());
}

#[test]
fn another_runtimes_plain_tasks_still_reach_the_process_client_during_a_capture() {
    let _turn = turn();
    let process = MemoryTransport::new();
    let guard = isoscope::init(Options::new().transport(process.clone())).unwrap();
    let other = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let testing = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let events = testing.block_on(isoscope::test::with_captured_events(async {
        // While this capture runs, a task on another runtime (another test's) reports as before.
        std::thread::scope(|s| {
            s.spawn(|| other.block_on(plain_task_captures("on the other runtime")));
        });
    }));
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(process.events().len(), 1);
    drop(guard);
}
