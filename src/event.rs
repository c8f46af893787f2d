//! [`Event`]: what is captured and sent, in the Sentry event JSON shape.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::breadcrumb::{Breadcrumb, Level};
use crate::scope::User;

/// A 128-bit event id, written as 32 lower-case hex digits (no dashes) as Sentry expects.
///
/// ```
/// let id = isoscope::EventId::new();
/// assert_eq!(id.to_string().len(), 32);
/// assert_eq!(id.to_string().parse::<isoscope::EventId>().unwrap(), id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(u128);

impl EventId {
    /// A new random id.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let hi = crate::util::random_u64() as u128;
        let lo = crate::util::random_u64() as u128;
        // Shape it as a UUIDv4 (version and variant bits), which servers validate.
        let v = (hi << 64 | lo) & !(0xF << 76) | (0x4 << 76);
        Self(v & !(0x3 << 62) | (0x2 << 62))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl FromStr for EventId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 {
            return Err(format!("event id must have 32 hex digits, got {:?}", s));
        }
        u128::from_str_radix(&hex, 16).map(Self).map_err(|_| format!("event id is not hex: {s:?}"))
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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

/// The HTTP request an event happened in, as Sentry's `request` interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Absolute URL without query string or credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The query string (without `?`), with secret-looking values filtered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string: Option<String>,
    /// Request headers, sensitive ones removed unless `send_default_pii`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// An event: a message or an error, with the scope data merged in at capture.
///
/// Serializes to the Sentry event JSON. Fields left `None`/empty are filled from the scopes when
/// the event is captured (a value set here wins over every scope).
///
/// ```
/// use isoscope::{Event, Level};
/// let mut event = Event::message("disk almost full", Level::Warning);
/// event.tags.insert("disk".into(), "/var".into());
/// let json = serde_json::to_value(&event).unwrap();
/// assert_eq!(json["level"], "warning");
/// assert_eq!(json["message"], "disk almost full");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id.
    pub event_id: EventId,
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
    /// Severity; `None` means "error" unless a scope sets a level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Always `"rust"`.
    pub platform: String,
    /// The logger or component that produced the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger: Option<String>,
    /// A plain message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Exceptions, innermost cause first and the outermost error last (Sentry's order).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "ser_values",
        deserialize_with = "de_values"
    )]
    pub exception: Vec<Exception>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Extra data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
    /// Contexts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, Value>,
    /// The user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// Breadcrumbs, oldest first.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "ser_values",
        deserialize_with = "de_values"
    )]
    pub breadcrumbs: Vec<Breadcrumb>,
    /// The HTTP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// Transaction (route) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// Grouping fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Vec<String>>,
    /// Release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// The SDK that produced the event.
    pub sdk: Sdk,
}

/// The SDK description sent with every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sdk {
    /// `"isoscope"`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

impl Default for Sdk {
    fn default() -> Self {
        Self { name: env!("CARGO_PKG_NAME").to_owned(), version: env!("CARGO_PKG_VERSION").to_owned() }
    }
}

fn ser_values<T: Serialize, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry("values", v)?;
    map.end()
}

fn de_values<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    struct Values<T> {
        values: Vec<T>,
    }
    Ok(Values::deserialize(d)?.values)
}

impl Default for Event {
    fn default() -> Self {
        Self {
            event_id: EventId::new(),
            timestamp: crate::util::now_f64(),
            level: None,
            platform: "rust".to_owned(),
            logger: None,
            message: None,
            exception: Vec::new(),
            tags: BTreeMap::new(),
            extra: BTreeMap::new(),
            contexts: BTreeMap::new(),
            user: None,
            breadcrumbs: Vec::new(),
            request: None,
            transaction: None,
            fingerprint: None,
            release: None,
            environment: None,
            server_name: None,
            sdk: Sdk::default(),
        }
    }
}

impl Event {
    /// An event carrying a plain message.
    pub fn message(message: impl Into<String>, level: Level) -> Self {
        Self { message: Some(message.into()), level: Some(level), ..Self::default() }
    }

    /// An event for an error, with one exception per error of its `source()` chain.
    ///
    /// ```
    /// let err: Box<dyn std::error::Error> = "12a".parse::<u8>().unwrap_err().into();
    /// let event = isoscope::Event::from_error(err.as_ref());
    /// assert_eq!(event.exception[0].ty, "ParseIntError");
    /// ```
    pub fn from_error(error: &(dyn StdError + 'static)) -> Self {
        let mut exception = Vec::new();
        let mut next = Some(error);
        while let Some(err) = next {
            exception.push(Exception { ty: type_name_from_debug(err), value: Some(err.to_string()), mechanism: None });
            next = err.source();
            if exception.len() >= 64 {
                break; // a cyclic or absurdly deep chain must not loop forever
            }
        }
        exception.reverse();
        if let Some(outer) = exception.last_mut() {
            outer.mechanism = Some(Mechanism { ty: "generic".into(), handled: true });
        }
        Self { exception, ..Self::default() }
    }

    /// An event for a panic payload (level fatal, unhandled mechanism `panic`).
    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned());
        Self {
            level: Some(Level::Fatal),
            exception: vec![Exception {
                ty: "panic".into(),
                value: Some(msg),
                mechanism: Some(Mechanism { ty: "panic".into(), handled: false }),
            }],
            ..Self::default()
        }
    }
}

/// Best effort at a type name for a `dyn Error`: the leading identifier of its `Debug` output
/// (`ParseIntError { kind: .. }` → `ParseIntError`), as sentry-rust does.
fn type_name_from_debug(err: &dyn StdError) -> String {
    let dbg = format!("{err:?}");
    let name: String = dbg.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
    if name.is_empty() {
        "Error".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::num::ParseIntError);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("config is invalid")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_chain_is_innermost_first() {
        let err = Outer("x".parse::<u8>().unwrap_err());
        let event = Event::from_error(&err);
        let types: Vec<_> = event.exception.iter().map(|e| e.ty.as_str()).collect();
        assert_eq!(types, ["ParseIntError", "Outer"]);
        assert_eq!(event.exception[1].value.as_deref(), Some("config is invalid"));
    }

    #[test]
    fn event_serializes_wrapped_lists() {
        let mut event = Event::message("m", Level::Info);
        event.breadcrumbs.push(Breadcrumb::new("b"));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["breadcrumbs"]["values"][0]["message"], "b");
        assert_eq!(json["event_id"].as_str().unwrap().len(), 32);
        assert_eq!(json["platform"], "rust");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back.breadcrumbs[0].message.as_deref(), Some("b"));
    }

    #[test]
    fn event_id_is_a_v4_uuid() {
        let id = EventId::new().to_string();
        assert_eq!(&id[12..13], "4");
        assert!(matches!(&id[16..17], "8" | "9" | "a" | "b"));
    }
}

/// Sentry's size limits, applied to every event before it is sent.
pub(crate) mod limits {
    use super::*;
    use crate::util::truncate_chars;

    /// Longest tag key, in characters.
    pub(crate) const TAG_KEY: usize = 32;
    /// Longest tag value, in characters.
    pub(crate) const TAG_VALUE: usize = 200;
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
        for e in &mut event.exception {
            if let Some(v) = &mut e.value {
                truncate_chars(v, MESSAGE);
            }
            truncate_chars(&mut e.ty, 256);
        }
        for b in &mut event.breadcrumbs {
            // Only a long message is made owned to be cut (a literal stays borrowed).
            if let Some(m) = b.message.as_mut().filter(|m| m.len() > MESSAGE) {
                truncate_chars(m.to_mut(), MESSAGE);
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

    /// Replaces values under secret-looking keys (in extra, contexts, breadcrumb data, user
    /// attributes) with `[Filtered]`, at any depth.
    pub(crate) fn scrub(event: &mut Event) {
        for map in [&mut event.extra, &mut event.contexts] {
            scrub_map(map);
        }
        for b in &mut event.breadcrumbs {
            scrub_map(&mut b.data);
        }
        if let Some(user) = &mut event.user {
            scrub_map(&mut user.other);
        }
    }

    fn scrub_map(map: &mut BTreeMap<String, Value>) {
        for (k, v) in map.iter_mut() {
            if crate::layer::is_secret_key(k) {
                *v = Value::String(crate::layer::FILTERED.to_owned());
            } else {
                scrub_value(v);
            }
        }
    }

    fn scrub_value(v: &mut Value) {
        match v {
            Value::Object(obj) => {
                for (k, v) in obj.iter_mut() {
                    if crate::layer::is_secret_key(k) {
                        *v = Value::String(crate::layer::FILTERED.to_owned());
                    } else {
                        scrub_value(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(scrub_value),
            _ => {}
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn strings_are_truncated_to_sentry_limits() {
            let mut e = Event::message("m".repeat(10_000), Level::Info);
            e.tags.insert("k".repeat(40), "v".repeat(300));
            e.breadcrumbs.push(Breadcrumb::new("b".repeat(9000)));
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
                e.breadcrumbs.push(Breadcrumb::new(format!("{i}:{}", "x".repeat(8000))));
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
            e.breadcrumbs.push(Breadcrumb::new("\u{2}".repeat(100)).category("c").data("k\u{3}", "\u{4}\u{5}"));
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

        #[test]
        fn secret_keys_are_filtered_at_any_depth() {
            let mut e = Event::message("s", Level::Info);
            e.extra.insert("api_key".into(), Value::from("k"));
            e.extra.insert("nested".into(), serde_json::json!({"Password": "p", "ok": [{"session_id": 1}], "n": 2}));
            e.breadcrumbs.push(Breadcrumb::new("b").data("auth_token", "t"));
            scrub(&mut e);
            assert_eq!(e.extra["api_key"], "[Filtered]");
            assert_eq!(e.extra["nested"]["Password"], "[Filtered]");
            assert_eq!(e.extra["nested"]["ok"][0]["session_id"], "[Filtered]");
            assert_eq!(e.extra["nested"]["n"], 2);
            assert_eq!(e.breadcrumbs[0].data["auth_token"], "[Filtered]");
        }
    }
}
