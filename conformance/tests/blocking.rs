//! Reused blocking-pool threads: nothing a job leaves bound reaches the next job there.
//! The pool is limited to one thread, so every job runs on the same, reused thread.

#![allow(clippy::mem_forget)] // leaking guards on purpose is what these tests are about

mod support;

use std::thread::ThreadId;

use isoscope::ScopeHandle;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).max_blocking_threads(1).enable_all().build().unwrap()
}

/// What a job bound to nothing sees: a scope of its own task (a raw `spawn_blocking` job is
/// a tokio task), fresh — nothing of earlier jobs, requests or leaked guards — and not the
/// process default that requests fork.
fn assert_unbound(seen: &ScopeHandle) {
    let default = std::thread::spawn(isoscope::isolation_scope).join().unwrap();
    assert_ne!(*seen, default, "a raw job writes to its own scope, not to the process default");
    let scope = seen.snapshot();
    assert!(scope.tags().is_empty() && scope.breadcrumbs().len() == 0 && scope.request().is_none(), "{scope:?}");
}

/// A raw (non-isoscope) blocking job reporting its thread and what it sees.
async fn raw_probe() -> (ThreadId, ScopeHandle) {
    tokio::task::spawn_blocking(|| (std::thread::current().id(), isoscope::isolation_scope())).await.unwrap()
}

#[test]
fn a_guard_leaked_by_a_helper_job_is_purged_before_the_next_job() {
    runtime().block_on(async {
        let request = isoscope::isolation_scope().fork();
        let leaked = isoscope::isolation_scope().fork();
        let l = leaked.clone();
        let before = isoscope::stats().bindings().leaked_purged;
        let thread_a = request
            .bind(async move {
                isoscope::spawn_blocking(move || {
                    std::mem::forget(l.enter());
                    assert_eq!(isoscope::isolation_scope(), l);
                    std::thread::current().id()
                })
                .await
                .unwrap()
            })
            .await;
        let (thread_b, seen) = raw_probe().await;
        assert_eq!(thread_a, thread_b, "the pool thread was reused");
        assert_ne!(seen, leaked);
        assert_unbound(&seen);
        assert!(isoscope::stats().bindings().leaked_purged > before);
    });
}

#[test]
fn a_guard_leaked_by_a_raw_job_is_ignored_and_purged_by_the_next_job() {
    runtime().block_on(async {
        let leaked = isoscope::isolation_scope().fork();
        let l = leaked.clone();
        let thread_a = tokio::task::spawn_blocking(move || {
            std::mem::forget(l.enter());
            std::thread::current().id()
        })
        .await
        .unwrap();
        let before = isoscope::stats().bindings().leaked_purged;
        // A raw job: the lookup ignores (and purges) the entry of the earlier task.
        let (thread_b, seen) = raw_probe().await;
        assert_eq!(thread_a, thread_b);
        assert_ne!(seen, leaked, "the guard leaked by the earlier job is not seen");
        assert_unbound(&seen);
        assert!(isoscope::stats().bindings().leaked_purged > before, "the purge is counted");

        // Again, followed by a helper job: it starts clean and sees its own scope.
        let l = leaked.clone();
        tokio::task::spawn_blocking(move || std::mem::forget(l.enter())).await.unwrap();
        let request = isoscope::isolation_scope().fork();
        request.configure(|s| s.set_tag("who", "request"));
        let (thread_c, tag) = request
            .bind(async {
                isoscope::spawn_blocking(|| {
                    (std::thread::current().id(), isoscope::isolation_scope().snapshot().tag("who").map(str::to_owned))
                })
                .await
                .unwrap()
            })
            .await;
        assert_eq!(thread_c, thread_a);
        assert_eq!(tag.as_deref(), Some("request"));
    });
}

#[test]
fn a_job_that_panics_with_a_guard_alive_leaves_nothing_behind() {
    runtime().block_on(async {
        for helper in [true, false] {
            let bound = isoscope::isolation_scope().fork();
            let b = bound.clone();
            let job = move || {
                let _guard = b.enter();
                let _leaked = std::mem::ManuallyDrop::new(b.enter()); // never dropped, even by unwind
                panic!("job failed");
            };
            let result =
                if helper { isoscope::spawn_blocking(job).await } else { tokio::task::spawn_blocking(job).await };
            assert!(result.unwrap_err().is_panic());
            let (_, seen) = raw_probe().await;
            assert_ne!(seen, bound, "helper={helper}: a panicked job's binding reached the next job");
            assert_unbound(&seen);
        }
    });
}

#[test]
fn helper_jobs_and_threads_run_with_the_request_scope() {
    runtime().block_on(async {
        let request = isoscope::isolation_scope().fork();
        request.configure(|s| s.set_tag("who", "req"));
        let (blocking, thread) = request
            .bind(async {
                let blocking =
                    isoscope::spawn_blocking(|| isoscope::isolation_scope().snapshot().tag("who").map(str::to_owned))
                        .await
                        .unwrap();
                let thread =
                    isoscope::thread::spawn(|| isoscope::isolation_scope().snapshot().tag("who").map(str::to_owned))
                        .join()
                        .unwrap();
                (blocking, thread)
            })
            .await;
        assert_eq!(blocking.as_deref(), Some("req"));
        assert_eq!(thread.as_deref(), Some("req"));
        // Raw spawns do not inherit (tokio task-locals are not inherited): documented.
        let raw = request.bind(async { tokio::spawn(async { isoscope::isolation_scope() }).await.unwrap() }).await;
        assert_ne!(raw, request);
    });
}
