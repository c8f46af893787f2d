//! Stack traces: a cheap capture of the stack (instruction addresses only) at a panic or capture
//! site, turned into Sentry frames later, off the request path.
//!
//! ```text
//!  capture(rules)        walks the stack now: up to MAX_FRAMES addresses, no symbols (µs)
//!    └▶ Stacktrace::pending(Unresolved)      carried by the event through the pipeline
//!         └▶ resolve (transport thread, at serialization, or Stacktrace::resolve)
//!              symbols: backtrace's DWARF reader (inlined functions become frames)
//!              naming::frame   demangled function without hash, module, file, line, column
//!              naming::machinery_len   the capture machinery (isoscope, backtrace, std's panic
//!                              frames) from the innermost end
//!              InApp::classify the application's own frames `in_app: true`
//!  from_std_text(text)   a std `Backtrace` (anyhow's) parsed from its Debug form
//! ```
//!
//! The `backtrace` crate is the walker and symbolizer: it can capture addresses and resolve them
//! later (std's `Backtrace` resolves inside `capture`'s first formatting and has no stable frame
//! API), it is what std itself uses underneath, and sentry-rust uses it too.

mod in_app;
mod naming;
mod std_text;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(crate) use in_app::InApp;
pub(crate) use std_text::from_std_text;

use crate::event::{Frame, ResolveFrames, Stacktrace};

/// Most addresses captured; deeper stacks keep their innermost frames.
const MAX_FRAMES: usize = 200;
/// Most frames sent (inlined functions add frames at resolution).
pub(crate) const MAX_RESOLVED: usize = 250;

/// Captures the current stack, unresolved, to be resolved with `rules`.
#[inline(never)]
pub(crate) fn capture(rules: &Arc<InApp>) -> Stacktrace {
    let mut ips = Vec::with_capacity(64);
    backtrace::trace(|frame| {
        ips.push(frame.ip() as usize);
        ips.len() < MAX_FRAMES
    });
    Stacktrace::pending(Unresolved { ips, rules: rules.clone() })
}

/// Whether a stack was resolved since the symbolizer's caches were last released.
static RESOLVED: AtomicBool = AtomicBool::new(false);

/// How long the symbolizer's caches are kept after the last stack was resolved: long enough
/// that a stream of events with stacks keeps them warm (a resolution with them costs ~1 ms, a
/// cold one ~100 ms for a 56 MB binary), short enough that a server which reported a panic
/// gives the memory back soon after.
pub(crate) const KEEP_SYMBOLS: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the symbolizer holds caches a stack resolution filled (see
/// [`release_symbol_caches`]).
pub(crate) fn symbols_cached() -> bool {
    RESOLVED.load(Ordering::Relaxed)
}

/// Releases the symbolizer's caches — the parsed debug info and the mapped binary, tens of MiB
/// for a large binary with line tables — if a stack was resolved since the last release. The
/// transports' threads call it once they have been idle for [`KEEP_SYMBOLS`], so the memory a
/// panic event's symbolization takes is given back instead of being held for the rest of the
/// process.
pub(crate) fn release_symbol_caches() {
    if RESOLVED.swap(false, Ordering::Relaxed) {
        backtrace::clear_symbol_cache();
    }
}

/// Captured instruction addresses, innermost first.
struct Unresolved {
    ips: Vec<usize>,
    rules: Arc<InApp>,
}

impl ResolveFrames for Unresolved {
    fn resolve(&self) -> Vec<Frame> {
        RESOLVED.store(true, Ordering::Relaxed);
        let mut frames = Vec::with_capacity(self.ips.len());
        for &ip in &self.ips {
            let addr = format!("{ip:#x}");
            let before = frames.len();
            // Inlined functions come innermost first, as the frames do.
            backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
                let function = symbol.name().map(|n| format!("{n:#}"));
                let file = symbol.filename().map(|p| p.display().to_string());
                let mut frame = naming::frame(function, file, symbol.lineno(), symbol.colno());
                frame.instruction_addr = Some(addr.clone());
                frames.push(frame);
            });
            if frames.len() == before {
                frames.push(Frame { instruction_addr: Some(addr), ..Frame::default() });
            }
        }
        finish(frames, &self.rules)
    }
}

/// Trims the capture machinery off the innermost end, bounds the count, marks `in_app`, and
/// puts the frames oldest first.
fn finish(mut frames: Vec<Frame>, rules: &InApp) -> Vec<Frame> {
    let machinery = naming::machinery_len(&frames);
    if machinery < frames.len() {
        frames.drain(..machinery);
    }
    frames.truncate(MAX_RESOLVED);
    for frame in &mut frames {
        frame.in_app = Some(rules.classify(frame));
    }
    frames.reverse();
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(function: &str) -> Frame {
        Frame { function: Some(function.to_owned()), ..Frame::default() }
    }

    #[test]
    fn machinery_is_trimmed_from_the_innermost_end_only() {
        let innermost_first = vec![
            named("backtrace::backtrace::trace"),
            named("isoscope::client::panic_hook::on_panic"),
            named("std::panicking::rust_panic_with_hook"),
            named("core::panicking::panic_fmt"),
            named("core::result::Result<T,E>::expect"),
            named("myapp::orders::load"),
            named("isoscope::layer::future::poll"),
            named("myapp::main"),
        ];
        let frames = finish(innermost_first, &InApp::default());
        let names: Vec<_> = frames.iter().map(|f| f.function.as_deref().unwrap()).collect();
        assert_eq!(
            names,
            [
                "myapp::main",
                "isoscope::layer::future::poll",
                "myapp::orders::load",
                "core::result::Result<T,E>::expect"
            ]
        );
        let in_app: Vec<_> = frames.iter().map(|f| f.in_app.unwrap()).collect();
        assert_eq!(in_app, [true, false, true, false]);
    }

    #[test]
    fn a_stack_of_machinery_only_is_kept_whole() {
        let frames = finish(vec![named("std::panicking::begin_panic")], &InApp::default());
        assert_eq!(frames.len(), 1);
    }

    #[test]
    fn a_capture_resolves_to_frames_with_addresses() {
        let mut trace = capture(&Arc::new(InApp::default()));
        assert!(!trace.is_resolved());
        trace.resolve();
        assert!(trace.is_resolved());
        assert!(!trace.frames.is_empty());
        assert!(trace.frames.iter().all(|f| f.instruction_addr.as_deref().is_some_and(|a| a.starts_with("0x"))));
        let names: Vec<_> = trace.frames.iter().filter_map(|f| f.function.as_deref()).collect();
        assert!(!names.iter().any(|n| n.starts_with("backtrace::")), "{names:?}");
    }
}
