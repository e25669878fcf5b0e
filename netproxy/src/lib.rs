//! netproxy: the process through which all of a raft-lab cluster's peer-to-peer UDP traffic
//! passes, and which cuts links and injects labrpc's faults on the way.
//!
//! ```text
//!  node i ──UDP──▶ face j ┐            ┌──▶ node j  (arrives from face i)
//!                         └─ netproxy ─┘
//!  clerk k ─UDP──▶ face j ┐            ┌──▶ node j  (arrives from clerk face k)
//!                         └─ netproxy ─┘
//! ```
//! The proxy knows each node and each clerk (a client of the nodes' service) by its real
//! address and binds one *face* per node and per clerk. Node `i` reaches node `j` by sending to
//! face `j`; the proxy recognises `i` by the datagram's source address and delivers it from
//! face `i`, so every node sees its peers at their faces and every reply passes through the
//! proxy as well. A clerk reaches node `j` the same way and node `j` sees it at its clerk face;
//! clerks do not talk to clerks. Payloads are opaque.
//!
//! The library holds what the daemon, its CLI and the Raft harness share: the control language
//! ([`command`]), a blocking [`Client`], and the [`Stats`] and [`Status`] replies.

pub mod client;
pub mod command;
pub mod daemon;
pub mod endpoint;
pub mod faults;
pub mod logging;
pub mod network;
pub mod stats;
pub mod status;

pub use client::{Client, ClientError};
pub use command::{Change, Command, CommandError};
pub use endpoint::{Endpoint, Endpoints};
pub use network::Network;
pub use stats::{LinkCounters, Stats};
pub use status::Status;
