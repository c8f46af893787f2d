//! A request as recorded for events: its target (URI) and headers copied into one flat buffer,
//! instead of a `Uri` and a `HeaderMap` clone.
//!
//! Cloning a `HeaderMap` per request costs two allocations (index table and entries) and a
//! reference count per value, and cloning a `Uri` one per part; when hyper parsed them from its
//! read buffer, every one of those counts is on that buffer. Most requests never capture an
//! event, so the layer records only what an event could use, copied into one allocation: no
//! sensitive headers (unless `send_default_pii`), and bounded sizes, so hostile requests cannot
//! make the copy large.

use http::{HeaderMap, Uri};

use crate::event::scrub::is_sensitive_header;

/// Bytes kept of one value: enough for the first [`MAX_HEADER_VALUE`](super::request_info) characters
/// whatever the encoding (a character is at most 4 bytes; lossy decoding makes at most one
/// character per byte), so cutting here never changes what an event shows.
const MAX_VALUE_BYTES: usize = 4 * super::request_info::MAX_HEADER_VALUE;
/// Header lines kept (hyper accepts 100 by default; an event shows at most 100 names).
const MAX_LINES: usize = 1024;
/// Bytes kept in all: lines past this are not recorded.
const MAX_TOTAL: usize = 64 * 1024;
/// Bytes of a typical recorded line (`accept-encoding: gzip, deflate, br` is 35 + 4).
const TYPICAL_LINE: usize = 40;
/// Per line: name length and value length, each a little-endian `u16`.
const LINE_HEADER: usize = 4;

/// The request target's parts (`scheme`, `authority`, `path?query`; empty when absent)
/// followed by the header lines in arrival order, as `[name len][value len][name][value]`
/// records.
#[derive(Clone, Default)]
pub(crate) struct RequestSnapshot {
    /// A `Vec` rather than a boxed slice: shrinking it to fit would reallocate.
    buf: Vec<u8>,
    /// Lengths of the target's parts at the start of `buf`.
    target: [u16; 3],
    /// Whether a trace header (`sentry-trace`, `traceparent`, `baggage`) came with the request.
    trace_headers: bool,
}

thread_local! {
    /// A finished request's buffer, cleared, for the next request's snapshot on this thread
    /// (see [`RequestSnapshot::recycle`]): no allocation per request in the usual case.
    static SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Spare buffers larger than this are freed, not kept.
const MAX_SPARE: usize = 4096;

/// Whether `name` is one of the trace headers: a first-byte look first (most names fail it).
#[inline]
fn is_trace_header(name: &str) -> bool {
    matches!(name.as_bytes().first(), Some(b's' | b't' | b'b'))
        && matches!(name, "sentry-trace" | "traceparent" | "baggage")
}

/// `s` cut to fit a `u16` length, at a character boundary. Out of line: a parsed URI is never
/// that long (`http` parses at most 64 KiB - 2 bytes), only one put together part by part.
#[cold]
#[inline(never)]
fn cut(s: &str) -> &str {
    let end = (0..=usize::from(u16::MAX)).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    &s[..end]
}

impl RequestSnapshot {
    /// Records what an event could show of the request's target and headers.
    pub(crate) fn new(uri: &Uri, headers: &HeaderMap, send_default_pii: bool) -> Self {
        let parts = [
            uri.scheme_str().unwrap_or(""),
            uri.authority().map_or("", |a| a.as_str()),
            uri.path_and_query().map_or("", |pq| pq.as_str()),
        ];
        let parts = parts.map(|p| if p.len() > usize::from(u16::MAX) { cut(p) } else { p });
        let target = parts.map(|p| p.len() as u16); // fits: cut above
        let target_len = parts[0].len() + parts[1].len() + parts[2].len();
        // Room for the target and typical header lines up front: usually the only allocation.
        // (Not measured with a first pass over the values: that pass was a quarter of this
        // function's code.)
        let mut buf = SPARE.try_with(std::cell::Cell::take).unwrap_or_default();
        buf.reserve(target_len + (headers.len() * TYPICAL_LINE).min(MAX_TOTAL));
        for part in parts {
            buf.extend_from_slice(part.as_bytes());
        }
        let mut lines = 0;
        let mut trace_headers = false;
        for (name, value) in headers {
            if !send_default_pii && is_sensitive_header(name) {
                continue;
            }
            let name = name.as_str();
            trace_headers |= is_trace_header(name);
            if lines == MAX_LINES {
                break;
            }
            lines += 1;
            let (name, value) = (name.as_bytes(), value.as_bytes());
            let value = &value[..value.len().min(MAX_VALUE_BYTES)];
            if buf.len() - target_len + LINE_HEADER + name.len() + value.len() > MAX_TOTAL {
                break;
            }
            // Names are at most 64 KiB - 1 (`http` refuses longer ones); values are cut above.
            let (n, v) = ((name.len() as u16).to_le_bytes(), (value.len() as u16).to_le_bytes());
            buf.extend_from_slice(&[n[0], n[1], v[0], v[1]]);
            buf.extend_from_slice(name);
            buf.extend_from_slice(value);
        }
        if buf.is_empty() {
            return Self::default(); // nothing kept: hold no memory
        }
        Self { buf, target, trace_headers }
    }

    /// Gives the buffer back for this thread's next snapshot.
    pub(crate) fn recycle(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() <= MAX_SPARE {
            buf.clear();
            let _ = SPARE.try_with(|spare| spare.set(buf));
        }
    }

    /// Part `i` of the target (see [`RequestSnapshot`]).
    fn target_part(&self, i: usize) -> &str {
        let start: usize = self.target[..i].iter().map(|&l| usize::from(l)).sum();
        let bytes = self.buf.get(start..start + usize::from(self.target[i])).unwrap_or_default();
        // Copied from `&str`s and cut at character boundaries: always valid.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// The URI's scheme (`http`), if it had one (a request line usually has none).
    pub(crate) fn scheme(&self) -> Option<&str> {
        Some(self.target_part(0)).filter(|s| !s.is_empty())
    }

    /// The URI's authority (`user@host:port`), if it had one.
    pub(crate) fn authority(&self) -> Option<&str> {
        Some(self.target_part(1)).filter(|s| !s.is_empty())
    }

    /// The URI's path, as `Uri::path` gives it.
    pub(crate) fn path(&self) -> &str {
        match self.target_part(2) {
            // `http`: a URI with a scheme has the path "/" when none is given; an
            // authority-form target ("host:443") has none.
            "" if self.scheme().is_some() => "/",
            pq => pq.split_once('?').map_or(pq, |(path, _)| path),
        }
    }

    /// The URI's query, if any and not empty.
    pub(crate) fn query(&self) -> Option<&str> {
        self.target_part(2).split_once('?').map(|(_, q)| q).filter(|q| !q.is_empty())
    }

    /// `(name, value)` pairs in arrival order; names are lower-case.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut rest = self.buf.get(self.target_len()..).unwrap_or_default();
        std::iter::from_fn(move || {
            let (head, tail) = rest.split_at_checked(LINE_HEADER)?;
            let name_len = usize::from(u16::from_le_bytes([head[0], head[1]]));
            let value_len = usize::from(u16::from_le_bytes([head[2], head[3]]));
            let (name, tail) = tail.split_at_checked(name_len)?;
            let (value, tail) = tail.split_at_checked(value_len)?;
            rest = tail;
            // Written from `HeaderName::as_str`: always valid.
            Some((std::str::from_utf8(name).ok()?, value))
        })
    }

    /// Whether the request came with a trace header (`sentry-trace`, `traceparent`, `baggage`).
    pub(crate) fn has_trace_headers(&self) -> bool {
        self.trace_headers
    }

    /// The first value of header `name` (lower-case).
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn target_len(&self) -> usize {
        self.target.iter().map(|&l| usize::from(l)).sum()
    }

    /// Bytes of header lines held.
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.buf.len() - self.target_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    fn root() -> Uri {
        Uri::from_static("/")
    }

    fn map(lines: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in lines {
            map.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_bytes(v).unwrap());
        }
        map
    }

    #[test]
    fn keeps_order_repeats_and_raw_bytes() {
        let h = map(&[("Accept", b"a"), ("x-bin", &[0xff, b'z']), ("accept", b"b"), ("x-empty", b"")]);
        let snap = RequestSnapshot::new(&root(), &h, false);
        let lines: Vec<_> = snap.iter().collect();
        assert_eq!(
            lines,
            [("accept", &b"a"[..]), ("accept", b"b"), ("x-bin", &[0xff, b'z']), ("x-empty", b"")],
            "HeaderMap yields a name's values together"
        );
        assert_eq!(snap.get("accept"), Some(&b"a"[..]));
        assert_eq!(snap.get("x-missing"), None);
    }

    #[test]
    fn sensitive_headers_are_not_recorded_without_pii() {
        let h = map(&[("cookie", b"session=1"), ("authorization", b"Bearer x"), ("host", b"h")]);
        let scrubbed = RequestSnapshot::new(&root(), &h, false);
        assert_eq!(scrubbed.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["host"]);
        assert_eq!(RequestSnapshot::new(&root(), &h, true).iter().count(), 3);
        assert_eq!(RequestSnapshot::new(&root(), &map(&[("cookie", b"a")]), false).size(), 0);
    }

    #[test]
    fn keeps_the_target_apart_from_the_headers() {
        let h = map(&[("host", b"shop.example")]);
        let snap = RequestSnapshot::new(&Uri::from_static("https://u:p@api.example:8443/a/b?x=1&y"), &h, false);
        assert_eq!(snap.scheme(), Some("https"));
        assert_eq!(snap.authority(), Some("u:p@api.example:8443"));
        assert_eq!(snap.path(), "/a/b");
        assert_eq!(snap.query(), Some("x=1&y"));
        assert_eq!(snap.iter().collect::<Vec<_>>(), [("host", &b"shop.example"[..])]);

        let snap = RequestSnapshot::new(&Uri::from_static("/only?"), &HeaderMap::new(), false);
        assert_eq!((snap.scheme(), snap.authority(), snap.path(), snap.query()), (None, None, "/only", None));
        assert_eq!(snap.iter().count(), 0);

        assert_eq!(RequestSnapshot::new(&Uri::from_static("http://h.example"), &h, false).path(), "/");
        assert_eq!(RequestSnapshot::new(&Uri::from_static("h.example:443"), &h, false).path(), "");

        // The longest URI `http` parses is kept whole; a longer part is cut at a character
        // boundary, never mis-encoded.
        let longest = format!("/{}", "é".repeat(32_766)); // 65,533 bytes
        let snap = RequestSnapshot::new(&longest.parse().unwrap(), &h, false);
        assert_eq!(snap.path(), longest);
        assert_eq!(snap.iter().count(), 1);
        let longer = format!("x{}", "é".repeat(33_000)); // 66,001 bytes
        assert_eq!(cut(&longer).len(), 65_535);
        assert_eq!(cut(&longer[1..]).len(), 65_534, "never inside a character");
    }

    #[test]
    fn hostile_headers_are_bounded() {
        let big = vec![b'a'; 100_000];
        let h = map(&[("x-big", &big)]);
        let snap = RequestSnapshot::new(&root(), &h, false);
        assert_eq!(snap.get("x-big").unwrap().len(), MAX_VALUE_BYTES);

        let mut many = HeaderMap::new();
        for i in 0..10_000 {
            many.append(HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(), HeaderValue::from_static("v"));
        }
        let snap = RequestSnapshot::new(&root(), &many, false);
        assert_eq!(snap.iter().count(), MAX_LINES);

        let mut wide = HeaderMap::new();
        for i in 0..100 {
            wide.append(
                HeaderName::from_bytes(format!("x-w{i}").as_bytes()).unwrap(),
                HeaderValue::from_bytes(&big[..5_000]).unwrap(),
            );
        }
        let snap = RequestSnapshot::new(&root(), &wide, false);
        assert!(snap.size() <= MAX_TOTAL);
        assert_eq!(snap.iter().count(), 13, "13 lines of ~5 KB fit in 64 KiB");
        assert!(snap.iter().all(|(_, v)| v.len() == 5_000), "a line is kept whole or not at all");
    }

    #[test]
    fn longest_header_name_fits() {
        let name = "x".repeat(u16::MAX as usize);
        let h = map(&[(&name, b"v")]);
        let snap = RequestSnapshot::new(&root(), &h, false);
        // Too big for the total: not kept, and never mis-encoded.
        assert!(snap.iter().all(|(n, v)| n.len() == name.len() && v == b"v"));
    }
}
