//! [`Exception`] and [`Mechanism`]: an error (or one error of a `source()` chain) in an event.

use serde::{Deserialize, Serialize};

use super::Stacktrace;

/// One exception in an event (an error, or one error of a `source()` chain).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
pub struct Mechanism {
    /// The capturing integration (`"generic"`, `"panic"`, `"http"`).
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether the application handled it (`false` for panics).
    pub handled: bool,
}
