//! The request body as an event shows it: [`RequestBodySize`] (how much is kept), the
//! [`BodySlot`] the layer's tee fills as the handler reads the body, and its rendering as the
//! event's `request.data` (JSON and forms parsed, the rest a note).
//!
//! The tee is put on axum's `Body` only (`layer::service`): without the `axum` feature, the
//! slot is never filled.
#![cfg_attr(not(feature = "axum"), allow(dead_code))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

/// How much of a request's body events may carry (see
/// [`Options::max_request_body_size`](crate::Options::max_request_body_size)); the sizes are
/// sentry-python's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RequestBodySize {
    /// No body, and nothing of it kept.
    None,
    /// Bodies up to 1,000 bytes.
    Small,
    /// Bodies up to 10,000 bytes (the default).
    #[default]
    Medium,
    /// Bodies up to 1 MiB (Sentry accepts events up to 1 MB; a larger body is left out).
    Always,
}

impl RequestBodySize {
    /// The most bytes kept.
    pub const fn limit(self) -> usize {
        match self {
            Self::None => 0,
            Self::Small => 1_000,
            Self::Medium => 10_000,
            Self::Always => 1 << 20,
        }
    }
}

/// The process's limit, set by `init` (0: bodies are not kept).
static LIMIT: AtomicUsize = AtomicUsize::new(RequestBodySize::Medium.limit());

/// Installs the limit (`init`).
pub(crate) fn set_request_body_size(size: RequestBodySize) {
    LIMIT.store(size.limit(), Ordering::Relaxed);
}

/// The limit in force (0: off).
#[inline]
pub(crate) fn request_body_limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// What the tee has seen of a request's body, shared by the request's info (for events) and
/// the body wrapper that fills it.
#[derive(Debug)]
pub(crate) struct BodySlot {
    limit: usize,
    state: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// The first bytes read, at most `limit`.
    kept: Vec<u8>,
    /// Bytes read in all (or the declared `content-length`, when it was above the limit).
    total: u64,
    /// More than `limit` bytes: the body is left out.
    over: bool,
    /// The handler read to the end.
    complete: bool,
    /// Given up (a body buffer we could not copy): nothing is shown.
    abandoned: bool,
}

impl BodySlot {
    /// A slot for a body of `declared` bytes (its `content-length`, if any): one declared
    /// larger than `limit` is over it from the start (and nothing of it is kept).
    pub(crate) fn new(limit: usize, declared: Option<u64>) -> Self {
        let over = declared.is_some_and(|n| n > limit as u64);
        let seen = Seen { total: if over { declared.unwrap_or(0) } else { 0 }, over, ..Seen::default() };
        Self { limit, state: Mutex::new(seen) }
    }

    /// Whether more bytes are wanted (not over the limit, not complete).
    pub(crate) fn wants_more(&self) -> bool {
        let seen = self.lock();
        !seen.over && !seen.complete && !seen.abandoned
    }

    /// Records bytes the handler read; `false` once nothing more is wanted (over the limit).
    pub(crate) fn record(&self, bytes: &[u8]) -> bool {
        let mut seen = self.lock();
        seen.total += bytes.len() as u64;
        if seen.kept.len() + bytes.len() > self.limit {
            seen.over = true;
            seen.kept = Vec::new();
            return false;
        }
        seen.kept.extend_from_slice(bytes);
        true
    }

    /// Keeps nothing more, and shows nothing: what was kept is not the whole body.
    pub(crate) fn abandon(&self) {
        let mut seen = self.lock();
        seen.kept = Vec::new();
        seen.complete = false;
        seen.abandoned = true;
    }

    /// The handler read the body to its end.
    pub(crate) fn complete(&self) {
        let mut seen = self.lock();
        seen.complete = !seen.abandoned;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The event's `request.data`: a JSON body as JSON, a form as an object of its fields,
    /// another body as a note of its size and type; a body over the limit as a note that it
    /// was left out. `None` while the handler has not read it to the end (nothing to show).
    pub(crate) fn data(&self, content_type: Option<&str>) -> Option<Value> {
        let seen = self.lock();
        if seen.over {
            return Some(Value::String(format!(
                "[request body of {} bytes left out: over max_request_body_size ({} bytes)]",
                seen.total, self.limit
            )));
        }
        if !seen.complete || seen.kept.is_empty() {
            return None;
        }
        let media = content_type.and_then(|c| c.split(';').next()).map(|m| m.trim().to_ascii_lowercase());
        let media = media.as_deref().unwrap_or("");
        let parsed = match media {
            "application/json" => serde_json::from_slice(&seen.kept).ok(),
            m if m.ends_with("+json") => serde_json::from_slice(&seen.kept).ok(),
            "application/x-www-form-urlencoded" => std::str::from_utf8(&seen.kept).ok().map(form),
            _ => None,
        };
        Some(parsed.unwrap_or_else(|| {
            let kind = if media.is_empty() { "no content type" } else { media };
            Value::String(format!("[request body of {} bytes ({kind}): raw bodies are not sent]", seen.total))
        }))
    }
}

/// An `application/x-www-form-urlencoded` body as an object; a field given more than once
/// keeps its values in an array.
fn form(body: &str) -> Value {
    let mut fields = serde_json::Map::new();
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| crate::util::percent_decode(&s.replace('+', " ")).into_owned();
        let (key, value) = (decode(key), Value::String(decode(value)));
        match fields.get_mut(&key) {
            None => {
                fields.insert(key, value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
        }
    }
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(slot: &BodySlot, chunks: &[&[u8]]) {
        for c in chunks {
            slot.record(c);
        }
        slot.complete();
    }

    #[test]
    fn json_and_forms_are_parsed_other_bodies_noted() {
        let slot = BodySlot::new(100, None);
        read(&slot, &[br#"{"sku": 7, "#, br#""qty": 2}"#]);
        assert_eq!(slot.data(Some("application/json; charset=utf-8")), Some(json!({"sku": 7, "qty": 2})));
        assert_eq!(slot.data(Some("application/vnd.api+json")), Some(json!({"sku": 7, "qty": 2})));
        let slot = BodySlot::new(100, None);
        read(&slot, &[b"name=Ada+L&tag=a&tag=b%21&flag"]);
        let want = json!({"name": "Ada L", "tag": ["a", "b!"], "flag": ""});
        assert_eq!(slot.data(Some("application/x-www-form-urlencoded")), Some(want));
        let slot = BodySlot::new(100, None);
        read(&slot, &[b"\x89PNG"]);
        let note = slot.data(Some("image/png")).unwrap();
        assert_eq!(note, "[request body of 4 bytes (image/png): raw bodies are not sent]");
        let slot = BodySlot::new(100, None);
        read(&slot, &[b"{not json"]);
        assert!(slot.data(Some("application/json")).unwrap().as_str().unwrap().contains("9 bytes"));
    }

    #[test]
    fn bodies_over_the_limit_are_left_out_with_a_note() {
        let declared = BodySlot::new(10, Some(5000));
        assert!(!declared.wants_more());
        assert!(declared.data(None).unwrap().as_str().unwrap().contains("5000 bytes left out"));
        let streamed = BodySlot::new(10, None);
        assert!(streamed.record(b"0123456789"));
        assert!(!streamed.record(b"x"));
        assert!(streamed.data(None).unwrap().as_str().unwrap().contains("11 bytes left out"));
    }

    #[test]
    fn nothing_until_the_body_was_read_to_the_end() {
        let slot = BodySlot::new(100, None);
        slot.record(b"{\"a\":");
        assert_eq!(slot.data(Some("application/json")), None);
        assert_eq!(BodySlot::new(100, None).data(None), None, "never read");
    }
}
