//! The SDK's account of itself in events: which of isoscope's integrations are in use.
//!
//! Each integration notes itself when it is first used (a layer built, a subscriber layer made,
//! an extractor run); events list them in `sdk.integrations`, as Sentry's SDKs do, so that the
//! server shows how an event was captured.

use std::sync::atomic::{AtomicU8, Ordering};

/// One of isoscope's integrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Integration {
    /// `IsolationLayer` wraps a service.
    Tower = 1,
    /// The axum extractor or route names.
    Axum = 2,
    /// `integrations::tracing::BreadcrumbLayer`.
    Tracing = 4,
    /// `capture_anyhow`.
    Anyhow = 8,
    /// `integrations::log::Logger`.
    #[cfg_attr(not(feature = "log"), allow(dead_code))]
    Log = 16,
}

const NAMES: [(Integration, &str); 5] = [
    (Integration::Tower, "tower"),
    (Integration::Axum, "axum"),
    (Integration::Tracing, "tracing"),
    (Integration::Anyhow, "anyhow"),
    (Integration::Log, "log"),
];

static USED: AtomicU8 = AtomicU8::new(0);

/// Notes that `integration` is in use (a load, and a write only the first time).
#[inline]
pub(crate) fn note(integration: Integration) {
    let bit = integration as u8;
    if USED.load(Ordering::Relaxed) & bit == 0 {
        USED.fetch_or(bit, Ordering::Relaxed);
    }
}

/// The integrations in use, and `panic` when the panic hook captures.
pub(crate) fn integrations(panic_hook: bool) -> Vec<String> {
    let used = USED.load(Ordering::Relaxed);
    let mut names: Vec<String> =
        NAMES.iter().filter(|(i, _)| used & (*i as u8) != 0).map(|(_, n)| (*n).to_owned()).collect();
    if panic_hook {
        names.push("panic".to_owned());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noted_integrations_are_listed() {
        note(Integration::Tower);
        note(Integration::Tower);
        let names = integrations(true);
        assert!(names.contains(&"tower".to_owned()));
        assert_eq!(names.last().map(String::as_str), Some("panic"));
        assert!(!integrations(false).contains(&"panic".to_owned()));
    }
}
