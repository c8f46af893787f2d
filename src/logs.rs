//! Structured logs: records sent to the server as Sentry logs, each linked to the trace of the
//! request it was recorded in (with [`Options::enable_logs`](crate::Options::enable_logs)).
//!
//! Three sources, one pipeline:
//!
//! - the macros here, [`trace!`], [`debug!`], [`info!`], [`warn!`], [`error!`], [`fatal!`]:
//!   a message template with `{}` placeholders (kept as `sentry.message.template`, its
//!   arguments as `sentry.message.parameter.0`, `.1`, ...), and optional attributes before a
//!   `;`;
//! - `tracing` records at or above `BreadcrumbLayer::logs_from` (default `INFO`), with their
//!   fields as attributes (feature `tracing`);
//! - `log` records, through `integrations::log::Logger` (feature `log`).
//!
//! Each record carries `sentry.release`, `sentry.environment`, `sentry.sdk.name` and
//! `.version`, `server.address`, `sentry.origin`, the scope's tags, and with
//! `send_default_pii` its user (`user.id`, `user.name`, `user.email`); values under secret
//! keys are `[Filtered]` unless `send_default_pii`. On the calling thread a record costs a
//! snapshot of the scope and a push into a bounded buffer; attributes, `before_send_log` and
//! serialization happen on a batching thread (100 records per envelope, or after 5 s, and at
//! flush and shutdown). `log_item` rate limits are honoured; a full buffer drops and counts.
//!
//! ```
//! let transport = isoscope::MemoryTransport::new();
//! let guard = isoscope::init(isoscope::Options::new().enable_logs(true).transport(transport.clone())).unwrap();
//! isoscope::set_tag("tenant", "acme");
//! isoscope::logs::warn!(order_id = 7, retry = true; "payment for order {} declined: {}", 7, "insufficient funds");
//! assert!(guard.flush(std::time::Duration::from_secs(1)));
//!
//! let log = &transport.logs()[0];
//! assert_eq!(log.body, "payment for order 7 declined: insufficient funds");
//! assert_eq!(log.level, isoscope::logs::LogLevel::Warn);
//! let attr = |k: &str| log.attributes[k].clone();
//! assert_eq!(attr("sentry.message.template"), "payment for order {} declined: {}".into());
//! assert_eq!(attr("sentry.message.parameter.1"), "insufficient funds".into());
//! assert_eq!((attr("order_id"), attr("retry")), (7i64.into(), true.into()));
//! assert_eq!(attr("tenant"), "acme".into());
//! ```

use std::borrow::Cow;
use std::fmt::Display;

pub use crate::event::{Log, LogAttribute, LogLevel};

/// Whether a log call may be recorded (a client has logs on): the macros check it before
/// formatting anything.
#[inline]
pub fn enabled() -> bool {
    crate::client::logs::enabled()
}

/// Records `body` at `level` with `attributes`, in the active scope (what the macros do,
/// without a template).
///
/// ```
/// use isoscope::logs::{LogAttribute, LogLevel};
/// isoscope::logs::log(LogLevel::Info, "cache warmed", [("entries", LogAttribute::from(1200i64))]);
/// ```
pub fn log(
    level: LogLevel,
    body: impl Into<String>,
    attributes: impl IntoIterator<Item = (&'static str, LogAttribute)>,
) {
    if enabled() {
        let attributes = attributes.into_iter().map(|(k, v)| (Cow::Borrowed(k), v)).collect();
        let source = crate::client::logs::LogSource::Text(body.into(), attributes);
        crate::client::logs::record(level, source, None, None, "manual");
    }
}

/// The macros' entry: formats `template` (its `{}` placeholders, in order) with `args`.
#[doc(hidden)]
pub fn __record(
    level: LogLevel,
    template: &'static str,
    args: &[&dyn Display],
    attributes: Vec<(&'static str, LogAttribute)>,
) {
    let body = fill(template, args);
    let params = args.iter().map(|a| LogAttribute::String(a.to_string())).collect();
    let attributes = attributes.into_iter().map(|(k, v)| (Cow::Borrowed(k), v)).collect();
    let source = crate::client::logs::LogSource::Text(body, attributes);
    crate::client::logs::record(level, source, Some((Cow::Borrowed(template), params)), None, "manual");
}

/// `template` with each `{}` replaced by the next of `args` (`{{` and `}}` are braces);
/// a placeholder with anything inside is kept as written.
fn fill(template: &str, args: &[&dyn Display]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(template.len() + 16 * args.len());
    let mut args = args.iter();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with("{{") || rest.starts_with("}}") {
            out.push_str(&rest[..1]);
            rest = &rest[2..];
        } else if rest.starts_with("{}") {
            match args.next() {
                Some(arg) => {
                    let _ = write!(out, "{arg}");
                }
                None => out.push_str("{}"),
            }
            rest = &rest[2..];
        } else {
            out.push_str(&rest[..1]);
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

#[doc(hidden)]
#[macro_export]
macro_rules! __isoscope_log {
    ($level:expr, $($key:ident = $value:expr),+ ; $template:literal $(, $arg:expr)* $(,)?) => {
        if $crate::logs::enabled() {
            // The compiler checks the template against the arguments (never run).
            if false {
                let _ = ::std::format_args!($template $(, $arg)*);
            }
            $crate::logs::__record(
                $level,
                $template,
                &[$(&$arg as &dyn ::std::fmt::Display),*],
                ::std::vec![$((::std::stringify!($key), $crate::logs::LogAttribute::from($value))),+],
            );
        }
    };
    ($level:expr, $template:literal $(, $arg:expr)* $(,)?) => {
        if $crate::logs::enabled() {
            if false {
                let _ = ::std::format_args!($template $(, $arg)*);
            }
            $crate::logs::__record($level, $template, &[$(&$arg as &dyn ::std::fmt::Display),*], ::std::vec::Vec::new());
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __isoscope_logs_trace {
    ($($t:tt)+) => { $crate::__isoscope_log!($crate::logs::LogLevel::Trace, $($t)+) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __isoscope_logs_debug {
    ($($t:tt)+) => { $crate::__isoscope_log!($crate::logs::LogLevel::Debug, $($t)+) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __isoscope_logs_info {
    ($($t:tt)+) => { $crate::__isoscope_log!($crate::logs::LogLevel::Info, $($t)+) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __isoscope_logs_warn {
    ($($t:tt)+) => { $crate::__isoscope_log!($crate::logs::LogLevel::Warn, $($t)+) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __isoscope_logs_error {
    ($($t:tt)+) => { $crate::__isoscope_log!($crate::logs::LogLevel::Error, $($t)+) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __isoscope_logs_fatal {
    ($($t:tt)+) => { $crate::__isoscope_log!($crate::logs::LogLevel::Fatal, $($t)+) };
}

/// Records a `debug` log (see [`trace!`] for the forms).
pub use crate::__isoscope_logs_debug as debug;
/// Records an `error` log (see [`trace!`] for the forms). An error *log* is not an error
/// *event*: use `capture_error` for those.
pub use crate::__isoscope_logs_error as error;
/// Records a `fatal` log (see [`trace!`] for the forms).
pub use crate::__isoscope_logs_fatal as fatal;
/// Records an `info` log (see [`trace!`] for the forms).
pub use crate::__isoscope_logs_info as info;
/// Records a `trace` log: `trace!("template {}", arg)` or `trace!(key = value; "template {}", arg)`.
pub use crate::__isoscope_logs_trace as trace;
/// Records a `warn` log (see [`trace!`] for the forms).
pub use crate::__isoscope_logs_warn as warn;

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn placeholders_are_filled_in_order() {
        assert_eq!(fill("a {} b {} c", &[&1, &"x"]), "a 1 b x c");
        assert_eq!(fill("{{literal}} {}", &[&2]), "{literal} 2");
        assert_eq!(fill("{} {}", &[&1]), "1 {}", "missing arguments leave the placeholder");
        assert_eq!(fill("named {id} kept", &[]), "named {id} kept");
        assert_eq!(fill("no placeholders", &[&1]), "no placeholders");
        assert_eq!(fill("unicode é {} ü", &[&"ß"]), "unicode é ß ü");
    }
}
