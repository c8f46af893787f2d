//! [`Error`]: why `init` (or building a transport) failed. A leaf: every layer may return it.

use std::fmt;

/// Why [`init`](crate::init) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The DSN could not be used; the message says what is wrong with it.
    InvalidDsn(String),
    /// An option is out of range; the message names it.
    InvalidOption(String),
    /// The transport could not be set up.
    Transport(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidDsn(m) => write!(f, "invalid DSN: {m}"),
            Self::InvalidOption(m) => write!(f, "invalid option: {m}"),
            Self::Transport(m) => write!(f, "transport error: {m}"),
        }
    }
}

impl std::error::Error for Error {}
