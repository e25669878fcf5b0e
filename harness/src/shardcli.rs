//! `raft-lab shard …` and the sharded `raft-lab kv`: the controller's Join, Leave, Move and
//! Query, and Get/Put/Append routed by shard, against a running `raft-lab cluster --groups N`
//! (its layout as `harness::shardtest` lays a test's out: controllers 0–2, then the groups).

use crate::clerk::Clerk;
use crate::cluster::Layout;
use crate::cluster_file::Sharded;
use crate::node_client::NodeClient;
use crate::shardclerk::ShardClerk;
use crate::shardtest::{directory, gid_of, process, server_name, NCTRLERS};
use raft_auth::Secret;
use raft_node::kv::Op;
use raft_node::shardctrler::config::{Config, Gid, NSHARDS};
use raft_node::wire::ClusterKey;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// A running sharded system, as its `layout.json` describes it.
pub struct System<'a> {
    pub layout: &'a Layout,
    pub key: ClusterKey,
    pub secret: Secret,
    pub sharded: Sharded,
}

/// What `raft-lab shard` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardOp {
    Join(Vec<Gid>),
    Leave(Vec<Gid>),
    Move { shard: usize, gid: Gid },
    Query(Option<u64>),
}

impl System<'_> {
    fn gids(&self) -> Vec<Gid> {
        (0..self.sharded.groups).map(gid_of).collect()
    }

    /// The group index of `gid`, or an error naming the groups there are.
    fn group(&self, gid: Gid) -> Result<usize, String> {
        let gids = self.gids();
        gids.iter().position(|&g| g == gid).ok_or_else(|| {
            let list: Vec<String> = gids.iter().map(Gid::to_string).collect();
            format!(
                "no group {gid} in this cluster: its groups are {}",
                list.join(", ")
            )
        })
    }

    /// Whether any server of group `gi` answers on its control channel.
    fn runs(&self, gi: usize) -> bool {
        let n = self.sharded.per_group;
        (0..n).any(|i| {
            let control = self.layout.controls[process(n, gi, i)];
            NodeClient::new(control, self.secret.clone())
                .get_state()
                .is_ok()
        })
    }

    fn ctrler_clerk(&self) -> Result<Clerk, String> {
        let faces = self.layout.faces[..NCTRLERS].to_vec();
        Clerk::at_free_endpoint(&self.layout.clerks, faces, self.key.clone())
            .map(|(clerk, _)| clerk)
            .map_err(|e| format!("cannot open the clerk's socket: {e}"))
    }

    /// Runs a controller operation; a Query's configuration is returned.
    pub fn shard(&self, op: ShardOp, deadline: Instant) -> Result<Option<Config>, String> {
        let n = self.sharded.per_group;
        let op = match op {
            ShardOp::Join(gids) => {
                let mut servers = BTreeMap::new();
                for gid in gids {
                    let gi = self.group(gid)?;
                    if !self.runs(gi) {
                        return Err(format!("group {gid} has no servers running"));
                    }
                    let names = (0..n).map(|i| server_name(gid, i)).collect();
                    servers.insert(gid, names);
                }
                Op::Join { servers }
            }
            ShardOp::Leave(gids) => {
                for &gid in &gids {
                    self.group(gid)?;
                }
                Op::Leave { gids }
            }
            ShardOp::Move { shard, gid } => {
                if shard >= NSHARDS {
                    return Err(format!(
                        "shard {shard} is out of range: the shards are 0..={}",
                        NSHARDS - 1
                    ));
                }
                self.group(gid)?;
                Op::Move { shard, gid }
            }
            ShardOp::Query(num) => Op::Query { num },
        };
        let mut clerk = self.ctrler_clerk()?;
        let shown = format!("{op:?}");
        if let Op::Query { num } = op {
            return clerk
                .query(num, Some(deadline))
                .map(Some)
                .map_err(|e| format!("Query: {e} (are the controllers up? see 'just status')"));
        }
        clerk
            .call(op, Some(deadline))
            .map(|_| None)
            .map_err(|e| format!("{shown}: {e} (are the controllers up? see 'just status')"))
    }

    /// A sharded clerk's Get, Put or Append; a Get's value.
    pub fn kv(&self, op: Op, deadline: Instant) -> Result<String, String> {
        let dir = directory(self.layout, self.sharded.groups, self.sharded.per_group);
        let faces = self.layout.faces[..NCTRLERS].to_vec();
        let (mut clerk, _) = ShardClerk::at_free_endpoint(
            &self.layout.clerks,
            faces,
            Arc::new(dir),
            self.key.clone(),
        )
        .map_err(|e| format!("cannot open the clerk's socket: {e}"))?;
        clerk.call(op, Some(deadline)).map_err(|e| {
            format!("{e} (has a group joined? 'just shard query' shows the configuration)")
        })
    }
}

/// A configuration as `raft-lab shard query` prints it.
pub fn show(config: &Config) -> String {
    let shards: Vec<String> = (config.shards.iter().enumerate())
        .map(|(s, g)| format!("{s}:{g}"))
        .collect();
    let mut out = format!(
        "configuration {}\nshards (shard:gid) {}\n",
        config.num,
        shards.join(" ")
    );
    if config.groups.is_empty() {
        out.push_str("no groups\n");
    }
    for (gid, names) in &config.groups {
        out.push_str(&format!("group {gid}: {}\n", names.join(" ")));
    }
    out
}
