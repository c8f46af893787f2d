//! Integrations with other crates.

#[cfg(feature = "axum")]
pub mod axum;
