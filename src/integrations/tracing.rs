//! `tracing` integration: log lines become breadcrumbs of the request they belong to, errors
//! become events, and with `Options::enable_logs` records become Sentry logs (feature
//! `tracing`).
//!
//! [`BreadcrumbLayer`] is a [`tracing_subscriber::Layer`]. For every tracing event it records
//! a breadcrumb in the *active isolation scope*: inside a handler wrapped by
//! [`IsolationLayer`](crate::IsolationLayer), in its [`spawn`](crate::spawn)ed children and
//! [`spawn_blocking`](crate::spawn_blocking) jobs, that is the request's scope, so log lines
//! never end up in another request's events. Events at or above the capture level (default
//! `ERROR`) are also captured as events with that scope.
//!
//! | tracing | breadcrumb / event |
//! | --- | --- |
//! | level `TRACE`, `DEBUG` / `INFO` / `WARN` / `ERROR` | `debug` / `info` / `warning` / `error` |
//! | target (`my_app::db`) | category (breadcrumb), logger (event) |
//! | the `message` field | message |
//! | other fields | data (breadcrumb), extra (event) |
//! | enclosing spans, outermost first | data `spans` (names), `<span>.<field>` (fields) |
//! | a span inside a sampled request (`traces_sample_rate`) | a child span of its transaction: op = span name, description = its `message` field or `target::name`, nested as the tracing spans are |
//!
//! # Example
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! use isoscope::integrations::tracing::BreadcrumbLayer;
//!
//! let transport = isoscope::MemoryTransport::new();
//! let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
//! let subscriber = tracing_subscriber::registry().with(BreadcrumbLayer::new());
//! tracing::subscriber::with_default(subscriber, || {
//!     let request = isoscope::isolation_scope().fork();
//!     request.run(|| {
//!         let span = tracing::info_span!("checkout", order = 7);
//!         let _entered = span.enter();
//!         tracing::info!(items = 3, "cart loaded");
//!         tracing::error!("payment declined");
//!     });
//! });
//! let event = &transport.events()[0];
//! assert_eq!(event.message.as_deref(), Some("payment declined"));
//! let crumb = &event.breadcrumbs[0];
//! assert_eq!(crumb.message.as_deref(), Some("cart loaded"));
//! assert_eq!(crumb.data["items"], 3);
//! assert_eq!(crumb.data["spans"], serde_json::json!(["checkout"]));
//! assert_eq!(crumb.data["checkout.order"], 7);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Level as TracingLevel, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::record::{self as line, Wanted};
use crate::logs::LogLevel;
use crate::SpanGuard;

/// The transaction child span of a tracing span (inside a sampled request).
struct ChildSpan(SpanGuard);

/// A `tracing_subscriber` layer turning tracing events into breadcrumbs of the active
/// isolation scope, and capturing events at or above a level. See the [module docs](self).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct BreadcrumbLayer {
    breadcrumb_level: TracingLevel,
    capture_level: Option<TracingLevel>,
    log_level: Option<TracingLevel>,
}

impl Default for BreadcrumbLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl BreadcrumbLayer {
    /// Breadcrumbs for `INFO` and above; events captured for `ERROR`; logs (with
    /// `Options::enable_logs`) for `INFO` and above.
    pub const fn new() -> Self {
        Self {
            breadcrumb_level: TracingLevel::INFO,
            capture_level: Some(TracingLevel::ERROR),
            log_level: Some(TracingLevel::INFO),
        }
    }

    /// The least severe level sent as a Sentry log (default `INFO`; `None` sends none), when
    /// the client has [`Options::enable_logs`](crate::Options::enable_logs) on. The record's
    /// fields and its spans' fields become the log's attributes, typed; its target is
    /// `logger.name`, its place `code.file.path` and `code.line.number`.
    ///
    /// ```
    /// let layer = isoscope::integrations::tracing::BreadcrumbLayer::new().logs_from(Some(tracing::Level::WARN));
    /// # drop(layer);
    /// ```
    pub const fn logs_from(mut self, level: Option<TracingLevel>) -> Self {
        self.log_level = level;
        self
    }

    /// The least severe level recorded as a breadcrumb (default `INFO`).
    pub const fn breadcrumbs_from(mut self, level: TracingLevel) -> Self {
        self.breadcrumb_level = level;
        self
    }

    /// The least severe level captured as an event (default `ERROR`); `None` captures nothing.
    pub const fn capture_from(mut self, level: Option<TracingLevel>) -> Self {
        self.capture_level = level;
        self
    }
}

/// Collects fields as JSON; the `message` field separately.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    values: BTreeMap<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.values.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}

/// A span's fields, kept in its extensions.
struct SpanFields(BTreeMap<String, Value>);

impl<S> Layer<S> for BreadcrumbLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_layer(&mut self, _subscriber: &mut S) {
        crate::sdk::note(crate::sdk::Integration::Tracing);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        // Inside a sampled request, the tracing span is also a child span of its transaction:
        // under the enclosing tracing span's, else under the request's.
        let description =
            fields.message.clone().unwrap_or_else(|| format!("{}::{}", span.metadata().target(), span.name()));
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<ChildSpan>().map(|c| c.0.start_child(span.name(), &description)));
        let child = parent.unwrap_or_else(|| crate::start_span(span.name(), description));
        if let Some(m) = fields.message {
            fields.values.insert("message".into(), Value::String(m));
        }
        let mut ext = span.extensions_mut();
        ext.insert(SpanFields(fields.values));
        if child.span_id().is_some() {
            ext.insert(ChildSpan(child));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        // The child span ends (and is recorded) when the tracing span closes.
        if let Some(span) = ctx.span(&id) {
            drop(span.extensions_mut().remove::<ChildSpan>());
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut ext = span.extensions_mut();
        if let Some(SpanFields(map)) = ext.get_mut::<SpanFields>() {
            map.extend(fields.values);
        }
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        if crate::transport::on_worker_thread() {
            return; // never turn our own delivery's log lines into more events
        }
        let meta = event.metadata();
        // tracing orders levels by verbosity: ERROR < WARN < INFO < DEBUG < TRACE.
        let as_crumb = *meta.level() <= self.breadcrumb_level;
        let as_event = self.capture_level.is_some_and(|l| *meta.level() <= l);
        let as_log = self.log_level.is_some_and(|l| *meta.level() <= l) && crate::logs::enabled();
        if !as_crumb && !as_event && !as_log {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut data = fields.values;
        if let Some(scope) = ctx.event_scope(event) {
            let mut names = Vec::new();
            for span in scope.from_root() {
                names.push(Value::String(span.name().to_owned()));
                if let Some(SpanFields(map)) = span.extensions().get::<SpanFields>() {
                    for (k, v) in map {
                        data.insert(format!("{}.{k}", span.name()), v.clone());
                    }
                }
            }
            if !names.is_empty() {
                data.insert("spans".into(), Value::Array(names));
            }
        }
        let level = match *meta.level() {
            TracingLevel::ERROR => LogLevel::Error,
            TracingLevel::WARN => LogLevel::Warn,
            TracingLevel::INFO => LogLevel::Info,
            TracingLevel::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        };
        let record = line::Record {
            message: fields.message.unwrap_or_default(),
            level,
            target: meta.target().into(),
            data,
            file: meta.file(),
            line: meta.line(),
            origin: "auto.log.tracing",
        };
        line::emit(record, Wanted { event: as_event, breadcrumb: as_crumb, log: as_log });
    }
}
