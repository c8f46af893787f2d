//! [`TraceRequest`]: outgoing reqwest calls that continue the active request's trace and leave
//! an `http` breadcrumb.
//!
//! An extension of `reqwest::RequestBuilder` rather than a `reqwest-middleware` middleware:
//! it works with the plain `reqwest::Client` users already have (no `ClientWithMiddleware` to
//! switch to, no extra dependency), and it is one call at the place the request is sent.

use std::future::Future;
use std::time::Instant;

use crate::event::{scrub, Breadcrumb, Level};

// Both majors use the `url` crate's one `Url`.
#[cfg(feature = "reqwest")]
use reqwest::Url;
#[cfg(all(feature = "reqwest012", not(feature = "reqwest")))]
use reqwest012::Url;

/// Trace propagation and breadcrumbs for `reqwest` calls: reqwest 0.13's `RequestBuilder`
/// (feature `reqwest`, on by default) and reqwest 0.12's (feature `reqwest012`).
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
    /// The response (`reqwest::Response` of the builder's version).
    type Response;
    /// The error (`reqwest::Error` of the builder's version).
    type Error;

    /// Adds `sentry-trace`, `traceparent` and `baggage` for the active request's trace
    /// ([`trace_headers`](crate::trace_headers)), if the URL is one of
    /// [`Options::trace_propagation_targets`](crate::Options::trace_propagation_targets).
    #[must_use]
    fn with_trace(self) -> Self;

    /// Sends with the trace headers (to the URLs `trace_propagation_targets` allows) and records an `http` breadcrumb in the active scope:
    /// method, URL (without credentials, secret-looking query values filtered), status code and
    /// duration, level `error` for a 5xx answer or a failed request. Inside a sampled request
    /// the call is also an `http.client` child span, and the callee's parent is that span.
    fn send_traced(self) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send;
}

/// `TraceRequest` for the `RequestBuilder` of the reqwest crate named `$reqwest`.
macro_rules! trace_request {
    ($reqwest:ident) => {
        impl TraceRequest for $reqwest::RequestBuilder {
            type Response = $reqwest::Response;
            type Error = $reqwest::Error;

            fn with_trace(self) -> Self {
                // The URL decides (`Options::trace_propagation_targets`); a builder that
                // cannot be looked into (a streamed body) gets headers only if every URL does.
                let allowed = match self.try_clone().map(|b| b.build()) {
                    Some(Ok(request)) => crate::client::propagates_to(request.url().as_str()),
                    // It fails when sent: nothing leaves.
                    Some(Err(_)) => true,
                    None => crate::client::propagates_to(""),
                };
                if !allowed {
                    return self;
                }
                let headers = crate::trace_headers();
                headers.iter().fold(self, |req, (name, value)| req.header(name, value))
            }

            fn send_traced(self) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send {
                let (client, request) = self.build_split();
                let prepared = request.map(|mut request| {
                    let method = request.method().to_string();
                    let url = display_url(request.url());
                    // Inside a sampled request, an `http.client` span, the callee's parent.
                    let span = crate::start_span("http.client", format!("{method} {url}"));
                    if crate::client::propagates_to(request.url().as_str()) {
                        for (name, value) in span.trace_headers().iter() {
                            if let Ok(value) = $reqwest::header::HeaderValue::from_str(value) {
                                request.headers_mut().insert(name, value);
                            }
                        }
                    }
                    (request, method, url, span)
                });
                async move {
                    let (request, method, url, mut span) = prepared?;
                    let started = Instant::now();
                    let answer = client.execute(request).await;
                    let status = answer.as_ref().ok().map(|res| res.status().as_u16());
                    span.set_status(status.map_or(crate::SpanStatus::InternalError, crate::SpanStatus::from_http));
                    drop(span);
                    let failure = answer.as_ref().err().map(ToString::to_string);
                    crate::add_breadcrumb(breadcrumb(method, url, started, status, failure));
                    answer
                }
            }
        }
    };
}

#[cfg(feature = "reqwest")]
trace_request!(reqwest);
#[cfg(feature = "reqwest012")]
trace_request!(reqwest012);

/// The `http` breadcrumb of a call: its status code, or why it failed.
fn breadcrumb(
    method: String,
    url: String,
    started: Instant,
    status: Option<u16>,
    failure: Option<String>,
) -> Breadcrumb {
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let mut crumb = Breadcrumb::new(format!("{method} {url}"))
        .ty("http")
        .category("http")
        .data("method", method)
        .data("url", url)
        .data("duration_ms", (millis * 1000.0).round() / 1000.0);
    if let Some(status) = status {
        crumb = crumb.data("status_code", status);
        if status >= 500 {
            crumb = crumb.level(Level::Error);
        } else if status >= 400 {
            crumb = crumb.level(Level::Warning);
        }
    }
    if let Some(reason) = failure {
        crumb = crumb.level(Level::Error).data("reason", reason);
    }
    crumb
}

/// The URL as a breadcrumb shows it: no user or password, secret-looking query values
/// `[Filtered]` (unless `send_default_pii`), no fragment.
fn display_url(url: &Url) -> String {
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
        let url: super::Url = "https://user:pw@api.example/v1/items?page=2&token=s3cret#frag".parse().unwrap();
        assert_eq!(super::display_url(&url), "https://api.example/v1/items?page=2&token=[Filtered]");
    }
}
