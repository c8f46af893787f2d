//! The incoming trace headers, parsed: `sentry-trace` (`{trace_id}-{span_id}[-{sampled}]`),
//! W3C `traceparent` (`{version}-{trace_id}-{parent_id}-{flags}`), and the `sentry-*` entries
//! of `baggage` (Sentry's dynamic sampling context). Anything malformed is `Err` (counted by
//! the caller and ignored), never a panic; input is bounded before it is looked at.

use super::{SpanId, TraceId};

/// Longest `baggage` value looked at (W3C's limit is 8,192 bytes).
const MAX_BAGGAGE: usize = 8192;
/// Most `sentry-*` baggage entries kept.
const MAX_SENTRY_ENTRIES: usize = 32;

/// A parent span from another service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parent {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) sampled: Option<bool>,
}

/// The header was there but is not a valid one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end]
}

/// `sentry-trace: 4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1`.
pub(crate) fn sentry_trace(value: &[u8]) -> Result<Parent, Malformed> {
    let v = trim(value);
    if v.len() > 51 {
        return Err(Malformed);
    }
    let mut parts = v.split(|&b| b == b'-');
    let trace_id = parts.next().and_then(TraceId::from_hex).ok_or(Malformed)?;
    let span_id = parts.next().and_then(SpanId::from_hex).ok_or(Malformed)?;
    let sampled = match parts.next() {
        None => None,
        Some(b"1") => Some(true),
        Some(b"0") => Some(false),
        Some(_) => return Err(Malformed),
    };
    if parts.next().is_some() {
        return Err(Malformed);
    }
    Ok(Parent { trace_id, span_id, sampled })
}

/// `traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`: version 00 is
/// exactly four fields; a later version may add fields after the fourth; `ff` is invalid.
pub(crate) fn traceparent(value: &[u8]) -> Result<Parent, Malformed> {
    let v = trim(value);
    if v.len() < 55 || v.len() > 512 {
        return Err(Malformed);
    }
    let mut parts = v.split(|&b| b == b'-');
    let version = parts.next().ok_or(Malformed)?;
    let is_hex = |s: &[u8]| s.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    if version.len() != 2 || !is_hex(version) || version == b"ff" {
        return Err(Malformed);
    }
    let trace = parts.next().filter(|p| is_hex(p)).ok_or(Malformed)?;
    let parent = parts.next().filter(|p| is_hex(p)).ok_or(Malformed)?;
    let flags = parts.next().filter(|p| p.len() == 2 && is_hex(p)).ok_or(Malformed)?;
    if version == b"00" && parts.next().is_some() {
        return Err(Malformed);
    }
    let trace_id = TraceId::from_hex(trace).ok_or(Malformed)?;
    let span_id = SpanId::from_hex(parent).ok_or(Malformed)?;
    let sampled =
        u8::from_str_radix(std::str::from_utf8(flags).map_err(|_| Malformed)?, 16).map_err(|_| Malformed)? & 1 == 1;
    Ok(Parent { trace_id, span_id, sampled: Some(sampled) })
}

/// The `sentry-*` entries of a `baggage` header, joined with `,` (`None` if it has none).
/// Other vendors' entries are not ours to pass on as Sentry's; a value longer than 8 KiB or
/// not text is malformed.
pub(crate) fn sentry_baggage(value: &[u8]) -> Result<Option<String>, Malformed> {
    if value.len() > MAX_BAGGAGE {
        return Err(Malformed);
    }
    let text = std::str::from_utf8(value).map_err(|_| Malformed)?;
    let entries: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|e| e.starts_with("sentry-") && e.contains('='))
        .take(MAX_SENTRY_ENTRIES)
        .collect();
    Ok((!entries.is_empty()).then(|| entries.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn sentry_trace_forms() {
        let p = sentry_trace(format!("{TRACE}-{SPAN}-1").as_bytes()).unwrap();
        assert_eq!((p.trace_id.to_string(), p.span_id.to_string(), p.sampled), (TRACE.into(), SPAN.into(), Some(true)));
        assert_eq!(sentry_trace(format!(" {TRACE}-{SPAN}-0 ").as_bytes()).unwrap().sampled, Some(false));
        assert_eq!(sentry_trace(format!("{TRACE}-{SPAN}").as_bytes()).unwrap().sampled, None);
        assert!(sentry_trace(format!("{}-{SPAN}", TRACE.to_uppercase()).as_bytes()).is_ok());
        for bad in [
            String::new(),
            TRACE.to_owned(),
            format!("{TRACE}-{SPAN}-2"),
            format!("{TRACE}-{SPAN}-1-x"),
            format!("{}-{SPAN}", &TRACE[1..]),
            format!("{TRACE}-{}", &SPAN[1..]),
            format!("{}-{SPAN}", "0".repeat(32)),
            format!("{TRACE}-{}", "0".repeat(16)),
            format!("{}g-{SPAN}", &TRACE[1..]),
            "x".repeat(10_240),
        ] {
            assert_eq!(sentry_trace(bad.as_bytes()), Err(Malformed), "{bad:.60}");
        }
    }

    #[test]
    fn traceparent_forms() {
        let p = traceparent(format!("00-{TRACE}-{SPAN}-01").as_bytes()).unwrap();
        assert_eq!((p.trace_id.to_string(), p.span_id.to_string(), p.sampled), (TRACE.into(), SPAN.into(), Some(true)));
        assert_eq!(traceparent(format!("00-{TRACE}-{SPAN}-00").as_bytes()).unwrap().sampled, Some(false));
        assert!(
            traceparent(format!("01-{TRACE}-{SPAN}-01-future").as_bytes()).is_ok(),
            "later versions may add fields"
        );
        for bad in [
            format!("ff-{TRACE}-{SPAN}-01"),
            format!("00-{TRACE}-{SPAN}-01-extra"),
            format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
            format!("00-{}-{SPAN}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{TRACE}-{SPAN}-1"),
            format!("0-{TRACE}-{SPAN}-01"),
            format!("00-{TRACE}{SPAN}-01"),
            "x".repeat(10_240),
        ] {
            assert_eq!(traceparent(bad.as_bytes()), Err(Malformed), "{bad:.60}");
        }
    }

    #[test]
    fn baggage_keeps_sentry_entries_only() {
        let b = sentry_baggage(b"other=1, sentry-trace_id=abc,sentry-sample_rate=0.5 ,vendor=x").unwrap();
        assert_eq!(b.as_deref(), Some("sentry-trace_id=abc,sentry-sample_rate=0.5"));
        assert_eq!(sentry_baggage(b"other=1").unwrap(), None);
        assert_eq!(sentry_baggage(&[0xff, 0xfe]), Err(Malformed));
        assert_eq!(sentry_baggage("sentry-a=1,".repeat(2000).as_bytes()), Err(Malformed));
        let many = (0..100).map(|i| format!("sentry-k{i}=v")).collect::<Vec<_>>().join(",");
        assert_eq!(sentry_baggage(many.as_bytes()).unwrap().unwrap().matches("sentry-").count(), 32);
    }
}
