//! [`Breadcrumb`]s, severity [`Level`]s, and the process-wide recording order by which
//! breadcrumbs of different scopes are merged.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Severity of an event or breadcrumb, as Sentry names them.
///
/// ```
/// assert_eq!(isoscope::Level::Warning.as_str(), "warning");
/// assert!(isoscope::Level::Error > isoscope::Level::Info);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Debugging detail.
    Debug,
    /// Informational (the default for breadcrumbs).
    #[default]
    Info,
    /// Something unexpected that was handled.
    Warning,
    /// An error (the default for events).
    Error,
    /// A crash: the unit of work could not continue (panics are captured at this level).
    Fatal,
}

impl Level {
    /// The lower-case wire name (`"debug"`, `"info"`, `"warning"`, `"error"`, `"fatal"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Process-wide recording order. Breadcrumbs from the global, isolation and current scopes are
/// merged by it, never by wall-clock time (which can tie or go backwards).
///
/// One process-wide counter, but the hot path does not write it. A breadcrumb of the global
/// scope, of a current scope or of an event (rare) *advances* the counter and takes the new
/// value `n` as its order `2n`; a breadcrumb recorded in an isolation scope (every request's)
/// only *reads* it and takes `2n + 1`: after everything that advanced it to `n`, before what
/// advances it next. A read that happens after an advance sees it and one that happens before
/// cannot (coherence of a single atomic), so the order respects happens-before across scopes
/// and threads. Isolation breadcrumbs that read the same value keep their ring order (the merge
/// sorts stably, and one event has one isolation scope). Writing the counter on every request
/// made it a cache line bouncing between cores, the largest single cost of a breadcrumb.
static SEQUENCE: Padded = Padded(AtomicU64::new(1));

/// Its own cache line: nothing read on the hot path may share it with a line that is written.
#[repr(align(128))]
struct Padded(AtomicU64);

/// Advances the recording order: for breadcrumbs of the global and current scopes and events.
pub(crate) fn advance_order() -> u64 {
    (SEQUENCE.0.fetch_add(1, Ordering::Relaxed) + 1) * 2
}

/// Reads the recording order: for breadcrumbs of isolation scopes.
pub(crate) fn observe_order() -> u64 {
    SEQUENCE.0.load(Ordering::Relaxed) * 2 + 1
}

/// A record of something that happened before an event: a log line, a query, a click.
///
/// Build one with [`Breadcrumb::new`] and the builder setters, then record it with
/// [`add_breadcrumb`](crate::add_breadcrumb).
///
/// ```
/// use isoscope::{Breadcrumb, Level};
///
/// let crumb = Breadcrumb::new("cache miss")
///     .category("cache")
///     .ty("query")
///     .level(Level::Warning)
///     .data("key", "user:42");
/// assert_eq!(crumb.message.as_deref(), Some("cache miss"));
/// assert_eq!(crumb.data["key"], "user:42");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Breadcrumb {
    /// Seconds since the Unix epoch when the breadcrumb was created.
    pub timestamp: f64,
    /// Breadcrumb type (`"default"`, `"http"`, `"query"`, ...).
    #[serde(rename = "type", default = "default_type")]
    pub ty: Cow<'static, str>,
    /// A dotted category such as `"auth"` or `"db.query"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Cow<'static, str>>,
    /// Human-readable message. A `&'static str` is kept as is: recording a breadcrumb with a
    /// literal message allocates nothing for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Cow<'static, str>>,
    /// Severity (default [`Level::Info`]).
    #[serde(default)]
    pub level: Level,
    /// Arbitrary structured data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, Value>,
    /// Recording order; assigned when the breadcrumb is added to a scope.
    #[serde(skip)]
    pub(crate) seq: u64,
}

fn default_type() -> Cow<'static, str> {
    Cow::Borrowed("default")
}

impl Default for Breadcrumb {
    fn default() -> Self {
        Self {
            timestamp: crate::util::now_f64(),
            ty: default_type(),
            category: None,
            message: None,
            level: Level::Info,
            data: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl Breadcrumb {
    /// A placeholder left where a breadcrumb was moved out (nothing to drop, no clock read).
    pub(crate) const EMPTY: Self = Self {
        timestamp: 0.0,
        ty: Cow::Borrowed("default"),
        category: None,
        message: None,
        level: Level::Info,
        data: BTreeMap::new(),
        seq: 0,
    };

    /// A breadcrumb with a message, type `"default"` and level [`Level::Info`], timestamped now.
    ///
    /// The message is a literal (`&'static str`, not copied) or an owned `String`
    /// (`format!(..)`; pass `text.clone()` or `text.to_owned()` for borrowed text).
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self { message: Some(message.into()), timestamp: crate::util::now_f64(), ..Self::EMPTY }
    }

    /// Sets the category.
    #[must_use]
    pub fn category(mut self, category: impl Into<Cow<'static, str>>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Sets the type (`"default"`, `"http"`, `"navigation"`, `"query"`, ...).
    #[must_use]
    pub fn ty(mut self, ty: impl Into<Cow<'static, str>>) -> Self {
        self.ty = ty.into();
        self
    }

    /// Sets the level.
    #[must_use]
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Adds one data entry.
    #[must_use]
    pub fn data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }
}
