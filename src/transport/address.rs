//! Addresses the HTTP transport reasons about: whether the DSN's host is this machine, and
//! where a redirect it will not follow points (for the debug output).

use std::net::IpAddr;

use crate::debug;

/// Where a redirect points, for the debug output: the target's host and port only (its path and
/// query may hold anything), escaped.
pub(super) fn redirect_target(from: &reqwest::Url, location: &reqwest::header::HeaderValue) -> String {
    let target = location.to_str().ok().and_then(|l| from.join(l).ok());
    match target.as_ref().and_then(|t| Some((t.host_str()?, t.port_or_known_default()))) {
        Some((host, Some(port))) => format!("{}:{port}", debug::Untrusted(host)),
        Some((host, None)) => debug::Untrusted(host).to_string(),
        None => "an unreadable Location".to_owned(),
    }
}

/// Whether `host` (IPv6 in brackets) is this machine: a proxy could never reach it.
pub(super) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.1.2.3"));
        assert!(is_loopback("[::1]"));
        assert!(is_loopback("LOCALHOST"));
        assert!(!is_loopback("sentry.io"));
        assert!(!is_loopback("10.0.0.1"));
    }

    #[test]
    fn a_redirect_target_shows_its_host_and_port_only() {
        let from = reqwest::Url::parse("http://127.0.0.1:9/api/1/envelope/").unwrap();
        let to = |l: &str| redirect_target(&from, &reqwest::header::HeaderValue::from_str(l).unwrap());
        assert_eq!(to("http://other.example/x?token=1"), "other.example:80");
        assert_eq!(to("/elsewhere"), "127.0.0.1:9");
        assert_eq!(to("https://[::1]:8443/"), "[::1]:8443");
    }
}
