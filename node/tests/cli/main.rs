//! Tests of the `peergroup` binary: the daemon, its control API and the
//! CLI, as separate processes on loopback (one test binary, style rule 23).

mod api;
mod commands;
mod edges;
mod quickstart;
mod restart;
mod smoke;
mod support;
