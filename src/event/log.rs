//! [`Log`]: a structured log record, sent in batches as a `log` envelope item (one container
//! per envelope; Relay's `OurLog`).

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::trace::{SpanId, TraceId};

/// One log record.
///
/// ```
/// use isoscope::protocol::{Log, LogAttribute, LogLevel};
/// use isoscope::TraceId;
/// let mut log = Log::new(1_700_000_000.5, TraceId::new(), LogLevel::Warn, "disk 91% full");
/// log.attributes.insert("disk.used_pct".into(), LogAttribute::Integer(91));
/// let json = serde_json::to_value(&log).unwrap();
/// assert_eq!((json["level"].as_str(), json["severity_number"].as_u64()), (Some("warn"), Some(13)));
/// assert_eq!(json["attributes"]["disk.used_pct"], serde_json::json!({"value": 91, "type": "integer"}));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Log {
    /// When it was recorded (seconds since the Unix epoch).
    pub timestamp: f64,
    /// The trace it belongs to: the request's, or the process's outside requests.
    pub trace_id: TraceId,
    /// The span active when it was recorded, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<SpanId>,
    /// Its level.
    pub level: LogLevel,
    /// The message.
    pub body: String,
    /// OpenTelemetry's severity number for the level.
    pub severity_number: u8,
    /// Typed attributes (`sentry.release`, the message's parameters, the record's fields, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, LogAttribute>,
}

/// A log record's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Finest detail.
    Trace,
    /// Debugging.
    Debug,
    /// Information.
    Info,
    /// Something to look at.
    Warn,
    /// An error.
    Error,
    /// The process cannot go on.
    Fatal,
}

impl LogLevel {
    /// OpenTelemetry's severity number: the lowest of the level's range.
    pub fn severity_number(self) -> u8 {
        match self {
            Self::Trace => 1,
            Self::Debug => 5,
            Self::Info => 9,
            Self::Warn => 13,
            Self::Error => 17,
            Self::Fatal => 21,
        }
    }
}

/// A typed attribute value: on the wire `{"value": .., "type": "string"|"boolean"|"integer"|"double"}`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LogAttribute {
    /// Text.
    String(String),
    /// A flag.
    Boolean(bool),
    /// A whole number.
    Integer(i64),
    /// A floating-point number.
    Double(f64),
}

impl LogAttribute {
    /// About the bytes of its value as text (for size estimates).
    pub(crate) fn text_len(&self) -> usize {
        match self {
            Self::String(s) => s.len(),
            Self::Boolean(_) => 5,
            Self::Integer(_) | Self::Double(_) => 20,
        }
    }
}

impl Serialize for LogAttribute {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        match self {
            Self::String(v) => (map.serialize_entry("value", v)?, map.serialize_entry("type", "string")?),
            Self::Boolean(v) => (map.serialize_entry("value", v)?, map.serialize_entry("type", "boolean")?),
            Self::Integer(v) => (map.serialize_entry("value", v)?, map.serialize_entry("type", "integer")?),
            Self::Double(v) => (map.serialize_entry("value", v)?, map.serialize_entry("type", "double")?),
        };
        map.end()
    }
}

impl From<&str> for LogAttribute {
    fn from(v: &str) -> Self {
        Self::String(v.to_owned())
    }
}

impl From<String> for LogAttribute {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}

impl From<bool> for LogAttribute {
    fn from(v: bool) -> Self {
        Self::Boolean(v)
    }
}

impl From<i64> for LogAttribute {
    fn from(v: i64) -> Self {
        Self::Integer(v)
    }
}

impl From<f64> for LogAttribute {
    fn from(v: f64) -> Self {
        Self::Double(v)
    }
}

impl From<f32> for LogAttribute {
    fn from(v: f32) -> Self {
        Self::Double(f64::from(v))
    }
}

/// JSON as an attribute: booleans, whole numbers (within `i64`), other numbers and strings
/// typed; arrays, objects and null as their JSON text.
///
/// ```
/// use isoscope::protocol::LogAttribute;
/// assert_eq!(LogAttribute::from(&serde_json::json!(7)), LogAttribute::Integer(7));
/// assert_eq!(LogAttribute::from(&serde_json::json!([1])), LogAttribute::String("[1]".into()));
/// ```
impl From<&serde_json::Value> for LogAttribute {
    fn from(v: &serde_json::Value) -> Self {
        use serde_json::Value;
        match v {
            Value::Bool(b) => Self::Boolean(*b),
            Value::Number(n) => n.as_i64().map_or_else(|| Self::Double(n.as_f64().unwrap_or(0.0)), Self::Integer),
            Value::String(s) => Self::String(s.clone()),
            other => Self::String(other.to_string()),
        }
    }
}

impl From<&String> for LogAttribute {
    fn from(v: &String) -> Self {
        Self::String(v.clone())
    }
}

/// Whole numbers: as `integer`; a `u64` or `usize` above `i64::MAX` as `double`.
macro_rules! integer_attribute {
    ($($t:ty),*) => {$(
        impl From<$t> for LogAttribute {
            fn from(v: $t) -> Self {
                i64::try_from(v).map_or(Self::Double(v as f64), Self::Integer)
            }
        }
    )*};
}
integer_attribute!(i8, i16, i32, u8, u16, u32, u64, usize, isize);

impl Log {
    /// About the bytes it takes on the wire: its `log_byte` quantity (client reports, stats).
    pub(crate) fn estimated_bytes(&self) -> u64 {
        let attributes: usize = self.attributes.iter().map(|(k, v)| k.len() + v.text_len() + 32).sum();
        (self.body.len() + attributes + 128) as u64
    }

    /// A record with no span and no attributes.
    pub fn new(timestamp: f64, trace_id: TraceId, level: LogLevel, body: impl Into<String>) -> Self {
        Self {
            timestamp,
            trace_id,
            span_id: None,
            level,
            body: body.into(),
            severity_number: level.severity_number(),
            attributes: BTreeMap::new(),
        }
    }
}
