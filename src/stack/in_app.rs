//! [`InApp`]: which frames are the application's own (`in_app: true`), which Sentry shows
//! first and groups by.

use super::naming::frame_crate;
use crate::event::Frame;

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
    /// Whether a frame is the application's: an include prefix (of its function, or its
    /// crate) wins, then an exclude prefix, then the built-in list; a frame without a function
    /// is not.
    pub(crate) fn classify(&self, frame: &Frame) -> bool {
        let Some(function) = frame.function.as_deref() else { return false };
        let krate = frame_crate(frame);
        let krate = krate.as_deref().unwrap_or(function);
        let matches = |prefixes: &[String]| prefixes.iter().any(|p| function.starts_with(p.as_str()) || krate == p);
        if matches(&self.include) {
            return true;
        }
        if matches(&self.exclude) {
            return false;
        }
        !(NOT_APP.contains(&krate) || krate.starts_with('_') || function.starts_with('_'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(rules: &InApp, function: Option<&str>) -> bool {
        rules.classify(&Frame { function: function.map(str::to_owned), ..Frame::default() })
    }

    #[test]
    fn built_in_list_then_options() {
        let rules = InApp::default();
        assert!(classify(&rules, Some("myapp::orders::load")));
        assert!(classify(&rules, Some("<myapp::Svc as tower_service::Service<R>>::call")));
        assert!(!classify(&rules, Some("tokio::runtime::park")));
        assert!(!classify(&rules, Some("<core::pin::Pin<P> as core::future::future::Future>::poll")));
        assert!(!classify(&rules, Some("isoscope::layer::future::poll")));
        assert!(!classify(&rules, Some("__libc_start_main")));
        assert!(!classify(&rules, None));

        let rules = InApp { include: vec!["tokio::task".into()], exclude: vec!["myapp::vendored".into()] };
        assert!(classify(&rules, Some("tokio::task::spawn")));
        assert!(!classify(&rules, Some("myapp::vendored::parse")));
        assert!(classify(&rules, Some("myapp::orders::load")));
    }
}
