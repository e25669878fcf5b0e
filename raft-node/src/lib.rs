//! raft-node: one Raft peer as an OS process.
//!
//! - [`core`]: the IO-free protocol (Figure 2), driven by messages and clock ticks.
//! - [`wire`]: peer datagrams (envelope + MessagePack).
//! - [`control`]: the harness/CLI control channel.

pub mod control;
pub mod core;
pub mod wire;
