//! The wire model: what is captured and sent, in Sentry's event JSON shape.
//!
//! Plain data with serde derives and the rules that apply to data alone; nothing here knows
//! about scopes, bindings or transports (sentry-rust's `sentry-types` is the same cut).
//!
//! ```text
//!  Event ─┬─ EventId, Level, Exception (+ Mechanism), Breadcrumb, User, Request, Sdk
//!         ├─ limits::apply   Sentry's size limits (tags, messages, 1 MiB in all)
//!         ├─ scrub::scrub    secret-looking values → "[Filtered]"
//!         └─ Envelope        what a transport is handed: header line + items
//! ```

mod attachment;
mod breadcrumb;
mod check_in;
mod client_report;
mod envelope;
mod exception;
mod id;
pub(crate) mod limits;
mod log;
mod monitor_config;
mod request;
pub(crate) mod scrub;
mod sessions;
mod span_status;
mod stacktrace;
mod transaction;
mod user;
mod wire;

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use crate::outcome::{DataCategory, DiscardReason};
pub use attachment::{Attachment, AttachmentType};
pub(crate) use breadcrumb::{advance_order, observe_order};
pub use breadcrumb::{Breadcrumb, Level};
pub use check_in::{CheckIn, CheckInContexts, CheckInStatus, CheckInTrace};
pub use client_report::{ClientReport, DiscardedEvent};
pub(crate) use envelope::{event_size_hint, Finish};
pub use envelope::{Delivery, Envelope, EnvelopeItem, FinishedEnvelope, ItemType};
pub use exception::{Exception, Mechanism};
pub use id::EventId;
pub use log::{Log, LogAttribute, LogLevel};
pub use monitor_config::{CheckInError, IntervalUnit, MonitorConfig, MonitorSchedule};
pub use request::Request;
pub use sessions::{SessionAggregate, SessionAggregates, SessionAttributes};
pub use span_status::{SpanStatus, UnknownSpanStatus};

pub(crate) use stacktrace::ResolveFrames;
pub use stacktrace::{Frame, Stacktrace, Thread};
pub(crate) use transaction::{Deferred, DeferredParts};
pub use transaction::{Span, Transaction};

pub use user::User;

/// An event: a message or an error, with the scope data merged in at capture.
///
/// Serializes to the Sentry event JSON (`wire.rs`). Fields left `None`/empty are filled from the scopes when
/// the event is captured (a value set here wins over every scope).
///
/// ```
/// use isoscope::{Event, Level};
/// let mut event = Event::message("disk almost full", Level::Warning);
/// event.tags.insert("disk".into(), "/var".into());
/// let json = serde_json::to_value(&event).unwrap();
/// assert_eq!(json["level"], "warning");
/// assert_eq!(json["logentry"]["formatted"], "disk almost full");
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// Unique id.
    pub event_id: EventId,
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
    /// Severity; `None` means "error" unless a scope sets a level.
    #[serde(default)]
    pub level: Option<Level>,
    /// `"native"`, what Sentry expects of a compiled language (sentry-rust sends the same; Relay
    /// rewrites platforms it does not know, such as `"rust"`, to `"other"`).
    pub platform: String,
    /// The logger or component that produced the event.
    #[serde(default)]
    pub logger: Option<String>,
    /// A plain message. On the wire, Sentry's `logentry` interface: `{"formatted": message}`
    /// (a top-level `message` string is not part of Sentry's event schema), with the template
    /// and its parameters when [`message_template`](Self::message_template) is set.
    #[serde(rename = "logentry", default, deserialize_with = "de_logentry")]
    pub message: Option<String>,
    /// The template `message` was made from and its parameters (`logentry.message` and
    /// `logentry.params`), so that Sentry groups `order 7 failed` and `order 9 failed` as one
    /// issue: see [`Event::message_with_params`]. Not read back by `Deserialize`.
    #[serde(skip)]
    pub message_template: Option<Template>,
    /// Exceptions, innermost cause first and the outermost error last (Sentry's order).
    #[serde(default, deserialize_with = "de_values")]
    pub exception: Vec<Exception>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Extra data.
    #[serde(default)]
    pub extra: BTreeMap<String, Value>,
    /// Contexts.
    #[serde(default)]
    pub contexts: BTreeMap<String, Value>,
    /// The user.
    #[serde(default)]
    pub user: Option<User>,
    /// Breadcrumbs, oldest first: shared with the scopes they were recorded in (a capture
    /// copies pointers, not breadcrumbs). Add one with `event.breadcrumbs.push(crumb.into())`;
    /// change one with [`Arc::make_mut`](std::sync::Arc::make_mut).
    #[serde(default, deserialize_with = "de_values")]
    pub breadcrumbs: Vec<std::sync::Arc<Breadcrumb>>,
    /// Threads: with `Options::attach_stacktrace`, a message event's capture site.
    #[serde(default, deserialize_with = "de_values")]
    pub threads: Vec<Thread>,
    /// The HTTP request.
    #[serde(default)]
    pub request: Option<Request>,
    /// Transaction (route) name.
    #[serde(default)]
    pub transaction: Option<String>,
    /// Grouping fingerprint.
    #[serde(default)]
    pub fingerprint: Option<Vec<String>>,
    /// Release.
    #[serde(default)]
    pub release: Option<String>,
    /// Environment.
    #[serde(default)]
    pub environment: Option<String>,
    /// Host name.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The SDK that produced the event.
    pub sdk: Sdk,
}

/// A message template and its parameters: `logentry.message` and `logentry.params`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Template {
    /// The template, with `{}` where each parameter goes (`order {} failed`).
    pub message: String,
    /// The parameters, in order.
    pub params: Vec<Value>,
}

/// The SDK description sent with every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sdk {
    /// `"sentry.rust.isoscope"`: Sentry's `entity.ecosystem.flavor` form.
    pub name: String,
    /// The crate version.
    pub version: String,
    /// The integrations in use (`tower`, `axum`, `tracing`, `anyhow`, `panic`), filled in at
    /// capture when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrations: Vec<String>,
    /// The packages the SDK is made of: `cargo:isoscope` and its version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
}

/// A package of the [`Sdk`], as `{"name": "cargo:isoscope", "version": "0.2.0"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Package {
    /// `registry:name`.
    pub name: String,
    /// Its version.
    pub version: String,
}

impl Default for Sdk {
    fn default() -> Self {
        Self {
            name: concat!("sentry.rust.", env!("CARGO_PKG_NAME")).to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            integrations: Vec::new(),
            packages: vec![Package {
                name: concat!("cargo:", env!("CARGO_PKG_NAME")).to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            }],
        }
    }
}

/// Reads a `logentry` back: its `formatted` text, else its `message` template.
fn de_logentry<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct LogEntry {
        formatted: Option<String>,
        message: Option<String>,
    }
    Ok(Option::<LogEntry>::deserialize(d)?.and_then(|l| l.formatted.or(l.message)))
}

fn de_values<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    struct Values<T> {
        values: Vec<T>,
    }
    Ok(Values::deserialize(d)?.values)
}

impl Default for Event {
    fn default() -> Self {
        Self {
            event_id: EventId::new(),
            timestamp: crate::util::now_f64(),
            level: None,
            platform: "native".to_owned(),
            logger: None,
            message: None,
            message_template: None,
            exception: Vec::new(),
            tags: BTreeMap::new(),
            extra: BTreeMap::new(),
            contexts: BTreeMap::new(),
            user: None,
            breadcrumbs: Vec::new(),
            threads: Vec::new(),
            request: None,
            transaction: None,
            fingerprint: None,
            release: None,
            environment: None,
            server_name: None,
            sdk: Sdk::default(),
        }
    }
}

impl Event {
    /// An event carrying a plain message.
    pub fn message(message: impl Into<String>, level: Level) -> Self {
        Self { message: Some(message.into()), level: Some(level), ..Self::default() }
    }

    /// A message event from a template with `{}` placeholders and its parameters: `message` is
    /// the formatted text, and the template and parameters go with it, so that Sentry groups the
    /// events of one template as one issue. Missing parameters leave `{}`; extra ones are kept
    /// in `params` only.
    ///
    /// ```
    /// use isoscope::{Event, Level};
    /// let event = Event::message_with_params("order {} failed after {} tries", [7.into(), 3.into()], Level::Error);
    /// assert_eq!(event.message.as_deref(), Some("order 7 failed after 3 tries"));
    /// let json = serde_json::to_value(&event).unwrap();
    /// assert_eq!(json["logentry"]["message"], "order {} failed after {} tries");
    /// assert_eq!(json["logentry"]["params"], serde_json::json!([7, 3]));
    /// ```
    pub fn message_with_params(
        template: impl Into<String>,
        params: impl IntoIterator<Item = Value>,
        level: Level,
    ) -> Self {
        let template = Template { message: template.into(), params: params.into_iter().collect() };
        let mut formatted = String::with_capacity(template.message.len() + 16);
        let mut params = template.params.iter();
        let mut rest = template.message.as_str();
        while let Some(at) = rest.find("{}") {
            formatted.push_str(&rest[..at]);
            match params.next() {
                Some(Value::String(s)) => formatted.push_str(s),
                Some(other) => formatted.push_str(&other.to_string()),
                None => formatted.push_str("{}"),
            }
            rest = &rest[at + 2..];
        }
        formatted.push_str(rest);
        Self { message: Some(formatted), message_template: Some(template), level: Some(level), ..Self::default() }
    }

    /// An event for an error, with one exception per error of its `source()` chain.
    ///
    /// ```
    /// let err: Box<dyn std::error::Error> = "12a".parse::<u8>().unwrap_err().into();
    /// let event = isoscope::Event::from_error(err.as_ref());
    /// assert_eq!(event.exception[0].ty, "ParseIntError");
    /// ```
    pub fn from_error(error: &(dyn StdError + 'static)) -> Self {
        let mut exception = Vec::new();
        let mut next = Some(error);
        while let Some(err) = next {
            exception.push(Exception {
                ty: type_name_from_debug(err),
                value: Some(err.to_string()),
                ..Exception::default()
            });
            next = err.source();
            if exception.len() >= 64 {
                break; // a cyclic or absurdly deep chain must not loop forever
            }
        }
        exception.reverse();
        if let Some(outer) = exception.last_mut() {
            outer.mechanism = Some(Mechanism { ty: "generic".into(), handled: true });
        }
        Self { exception, ..Self::default() }
    }

    /// An event for a panic payload (level fatal, unhandled mechanism `panic`).
    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned());
        Self {
            level: Some(Level::Fatal),
            exception: vec![Exception {
                ty: "panic".into(),
                value: Some(msg),
                mechanism: Some(Mechanism { ty: "panic".into(), handled: false }),
                stacktrace: None,
            }],
            ..Self::default()
        }
    }
}

impl Event {
    /// Resolves every captured stack in the event now (see [`Stacktrace::resolve`]): what a
    /// `before_send` hook or a custom transport calls to read frames before serialization.
    pub fn resolve_stacktraces(&mut self) {
        let exceptions = self.exception.iter_mut().filter_map(|e| e.stacktrace.as_mut());
        for trace in exceptions.chain(self.threads.iter_mut().filter_map(|t| t.stacktrace.as_mut())) {
            trace.resolve();
        }
    }

    /// Where a stack for this event goes: the outermost exception's, else a current thread's.
    pub(crate) fn stacktrace_slot(&mut self) -> &mut Option<Stacktrace> {
        if !self.exception.is_empty() {
            let last = self.exception.len() - 1;
            return &mut self.exception[last].stacktrace;
        }
        if !self.threads.iter().any(|t| t.current) {
            let name = std::thread::current().name().map(str::to_owned);
            self.threads.push(Thread { name, current: true, stacktrace: None });
        }
        let current = self.threads.iter().position(|t| t.current).unwrap_or(0);
        &mut self.threads[current].stacktrace
    }
}

/// Best effort at a type name for a `dyn Error`: the leading identifier of its `Debug` output
/// (`ParseIntError { kind: .. }` → `ParseIntError`), as sentry-rust does. Only the name is
/// kept: the writer ignores the output after it instead of copying a nested error's whole
/// `Debug` (which cost more than the rest of a capture). It never reports an error to the
/// `Debug` impl, so an impl that unwraps its writes cannot panic here.
fn type_name_from_debug(err: &dyn StdError) -> String {
    struct Name {
        name: String,
        done: bool,
    }
    impl fmt::Write for Name {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            if self.done {
                return Ok(());
            }
            for c in s.chars() {
                if !(c.is_alphanumeric() || c == '_' || c == ':') || self.name.len() >= 256 {
                    self.done = true;
                    break;
                }
                self.name.push(c);
            }
            Ok(())
        }
    }
    let mut name = Name { name: String::new(), done: false };
    let _ = fmt::write(&mut name, format_args!("{err:?}"));
    if name.name.is_empty() {
        "Error".to_owned()
    } else {
        name.name
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    #[derive(Debug)]
    struct Outer(std::num::ParseIntError);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("config is invalid")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_chain_is_innermost_first() {
        let err = Outer("x".parse::<u8>().unwrap_err());
        let event = Event::from_error(&err);
        let types: Vec<_> = event.exception.iter().map(|e| e.ty.as_str()).collect();
        assert_eq!(types, ["ParseIntError", "Outer"]);
        assert_eq!(event.exception[1].value.as_deref(), Some("config is invalid"));
    }

    #[test]
    fn event_serializes_wrapped_lists() {
        let mut event = Event::message("m", Level::Info);
        event.breadcrumbs.push(Breadcrumb::new("b").into());
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["breadcrumbs"]["values"][0]["message"], "b");
        assert_eq!(json["event_id"].as_str().unwrap().len(), 32);
        assert_eq!(json["platform"], "native");
        assert_eq!(json["logentry"], serde_json::json!({ "formatted": "m" }));
        assert!(json.get("message").is_none(), "no top-level message: Sentry's schema has none");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back.breadcrumbs[0].message.as_deref(), Some("b"));
        assert_eq!(back.message.as_deref(), Some("m"));
    }

    #[test]
    fn event_id_is_a_v4_uuid() {
        let id = EventId::new().to_string();
        assert_eq!(&id[12..13], "4");
        assert!(matches!(&id[16..17], "8" | "9" | "a" | "b"));
    }
}
