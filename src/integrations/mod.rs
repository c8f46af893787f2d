//! Integrations with other crates.

#[cfg(feature = "axum")]
pub mod axum;

#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub mod tracing;
