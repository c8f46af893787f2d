//! The merge of scopes into an event at capture: precedence event > current > isolation >
//! global, breadcrumbs in recording order, trimmed to `max_breadcrumbs`.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use super::{Crumb, RequestInfo, Scope};
use crate::event::{advance_order, Event};

/// Applies `scopes` (most specific first: current, isolation, global) to `event`.
///
/// Precedence: a value set on the event wins, then the first scope that has it — except the
/// level, where the first scope that sets one overrides the event's (as sentry-rust and
/// sentry-python do: `with_scope(|s| s.set_level(..), ..)` decides a block's level). Breadcrumbs
/// of the event and all scopes are merged in recording order and trimmed to `max` (newest kept).
pub(crate) fn apply_scopes(event: &mut Event, scopes: &[&Scope], max: usize) {
    if let Some(level) = scopes.iter().find_map(|s| s.level) {
        event.level = Some(level);
    }
    for scope in scopes {
        for (k, v) in scope.tags.iter() {
            if !event.tags.contains_key(&**k) {
                event.tags.insert(k.to_string(), v.to_string());
            }
        }
        if let Some(request) = scope.request() {
            event.tags.entry("request_id".to_owned()).or_insert_with(|| request.request_id());
        }
        let rest = scope.rest();
        for (k, v) in rest.extra.iter() {
            event.extra.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in rest.contexts.iter() {
            event.contexts.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if event.user.is_none() {
            event.user = rest.user.as_deref().cloned();
        }
        if event.transaction.is_none() {
            event.transaction = scope.transaction_name();
        }
        if event.fingerprint.is_none() {
            event.fingerprint = rest.fingerprint.as_deref().map(<[String]>::to_vec);
        }
        if event.request.is_none() {
            event.request = scope.request().map(RequestInfo::event_request);
        }
    }
    // The event's own breadcrumbs were recorded "now" unless they came from a scope.
    for crumb in event.breadcrumbs.iter_mut().filter(|c| c.seq == 0) {
        Arc::make_mut(crumb).seq = advance_order();
    }
    let sources =
        usize::from(!event.breadcrumbs.is_empty()) + scopes.iter().filter(|s| !s.breadcrumbs.is_empty()).count();
    let mut merged = std::mem::take(&mut event.breadcrumbs);
    merged.reserve(scopes.iter().map(|s| s.breadcrumbs.len()).sum());
    for scope in scopes {
        merged.extend(scope.breadcrumbs.iter().map(Crumb::to_shared));
    }
    if sources > 1 {
        merged.sort_by_key(|c| c.seq); // stable: equal orders keep ring order
                                       // A fork shares its parent's breadcrumbs (the same allocation): never report one twice.
        let mut seen = HashSet::with_capacity_and_hasher(merged.len(), PointerHash);
        merged.retain(|c| seen.insert(Arc::as_ptr(c) as usize));
    }
    let skip = merged.len().saturating_sub(max);
    merged.drain(..skip);
    event.breadcrumbs = merged;
}

/// Hashes the addresses of breadcrumbs (distinct by construction): a multiply, where the
/// default SipHash cost more than the rest of the merge.
#[derive(Clone, Copy, Default)]
struct PointerHash;

impl BuildHasher for PointerHash {
    type Hasher = PointerHasher;
    fn build_hasher(&self) -> PointerHasher {
        PointerHasher(0)
    }
}

struct PointerHasher(u64);

impl Hasher for PointerHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // Fibonacci hashing; the low bits of an address are alignment, folded in by the rotate.
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(26);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Breadcrumb, Level};

    #[test]
    fn precedence_event_then_current_then_isolation_then_global() {
        let mut global = Scope::default();
        let mut iso = Scope::default();
        let mut current = Scope::default();
        global.set_tag("k", "global");
        global.set_tag("g", "global");
        iso.set_tag("k", "iso");
        iso.set_tag("i", "iso");
        current.set_tag("k", "current");
        iso.set_level(Some(Level::Warning));
        global.set_level(Some(Level::Debug));
        let mut event = Event::default();
        event.tags.insert("e".into(), "event".into());
        apply_scopes(&mut event, &[&current, &iso, &global], 100);
        assert_eq!(event.tags["k"], "current");
        assert_eq!(event.tags["g"], "global");
        assert_eq!(event.tags["i"], "iso");
        assert_eq!(event.tags["e"], "event");
        assert_eq!(event.level, Some(Level::Warning));

        // A scope's level overrides the event's (the peers' rule); other values do not.
        let mut event = Event { level: Some(Level::Fatal), ..Event::default() };
        event.tags.insert("k".into(), "event".into());
        apply_scopes(&mut event, &[&current, &iso, &global], 100);
        assert_eq!(event.tags["k"], "event");
        assert_eq!(event.level, Some(Level::Warning));
        let mut event = Event { level: Some(Level::Fatal), ..Event::default() };
        apply_scopes(&mut event, &[&Scope::default()], 100);
        assert_eq!(event.level, Some(Level::Fatal), "no scope level: the event's stays");
    }

    #[test]
    fn breadcrumbs_merge_in_recording_order_and_retrim() {
        let mut global = Scope::default();
        let mut iso = Scope::default();
        let mut current = Scope::default();
        global.add_breadcrumb(Breadcrumb::new("1"));
        iso.add_breadcrumb(Breadcrumb::new("2"));
        current.add_breadcrumb(Breadcrumb::new("3"));
        global.add_breadcrumb(Breadcrumb::new("4"));
        iso.add_breadcrumb(Breadcrumb::new("5"));
        let mut event = Event::default();
        apply_scopes(&mut event, &[&current, &iso, &global], 3);
        let msgs: Vec<_> = event.breadcrumbs.iter().map(|c| c.message.clone().unwrap()).collect();
        assert_eq!(msgs, ["3", "4", "5"]);
    }

    #[test]
    fn isolation_breadcrumbs_with_one_observed_order_keep_ring_order_and_are_not_duplicated() {
        let mut iso = Scope::default();
        for m in ["a", "b", "c"] {
            let crumb = Breadcrumb { seq: crate::event::observe_order(), ..Breadcrumb::new(m) };
            iso.push_isolation_breadcrumb_from(&mut Some(crumb), false); // usually all observe one order
        }
        let current = iso.fork();
        let mut event = Event::default();
        apply_scopes(&mut event, &[&current, &iso], 100);
        let msgs: Vec<_> = event.breadcrumbs.iter().map(|c| c.message.clone().unwrap()).collect();
        assert_eq!(msgs, ["a", "b", "c"]);
    }

    #[test]
    fn shared_breadcrumbs_of_a_fork_are_not_duplicated() {
        let mut iso = Scope::default();
        iso.add_breadcrumb(Breadcrumb::new("shared"));
        let mut current = iso.fork();
        current.add_breadcrumb(Breadcrumb::new("mine"));
        let mut event = Event::default();
        apply_scopes(&mut event, &[&current, &iso], 100);
        assert_eq!(event.breadcrumbs.len(), 2);
    }
}
