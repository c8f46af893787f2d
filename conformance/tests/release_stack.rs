//! Release builds give panic frames with files and lines: with `[profile.release] debug =
//! "limited"` (what the docs tell users to set) the same frames as a debug build, the panicking
//! function by its full name as the last in-app frame; with `debug = "line-tables-only"` the same
//! file and line, the function by its bare name (that is all the debug info holds), and `in_app`
//! and the trimming of the panic machinery still right (told from the source paths).
//!
//! Builds `tests/fixtures/release_panic` (a small program using isoscope without default
//! features) with both profiles into `target/release-fixture`, then runs it.

use std::path::Path;
use std::process::Command;

fn run_fixture(profile: &str) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("tests/fixtures/release_panic/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["run", "--quiet", "--profile", profile, "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", root.join("../target/release-fixture"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the fixture failed ({profile}):\n{stderr}");
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

fn check(profile: &str, function: &str) {
    let json = run_fixture(profile);
    let frames = json["event"]["exception"]["values"][0]["stacktrace"]["frames"].as_array().expect("frames");
    let names: Vec<_> = frames.iter().map(|f| f["function"].as_str().unwrap_or("?")).collect();
    let site = frames.iter().rev().find(|f| f["in_app"] == true).expect("an in-app frame");
    assert_eq!(site["function"], function, "{profile}: {names:#?}");
    assert_eq!(site["filename"], "main.rs", "{profile}");
    assert_eq!(site["lineno"], json["panic_line"], "{profile}: {site:#}");
    // The panic machinery and isoscope's hook are trimmed; the frames after the site are std's.
    let after = &frames[frames.iter().rposition(|f| f["in_app"] == true).unwrap() + 1..];
    assert!(after.len() <= 2 && after.iter().all(|f| f["in_app"] == false), "{profile}: {names:#?}");
    for f in after {
        let name = f["function"].as_str().unwrap_or("?");
        assert!(!name.starts_with("core::panicking") && !name.starts_with("std::panicking"), "{profile}: {names:#?}");
    }
    assert!(!names.iter().any(|n| n.contains("isoscope")), "{profile}: {names:#?}");
    // The caller (the thread's closure in main) is in-app, std's thread start-up is not.
    let in_app = frames.iter().filter(|f| f["in_app"] == true).count();
    assert_eq!(in_app, 2, "{profile}: the closure in main and charge_card: {names:#?}");
}

#[test]
fn release_builds_with_debug_limited_or_line_tables_name_the_panic_site() {
    check("release", "release_panic::charge_card");
    check("release-lines", "charge_card");
}
