//! The protocol core's tests: one integration binary, one module per topic.

mod envelope;
mod group;
mod identity;
mod merge;
mod peer_name;
mod record;
mod store;
