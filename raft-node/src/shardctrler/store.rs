//! The shard controller's state machine (lab 4A): every configuration ever made, kept for ever
//! (a `Query(n)` answers configuration n exactly, after any restart), and per clerk the last
//! `seq` applied, so that a retried Join, Leave or Move is applied once (as `kv::store` does for
//! Puts). Queries change nothing and, like the KV's Gets, need not enter the log.

use super::config::{Config, NSHARDS};
use crate::kv::protocol::{ClerkId, Command, Op, Outcome};
use crate::kv::store::Applied;
use crate::service::{Access, ClerkService};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped whenever the snapshot's encoding changes incompatibly.
const SNAPSHOT_VERSION: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCtrlerStore {
    /// Configuration `n` at index `n`; configuration 0 (no groups) first.
    configs: Vec<Config>,
    last_seq: BTreeMap<ClerkId, u64>,
}

impl Default for ShardCtrlerStore {
    fn default() -> ShardCtrlerStore {
        ShardCtrlerStore {
            configs: vec![Config::default()],
            last_seq: BTreeMap::new(),
        }
    }
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u8,
    store: &'a ShardCtrlerStore,
}

#[derive(Deserialize)]
struct SnapshotOwned {
    version: u8,
    store: ShardCtrlerStore,
}

impl ShardCtrlerStore {
    /// Applies one committed entry (the same log entries as the KV's, `kv::protocol::Command`,
    /// with the controller's operations). `Ok(None)` for a no-op; an entry that does not decode,
    /// is not a Join, Leave or Move, or moves a shard that does not exist is an error (the
    /// proposer should have refused it), and every replica skips it alike.
    pub fn apply(&mut self, command: &[u8]) -> Result<Option<Applied>, String> {
        let (clerk, seq, op) = match Command::decode(command)? {
            Command::NoOp => return Ok(None),
            Command::Op { clerk, seq, op } => (clerk, seq, op),
            other => return Err(format!("not a shard controller entry: {other:?}")),
        };
        let fresh = !self.applied(clerk, seq);
        if fresh {
            let latest = self.latest();
            let next = match &op {
                Op::Join { servers } => latest.join(servers),
                Op::Leave { gids } => latest.leave(gids),
                Op::Move { shard, .. } if *shard >= NSHARDS => {
                    return Err(format!("Move of shard {shard}: there are {NSHARDS}"))
                }
                Op::Move { shard, gid } => latest.moved(*shard, *gid),
                other => return Err(format!("not a shard controller change: {other:?}")),
            };
            self.configs.push(next);
            self.last_seq.insert(clerk, seq);
        }
        Ok(Some(Applied {
            clerk,
            seq,
            fresh,
            wrong_group: false,
        }))
    }

    /// The lab's Query: configuration `num`, or the latest for `None` or a number not yet made.
    pub fn query(&self, num: Option<u64>) -> &Config {
        num.and_then(|n| self.configs.get(usize::try_from(n).ok()?))
            .unwrap_or_else(|| self.latest())
    }

    pub fn latest(&self) -> &Config {
        self.configs
            .last()
            .expect("configuration 0 is always there")
    }

    /// Whether the clerk's change `seq` was applied already.
    pub fn applied(&self, clerk: ClerkId, seq: u64) -> bool {
        self.last_seq.get(&clerk).is_some_and(|&last| seq <= last)
    }

    pub fn snapshot(&self) -> Vec<u8> {
        rmp_serde::to_vec(&SnapshotRef {
            version: SNAPSHOT_VERSION,
            store: self,
        })
        .expect("encoding a snapshot to a Vec cannot fail")
    }

    pub fn restore(data: &[u8]) -> Result<ShardCtrlerStore, String> {
        let snapshot: SnapshotOwned = rmp_serde::from_slice(data).map_err(|e| e.to_string())?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "shard controller snapshot version {}, expected {SNAPSHOT_VERSION}",
                snapshot.version
            ));
        }
        if snapshot.store.configs.is_empty() {
            return Err("a shard controller snapshot without configuration 0".to_string());
        }
        Ok(snapshot.store)
    }
}

/// Queries are reads, served by ReadIndex; Join, Leave and Move go through the log.
impl ClerkService for ShardCtrlerStore {
    fn access(&self, op: &Op) -> Option<Access> {
        match op {
            Op::Query { .. } => Some(Access::Read),
            Op::Join { .. } | Op::Leave { .. } | Op::Move { .. } => Some(Access::Write),
            Op::Get { .. } | Op::Put { .. } | Op::Append { .. } | Op::InstallShard { .. } => None,
        }
    }

    fn answer_now(&self, clerk: ClerkId, seq: u64, _op: &Op) -> Option<Outcome> {
        ShardCtrlerStore::applied(self, clerk, seq).then(|| Outcome::Ok {
            value: String::new(),
        })
    }

    fn read(&self, op: &Op) -> Outcome {
        match op {
            Op::Query { num } => Outcome::Config(self.query(*num).clone()),
            _ => Outcome::NoService,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shardctrler::config::Gid;

    fn change(clerk: ClerkId, seq: u64, op: Op) -> Vec<u8> {
        Command::Op { clerk, seq, op }.encode()
    }

    fn join(gid: Gid) -> Op {
        Op::Join {
            servers: [(gid, vec![format!("server-{gid}-0")])].into(),
        }
    }

    /// Every configuration stays queryable by number; a number not yet made, or none, is the
    /// latest.
    #[test]
    fn every_configuration_is_kept_and_queried_by_number() {
        let mut s = ShardCtrlerStore::default();
        assert_eq!(s.query(Some(0)), &Config::default());
        s.apply(&change(1, 1, join(1))).unwrap();
        s.apply(&change(1, 2, join(2))).unwrap();
        s.apply(&change(1, 3, Op::Leave { gids: vec![1] })).unwrap();
        assert_eq!(s.latest().num, 3);
        assert_eq!(s.query(Some(1)).shards, [1; NSHARDS]);
        assert_eq!(s.query(Some(2)).groups.len(), 2);
        assert_eq!(s.query(None), s.latest());
        assert_eq!(s.query(Some(99)), s.latest());
    }

    /// A retried change (same clerk, same or older seq) is not applied again.
    #[test]
    fn a_retried_change_is_applied_once() {
        let mut s = ShardCtrlerStore::default();
        let first = s.apply(&change(7, 1, join(1))).unwrap().unwrap();
        assert!(first.fresh);
        let again = s.apply(&change(7, 1, join(1))).unwrap().unwrap();
        assert!(!again.fresh);
        assert_eq!(s.latest().num, 1);
        assert!(s.apply(&change(8, 1, join(2))).unwrap().unwrap().fresh);
        assert_eq!(s.latest().num, 2);
    }

    #[test]
    fn a_bad_entry_is_an_error_and_changes_nothing() {
        let mut s = ShardCtrlerStore::default();
        assert!(s.apply(b"\xc1").is_err());
        let put = Op::Put {
            key: "k".into(),
            value: "v".into(),
        };
        assert!(s.apply(&change(1, 1, put)).is_err());
        let bad_move = change(
            1,
            1,
            Op::Move {
                shard: NSHARDS,
                gid: 1,
            },
        );
        assert!(s.apply(&bad_move).is_err());
        assert_eq!(s, ShardCtrlerStore::default());
        assert_eq!(s.apply(&Command::NoOp.encode()), Ok(None));
    }

    /// The snapshot carries every configuration and the exactly-once table.
    #[test]
    fn a_snapshot_restores_the_history_and_the_table() {
        let mut s = ShardCtrlerStore::default();
        s.apply(&change(1, 1, join(1))).unwrap();
        s.apply(&change(2, 5, Op::Move { shard: 3, gid: 0 }))
            .unwrap();
        let restored = ShardCtrlerStore::restore(&s.snapshot()).unwrap();
        assert_eq!(restored, s);
        let mut restored = restored;
        assert!(
            !restored
                .apply(&change(2, 5, join(9)))
                .unwrap()
                .unwrap()
                .fresh
        );
        assert!(ShardCtrlerStore::restore(b"junk").is_err());
    }
}
