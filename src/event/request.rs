//! [`Request`]: the HTTP request an event happened in, as Sentry's `request` interface.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The HTTP request an event happened in, as Sentry's `request` interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// The body: a JSON body parsed, a form as an object of its fields, another body (or one
    /// over `Options::max_request_body_size`) as a note saying what it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}
