//! Issue 15's rough edges of the CLI, each shown against the real binary:
//! options where they apply, dates for people, paged record listings,
//! errors in words, exit codes, and client commands that need only the
//! data directory.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Command, Output, Stdio},
};

use crate::support::{BIN, isolated, run_command};

/// Runs the binary without a node.
fn peergroup(args: &[&str]) -> Output {
    isolated(&mut Command::new(BIN))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn log_format_is_an_option_of_run_only() {
    for command in [&["record", "--help"][..], &["status", "--help"], &["--help"]] {
        let out = peergroup(command);
        assert!(out.status.success(), "{out:?}");
        assert!(
            !stdout(&out).contains("--log-format"),
            "{command:?} shows --log-format:\n{}",
            stdout(&out)
        );
    }
    let run = peergroup(&["run", "--help"]);
    assert!(stdout(&run).contains("--log-format"), "{}", stdout(&run));
}

/// A node whose stderr is a pipe, not a terminal: its log is plain text,
/// without colour codes, even when NO_COLOR is not set.
#[test]
fn a_log_that_is_not_a_terminal_has_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = run_command(dir.path())
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        log.read_to_string(&mut text).unwrap();
        text
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("control api ") {
            break;
        }
    }
    // Keep reading stdout so that the node never writes to a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let log = reader.join().unwrap();
    assert!(log.contains("INFO"), "the node logged: {log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log file: {log:?}");
}
