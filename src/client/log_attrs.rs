//! A pending log record becomes a [`Log`]: its trace and span from the scope it was recorded
//! in, and its attributes — the client's (`sentry.release`, `sentry.environment`,
//! `sentry.sdk.*`, `server.address`), the message template and parameters, the record's own
//! fields, the scope's tags and (with `send_default_pii`) user — scrubbed and bounded.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::logs::{LogSource, PendingLog};
use super::Core;
use crate::event::scrub::FILTERED;
use crate::event::{Log, LogAttribute};

/// At most this many characters of a body, or of a string attribute.
const MAX_BODY: usize = 8192;
const MAX_VALUE: usize = 2048;
/// At most this many of a record's own fields (and as many tags).
const MAX_FIELDS: usize = 64;

/// The log of `pending`, with its attributes; `now` is the wall clock's time (seconds since
/// the Unix epoch) at the monotonic instant beside it.
pub(super) fn to_log(pending: PendingLog, core: &Core, now: (f64, std::time::Instant)) -> Log {
    let PendingLog { at, level, source, template, code, origin, scope, otel } = pending;
    let timestamp = now.0 - now.1.saturating_duration_since(at).as_secs_f64();
    let (mut body, attributes) = match source {
        LogSource::Text(body, attributes) => (body, attributes),
        LogSource::Crumb(crumb) => {
            let attributes = crumb.data.iter().map(|(k, v)| (Cow::Owned(k.clone()), LogAttribute::from(v))).collect();
            let body = match crumb.message.as_deref() {
                Some(message) if !message.is_empty() => message.to_owned(),
                // No message: the fields say what happened.
                _ => crumb.data.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "),
            };
            (body, attributes)
        }
    };
    let trace = super::capture::trace_of(&scope);
    crate::util::truncate_chars(&mut body, MAX_BODY);
    let mut log = Log::new(timestamp, trace.trace_id(), level, body);
    // The open span (`start_span`), else the request's own.
    log.span_id = scope.active_span().map(|(span, _)| span).or_else(|| scope.request().map(|r| r.trace().span_id()));
    if let Some(otel) = otel {
        // An OpenTelemetry span was active: its trace.
        (log.trace_id, log.span_id) = (otel.trace_id, Some(otel.span_id));
    }
    let options = &core.options;
    let scrub = (!options.send_default_pii).then_some(&*options.scrubber);
    let mut attrs = BTreeMap::new();
    // The record's own fields, the tags, then ours: ours win (`sentry.*` are Sentry's).
    for (key, value) in attributes.into_iter().take(MAX_FIELDS) {
        attrs.insert(key.into_owned(), value);
    }
    for (key, value) in scope.tags().iter().take(MAX_FIELDS) {
        attrs.entry(key.to_string()).or_insert_with(|| LogAttribute::String(value.to_string()));
    }
    if let Some(scrub) = scrub {
        for (key, value) in attrs.iter_mut() {
            if scrub.is_secret_key(key) {
                *value = LogAttribute::String(FILTERED.to_owned());
            } else if let LogAttribute::String(text) = value {
                filter(text, scrub);
            }
        }
        filter(&mut log.body, scrub);
    }
    if let (false, Some(user)) = (scrub.is_some(), scope.user()) {
        for (key, value) in [("user.id", &user.id), ("user.name", &user.username), ("user.email", &user.email)] {
            if let Some(value) = value {
                attrs.insert(key.to_owned(), LogAttribute::String(value.clone()));
            }
        }
    }
    if let Some((template, params)) = template {
        for (i, param) in params.into_iter().enumerate() {
            attrs.insert(format!("sentry.message.parameter.{i}"), param);
        }
        attrs.insert("sentry.message.template".to_owned(), LogAttribute::String(template.into_owned()));
    }
    if let Some(code) = code {
        attrs.insert("logger.name".to_owned(), LogAttribute::String(code.target.into_owned()));
        if let Some(file) = code.file {
            attrs.insert("code.file.path".to_owned(), LogAttribute::String(file.to_owned()));
        }
        if let Some(line) = code.line {
            attrs.insert("code.line.number".to_owned(), LogAttribute::Integer(i64::from(line)));
        }
    }
    let client = [
        ("sentry.release", options.release.as_deref()),
        ("sentry.environment", options.environment.as_deref()),
        ("server.address", options.server_name.as_deref()),
        ("sentry.sdk.name", Some("sentry.rust.isoscope")),
        ("sentry.sdk.version", Some(env!("CARGO_PKG_VERSION"))),
        ("sentry.origin", Some(origin)),
    ];
    for (key, value) in client {
        if let Some(value) = value {
            attrs.insert(key.to_owned(), LogAttribute::String(value.to_owned()));
        }
    }
    for value in attrs.values_mut() {
        if let LogAttribute::String(s) = value {
            crate::util::truncate_chars(s, MAX_VALUE);
        }
    }
    log.attributes = attrs;
    log
}

/// `text` without URL userinfo and secret `key=value` pairs.
fn filter(text: &mut String, rules: &crate::event::scrub::Scrubber) {
    if let std::borrow::Cow::Owned(filtered) = crate::event::scrub::filter_text(text, rules) {
        *text = filtered;
    }
}
