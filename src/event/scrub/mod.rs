//! What counts as secret, in one place: secret-looking keys (Relay's `@password` rule: key
//! substrings, `-` and `_` alike), wherever users put them — extra, contexts, breadcrumb data,
//! user attributes, tags, header names, query and path parameters, URLs inside values — and the
//! headers never recorded at all unless `send_default_pii` is on.
//!
//! The layer consults [`is_sensitive_header`] when it records a request (the request path);
//! everything else runs in [`scrub`] when an event is finished (the transport's thread), with
//! the client's [`Scrubber`].

mod text;

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderName;
use serde_json::Value;

use super::{Event, Request};
pub(crate) use text::{filter_pairs, filter_text, query_separator};

/// What a secret value is replaced with.
pub(crate) const FILTERED: &str = "[Filtered]";

/// Key substrings whose values are replaced by [`FILTERED`] unless `send_default_pii` is on:
/// Relay's `@password` rule (what Sentry's server scrubs by default), plus `cookie`. Lower-case,
/// with `_` standing for `-` too.
const SECRET_KEYS: [&[u8]; 13] = [
    b"password",
    b"passwd",
    b"secret",
    b"token",
    b"api_key",
    b"apikey",
    b"auth",
    b"credentials",
    b"mysql_pwd",
    b"privatekey",
    b"private_key",
    b"session",
    b"cookie",
];

/// Which keys hold secrets: the default substrings, extended with `Options::scrub_keys` and
/// narrowed with `Options::keep_keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scrubber {
    /// More substrings (lower-case, `-` written `_`).
    deny: Vec<Box<[u8]>>,
    /// Whole keys never scrubbed (lower-case, `-` written `_`).
    keep: Vec<Box<[u8]>>,
}

/// `s` lower-cased, with `-` written `_`: how keys are compared.
fn normalized(s: &str) -> Box<[u8]> {
    s.to_lowercase().bytes().map(|b| if b == b'-' { b'_' } else { b }).collect()
}

/// Whether `key` starts with `pattern` (lower-case, `_` also matching `-`), ASCII
/// case-insensitively.
#[inline]
fn starts_like(key: &[u8], pattern: &[u8]) -> bool {
    key.len() >= pattern.len()
        && key.iter().zip(pattern).all(|(&k, &p)| k.to_ascii_lowercase() == p || (p == b'_' && k == b'-'))
}

/// Whether `key` holds one of the default substrings. One pass over the key: only positions
/// whose byte starts a pattern are compared (this runs on every key of every event's data).
fn has_default_secret(key: &[u8]) -> bool {
    (0..key.len()).any(|i| {
        let c = key[i].to_ascii_lowercase();
        matches!(c, b'p' | b's' | b't' | b'a' | b'c' | b'm')
            && SECRET_KEYS.iter().any(|p| p[0] == c && starts_like(&key[i..], p))
    })
}

impl Scrubber {
    /// Also scrubs values under keys containing any of `substrings`.
    pub(crate) fn deny<I: IntoIterator<Item = S>, S: AsRef<str>>(&mut self, substrings: I) {
        self.deny.extend(substrings.into_iter().map(|s| normalized(s.as_ref())).filter(|s| !s.is_empty()));
    }

    /// Never scrubs values under exactly these keys (case-insensitive, `-` and `_` alike).
    pub(crate) fn keep<I: IntoIterator<Item = S>, S: AsRef<str>>(&mut self, keys: I) {
        self.keep.extend(keys.into_iter().map(|s| normalized(s.as_ref())));
    }

    /// Whether a key (a field, a header name, a query or path parameter) looks like it holds a
    /// secret.
    pub(crate) fn is_secret_key(&self, key: &str) -> bool {
        let key = key.as_bytes();
        if !self.keep.is_empty() && self.keep.iter().any(|k| k.len() == key.len() && starts_like(key, k)) {
            return false;
        }
        has_default_secret(key) || self.deny.iter().any(|p| (0..key.len()).any(|i| starts_like(&key[i..], p)))
    }
}

/// Whether a key looks like it holds a secret by the default rules.
#[cfg(test)]
fn is_secret_key(key: &str) -> bool {
    has_default_secret(key.as_bytes())
}

/// A query string with the values of secret-looking keys replaced by [`FILTERED`] (pairs split
/// on `&` and `;`, keys percent-decoded), by the default rules.
#[cfg(any(test, feature = "reqwest", feature = "reqwest012"))]
pub(crate) fn filter_query(query: &str) -> String {
    filter_pairs(query, query_separator, &Scrubber::default()).into_owned()
}

/// Headers never recorded unless `send_default_pii` is on: credentials and the client's
/// address. (Other headers named like secrets are recorded, and their values filtered when an
/// event is finished.)
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

/// Replaces secrets with `[Filtered]` wherever an event holds them: values under secret-looking
/// keys (in extra, contexts, breadcrumb data, user attributes and tags, at any depth) and, in
/// every string and in the request, URL userinfo and secret `key=value` pairs.
pub(crate) fn scrub(event: &mut Event, rules: &Scrubber) {
    for map in [&mut event.extra, &mut event.contexts] {
        scrub_map(map, rules);
    }
    // Breadcrumbs are shared with the scopes: copied only when one holds a secret.
    for b in &mut event.breadcrumbs {
        if b.data.iter().any(|(k, v)| has_secret(k, v, rules)) {
            scrub_map(&mut Arc::make_mut(b).data, rules);
        }
    }
    if let Some(user) = &mut event.user {
        scrub_map(&mut user.other, rules);
    }
    scrub_tags(&mut event.tags, rules);
    if let Some(request) = &mut event.request {
        scrub_request(request, rules);
    }
}

/// Tags: values under secret-looking names, and secrets inside the others.
pub(crate) fn scrub_tags(tags: &mut BTreeMap<String, String>, rules: &Scrubber) {
    for (name, value) in tags.iter_mut() {
        scrub_named(name, value, rules);
    }
}

/// A text value under a name (a tag, a header): all of it when the name looks secret, else
/// the secrets inside it.
fn scrub_named(name: &str, value: &mut String, rules: &Scrubber) {
    if rules.is_secret_key(name) {
        FILTERED.clone_into(value);
    } else {
        filter_string(value, rules);
    }
}

/// A request: header values under secret-looking names, secret query and path parameters, and
/// URL userinfo and secret pairs inside the URL and every header value.
pub(crate) fn scrub_request(request: &mut Request, rules: &Scrubber) {
    if let Some(url) = &mut request.url {
        filter_string(url, rules);
    }
    if let Some(query) = &mut request.query_string {
        if let std::borrow::Cow::Owned(filtered) = filter_pairs(query, query_separator, rules) {
            *query = filtered;
        }
    }
    for (name, value) in &mut request.headers {
        scrub_named(name, value, rules);
    }
    if let Some(data) = &mut request.data {
        scrub_entry("", data, rules);
    }
}

/// `s` through [`filter_text`], changed in place only when it holds a secret.
fn filter_string(s: &mut String, rules: &Scrubber) {
    if text::may_hold_secret(s) {
        if let std::borrow::Cow::Owned(filtered) = filter_text(s, rules) {
            *s = filtered;
        }
    }
}

fn scrub_map(map: &mut BTreeMap<String, Value>, rules: &Scrubber) {
    for (k, v) in map.iter_mut() {
        scrub_entry(k, v, rules);
    }
}

/// Whether [`scrub_entry`] would change anything.
fn has_secret(key: &str, value: &Value, rules: &Scrubber) -> bool {
    match value {
        Value::String(s) if s == FILTERED => false,
        _ if rules.is_secret_key(key) => !value.is_null(),
        Value::String(s) => text::may_hold_secret(s) && matches!(filter_text(s, rules), std::borrow::Cow::Owned(_)),
        Value::Object(obj) => obj.iter().any(|(k, v)| has_secret(k, v, rules)),
        Value::Array(items) => items.iter().any(|v| has_secret("", v, rules)),
        _ => false,
    }
}

fn scrub_entry(key: &str, value: &mut Value, rules: &Scrubber) {
    if rules.is_secret_key(key) {
        if !value.is_null() {
            *value = Value::String(FILTERED.to_owned());
        }
        return;
    }
    match value {
        Value::String(s) => filter_string(s, rules),
        Value::Object(obj) => obj.iter_mut().for_each(|(k, v)| scrub_entry(k, v, rules)),
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_entry("", v, rules)),
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
        scrub(&mut e, &Scrubber::default());
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

    #[test]
    fn keys_match_as_relay_matches_them() {
        for key in [
            "x-password",
            "X-Session-Token",
            "mysql_pwd",
            "privateKey",
            "PRIVATE-KEY",
            "api-key",
            "ApiKey",
            "db_passwd",
            "client_secret",
            "Credentials",
            "authorization",
            "csrftoken",
            "cookie_consent",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["page", "user_id", "accept", "x-request-id", "content-type", "pass", "tok", "", "ç"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn options_extend_and_narrow_the_rules() {
        let mut rules = Scrubber::default();
        rules.deny(["SSN", "iban-number"]);
        rules.keep(["Author", "x_session_id"]);
        assert!(
            rules.is_secret_key("customer_ssn")
                && rules.is_secret_key("IBAN_NUMBER")
                && rules.is_secret_key("x-iban-number")
        );
        assert!(!rules.is_secret_key("author") && !rules.is_secret_key("X-Session-Id"));
        assert!(rules.is_secret_key("authors") && rules.is_secret_key("x-session-token"), "kept keys are whole keys");
    }

    #[test]
    fn requests_tags_and_strings_are_scrubbed_where_secrets_hide() {
        let mut e = Event::message("s", Level::Info);
        e.tags.insert("auth_mode".into(), "MARK1".into());
        e.tags.insert("url".into(), "https://x.example/?token=MARK2".into());
        e.extra.insert("next".into(), Value::from("/login?password=MARK3"));
        e.breadcrumbs.push(Breadcrumb::new("b").data("url", "https://u:MARK4@x.example/").into());
        e.request = Some(Request {
            url: Some("https://x.example/a;password=MARK5/b".into()),
            query_string: Some("a=1;p%61ssword=MARK6".into()),
            headers: [
                ("x-session-token", "MARK7"),
                ("referer", "https://x.example/login?password=MARK8"),
                ("x-forwarded-uri", "/reset?token=MARK9"),
                ("accept", "text/html;q=0.9"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            ..Request::default()
        });
        scrub(&mut e, &Scrubber::default());
        let json = serde_json::to_string(&e).unwrap();
        for i in 1..=9 {
            assert!(!json.contains(&format!("MARK{i}")), "MARK{i}: {json}");
        }
        assert!(json.contains("text/html;q=0.9"), "{json}");
        let r = e.request.unwrap();
        assert_eq!(r.url.as_deref(), Some("https://x.example/a;password=[Filtered]/b"));
        assert_eq!(r.headers["x-session-token"], FILTERED);
    }
}
