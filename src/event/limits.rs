//! Sentry's size limits, applied to every event before it is sent: strings cut to length, then
//! the oldest breadcrumbs, extra data and other bulky parts dropped until the event fits 1 MiB.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use super::Event;
use crate::util::truncate_chars;

/// Longest tag key, in characters.
pub(crate) const TAG_KEY: usize = 32;
/// Longest tag value, in characters.
pub(crate) const TAG_VALUE: usize = 200;
/// Most parameters of a message template.
const MAX_PARAMS: usize = 100;
/// Longest message (event, breadcrumb, exception value), in characters.
pub(crate) const MESSAGE: usize = 8192;
/// Largest serialized event, in bytes.
pub(crate) const EVENT_BYTES: usize = 1024 * 1024;
/// Most tags kept (a hostile number of tags must not defeat the size limit).
const MAX_TAGS: usize = 200;

/// Truncates strings to Sentry's limits, then drops the oldest breadcrumbs, then extra
/// data, then other bulky parts, until the serialized event fits in 1 MiB.
pub(crate) fn apply(event: &mut Event) {
    // Byte length bounds the character count: only rebuild when something may be too long.
    if event.tags.iter().any(|(k, v)| k.len() > TAG_KEY || v.len() > TAG_VALUE) || event.tags.len() > MAX_TAGS {
        let tags = std::mem::take(&mut event.tags);
        for (mut k, mut v) in tags.into_iter().take(MAX_TAGS) {
            truncate_chars(&mut k, TAG_KEY);
            truncate_chars(&mut v, TAG_VALUE);
            event.tags.entry(k).or_insert(v);
        }
    }
    if let Some(m) = &mut event.message {
        truncate_chars(m, MESSAGE);
    }
    if let Some(t) = &mut event.message_template {
        truncate_chars(&mut t.message, MESSAGE);
        t.params.truncate(MAX_PARAMS);
    }
    for e in &mut event.exception {
        if let Some(v) = &mut e.value {
            truncate_chars(v, MESSAGE);
        }
        truncate_chars(&mut e.ty, 256);
    }
    for b in &mut event.breadcrumbs {
        // Only a long message is copied to be cut (the breadcrumb is shared with its scope; a
        // literal stays borrowed).
        if b.message.as_ref().is_some_and(|m| m.len() > MESSAGE) {
            if let Some(m) = std::sync::Arc::make_mut(b).message.as_mut() {
                truncate_chars(m.to_mut(), MESSAGE);
            }
        }
    }
    if let Some(t) = &mut event.transaction {
        truncate_chars(t, TAG_VALUE);
    }
    // Serializing to measure is costly on a request path: skip it when a cheap upper bound
    // already fits.
    if upper_bound(event) <= EVENT_BYTES {
        return;
    }
    while size(event) > EVENT_BYTES {
        if !event.breadcrumbs.is_empty() {
            let n = (event.breadcrumbs.len() / 4).max(1);
            event.breadcrumbs.drain(..n);
        } else if let Some(key) = largest(&event.extra) {
            event.extra.insert(key, Value::String("[removed: event too large]".into()));
            if event.extra.values().all(|v| v.as_str() == Some("[removed: event too large]"))
                && size(event) > EVENT_BYTES
            {
                event.extra.clear();
            }
        } else if !event.contexts.is_empty() {
            event.contexts.clear();
        } else if event.request.is_some() {
            event.request = None;
        } else if event.user.is_some() {
            event.user = None;
        } else if event.exception.len() > 1 {
            event.exception.remove(0); // innermost causes first
        } else {
            if let Some(m) = &mut event.message {
                truncate_chars(m, 1024);
            }
            event.fingerprint = None;
            break;
        }
    }
}

/// An upper bound of the serialized size: every string may at worst be escaped to six
/// bytes per byte (`\u00XX`), plus generous room for keys and punctuation.
fn upper_bound(event: &Event) -> usize {
    fn s(x: &str) -> usize {
        6 * x.len() + 16
    }
    fn v(x: &Value) -> usize {
        match x {
            Value::String(x) => s(x),
            Value::Array(a) => 8 + a.iter().map(v).sum::<usize>(),
            Value::Object(o) => 8 + o.iter().map(|(k, x)| s(k) + v(x)).sum::<usize>(),
            _ => 32,
        }
    }
    let map = |m: &BTreeMap<String, Value>| m.iter().map(|(k, x)| s(k) + v(x)).sum::<usize>();
    let opt = |o: &Option<String>| o.as_deref().map_or(0, s);
    let cow = |o: &Option<Cow<'static, str>>| o.as_deref().map_or(0, s);
    let crumbs: usize =
        event.breadcrumbs.iter().map(|b| 96 + s(&b.ty) + cow(&b.category) + cow(&b.message) + map(&b.data)).sum();
    let exceptions: usize = event.exception.iter().map(|e| 96 + s(&e.ty) + opt(&e.value)).sum();
    let request = event.request.as_ref().map_or(0, |r| {
        64 + opt(&r.method)
            + opt(&r.url)
            + opt(&r.query_string)
            + r.headers.iter().map(|(k, x)| s(k) + s(x)).sum::<usize>()
    });
    let user = event
        .user
        .as_ref()
        .map_or(0, |u| 64 + opt(&u.id) + opt(&u.email) + opt(&u.username) + opt(&u.ip_address) + map(&u.other));
    let fingerprint = event.fingerprint.as_ref().map_or(0, |f| f.iter().map(|x| s(x)).sum());
    1024 + crumbs
        + exceptions
        + request
        + user
        + fingerprint
        + map(&event.extra)
        + map(&event.contexts)
        + event.tags.iter().map(|(k, x)| s(k) + s(x)).sum::<usize>()
        + opt(&event.message)
        + event.message_template.as_ref().map_or(0, |t| s(&t.message) + t.params.iter().map(v).sum::<usize>())
        + opt(&event.logger)
        + opt(&event.transaction)
        + opt(&event.release)
        + opt(&event.environment)
        + opt(&event.server_name)
}

fn size(event: &Event) -> usize {
    serde_json::to_vec(event).map_or(0, |v| v.len())
}

fn largest(map: &BTreeMap<String, Value>) -> Option<String> {
    map.iter()
        .filter(|(_, v)| v.as_str() != Some("[removed: event too large]"))
        .max_by_key(|(_, v)| serde_json::to_vec(v).map_or(0, |b| b.len()))
        .map(|(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Breadcrumb, Level, Request};

    #[test]
    fn strings_are_truncated_to_sentry_limits() {
        let mut e = Event::message("m".repeat(10_000), Level::Info);
        e.tags.insert("k".repeat(40), "v".repeat(300));
        e.breadcrumbs.push(Breadcrumb::new("b".repeat(9000)).into());
        apply(&mut e);
        let (k, v) = e.tags.iter().next().unwrap();
        assert_eq!(k.chars().count(), TAG_KEY);
        assert_eq!(v.chars().count(), TAG_VALUE);
        assert_eq!(e.message.unwrap().chars().count(), MESSAGE);
        assert_eq!(e.breadcrumbs[0].message.as_ref().unwrap().chars().count(), MESSAGE);
    }

    #[test]
    fn oversized_events_lose_oldest_breadcrumbs_then_extra() {
        let mut e = Event::message("big", Level::Info);
        for i in 0..300 {
            e.breadcrumbs.push(Breadcrumb::new(format!("{i}:{}", "x".repeat(8000))).into());
        }
        e.extra.insert("blob".into(), Value::String("y".repeat(600_000)));
        e.extra.insert("small".into(), Value::from(1));
        apply(&mut e);
        assert!(size(&e) <= EVENT_BYTES);
        assert!(
            e.breadcrumbs.is_empty() || e.breadcrumbs.last().unwrap().message.as_ref().unwrap().starts_with("299:")
        );
        assert_eq!(e.extra["small"], 1);

        let mut e = Event::message("huge extra", Level::Info);
        e.extra.insert("a".into(), Value::String("y".repeat(2_000_000)));
        apply(&mut e);
        assert!(size(&e) <= EVENT_BYTES);
        assert_eq!(e.message.as_deref(), Some("huge extra"));
    }

    #[test]
    fn the_upper_bound_is_never_below_the_real_size() {
        let mut e = Event::message("\u{1}\"quoted\"\n", Level::Info);
        e.breadcrumbs.push(Breadcrumb::new("\u{2}".repeat(100)).category("c").data("k\u{3}", "\u{4}\u{5}").into());
        e.extra.insert("x".into(), serde_json::json!({"a": ["\u{6}", 1, null, true], "b": {"c": "\\"}}));
        e.tags.insert("t".into(), "\u{7}".repeat(10));
        e.request = Some(Request { url: Some("\u{8}".into()), ..Request::default() });
        assert!(upper_bound(&e) >= size(&e), "{} < {}", upper_bound(&e), size(&e));
    }

    #[test]
    fn hostile_tag_counts_are_bounded() {
        let mut e = Event::message("tags", Level::Info);
        for i in 0..100_000 {
            e.tags.insert(format!("tag{i:06}"), "v".repeat(200));
        }
        apply(&mut e);
        assert!(size(&e) <= EVENT_BYTES);
    }
}
