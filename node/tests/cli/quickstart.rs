//! The README's quickstart, run as written against the real binary: the
//! shell block between `<!-- quickstart:begin -->` and
//! `<!-- quickstart:end -->`, in an empty directory, with the binary under
//! test first on `PATH`.

use std::process::Command;

use crate::support::{BIN, isolated};

/// The quickstart's shell block.
fn quickstart() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("<!-- quickstart:begin -->")
        .expect("the README has a quickstart");
    let end = readme.find("<!-- quickstart:end -->").unwrap();
    let block = &readme[start..end];
    let body = block
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(body, _)| body)
        .expect("a sh block");
    body.to_owned()
}

#[test]
fn the_readme_quickstart_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Stop the nodes whatever happens (the quickstart stops them itself when
    // it gets to its end); fail on the first failing command.
    let script = format!(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null' EXIT\n{}",
        quickstart()
    );
    let out = isolated(&mut Command::new("timeout"))
        .args(["120", "bash", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the quickstart failed ({:?})\n{stdout}\n{stderr}",
        out.status
    );
    let events = std::fs::read_to_string(dir.path().join("carol-events.txt")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(lines.len(), 2, "{events}");
    assert!(lines[0].contains("\"change\":\"Added\""), "{events}");
    assert!(lines[1].contains("\"change\":\"Updated\""), "{events}");
    assert!(
        stdout.contains("hello again"),
        "Carol reads the update:\n{stdout}"
    );
    assert_eq!(stdout.matches(".default\tAdmin").count(), 1, "{stdout}");
    assert_eq!(stdout.matches(".default\tMember").count(), 2, "{stdout}");
}
