//! [`TraceId`] and [`SpanId`]: 16 and 8 random bytes, written as lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// A new random id (never all zeros).
            pub fn new() -> Self {
                let mut bytes = [0u8; $len];
                for chunk in bytes.chunks_mut(8) {
                    let r = crate::util::random_u64().to_le_bytes();
                    chunk.copy_from_slice(&r[..chunk.len()]);
                }
                if bytes.iter().all(|&b| b == 0) {
                    bytes[0] = 1;
                }
                Self(bytes)
            }

            /// Parses exactly `2 * len` hex digits (either case); all zeros is not an id.
            pub(crate) fn from_hex(hex: &[u8]) -> Option<Self> {
                if hex.len() != 2 * $len {
                    return None;
                }
                let mut bytes = [0u8; $len];
                for (i, pair) in hex.chunks(2).enumerate() {
                    bytes[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
                }
                Self::from_bytes(bytes)
            }

            /// The id of these bytes; all zeros is not an id.
            pub(crate) fn from_bytes(bytes: [u8; $len]) -> Option<Self> {
                (bytes.iter().any(|&b| b != 0)).then_some(Self(bytes))
            }

            /// The raw bytes.
            pub fn to_bytes(self) -> [u8; $len] {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $name {
            /// Lower-case hex digits, in a buffer on the stack (events and headers format ids
            /// often: `write!` per byte cost ten times as much).
            fn hex(&self) -> [u8; 2 * $len] {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let mut out = [0; 2 * $len];
                for (i, b) in self.0.iter().enumerate() {
                    out[2 * i] = DIGITS[usize::from(b >> 4)];
                    out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
                }
                out
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let hex = self.hex();
                // Hex digits are ASCII.
                f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::from_hex(s.as_bytes()).ok_or(InvalidId)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // Straight from the stack buffer (`collect_str` would format into a new string).
                let hex = self.hex();
                s.serialize_str(std::str::from_utf8(&hex).map_err(serde::ser::Error::custom)?)
            }
        }
    };
}

hex_id!(
    /// A trace id: 16 bytes, 32 hex digits, shared by every event and span of one trace.
    ///
    /// ```
    /// let id: isoscope::TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
    /// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert!("00000000000000000000000000000000".parse::<isoscope::TraceId>().is_err());
    /// ```
    TraceId,
    16
);

hex_id!(
    /// A span id: 8 bytes, 16 hex digits.
    ///
    /// ```
    /// let id: isoscope::SpanId = "00f067aa0ba902b7".parse().unwrap();
    /// assert_eq!(id.to_string(), "00f067aa0ba902b7");
    /// ```
    SpanId,
    8
);

/// The error of parsing a [`TraceId`] or [`SpanId`]: not the right number of hex digits, or
/// all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidId;

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a trace or span id (32 or 16 hex digits, not all zeros)")
    }
}

impl std::error::Error for InvalidId {}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
