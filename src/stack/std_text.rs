//! A std `Backtrace` (the one an `anyhow::Error` carries) as frames, parsed from its `Debug`
//! form: `Backtrace [{ fn: "a::b", file: "./src/b.rs", line: 3 }, ...]`, innermost first. std
//! has no stable frame API; this text form has been the same since `Backtrace` was stabilized
//! (Rust 1.65), and anything it does not recognise is skipped, never a panic.

use crate::event::Stacktrace;

use super::{finish, naming, InApp};

/// The frames of a std backtrace's `Debug` text, oldest first, or `None` if it has none (not
/// captured: `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE` unset, or unsupported).
pub(crate) fn from_std_text(text: &str, rules: &InApp) -> Option<Stacktrace> {
    let mut frames = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{ fn: ") {
        rest = &rest[start + "{ fn: ".len()..];
        let (function, after) = quoted(rest, &[", file: ", " }"]);
        rest = after;
        let mut path = None;
        if let Some(after_file) = rest.strip_prefix(", file: ") {
            let (file, after) = quoted(after_file, &[", line: ", " }"]);
            path = file;
            rest = after;
        }
        let lineno = number_after(rest, ", line: ");
        let colno = number_after(rest, ", column: ");
        frames.push(naming::frame(function, path, lineno, colno));
        if frames.len() >= super::MAX_FRAMES {
            break;
        }
    }
    if frames.is_empty() {
        return None;
    }
    Some(Stacktrace::new(finish(frames, rules)))
}

/// A `"..."` value ending right before one of `ends` (names and paths may hold quotes, but not
/// a quote followed by one of the separators), and the text after it.
fn quoted<'a>(text: &'a str, ends: &[&str]) -> (Option<String>, &'a str) {
    let Some(body) = text.strip_prefix('"') else {
        // `fn: <unknown>`: skip to the next separator.
        let cut = ends.iter().filter_map(|e| text.find(e)).min().unwrap_or(text.len());
        return (None, &text[cut..]);
    };
    let mut from = 0;
    while let Some(q) = body[from..].find('"') {
        let at = from + q;
        if ends.iter().any(|e| body[at + 1..].starts_with(e)) {
            return (Some(body[..at].to_owned()), &body[at + 1..]);
        }
        from = at + 1;
    }
    (None, "")
}

/// The number right after `label`, if the entry (up to its ` }`) has that label.
fn number_after(entry: &str, label: &str) -> Option<u32> {
    let entry = &entry[..entry.find(" }").unwrap_or(entry.len())];
    let digits = entry.split_once(label)?.1;
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_std_debug_text() {
        let text = r#"Backtrace [{ fn: "anyhow::error::<impl anyhow::Error>::msg", file: "/x/anyhow/src/error.rs", line: 83 }, { fn: "myapp::load::{{closure}}", file: "./src/load.rs", line: 12, column: 9 }, { fn: <unknown> }, { fn: "myapp::main", file: "./src/main.rs", line: 3 }]"#;
        let trace = from_std_text(text, &InApp::default()).unwrap();
        let names: Vec<_> = trace.frames.iter().map(|f| f.function.as_deref()).collect();
        assert_eq!(names, [Some("myapp::main"), None, Some("myapp::load::{{closure}}")]);
        let load = &trace.frames[2];
        assert_eq!((load.filename.as_deref(), load.lineno, load.colno), (Some("load.rs"), Some(12), Some(9)));
        assert_eq!(load.in_app, Some(true));
        assert_eq!(trace.frames[1].in_app, Some(false));
    }

    #[test]
    fn garbage_and_disabled_give_nothing() {
        assert!(from_std_text("disabled backtrace", &InApp::default()).is_none());
        assert!(from_std_text("{ fn: \"unterminated", &InApp::default()).is_none_or(|t| t.frames.len() <= 1));
        let _ = from_std_text("{ fn: { fn: \"\", file: ", &InApp::default());
    }
}
