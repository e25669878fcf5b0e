//! The lab 4A shard controller's replicated state: its configurations ([`config`]) and the
//! state machine that makes them from Join, Leave and Move ([`store`]). Not yet hosted by a
//! node: the clerk protocol it needs (Join/Leave/Move/Query beside the KV's operations) is the
//! next part of issue 20.

pub mod config;
pub mod store;
