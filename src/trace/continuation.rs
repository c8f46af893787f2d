//! Whether an incoming trace is continued: the organization check of Sentry's strict trace
//! continuation (`sentry-org_id` in the caller's baggage against this service's org id).
//!
//! A trace from another Sentry organization is never continued when both ids are known and
//! differ; with `strict`, one whose org id is unknown on either side (but not both) is not
//! either. A trace that is not continued starts afresh here, as if no header had come.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// This service's org id (0: unknown), set by `init`.
static ORG_ID: AtomicU64 = AtomicU64::new(0);
static STRICT: AtomicBool = AtomicBool::new(false);

/// Installs the client's org id and `strict_trace_continuation` (`init`).
pub(crate) fn set(org_id: Option<u64>, strict: bool) {
    ORG_ID.store(org_id.unwrap_or(0), Ordering::Relaxed);
    STRICT.store(strict, Ordering::Relaxed);
}

/// This service's org id, for the baggage and sampling context of the traces it starts.
pub(crate) fn org_id() -> Option<u64> {
    Some(ORG_ID.load(Ordering::Relaxed)).filter(|&id| id != 0)
}

/// Whether a trace whose caller's baggage says `incoming` (its `sentry-org_id`, if any) is
/// continued.
pub(crate) fn continues(incoming: Option<&str>) -> bool {
    decide(incoming.map(str::trim), org_id(), STRICT.load(Ordering::Relaxed))
}

fn decide(incoming: Option<&str>, own: Option<u64>, strict: bool) -> bool {
    match (incoming, own) {
        // A value that is no number is no org id of Sentry's: it matches none.
        (Some(incoming), Some(own)) => incoming.parse::<u64>().ok() == Some(own),
        (None, None) => true,
        (Some(_), None) | (None, Some(_)) => !strict,
    }
}

/// The `sentry-org_id` entry of a caller's `sentry-*` baggage.
pub(crate) fn org_id_in(baggage: Option<&str>) -> Option<&str> {
    baggage?.split(',').find_map(|entry| entry.trim().strip_prefix("sentry-org_id="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_table() {
        // (incoming, own, strict) → continued, as develop.sentry.dev's strict trace
        // continuation table has it.
        let cases = [
            (Some("1"), Some(1), false, true),
            (Some("1"), Some(1), true, true),
            (Some("1"), Some(2), false, false),
            (Some("1"), Some(2), true, false),
            (None, Some(1), false, true),
            (None, Some(1), true, false),
            (Some("1"), None, false, true),
            (Some("1"), None, true, false),
            (None, None, false, true),
            (None, None, true, true),
            (Some("x1"), Some(1), false, false),
        ];
        for (incoming, own, strict, want) in cases {
            assert_eq!(decide(incoming, own, strict), want, "{incoming:?} {own:?} strict={strict}");
        }
    }

    #[test]
    fn the_org_id_is_read_from_the_sentry_baggage() {
        assert_eq!(org_id_in(Some("sentry-trace_id=ab,sentry-org_id=42")), Some("42"));
        assert_eq!(org_id_in(Some("sentry-trace_id=ab")), None);
        assert_eq!(org_id_in(None), None);
    }
}
