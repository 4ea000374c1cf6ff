//! peergroup's integration tests: one binary (style.md rule 23). Modules by topic.

mod embed;
mod lifecycle;
mod mdns;
mod node;
mod regressions;
mod replication;
mod support;
