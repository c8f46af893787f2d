//! [`Dsn`]: where and how to send events, parsed strictly, with an error that says what is wrong
//! and where the value came from, and that never shows the key.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A parsed DSN: `{scheme}://{public_key}[:{secret}]@{host}[:{port}]/{path/}{project_id}`.
///
/// ```
/// let dsn: isoscope::Dsn = "https://abc123@o1.ingest.example.com/42".parse().unwrap();
/// assert_eq!(dsn.project_id(), "42");
/// assert_eq!(dsn.envelope_url(), "https://o1.ingest.example.com/api/42/envelope/");
///
/// // For people: the key is never shown by `Display` or `Debug`.
/// assert_eq!(dsn.to_string(), "https://<redacted>@o1.ingest.example.com/42");
/// assert!(!format!("{dsn:?}").contains("abc123"));
/// // Only on purpose: the DSN with its public key, as envelope headers carry it.
/// assert_eq!(dsn.public_dsn(), "https://abc123@o1.ingest.example.com/42");
///
/// let err = "https://o1.ingest.example.com/42".parse::<isoscope::Dsn>().unwrap_err();
/// assert!(err.to_string().contains("public key"));
/// ```
///
/// The parser accepts what a URL parser would read as the same URL and nothing else: control
/// characters anywhere, text after an IPv6 address other than `:port`, a host a URL parser
/// would rewrite (`127.1`), `.`/`..` path segments and characters no key can hold are each an
/// [`DsnError`] with its reason.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    scheme: String,
    public_key: String,
    secret_key: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
    project_id: String,
}

/// Where a DSN came from, as its [`DsnError`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DsnOrigin {
    /// `Options::dsn`.
    Options,
    /// An environment variable (`ISOSCOPE_DSN`, `SENTRY_DSN`).
    Env(&'static str),
    /// `HttpTransport::builder`.
    TransportBuilder,
}

impl fmt::Display for DsnOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Options => f.write_str("Options::dsn"),
            Self::Env(var) => write!(f, "the environment variable {var}"),
            Self::TransportBuilder => f.write_str("HttpTransport::builder"),
        }
    }
}

/// Why a DSN could not be used: the reason (which never quotes the key or secret) and, where
/// known, where the DSN came from.
///
/// ```
/// let err = "https://k@[::1]evil.example:99/1".parse::<isoscope::Dsn>().unwrap_err();
/// assert!(err.reason().contains("after the IPv6 address"), "{err}");
/// assert_eq!(err.origin(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnError {
    reason: String,
    origin: Option<DsnOrigin>,
}

impl DsnError {
    /// What is wrong with the DSN.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Where the DSN came from, if the code that parsed it knew.
    pub fn origin(&self) -> Option<DsnOrigin> {
        self.origin
    }

    /// This error, saying that the DSN came from `origin`.
    #[must_use]
    pub(crate) fn with_origin(mut self, origin: DsnOrigin) -> Self {
        self.origin = Some(origin);
        self
    }
}

impl fmt::Display for DsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        match self.origin {
            Some(origin) => write!(f, " (the DSN came from {origin})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for DsnError {}

fn bad(reason: impl Into<String>) -> DsnError {
    DsnError { reason: reason.into(), origin: None }
}

/// Characters a key (or secret) may hold: a URL's unreserved characters and `%` escapes; all of
/// them are valid in an HTTP header value.
fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '%')
}

/// Characters of a path segment before the project id (RFC 3986 `pchar`).
fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.' | '_' | '~' | '%' | '!' | '$' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | ';' | '=' | ':' | '@'
        )
}

/// Characters no URL's host can hold (WHATWG's forbidden host code points), plus `%` and
/// whitespace: a host that needs them is no host a DSN names.
fn forbidden_host_char(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '#' | '/' | ':' | '<' | '>' | '?' | '@' | '[' | '\\' | ']' | '^' | '|' | '%' | '"' | '`' | '{' | '}'
        )
}

/// Most bytes of a DSN: real ones are under 200.
const MAX_LEN: usize = 2048;

impl FromStr for Dsn {
    type Err = DsnError;

    fn from_str(s: &str) -> Result<Self, DsnError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(bad("the DSN is empty"));
        }
        if s.len() > MAX_LEN {
            return Err(bad(format!("the DSN is {} bytes long; at most {MAX_LEN} are accepted", s.len())));
        }
        if let Some(at) = s.find(|c: char| c.is_control()) {
            return Err(bad(format!("the DSN holds a control character at byte {at}")));
        }
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("missing scheme: expected `https://<public key>@<host>/<project id>`"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            if !scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
                return Err(bad("invalid scheme: use http or https"));
            }
            return Err(bad(format!("unsupported scheme `{scheme}`: use http or https")));
        }
        // The authority ends at the first `/`, `?` or `#`, as a URL parser reads it; its
        // userinfo ends at its *last* `@`, so that no part of a key can be taken for the host.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| bad("missing public key: expected `<scheme>://<public key>@<host>/<project id>`"))?;
        let (public_key, secret_key) = match userinfo.split_once(':') {
            Some((k, s)) => (k, Some(s)),
            None => (userinfo, None),
        };
        if public_key.is_empty() {
            return Err(bad("missing public key before `@`"));
        }
        // The reasons below never quote the key or the secret.
        if !public_key.chars().all(key_char) {
            return Err(bad(
                "the public key holds a character a DSN key cannot (letters, digits, `-._~` and %-escapes)",
            ));
        }
        if secret_key.is_some_and(|s| !s.chars().all(key_char)) {
            return Err(bad("the secret holds a character a DSN key cannot (letters, digits, `-._~` and %-escapes)"));
        }
        let secret_key = secret_key.filter(|s| !s.is_empty()).map(str::to_owned);
        let (host, port) = split_host_port(hostport)?;
        let port = port
            .map(|p| match p.parse::<u16>() {
                Ok(0) | Err(_) => Err(bad(format!("invalid port `{p}`: expected a number from 1 to 65535"))),
                Ok(p) => Ok(p),
            })
            .transpose()?;
        let path = rest.split(['?', '#']).next().unwrap_or_default();
        let path =
            path.strip_prefix('/').ok_or_else(|| bad("missing project id: expected `/<project id>` after the host"))?;
        let path = path.trim_end_matches('/');
        let (prefix, project_id) = match path.rsplit_once('/') {
            Some((prefix, id)) => (Some(prefix), id),
            None => (None, path),
        };
        if project_id.is_empty() {
            return Err(bad("missing project id at the end of the path"));
        }
        if !project_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad(format!("invalid project id `{project_id}`: letters, digits, `-` and `_` only")));
        }
        let mut path = String::new();
        for segment in prefix.into_iter().flat_map(|p| p.split('/')) {
            if segment.is_empty() || segment == "." || segment == ".." || !segment.chars().all(path_char) {
                return Err(bad(format!("invalid path segment `{segment}` before the project id")));
            }
            path.push('/');
            path.push_str(segment);
        }
        let dsn = Self {
            scheme,
            public_key: public_key.to_owned(),
            secret_key,
            host,
            port,
            path,
            project_id: project_id.to_owned(),
        };
        dsn.check_url()?;
        Ok(dsn)
    }
}

/// The host (lower-cased, IPv6 in brackets) and the port text, checked.
fn split_host_port(hostport: &str) -> Result<(String, Option<&str>), DsnError> {
    if let Some(v6) = hostport.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(|| bad("unterminated IPv6 address: `]` is missing"))?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad(format!("invalid IPv6 address `[{addr}]`")))?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| {
                bad(format!("unexpected `{after}` after the IPv6 address `[{addr}]`: only `:<port>` may follow it"))
            })?),
        };
        return Ok((format!("[{addr}]"), port));
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    };
    if host.is_empty() {
        return Err(bad("missing host after `@`"));
    }
    if let Some(c) = host.chars().find(|&c| forbidden_host_char(c)) {
        return Err(bad(format!("invalid host `{host}`: a host holding {c:?} is not a valid URL host")));
    }
    if host.split('.').any(str::is_empty) {
        return Err(bad(format!("invalid host `{host}`: a host has no empty labels")));
    }
    // A URL parser reads a host whose last label is a number as an IPv4 address (`127.1` is
    // `127.0.0.1`): accept only the four-number form, so the host is what the URL says.
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .or_else(|| last.strip_prefix("0X"))
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric && host.parse::<Ipv4Addr>().is_err() {
        return Err(bad(format!(
            "invalid host `{host}`: it ends in a number but is not an IPv4 address like 10.0.0.1"
        )));
    }
    Ok((host.to_lowercase(), port))
}

impl Dsn {
    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The public key.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The host (IPv6 addresses in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, if the DSN names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The organization id, from a sentry.io host (`o{id}.ingest.sentry.io`,
    /// `o{id}.ingest.us.sentry.io`): what strict trace continuation compares. Self-hosted
    /// servers' DSNs name none (set [`Options::org_id`](crate::Options::org_id) there).
    ///
    /// ```
    /// let dsn: isoscope::Dsn = "https://key@o1234.ingest.us.sentry.io/5".parse().unwrap();
    /// assert_eq!(dsn.org_id(), Some(1234));
    /// let dsn: isoscope::Dsn = "https://key@sentry.example.com/5".parse().unwrap();
    /// assert_eq!(dsn.org_id(), None);
    /// ```
    pub fn org_id(&self) -> Option<u64> {
        let (first, _) = self.host.split_once('.')?;
        let digits = first.strip_prefix('o')?;
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
    }

    /// The project id.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// `{scheme}://{host}[:port]{path}/api/{project_id}/envelope/`.
    pub fn envelope_url(&self) -> String {
        format!("{}://{}{}/api/{}/envelope/", self.scheme, self.host_port(), self.path, self.project_id)
    }

    /// The DSN with its public key and without its secret, as envelope headers carry it to the
    /// DSN's own server. Holds the key: not for logs.
    pub fn public_dsn(&self) -> String {
        format!("{}://{}@{}{}/{}", self.scheme, self.public_key, self.host_port(), self.path, self.project_id)
    }

    fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// The `X-Sentry-Auth` header value. Holds the key (and the secret, if the DSN has one):
    /// only for the DSN's own server.
    pub fn auth_header(&self) -> String {
        let mut h = format!(
            "Sentry sentry_key={}, sentry_version=7, sentry_client={}/{}",
            self.public_key,
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION")
        );
        if let Some(secret) = &self.secret_key {
            h.push_str(", sentry_secret=");
            h.push_str(secret);
        }
        h
    }

    /// With a URL parser at hand (the `reqwest` feature): the envelope URL parses, to the same
    /// host. What only IDNA can tell (an `xn--` label that decodes to nothing valid) is found
    /// here.
    #[cfg(feature = "reqwest")]
    fn check_url(&self) -> Result<(), DsnError> {
        let url = reqwest::Url::parse(&self.envelope_url())
            .map_err(|e| bad(format!("the host `{}` is not a valid URL host: {e}", self.host)))?;
        match url.host_str() {
            // IPv6 was parsed by std already (which writes IPv4-mapped ones differently); a
            // non-ASCII host becomes its punycode form.
            Some(h) if !self.host.is_ascii() || self.host.starts_with('[') || h == self.host => Ok(()),
            Some(h) => Err(bad(format!("invalid host `{}`: a URL parser reads it as `{h}`", self.host))),
            None => Err(bad(format!("the host `{}` is not a valid URL host", self.host))),
        }
    }

    #[cfg(not(feature = "reqwest"))]
    #[allow(clippy::unnecessary_wraps, clippy::unused_self)] // the same shape as with a URL parser
    fn check_url(&self) -> Result<(), DsnError> {
        Ok(())
    }
}

impl fmt::Display for Dsn {
    /// For people: the DSN without its key or secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://<redacted>@{}{}/{}", self.scheme, self.host_port(), self.path, self.project_id)
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dsn")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        s.parse::<Dsn>().unwrap_err().to_string()
    }

    #[test]
    fn parses_the_usual_shapes() {
        let d: Dsn = "https://key@o0.ingest.sentry.io/123".parse().unwrap();
        assert_eq!(d.envelope_url(), "https://o0.ingest.sentry.io/api/123/envelope/");
        let d: Dsn = "http://abc@127.0.0.1:8765/1".parse().unwrap();
        assert_eq!(d.envelope_url(), "http://127.0.0.1:8765/api/1/envelope/");
        assert_eq!(d.public_dsn(), "http://abc@127.0.0.1:8765/1");
        assert_eq!(d.to_string(), "http://<redacted>@127.0.0.1:8765/1");
        let d: Dsn = "https://key:secret@Host.Example/sub/path/7/".parse().unwrap();
        assert_eq!(d.envelope_url(), "https://host.example/sub/path/api/7/envelope/");
        assert!(d.auth_header().contains("sentry_secret=secret"));
        for shown in [format!("{d:?}"), d.to_string(), d.public_dsn()] {
            assert!(!shown.contains("secret"), "{shown}");
        }
        let d: Dsn = "http://k@[::1]:9000/5".parse().unwrap();
        assert_eq!(d.envelope_url(), "http://[::1]:9000/api/5/envelope/");
        let d: Dsn = "http://k@[0:0::1]/5?x=1#f".parse().unwrap();
        assert_eq!(d.host(), "[::1]");
    }

    #[test]
    fn each_malformation_has_a_clear_error() {
        assert!(err("").contains("empty"));
        assert!(err("key@host/1").contains("missing scheme"));
        assert!(err("ftp://key@host/1").contains("unsupported scheme `ftp`"));
        assert!(err("https://host/1").contains("missing public key"));
        assert!(err("https://@host/1").contains("missing public key"));
        assert!(err("https://key@host").contains("missing project id"));
        assert!(err("https://key@host/").contains("missing project id"));
        assert!(err("https://key@host:99999/1").contains("invalid port `99999`"));
        assert!(err("https://key@host:abc/1").contains("invalid port `abc`"));
        assert!(err("https://key@host:0/1").contains("invalid port `0`"));
        assert!(err("https://key@/1").contains("missing host"));
        assert!(err("https://key@host/a b").contains("invalid project id"));
        assert!(err("https://key@bad host/1").contains("invalid host `bad host`: a host holding ' '"));
        assert!(err("https://key@a|b/1").contains("invalid host `a|b`"));
        assert!(err("https://key@a:b:9/1").contains("invalid host `a:b`"));
        assert!(err("https://key@a..b/1").contains("empty labels"));
        assert!(err("https://key@host/../1").contains("invalid path segment `..`"));
        assert!(err("https://key@host//1").contains("invalid path segment ``"));
    }

    #[test]
    fn what_a_url_parser_would_read_otherwise_is_rejected() {
        assert!(err("http://k@[::1]evil.example:99/1").contains("only `:<port>` may follow it"));
        assert!(err("http://k@[::1/1").contains("unterminated IPv6"));
        assert!(err("http://k@[not-v6]/1").contains("invalid IPv6 address"));
        assert!(err("http://k\r\n@host/1").contains("control character at byte 8"));
        assert!(err("http://k\0@host/1").contains("control character"));
        assert!(err("http://k@ho\tst/1").contains("control character"));
        assert!(err("http://k@127.1/1").contains("not an IPv4 address"));
        assert!(err("http://k@0x7f.1/1").contains("not an IPv4 address"));
        assert!(err("http://k@1.2.3.256/1").contains("not an IPv4 address"));
        assert!(err("http://k@h%41st/1").contains("a host holding '%'"));
        assert!(err("http://k y@host/1").contains("public key holds a character"));
        assert!(err(&format!("http://k@host/{}", "1".repeat(3000))).contains("at most 2048"));
    }

    #[test]
    fn no_reason_quotes_the_key_or_the_secret() {
        for dsn in [
            "https://PUBKEY:ssSECRET@host@x/1",
            "https://PUBKEY:ssSECRET@bad host/1",
            "https://PUBKEY:ss SECRET@host/1",
            "https://PUB KEY@host/1",
            "https://PUBKEY:ssSECRET@[::1]x/1",
            "https://PUBKEY:ssSECRET@host:port/1",
            "https://PUBKEY:ssSECRET@host/x y/1",
            "https://PUBKEY:ssSECRET/@host/1",
            "ftp://PUBKEY:ssSECRET@host/1",
        ] {
            let e = err(dsn);
            assert!(!e.contains("SECRET") && !e.contains("KEY"), "{dsn}: {e}");
        }
    }

    #[test]
    fn the_origin_is_named() {
        let e = "https://host/1".parse::<Dsn>().unwrap_err().with_origin(DsnOrigin::Env("SENTRY_DSN"));
        assert_eq!(e.origin(), Some(DsnOrigin::Env("SENTRY_DSN")));
        assert!(e.to_string().ends_with("(the DSN came from the environment variable SENTRY_DSN)"), "{e}");
    }

    #[test]
    fn auth_header_has_version_client_and_key() {
        let d: Dsn = "https://pub@host/1".parse().unwrap();
        assert_eq!(
            d.auth_header(),
            format!("Sentry sentry_key=pub, sentry_version=7, sentry_client=isoscope/{}", env!("CARGO_PKG_VERSION"))
        );
    }
}
