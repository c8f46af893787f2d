//! The client's IP address of a request: from the proxy headers (`X-Forwarded-For`,
//! `Forwarded`, `X-Real-IP`) when they are trusted, else the connection's peer.
//!
//! The headers are whatever the client (or the proxies in between) sent: behind a proxy that
//! sets them they name the client, but a service reached directly can be sent any address in
//! them. `Options::trust_proxy_headers(false)` then keeps the peer's address only.

use std::net::IpAddr;

/// The client's address: the first proxy header that names one (in the order above), else
/// `peer`. Values that are not an IP address (`unknown`, obfuscated `_hidden` identifiers,
/// garbage) are passed over.
/// `header` looks a request header up by its lower-case name.
pub(super) fn client_ip<'a>(
    header: impl Fn(&str) -> Option<&'a [u8]>,
    peer: Option<IpAddr>,
    trust_headers: bool,
) -> Option<IpAddr> {
    if trust_headers {
        let from_headers = header("x-forwarded-for")
            .and_then(first_forwarded_for)
            .or_else(|| header("forwarded").and_then(first_forwarded))
            .or_else(|| header("x-real-ip").and_then(|v| parse_node(std::str::from_utf8(v).ok()?)));
        if from_headers.is_some() {
            return from_headers;
        }
    }
    peer
}

/// `X-Forwarded-For: client, proxy1, proxy2`: the first entry, the original client.
fn first_forwarded_for(value: &[u8]) -> Option<IpAddr> {
    let value = std::str::from_utf8(value).ok()?;
    parse_node(value.split(',').next()?)
}

/// RFC 7239 `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::17]:4711"`: the `for`
/// parameter of the first element.
fn first_forwarded(value: &[u8]) -> Option<IpAddr> {
    let value = std::str::from_utf8(value).ok()?;
    let element = value.split(',').next()?;
    let node = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then_some(value)
    })?;
    parse_node(node.trim().trim_matches('"'))
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`,
/// `[2001:db8::1]:443`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    // `v4:port` (an IPv6 address without brackets parsed above, or is not one).
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`client_ip`] of a request with `headers` (first value of a name wins).
    fn of(headers: &[(&str, &str)], peer: Option<IpAddr>, trust: bool) -> Option<IpAddr> {
        client_ip(|name| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_bytes()), peer, trust)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_first_proxy_header_that_names_an_address_wins() {
        let peer = ip("10.0.0.9");
        let xff = [("x-forwarded-for", "203.0.113.7, 10.0.0.1"), ("x-real-ip", "198.51.100.1")];
        assert_eq!(of(&xff, peer, true), ip("203.0.113.7"));
        let fwd = [("forwarded", r#"for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.1"#)];
        assert_eq!(of(&fwd, peer, true), ip("2001:db8:cafe::17"));
        assert_eq!(of(&[("forwarded", "proto=http;For=192.0.2.60:8080")], peer, true), ip("192.0.2.60"));
        assert_eq!(of(&[("x-real-ip", " 198.51.100.1 ")], peer, true), ip("198.51.100.1"));
        assert_eq!(of(&[("x-forwarded-for", "2001:db8::1")], peer, true), ip("2001:db8::1"));
    }

    #[test]
    fn garbage_and_obfuscated_values_fall_through_to_the_next_source() {
        let peer = ip("10.0.0.9");
        for value in ["unknown", "_hidden", "", "999.1.1.1", "a.b.c.d:80", "[::1", "1.2.3.4:port"] {
            let headers = [("x-forwarded-for", value), ("x-real-ip", "198.51.100.1")];
            assert_eq!(of(&headers, peer, true), ip("198.51.100.1"), "{value:?}");
        }
        assert_eq!(of(&[("forwarded", "for=unknown"), ("x-forwarded-for", "nope")], peer, true), peer);
        assert_eq!(of(&[], None, true), None);
    }

    #[test]
    fn untrusted_headers_leave_the_peer() {
        let headers = [("x-forwarded-for", "203.0.113.7")];
        assert_eq!(of(&headers, ip("10.0.0.9"), false), ip("10.0.0.9"));
        assert_eq!(of(&headers, None, false), None);
    }
}
