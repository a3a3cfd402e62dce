//! What the integration test binaries share: how a test that cannot run here says so.
//!
//! A test that needs something a machine may lack (PostgreSQL, NATS, Redis, nginx,
//! Chromium and `npm ci`, SeaweedFS, schemathesis) calls [`skip`] when it is missing, and
//! returns. Under `CI=true` that is a failure instead: CI installs everything (.ci/run).
//! Elsewhere the test passes without running, so the skip must be seen:
//!
//! - the notice goes straight to the process's stderr, because the test harness captures
//!   what `eprintln!` prints in a passing test and shows it to no one;
//! - and a line goes to the skip list, `<target>/tmp/palaver-skipped.txt`, which the
//!   README's test command (`scripts/test`) empties before the run and prints after it.
//!
//! Each binary includes this file with `mod support;` (the api suite with a `#[path]`).

pub mod seaweed;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// Whether this is a CI run (`CI=true`), where nothing may be skipped.
fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The skip list of this build's target directory (`CARGO_TARGET_TMPDIR` is
/// `<target>/tmp`, which cargo creates for integration tests).
fn skip_list() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("palaver-skipped.txt")
}

/// This test binary's name, without the hash cargo appends (`api_cluster`).
fn binary() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_deref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((name, _hash)) => name.to_owned(),
        None => stem,
    }
}

/// `what` does not run here because of `why` (e.g. `"the PostgreSQL store tests"`,
/// `"postgres://… does not answer"`); the caller returns without testing.
///
/// Panics under `CI=true`. Otherwise says so past the harness's capture and adds it to the
/// skip list, once per process for each `what` and `why`, however many tests skip for it.
pub fn skip(what: &str, why: &str) {
    assert!(!ci(), "{what} cannot run: {why} (required under CI=true)");
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let line = format!("{}: {what}: {why}", binary());
    {
        let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
        if said.contains(&line) {
            return;
        }
        said.push(line.clone());
    }
    // Straight to file descriptor 2: `std::io::stderr()` is not what the harness captures
    // (only the print macros are).
    let _ = writeln!(
        std::io::stderr(),
        "\n********************************************************************\n\
         SKIPPED: {what}: {why}.\n\
         Install or start what is missing (see .ci/run), or set CI=true to make this fail.\n\
         ********************************************************************\n"
    );
    // One short append per line, so binaries and threads writing at once do not mix.
    let list = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skip_list());
    if let Ok(mut list) = list {
        let _ = list.write_all(format!("{line}\n").as_bytes());
    }
}
