//! The protocol core's tests: one integration binary, one module per topic.

mod authorization;
mod envelope;
mod group;
mod groups;
mod identity;
mod invitation;
mod membership;
mod merge;
mod password;
mod peer_name;
mod reconcile;
mod record;
mod search;
mod secure;
mod session;
mod sim;
mod store;
