//! `Propagation::{Fork, Share, None}` for `spawn`, `spawn_blocking`, `thread::spawn` and
//! `bind_scope`. The policy is process-wide (set by `init`), so one test walks all three.

mod support;

use isoscope::{Breadcrumb, Level, MemoryTransport, Options, Propagation, ScopeFutureExt, ScopeHandle};

/// What a child saw and did, for each helper.
async fn run_children(request: &ScopeHandle) -> Vec<(&'static str, ScopeHandle, Option<String>)> {
    request
        .bind(async {
            isoscope::set_tag("parent_tag", "before-spawn");
            isoscope::add_breadcrumb(Breadcrumb::new("parent-1"));
            let probe = |who: &'static str| {
                isoscope::add_breadcrumb(Breadcrumb::new(format!("child-{who}")));
                isoscope::set_tag(format!("child_{who}"), "1");
                let scope = isoscope::isolation_scope();
                let tag = scope.snapshot().tag("parent_tag").map(str::to_owned);
                (who, scope, tag)
            };
            let a = isoscope::spawn(async move { probe("spawn") }).await.unwrap();
            let b = isoscope::spawn_blocking(move || probe("blocking")).await.unwrap();
            let c = isoscope::thread::spawn(move || probe("thread")).join().unwrap();
            let d = async move { probe("bound") }.bind_scope().await;
            isoscope::capture_message("parent", Level::Info);
            vec![a, b, c, d]
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_policy_behaves_as_documented() {
    isoscope::configure_scope(|s| s.set_tag("process_default", "yes"));

    // ---- Fork (the default): children see the parent's data, their writes stay theirs.
    let transport = MemoryTransport::new();
    let guard = isoscope::init(Options::new().transport(transport.clone())).unwrap();
    let request = isoscope::isolation_scope().fork();
    for (who, scope, parent_tag) in run_children(&request).await {
        assert_ne!(scope, request, "{who}: a fork is a different scope");
        assert_eq!(parent_tag.as_deref(), Some("before-spawn"), "{who}: the fork holds the parent's data");
        assert!(scope.snapshot().breadcrumbs().any(|b| b.message.as_deref() == Some("parent-1")));
    }
    let parent = support::schema::valid(transport.take_events()).pop().unwrap();
    let crumbs: Vec<_> = parent.breadcrumbs.iter().filter_map(|b| b.message.as_deref().map(str::to_owned)).collect();
    assert_eq!(crumbs, ["parent-1"], "no child breadcrumb flows back under Fork");
    assert!(parent.tags.keys().all(|k| !k.starts_with("child_")));
    drop(guard);

    // ---- Share: children write into the request's own scope.
    let transport = MemoryTransport::new();
    let guard = isoscope::init(Options::new().transport(transport.clone()).propagation(Propagation::Share)).unwrap();
    let request = isoscope::isolation_scope().fork();
    for (who, scope, _) in run_children(&request).await {
        assert_eq!(scope, request, "{who}: shared");
    }
    let parent = support::schema::valid(transport.take_events()).pop().unwrap();
    let crumbs: Vec<_> = parent.breadcrumbs.iter().filter_map(|b| b.message.as_deref().map(str::to_owned)).collect();
    assert_eq!(crumbs, ["parent-1", "child-spawn", "child-blocking", "child-thread", "child-bound"]);
    for who in ["spawn", "blocking", "thread", "bound"] {
        assert_eq!(parent.tags[&format!("child_{who}")], "1");
    }
    drop(guard);

    // ---- None: children start from a fresh fork of the process default.
    let transport = MemoryTransport::new();
    let guard = isoscope::init(Options::new().transport(transport.clone()).propagation(Propagation::None)).unwrap();
    let request = isoscope::isolation_scope().fork();
    for (who, scope, parent_tag) in run_children(&request).await {
        assert_ne!(scope, request);
        assert_eq!(parent_tag, None, "{who}: nothing of the parent");
        let snap = scope.snapshot();
        assert_eq!(snap.tag("process_default"), Some("yes"), "{who}: the process default's data");
        assert!(snap.breadcrumbs().all(|b| b.message.as_deref() != Some("parent-1")));
    }
    let parent = support::schema::valid(transport.take_events()).pop().unwrap();
    assert_eq!(parent.breadcrumbs.len(), 1);
    drop(guard);
}
