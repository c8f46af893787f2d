//! The options of structured logs: `enable_logs` and `before_send_log`.

use std::sync::Arc;

use super::Options;
use crate::event::Log;

impl Options {
    /// Send structured logs (default `false`, as sentry-python's `enable_logs`): records from
    /// [`isoscope::logs`](crate::logs)'s macros, and with their integrations `tracing`
    /// (`BreadcrumbLayer`, `INFO` and above) and `log` records, go to the server as Sentry
    /// logs, each with the trace of the request it was recorded in. Off by default because
    /// logs are billed by volume and a busy service logs a lot: turn it on knowingly.
    ///
    /// Recording a log on a request's thread costs a snapshot of the scope and a push into a
    /// bounded buffer; the records become envelope items on a batching thread (100 per
    /// envelope, or what is there after 5 s, and at flush and shutdown). A full buffer (1,000
    /// records) drops and counts (`stats().items(DataCategory::LogItem)`, client reports).
    ///
    /// ```
    /// let transport = isoscope::MemoryTransport::new();
    /// let guard = isoscope::init(isoscope::Options::new().enable_logs(true).transport(transport.clone())).unwrap();
    /// isoscope::logs::info!("cache warmed in {} ms", 42);
    /// assert!(guard.flush(std::time::Duration::from_secs(1)));
    /// let logs = transport.logs();
    /// assert_eq!(logs[0].body, "cache warmed in 42 ms");
    /// ```
    #[must_use]
    pub fn enable_logs(mut self, on: bool) -> Self {
        self.enable_logs = on;
        self
    }

    /// Called with every log record before it is sent, on the batching thread (or on the
    /// thread calling flush or shutdown: never inside the log call); return `None` to drop it (counted as discarded by `before_send`
    /// for `log_item`), or edit it.
    ///
    /// ```
    /// let options = isoscope::Options::new()
    ///     .enable_logs(true)
    ///     .before_send_log(|log| (!log.body.starts_with("healthcheck")).then_some(log));
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn before_send_log<F>(mut self, f: F) -> Self
    where
        F: Fn(Log) -> Option<Log> + Send + Sync + 'static,
    {
        self.before_send_log = Some(Arc::new(f));
        self
    }
}
