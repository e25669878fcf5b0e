//! netproxy: the process through which all of a raft-lab cluster's peer-to-peer UDP traffic
//! passes, and which cuts links and injects labrpc's faults on the way.
//!
//! ```text
//!  node i ──UDP──▶ face j ┐            ┌──▶ node j  (arrives from face i)
//!                         └─ netproxy ─┘
//! ```
//! The proxy knows each node by its real address and binds one *face* per node. Node `i`
//! reaches node `j` by sending to face `j`; the proxy recognises `i` by the datagram's source
//! address and delivers it from face `i`, so every node sees its peers at their faces and every
//! reply passes through the proxy as well. Payloads are opaque.
//!
//! The library holds what the daemon, its CLI and the Raft harness share: the control language
//! ([`command`]), a blocking [`Client`], and the [`Stats`] and [`Status`] replies.

pub mod client;
pub mod command;
pub mod daemon;
pub mod faults;
pub mod logging;
pub mod network;
pub mod stats;
pub mod status;

pub use client::{Client, ClientError};
pub use command::{Change, Command, CommandError};
pub use network::Network;
pub use stats::{LinkCounters, Stats};
pub use status::Status;
