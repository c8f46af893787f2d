//! [`EventId`]: the 128-bit id of an event, as Sentry writes it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 128-bit event id, written as 32 lower-case hex digits (no dashes) as Sentry expects.
///
/// ```
/// let id = isoscope::EventId::new();
/// assert_eq!(id.to_string().len(), 32);
/// assert_eq!(id.to_string().parse::<isoscope::EventId>().unwrap(), id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(u128);

impl EventId {
    /// A new random id.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let hi = crate::util::random_u64() as u128;
        let lo = crate::util::random_u64() as u128;
        // Shape it as a UUIDv4 (version and variant bits), which servers validate.
        let v = (hi << 64 | lo) & !(0xF << 76) | (0x4 << 76);
        Self(v & !(0x3 << 62) | (0x2 << 62))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl FromStr for EventId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 {
            return Err(format!("event id must have 32 hex digits, got {:?}", s));
        }
        u128::from_str_radix(&hex, 16).map(Self).map_err(|_| format!("event id is not hex: {s:?}"))
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
