//! What every event says about where it comes from unless the event, a scope or the options say
//! otherwise: the `os`, `rust` and `device` contexts, the host name, the environment and the
//! release. Read from the OS once per process, at the first `init`, never on a request path.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::event::Event;

/// Facts about the process, read once.
struct Facts {
    contexts: Vec<(&'static str, Value)>,
    host_name: Option<String>,
}

fn facts() -> &'static Facts {
    static FACTS: OnceLock<Facts> = OnceLock::new();
    FACTS.get_or_init(|| Facts {
        contexts: vec![("os", os_context()), ("rust", rust_context()), ("device", device_context())],
        host_name: host_name(),
    })
}

/// Reads the facts now (at `init`), so that the first capture does not.
pub(super) fn warm() {
    facts();
}

/// The host name, for `server_name`.
pub(super) fn server_name() -> Option<String> {
    facts().host_name.clone()
}

/// `SENTRY_ENVIRONMENT`, else `development` in a debug build and `production` in a release one.
pub(super) fn environment() -> String {
    env_value("SENTRY_ENVIRONMENT").unwrap_or_else(|| default_environment().to_owned())
}

/// Without `SENTRY_ENVIRONMENT` or `Options::environment`: `development` in a debug build,
/// `production` in a release build (as sentry-rust; sentry-python says `production` always).
fn default_environment() -> &'static str {
    if cfg!(debug_assertions) {
        "development"
    } else {
        "production"
    }
}

/// `SENTRY_RELEASE`, else none.
pub(super) fn release() -> Option<String> {
    env_value("SENTRY_RELEASE")
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Adds the default contexts an event or its scopes did not set.
pub(super) fn add_contexts(event: &mut Event) {
    for (key, value) in &facts().contexts {
        if !event.contexts.contains_key(*key) {
            event.contexts.insert((*key).to_owned(), value.clone());
        }
    }
}

fn host_name() -> Option<String> {
    let name = gethostname::gethostname().into_string().ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// `{"type": "rust"... }`: Sentry's runtime context for the compiler the crate was built with.
fn rust_context() -> Value {
    let line = env!("ISOSCOPE_RUSTC_VERSION"); // `rustc 1.95.0 (59807616e 2026-04-14)`
    let mut context = json!({ "type": "runtime", "name": "rustc" });
    if let Some(version) = line.split_whitespace().nth(1) {
        context["version"] = version.into();
        context["raw_description"] = line.into();
    }
    context
}

fn device_context() -> Value {
    json!({ "type": "device", "arch": std::env::consts::ARCH })
}

/// The OS's name, version and kernel version. Linux: the kernel release and `/proc/version`,
/// and the distribution from `/etc/os-release`; macOS: `sw_vers` and `uname`; elsewhere the name.
fn os_context() -> Value {
    let mut os = Map::new();
    os.insert("type".into(), "os".into());
    let name = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "macOS",
        "windows" => "Windows",
        "freebsd" => "FreeBSD",
        other => other,
    };
    os.insert("name".into(), name.into());
    match std::env::consts::OS {
        "linux" => {
            let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
            if let Some(release) = read("/proc/sys/kernel/osrelease") {
                os.insert("version".into(), release.into());
            }
            if let Some(version) = read("/proc/version") {
                os.insert("kernel_version".into(), version.into());
            }
            if let Some(text) = read("/etc/os-release").or_else(|| read("/usr/lib/os-release")) {
                os.insert("distribution".into(), distribution(&text));
            }
        }
        "macos" => {
            if let Some(version) = command("sw_vers", &["-productVersion"]) {
                os.insert("version".into(), version.into());
            }
            if let Some(kernel) = command("uname", &["-r"]) {
                os.insert("kernel_version".into(), kernel.into());
            }
        }
        _ => {}
    }
    Value::Object(os)
}

/// A Linux distribution from `os-release` (`ID`, `VERSION_ID`, `PRETTY_NAME`).
fn distribution(os_release: &str) -> Value {
    let mut d = Map::new();
    for line in os_release.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let field = match key.trim() {
            "ID" => "name",
            "VERSION_ID" => "version",
            "PRETTY_NAME" => "pretty_name",
            _ => continue,
        };
        let value = value.trim().trim_matches('"').trim_matches('\'');
        if !value.is_empty() {
            d.insert(field.into(), value.into());
        }
    }
    Value::Object(d)
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_fields() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\nbroken line\n";
        assert_eq!(
            distribution(text),
            json!({ "name": "debian", "version": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)" })
        );
    }

    #[test]
    fn rust_context_has_the_compiler_version() {
        let rust = rust_context();
        assert_eq!(rust["name"], "rustc");
        assert!(rust["version"].as_str().is_some_and(|v| v.starts_with("1.")), "{rust}");
    }
}
