//! `log` integration: [`Logger`], a `log::Log` that turns records into breadcrumbs of the
//! active scope, events at or above a level (default `Error`) and, with
//! `Options::enable_logs`, Sentry logs at or above a level (default `Info`) — then hands each
//! record to the logger you already had, if any (feature `log`).
//!
//! Many libraries log through the `log` crate; with [`Logger`] their records land in the
//! request they were made in, like `tracing`'s through `BreadcrumbLayer`.
//!
//! | log | breadcrumb / event / Sentry log |
//! | --- | --- |
//! | `Trace`, `Debug` / `Info` / `Warn` / `Error` | `debug` / `info` / `warning` / `error`; logs keep the five levels |
//! | target | category (breadcrumb), logger (event), `logger.name` (log) |
//! | key-values (`log`'s `kv`) | data (breadcrumb), extra (event), attributes (log) |
//!
//! ```
//! use isoscope::integrations::log::Logger;
//!
//! let transport = isoscope::MemoryTransport::new();
//! let guard = isoscope::init(isoscope::Options::new().enable_logs(true).transport(transport.clone())).unwrap();
//! Logger::new().install().unwrap(); // once per process: `log`'s global logger
//! isoscope::isolation_scope().fork().run(|| {
//!     log::info!("cache warmed");
//!     log::error!("disk full");
//! });
//! guard.flush(std::time::Duration::from_secs(1));
//! let event = &transport.events()[0];
//! assert_eq!(event.message.as_deref(), Some("disk full"));
//! assert_eq!(event.breadcrumbs[0].message.as_deref(), Some("cache warmed"));
//! assert_eq!(transport.logs().len(), 2);
//! ```

use std::collections::BTreeMap;

use log::{Level as LogCrateLevel, LevelFilter, Log, Metadata, Record};
use serde_json::Value;

use crate::logs::LogLevel;

/// A `log::Log` recording into isoscope, then into `dest` (see the [module docs](self)).
#[must_use]
pub struct Logger {
    breadcrumb_level: LevelFilter,
    capture_level: LevelFilter,
    log_level: LevelFilter,
    dest: Option<Box<dyn Log>>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("breadcrumb_level", &self.breadcrumb_level)
            .field("capture_level", &self.capture_level)
            .field("log_level", &self.log_level)
            .field("dest", &self.dest.is_some())
            .finish()
    }
}

impl Default for Logger {
    fn default() -> Self {
        Self::new()
    }
}

impl Logger {
    /// Breadcrumbs for `Info` and above, events for `Error`, Sentry logs for `Info` and above
    /// (with `Options::enable_logs`); no other logger.
    pub fn new() -> Self {
        Self {
            breadcrumb_level: LevelFilter::Info,
            capture_level: LevelFilter::Error,
            log_level: LevelFilter::Info,
            dest: None,
        }
    }

    /// Hands every record on to `dest` too (`env_logger`, ...), after isoscope has seen it.
    pub fn with_dest(mut self, dest: impl Log + 'static) -> Self {
        self.dest = Some(Box::new(dest));
        self
    }

    /// The least severe level recorded as a breadcrumb (default `Info`; `Off`: none).
    pub fn breadcrumbs_from(mut self, level: LevelFilter) -> Self {
        self.breadcrumb_level = level;
        self
    }

    /// The least severe level captured as an event (default `Error`; `Off`: none).
    pub fn capture_from(mut self, level: LevelFilter) -> Self {
        self.capture_level = level;
        self
    }

    /// The least severe level sent as a Sentry log (default `Info`; `Off`: none).
    pub fn logs_from(mut self, level: LevelFilter) -> Self {
        self.log_level = level;
        self
    }

    /// Installs it as `log`'s global logger and raises `log`'s maximum level to the most
    /// verbose one it (or `dest`) wants. Fails if a global logger is installed already.
    pub fn install(self) -> Result<(), log::SetLoggerError> {
        let dest = self.dest.as_ref().map_or(LevelFilter::Off, |_| LevelFilter::Trace);
        let max = [self.breadcrumb_level, self.capture_level, self.log_level, dest].into_iter().max();
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(max.unwrap_or(LevelFilter::Off));
        Ok(())
    }
}

/// Collects a record's key-values.
struct Fields(BTreeMap<String, Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: log::kv::Key<'kvs>, value: log::kv::Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(b) = value.to_bool() {
            Value::Bool(b)
        } else if let Some(i) = value.to_i64() {
            Value::from(i)
        } else if let Some(f) = value.to_f64() {
            Value::from(f)
        } else {
            Value::String(value.to_string())
        };
        self.0.insert(key.as_str().to_owned(), json);
        Ok(())
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let level = metadata.level();
        level <= self.breadcrumb_level
            || level <= self.capture_level
            || level <= self.log_level
            || self.dest.as_ref().is_some_and(|d| d.enabled(metadata))
    }

    fn log(&self, record: &Record<'_>) {
        if !crate::transport::on_worker_thread() {
            self.record(record);
        }
        if let Some(dest) = &self.dest {
            dest.log(record);
        }
    }

    fn flush(&self) {
        if let Some(dest) = &self.dest {
            dest.flush();
        }
    }
}

impl Logger {
    fn record(&self, record: &Record<'_>) {
        let level = record.level();
        let as_crumb = level <= self.breadcrumb_level;
        let as_event = level <= self.capture_level;
        let as_log = level <= self.log_level && crate::logs::enabled();
        if !as_crumb && !as_event && !as_log {
            return;
        }
        crate::sdk::note(crate::sdk::Integration::Log);
        let message = record.args().to_string();
        let mut fields = Fields(BTreeMap::new());
        let _ = record.key_values().visit(&mut fields);
        let level = match level {
            LogCrateLevel::Error => LogLevel::Error,
            LogCrateLevel::Warn => LogLevel::Warn,
            LogCrateLevel::Info => LogLevel::Info,
            LogCrateLevel::Debug => LogLevel::Debug,
            LogCrateLevel::Trace => LogLevel::Trace,
        };
        let record = super::record::Record {
            message,
            level,
            target: record.target().to_owned().into(),
            data: fields.0,
            file: record.file_static(),
            line: record.line(),
            origin: "auto.log.log",
        };
        super::record::emit(record, super::record::Wanted { event: as_event, breadcrumb: as_crumb, log: as_log });
    }
}
