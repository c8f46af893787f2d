//! What the `tracing` and `log` integrations make of one log record: an event, a breadcrumb
//! and a Sentry log, as their levels ask, sharing one breadcrumb (nothing copied for the log).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::client::logs::{Code, LogSource};
use crate::logs::LogLevel;
use crate::{Breadcrumb, Event, Level};

/// One record of a logging framework.
pub(super) struct Record {
    pub(super) message: String,
    pub(super) level: LogLevel,
    /// The logger: breadcrumb category, event `logger`, log `logger.name`.
    pub(super) target: Cow<'static, str>,
    /// Its fields: breadcrumb data, event extra, log attributes.
    pub(super) data: BTreeMap<String, Value>,
    pub(super) file: Option<&'static str>,
    pub(super) line: Option<u32>,
    /// The log's `sentry.origin`.
    pub(super) origin: &'static str,
}

/// What to make of a record.
#[derive(Clone, Copy)]
pub(super) struct Wanted {
    pub(super) event: bool,
    pub(super) breadcrumb: bool,
    pub(super) log: bool,
}

/// Captures the event, records the breadcrumb and sends the log that `wanted` names.
pub(super) fn emit(record: Record, wanted: Wanted) {
    let level = match record.level {
        LogLevel::Trace | LogLevel::Debug => Level::Debug,
        LogLevel::Info => Level::Info,
        LogLevel::Warn => Level::Warning,
        LogLevel::Error => Level::Error,
        LogLevel::Fatal => Level::Fatal,
    };
    if wanted.event {
        let mut event = Event::message(record.message.clone(), level);
        event.logger = Some(record.target.clone().into_owned());
        event.extra = record.data.clone();
        crate::capture_event(event);
    }
    if !wanted.breadcrumb && !wanted.log {
        return;
    }
    let mut crumb = Breadcrumb::new(record.message).category(record.target.clone()).level(level);
    crumb.ty = "log".into();
    crumb.data = record.data;
    if !wanted.log {
        crate::add_breadcrumb(crumb);
        return;
    }
    let crumb = if wanted.breadcrumb { crate::client::add_shared_breadcrumb(crumb) } else { Arc::new(crumb) };
    let code = Code { target: record.target, file: record.file, line: record.line };
    crate::client::logs::record(record.level, LogSource::Crumb(crumb), None, Some(code), record.origin);
}
