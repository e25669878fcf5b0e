//! A replica group's state machine (lab 4B).
//!
//! The group is at one configuration at a time. Moving to the next one (a `Reconfigure` entry,
//! applied only when it is the next number and every shard is settled) changes each shard:
//! - kept: stays `Serving`;
//! - given away: becomes `Sending`, frozen, until the leader has handed it to its new owner and
//!   a `DeleteShard` entry removes it (Challenge 1: nothing kept once the receiver has it
//!   committed);
//! - gained: `Serving` at once, empty, if nobody held it (gid 0), else `Receiving` until its
//!   parts arrive as `InstallShard` entries; it serves from the last part on (Challenge 2b).
//!
//! Shards the change does not touch keep serving throughout (Challenge 2a). Every entry carries
//! everything it needs (the configuration, the shard's data and table), so replaying the log
//! never asks the controller or another group. The snapshot is the whole state.

use super::key2shard;
use crate::kv::protocol::{ClerkId, Command, Op, Outcome};
use crate::kv::store::Applied;
use crate::service::{Access, ClerkService};
use crate::shardctrler::config::{Config, Gid, NSHARDS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped whenever the snapshot's encoding changes incompatibly.
const SNAPSHOT_VERSION: u8 = 1;

/// The most key and value bytes one part of a handed-off shard carries: a part is one datagram
/// and one log entry at the receiver, both well under `wire::MAX_DATAGRAM`. A single larger
/// value travels alone in its part.
pub const PART_BYTES: usize = 16 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardState {
    /// Owned in the current configuration, with its data: served.
    Serving,
    /// Owned in the current configuration; parts `0..next_part` have arrived.
    Receiving { next_part: u32 },
    /// Taken away by the current configuration: frozen until its new owner has it.
    Sending,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub state: ShardState,
    pub data: BTreeMap<String, String>,
    /// Per clerk, the last write `seq` applied to this shard: it travels with the shard, so a
    /// write retried at the new owner is recognised.
    pub table: BTreeMap<ClerkId, u64>,
}

impl Shard {
    fn new(state: ShardState) -> Shard {
        Shard {
            state,
            data: BTreeMap::new(),
            table: BTreeMap::new(),
        }
    }
}

/// One part of a shard to send: its data, and the table on the last part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub data: BTreeMap<String, String>,
    pub last: bool,
    pub table: BTreeMap<ClerkId, u64>,
}

/// What a receiver makes of an incoming part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Install {
    /// Installed already (or the shard has moved on since): done.
    Done,
    /// Not the part this group expects now (it has not reached that configuration yet).
    NotReady,
    /// The next part: apply it.
    Apply,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardKvStore {
    gid: Gid,
    config: Config,
    /// The shards this group holds, by number (absent: not held).
    shards: BTreeMap<usize, Shard>,
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u8,
    store: &'a ShardKvStore,
}

#[derive(Deserialize)]
struct SnapshotOwned {
    version: u8,
    store: ShardKvStore,
}

impl ShardKvStore {
    /// Group `gid` at configuration 0, holding nothing.
    pub fn new(gid: Gid) -> ShardKvStore {
        ShardKvStore {
            gid,
            config: Config::default(),
            shards: BTreeMap::new(),
        }
    }

    pub fn gid(&self) -> Gid {
        self.gid
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn shards(&self) -> &BTreeMap<usize, Shard> {
        &self.shards
    }

    /// Whether every shard is settled (none receiving or sending): only then may the group move
    /// to the next configuration.
    pub fn settled(&self) -> bool {
        self.shards.values().all(|s| s.state == ShardState::Serving)
    }

    fn serving(&self, shard: usize) -> Option<&Shard> {
        self.shards
            .get(&shard)
            .filter(|s| s.state == ShardState::Serving)
    }

    /// The shards being sent, and to which group.
    pub fn sending(&self) -> impl Iterator<Item = (usize, Gid)> + '_ {
        self.shards
            .iter()
            .filter(|(_, s)| s.state == ShardState::Sending)
            .map(|(&shard, _)| (shard, self.config.shards[shard]))
    }

    /// How many parts shard `shard` is sent in (at least one; zero for a shard not held).
    pub fn part_count(&self, shard: usize) -> u32 {
        match self.shards.get(&shard) {
            Some(s) => numbered(s).last().map_or(1, |(part, _)| part + 1),
            None => 0,
        }
    }

    /// Part `index` of shard `shard` (being sent): the shard cut into parts of at most
    /// [`PART_BYTES`], in key order, the same parts on every replica and after every restart;
    /// the table rides on the last. Only this part's keys are copied: a leader sends a large
    /// shard one part at a time, and copying it whole per part would cost its size squared.
    pub fn part(&self, shard: usize, index: u32) -> Option<Part> {
        let s = self.shards.get(&shard)?;
        let count = self.part_count(shard);
        if index >= count {
            return None;
        }
        let last = index + 1 == count;
        Some(Part {
            data: numbered(s)
                .skip_while(|&(part, _)| part < index)
                .take_while(|&(part, _)| part == index)
                .map(|(_, (k, v))| (k.clone(), v.clone()))
                .collect(),
            last,
            table: if last {
                s.table.clone()
            } else {
                BTreeMap::new()
            },
        })
    }

    /// Applies one committed entry. `Ok(None)` for the entries nobody waits on; an entry that
    /// does not decode or is not a replica group's is an error (every replica skips it alike).
    pub fn apply(&mut self, command: &[u8]) -> Result<Option<Applied>, String> {
        match Command::decode(command)? {
            Command::NoOp => Ok(None),
            Command::Reconfigure { config } => {
                self.reconfigure(config);
                Ok(None)
            }
            Command::DeleteShard { num, shard } => {
                let sending = self
                    .shards
                    .get(&shard)
                    .is_some_and(|s| s.state == ShardState::Sending);
                if num == self.config.num && sending {
                    self.shards.remove(&shard);
                }
                Ok(None)
            }
            Command::Op { clerk, seq, op } => {
                let (fresh, wrong_group) = match op {
                    Op::Put { key, value } => self.write(clerk, seq, key, value, false),
                    Op::Append { key, value } => self.write(clerk, seq, key, value, true),
                    Op::InstallShard {
                        num,
                        shard,
                        part,
                        last,
                        data,
                        table,
                    } => match self.install_state(num, shard, part) {
                        Install::Done => (false, false),
                        Install::NotReady => (false, true),
                        Install::Apply => {
                            let s = self.shards.get_mut(&shard).expect("receiving it");
                            s.data.extend(data);
                            for (c, q) in table {
                                let last_seq = s.table.entry(c).or_default();
                                *last_seq = (*last_seq).max(q);
                            }
                            s.state = if last {
                                ShardState::Serving
                            } else {
                                ShardState::Receiving {
                                    next_part: part + 1,
                                }
                            };
                            (true, false)
                        }
                    },
                    other => return Err(format!("not a replica group's write: {other:?}")),
                };
                Ok(Some(Applied {
                    clerk,
                    seq,
                    fresh,
                    wrong_group,
                }))
            }
        }
    }

    /// A Put or Append, applied if this group serves the key's shard: (fresh, wrong group).
    fn write(
        &mut self,
        clerk: ClerkId,
        seq: u64,
        key: String,
        value: String,
        append: bool,
    ) -> (bool, bool) {
        let Some(s) = self
            .shards
            .get_mut(&key2shard(&key))
            .filter(|s| s.state == ShardState::Serving)
        else {
            return (false, true);
        };
        let fresh = s.table.get(&clerk).is_none_or(|&last| seq > last);
        if fresh {
            if append {
                s.data.entry(key).or_default().push_str(&value);
            } else {
                s.data.insert(key, value);
            }
            s.table.insert(clerk, seq);
        }
        (fresh, false)
    }

    /// Moves to `config` if it is the next configuration and every shard is settled; any other
    /// `Reconfigure` (a duplicate, or one proposed by a leader that was behind) changes nothing.
    fn reconfigure(&mut self, config: Config) {
        if config.num != self.config.num + 1 || !self.settled() {
            return;
        }
        for shard in 0..NSHARDS {
            let (old, new) = (self.config.shards[shard], config.shards[shard]);
            if old == self.gid && new != self.gid {
                if new == 0 {
                    // A configuration without groups: nobody to hand it to (the lab's gid 0
                    // holds no data).
                    self.shards.remove(&shard);
                } else if let Some(s) = self.shards.get_mut(&shard) {
                    s.state = ShardState::Sending;
                }
            } else if old != self.gid && new == self.gid {
                let state = if old == 0 {
                    ShardState::Serving
                } else {
                    ShardState::Receiving { next_part: 0 }
                };
                self.shards.insert(shard, Shard::new(state));
            }
        }
        self.config = config;
    }

    fn install_state(&self, num: u64, shard: usize, part: u32) -> Install {
        if num < self.config.num {
            return Install::Done;
        }
        if num > self.config.num {
            return Install::NotReady;
        }
        match self.shards.get(&shard).map(|s| &s.state) {
            Some(ShardState::Receiving { next_part }) if part == *next_part => Install::Apply,
            Some(ShardState::Receiving { next_part }) if part < *next_part => Install::Done,
            Some(ShardState::Serving) => Install::Done,
            // Ahead of what arrived, or a shard this configuration does not give us (a sender
            // that disagrees with us): keep the sender holding it.
            _ => Install::NotReady,
        }
    }

    pub fn snapshot(&self) -> Vec<u8> {
        rmp_serde::to_vec(&SnapshotRef {
            version: SNAPSHOT_VERSION,
            store: self,
        })
        .expect("encoding a snapshot to a Vec cannot fail")
    }

    /// The state a snapshot holds, which must be group `gid`'s.
    pub fn restore(gid: Gid, data: &[u8]) -> Result<ShardKvStore, String> {
        let snapshot: SnapshotOwned = rmp_serde::from_slice(data)
            .map_err(|e| format!("not a replica group snapshot ({} bytes): {e}", data.len()))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "replica group snapshot version {}, expected {SNAPSHOT_VERSION}",
                snapshot.version
            ));
        }
        if snapshot.store.gid != gid {
            return Err(format!(
                "a snapshot of group {}, not of group {gid}",
                snapshot.store.gid
            ));
        }
        Ok(snapshot.store)
    }

    /// Keys held, over every shard (`GetState`).
    pub fn keys(&self) -> usize {
        self.shards.values().map(|s| s.data.len()).sum()
    }
}

/// Each key and value of `s` in key order, with the part it is sent in: a part takes keys
/// until the next would take it past [`PART_BYTES`] (a larger value travels alone).
fn numbered(s: &Shard) -> impl Iterator<Item = (u32, (&String, &String))> {
    let (mut part, mut size, mut keys) = (0, 0, 0);
    s.data.iter().map(move |(k, v)| {
        let len = k.len() + v.len();
        if keys > 0 && size + len > PART_BYTES {
            part += 1;
            size = 0;
            keys = 0;
        }
        size += len;
        keys += 1;
        (part, (k, v))
    })
}

/// Gets are reads (ReadIndex), answered from the applied state if the key's shard is served
/// there; Puts, Appends and incoming shard parts go through the log.
impl ClerkService for ShardKvStore {
    fn access(&self, op: &Op) -> Option<Access> {
        match op {
            Op::Get { .. } => Some(Access::Read),
            Op::Put { .. } | Op::Append { .. } | Op::InstallShard { .. } => Some(Access::Write),
            Op::Join { .. } | Op::Leave { .. } | Op::Move { .. } | Op::Query { .. } => None,
        }
    }

    fn answer_now(&self, clerk: ClerkId, seq: u64, op: &Op) -> Option<Outcome> {
        let done = || Outcome::Ok {
            value: String::new(),
        };
        match op {
            Op::Put { key, .. } | Op::Append { key, .. } => match self.serving(key2shard(key)) {
                None => Some(Outcome::WrongGroup),
                Some(s) if s.table.get(&clerk).is_some_and(|&last| seq <= last) => Some(done()),
                Some(_) => None,
            },
            Op::InstallShard {
                num, shard, part, ..
            } => match self.install_state(*num, *shard, *part) {
                Install::Done => Some(done()),
                Install::NotReady => Some(Outcome::WrongGroup),
                Install::Apply => None,
            },
            _ => None,
        }
    }

    fn read(&self, op: &Op) -> Outcome {
        match op {
            Op::Get { key } => match self.serving(key2shard(key)) {
                Some(s) => Outcome::Ok {
                    value: s.data.get(key).cloned().unwrap_or_default(),
                },
                None => Outcome::WrongGroup,
            },
            _ => Outcome::NoService,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Gid = 100;

    fn config(num: u64, shards: [Gid; NSHARDS]) -> Config {
        let groups = shards
            .iter()
            .filter(|&&g| g != 0)
            .map(|&g| (g, vec![format!("server-{g}-0")]))
            .collect();
        Config {
            num,
            shards,
            groups,
        }
    }

    fn reconfigure(s: &mut ShardKvStore, c: Config) {
        s.apply(&Command::Reconfigure { config: c }.encode())
            .unwrap();
    }

    fn write(s: &mut ShardKvStore, clerk: ClerkId, seq: u64, op: Op) -> Applied {
        s.apply(&Command::Op { clerk, seq, op }.encode())
            .unwrap()
            .unwrap()
    }

    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    fn get(s: &ShardKvStore, key: &str) -> Outcome {
        s.read(&Op::Get { key: key.into() })
    }

    fn all_parts(s: &ShardKvStore, shard: usize) -> Vec<Part> {
        (0..s.part_count(shard))
            .map(|i| s.part(shard, i).unwrap())
            .collect()
    }

    fn install(num: u64, shard: usize, part: &Part, index: u32) -> Op {
        Op::InstallShard {
            num,
            shard,
            part: index,
            last: part.last,
            data: part.data.clone(),
            table: part.table.clone(),
        }
    }

    /// Config 1 gives every shard to us from nobody: served at once. Config 2 gives shard 8
    /// ("0") away: refused from then on, frozen until deleted.
    #[test]
    fn a_shard_given_away_is_refused_frozen_and_deleted() {
        let mut s = ShardKvStore::new(ME);
        reconfigure(&mut s, config(1, [ME; NSHARDS]));
        assert!(s.settled());
        assert!(!write(&mut s, 1, 1, put("0", "a")).wrong_group);
        let mut shards = [ME; NSHARDS];
        shards[8] = 101;
        reconfigure(&mut s, config(2, shards));
        assert_eq!(get(&s, "0"), Outcome::WrongGroup);
        assert!(write(&mut s, 1, 2, put("0", "b")).wrong_group);
        assert_eq!(s.sending().collect::<Vec<_>>(), vec![(8, 101)]);
        // Not settled: config 3 waits.
        reconfigure(&mut s, config(3, [ME; NSHARDS]));
        assert_eq!(s.config().num, 2);
        let parts = all_parts(&s, 8);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].data["0"], "a");
        assert_eq!(parts[0].table[&1], 1);
        s.apply(&Command::DeleteShard { num: 2, shard: 8 }.encode())
            .unwrap();
        assert!(s.settled());
        assert!(!s.shards().contains_key(&8));
    }

    /// A shard gained from another group is not served until its last part is applied; then
    /// its table recognises a write retried from the old owner.
    #[test]
    fn a_shard_received_in_parts_serves_after_the_last() {
        let mut sender = ShardKvStore::new(101);
        reconfigure(&mut sender, config(1, [101; NSHARDS]));
        for i in 0..3 {
            let value = "x".repeat(PART_BYTES / 2 - 8);
            write(&mut sender, 7, i + 1, put(&format!("0{i}"), &value));
        }
        let mut to_me = [101; NSHARDS];
        to_me[8] = ME;
        reconfigure(&mut sender, config(2, to_me));
        let parts = all_parts(&sender, 8);
        assert_eq!(parts.len(), 2, "split at PART_BYTES");

        let mut s = ShardKvStore::new(ME);
        reconfigure(&mut s, config(1, [101; NSHARDS]));
        // A part for a configuration it has not reached: not ready.
        let early = install(2, 8, &parts[0], 0);
        assert_eq!(s.answer_now(9, 1, &early), Some(Outcome::WrongGroup));
        reconfigure(&mut s, config(2, to_me));
        assert_eq!(get(&s, "00"), Outcome::WrongGroup);
        assert_eq!(
            s.answer_now(9, 1, &install(2, 8, &parts[1], 1)),
            Some(Outcome::WrongGroup)
        );
        assert!(write(&mut s, 9, 1, install(2, 8, &parts[0], 0)).fresh);
        assert_eq!(get(&s, "00"), Outcome::WrongGroup);
        // The first part again (a retry): done, nothing applied.
        assert_eq!(
            s.answer_now(9, 2, &install(2, 8, &parts[0], 0)),
            Some(Outcome::Ok {
                value: String::new()
            })
        );
        assert!(write(&mut s, 9, 3, install(2, 8, &parts[1], 1)).fresh);
        assert!(s.settled());
        assert!(
            matches!(get(&s, "02"), Outcome::Ok { value } if value.len() == PART_BYTES / 2 - 8)
        );
        // Clerk 7's seq 3 was applied at the old owner: a retry here is not applied again.
        assert!(!write(&mut s, 7, 3, put("02", "again")).fresh);
        // The receiver has it: a late part from a stale sender leader is done.
        assert_eq!(
            s.answer_now(9, 4, &install(2, 8, &parts[0], 0)),
            Some(Outcome::Ok {
                value: String::new()
            })
        );
    }

    /// Parts cover the shard exactly, in key order, each within PART_BYTES unless one value
    /// alone is larger; the table rides on the last only.
    #[test]
    fn parts_cut_a_shard_into_datagram_sized_pieces() {
        let mut s = ShardKvStore::new(ME);
        reconfigure(&mut s, config(1, [ME; NSHARDS]));
        for i in 0..40 {
            let value = "x".repeat(if i == 7 { PART_BYTES + 5 } else { 3000 });
            write(&mut s, 1, i + 1, put(&format!("0{i:02}"), &value));
        }
        let parts = all_parts(&s, 8);
        assert_eq!(s.part(8, parts.len() as u32), None);
        assert_eq!(
            ShardKvStore::new(ME).part_count(3),
            0,
            "a shard not held has no parts"
        );
        assert_eq!(s.part_count(3), 1, "an empty shard is one empty part");
        let mut keys = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let bytes: usize = part.data.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert!(
                bytes <= PART_BYTES || part.data.len() == 1,
                "part {i}: {bytes}"
            );
            assert_eq!(part.last, i + 1 == parts.len());
            assert_eq!(part.table.is_empty(), !part.last);
            keys.extend(part.data.keys().cloned());
        }
        assert_eq!(
            keys,
            s.shards()[&8].data.keys().cloned().collect::<Vec<_>>()
        );
        assert!(parts
            .iter()
            .any(|p| p.data.len() == 1 && p.data.contains_key("007")));
    }

    /// Configurations apply one at a time, in order: a skipped or repeated number changes
    /// nothing.
    #[test]
    fn only_the_next_configuration_applies() {
        let mut s = ShardKvStore::new(ME);
        reconfigure(&mut s, config(2, [ME; NSHARDS]));
        assert_eq!(s.config().num, 0);
        reconfigure(&mut s, config(1, [ME; NSHARDS]));
        reconfigure(&mut s, config(1, [101; NSHARDS]));
        assert_eq!(s.config().shards, [ME; NSHARDS]);
    }

    #[test]
    fn the_snapshot_is_the_whole_state_and_names_its_group() {
        let mut s = ShardKvStore::new(ME);
        reconfigure(&mut s, config(1, [ME; NSHARDS]));
        write(&mut s, 1, 1, put("5", "v"));
        let mut shards = [ME; NSHARDS];
        shards[3] = 101;
        reconfigure(&mut s, config(2, shards));
        let restored = ShardKvStore::restore(ME, &s.snapshot()).unwrap();
        assert_eq!(restored, s);
        assert!(ShardKvStore::restore(101, &s.snapshot()).is_err());
        assert!(ShardKvStore::restore(ME, b"junk").is_err());
    }
}
