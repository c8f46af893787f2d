//! Stack traces: a cheap capture of the stack (instruction addresses only) at a panic or capture
//! site, turned into Sentry frames later, off the request path.
//!
//! ```text
//!  capture(rules)        walks the stack now: up to MAX_FRAMES addresses, no symbols (µs)
//!    └▶ Stacktrace::pending(Unresolved)      carried by the event through the pipeline
//!         └▶ resolve (transport thread, at serialization, or Stacktrace::resolve)
//!              symbolizer: on its own thread, which frees the debug info once idle
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
mod symbolizer;

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

/// Captured instruction addresses, innermost first.
struct Unresolved {
    ips: Vec<usize>,
    rules: Arc<InApp>,
}

impl ResolveFrames for Unresolved {
    fn resolve(&self) -> Vec<Frame> {
        finish(symbolizer::resolve(&self.ips, resolve_ips), &self.rules)
    }
}

/// The frames of `ips`, innermost first, inlined functions included (on the symbolizer's
/// thread).
fn resolve_ips(ips: &[usize]) -> Vec<Frame> {
    let mut frames = Vec::with_capacity(ips.len());
    for &ip in ips {
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
    frames
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
