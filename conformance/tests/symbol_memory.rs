//! The memory a panic event's symbolization takes is given back: the symbolizer's thread frees
//! the parsed debug info once idle and exits, and the process's resident memory returns to
//! within a few MiB of what it was before the first panic (glibc kept 62–77 MiB of it resident
//! when the transport's thread resolved stacks itself). Alone in its binary: it reads the
//! process's `VmRSS`.

use std::time::{Duration, Instant};

/// `VmRSS` of this process, KiB.
fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn symbolizer_running() -> bool {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .any(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|name| name.trim() == "isoscope-syms"))
}

#[inline(never)]
fn charge_card(amount: &str) -> u64 {
    amount.parse().expect("amount is a number")
}

#[test]
fn the_symbolizer_gives_its_memory_back_once_idle() {
    if !cfg!(target_os = "linux") {
        return; // reads /proc
    }
    // std's own report of the panic is silenced: with RUST_BACKTRACE set, std's symbolizer would
    // parse the debug info too, and keep it for the life of the process.
    std::panic::set_hook(Box::new(|info| {
        if std::thread::current().name() != Some("card") {
            eprintln!("{info}");
        }
    }));
    let transport = isoscope::MemoryTransport::new();
    let guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
    isoscope::capture_message("warm", isoscope::Level::Info);
    assert!(guard.flush(Duration::from_secs(10)));
    let before = rss_kib();

    let card = std::thread::Builder::new().name("card".into()).spawn(|| charge_card("twelve")).unwrap();
    assert!(card.join().is_err());
    assert!(guard.flush(Duration::from_secs(30)));
    let events = transport.events();
    let panic = events.iter().find(|e| e.level == Some(isoscope::Level::Fatal)).expect("the panic event");
    let mut stack = panic.exception[0].stacktrace.clone().expect("a stack");
    stack.resolve();
    assert!(stack.frames.iter().any(|f| f.function.as_deref().is_some_and(|n| n.ends_with("charge_card"))));
    let resolved = rss_kib();
    assert!(symbolizer_running(), "the symbolizer keeps its caches while stacks may follow");

    let deadline = Instant::now() + Duration::from_secs(40);
    while symbolizer_running() {
        assert!(Instant::now() < deadline, "the symbolizer's thread never exited");
        std::thread::sleep(Duration::from_millis(200));
    }
    let idle = rss_kib();
    let (peak, kept) = ((resolved - before) as f64 / 1024.0, (idle - before) as f64 / 1024.0);
    println!("RSS before {before} KiB; resolved +{peak:.1} MiB; idle +{kept:.1} MiB");
    assert!(peak > 8.0, "resolving took memory: +{peak:.1} MiB (else this test proves nothing)");
    assert!(kept < peak / 4.0 && kept < 25.0, "kept +{kept:.1} MiB of the +{peak:.1} MiB resolution");
}
