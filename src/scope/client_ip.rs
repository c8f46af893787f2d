//! The client's IP address of a request: from the proxy headers (`X-Forwarded-For`,
//! `Forwarded`, `X-Real-IP`) when they are trusted, else the connection's peer.
//!
//! The headers are whatever the client (or the proxies in between) sent: behind a proxy that
//! sets them they name the client, but a service reached directly can be sent any address in
//! them. `Options::trust_proxy_headers(false)` then keeps the peer's address only.

use std::net::IpAddr;

use super::snapshot::RequestSnapshot;

/// The client's address: the first proxy header that names one (in the order above), else
/// `peer`. Values that are not an IP address (`unknown`, obfuscated `_hidden` identifiers,
/// garbage) are passed over.
pub(super) fn client_ip(recorded: &RequestSnapshot, peer: Option<IpAddr>, trust_headers: bool) -> Option<IpAddr> {
    if trust_headers {
        let from_headers = recorded
            .get("x-forwarded-for")
            .and_then(first_forwarded_for)
            .or_else(|| recorded.get("forwarded").and_then(first_forwarded))
            .or_else(|| recorded.get("x-real-ip").and_then(|v| parse_node(std::str::from_utf8(v).ok()?)));
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

    fn recorded(headers: &[(&str, &str)]) -> RequestSnapshot {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        RequestSnapshot::new(&http::Uri::from_static("/"), &map, true)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_first_proxy_header_that_names_an_address_wins() {
        let peer = ip("10.0.0.9");
        let xff = recorded(&[("x-forwarded-for", "203.0.113.7, 10.0.0.1"), ("x-real-ip", "198.51.100.1")]);
        assert_eq!(client_ip(&xff, peer, true), ip("203.0.113.7"));
        let fwd = recorded(&[("forwarded", r#"for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.1"#)]);
        assert_eq!(client_ip(&fwd, peer, true), ip("2001:db8:cafe::17"));
        let fwd = recorded(&[("forwarded", "proto=http;For=192.0.2.60:8080")]);
        assert_eq!(client_ip(&fwd, peer, true), ip("192.0.2.60"));
        let real = recorded(&[("x-real-ip", " 198.51.100.1 ")]);
        assert_eq!(client_ip(&real, peer, true), ip("198.51.100.1"));
        let v6 = recorded(&[("x-forwarded-for", "2001:db8::1")]);
        assert_eq!(client_ip(&v6, peer, true), ip("2001:db8::1"));
    }

    #[test]
    fn garbage_and_obfuscated_values_fall_through_to_the_next_source() {
        let peer = ip("10.0.0.9");
        for value in ["unknown", "_hidden", "", "999.1.1.1", "a.b.c.d:80", "[::1", "1.2.3.4:port"] {
            let r = recorded(&[("x-forwarded-for", value), ("x-real-ip", "198.51.100.1")]);
            assert_eq!(client_ip(&r, peer, true), ip("198.51.100.1"), "{value:?}");
        }
        let r = recorded(&[("forwarded", "for=unknown"), ("x-forwarded-for", "nope")]);
        assert_eq!(client_ip(&r, peer, true), peer);
        assert_eq!(client_ip(&recorded(&[]), None, true), None);
    }

    #[test]
    fn untrusted_headers_leave_the_peer() {
        let r = recorded(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(client_ip(&r, ip("10.0.0.9"), false), ip("10.0.0.9"));
        assert_eq!(client_ip(&r, None, false), None);
    }
}
