//! The key/value service of lab 3: Get / Put / Append on string keys, exactly once under
//! retries, with clerks talking to the nodes in MessagePack datagrams through netproxy.
//!
//! - [`protocol`]: what a clerk sends and receives (the clerk datagrams) and what the service
//!   puts in the Raft log.
//! - [`store`]: the state machine: the map and the per-clerk table that makes a retried
//!   Put/Append apply once, both in the snapshot.
//!
//! The node's side of the clerk protocol (proposing, ReadIndex, answering) is the runtime's
//! (`runtime::clerks`); a clerk is the harness's (`harness::clerk`).

pub mod protocol;
pub mod store;

pub use protocol::{ClerkId, ClerkReply, ClerkRequest, Op, Outcome};
pub use store::KvStore;
