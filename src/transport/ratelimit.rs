//! Rate limits announced by the server: `X-Sentry-Rate-Limits`, `Retry-After`, bare 429.

use std::time::{Duration, Instant, SystemTime};

use crate::event::{DataCategory, FinishedEnvelope, ItemType};

/// Without any header, a 429 limits everything for this long (the Sentry spec's default).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Per-category "disabled until" instants, one slot per [`DataCategory`] (limits naming only
/// categories this SDK does not know are ignored). A longer limit is never shortened by a
/// later, shorter one (sentry-rust overwrites; the spec asks for the maximum).
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    all: Option<Instant>,
    categories: [Option<Instant>; DataCategory::ALL.len()],
}

impl RateLimits {
    /// Whether `category` is limited at `now`.
    pub(crate) fn is_limited(&self, category: DataCategory, now: Instant) -> bool {
        self.all.is_some_and(|t| t > now) || self.categories[category.index()].is_some_and(|t| t > now)
    }

    /// Whether every item of kinds `types` is limited at `now`: an envelope of them is dropped
    /// whole. A kind without a category (a client report) is never limited, so an envelope
    /// holding one is not.
    pub(crate) fn all_limited(&self, types: impl Iterator<Item = ItemType>, now: Instant) -> bool {
        let mut any = false;
        for t in types {
            match t.category() {
                Some(c) if self.is_limited(c, now) => any = true,
                _ => return false,
            }
        }
        any
    }

    /// Drops the items of `envelope` limited at `now`, calling `dropped` with each one's kind;
    /// whether it is still worth sending (what is left is more than the client reports riding
    /// along).
    pub(crate) fn drop_limited(
        &self,
        envelope: &mut FinishedEnvelope,
        now: Instant,
        mut dropped: impl FnMut(ItemType),
    ) -> bool {
        let counted = |e: &FinishedEnvelope| e.items().iter().filter(|i| i.item_type().category().is_some()).count();
        let before = counted(envelope);
        envelope.retain(|item| {
            let keep = item.item_type().category().is_none_or(|c| !self.is_limited(c, now));
            if !keep {
                dropped(item.item_type());
            }
            keep
        });
        !envelope.items().is_empty() && (before == 0 || counted(envelope) > 0)
    }

    /// Reads a response: `X-Sentry-Rate-Limits` on any status; else, on 429, `Retry-After`
    /// (seconds or an HTTP date), else 60 s for everything.
    pub(crate) fn update(&mut self, status: u16, rate_limits: Option<&str>, retry_after: Option<&str>, now: Instant) {
        if let Some(header) = rate_limits.filter(|h| !h.trim().is_empty()) {
            for entry in header.split(',') {
                self.apply_entry(entry.trim(), now);
            }
        } else if status == 429 {
            let wait = retry_after.and_then(parse_retry_after).unwrap_or(DEFAULT_RETRY_AFTER);
            extend(&mut self.all, now + wait);
        }
    }

    fn apply_entry(&mut self, entry: &str, now: Instant) {
        let mut parts = entry.split(':');
        let Some(secs) = parts.next().and_then(|s| s.trim().parse::<f64>().ok()) else { return };
        if !secs.is_finite() || secs <= 0.0 {
            return;
        }
        let until = now + Duration::from_secs_f64(secs.min(86_400.0 * 30.0));
        let categories = parts.next().unwrap_or("").trim();
        if categories.is_empty() {
            extend(&mut self.all, until);
            return;
        }
        for category in categories.split(';').filter_map(|c| DataCategory::from_name(c.trim())) {
            extend(&mut self.categories[category.index()], until);
        }
    }
}

fn extend(slot: &mut Option<Instant>, until: Instant) {
    if slot.is_none_or(|t| t < until) {
        *slot = Some(until);
    }
}

/// `Retry-After`: delay seconds (integer or float) or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0 * 30.0)));
    }
    let at = crate::util::parse_http_date(value)?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_scopes_and_floats() {
        let now = Instant::now();
        let mut rl = RateLimits::default();
        rl.update(200, Some("1.5:error;transaction:organization, 10:unknown_cat:key"), None, now);
        assert!(rl.is_limited(DataCategory::Error, now + Duration::from_millis(1400)));
        assert!(!rl.is_limited(DataCategory::Error, now + Duration::from_millis(1600)));
        assert!(!rl.is_limited(DataCategory::Session, now));
        let mut others =
            DataCategory::ALL.into_iter().filter(|c| !matches!(c, DataCategory::Error | DataCategory::Transaction));
        assert!(others.all(|c| !rl.is_limited(c, now)), "unknown categories are ignored");
    }

    #[test]
    fn the_longer_limit_wins() {
        let now = Instant::now();
        let mut rl = RateLimits::default();
        rl.update(200, Some("60:error:key"), None, now);
        rl.update(200, Some("1:error:key"), None, now);
        assert!(rl.is_limited(DataCategory::Error, now + Duration::from_secs(30)));
    }

    #[test]
    fn empty_categories_mean_everything() {
        let now = Instant::now();
        let mut rl = RateLimits::default();
        rl.update(429, Some("5::organization"), None, now);
        assert!(rl.is_limited(DataCategory::Error, now + Duration::from_secs(4)));
        assert!(rl.is_limited(DataCategory::Attachment, now));
    }

    #[test]
    fn bare_429_uses_retry_after_or_sixty_seconds() {
        let now = Instant::now();
        let mut rl = RateLimits::default();
        rl.update(429, None, Some("2"), now);
        assert!(rl.is_limited(DataCategory::Error, now + Duration::from_secs(1)));
        assert!(!rl.is_limited(DataCategory::Error, now + Duration::from_secs(3)));
        let mut rl = RateLimits::default();
        rl.update(429, None, None, now);
        assert!(rl.is_limited(DataCategory::Error, now + Duration::from_secs(59)));
        let mut rl = RateLimits::default();
        rl.update(429, None, Some("garbage"), now);
        assert!(rl.is_limited(DataCategory::Error, now + Duration::from_secs(59)));
    }

    #[test]
    fn bugsinks_transaction_only_header_does_not_limit_errors() {
        let now = Instant::now();
        let mut rl = RateLimits::default();
        rl.update(200, Some("86400:transaction;span:organization"), None, now);
        assert!(!rl.is_limited(DataCategory::Error, now));
        assert!(rl.is_limited(DataCategory::Transaction, now));
    }

    #[test]
    fn retry_after_http_date() {
        let in_future = crate::util::http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&in_future).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
    }
}
