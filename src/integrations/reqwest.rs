//! [`TraceRequest`]: outgoing reqwest calls that continue the active request's trace and leave
//! an `http` breadcrumb.
//!
//! An extension of `reqwest::RequestBuilder` rather than a `reqwest-middleware` middleware:
//! it works with the plain `reqwest::Client` users already have (no `ClientWithMiddleware` to
//! switch to, no extra dependency), and it is one call at the place the request is sent.

use std::future::Future;
use std::time::Instant;

use crate::event::{scrub, Breadcrumb, Level};

/// Trace propagation and breadcrumbs for `reqwest` calls (feature `reqwest`).
///
/// ```no_run
/// use isoscope::integrations::reqwest::TraceRequest;
/// # async fn f() -> Result<(), reqwest::Error> {
/// let client = reqwest::Client::new();
/// // Headers only:
/// let res = client.get("http://127.0.0.1:8080/stock").with_trace().send().await?;
/// // Headers and an `http` breadcrumb (method, URL, status, duration):
/// let res = client.get("http://127.0.0.1:8080/stock").send_traced().await?;
/// # Ok(()) }
/// ```
pub trait TraceRequest: Sized {
    /// Adds `sentry-trace`, `traceparent` and `baggage` for the active request's trace
    /// ([`trace_headers`](crate::trace_headers)).
    #[must_use]
    fn with_trace(self) -> Self;

    /// Sends with the trace headers and records an `http` breadcrumb in the active scope:
    /// method, URL (without credentials, secret-looking query values filtered), status code and
    /// duration, level `error` for a 5xx answer or a failed request. Inside a sampled request
    /// the call is also an `http.client` child span, and the callee's parent is that span.
    fn send_traced(self) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send;
}

impl TraceRequest for reqwest::RequestBuilder {
    fn with_trace(self) -> Self {
        let headers = crate::trace_headers();
        headers.iter().fold(self, |req, (name, value)| req.header(name, value))
    }

    fn send_traced(self) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send {
        let (client, request) = self.build_split();
        let prepared = request.map(|mut request| {
            let method = request.method().to_string();
            let url = display_url(request.url());
            // Inside a sampled request, an `http.client` span, the callee's parent.
            let span = crate::start_span("http.client", format!("{method} {url}"));
            span.trace_headers().apply_to(request.headers_mut());
            (request, method, url, span)
        });
        async move {
            let (request, method, url, mut span) = prepared?;
            let started = Instant::now();
            let answer = client.execute(request).await;
            span.set_status(match &answer {
                Ok(res) => crate::SpanStatus::from_http(res.status().as_u16()),
                Err(_) => crate::SpanStatus::InternalError,
            });
            drop(span);
            let millis = started.elapsed().as_secs_f64() * 1000.0;
            let mut crumb = Breadcrumb::new(format!("{method} {url}"))
                .ty("http")
                .category("http")
                .data("method", method)
                .data("url", url)
                .data("duration_ms", (millis * 1000.0).round() / 1000.0);
            match &answer {
                Ok(res) => {
                    let status = res.status().as_u16();
                    crumb = crumb.data("status_code", status);
                    if status >= 500 {
                        crumb = crumb.level(Level::Error);
                    } else if status >= 400 {
                        crumb = crumb.level(Level::Warning);
                    }
                }
                Err(err) => crumb = crumb.level(Level::Error).data("reason", err.to_string()),
            }
            crate::add_breadcrumb(crumb);
            answer
        }
    }
}

/// The URL as a breadcrumb shows it: no user or password, secret-looking query values
/// `[Filtered]` (unless `send_default_pii`), no fragment.
fn display_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_fragment(None);
    if let Some(query) = url.query() {
        if !crate::client::send_default_pii() {
            let filtered = scrub::filter_query(query);
            shown.set_query(Some(&filtered));
        }
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_credentials_and_secrets() {
        let url: reqwest::Url = "https://user:pw@api.example/v1/items?page=2&token=s3cret#frag".parse().unwrap();
        assert_eq!(super::display_url(&url), "https://api.example/v1/items?page=2&token=[Filtered]");
    }
}
