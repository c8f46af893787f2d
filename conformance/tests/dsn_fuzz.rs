//! The DSN parser against generated DSNs: random bytes, near-valid forms (one edit away from a
//! valid DSN), IPv6 hosts, unicode, percent-encoding and huge lengths. It never panics, and
//! every DSN it accepts builds its envelope URL and auth header, to the same host, without
//! showing its key in `Display` or `Debug`.
//!
//! `cargo test` runs a bounded number of cases; the full million runs with
//! `cargo test --release --test dsn_fuzz -- --ignored`.

use isoscope::Dsn;

/// A small deterministic generator (xorshift64*): the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const VALID: &[&str] = &[
    "https://0123456789abcdef@o1.ingest.sentry.io/42",
    "http://key@127.0.0.1:8000/1",
    "https://key:secret@sentry.example.com/sub/path/7/",
    "http://k@[::1]:9000/5",
    "https://k@[2001:db8::1]/5",
    "http://k@localhost:1/proj-1",
    "https://k@bücher.example/3",
];

/// Pieces near-valid DSNs are made of.
const PIECES: &[&str] = &[
    "://",
    "@",
    ":",
    "/",
    "?",
    "#",
    "[",
    "]",
    "::1",
    "%",
    "%41",
    "%zz",
    "..",
    ".",
    " ",
    "\t",
    "\r\n",
    "\0",
    "é",
    "ü",
    "\u{202e}",
    "xn--",
    "xn--a",
    "0x7f",
    "127.1",
    "1.2.3.256",
    "65536",
    "0",
    "-",
    "_",
    "~",
    "|",
    "^",
    "\\",
    "\"",
    "'",
    "`",
    "{",
    "}",
    "<",
    ">",
    "=",
    ",",
    ";",
    "+",
    "*",
    "$",
    "!",
    "&",
    "(",
    ")",
    "key",
    "host",
    "1",
    "https",
    "HTTP",
    "ftp",
    "[::ffff:1.2.3.4]",
    "[fe80::1%25eth0]",
    "😀",
    "\u{ffff}",
    "\u{feff}",
];

fn case(rng: &mut Rng) -> String {
    match rng.below(8) {
        // Random bytes, read as text.
        0 => {
            let len = rng.below(80);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        // Random printable ASCII.
        1 => (0..rng.below(80)).map(|_| (32 + rng.below(95) as u8) as char).collect(),
        // Pieces glued together.
        2 => (0..rng.below(12)).map(|_| rng.pick(PIECES)).collect(),
        // A huge DSN.
        3 => {
            let base = rng.pick(VALID);
            let filler = rng.pick(&["a", "é", "/", "1", "%41"]).repeat(1 + rng.below(5000));
            let at = rng.below(base.len());
            let at = (0..=at).rev().find(|&i| base.is_char_boundary(i)).unwrap_or(0);
            format!("{}{filler}{}", &base[..at], &base[at..])
        }
        // A valid DSN with one to three edits: insert, delete or replace near anywhere.
        _ => {
            let mut s: Vec<char> = rng.pick(VALID).chars().collect();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(s.len() + 1);
                let piece: Vec<char> = rng.pick(PIECES).chars().collect();
                match rng.below(3) {
                    0 => {
                        s.splice(at..at, piece);
                    }
                    1 if at < s.len() => {
                        s.remove(at);
                    }
                    _ if at < s.len() => {
                        s.splice(at..at + 1, piece);
                    }
                    _ => s.extend(piece),
                }
            }
            s.into_iter().collect()
        }
    }
}

/// Parses `n` generated DSNs; returns how many were accepted.
fn run(n: usize, seed: u64) -> usize {
    let mut rng = Rng(seed);
    let mut accepted = 0;
    for i in 0..n {
        let text = case(&mut rng);
        let Ok(dsn) = text.parse::<Dsn>() else { continue };
        accepted += 1;
        let url = reqwest::Url::parse(&dsn.envelope_url())
            .unwrap_or_else(|e| panic!("case {i}: {text:?} parsed, but its envelope URL does not: {e}"));
        assert!(url.host_str().is_some(), "case {i}: {text:?}");
        if dsn.host().is_ascii() && !dsn.host().starts_with('[') {
            assert_eq!(url.host_str(), Some(dsn.host()), "case {i}: {text:?}");
        }
        assert!(
            reqwest::header::HeaderValue::from_str(&dsn.auth_header()).is_ok(),
            "case {i}: {text:?}: its auth header is no valid header value"
        );
        let key = dsn.public_key();
        // What `Display` and `Debug` show besides the key's absence: skip keys that are part of it.
        let port = dsn.port().map(|p| p.to_string()).unwrap_or_default();
        let envelope_url = dsn.envelope_url();
        let shown_parts = [
            url.as_str(),
            envelope_url.as_str(),
            &port,
            "Dsn { scheme: host: port: Some None project_id: .. } <redacted>",
        ];
        if key.len() >= 3 && !shown_parts.iter().any(|part| part.contains(key)) {
            for shown in [dsn.to_string(), format!("{dsn:?}")] {
                assert!(!shown.contains(key), "case {i}: {text:?} shows its key: {shown}");
            }
        }
    }
    accepted
}

#[test]
fn generated_dsns_never_panic_and_every_accepted_one_builds() {
    let accepted = run(200_000, 0x1505_c0de);
    // The generator makes valid DSNs too (edits that change nothing that matters).
    assert!(accepted > 2_000, "only {accepted} accepted: the generator lost its valid cases");
}

#[test]
#[ignore = "the full million: cargo test --release --test dsn_fuzz -- --ignored"]
fn a_million_generated_dsns() {
    let started = std::time::Instant::now();
    let accepted = run(1_000_000, 0x5eed_0001);
    eprintln!("1,000,000 generated DSNs: {accepted} accepted, 0 panics, in {:.1?}", started.elapsed());
}
