//! Secrets inside text: `key=value` pairs (query strings, path parameters, header values) and
//! the userinfo of URLs, matched by their key with the same rules as every other key.

use std::borrow::Cow;

use super::{Scrubber, FILTERED};

/// Where a pair ends in a query string.
pub(crate) fn query_separator(c: char) -> bool {
    matches!(c, '&' | ';')
}

/// Where a pair ends in free text such as a header value (a URL's query, its path parameters,
/// `a=1, token=2`, `Bearer; session=x`).
fn text_separator(c: char) -> bool {
    matches!(c, '?' | '&' | ';' | ',' | '/' | '#') || c.is_whitespace()
}

/// `text` with the value of every `key=value` pair whose key is secret replaced by
/// [`FILTERED`]; pairs end at `separator`. The key is percent-decoded before it is matched
/// (`p%61ssword`). Borrowed when nothing changed (the usual case).
pub(crate) fn filter_pairs<'a>(text: &'a str, separator: fn(char) -> bool, rules: &Scrubber) -> Cow<'a, str> {
    if !text.contains('=') {
        return Cow::Borrowed(text);
    }
    let mut out: Option<String> = None;
    let mut start = 0;
    loop {
        let end = text[start..].find(separator).map_or(text.len(), |i| start + i);
        let next = end + text[end..].chars().next().map_or(0, char::len_utf8); // past the separator
        let secret_key = text[start..end]
            .split_once('=')
            .filter(|(key, value)| {
                !value.is_empty() && *value != FILTERED && rules.is_secret_key(&crate::util::percent_decode(key.trim()))
            })
            .map(|(key, _)| key);
        match (secret_key, &mut out) {
            (Some(key), out) => {
                let out = out.get_or_insert_with(|| text[..start].to_owned());
                out.push_str(key);
                out.push('=');
                out.push_str(FILTERED);
                out.push_str(&text[end..next]);
            }
            (None, Some(out)) => out.push_str(&text[start..next]),
            (None, None) => {}
        }
        if next >= text.len() {
            break;
        }
        start = next;
    }
    out.map_or(Cow::Borrowed(text), Cow::Owned)
}

/// Free text (a header value, a string under an ordinary key) with the userinfo of any URL in
/// it (`scheme://user:pass@host`) and the values of secret pairs (`?token=`, `;password=`,
/// `session=`) filtered. Borrowed when nothing changed.
pub(crate) fn filter_text<'a>(text: &'a str, rules: &Scrubber) -> Cow<'a, str> {
    let text = filter_userinfo(text);
    match filter_pairs(&text, text_separator, rules) {
        Cow::Borrowed(_) => text,
        Cow::Owned(filtered) => Cow::Owned(filtered),
    }
}

/// Whether [`filter_text`] could change `text` (a cheap first look).
pub(crate) fn may_hold_secret(text: &str) -> bool {
    text.contains('=') || text.contains('@')
}

/// The userinfo of every `scheme://userinfo@host` in `text` replaced by [`FILTERED`].
fn filter_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let authority_end =
            after.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str(FILTERED);
                rest = &after[at..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Scrubber {
        Scrubber::default()
    }

    #[test]
    fn pairs_are_split_on_both_separators_and_keys_decoded() {
        let f = |q| filter_pairs(q, query_separator, &rules()).into_owned();
        assert_eq!(f("Password=x&page=2&API_KEY=y&flag"), "Password=[Filtered]&page=2&API_KEY=[Filtered]&flag");
        assert_eq!(f("a=1;token=x;b=2"), "a=1;token=[Filtered];b=2");
        assert_eq!(
            f("p%61ssword=x&api%5Fkey=y&api-key=z"),
            "p%61ssword=[Filtered]&api%5Fkey=[Filtered]&api-key=[Filtered]"
        );
        assert_eq!(f("token="), "token=");
        assert_eq!(f("é=1&token=é&z"), "é=1&token=[Filtered]&z");
        assert!(matches!(filter_pairs("a=1&b=2", query_separator, &rules()), Cow::Borrowed(_)));
    }

    #[test]
    fn path_parameters_are_pairs_too() {
        let f = |p| filter_text(p, &rules()).into_owned();
        assert_eq!(f("/a;password=hunter2/b;x=1"), "/a;password=[Filtered]/b;x=1");
    }

    #[test]
    fn urls_inside_text_lose_userinfo_and_secret_values() {
        let f = |t| filter_text(t, &rules()).into_owned();
        assert_eq!(
            f("https://shop.example/login?password=p1&next=/"),
            "https://shop.example/login?password=[Filtered]&next=/"
        );
        assert_eq!(f("/reset?token=t1"), "/reset?token=[Filtered]");
        assert_eq!(
            f("https://u:pw@db.example:5432/x https://other"),
            "https://[Filtered]@db.example:5432/x https://other"
        );
        assert_eq!(f("a=1, session=s1"), "a=1, session=[Filtered]");
        assert_eq!(f("text/html;q=0.9"), "text/html;q=0.9");
        assert!(matches!(filter_text("no secrets here", &rules()), Cow::Borrowed(_)));
    }
}
