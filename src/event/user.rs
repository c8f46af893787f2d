//! [`User`]: who an event is about, as Sentry's `user` interface.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The user an event is about.
///
/// ```
/// let user = isoscope::User { id: Some("42".into()), ..Default::default() };
/// isoscope::set_user(Some(user));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Stable identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// IP address (`"{{auto}}"` lets the server fill it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Any other attributes. On the wire, Sentry's `user.data` object (unknown keys next to
    /// `id` are not part of Sentry's event schema).
    #[serde(rename = "data", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, Value>,
}
