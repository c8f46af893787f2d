//! What counts as secret, in one place: sensitive header names, secret-looking keys (query
//! parameters, JSON fields), and the scrubbing of an event's data before it is sent.
//!
//! The layer consults [`is_sensitive_header`] when it records a request, the request info
//! consults [`filter_query`] when it becomes an event's `request`, and the capture pipeline
//! runs [`scrub`] on every event unless `send_default_pii` is on.

use std::collections::BTreeMap;

use http::HeaderName;
use serde_json::Value;

use super::Event;

/// What a secret value is replaced with.
pub(crate) const FILTERED: &str = "[Filtered]";

/// Keys whose values are replaced by [`FILTERED`] unless `send_default_pii` is on (matched as
/// substrings of the lower-cased key).
const SECRET_KEYS: &[&str] =
    &["password", "passwd", "secret", "token", "api_key", "apikey", "auth", "credentials", "session", "cookie"];

/// Whether a key (query parameter or JSON field) looks like it holds a secret.
pub(crate) fn is_secret_key(key: &str) -> bool {
    // Case-insensitive substring search without lower-casing a copy: this runs on every key of
    // every event's extra, contexts and breadcrumb data.
    let key = key.as_bytes();
    SECRET_KEYS.iter().any(|s| key.windows(s.len()).any(|w| w.eq_ignore_ascii_case(s.as_bytes())))
}

/// A query string with the values of secret-looking keys replaced by [`FILTERED`].
pub(crate) fn filter_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_key(k) => format!("{k}={FILTERED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Headers never sent unless `send_default_pii` is on.
///
/// The standard names among them are compared as `http`'s enum values (no string work); the
/// others are all custom names starting `x-`, `cf` or `tr`, and only names starting so are
/// compared as strings. (A `match` on every name as a string compiled to a jump table over
/// name lengths: code spread over ten cache lines, on every header of every request.)
pub(crate) fn is_sensitive_header(name: &HeaderName) -> bool {
    use http::header::{AUTHORIZATION, COOKIE, FORWARDED, PROXY_AUTHORIZATION, SET_COOKIE};
    if name == AUTHORIZATION || name == COOKIE || name == PROXY_AUTHORIZATION || name == SET_COOKIE || name == FORWARDED
    {
        return true;
    }
    let name = name.as_str();
    matches!(name.as_bytes(), [b'x', b'-', ..] | [b'c', b'f', ..] | [b't', b'r', ..])
        && SENSITIVE_CUSTOM.contains(&name)
}

/// The sensitive names `http` has no constant for.
const SENSITIVE_CUSTOM: [&str; 9] = [
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-xsrf-token",
    "x-forwarded-for",
    "x-real-ip",
    "x-client-ip",
    "cf-connecting-ip",
    "true-client-ip",
];

/// Replaces values under secret-looking keys (in extra, contexts, breadcrumb data, user
/// attributes) with `[Filtered]`, at any depth.
pub(crate) fn scrub(event: &mut Event) {
    for map in [&mut event.extra, &mut event.contexts] {
        scrub_map(map);
    }
    // Breadcrumbs are shared with the scopes: copied only when one holds a secret.
    for b in &mut event.breadcrumbs {
        if b.data.iter().any(|(k, v)| has_secret(k, v)) {
            scrub_map(&mut std::sync::Arc::make_mut(b).data);
        }
    }
    if let Some(user) = &mut event.user {
        scrub_map(&mut user.other);
    }
}

fn scrub_map(map: &mut BTreeMap<String, Value>) {
    for (k, v) in map.iter_mut() {
        scrub_entry(k, v);
    }
}

/// Whether [`scrub_entry`] would change anything.
fn has_secret(key: &str, value: &Value) -> bool {
    is_secret_key(key)
        || match value {
            Value::Object(obj) => obj.iter().any(|(k, v)| has_secret(k, v)),
            Value::Array(items) => items.iter().any(|v| has_secret("", v)),
            _ => false,
        }
}

fn scrub_entry(key: &str, value: &mut Value) {
    if is_secret_key(key) {
        *value = Value::String(FILTERED.to_owned());
        return;
    }
    match value {
        Value::Object(obj) => obj.iter_mut().for_each(|(k, v)| scrub_entry(k, v)),
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_entry("", v)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Breadcrumb, Level};

    #[test]
    fn secret_keys_are_filtered_at_any_depth() {
        let mut e = Event::message("s", Level::Info);
        e.extra.insert("api_key".into(), Value::from("k"));
        e.extra.insert("nested".into(), serde_json::json!({"Password": "p", "ok": [{"session_id": 1}], "n": 2}));
        e.breadcrumbs.push(Breadcrumb::new("b").data("auth_token", "t").into());
        scrub(&mut e);
        assert_eq!(e.extra["api_key"], "[Filtered]");
        assert_eq!(e.extra["nested"]["Password"], "[Filtered]");
        assert_eq!(e.extra["nested"]["ok"][0]["session_id"], "[Filtered]");
        assert_eq!(e.extra["nested"]["n"], 2);
        assert_eq!(e.breadcrumbs[0].data["auth_token"], "[Filtered]");
    }

    #[test]
    fn secret_query_values_are_filtered() {
        assert_eq!(
            filter_query("Password=x&page=2&API_KEY=y&flag"),
            "Password=[Filtered]&page=2&API_KEY=[Filtered]&flag"
        );
    }

    #[test]
    fn every_sensitive_name_is_recognised_and_nothing_else() {
        let sensitive = [
            "authorization",
            "proxy-authorization",
            "cookie",
            "set-cookie",
            "forwarded",
            "x-api-key",
            "x-auth-token",
            "x-csrf-token",
            "x-xsrf-token",
            "x-forwarded-for",
            "x-real-ip",
            "x-client-ip",
            "cf-connecting-ip",
            "true-client-ip",
        ];
        for name in sensitive {
            // Parsed the way hyper does: standard names become `http`'s enum values.
            assert!(is_sensitive_header(&HeaderName::from_bytes(name.as_bytes()).unwrap()), "{name}");
            assert!(is_sensitive_header(&HeaderName::from_bytes(name.to_uppercase().as_bytes()).unwrap()), "{name}");
        }
        for name in ["host", "accept", "content-type", "x-request-id", "trailer", "cf-ray", "x-api-key2", "cookies"] {
            assert!(!is_sensitive_header(&HeaderName::from_bytes(name.as_bytes()).unwrap()), "{name}");
        }
    }
}
