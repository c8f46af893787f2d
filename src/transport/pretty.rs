//! The human-readable rendering of the local sink (`ISOSCOPE_OUTPUT=pretty`): an event's
//! headline, its in-app frames, breadcrumbs, tags and user, a few lines each.

use std::fmt::Write;

use crate::event::{Event, Transaction};

/// Most in-app frames shown (innermost first).
const FRAMES: usize = 8;
/// Most breadcrumbs shown (the latest).
const CRUMBS: usize = 10;

/// `HH:MM:SS.mmm` (UTC) of an epoch timestamp.
fn clock(epoch: f64) -> String {
    let full = crate::util::rfc3339(epoch); // 2026-12-05T12:00:01.123Z
    full.get(11..23).unwrap_or(&full).to_owned()
}

/// An event as a block of lines, ending with an empty line.
pub(super) fn event(event: &Event) -> String {
    let mut out = String::new();
    let level = event.level.map_or_else(|| "error".to_owned(), |l| l.to_string());
    let headline = match event.exception.last() {
        Some(e) => format!("{}: {}", e.ty, e.value.as_deref().unwrap_or_default()),
        None => event.message.clone().unwrap_or_else(|| "(no message)".to_owned()),
    };
    let _ = writeln!(out, "[isoscope] {:<7} {headline}", level);
    let mut about = vec![format!("event {}", event.event_id)];
    if let Some(t) = &event.transaction {
        about.push(t.clone());
    }
    if let Some(r) = &event.request {
        about.push(format!("{} {}", r.method.as_deref().unwrap_or("?"), r.url.as_deref().unwrap_or("?")));
    }
    let _ = writeln!(out, "  {}", about.join(" · "));
    let frames = event
        .exception
        .iter()
        .rev()
        .filter_map(|e| e.stacktrace.as_ref())
        .chain(event.threads.iter().filter_map(|t| t.stacktrace.as_ref()));
    if let Some(trace) = frames.into_iter().next() {
        for f in trace.frames.iter().rev().filter(|f| f.in_app == Some(true)).take(FRAMES) {
            let place = match (&f.filename, f.lineno) {
                (Some(file), Some(line)) => format!(" ({file}:{line})"),
                (Some(file), None) => format!(" ({file})"),
                _ => String::new(),
            };
            let _ = writeln!(out, "  at {}{place}", f.function.as_deref().unwrap_or("?"));
        }
    }
    if !event.breadcrumbs.is_empty() {
        let _ = writeln!(out, "  breadcrumbs:");
        let skip = event.breadcrumbs.len().saturating_sub(CRUMBS);
        for b in event.breadcrumbs.iter().skip(skip) {
            let category = b.category.as_deref().unwrap_or(&b.ty);
            let _ = writeln!(
                out,
                "    {} {:<10} {}",
                clock(b.timestamp),
                category,
                b.message.as_deref().unwrap_or_default()
            );
        }
    }
    if !event.tags.is_empty() {
        let tags: Vec<String> = event.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "  tags: {}", tags.join(" "));
    }
    if let Some(u) = &event.user {
        let who =
            [u.id.as_deref(), u.email.as_deref(), u.username.as_deref()].into_iter().flatten().collect::<Vec<_>>();
        let _ = writeln!(out, "  user: {}", who.join(" "));
    }
    out.push('\n');
    out
}

/// A transaction as one line.
pub(super) fn transaction(t: &Transaction) -> String {
    let ms = (t.timestamp - t.start_timestamp) * 1000.0;
    format!("[isoscope] tx      {} {} ({ms:.1} ms, {} spans, {})\n\n", t.op, t.name, t.spans.len(), t.status.as_str())
}

/// A log record as one line: time, level, body, attributes other than Sentry's own.
pub(super) fn log(log: &crate::event::Log) -> String {
    let level = serde_json::to_value(log.level).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let mut line = format!("[isoscope] log     {} {level:<5} {}", clock(log.timestamp), log.body);
    for (key, value) in log.attributes.iter().filter(|(k, _)| !k.starts_with("sentry.")) {
        let value = serde_json::to_value(value).ok().map(|v| v["value"].to_string()).unwrap_or_default();
        line.push_str(&format!("  {key}={value}"));
    }
    line.push('\n');
    line
}

/// A check-in as one line: monitor, status, duration.
pub(super) fn check_in(c: &crate::event::CheckIn) -> String {
    let status = serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let duration = c.duration.map(|d| format!(" ({d:.1} s)")).unwrap_or_default();
    format!("[isoscope] check-in {} {status}{duration}\n", c.monitor_slug)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Breadcrumb, Exception, Frame, Level, Stacktrace, User};

    #[test]
    fn an_event_reads_as_its_headline_in_app_frames_breadcrumbs_tags_and_user() {
        let mut event = Event::message("unused", Level::Error);
        let mut outer = Frame::new("std::rt::lang_start");
        outer.in_app = Some(false);
        let mut site = Frame::new("shop::checkout");
        (site.in_app, site.filename, site.lineno) = (Some(true), Some("src/checkout.rs".into()), Some(42));
        let mut exception = Exception::new("ParseIntError", "invalid digit");
        exception.stacktrace = Some(Stacktrace::new(vec![outer, site]));
        event.exception.push(exception);
        event.breadcrumbs.push(std::sync::Arc::new(Breadcrumb::new("cart loaded").category("cart")));
        event.tags.insert("tenant".into(), "acme".into());
        event.user = Some(User::with_id("user-7"));
        let text = super::event(&event);
        assert!(text.starts_with("[isoscope] error   ParseIntError: invalid digit\n"), "{text}");
        assert!(text.contains("\n  at shop::checkout (src/checkout.rs:42)\n"), "{text}");
        assert!(!text.contains("lang_start"), "only in-app frames: {text}");
        assert!(text.contains(" cart       cart loaded\n"), "{text}");
        assert!(text.contains("  tags: tenant=acme\n") && text.contains("  user: user-7\n"), "{text}");
    }
}
