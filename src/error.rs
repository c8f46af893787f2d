//! [`Error`]: why `init` (or building a transport) failed. A leaf: every layer may return it.

use std::fmt;

use crate::dsn::DsnError;

/// Why [`init`](crate::init) failed.
///
/// ```
/// let err = isoscope::init(isoscope::Options::new().dsn("https://key@host")).unwrap_err();
/// let isoscope::Error::InvalidDsn(dsn) = &err else { panic!("{err}") };
/// assert_eq!(dsn.origin(), Some(isoscope::DsnOrigin::Options));
/// assert_eq!(
///     err.to_string(),
///     "invalid DSN: missing project id: expected `/<project id>` after the host (the DSN came from Options::dsn)"
/// );
/// assert!(std::error::Error::source(&err).is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The DSN could not be used: what is wrong with it and where it came from (never its key).
    InvalidDsn(DsnError),
    /// An option is out of range; the message names it.
    InvalidOption(String),
    /// The transport could not be set up.
    Transport(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidDsn(e) => write!(f, "invalid DSN: {e}"),
            Self::InvalidOption(m) => write!(f, "invalid option: {m}"),
            Self::Transport(m) => write!(f, "transport error: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidDsn(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DsnError> for Error {
    fn from(e: DsnError) -> Self {
        Self::InvalidDsn(e)
    }
}
