//! [`InApp`]: which frames are the application's own (`in_app: true`), which Sentry shows
//! first and groups by.

use super::naming::crate_of;

/// Crates that are never the application: the standard library, the async stack around a
/// handler (tokio, hyper, axum, tower, futures), isoscope itself, and the start-up code.
const NOT_APP: &[&str] = &[
    "std",
    "core",
    "alloc",
    "test",
    "tokio",
    "tokio_util",
    "hyper",
    "hyper_util",
    "h2",
    "http",
    "http_body",
    "http_body_util",
    "axum",
    "axum_core",
    "tower",
    "tower_http",
    "tower_layer",
    "tower_service",
    "futures",
    "futures_core",
    "futures_util",
    "futures_executor",
    "tracing",
    "tracing_core",
    "tracing_subscriber",
    "reqwest",
    "isoscope",
    "backtrace",
    "anyhow",
    "main",
    "_start",
    "__libc_start_main",
    "__libc_start_call_main",
    "start_thread",
    "clone",
    "clone3",
    "__scrt_common_main_seh",
    "BaseThreadInitThunk",
    "RtlUserThreadStart",
];

/// The `in_app` rules: `Options::in_app_include` and `in_app_exclude` prefixes, then the
/// built-in list of crates that are never the application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InApp {
    pub(crate) include: Vec<String>,
    pub(crate) exclude: Vec<String>,
}

impl InApp {
    /// Whether a frame with this function is the application's: an include prefix wins, then
    /// an exclude prefix, then the built-in list; a frame without a function is not.
    pub(crate) fn classify(&self, function: Option<&str>) -> bool {
        let Some(function) = function else { return false };
        let starts =
            |prefixes: &[String]| prefixes.iter().any(|p| function.starts_with(p.as_str()) || crate_of(function) == p);
        if starts(&self.include) {
            return true;
        }
        if starts(&self.exclude) {
            return false;
        }
        let krate = crate_of(function);
        !(NOT_APP.contains(&krate) || krate.starts_with("__") || krate.starts_with('_'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_list_then_options() {
        let rules = InApp::default();
        assert!(rules.classify(Some("myapp::orders::load")));
        assert!(rules.classify(Some("<myapp::Svc as tower_service::Service<R>>::call")));
        assert!(!rules.classify(Some("tokio::runtime::park")));
        assert!(!rules.classify(Some("<core::pin::Pin<P> as core::future::future::Future>::poll")));
        assert!(!rules.classify(Some("isoscope::layer::future::poll")));
        assert!(!rules.classify(Some("__libc_start_main")));
        assert!(!rules.classify(None));

        let rules = InApp { include: vec!["tokio::task".into()], exclude: vec!["myapp::vendored".into()] };
        assert!(rules.classify(Some("tokio::task::spawn")));
        assert!(!rules.classify(Some("myapp::vendored::parse")));
        assert!(rules.classify(Some("myapp::orders::load")));
    }
}
