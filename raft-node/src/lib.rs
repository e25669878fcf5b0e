//! raft-node: one Raft peer as an OS process.
//!
//! - [`core`]: the IO-free protocol (Figure 2), driven by messages and clock ticks.
//! - [`wire`]: peer datagrams (envelope + MessagePack).
//! - [`control`]: the harness/CLI control channel.
//! - [`logline`]: the log-line format every process writes.
//! - [`runtime`]: the mio event loop that connects the core to its sockets.

pub mod control;
pub mod core;
pub mod logline;
pub mod runtime;
pub mod storage;
pub mod wire;
