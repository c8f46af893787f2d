//! Thread-local guards: any drop order, stale guards, capacity, thread exit, re-entrancy.
//! None of these may panic; each leaves the binding stack consistent.

#![allow(clippy::mem_forget)] // leaking guards on purpose is what these tests are about

mod support;

use std::cell::RefCell;

use isoscope::{Breadcrumb, Level, ScopeHandle};
use proptest::prelude::*;

fn fresh() -> ScopeHandle {
    isoscope::isolation_scope().fork()
}

#[test]
fn out_of_order_drops_keep_the_newest_live_guard_active() {
    let base = isoscope::isolation_scope();
    let (a, b, c) = (fresh(), fresh(), fresh());

    // A, B entered; A dropped first: B stays; B dropped: base.
    let ga = a.enter();
    let gb = b.enter();
    drop(ga);
    assert_eq!(isoscope::isolation_scope(), b);
    drop(gb);
    assert_eq!(isoscope::isolation_scope(), base);

    // A-B-C dropped as B, C, A.
    let ga = a.enter();
    let gb = b.enter();
    let gc = c.enter();
    drop(gb);
    assert_eq!(isoscope::isolation_scope(), c);
    drop(gc);
    assert_eq!(isoscope::isolation_scope(), a);
    drop(ga);
    assert_eq!(isoscope::isolation_scope(), base);
    assert_eq!(isoscope::test::bindings_on_this_thread(), 0);

    // A guard moved into a struct and dropped later.
    struct Holder {
        _guard: isoscope::EnterGuard,
    }
    let holder = Holder { _guard: a.enter() };
    let gb = b.enter();
    drop(holder);
    assert_eq!(isoscope::isolation_scope(), b);
    drop(gb);
    assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
}

#[test]
fn twice_nested_same_scope_is_fine() {
    let base = isoscope::isolation_scope();
    let a = fresh();
    let g1 = a.enter();
    let g2 = a.enter();
    drop(g1);
    assert_eq!(isoscope::isolation_scope(), a);
    drop(g2);
    assert_eq!(isoscope::isolation_scope(), base);
}

#[test]
fn a_stale_guard_never_pops_a_newer_entry_at_the_same_position() {
    let (a, b, c) = (fresh(), fresh(), fresh());
    let before = isoscope::stats().bindings().stale;
    // `run` is a boundary: the guard escapes it, but its entry is purged when `run` returns.
    let stale = a.run(|| b.enter());
    assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
    let newer = c.enter(); // same position, new id
    drop(stale);
    assert_eq!(isoscope::isolation_scope(), c, "the stale guard must not remove the newer entry");
    assert!(isoscope::stats().bindings().stale > before);
    drop(newer);
    assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
}

#[test]
fn pushing_past_capacity_fails_gracefully() {
    let a = fresh();
    let extra = fresh();
    let before = isoscope::stats().bindings().refused;
    let guards: Vec<_> = (0..1024).map(|_| a.enter()).collect();
    let refused = extra.enter();
    assert_eq!(isoscope::isolation_scope(), a, "a refused guard leaves the active scope unchanged");
    assert!(isoscope::stats().bindings().refused > before);
    drop(refused);
    drop(guards);
    assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
}

#[derive(Debug, Clone)]
enum Op {
    Push(usize),
    Drop(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(prop_oneof![(0..4usize).prop_map(Op::Push), (0..16usize).prop_map(Op::Drop)], 0..64)
}

proptest! {
    #[test]
    fn guards_dropped_in_any_order_never_panic_and_stay_consistent(ops in ops()) {
        let base = isoscope::isolation_scope();
        let handles: Vec<_> = (0..4).map(|_| fresh()).collect();
        // Model: live guards in push order, with the handle each bound.
        let mut live: Vec<(usize, isoscope::EnterGuard)> = Vec::new();
        for op in ops {
            match op {
                Op::Push(h) => live.push((h, handles[h].enter())),
                Op::Drop(i) if !live.is_empty() => {
                    let i = i % live.len();
                    drop(live.remove(i));
                }
                Op::Drop(_) => {}
            }
            let expected = live.last().map_or(&base, |(h, _)| &handles[*h]);
            prop_assert_eq!(&isoscope::isolation_scope(), expected);
        }
        drop(live);
        prop_assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
        prop_assert_eq!(isoscope::isolation_scope(), base);
    }
}

/// Calls into isoscope from a destructor.
struct CallsBack;

impl Drop for CallsBack {
    fn drop(&mut self) {
        let scope = isoscope::isolation_scope();
        scope.configure(|s| s.set_tag("from_drop", "yes"));
        isoscope::add_breadcrumb(Breadcrumb::new("from drop"));
        let _ = scope.fork();
        scope.run(|| isoscope::set_tag("ran", "in drop"));
    }
}

thread_local! {
    static LEAKED_GUARD: RefCell<Option<isoscope::EnterGuard>> = const { RefCell::new(None) };
    static DESTRUCTOR_CALLS_BACK: RefCell<Option<CallsBack>> = const { RefCell::new(None) };
}

#[test]
fn guards_and_callbacks_in_thread_local_destructors_never_panic() {
    for _ in 0..20 {
        let handle = fresh();
        let t = std::thread::spawn(move || {
            // A callback registered first (destroyed last or first: the order is unspecified).
            DESTRUCTOR_CALLS_BACK.with(|d| *d.borrow_mut() = Some(CallsBack));
            let guard = handle.enter();
            let _nested = handle.enter();
            std::mem::forget(_nested);
            LEAKED_GUARD.with(|g| *g.borrow_mut() = Some(guard));
            // The thread exits with a live guard in a thread-local.
        });
        t.join().expect("no panic during thread-local destruction");
    }
}

#[test]
fn configure_closures_may_call_back_into_the_api() {
    support::transport();
    let handle = fresh();
    handle.run(|| {
        isoscope::configure_scope(|scope| {
            scope.set_tag("reentrant", "outer");
            // Everything here targets a scope this thread holds locked.
            let active = isoscope::isolation_scope();
            assert_eq!(active, handle);
            isoscope::set_tag("nested_set", "1");
            isoscope::add_breadcrumb(Breadcrumb::new("nested crumb"));
            let fork = active.fork();
            fork.configure(|f| f.set_tag("fork_only", "1"));
            let _guard = fork.enter();
            active.run(|| isoscope::set_extra("ran", true));
            isoscope::capture_message("captured inside configure", Level::Info);
        });
    });
    let snap = handle.snapshot();
    assert_eq!(snap.tag("reentrant"), Some("outer"));
    assert_eq!(snap.tag("nested_set"), Some("1"));
    assert_eq!(snap.tag("fork_only"), None);
    assert_eq!(snap.extra().get("ran"), Some(&serde_json::Value::Bool(true)));
    assert!(snap.breadcrumbs().any(|b| b.message.as_deref() == Some("nested crumb")));
    let events = support::events_tagged("reentrant", "outer");
    assert_eq!(events.len(), 1, "the capture inside configure is delivered after it");
    assert_eq!(events[0].tags["nested_set"], "1");
    assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
}

#[test]
fn event_processors_and_drops_may_call_back_into_the_api() {
    support::transport();
    let handle = fresh();
    let guard_value = CallsBack;
    handle.configure(move |s| {
        s.set_tag("processor_case", "1");
        s.add_event_processor(move |mut event| {
            let _keep = &guard_value; // dropped with the scope: calls back into isoscope
            isoscope::add_breadcrumb(Breadcrumb::new("from processor"));
            let _ = isoscope::isolation_scope().fork();
            event.tags.insert("processed".into(), "yes".into());
            Some(event)
        });
    });
    handle.run(|| isoscope::capture_message("processed", Level::Info));
    let events = support::events_tagged("processor_case", "1");
    assert_eq!(events[0].tags["processed"], "yes");

    // The scope's last handle is dropped while bound by a guard: its processor (and the value
    // it owns, whose Drop calls back) is dropped outside every borrow of ours.
    let guard = handle.enter();
    drop(handle);
    drop(guard);
    assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
}

#[test]
fn a_poisoned_scope_lock_does_not_break_later_use() {
    let handle = fresh();
    let h = handle.clone();
    let _ = std::thread::spawn(move || h.configure(|_| panic!("panic while configuring"))).join();
    handle.configure(|s| s.set_tag("after_poison", "ok"));
    assert_eq!(handle.snapshot().tag("after_poison"), Some("ok"));
}

// Holding the guard across `.await` is the misuse under test; clippy.toml flags it elsewhere.
#[allow(clippy::await_holding_invalid_type)]
#[tokio::test(flavor = "current_thread")]
async fn a_guard_held_across_await_in_a_local_task_is_never_seen_by_other_tasks() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let leaked = fresh();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
            // Raw local task: holds a guard across an await (allowed in a !Send future).
            let l = leaked.clone();
            let a = tokio::task::spawn_local(async move {
                let _guard = l.enter();
                tx.send(()).unwrap();
                rx2.await.unwrap();
            });
            rx.await.unwrap();
            let b = tokio::task::spawn_local(async { isoscope::isolation_scope() });
            let seen = b.await.unwrap();
            assert_ne!(seen, leaked, "another task saw a guard held across .await");
            tx2.send(()).unwrap();
            a.await.unwrap();

            // The same inside a bound future: the boundary removes it at the end of the poll.
            let bound = fresh();
            let l = leaked.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
            let a = tokio::task::spawn_local(bound.bind(async move {
                let _guard = l.enter();
                tx.send(()).unwrap();
                rx2.await.unwrap();
                // After the first poll's boundary the entry is gone: the task's own scope is back.
                isoscope::isolation_scope()
            }));
            rx.await.unwrap();
            assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
            tx2.send(()).unwrap();
            assert_eq!(a.await.unwrap(), bound);
        })
        .await;
}
