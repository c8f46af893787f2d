//! [`Dsn`]: where and how to send events, parsed with an error that says what is wrong.

use std::fmt;
use std::str::FromStr;

/// A parsed DSN: `{scheme}://{public_key}[:{secret}]@{host}[:{port}]/{path/}{project_id}`.
///
/// ```
/// let dsn: isoscope::Dsn = "https://abc123@o1.ingest.example.com/42".parse().unwrap();
/// assert_eq!(dsn.project_id(), "42");
/// assert_eq!(dsn.envelope_url(), "https://o1.ingest.example.com/api/42/envelope/");
///
/// let err = "https://o1.ingest.example.com/42".parse::<isoscope::Dsn>().unwrap_err();
/// assert!(err.to_string().contains("public key"));
/// ```
///
/// The secret (a deprecated DSN part) is never shown by `Debug` or `Display`.
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

/// Why a DSN could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnError(String);

impl fmt::Display for DsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DsnError {}

fn bad(msg: impl Into<String>) -> DsnError {
    DsnError(msg.into())
}

impl FromStr for Dsn {
    type Err = DsnError;

    fn from_str(s: &str) -> Result<Self, DsnError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(bad("the DSN is empty"));
        }
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("missing scheme: expected `https://<public key>@<host>/<project id>`"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad(format!("unsupported scheme `{scheme}`: use http or https")));
        }
        let (userinfo, rest) = rest
            .split_once('@')
            .ok_or_else(|| bad("missing public key: expected `<scheme>://<public key>@<host>/<project id>`"))?;
        let (public_key, secret_key) = match userinfo.split_once(':') {
            Some((k, s)) => (k, (!s.is_empty()).then(|| s.to_owned())),
            None => (userinfo, None),
        };
        if public_key.is_empty() {
            return Err(bad("missing public key before `@`"));
        }
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) =
            rest.split_once('/').ok_or_else(|| bad("missing project id: expected `/<project id>` after the host"))?;
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unterminated IPv6 host"))?;
            (format!("[{host}]"), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(bad("missing host after `@`"));
        }
        // The characters no URL's host can hold (WHATWG's forbidden host code points, and control
        // characters, which a URL parser would silently drop). An IPv6 host (in brackets) and
        // what only IDNA can tell (`xn--`) are left to the transport's URL parser.
        let forbidden = |c: char| {
            c.is_control() || matches!(c, ' ' | '#' | '/' | ':' | '<' | '>' | '?' | '@' | '[' | '\\' | ']' | '^' | '|')
        };
        if !host.starts_with('[') {
            if let Some(c) = host.chars().find(|&c| forbidden(c)) {
                return Err(bad(format!("invalid host `{host}`: a host holding {c:?} is not a valid URL host")));
            }
        }
        let port = port
            .map(|p| {
                p.parse::<u16>().map_err(|_| bad(format!("invalid port `{p}`: expected a number from 1 to 65535")))
            })
            .transpose()?;
        if port == Some(0) {
            return Err(bad("invalid port `0`: expected a number from 1 to 65535"));
        }
        let path = path.trim_end_matches('/');
        let (prefix, project_id) = match path.rsplit_once('/') {
            Some((prefix, id)) => (format!("/{prefix}"), id),
            None => (String::new(), path),
        };
        if project_id.is_empty() {
            return Err(bad("missing project id at the end of the path"));
        }
        if !project_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad(format!("invalid project id `{project_id}`")));
        }
        Ok(Self {
            scheme,
            public_key: public_key.to_owned(),
            secret_key,
            host,
            port,
            path: prefix,
            project_id: project_id.to_owned(),
        })
    }
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

    /// The project id.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    fn origin(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }

    /// `{scheme}://{host}[:port]{path}/api/{project_id}/envelope/`.
    pub fn envelope_url(&self) -> String {
        format!("{}{}/api/{}/envelope/", self.origin(), self.path, self.project_id)
    }

    /// The `X-Sentry-Auth` header value.
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
}

impl fmt::Display for Dsn {
    /// The DSN without its secret, as sent in envelope headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.origin();
        let (scheme, host) = origin.split_once("://").unwrap_or(("https", &origin));
        write!(f, "{scheme}://{}@{host}{}/{}", self.public_key, self.path, self.project_id)
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dsn")
            .field("url", &self.to_string())
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<redacted>"))
            .finish()
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
        assert_eq!(d.to_string(), "http://abc@127.0.0.1:8765/1");
        let d: Dsn = "https://key:secret@host.example/sub/path/7/".parse().unwrap();
        assert_eq!(d.envelope_url(), "https://host.example/sub/path/api/7/envelope/");
        assert!(d.auth_header().contains("sentry_secret=secret"));
        assert!(!format!("{d:?}").contains("secret\""));
        assert!(!format!("{d:?} {d}").contains(":secret"));
        let d: Dsn = "http://k@[::1]:9000/5".parse().unwrap();
        assert_eq!(d.envelope_url(), "http://[::1]:9000/api/5/envelope/");
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
