//! Cron monitors: background jobs report to Sentry's Crons — `in_progress` when they start,
//! `ok` or `error` (a returned `Err`, a panic, a cancelled future) with their duration when
//! they end — so the server alerts when a job is missed, fails or runs too long.
//!
//! ```
//! use std::time::Duration;
//! use isoscope::protocol::{MonitorConfig, MonitorSchedule};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let transport = isoscope::MemoryTransport::new();
//! let guard = isoscope::init(isoscope::Options::new().transport(transport.clone()))?;
//! let config = MonitorConfig::new(MonitorSchedule::crontab("0 3 * * *")).max_runtime(30);
//! let backup = isoscope::Monitor::new("nightly-backup")?.with_config(config)?;
//! let copied: Result<u64, std::io::Error> = backup.run(async { Ok(42) }).await;
//! assert_eq!(copied?, 42);
//! guard.flush(Duration::from_secs(1));
//!
//! let statuses: Vec<String> = transport.check_ins().iter().map(|c| format!("{:?}", c.status)).collect();
//! assert_eq!(statuses, ["InProgress", "Ok"]);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Instant;

use crate::event::{CheckIn, CheckInError, CheckInStatus, EventId, MonitorConfig};

/// Sends one check-in as it is (the manual form): its slug and monitor configuration are
/// checked first; environment, release and the active trace are filled in when unset.
///
/// ```
/// use isoscope::protocol::{CheckIn, CheckInStatus};
/// let _guard = isoscope::init(isoscope::Options::new().transport(isoscope::MemoryTransport::new())).unwrap();
/// let started = isoscope::capture_check_in(CheckIn::new("import", CheckInStatus::InProgress)).unwrap();
/// let mut done = CheckIn::new("import", CheckInStatus::Ok);
/// (done.check_in_id, done.duration) = (started, Some(3.2));
/// isoscope::capture_check_in(done).unwrap();
/// assert!(isoscope::capture_check_in(CheckIn::new("", CheckInStatus::Ok)).is_err());
/// ```
pub fn capture_check_in(check_in: CheckIn) -> Result<EventId, CheckInError> {
    crate::client::check_ins::send(check_in)
}

/// Whether a job's result is a failure (its final check-in is then `error`).
pub trait JobOutcome {
    /// `true` for a failure.
    fn failed(&self) -> bool;
}

impl JobOutcome for () {
    fn failed(&self) -> bool {
        false
    }
}

impl<T, E> JobOutcome for Result<T, E> {
    fn failed(&self) -> bool {
        self.is_err()
    }
}

/// A cron monitor: its slug and, optionally, the configuration the server creates or updates
/// it with.
#[derive(Debug, Clone)]
pub struct Monitor {
    slug: String,
    config: Option<MonitorConfig>,
}

impl Monitor {
    /// A monitor named `slug` (1 to 50 characters).
    pub fn new(slug: impl Into<String>) -> Result<Self, CheckInError> {
        let slug = slug.into();
        crate::client::check_ins::check_slug(&slug)?;
        Ok(Self { slug, config: None })
    }

    /// With a configuration, checked now (see [`MonitorConfig::validate`]).
    pub fn with_config(mut self, config: MonitorConfig) -> Result<Self, CheckInError> {
        config.validate()?;
        self.config = Some(config);
        Ok(self)
    }

    /// Runs `job`, reporting it: `in_progress` now, then `ok`, or `error` if it returns an
    /// `Err`, panics or is dropped before it ends.
    pub async fn run<F>(&self, job: F) -> F::Output
    where
        F: Future,
        F::Output: JobOutcome,
    {
        let running = Running::start(self);
        let output = job.await;
        running.end(!output.failed());
        output
    }

    /// [`run`](Self::run) for a synchronous job.
    pub fn run_sync<R: JobOutcome>(&self, job: impl FnOnce() -> R) -> R {
        let running = Running::start(self);
        let output = job();
        running.end(!output.failed());
        output
    }
}

/// Runs `job` under the monitor `slug` (see [`Monitor::run`]); a slug the server would refuse
/// runs the job unreported (the debug output says so).
pub async fn monitor<F>(slug: &str, job: F) -> F::Output
where
    F: Future,
    F::Output: JobOutcome,
{
    match Monitor::new(slug) {
        Ok(monitor) => monitor.run(job).await,
        Err(e) => {
            crate::debug::line(format_args!("monitor: {e}; the job runs unreported"));
            job.await
        }
    }
}

/// [`monitor`] for a synchronous job.
///
/// ```
/// let _guard = isoscope::init(isoscope::Options::new().transport(isoscope::MemoryTransport::new())).unwrap();
/// let rows: Result<usize, String> = isoscope::monitor_sync("cleanup", || Ok(12));
/// assert_eq!(rows, Ok(12));
/// ```
pub fn monitor_sync<R: JobOutcome>(slug: &str, job: impl FnOnce() -> R) -> R {
    match Monitor::new(slug) {
        Ok(monitor) => monitor.run_sync(job),
        Err(e) => {
            crate::debug::line(format_args!("monitor: {e}; the job runs unreported"));
            job()
        }
    }
}

/// A job between its `in_progress` check-in and its last: dropped without [`end`](Self::end)
/// (a panic unwinding, a future dropped), it reports `error`.
struct Running {
    slug: String,
    id: EventId,
    started: Instant,
    ended: bool,
}

impl Running {
    fn start(monitor: &Monitor) -> Self {
        let mut check_in = CheckIn::new(monitor.slug.clone(), CheckInStatus::InProgress);
        check_in.monitor_config = monitor.config.clone();
        let id = check_in.check_in_id;
        report(check_in);
        Self { slug: monitor.slug.clone(), id, started: Instant::now(), ended: false }
    }

    fn end(mut self, ok: bool) {
        self.ended = true;
        self.report(if ok { CheckInStatus::Ok } else { CheckInStatus::Error });
    }

    fn report(&self, status: CheckInStatus) {
        let mut check_in = CheckIn::new(self.slug.clone(), status);
        check_in.check_in_id = self.id;
        check_in.duration = Some(self.started.elapsed().as_secs_f64());
        report(check_in);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.ended {
            self.report(CheckInStatus::Error);
        }
    }
}

/// Sends a check-in of a running job; a failure to send is the debug output's to say.
fn report(check_in: CheckIn) {
    if let Err(e) = capture_check_in(check_in) {
        crate::debug::line(format_args!("monitor: check-in not sent: {e}"));
    }
}
