//! raft-node: one Raft peer as an OS process.
//!
//! - [`core`]: the IO-free protocol (Figure 2), driven by messages and clock ticks.
//! - [`wire`]: datagrams (envelope + MessagePack): peers' messages, clerks' requests and replies.
//! - [`kv`]: the lab 3 key/value store and its clerk protocol.
//! - [`service`]: the services a node hosts on its log (digest, KV), behind one interface.
//! - [`shardctrler`]: the lab 4A shard controller's configurations and state machine.
//! - [`shardkv`]: a lab 4B replica group: its state machine and its leader's polls and hand-offs.
//! - [`control`]: the harness/CLI control channel.
//! - [`logline`]: the log-line format every process writes.
//! - [`runtime`]: the mio event loop that connects the core to its sockets.
//! - [`storage`]: durable state on disk (state file, snapshot file, log segments).
//! - [`sim`]: a deterministic simulator of whole clusters of cores, checking Raft's safety
//!   properties after every step.

pub mod control;
pub mod core;
pub mod kv;
pub mod logline;
pub mod runtime;
pub mod service;
pub mod shardctrler;
pub mod shardkv;
pub mod sim;
pub mod storage;
pub mod wire;
