//! Integrations with other crates, at the edge: each one turns another crate's concepts into
//! isoscope's (an axum extractor for the request's scope; tracing events as breadcrumbs and
//! events and logs; `log` records likewise; anyhow errors with their own backtraces; reqwest
//! calls that pass the trace on) using only the crate's own API below it. Each sits behind the
//! feature of its name.

#[cfg(feature = "axum")]
pub mod axum;

#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub mod tracing;

#[cfg(feature = "anyhow")]
#[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
pub mod anyhow;

#[cfg(any(feature = "reqwest", feature = "reqwest012"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "reqwest", feature = "reqwest012"))))]
pub mod reqwest;

#[cfg(feature = "log")]
#[cfg_attr(docsrs, doc(cfg(feature = "log")))]
pub mod log;

#[cfg(any(feature = "tracing", feature = "log"))]
mod record;
