//! peergroup's integration tests: one binary (style.md rule 23). Modules by topic.

mod node;
mod replication;
mod support;
