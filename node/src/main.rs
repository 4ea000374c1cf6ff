//! `peergroup`: the standalone node binary.

use std::process::ExitCode;

use clap::Parser;

/// A peer-group replication node: the Windows Peer-to-Peer Grouping model on libp2p.
///
/// Groups of identities share a replicated, signed record database. This build
/// carries the protocol core; `peergroup run` (the networked node) arrives
/// with the node milestone.
#[derive(Debug, Parser)]
#[command(name = "peergroup", version, about, long_about)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
