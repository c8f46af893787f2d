//! Names in frames: a demangled symbol's module and crate, file name from path, and which
//! frames are the capture machinery (trimmed from a stack's innermost end).

use std::borrow::Cow;

use crate::event::Frame;

/// isoscope's own sources, as paths in its debug info name them.
const OWN_SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");

/// A frame from what a symbolizer (or a std backtrace's text) knows of it.
pub(super) fn frame(function: Option<String>, path: Option<String>, lineno: Option<u32>, colno: Option<u32>) -> Frame {
    let function = function.map(|f| strip_hash(&f).to_owned());
    let module = function.as_deref().and_then(module_of);
    let filename = path.as_deref().map(|p| p.rsplit(['/', '\\']).next().unwrap_or(p).to_owned());
    Frame { module, function, filename, abs_path: path, lineno, colno, ..Frame::default() }
}

/// `foo::bar::h0123456789abcdef` → `foo::bar` (a legacy-mangled name printed without `{:#}`).
fn strip_hash(function: &str) -> &str {
    match function.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => head,
        _ => function,
    }
}

/// The `::`-separated segments of a path, not splitting inside `<...>`.
fn segments(path: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth -= 1,
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                out.push(&path[start..i]);
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&path[start..]);
    out
}

/// The type path of an impl's self type: `<foo::Bar<T> as core::Trait>::m` → `foo::Bar<T>`.
fn impl_self_type(function: &str) -> Option<&str> {
    let inner = function.strip_prefix('<')?;
    let mut depth = 0i32;
    for (i, c) in inner.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if depth == 0 => return Some(&inner[..i]),
            '>' => depth -= 1,
            ' ' if depth == 0 && inner[i..].starts_with(" as ") => return Some(&inner[..i]),
            _ => {}
        }
    }
    None
}

/// The path that names an impl method's crate: its self type's, or, where that is a generic
/// parameter, a primitive or a fn pointer (`<F as axum::Handler<T>>::call`), its trait's.
fn impl_path(function: &str) -> Option<&str> {
    let ty = bare_type(impl_self_type(function)?);
    if ty.contains("::") && !ty.starts_with("fn(") && !ty.starts_with('(') {
        return Some(ty);
    }
    let (_, after_as) = function[1..].split_once(" as ")?;
    let mut depth = 0i32;
    for (i, c) in after_as.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if depth == 0 => return Some(&after_as[..i]),
            '>' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Drops reference and pointer sigils from a type: `&mut foo::Bar` → `foo::Bar`.
fn bare_type(ty: &str) -> &str {
    let mut ty = ty.trim();
    for sigil in ["&", "mut ", "dyn ", "*const ", "*mut ", "["] {
        if let Some(rest) = ty.strip_prefix(sigil) {
            ty = bare_type(rest);
        }
    }
    ty
}

/// The module a function lives in: its path without the function name and closures
/// (`foo::bar::baz::{{closure}}` → `foo::bar`); for an impl method, the self type's module.
fn module_of(function: &str) -> Option<String> {
    let path = impl_path(function).unwrap_or(function);
    let mut segs = segments(path);
    while segs.last().is_some_and(|s| s.starts_with("{{") || s.starts_with('{')) {
        segs.pop();
    }
    if impl_self_type(function).is_none() || segs.len() > 1 {
        segs.pop(); // the function's own name (or, for an impl, the type's)
    }
    let segs: Vec<&str> = segs.into_iter().map(|s| s.split('<').next().unwrap_or(s)).collect();
    (!segs.is_empty() && !segs[0].is_empty()).then(|| segs.join("::"))
}

/// The crate a function belongs to: the first segment of its path or of an impl's self type
/// (`<&mut foo::Bar as core::Trait>::m` → `foo`).
pub(super) fn crate_of(function: &str) -> &str {
    let path = impl_path(function).unwrap_or(function);
    let first = segments(path).into_iter().next().unwrap_or(path);
    first.split('<').next().unwrap_or(first)
}

/// Crates a stack's innermost capture frames belong to: std's panic machinery, the unwinder,
/// the stack walker, isoscope's own capture path (and what of core and alloc got inlined there).
const LIBRARY: &[&str] = &["std", "core", "alloc", "isoscope", "backtrace", "anyhow", "__rustc", "rust_begin_unwind"];

/// Where the capture is entered or the panic raised: the last of them (from the innermost end)
/// is where a stack is cut.
const BORDER: &[&str] = &[
    "isoscope::",
    "backtrace::",
    "anyhow::",
    "<anyhow::",
    "std::panicking::",
    "core::panicking::",
    "std::sys::backtrace::__rust_end_short_backtrace",
    "std::sys_common::backtrace::__rust_end_short_backtrace",
    "std::backtrace::",
    "std::backtrace_rs::",
    "std::panic::panic_any",
    "std::rt::begin_panic",
    "rust_begin_unwind",
    "__rustc::rust_begin_unwind",
    "core::result::unwrap_failed",
    "core::option::unwrap_failed",
    "core::option::expect_failed",
    "_Unwind_",
];

/// The crate a frame belongs to: from its function's path, or, where the debug info names
/// functions without their path (`debug = "line-tables-only"` gives `charge_card`, not
/// `shop::charge_card`), from its source file: std's (`/rustc/<hash>/library/core/..`),
/// a registry crate's (`.cargo/registry/src/<index>/tokio-1.48.0/..`), isoscope's own.
pub(super) fn frame_crate(frame: &Frame) -> Option<Cow<'_, str>> {
    // A path outside generic arguments (`call_once<std::x::Y>` has none) or an impl.
    let has_path = |f: &&str| f.starts_with('<') || segments(f).len() > 1;
    if let Some(function) = frame.function.as_deref().filter(has_path) {
        return Some(Cow::Borrowed(crate_of(function)));
    }
    let from_path = frame.abs_path.as_deref().and_then(crate_of_path);
    from_path.or_else(|| frame.function.as_deref().map(|f| Cow::Borrowed(crate_of(f))))
}

fn crate_of_path(path: &str) -> Option<Cow<'_, str>> {
    if path.starts_with(OWN_SOURCES) {
        return Some(Cow::Borrowed("isoscope"));
    }
    if let Some(rest) = path.strip_prefix("/rustc/") {
        let lib = rest.split_once("/library/")?.1;
        return Some(Cow::Borrowed(lib.split('/').next()?));
    }
    // `registry/src/<index>/<crate>-<version>/..` or `git/checkouts/<repo>-<hash>/<rev>/..`
    let dir = match path.split_once("/registry/src/") {
        Some((_, rest)) => rest.split('/').nth(1)?,
        None => path.split_once("/git/checkouts/")?.1.split('/').next()?,
    };
    let name = dir.rsplit_once('-').map_or(dir, |(name, _)| name);
    Some(Cow::Owned(name.replace('-', "_")))
}

fn is_library(frame: &Frame) -> bool {
    let function = frame.function.as_deref();
    function.is_none_or(|f| f.starts_with("_Unwind_"))
        || frame_crate(frame).is_some_and(|c| LIBRARY.contains(&c.as_ref()))
}

fn is_border(frame: &Frame) -> bool {
    let Some(f) = frame.function.as_deref() else { return false };
    BORDER.iter().any(|b| f.starts_with(b))
        // the boxed panic hook being called: `<Box<dyn Fn(&PanicHookInfo)> as Fn<..>>::call`
        || (f.starts_with("<alloc::boxed::Box<") && f.contains("PanicHookInfo"))
        || frame_crate(frame).is_some_and(|c| c == "isoscope" || c == "backtrace")
}

/// How many frames at the innermost end (frames innermost first) are the capture machinery:
/// within the first run of std/core/alloc/isoscope/backtrace frames, everything up to the last
/// border frame (so `Result::expect` or a slice's bounds check right below the caller stay).
pub(super) fn machinery_len(frames: &[Frame]) -> usize {
    let mut cut = 0;
    for (i, frame) in frames.iter().enumerate() {
        if !is_library(frame) {
            break;
        }
        if is_border(frame) {
            cut = i + 1;
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_and_crates() {
        let cases = [
            ("myapp::orders::load", Some("myapp::orders"), "myapp"),
            ("myapp::orders::load::{{closure}}", Some("myapp::orders"), "myapp"),
            ("main", None, "main"),
            ("<myapp::Order as core::fmt::Display>::fmt", Some("myapp"), "myapp"),
            ("<&mut myapp::db::Pool<T> as core::ops::Drop>::drop", Some("myapp::db"), "myapp"),
            ("<core::pin::Pin<P> as core::future::future::Future>::poll", Some("core::pin"), "core"),
            ("tokio::runtime::task::raw::poll", Some("tokio::runtime::task::raw"), "tokio"),
            ("<F as axum::handler::Handler<((),),S>>::call::{{closure}}", Some("axum::handler"), "axum"),
            (
                "<fn() -> core::result::Result<(), E> as core::ops::function::FnOnce<()>>::call_once",
                Some("core::ops::function"),
                "core",
            ),
        ];
        for (function, module, krate) in cases {
            assert_eq!(module_of(function).as_deref(), module, "{function}");
            assert_eq!(crate_of(function), krate, "{function}");
        }
    }

    #[test]
    fn crates_from_paths_when_functions_have_no_path() {
        let at = |path: &str| Frame { function: Some("poll".into()), abs_path: Some(path.into()), ..Frame::default() };
        let cases = [
            ("/rustc/59807616e1fa/library/core/src/option.rs", Some("core")),
            ("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/park.rs", Some("tokio")),
            ("/home/u/.cargo/registry/src/index.crates.io-x/tower-http-0.7.0/src/a.rs", Some("tower_http")),
            ("/home/u/.cargo/git/checkouts/hyper-abc/1234567/src/a.rs", Some("hyper")),
            (concat!(env!("CARGO_MANIFEST_DIR"), "/src/client/panic_hook.rs"), Some("isoscope")),
            ("/srv/shop/src/main.rs", Some("poll")),
        ];
        let generic = Frame {
            function: Some("call_once<std::thread::Builder, ()>".into()),
            abs_path: Some("/rustc/x/library/core/src/ops/function.rs".into()),
            ..Frame::default()
        };
        assert_eq!(frame_crate(&generic).as_deref(), Some("core"), "paths inside generics are not the function's");
        for (path, krate) in cases {
            assert_eq!(frame_crate(&at(path)).as_deref(), krate, "{path}");
        }
        let full = Frame {
            function: Some("shop::charge".into()),
            abs_path: Some("/rustc/x/library/std/a.rs".into()),
            ..Frame::default()
        };
        assert_eq!(frame_crate(&full).as_deref(), Some("shop"), "a function's path wins");
    }

    #[test]
    fn file_names_and_hashes() {
        let f = frame(Some("a::b::h0123456789abcdef".into()), Some("/src/app/src/main.rs".into()), Some(3), None);
        assert_eq!(f.function.as_deref(), Some("a::b"));
        assert_eq!(f.filename.as_deref(), Some("main.rs"));
        assert_eq!(f.abs_path.as_deref(), Some("/src/app/src/main.rs"));
        assert_eq!(f.lineno, Some(3));
        let windows = frame(None, Some(r"C:\app\src\lib.rs".into()), None, None);
        assert_eq!(windows.filename.as_deref(), Some("lib.rs"));
    }
}
