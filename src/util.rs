//! Small private helpers: random ids without an extra dependency, timestamps, and a background
//! thread's CPU priority.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    // Seeded once per thread from std's randomly keyed SipHash (which reads OS randomness),
    // then advanced with splitmix64. Not cryptographic: ids only need to be unique and
    // unpredictable enough to never collide in practice.
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(now_f64().to_bits());
    h.write_usize(&h as *const _ as usize);
    h.finish() | 1
}

/// Shards per sharded counter. Threads pick a shard round-robin on first use, so on a few-core
/// machine each worker thread mostly writes a cache line of its own: counting on every request
/// must not bounce one line between cores.
pub(crate) const SHARDS: usize = 8;

/// The calling thread's shard of a sharded counter (see [`SHARDS`]).
pub(crate) fn shard() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD
        .try_with(|s| {
            if s.get() == usize::MAX {
                s.set(NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS);
            }
            s.get()
        })
        .unwrap_or(0)
}

/// A fresh pseudo-random `u64`.
pub(crate) fn random_u64() -> u64 {
    let step = |s: u64| {
        let s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (s, z ^ (z >> 31))
    };
    RNG.try_with(|c| {
        let (s, z) = step(c.get());
        c.set(s);
        z
    })
    // Thread-locals are gone during thread teardown: fall back to a fresh seed.
    .unwrap_or_else(|_| step(seed()).1)
}

/// A uniformly distributed `f64` in `[0, 1)`.
pub(crate) fn random_f64() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Seconds since the Unix epoch, as Sentry's float timestamps.
pub(crate) fn now_f64() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `text` with its `%XX` escapes decoded (invalid ones kept as they are; invalid UTF-8
/// replaced). Borrowed when it has none (the usual case).
pub(crate) fn percent_decode(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('%') {
        return std::borrow::Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8); // two hex digits: at most 255
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Truncates `s` to at most `max` characters, on a char boundary, marking the cut with `…`.
pub(crate) fn truncate_chars(s: &mut String, max: usize) {
    if s.len() <= max {
        return; // byte length bounds char count
    }
    if let Some((idx, _)) = s.char_indices().nth(max.saturating_sub(1)) {
        s.truncate(idx);
        s.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("shop%401.0%20beta%2c%zz%4"), "shop@1.0 beta,%zz%4");
        assert!(matches!(percent_decode("plain"), std::borrow::Cow::Borrowed("plain")));
    }

    #[test]
    fn random_u64_differs() {
        assert_ne!(random_u64(), random_u64());
    }

    #[test]
    fn random_f64_is_in_unit_interval() {
        for _ in 0..10_000 {
            let x = random_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let mut s = "ééééé".to_string();
        truncate_chars(&mut s, 3);
        assert_eq!(s, "éé…");
        let mut short = "abc".to_string();
        truncate_chars(&mut short, 3);
        assert_eq!(short, "abc");
    }
}

/// RFC 3339 UTC timestamp (`2026-11-25T08:01:02.345Z`) for float epoch seconds.
pub(crate) fn rfc3339(epoch: f64) -> String {
    let millis_total = (epoch.max(0.0) * 1000.0) as u64;
    let (secs, millis) = (millis_total / 1000, millis_total % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn rfc3339_known_values() {
        assert_eq!(super::rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(1_595_256_674.296), "2020-07-20T14:51:14.296Z");
        assert_eq!(super::rfc3339(951_782_400.0), "2000-02-29T00:00:00.000Z");
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the `Retry-After` date format.
pub(crate) fn parse_http_date(s: &str) -> Option<std::time::SystemTime> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: i64 = it.next()?.parse().ok()?;
    let month_name = it.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as i64 + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || it.next()? != "GMT" {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Formats an IMF-fixdate (for tests and test servers).
#[cfg(test)]
pub(crate) fn http_date(t: std::time::SystemTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86_400;
    let iso = rfc3339(secs as f64); // YYYY-MM-DDTHH:MM:SS.mmmZ
    let (y, mo, d) = (&iso[0..4], iso[5..7].parse::<usize>().unwrap_or(1), &iso[8..10]);
    format!("{}, {d} {} {y} {} GMT", WEEKDAYS[(days % 7) as usize], MONTHS[mo - 1], &iso[11..19])
}

/// Lowers the calling thread's CPU priority to nice 10, or nice 19 with `lowest` (see
/// `transport::CpuPriority`). A platform that refuses leaves it as it was.
pub(crate) fn lower_thread_priority(lowest: bool) {
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    let priority = if lowest {
        ThreadPriority::Min
    } else {
        // thread-priority's cross-platform scale maps 0..=99 onto nice 20..=-20 for normal
        // threads on Linux: 22 is nice 10.
        ThreadPriorityValue::try_from(22u8).map_or(ThreadPriority::Min, ThreadPriority::Crossplatform)
    };
    let _ = thread_priority::set_current_thread_priority(priority);
}
