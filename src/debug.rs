//! Debug output (`Options::debug(true)` or `ISOSCOPE_DEBUG=1`): one line on stderr at `init`,
//! and one per kind of problem as it happens, rate-limited so that it can never flood.
//!
//! Off by default; when off, reporting a problem costs one relaxed atomic load. Each kind of
//! problem prints at most one line per [`INTERVAL`], and the next line it prints says how many
//! were left out in between. Writing to stderr never panics (a closed stderr is ignored).

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shortest time between two lines about the same kind of problem.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The kinds of problem the debug output reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A write from code bound to no scope (kept in that task's or thread's own scope).
    UnboundWrite,
    /// The transport's queue was full: an event was dropped.
    QueueFull,
    /// The server could not be reached (connection refused or reset, timeout, 5xx).
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // reported by `HttpTransport`
    Network,
    /// The server answered 4xx (other than 429).
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // reported by `HttpTransport`
    Rejected,
    /// The server answered with a redirect (never followed).
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // reported by `HttpTransport`
    Redirected,
    /// The server announced a rate limit.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // reported by `HttpTransport`
    RateLimited,
    /// Events still queued or in flight when the client shut down were dropped.
    Shutdown,
    /// A flush found events lost since the last one, or still pending at its deadline.
    FlushIncomplete,
    /// The `ClientGuard` was dropped right after `init` (`let _ = isoscope::init(..)`).
    GuardDroppedAtOnce,
    /// An incoming trace was not continued: another organization's (`sentry-org_id`), or one
    /// whose organization is unknown under `strict_trace_continuation`.
    TraceNotContinued,
}

const KINDS: usize = 10;

impl Problem {
    fn index(self) -> usize {
        self as usize
    }
}

/// Per kind: when it last printed, and how many reports were left out since.
static STATE: Mutex<[(Option<Instant>, u64); KINDS]> = Mutex::new([(None, 0); KINDS]);

/// Turns the debug output on or off (`init` does, from its options and `ISOSCOPE_DEBUG`).
pub(crate) fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether the debug output is on.
#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Prints one line, unconditionally but for the switch: built whole first and written with one
/// `write` call, so that lines from several threads never interleave mid-line.
pub(crate) fn line(args: fmt::Arguments<'_>) {
    if enabled() {
        let line = format!("[isoscope] {args}\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Text that came from outside (a server's answer, a header, a host name), shown with every
/// control character escaped (`\n`, `\u{1b}`, ...): it can neither forge a line of ours nor
/// drive the terminal.
pub(crate) struct Untrusted<T>(pub(crate) T);

impl<T: AsRef<str>> fmt::Display for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.as_ref().chars() {
            // Also the Unicode controls that reorder text (bidi overrides and isolates).
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// Reports a problem with a fixed description.
#[inline]
pub(crate) fn once(problem: Problem) {
    if enabled() {
        report(problem, &|| describe(problem).to_owned());
    }
}

/// Reports a problem; `detail` makes the line (only called when the line is printed).
#[inline]
pub(crate) fn problem(problem: Problem, detail: impl Fn() -> String) {
    if enabled() {
        report(problem, &detail);
    }
}

#[cold]
#[inline(never)]
fn report(problem: Problem, detail: &dyn Fn() -> String) {
    let now = Instant::now();
    let left_out = {
        let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, left_out) = &mut state[problem.index()];
        if last.is_some_and(|at| now.duration_since(at) < INTERVAL) {
            *left_out += 1;
            return;
        }
        *last = Some(now);
        std::mem::take(left_out)
    };
    let detail = detail();
    if left_out > 0 {
        line(format_args!("{detail} ({left_out} more like this not shown)"));
    } else {
        line(format_args!("{detail}"));
    }
}

fn describe(problem: Problem) -> &'static str {
    match problem {
        Problem::TraceNotContinued => {
            "an incoming trace was not continued: its baggage's sentry-org_id differs from this service's \
             org id (or, with strict_trace_continuation, one of the two is unknown); a new trace started here"
        }
        Problem::UnboundWrite => {
            "a write from code bound to no scope (a plain `tokio::spawn`, or a thread other than the one \
             that called init, after start-up) went to that task's or thread's own scope, not to any request \
             or the base requests fork: use `isoscope::spawn` / `isoscope::thread::spawn` to carry the \
             request's scope (stats().writes_unbound counts them)"
        }
        Problem::QueueFull => {
            "the transport's queue is full: an event was dropped (Options::max_queue_bytes; on a host with no \
             CPU to spare, the transport's thread gets a tenth of a core: HttpTransportBuilder::cpu_priority)"
        }
        Problem::Network => "the server could not be reached",
        Problem::Rejected => "the server rejected an event",
        Problem::Redirected => "the server redirected; isoscope does not follow redirects",
        Problem::RateLimited => "the server is rate limiting: events are dropped until the limit ends",
        Problem::Shutdown => "events were still queued or in flight at shutdown and were dropped",
        Problem::FlushIncomplete => "flush: some events were not delivered",
        Problem::GuardDroppedAtOnce => {
            "the ClientGuard was dropped right after init, so the client is shut down and later events \
             are dropped: keep it alive (`let _guard = isoscope::init(..)?;`, not `let _ = ..`)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_cannot_forge_a_line_or_drive_the_terminal() {
        let shown = Untrusted("ok\n[isoscope] FORGED LINE: all good\r\u{1b}[2J\u{7}\u{202e}é").to_string();
        assert_eq!(shown, "ok\\n[isoscope] FORGED LINE: all good\\r\\u{1b}[2J\\u{7}\\u{202e}é");
        assert!(!shown.chars().any(char::is_control));
    }

    #[test]
    fn every_kind_has_its_own_slot() {
        let all = [
            Problem::UnboundWrite,
            Problem::QueueFull,
            Problem::Network,
            Problem::Rejected,
            Problem::Redirected,
            Problem::RateLimited,
            Problem::Shutdown,
            Problem::FlushIncomplete,
            Problem::GuardDroppedAtOnce,
            Problem::TraceNotContinued,
        ];
        assert_eq!(all.len(), KINDS);
        for (i, p) in all.iter().enumerate() {
            assert_eq!(p.index(), i);
            assert!(!describe(*p).is_empty());
        }
    }
}
