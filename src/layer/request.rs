//! Request info kept in a request's scope, and the scrubbing applied when it goes into an event.

use std::collections::BTreeMap;
use std::fmt;

use http::{HeaderMap, Method, Uri};

use crate::event::Request;

/// Headers never sent unless `send_default_pii` is on (compared lower-case).
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-xsrf-token",
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
    "x-client-ip",
    "cf-connecting-ip",
    "true-client-ip",
];

/// Query keys whose values are replaced by `[Filtered]` unless `send_default_pii` is on
/// (matched as substrings of the lower-cased key).
const SECRET_KEYS: &[&str] =
    &["password", "passwd", "secret", "token", "api_key", "apikey", "auth", "credentials", "session", "cookie"];

/// At most this many headers, each value at most this long, go into an event.
const MAX_HEADERS: usize = 100;
const MAX_HEADER_VALUE: usize = 2048;
const MAX_URL: usize = 8192;
const MAX_QUERY: usize = 8192;

pub(crate) const FILTERED: &str = "[Filtered]";

/// What the layer records about a request: method, URI and headers, kept as received and
/// turned into Sentry's `request` object (scrubbed, bounded) only when an event is captured.
#[derive(Clone)]
pub struct RequestInfo {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    send_default_pii: bool,
}

impl fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print raw headers: they may hold credentials.
        f.debug_struct("RequestInfo")
            .field("method", &self.method)
            .field("path", &self.uri.path())
            .finish_non_exhaustive()
    }
}

impl RequestInfo {
    /// Records a request. `send_default_pii` decides whether sensitive headers and secret-
    /// looking query values are kept when the info is put into an event.
    pub fn new(method: Method, uri: Uri, headers: HeaderMap, send_default_pii: bool) -> Self {
        Self { method, uri, headers, send_default_pii }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request URI as received.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Sentry's `request` object: absolute URL without credentials or query, the query string
    /// and headers, scrubbed unless `send_default_pii`, and bounded in size.
    ///
    /// ```
    /// use isoscope::RequestInfo;
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("host", "shop.example".parse().unwrap());
    /// headers.insert("authorization", "Bearer secret".parse().unwrap());
    /// let uri: http::Uri = "/cart?id=7&token=abc".parse().unwrap();
    /// let info = RequestInfo::new(http::Method::GET, uri, headers, false);
    /// let req = info.to_event_request();
    /// assert_eq!(req.url.as_deref(), Some("http://shop.example/cart"));
    /// assert_eq!(req.query_string.as_deref(), Some("id=7&token=[Filtered]"));
    /// assert!(!req.headers.contains_key("authorization"));
    /// ```
    pub fn to_event_request(&self) -> Request {
        let pii = self.send_default_pii;
        let mut headers = BTreeMap::new();
        for (name, value) in &self.headers {
            let name = name.as_str();
            if !pii && SENSITIVE_HEADERS.contains(&name) {
                continue;
            }
            if headers.len() >= MAX_HEADERS && !headers.contains_key(name) {
                continue;
            }
            let mut value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            crate::util::truncate_chars(&mut value, MAX_HEADER_VALUE);
            headers
                .entry(name.to_owned())
                .and_modify(|v: &mut String| {
                    if v.len() < MAX_HEADER_VALUE {
                        v.push_str(", ");
                        v.push_str(&value);
                        crate::util::truncate_chars(v, MAX_HEADER_VALUE);
                    }
                })
                .or_insert(value);
        }
        let scheme = self.uri.scheme_str().unwrap_or("http");
        let host = self
            .uri
            .host()
            .map(|h| match self.uri.port_u16() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
            .or_else(|| self.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned));
        let mut url = match host {
            // `Uri::host` never includes userinfo, so credentials in the authority are dropped.
            Some(host) => format!("{scheme}://{host}{}", self.uri.path()),
            None => self.uri.path().to_owned(),
        };
        crate::util::truncate_chars(&mut url, MAX_URL);
        let query_string = self.uri.query().filter(|q| !q.is_empty()).map(|q| {
            let mut q = if pii { q.to_owned() } else { filter_query(q) };
            crate::util::truncate_chars(&mut q, MAX_QUERY);
            q
        });
        Request { method: Some(self.method.as_str().to_owned()), url: Some(url), query_string, headers }
    }
}

/// Whether a key (query parameter or JSON field) looks like it holds a secret.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS.iter().any(|s| key.contains(s))
}

fn filter_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_key(k) => format!("{k}={FILTERED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(uri: &str, headers: &[(&str, &str)], pii: bool) -> Request {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        RequestInfo::new(Method::POST, uri.parse().unwrap(), map, pii).to_event_request()
    }

    #[test]
    fn credentials_in_the_url_are_always_removed() {
        let req = info("https://user:pw@api.example:8443/v1?x=1", &[], true);
        assert_eq!(req.url.as_deref(), Some("https://api.example:8443/v1"));
        assert_eq!(req.query_string.as_deref(), Some("x=1"));
    }

    #[test]
    fn sensitive_headers_kept_only_with_pii() {
        let h = [("cookie", "a=b"), ("x-api-key", "k"), ("accept", "text/html")];
        let scrubbed = info("/", &h, false);
        assert_eq!(scrubbed.headers.keys().collect::<Vec<_>>(), ["accept"]);
        let kept = info("/", &h, true);
        assert_eq!(kept.headers.len(), 3);
    }

    #[test]
    fn repeated_headers_are_merged() {
        let req = info("/", &[("accept", "a"), ("accept", "b")], false);
        assert_eq!(req.headers["accept"], "a, b");
    }

    #[test]
    fn secret_query_values_filtered_unless_pii() {
        let req = info("/?Password=x&page=2&API_KEY=y", &[], false);
        assert_eq!(req.query_string.as_deref(), Some("Password=[Filtered]&page=2&API_KEY=[Filtered]"));
        let req = info("/?password=x", &[], true);
        assert_eq!(req.query_string.as_deref(), Some("password=x"));
    }

    #[test]
    fn hostile_sizes_are_bounded() {
        let mut map = HeaderMap::new();
        for i in 0..10_000 {
            map.append(http::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(), "v".parse().unwrap());
        }
        map.insert("x-big", http::HeaderValue::from_bytes(&vec![b'a'; 100_000]).unwrap());
        map.insert("x-bin", http::HeaderValue::from_bytes(&[0xff, 0xfe, b'a']).unwrap());
        // `http::Uri` itself refuses URIs over ~64 KiB, so this is the longest query a request
        // can carry.
        let long_query = format!("/?q={}", "a".repeat(60_000));
        let req = RequestInfo::new(Method::GET, long_query.parse().unwrap(), map, false).to_event_request();
        assert!(req.headers.len() <= MAX_HEADERS);
        assert!(req.headers.values().all(|v| v.chars().count() <= MAX_HEADER_VALUE));
        assert!(req.query_string.unwrap().chars().count() <= MAX_QUERY);
    }
}
