//! How an [`Event`] is written: Sentry's event JSON, borrowed field by field (nothing is
//! copied), with the message as the `logentry` interface and lists wrapped in `values`.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{Breadcrumb, Event, EventId, Exception, Level, Request, Sdk, Thread, User};

/// `{"values": [...]}`, Sentry's wrapping of lists.
#[derive(Serialize)]
struct Values<'a, T> {
    values: &'a [T],
}

fn values<T>(v: &[T]) -> Option<Values<'_, T>> {
    (!v.is_empty()).then_some(Values { values: v })
}

/// `logentry`: the formatted message, and the template and parameters it came from.
#[derive(Serialize)]
struct LogEntry<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    formatted: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a [Value]>,
}

#[derive(Serialize)]
struct Wire<'a> {
    event_id: &'a EventId,
    timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<&'a Level>,
    platform: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logger: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logentry: Option<LogEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exception: Option<Values<'a, Exception>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extra: &'a BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    contexts: &'a BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    breadcrumbs: Option<Values<'a, std::sync::Arc<Breadcrumb>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threads: Option<Values<'a, Thread>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<&'a Request>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    release: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
    sdk: &'a Sdk,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let template = self.message_template.as_ref();
        let logentry = (self.message.is_some() || template.is_some()).then(|| LogEntry {
            formatted: self.message.as_deref(),
            message: template.map(|t| t.message.as_str()),
            params: template.map(|t| t.params.as_slice()).filter(|p| !p.is_empty()),
        });
        Wire {
            event_id: &self.event_id,
            timestamp: self.timestamp,
            level: self.level.as_ref(),
            platform: &self.platform,
            logger: self.logger.as_deref(),
            logentry,
            exception: values(&self.exception),
            tags: &self.tags,
            extra: &self.extra,
            contexts: &self.contexts,
            user: self.user.as_ref(),
            breadcrumbs: values(&self.breadcrumbs),
            threads: values(&self.threads),
            request: self.request.as_ref(),
            transaction: self.transaction.as_deref(),
            fingerprint: self.fingerprint.as_deref(),
            release: self.release.as_deref(),
            environment: self.environment.as_deref(),
            server_name: self.server_name.as_deref(),
            sdk: &self.sdk,
        }
        .serialize(s)
    }
}
