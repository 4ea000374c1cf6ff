//! Smoke tests of the `peergroup` binary.

use std::process::Command;

fn peergroup(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_peergroup"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn version_prints_the_crate_version() {
    let out = peergroup(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("peergroup {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_describes_the_node() {
    let out = peergroup(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Usage: peergroup"), "{text}");
    assert!(text.contains("Peer-to-Peer Grouping"), "{text}");
}

#[test]
fn unknown_arguments_fail_with_usage() {
    let out = peergroup(&["--no-such-flag"]);
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
