//! The raft-lab harness: starts netproxy and raft-node processes (on loopback, or in network
//! namespaces) and checks the lab's properties on them, with the lab tester's API ([`Tester`]).

pub mod applier;
pub mod clerk;
pub mod cluster;
pub mod cluster_file;
pub mod cluster_socket;
pub mod ctrlertest;
pub mod dashboard;
pub mod kvtest;
pub mod linearizability;
pub mod liveness;
pub mod logs;
pub mod nemesis;
pub mod netns;
pub mod node_client;
pub mod ports;
pub mod proxy;
pub mod runlog;
pub mod shardclerk;
pub mod shardcli;
pub mod shardtest;
pub mod shardview;
pub mod stress;
pub mod tester;
pub mod timing;
pub mod watch;

pub use tester::{cmd_as_int, cmd_int, rand_int, rand_string, Tester};
