//! peergroup's integration tests: one binary (style.md rule 23). Modules by topic.

mod behaviour;
mod embed;
mod lifecycle;
mod mdns;
mod netns;
mod node;
mod password;
mod raw;
mod regressions;
mod replication;
mod search;
mod security;
mod slow_link;
mod support;
mod sync;
