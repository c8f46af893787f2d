//! [`User`]: who an event is about, as Sentry's `user` interface.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The user an event is about. Build it with [`User::with_id`] (or [`User::new`]) and the
/// `with_*` setters; its fields stay public to read and change.
///
/// ```
/// let user = isoscope::User::with_id("42").with_email("ada@example.com").with_data("plan", "pro");
/// assert_eq!(user.id.as_deref(), Some("42"));
/// isoscope::set_user(Some(user));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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

impl User {
    /// A user with nothing known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A user known by their stable id.
    pub fn with_id(id: impl Into<String>) -> Self {
        Self { id: Some(id.into()), ..Self::default() }
    }

    /// With this e-mail address.
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// With this user name.
    #[must_use]
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// With this IP address (`"{{auto}}"` lets the server fill it in).
    #[must_use]
    pub fn with_ip_address(mut self, ip_address: impl Into<String>) -> Self {
        self.ip_address = Some(ip_address.into());
        self
    }

    /// With one more attribute (Sentry's `user.data`).
    #[must_use]
    pub fn with_data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.other.insert(key.into(), value.into());
        self
    }
}
