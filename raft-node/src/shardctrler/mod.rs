//! The lab 4A shard controller's replicated state: its configurations ([`config`]) and the
//! state machine that makes them from Join, Leave and Move ([`store`]). A node hosts it with
//! `--service shardctrler` (`service::shardctrler`); clerks reach it with the KV's clerk
//! protocol (`kv::protocol`).

pub mod config;
pub mod store;
