//! [`Exception`] and [`Mechanism`]: an error (or one error of a `source()` chain) in an event.

use serde::{Deserialize, Serialize};

use super::Stacktrace;

/// One exception in an event (an error, or one error of a `source()` chain).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Exception {
    /// The error's type name (e.g. `ParseIntError`).
    #[serde(rename = "type")]
    pub ty: String,
    /// The error's `Display` text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// How it was caught, e.g. `{"type": "panic", "handled": false}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<Mechanism>,
    /// Where it happened: a panic's stack, an error's own backtrace (`capture_anyhow`), or
    /// the capture site's with `Options::attach_stacktrace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<Stacktrace>,
}

/// How an exception was captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Mechanism {
    /// The capturing integration (`"generic"`, `"panic"`, `"http"`).
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether the application handled it (`false` for panics).
    pub handled: bool,
}

impl Exception {
    /// An exception of type `ty` with `value` as its text.
    ///
    /// ```
    /// let mut event = isoscope::Event::message("import failed", isoscope::Level::Error);
    /// let mut e = isoscope::Exception::new("ImportError", "row 7: bad date");
    /// e.mechanism = Some(isoscope::Mechanism::new("generic", true));
    /// event.exception.push(e);
    /// ```
    pub fn new(ty: impl Into<String>, value: impl Into<String>) -> Self {
        Self { ty: ty.into(), value: Some(value.into()), mechanism: None, stacktrace: None }
    }
}

impl Mechanism {
    /// A mechanism of type `ty` (`generic`, `panic`, ...), `handled` or not.
    pub fn new(ty: impl Into<String>, handled: bool) -> Self {
        Self { ty: ty.into(), handled }
    }
}
