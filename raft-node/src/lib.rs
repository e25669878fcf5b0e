//! raft-node: one Raft peer as an OS process.
//!
//! - [`core`]: the IO-free protocol (Figure 2), driven by messages and clock ticks.
//! - [`wire`]: peer datagrams (envelope + MessagePack).
//! - [`control`]: the harness/CLI control channel.
//! - [`logline`]: the log-line format every process writes.
//! - [`runtime`]: the mio event loop that connects the core to its sockets.
//! - [`storage`]: durable state on disk (state file, snapshot file, log segments).
//! - [`sim`]: a deterministic simulator of whole clusters of cores, checking Raft's safety
//!   properties after every step.

pub mod control;
pub mod core;
pub mod logline;
pub mod runtime;
pub mod sim;
pub mod storage;
pub mod wire;
